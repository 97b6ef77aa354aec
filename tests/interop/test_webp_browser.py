"""Interop: headless Chromium (Debian ``chromium`` through Playwright) watches ``/view/PATH``;
ffmpeg reads ``/mjpeg/PATH``. The page must draw the published pattern on its canvas and keep
counting frames."""

import asyncio
import shutil
import subprocess
import threading

import numpy as np
import pytest

from fixtures.media import encode_video
from rtmpgop.channels import Hub
from rtmpgop.config import Config
from rtmpgop.io import http_server, pages, ws_server
from rtmpgop.io.webp_worker import RenderManager
from rtmpgop.media import VIDEO_CLOCK, AccessUnit, Codec, CodecConfig, Track
from tests.interop.browser import CHROMIUM, chromium_page

pytestmark = pytest.mark.interop

W, H = 320, 240


class PacedServer:
    """HTTP + WebSocket servers and a paced publisher of the test pattern, on a loop thread."""

    def __init__(self, stream, path="live/pattern"):
        self.stream, self.path = stream, path
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)

    async def _start(self):
        cfg = Config(host="127.0.0.1")
        self.hub = Hub()
        self.renders = RenderManager(self.hub, cfg)
        self.ws = await ws_server.start(self.hub, cfg, "127.0.0.1", 0, renders=self.renders)
        self.http = await http_server.start(self.hub, cfg, "127.0.0.1", 0,
                                            setups=[pages.setup(self.renders, lambda: self.ws.port)])
        self.task = asyncio.create_task(self._publish())

    async def _publish(self):
        s = self.stream
        ch = self.hub.publish(self.path, self)
        ch.set_tracks([Track(0, CodecConfig(Codec.H264, s.config, s.width, s.height), VIDEO_CLOCK)])
        n, k = len(s.packets), 0
        while True:  # loop the clip forever, timestamps continuing
            for p in s.packets:
                off = k * n * 3000
                ch.push(AccessUnit(0, p.dts + off, p.pts + off, p.keyframe, p.data))
                await asyncio.sleep(1 / 30)
            k += 1

    def close(self):
        async def stop():
            self.task.cancel()
            await self.http.close()
            await self.renders.close()
            await self.ws.close()
        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(20)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture(scope="module")
def server():
    srv = PacedServer(encode_video("h264", frames=60, width=W, height=H, bframes=True, gop=30))
    yield srv
    srv.close()


READ_CANVAS = """() => {
  const c = document.getElementById('screen');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  return {w: c.width, h: c.height, frames: window.rtmpgop.frames, info: window.rtmpgop.info,
          px: Array.from(d)};
}"""


@pytest.mark.skipif(not shutil.which(CHROMIUM), reason="Debian chromium not installed")
def test_chromium_canvas_shows_the_pattern(server):
    first, second, overlay = watch_in_chromium(f"http://127.0.0.1:{server.http.port}/view/{server.path}")
    assert first["info"]["codec"] == "h264" and first["info"]["width"] == W
    assert "fps" in overlay and f"{W}x{H}" in overlay
    assert_canvas_pattern(first, second)


def watch_in_chromium(url: str, more_frames: int = 10) -> tuple[dict, dict, str]:
    """Open the viewer page; return two canvas reads ``more_frames`` frames apart and the overlay."""
    with chromium_page() as page:
        page.goto(url)
        page.wait_for_function("window.rtmpgop && window.rtmpgop.frames >= 3", timeout=20000)
        first = page.evaluate(READ_CANVAS)
        page.wait_for_function(f"window.rtmpgop.frames >= {first['frames'] + more_frames}",
                               timeout=20000)
        second = page.evaluate(READ_CANVAS)
        overlay = page.inner_text("#overlay")
        page.screenshot(path="/tmp/rtmpgop_view.png")
    return first, second, overlay


def assert_canvas_pattern(first: dict, second: dict, w: int = W, h: int = H) -> None:
    """Both canvas reads show ``fixtures.media.pattern_frame``, and more frames were drawn by the
    second. (No "the picture moved" check: the looped clip repeats, so two reads can match.)"""
    assert (first["w"], first["h"]) == (w, h)
    assert second["frames"] > first["frames"]  # the frame counter advances
    for snap in (first, second):
        img = np.array(snap["px"], dtype=np.uint8).reshape(h, w, 4)[:, :, :3].astype(int)
        assert img.std() > 20  # not blank
        body = img[h // 8:]  # below the frame-counter bar
        # the pattern: green is the vertical gradient, blue is 128, red a horizontal gradient
        ys = np.arange(h)[h // 8:]
        assert np.abs(body[:, :, 1].mean(axis=1) - ys * 255 / (h - 1)).max() < 16
        assert abs(body[:, :, 2].mean() - 128) < 10
        step = (body[:, 40:w - 40:4, 0] - body[:, 36:w - 44:4, 0]) % 256  # scrolls, keeps its slope
        assert abs(np.median(step) - 4 * 255 / (w - 1)) < 2


@pytest.mark.skipif(not shutil.which(CHROMIUM), reason="Debian chromium not installed")
def test_chromium_reconnects_after_the_socket_drops(server):
    def drop_viewers():
        async def drop():
            n = len(server.ws.viewers)
            for v in list(server.ws.viewers):
                v.conn.transport.abort()
            return n
        return asyncio.run_coroutine_threadsafe(drop(), server.loop).result(5)

    with chromium_page() as page:
        page.goto(f"http://127.0.0.1:{server.http.port}/view/{server.path}")
        page.wait_for_function("window.rtmpgop && window.rtmpgop.frames >= 3", timeout=20000)
        assert drop_viewers() == 1
        page.wait_for_function("!window.rtmpgop.connected || window.rtmpgop.connects >= 2", timeout=5000)
        before = page.evaluate("window.rtmpgop.frames")
        page.wait_for_function(
            f"window.rtmpgop.connects >= 2 && window.rtmpgop.frames >= {before + 5}", timeout=20000)
        state = page.evaluate("({connects: window.rtmpgop.connects, connected: window.rtmpgop.connected})")
    assert state == {"connects": 2, "connected": True}


def test_ffmpeg_reads_mjpeg(server):
    ffmpeg = shutil.which("ffmpeg")
    if not ffmpeg:
        pytest.skip("ffmpeg not installed")
    url = f"http://127.0.0.1:{server.http.port}/mjpeg/{server.path}"
    proc = subprocess.run([ffmpeg, "-hide_banner", "-loglevel", "error", "-i", url, "-frames:v", "5",
                           "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True, timeout=30)
    assert proc.returncode == 0, proc.stderr.decode()
    frames = np.frombuffer(proc.stdout, np.uint8).reshape(-1, H, W, 3)
    assert len(frames) == 5
    body = frames[:, H // 8:].astype(int)
    assert abs(body[:, :, :, 2].mean() - 128) < 12
    ys = np.arange(H)[H // 8:]
    assert np.abs(body[:, :, :, 1].mean(axis=(0, 2)) - ys * 255 / (H - 1)).max() < 16
