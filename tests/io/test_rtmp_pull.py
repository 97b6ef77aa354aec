"""The rtmp:// puller against our RTMP listener on loopback: a publisher's frames arrive in
the pulling hub unchanged (same payloads, timestamps, configs), the upstream's unpublish ends
the pull with a clear error, refused and missing upstreams fail with clear errors."""

from __future__ import annotations

import asyncio

import pytest

from rtmpgop.config import SourceConfig
from rtmpgop.io import rtmp_pull
from rtmpgop.io.rtmp_client import RtmpClientError, open_url
from rtmpgop.media import AccessUnit, Codec
from tests.io.rtmp_helpers import aac, h264, publish_all, run


class Sink:
    def __init__(self):
        self.tracksets = []
        self.units = []

    def set_tracks(self, tracks, metadata=None):
        self.tracksets.append((list(tracks), dict(metadata or ())))

    def push(self, au):
        self.units.append(au)


async def until(cond, timeout=10.0):
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.01)


@run
async def test_pull_relays_publisher_then_reports_its_end(hub, lst, base):
    sink = Sink()
    task = asyncio.get_running_loop().create_task(
        rtmp_pull.pull(SourceConfig("relay", base + "/live/cam"), sink))
    await until(lambda: hub.get("live/cam") is not None)  # the pull waits as a player
    pub = await open_url(base + "/live/cam", "publish")
    video, audio = h264(), aac()
    await publish_all(pub, video, audio)
    n = len(video.packets) + len(audio.packets)
    await until(lambda: len(sink.units) >= n - 2)  # the last GoP may still be in flight
    pub.close()
    with pytest.raises(rtmp_pull.RtmpSourceError, match="Play.UnpublishNotify"):
        await asyncio.wait_for(task, 10)
    (tracks, meta), = sink.tracksets
    assert [t.codec for t in tracks] == [Codec.H264, Codec.AAC]
    assert tracks[0].config.record == video.config and tracks[1].config.record == audio.config
    assert meta["width"] == 320.0
    vids = [u for u in sink.units if isinstance(u, AccessUnit) and u.track == 0]
    assert [u.payload for u in vids] == [p.data for p in video.packets][:len(vids)]
    tb = video.time_base  # RTMP carries milliseconds: compare what survives that
    assert vids[0].keyframe and [u.pts - u.dts for u in vids] == [
        (int(p.pts * tb * 1000) - int(p.dts * tb * 1000)) * 90 for p in video.packets][:len(vids)]


@run
async def test_refused_and_missing_upstreams(hub, lst, base):
    port = int(base.rsplit(":", 1)[1])
    with pytest.raises(OSError):
        await rtmp_pull.pull(SourceConfig("x", "rtmp://127.0.0.1:9/live/x"), Sink())
    with pytest.raises((RtmpClientError, rtmp_pull.RtmpSourceError)):
        # a stream path our server refuses to play (characters outside its set)
        await rtmp_pull.pull(SourceConfig("x", f"rtmp://127.0.0.1:{port}/live/x*y"), Sink())
