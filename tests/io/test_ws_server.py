"""WebSocket server: WebP per binary message, info as text, latest image at once, slow viewers
skip, origins, and the renderer that only runs while someone watches."""

import asyncio
import io
import json

import numpy as np
import pytest
import websockets
from PIL import Image

from fixtures.media import encode_video
from rtmpgop.channels import Hub
from rtmpgop.config import Config
from rtmpgop.io import ws_server
from rtmpgop.io.webp_worker import RenderManager
from rtmpgop.media import VIDEO_CLOCK, AccessUnit, Codec, CodecConfig, Track

CFG = Config(host="127.0.0.1", ws_port=0)


@pytest.fixture(scope="module")
def h264():
    return encode_video("h264", frames=30, width=160, height=96, bframes=True, gop=15)


def publish(hub, path, stream):
    ch = hub.publish(path, "test-publisher")
    ch.set_tracks([Track(0, CodecConfig(Codec.H264, stream.config, stream.width, stream.height),
                         VIDEO_CLOCK)])
    return ch


async def pace(ch, stream, fps=30, loops=1):
    n = len(stream.packets)
    for k in range(loops):
        for p in stream.packets:
            off = k * n * 3000
            ch.push(AccessUnit(0, p.dts + off, p.pts + off, p.keyframe, p.data))
            await asyncio.sleep(1 / fps)


async def receive(ws, count, deadline=10.0):
    infos, images = [], []
    async with asyncio.timeout(deadline):
        while len(images) < count:
            msg = await ws.recv()
            (images if isinstance(msg, bytes) else infos).append(msg)
    return infos, images


def test_frame_header():
    assert ws_server.frame_header(2, 5) == b"\x82\x05"
    assert ws_server.frame_header(2, 200) == b"\x82\x7e\x00\xc8"
    assert ws_server.frame_header(1, 70000) == b"\x81\x7f" + (70000).to_bytes(8, "big")


def test_viewer_receives_webp_and_info(h264):
    async def main():
        hub = Hub()
        renders = RenderManager(hub, CFG)
        lst = await ws_server.start(hub, CFG, "127.0.0.1", 0, renders=renders)
        ch = publish(hub, "live/cam", h264)
        try:
            # nobody watches: nothing is decoded
            await pace(ch, h264, fps=300)
            assert renders.streams == {}
            async with websockets.connect(f"ws://127.0.0.1:{lst.port}/ws/live/cam",
                                          compression=None) as ws:
                assert ws.response.headers.get("Sec-WebSocket-Extensions") is None
                task = asyncio.create_task(pace(ch, h264, loops=2))
                infos, images = await receive(ws, 10)
                task.cancel()
                sr = renders.streams["live/cam"]
                assert len(lst.viewers) == 1
                # a second viewer gets the info and the latest image at once
                async with websockets.connect(f"ws://127.0.0.1:{lst.port}/ws/live/cam") as ws2:
                    infos2, images2 = await receive(ws2, 1, deadline=2)
                    assert images2[0] == sr.latest.webp
            await asyncio.sleep(0.05)
            for _ in range(100):
                if not renders.streams:
                    break
                await asyncio.sleep(0.01)
            assert renders.streams == {}  # last viewer left: renderer stopped
        finally:
            await renders.close()
            await lst.close()
        return infos, images, infos2

    infos, images, infos2 = asyncio.run(main())
    info = json.loads(infos[0])
    assert info == {"type": "info", "codec": "h264", "width": 160, "height": 96,
                    "source_width": 160, "source_height": 96, "fps": 0.0}
    assert json.loads(infos2[0]) == info
    for data in images:
        img = Image.open(io.BytesIO(data))
        assert img.format == "WEBP" and img.size == (160, 96)
        assert np.asarray(img.convert("RGB"))[40:, :, 2].mean() == pytest.approx(128, abs=12)


def test_refuses_other_paths_and_origins(h264):
    async def main():
        hub = Hub()
        cfg = CFG.replace(ws_allowed_origins=("https://ok.example",))
        renders = RenderManager(hub, cfg)
        lst = await ws_server.start(hub, cfg, "127.0.0.1", 0, renders=renders)
        url = f"ws://127.0.0.1:{lst.port}"
        try:
            with pytest.raises(websockets.InvalidStatus) as e:
                await websockets.connect(url + "/other")
            assert e.value.response.status_code == 404
            with pytest.raises(websockets.InvalidStatus) as e:
                await websockets.connect(url + "/ws/live/a", origin="https://evil.example")
            assert e.value.response.status_code == 403
            async with websockets.connect(url + "/ws/live/a", origin="https://ok.example") as ws:
                assert ws.state.name == "OPEN"
        finally:
            await renders.close()
            await lst.close()

    asyncio.run(main())


class FakeTransport:
    def __init__(self, buffered):
        self.buffered = buffered
        self.written = []

    def get_write_buffer_size(self):
        return self.buffered

    def is_closing(self):
        return False

    def writelines(self, bufs):
        self.written.append(b"".join(bufs))


class FakeConn:
    def __init__(self, buffered):
        from websockets.protocol import State
        self.transport = FakeTransport(buffered)
        self.send_in_progress = None
        self.protocol = type("P", (), {"state": State.OPEN})()


def test_slow_viewer_skips_frames_until_it_drains():
    from rtmpgop.subscribers.webp import RenderedFrame
    conn = FakeConn(ws_server.VIEWER_MAX_BUFFER + 1)
    v = ws_server.WsViewer(conn, "live/a")
    f = RenderedFrame(1, 0, 2, 2, b"RIFF....WEBP")
    v.send_frame(f)
    assert conn.transport.written == [] and v.frames_skipped == 1
    conn.transport.buffered = 0
    v.send_frame(f)
    assert conn.transport.written == [b"\x82\x0cRIFF....WEBP"] and v.frames_sent == 1


def test_pong_for():
    assert ws_server.pong_for('{"type":"ping","t":12.5}') == b'{"type":"pong","t":12.5}'
    for bad in ["", "x", "[]", '{"type":"ping"}', '{"type":"ping","t":"1"}', '{"type":"ping","t":true}',
                '{"type":"other","t":1}']:
        assert ws_server.pong_for(bad) is None
