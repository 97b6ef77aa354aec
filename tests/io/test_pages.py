"""/view page, POST /ingest frames reaching WebSocket viewers, /mjpeg multipart stream."""

import asyncio
import io
import json

import aiohttp
import numpy as np
import websockets
from PIL import Image

from fixtures.media import solid_frame
from rtmpgop.channels import Hub
from rtmpgop.config import Config
from rtmpgop.io import http_server, pages, ws_server
from rtmpgop.io.webp_worker import RenderManager
from rtmpgop.media import Codec
from tests.images import solid_image

CFG = Config(host="127.0.0.1")


def jpeg(rgb, w=64, h=48):
    return solid_image("JPEG", rgb, w, h, quality=92)


def webp(rgb, w=64, h=48):
    return solid_image("WEBP", rgb, w, h, quality=92)


def mean_rgb(data):
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).mean(axis=(0, 1))


async def servers(hub):
    renders = RenderManager(hub, CFG)
    ws = await ws_server.start(hub, CFG, "127.0.0.1", 0, renders=renders)
    http = await http_server.start(hub, CFG, "127.0.0.1", 0,
                                   setups=[pages.setup(renders, lambda: ws.port)])
    return renders, ws, http


async def close(renders, ws, http):
    await http.close()
    await renders.close()
    await ws.close()


def test_image_codec():
    assert pages.image_codec("image/jpeg", jpeg((1, 2, 3))) is Codec.JPEG
    assert pages.image_codec("image/webp; q=1", webp((1, 2, 3))) is Codec.WEBP
    assert pages.image_codec("image/webp", jpeg((1, 2, 3))) is None
    assert pages.image_codec("text/plain", b"\xff\xd8\xff") is None
    assert pages.image_codec("image/jpeg", b"") is None


def test_view_page_and_posted_frames_reach_viewers():
    async def main():
        hub = Hub()
        renders, ws, http = await servers(hub)
        base = f"http://127.0.0.1:{http.port}"
        try:
            async with aiohttp.ClientSession() as s:
                async with s.get(base + "/view/live/cam1") as r:
                    page = await r.text()
                    assert r.status == 200 and r.content_type == "text/html"
                assert f'content="{ws.port}"' in page and "createImageBitmap" in page
                async with s.post(base + "/ingest/live/still", data=b"hello",
                                  headers={"Content-Type": "text/plain"}) as r:
                    assert r.status == 415
                async with s.post(base + "/ingest/live/still", data=jpeg((220, 30, 30)),
                                  headers={"Content-Type": "image/jpeg"}) as r:
                    assert r.status == 204
                async with websockets.connect(f"ws://127.0.0.1:{ws.port}/ws/live/still") as wsc:
                    info = json.loads(await asyncio.wait_for(wsc.recv(), 5))
                    streams = http_server.streams_info(hub)
                    first = await asyncio.wait_for(wsc.recv(), 5)  # the latest frame, at once
                    # the same keep-alive connection posts the next frames
                    async with s.post(base + "/ingest/live/still", data=jpeg((30, 220, 30)),
                                      headers={"Content-Type": "image/jpeg"}) as r:
                        assert r.status == 204
                    second = await asyncio.wait_for(wsc.recv(), 5)
                    w = webp((30, 30, 220))
                    async with s.post(base + "/ingest/live/still", data=w,
                                      headers={"Content-Type": "image/webp"}) as r:
                        assert r.status == 204
                    third = await asyncio.wait_for(wsc.recv(), 5)
                    while isinstance(third, str):
                        third = await asyncio.wait_for(wsc.recv(), 5)
                # another publisher on the path is refused while ingest holds it
                from rtmpgop.errors import PathBusy
                try:
                    hub.publish("live/still", "rtmp")
                    raise AssertionError("path was free")
                except PathBusy:
                    pass
        finally:
            await close(renders, ws, http)
        return info, first, second, third, w, streams

    info, first, second, third, w, streams = asyncio.run(main())
    (s,) = streams
    assert s["path"] == "live/still" and s["tracks"][0]["codec"] == "mjpeg"
    assert (s["tracks"][0]["width"], s["tracks"][0]["height"]) == (64, 48)
    assert info["type"] == "info" and (info["width"], info["height"]) == (64, 48)
    assert info["codec"] == "mjpeg"
    assert mean_rgb(first)[0] > 180 and Image.open(io.BytesIO(first)).format == "WEBP"
    assert mean_rgb(second)[1] > 180
    assert third == w  # a WebP that fits is passed through


