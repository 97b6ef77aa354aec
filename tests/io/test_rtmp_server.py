"""The RTMP listener over real sockets (uvloop): publish, play, refusal, republish, E-RTMP
gating, shared buffers, copy budget, bad input isolation."""

import asyncio
import functools
import logging

import pytest
import uvloop

from fixtures.media import encode_video
from rtmpgop.config import Config
from rtmpgop.io import rtmp_server
from rtmpgop.io.rtmp_client import RtmpClientError, open_url
from rtmpgop.protocol.rtmp import events as E
from tests.io.rtmp_helpers import (aac, collect, h264, interleave, media, publish_all, run,
                                  send_headers, send_packet, seqs)


@functools.cache
def hevc():
    return encode_video("hevc", frames=10, bframes=False, gop=10)


@run
async def test_publish_then_play_frame_exact(hub, lst, base):
    pub = await open_url(base + "/live/cam1", "publish")
    video, audio = h264(), aac()
    await publish_all(pub, video, audio)
    await asyncio.sleep(0.1)
    ch = hub.get("live/cam1")
    assert ch is not None and ch.frames_in == len(video.packets) + len(audio.packets)
    tracks = ch.trackset.tracks
    assert [t.codec.value for t in tracks] == ["h264", "aac"]
    assert (tracks[0].config.width, tracks[0].config.height) == (320, 240)
    # a player joining now starts at the newest GoP head (frame 15) with sequence headers first
    player = await open_url(base + "/live/cam1", "play")
    n_after = len([p for p in video.packets if p.dts >= video.packets[15].dts])
    events = await collect(player, lambda ev: len(media(ev, E.VideoData)) >= n_after)
    kinds = [type(e).__name__ for e in events if not isinstance(e, E.Status)]
    assert kinds[:3] == ["Metadata", "VideoData", "AudioData"]
    assert seqs(events, E.VideoData)[0].payload == video.config
    assert seqs(events, E.AudioData)[0].payload == audio.config
    vids = media(events, E.VideoData)
    assert vids[0].tag.keyframe
    assert [v.payload for v in vids] == [p.data for p in video.packets[15:]][:len(vids)]
    # timestamps: dts and cts in ms, as published
    tb = video.time_base
    assert [(v.timestamp, v.timestamp + v.tag.cts) for v in vids] == [
        (int(p.dts * tb * 1000), int(p.pts * tb * 1000)) for p in video.packets[15:]][:len(vids)]
    # live: further frames arrive too
    ms, _, kind, p = interleave(video)[-1]
    send_packet(pub, video, ms + 33, "v", video.packets[-1])
    ev = await player.wait_for(E.VideoData)
    assert ev.payload == video.packets[-1].data and ev.timestamp == ms + 33
    stats = lst.statistics()
    assert dict(stats.extra)["connections"] == 2
    pub.close()
    player.close()


@run
async def test_copy_budget_on_real_socket(hub, lst, base):
    pub = await open_url(base + "/live/budget", "publish")
    video, audio = h264(), aac()
    payload = sum(len(p.data) for p in video.packets) + sum(len(p.data) for p in audio.packets)
    payload += len(video.config) + len(audio.config)
    await publish_all(pub, video, audio)
    await asyncio.sleep(0.2)
    (conn,) = [c for c in lst.connections]
    stats = dict(conn.statistics().extra)
    assert conn.statistics().frames_in == len(video.packets) + len(audio.packets) + 2
    n_messages = stats["messages"]
    assert stats["bytes_copied"] <= payload + 600 + 20 * n_messages  # commands + header leftovers
    pub.close()


@run
async def test_second_publisher_refused_first_continues(hub, lst, base):
    pub = await open_url(base + "/live/busy", "publish")
    video = h264()
    send_headers(pub, video)
    with pytest.raises(RtmpClientError) as e:
        await open_url(base + "/live/busy", "publish")
    assert e.value.status.code == "NetStream.Publish.BadName"
    player = await open_url(base + "/live/busy", "play")
    for ms, _, kind, p in interleave(video)[:15]:
        send_packet(pub, video, ms, kind, p)
    events = await collect(player, lambda ev: len(media(ev, E.VideoData)) >= 15)
    assert [v.payload for v in media(events, E.VideoData)] == [p.data for p in video.packets[:15]]
    assert hub.statistics().extra[3] == ("publishes_refused", 1)


