"""A self-contained RTMP load generator for the rtmpgop benchmark.

It shares no code with the server under test (rtmpgop.protocol), so a bug in rtmpgop's RTMP stack
cannot hide itself by being on both ends of the wire.

- ``media``: a cached ~5 Mbit/s H.264 + AAC loop; every video frame carries an SEI NAL with the
  publisher id, a frame sequence number and its send time, so players check exactness.
- ``amf0``: the AMF0 subset RTMP commands use.
- ``rtmp``: an asyncio (uvloop) RTMP client protocol: handshake, chunk reader/writer, commands.
- ``clients``: ``Publisher`` (real-time paced, looping the cached frames) and ``Player`` (counts
  bytes, checks every frame arrives in order exactly once, measures join time).
- ``run``: runs N publishers and M players against one server and returns their statistics.
"""
