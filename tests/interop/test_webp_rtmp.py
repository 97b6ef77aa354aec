"""WebP path through the whole App: ffmpeg publishes over RTMP and headless Chromium draws the
pattern from ``/view/PATH``; PyAV publishes HEVC and AV1 over Enhanced RTMP and a WebSocket client
gets WebP pictures that PyAV decodes to the pattern; ffmpeg decodes ``/mjpeg/PATH``."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys

import av
import numpy as np
import pytest
from websockets.sync.client import connect

from fixtures.media import make_media_file
from tests.interop.rtmp_tools import FFMPEG, channel_stat, publish, stop, wait_until
from tests.interop.test_webp_browser import CHROMIUM, assert_canvas_pattern, watch_in_chromium

pytestmark = pytest.mark.interop

W, H = 320, 240


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """4 s of 320x240 H.264 (B-frames, 1 s GoPs) + AAC, published in a loop."""
    path = tmp_path_factory.mktemp("webp") / "clip.mp4"
    return make_media_file(str(path), seconds=4.0, gop=30, bframes=True)


def webp_pixels(data: bytes) -> np.ndarray:
    """RGB pixels of one WebP, decoded by PyAV (FFmpeg's webp decoder)."""
    ctx = av.CodecContext.create("webp", "r")
    (frame,) = ctx.decode(av.Packet(data))
    return frame.to_ndarray(format="rgb24")


def assert_pattern(img: np.ndarray) -> None:
    body = img[H // 8:].astype(int)
    ys = np.arange(H)[H // 8:]
    assert np.abs(body[:, :, 1].mean(axis=1) - ys * 255 / (H - 1)).max() < 16
    assert abs(body[:, :, 2].mean() - 128) < 12


@pytest.mark.skipif(not shutil.which(CHROMIUM), reason="Debian chromium not installed")
def test_chromium_views_an_rtmp_publish(server, clip):
    path = "live/webp"
    pub = publish(f"rtmp://127.0.0.1:{server.ports['rtmp']}/{path}", clip, loop=True)
    try:
        wait_until(lambda: channel_stat(server, path, "frames_in"), timeout=15, what="publish")
        first, second, overlay = watch_in_chromium(f"http://127.0.0.1:{server.ports['http']}/view/{path}")
        # ffmpeg's MJPEG reader on the same stream
        out = subprocess.run([FFMPEG, "-nostdin", "-v", "error", "-i",
                              f"http://127.0.0.1:{server.ports['http']}/mjpeg/{path}", "-frames:v", "3",
                              "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True, timeout=30)
    finally:
        stop(pub)
    assert first["info"]["codec"] == "h264"
    assert "h264" in overlay and f"{W}x{H}" in overlay
    assert_canvas_pattern(first, second)
    assert out.returncode == 0, out.stderr.decode()[-500:]
    frames = np.frombuffer(out.stdout, np.uint8).reshape(-1, H, W, 3)
    assert len(frames) == 3
    for f in frames:
        assert_pattern(f)


@pytest.mark.parametrize("vcodec", ["hevc", "av1"])
def test_websocket_viewer_of_enhanced_rtmp(server, vcodec):
    path = f"live/webp-{vcodec}"
    url = f"rtmp://127.0.0.1:{server.ports['rtmp']}/{path}"
    with connect(f"ws://127.0.0.1:{server.ports['ws']}/ws/{path}", compression=None,
                 open_timeout=10) as ws:
        wait_until(lambda: channel_stat(server, path, "subscribers"), what="renderer subscribed")
        pub = subprocess.Popen([sys.executable, "-m", "tests.interop.pyav_rtmp", "publish", url, vcodec,
                                "aac", "45"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            infos, images = [], []
            while len(images) < 3:
                msg = ws.recv(timeout=30)
                (images if isinstance(msg, bytes) else infos).append(msg)
            out, err = pub.communicate(timeout=30)
            assert pub.returncode == 0, err.decode()[-800:]
        finally:
            stop(pub)
    info = json.loads(infos[0])
    assert info["codec"] == vcodec and (info["width"], info["height"]) == (W, H)
    for data in images:
        img = webp_pixels(data)
        assert img.shape == (H, W, 3)
        assert_pattern(img)