@run
async def test_republish_player_stays_and_resumes_monotonic(hub, lst, base):
    video = h264()
    player = await open_url(base + "/live/re", "play")
    pub = await open_url(base + "/live/re", "publish")
    send_headers(pub, video)
    for ms, _, kind, p in interleave(video)[:10]:
        send_packet(pub, video, ms, kind, p)
    first = await collect(player, lambda ev: len(media(ev, E.VideoData)) >= 10)
    pub.close()
    await player.wait_for(E.Status)  # UnpublishNotify
    pub2 = await open_url(base + "/live/re", "publish")
    send_headers(pub2, video)
    for ms, _, kind, p in interleave(video)[:10]:
        send_packet(pub2, video, ms, kind, p)
    second = await collect(player, lambda ev: len(media(ev, E.VideoData)) >= 10)
    codes = [e.code for e in first + second if isinstance(e, E.Status)]
    assert "NetStream.Play.PublishNotify" in codes
    assert seqs(second, E.VideoData)[0].payload == video.config  # fresh sequence header
    ts = [v.timestamp for v in media(first, E.VideoData) + media(second, E.VideoData)]
    assert ts == sorted(ts) and len(set(ts)) == len(ts)
    assert [v.payload for v in media(second, E.VideoData)] == [p.data for p in video.packets[:10]]


@run
async def test_hevc_only_to_players_listing_hvc1(hub, lst, base):
    video, audio = hevc(), aac()
    pub = await open_url(base + "/live/hevc", "publish")
    legacy = await open_url(base + "/live/hevc", "play")
    enhanced = await open_url(base + "/live/hevc", "play", fourccs=("hvc1",))
    await publish_all(pub, video, audio)
    got = await collect(enhanced, lambda ev: len(media(ev, E.VideoData)) >= len(video.packets))
    assert [v.tag.fourcc for v in seqs(got, E.VideoData)] == ["hvc1"]
    assert [v.payload for v in media(got, E.VideoData)] == [p.data for p in video.packets]
    old = await collect(legacy, lambda ev: len(media(ev, E.AudioData)) >= 20)
    assert media(old, E.VideoData) == [] and seqs(old, E.AudioData)[0].payload == audio.config
    assert hub.get("live/hevc").trackset.tracks[0].codec.value == "hevc"


@run
async def test_players_share_serialized_buffers(hub, lst, base):
    video = h264()
    pub = await open_url(base + "/live/share", "publish")
    players = [await open_url(base + "/live/share", "play") for _ in range(3)]
    await publish_all(pub, video)
    for pl in players:
        await collect(pl, lambda ev: len(media(ev, E.VideoData)) >= 30)
    conns = [c for c in lst.connections if c.players]
    hits = sum(p.shared_hits for c in conns for p in c.players.values())
    assert hits >= 2 * 30  # each frame serialized once, reused by two other players


@run
async def test_garbage_closes_only_that_connection(hub, lst, base):
    video = h264()
    pub = await open_url(base + "/live/ok", "publish")
    player = await open_url(base + "/live/ok", "play")
    send_headers(pub, video)
    bad = await open_url(base + "/live/bad", "publish")
    bad.transport.write(b"\x46\x00\x00\x00\x00\x00\x01\x09" + b"\xff" * 64)  # fmt 1 on a new csid
    await asyncio.wait_for(bad.closed, 5)
    for ms, _, kind, p in interleave(video):
        send_packet(pub, video, ms, kind, p)
    got = await collect(player, lambda ev: len(media(ev, E.VideoData)) >= 30)
    assert [v.payload for v in media(got, E.VideoData)] == [p.data for p in video.packets]
    assert dict(lst.statistics().extra)["protocol_errors"] == 1


def test_bad_input_log_line(caplog):
    caplog.set_level(logging.WARNING, "rtmpgop.io.rtmp_server")

    @run
    async def body(hub, lst, base):
        r, w = await asyncio.open_connection("127.0.0.1", lst.port)
        w.write(b"GET / HTTP/1.1\r\n\r\n")
        assert await asyncio.wait_for(r.read(), 5) == b""
    body()
    lines = [r.getMessage() for r in caplog.records]
    assert any("closed: HandshakeError bad RTMP version byte (version=71)" in x for x in lines), lines


def test_server_fixture_runs_the_app(server):
    port = server.ports["rtmp"]
    assert port > 0 and set(server.ports) >= {"rtmp"}

    async def main():
        pub = await open_url(f"rtmp://127.0.0.1:{port}/live/fx", "publish")
        video = h264()
        send_headers(pub, video)
        for ms, _, kind, p in interleave(video)[:5]:
            send_packet(pub, video, ms, kind, p)
        await asyncio.sleep(0.2)
        pub.close()
        return True

    assert uvloop.run(main())
    assert server.call(lambda: server.hub.statistics().frames_in) == 5