def test_ingest_busy_path_is_409():
    async def main():
        hub = Hub()
        hub.publish("live/taken", "rtmp-publisher")
        renders, ws, http = await servers(hub)
        try:
            async with aiohttp.ClientSession() as s:
                async with s.post(f"http://127.0.0.1:{http.port}/ingest/live/taken", data=jpeg((1, 1, 1)),
                                  headers={"Content-Type": "image/jpeg"}) as r:
                    return r.status
        finally:
            await close(renders, ws, http)

    assert asyncio.run(main()) == 409


def test_mjpeg_stream_of_posted_frames():
    async def main():
        hub = Hub()
        renders, ws, http = await servers(hub)
        base = f"http://127.0.0.1:{http.port}"
        parts = []
        try:
            async with aiohttp.ClientSession() as s:
                async with s.post(base + "/ingest/live/m", data=jpeg((200, 200, 20)),
                                  headers={"Content-Type": "image/jpeg"}) as r:
                    assert r.status == 204
                async with s.get(base + "/mjpeg/live/m") as r:
                    assert r.headers["Content-Type"].startswith("multipart/x-mixed-replace")
                    assert r.headers["Access-Control-Allow-Origin"] == "*"
                    reader = aiohttp.MultipartReader.from_response(r)
                    # the frame posted before connecting comes first, then each new one
                    for rgb in [None, (20, 20, 200), (20, 200, 20)]:
                        if rgb is not None:
                            async with s.post(base + "/ingest/live/m", data=jpeg(rgb),
                                              headers={"Content-Type": "image/jpeg"}) as r2:
                                assert r2.status == 204
                        part = await asyncio.wait_for(reader.next(), 5)
                        assert part.headers["Content-Type"] == "image/jpeg"
                        parts.append(await part.read())
                for _ in range(100):  # the renderer stops with its last viewer
                    if not renders.streams:
                        break
                    await asyncio.sleep(0.02)
                assert renders.streams == {}
        finally:
            await close(renders, ws, http)
        return parts

    parts = asyncio.run(main())
    assert all(p[:2] == b"\xff\xd8" for p in parts)
    colours = [mean_rgb(p) for p in parts]
    assert colours[0][0] > 150 and colours[0][1] > 150  # yellow
    assert colours[1][2] > 150  # blue
    assert colours[2][1] > 150 and colours[2][0] < 100  # green


def test_image_size_from_headers():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    buf = io.BytesIO()
    Image.fromarray(solid_frame((1, 2, 3), 70, 30)).save(buf, "WEBP", lossless=True)
    lossless = buf.getvalue()
    buf = io.BytesIO()
    Image.fromarray(np.dstack([solid_frame((1, 2, 3), 33, 17), np.full((17, 33, 1), 128, np.uint8)]),
                    "RGBA").save(buf, "WEBP", quality=80, exif=b"Exif\x00\x00II*\x00")
    extended = buf.getvalue()
    table = [
        ("jpeg", Codec.JPEG, jpeg((1, 2, 3), 64, 48), (64, 48)),
        ("jpeg progressive", Codec.JPEG, _progressive_jpeg(40, 24), (40, 24)),
        ("webp lossy VP8", Codec.WEBP, webp((1, 2, 3), 64, 48), (64, 48)),
        ("webp lossless VP8L", Codec.WEBP, lossless, (70, 30)),
        ("webp extended VP8X", Codec.WEBP, extended, (33, 17)),
        ("truncated jpeg", Codec.JPEG, jpeg((1, 2, 3))[:20], (0, 0)),
        ("not an image", Codec.WEBP, b"RIFF\x00\x00\x00\x00WEBPnope" + bytes(20), (0, 0)),
    ]
    for name, codec, data, size in table:
        assert pages.image_size(codec, data) == size, name
        assert pages.image_size(codec, data + b"trailing") == size, name  # trailing bytes ignored

    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=64), st.sampled_from([Codec.JPEG, Codec.WEBP]))
    def fuzz(data, codec):
        w, h = pages.image_size(codec, b"\xff\xd8" + data if codec is Codec.JPEG else data)
        assert w >= 0 and h >= 0

    fuzz()


def _progressive_jpeg(w, h):
    buf = io.BytesIO()
    Image.fromarray(solid_frame((9, 9, 9), w, h)).save(buf, "JPEG", progressive=True)
    assert b"\xff\xc2" in buf.getvalue()
    return buf.getvalue()
