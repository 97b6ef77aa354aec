"""Helpers for RTMP tests: publish encoded streams with RtmpClient, collect what a player gets."""

from __future__ import annotations

import asyncio
import functools

import uvloop

from fixtures.media import encode_audio, encode_video
from rtmpgop.channels import Hub
from rtmpgop.config import Config
from rtmpgop.io import rtmp_server
from rtmpgop.protocol import flv
from rtmpgop.protocol.flv import PacketType as P
from rtmpgop.protocol.rtmp import events as E

FOURCC = {"h264": "avc1", "hevc": "hvc1", "av1": "av01", "aac": "mp4a", "opus": "Opus"}


@functools.cache
def h264():
    """1 s of 320x240 H.264 with B-frames, two GoPs (encoded once per session)."""
    return encode_video("h264", frames=30, bframes=True, gop=15)


@functools.cache
def aac():
    """1 s of 48 kHz stereo AAC (encoded once per session)."""
    return encode_audio("aac", seconds=1.0, rate=48000)


def run(coro_fn=None, *, config: Config | None = None):
    """Decorator for async tests: the test runs ``coro_fn(hub, lst, base, *a, **kw)`` on uvloop
    with a fresh Hub, an RTMP listener ``lst`` on 127.0.0.1 port 0 serving it (with ``config``,
    default ``Config()``), ``base`` = ``rtmp://127.0.0.1:<port>``, and a 30 s deadline; the
    listener is closed afterwards. ``@run`` or ``@run(config=...)``."""
    if coro_fn is None:
        return lambda fn: run(fn, config=config)

    def wrapper(*a, **kw):
        async def main():
            hub = Hub()
            lst = await rtmp_server.start(hub, config or Config(), "127.0.0.1", 0)
            try:
                async with asyncio.timeout(30):
                    await coro_fn(hub, lst, f"rtmp://127.0.0.1:{lst.port}", *a, **kw)
            finally:
                await lst.close()
        uvloop.run(main())
    wrapper.__name__ = coro_fn.__name__
    return wrapper


def interleave(video, audio=None):
    """(ms, kind, packet) in decode order; video dts/audio pts converted to ms."""
    out = []
    vtb = video.time_base
    for p in video.packets:
        out.append((int(p.dts * vtb * 1000), 0, "v", p))
    if audio is not None:
        atb = audio.time_base
        for p in audio.packets:
            out.append((int(p.dts * atb * 1000), 1, "a", p))
    out.sort(key=lambda x: (x[0], x[1]))
    return out


def send_headers(client, video, audio=None, metadata=None):
    conn, msid = client.conn, client.msid
    conn.send_metadata(msid, metadata or {"width": 320.0, "height": 240.0, "framerate": 30.0})
    vfc = FOURCC[video.codec]
    conn.send_video(msid, 0, [flv.video_header(vfc, P.SEQUENCE_START, True), video.config])
    if audio is not None:
        conn.send_audio(msid, 0, [flv.audio_header(FOURCC[audio.codec], P.SEQUENCE_START), audio.config])
    client.flush()


def send_packet(client, video, ms, kind, p, audio=None):
    conn, msid = client.conn, client.msid
    if kind == "v":
        vtb = video.time_base
        cts = int(p.pts * vtb * 1000) - ms
        conn.send_video(msid, ms, [flv.video_header(FOURCC[video.codec], P.CODED_FRAMES, p.keyframe, cts), p.data])
    else:
        conn.send_audio(msid, ms, [flv.audio_header(FOURCC[audio.codec], P.CODED_FRAMES), p.data])
    client.flush()


async def publish_all(client, video, audio=None, pace: float = 0.0):
    send_headers(client, video, audio)
    for ms, _, kind, p in interleave(video, audio):
        send_packet(client, video, ms, kind, p, audio)
        if pace:
            await asyncio.sleep(pace)
    await asyncio.sleep(0)


async def collect(player, until, timeout=10.0):
    """Events of ``player`` until ``until(events)`` is true."""
    events = []
    async with asyncio.timeout(timeout):
        while not until(events):
            events.append(await player.next_event(timeout))
    return events


def media(events, cls):
    return [e for e in events if isinstance(e, cls) and e.tag.packet is P.CODED_FRAMES]


def seqs(events, cls):
    return [e for e in events if isinstance(e, cls) and e.tag.packet is P.SEQUENCE_START]


__all__ = ["E", "collect", "interleave", "media", "publish_all", "send_headers", "send_packet", "seqs"]