@run
async def test_slow_player_bounded_and_skipped_publisher_never_blocked(hub, lst, base):
    import os

    from rtmpgop.protocol import flv
    from rtmpgop.protocol.flv import PacketType as P

    video = h264()
    pub = await open_url(base + "/live/slow", "publish")
    slow = await open_url(base + "/live/slow", "play")
    slow.transport.pause_reading()  # a player that stops reading
    send_headers(pub, video)
    big = 200_000
    n = 120
    for i in range(n):
        key = i % 10 == 0
        nal = (b"\x65" if key else b"\x41") + os.urandom(big)
        body = [flv.video_header("avc1", P.CODED_FRAMES, key, 0), len(nal).to_bytes(4, "big"), nal]
        pub.conn.send_video(pub.msid, i * 33, body)
        pub.flush()
        await asyncio.sleep(0.002)
        conn = next(c for c in lst.connections if c.players)
        assert conn.transport.get_write_buffer_size() <= rtmp_server.WRITE_HIGH_WATER + 600_000
    await asyncio.sleep(0.3)
    ch = hub.get("live/slow")
    assert ch.frames_in == n  # the publisher was never held back
    player = next(iter(conn.players.values()))
    assert player.sub.backlog_bytes() > 10 * big  # the hub holds it; the transport does not
    slow.transport.resume_reading()
    events = await collect(slow, lambda ev: any(isinstance(e, E.VideoData) and e.timestamp == (n - 1) * 33
                                                for e in ev), timeout=20)
    vids = [e for e in events if isinstance(e, E.VideoData)]
    ts = [v.timestamp for v in vids if v.tag.packet.name == "CODED_FRAMES"]
    assert ts == sorted(ts) and len(ts) < n  # frames were skipped, order kept
    assert len([v for v in vids if v.tag.packet.name == "SEQUENCE_START"]) >= 2  # headers after a skip
    assert player.sub.skipped_frames == n - len(ts)


def test_handshake_and_idle_timeouts(monkeypatch, caplog):
    caplog.set_level(logging.WARNING, "rtmpgop.io.rtmp_server")
    monkeypatch.setattr(rtmp_server, "TIMER_TICK", 0.05)
    monkeypatch.setattr(rtmp_server, "HANDSHAKE_TIMEOUT", 0.3)
    monkeypatch.setattr(rtmp_server, "IDLE_TIMEOUT", 0.6)
    monkeypatch.setattr(rtmp_server, "PING_INTERVAL", 100.0)

    @run
    async def body(hub, lst, base):
        r, w = await asyncio.open_connection("127.0.0.1", lst.port)
        w.write(b"\x03")  # C0 only, then silence
        assert await asyncio.wait_for(r.read(), 5) == b""
        client = await open_url(base + "/live/idle", "play")  # handshake done, then silent
        client.transport.pause_reading()
        async with asyncio.timeout(5):
            while lst.connections:  # the server closed its side
                await asyncio.sleep(0.05)
        client.close()
    body()
    lines = [r.getMessage() for r in caplog.records]
    assert any("closed: handshake timeout" in x for x in lines), lines
    assert any("closed: idle for" in x for x in lines), lines


@run(config=Config(play_merge_ms=150))
async def test_merged_write_sends_a_burst_in_one_pass_and_loses_nothing(hub, lst, base):
    """play_merge_ms: frames published 10 ms apart within one window reach the player in one
    pump pass (one writelines), all of them, in order; without the option each is its own."""
    video = h264()
    pub = await open_url(base + "/live/mw", "publish")
    send_headers(pub, video)
    frames = interleave(video)
    for ms, _, kind, p in frames[:15]:  # the first GoP
        send_packet(pub, video, ms, kind, p)
    player = await open_url(base + "/live/mw", "play")
    await collect(player, lambda ev: len(media(ev, E.VideoData)) >= 15)
    await asyncio.sleep(0.3)  # let any window still open close
    passes = lst.pumps.passes
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    for ms, _, kind, p in frames[15:21]:
        send_packet(pub, video, ms, kind, p)
        await asyncio.sleep(0.01)
    events = await collect(player, lambda ev: len(media(ev, E.VideoData)) >= 6)
    waited = loop.time() - t0
    got = media(events, E.VideoData)
    assert [v.payload for v in got] == [p.data for _, _, _, p in frames[15:21]]
    assert lst.pumps.passes - passes == 1
    assert waited >= 0.14  # the first frame waited out the window
    pub.close()
    player.close()


@run(config=Config(rtmp_publish_merge_ms=150))
async def test_merged_read_takes_a_burst_in_few_reads(hub, lst, base):
    """rtmp_publish_merge_ms: after a read the publisher's socket rests for the window, so
    frames sent 10 ms apart arrive in a few reads, and every one reaches the channel."""
    video = h264()
    pub = await open_url(base + "/live/mr", "publish")
    send_headers(pub, video)
    await asyncio.sleep(0.3)
    (conn,) = [c for c in lst.connections if c.channel is not None]
    reads = conn.reads
    frames = interleave(video)[:20]
    for ms, _, kind, p in frames:
        send_packet(pub, video, ms, kind, p)
        await asyncio.sleep(0.01)  # 200 ms of sending: two windows
    ch = hub.get("live/mr")
    async with asyncio.timeout(5):
        while ch.frames_in < len(frames):
            await asyncio.sleep(0.02)
    assert ch.frames_in == len(frames)
    pushed = [it.payload for gop in ch.ring for it in gop.items if hasattr(it, "payload")]
    assert pushed == [p.data for _, _, _, p in frames]
    assert conn.reads - reads <= 4  # not one per message
    pub.close()
