"""Renderer service: starts with the first viewer, stops with the last, never builds a backlog."""

import asyncio

from fixtures.media import encode_video
from rtmpgop.channels import Hub
from rtmpgop.config import Config
from rtmpgop.io import webp_worker
from rtmpgop.io.webp_worker import RenderManager
from rtmpgop.media import VIDEO_CLOCK, AccessUnit, Codec, CodecConfig, Track

CFG = Config(webp_max_fps=0)


class ListViewer:
    def __init__(self):
        self.infos, self.frames = [], []
        self.event = asyncio.Event()

    def send_info(self, info):
        self.infos.append(info)

    def send_frame(self, frame):
        self.frames.append(frame)
        self.event.set()


async def wait_for(cond, deadline=10.0):
    async with asyncio.timeout(deadline):
        while not cond():
            await asyncio.sleep(0.01)


def setup_channel(hub, stream):
    ch = hub.publish("live/a", "pub")
    ch.set_tracks([Track(0, CodecConfig(Codec.H264, stream.config, stream.width, stream.height), VIDEO_CLOCK),
                   Track(1, CodecConfig(Codec.AAC, b"\x12\x10", sample_rate=48000, channels=2), 48000)])
    return ch


def push_loop(ch, stream, k):
    n = len(stream.packets)
    for p in stream.packets:
        off = k * n * 3000
        ch.push(AccessUnit(0, p.dts + off, p.pts + off, p.keyframe, p.data))
        ch.push(AccessUnit(1, p.dts + off, p.dts + off, True, b"\x21\x00"))  # audio is ignored


def test_starts_with_first_viewer_and_stops_with_last():
    stream = encode_video("h264", frames=10, width=96, height=64, bframes=True, gop=10)

    async def main():
        hub = Hub()
        mgr = RenderManager(hub, CFG)
        ch = setup_channel(hub, stream)
        push_loop(ch, stream, 0)
        assert mgr.streams == {} and len(ch.subscriptions) == 0  # nobody watches, nothing decodes
        v1, v2 = ListViewer(), ListViewer()
        sr = mgr.attach("/live/a/", v1)
        assert len(ch.subscriptions) == 1
        for k in range(1, 4):
            push_loop(ch, stream, k)
            await asyncio.sleep(0.05)
        await wait_for(lambda: sr.renderer.frames_in >= 30)
        await wait_for(lambda: v1.frames)
        mgr.attach("live/a", v2)
        assert v2.frames == [sr.latest] and v2.infos == [sr.info]  # latest picture at once
        mgr.detach("live/a", v1)
        assert "live/a" in mgr.streams
        mgr.detach("live/a", v2)
        assert mgr.streams == {} and len(ch.subscriptions) == 0
        await mgr.close()
        assert not sr.thread.is_alive()
        return sr, v1

    sr, v1 = asyncio.run(main())
    assert v1.infos[0].width == 96
    assert all(f.webp[:4] == b"RIFF" for f in v1.frames)
    assert sr.renderer._decoder is None  # flushed and dropped on stop


def test_a_renderer_behind_jumps_to_the_newest_gop():
    stream = encode_video("h264", frames=10, width=96, height=64, bframes=True, gop=10)

    async def main():
        hub = Hub()
        mgr = RenderManager(hub, CFG)
        ch = setup_channel(hub, stream)
        v = ListViewer()
        sr = mgr.attach("live/a", v)
        for k in range(40):  # 40 GoPs in one go: far more than the worker can render meanwhile
            push_loop(ch, stream, k)
            assert sr._pending_frames <= webp_worker.MAX_PENDING_HARD
        assert sr.jumps > 0 and sr.frames_dropped > 0
        await wait_for(lambda: not sr._pending)
        await wait_for(lambda: v.frames and v.frames[-1].pts >= 39 * 10 * 3000)
        await mgr.close()
        return sr, v

    sr, v = asyncio.run(main())
    assert sr.renderer.frames_in < 400  # most GoPs never reached the decoder
    # the newest GoP was shown; its last two frames wait in the decoder's B-frame reorder delay
    assert 39 * 10 <= v.frames[-1].pts // 3000 <= 39 * 10 + 9


def test_unpublish_shows_the_frames_the_decoder_held():
    stream = encode_video("h264", frames=10, width=96, height=64, bframes=True, gop=10)

    async def main():
        hub = Hub()
        mgr = RenderManager(hub, CFG)
        v = ListViewer()
        sr = mgr.attach("live/a", v)  # watching before anybody publishes
        ch = setup_channel(hub, stream)
        for p in stream.packets:
            ch.push(AccessUnit(0, p.dts, p.pts, p.keyframe, p.data))
            await asyncio.sleep(0.02)
        hub.unpublish(ch, "pub")
        last = stream.packets[0].pts + 9 * 3000
        await wait_for(lambda: v.frames and v.frames[-1].pts == last)
        await mgr.close()
        return sr, v

    sr, v = asyncio.run(main())
    assert [f.pts for f in v.frames] == sorted({f.pts for f in v.frames})
    assert v.frames[-1].pts == stream.packets[0].pts + 9 * 3000


def test_config_values_out_of_range_fail_at_start():
    import pytest

    from rtmpgop.errors import ConfigError

    for key, bad in (("webp_quality", 101), ("webp_method", 7), ("webp_max_width", -1), ("webp_max_fps", -1.0)):
        with pytest.raises(ConfigError) as e:
            RenderManager(Hub(), Config(**{key: bad}))
        assert e.value.key == key
    s = webp_worker.settings_from(Config(webp_quality=50, webp_method=2, webp_max_width=640, webp_max_fps=10))
    assert (s.quality, s.method, s.max_width, s.max_fps, s.jpeg) == (50, 2, 640, 10, False)
