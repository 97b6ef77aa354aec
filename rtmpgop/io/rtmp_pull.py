"""The ``rtmp://`` puller of ``io/sources.py``: play a stream from another RTMP server (or
another path of this one) and publish it on the configured path.

Strategy: ``rtmp_client.open_url(url, "play")`` does connect + createStream + play; the
events then go through the same ``RtmpIngest`` glue that RTMP publishers use (the source's
``Sink`` has the ``set_tracks``/``push`` pair it calls on a channel), so FLV bodies become
access units exactly as for a publisher. Flow control is the client's (window
acknowledgements). When the upstream server says the stream ended
(``NetStream.Play.UnpublishNotify``, ``Play.Stop``, an error status) the puller returns or
raises and the source reconnects with backoff. Cancellation closes the connection.
"""

from __future__ import annotations

from rtmpgop.config import SourceConfig
from rtmpgop.io import rtmp_client, sources
from rtmpgop.io.rtmp_ingest import RtmpIngest
from rtmpgop.protocol.rtmp import events as E

CONNECT_TIMEOUT = 10.0
"""Seconds for connect + createStream + play to reach ``NetStream.Play.Start``."""

END_CODES = frozenset({"NetStream.Play.UnpublishNotify", "NetStream.Play.Stop",
                       "NetStream.Play.Complete"})
"""Status codes that mean the upstream publisher is gone: reconnect (with backoff) rather
than idle on a dead path until the watchdog notices."""


class RtmpSourceError(Exception):
    """The upstream RTMP server refused the play or ended the stream."""


async def pull(cfg: SourceConfig, sink) -> None:
    """Play ``cfg.url`` into ``sink`` until the upstream fails. Raises ``RtmpSourceError``,
    ``RtmpClientError``, ``ProtocolError``, ``OSError`` or ``ConnectionError``."""
    try:
        client = await rtmp_client.open_url(cfg.url, "play", timeout=CONNECT_TIMEOUT)
    except TimeoutError:
        raise RtmpSourceError(f"no NetStream.Play.Start within {CONNECT_TIMEOUT:g} s") from None
    ingest = RtmpIngest(sink, name=cfg.path)
    try:
        while True:
            ev = await client.next_event(timeout=None)
            if isinstance(ev, E.VideoData):
                ingest.on_video(ev)
            elif isinstance(ev, E.AudioData):
                ingest.on_audio(ev)
            elif isinstance(ev, E.Metadata):
                ingest.on_metadata(ev)
            elif isinstance(ev, E.Status):
                if ev.level == "error":
                    raise RtmpSourceError(f"upstream said {ev.code}: {ev.description}".rstrip(": "))
                if ev.code in END_CODES:
                    raise RtmpSourceError(f"upstream ended the stream ({ev.code})")
    finally:
        client.close()


sources.PULLERS["rtmp"] = pull
