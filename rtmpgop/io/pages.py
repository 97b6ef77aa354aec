"""HTTP routes of the browser path: the canvas viewer page, still-frame ingest, MJPEG.

- ``GET /view/PATH``: ``web/view.html``, which opens ``ws://HOST:WS_PORT/ws/PATH`` (ws_server.py)
  and draws each WebP on a ``<canvas>``. The WebSocket port is written into the page.
- ``POST /ingest/PATH``: an ``image/jpeg`` or ``image/webp`` body is published as one frame of a
  channel (``Codec.JPEG``/``Codec.WEBP``, every frame a keyframe) that viewers watch like any
  other. The first POST claims the path; ``INGEST_IDLE_TIMEOUT`` without a POST releases it.
  Connections stay alive between POSTs (HTTP/1.1 keep-alive); aiohttp has no HTTP/2 server, so
  HTTP/2 needs a proxy in front.
- ``GET /mjpeg/PATH``: ``multipart/x-mixed-replace`` JPEG stream for ``<img>`` tags and VLC/ffmpeg.
  Each response holds one slot with the newest JPEG; a slow client skips to the newest frame.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiohttp import web

from rtmpgop.channels import Channel, Hub, InvalidPath, normalize_path
from rtmpgop.errors import PathBusy
from rtmpgop.io.http_server import CORS_HEADERS, HUB_KEY, RouteSetup, web_asset
from rtmpgop.io.webp_worker import RenderManager
from rtmpgop.media import VIDEO_CLOCK, AccessUnit, Codec, CodecConfig, Track
from rtmpgop.subscribers.webp import RenderedFrame, StreamInfo

log = logging.getLogger(__name__)

INGEST_IDLE_TIMEOUT = 10.0
"""Seconds without a POSTed frame after which an ingest path is unpublished, so a producer that
went away frees the path for another publisher."""

INGEST_TYPES = {"image/jpeg": Codec.JPEG, "image/jpg": Codec.JPEG, "image/webp": Codec.WEBP}

MJPEG_BOUNDARY = "rtmpgopframe"

MJPEG_DISCONNECT_CHECK = 0.5
"""Seconds between checks that an MJPEG client is still there while no frame comes (a static
scene or a quiet ingest): aiohttp does not cancel a handler whose client left."""

WS_PORT_PLACEHOLDER = b"__RTMPGOP_WS_PORT__"


def image_codec(content_type: str, body: bytes) -> Codec | None:
    """The codec of a POSTed image, from its Content-Type checked against its magic bytes."""
    codec = INGEST_TYPES.get(content_type.split(";")[0].strip().lower())
    if codec is Codec.JPEG and body[:3] == b"\xff\xd8\xff":
        return codec
    if codec is Codec.WEBP and body[:4] == b"RIFF" and body[8:12] == b"WEBP":
        return codec
    return None


MAX_JPEG_SEGMENTS = 64
"""JPEG segments scanned for the frame header (SOF): cameras put a few APPn/DQT/DHT before it."""

_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # DHT, JPG, DAC are not SOFs


def image_size(codec: Codec, data: bytes) -> tuple[int, int]:
    """(width, height) from a JPEG SOF or WebP VP8/VP8L/VP8X header; (0, 0) if not found.

    Only for the stream list: the renderer takes the real size from the decoder.
    """
    if codec is Codec.JPEG:
        pos = 2
        for _ in range(MAX_JPEG_SEGMENTS):
            while pos < len(data) and data[pos] == 0xFF and pos + 1 < len(data) and data[pos + 1] == 0xFF:
                pos += 1  # fill bytes
            if pos + 4 > len(data) or data[pos] != 0xFF:
                return 0, 0
            marker = data[pos + 1]
            if marker in _JPEG_SOF:
                if pos + 9 > len(data):
                    return 0, 0
                return int.from_bytes(data[pos + 7:pos + 9], "big"), int.from_bytes(data[pos + 5:pos + 7], "big")
            if marker == 0x01 or 0xD0 <= marker <= 0xD9:
                pos += 2
                continue
            pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
        return 0, 0
    if codec is Codec.WEBP and len(data) >= 30:
        chunk = data[12:16]
        if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
            return (int.from_bytes(data[26:28], "little") & 0x3FFF,
                    int.from_bytes(data[28:30], "little") & 0x3FFF)
        if chunk == b"VP8L" and data[20] == 0x2F:
            bits = int.from_bytes(data[21:25], "little")
            return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        if chunk == b"VP8X":
            return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    return 0, 0


class IngestPublisher:
    """The owner of one path fed by POSTs; unpublishes itself when the producer goes quiet."""

    def __init__(self, hub: Hub, path: str) -> None:
        self.hub = hub
        self.path = path
        self.channel: Channel = hub.publish(path, self)  # raises PathBusy
        self.codec: Codec | None = None
        self.size = (0, 0)
        self.frames = 0
        self._loop = asyncio.get_running_loop()
        self._t0 = self._loop.time()
        self._last_ts = -1
        self._timer: asyncio.TimerHandle | None = None
        self.closed = False

    def push(self, codec: Codec, body: bytes) -> None:
        size = image_size(codec, body)
        if codec is not self.codec or size != self.size:
            self.codec, self.size = codec, size
            self.channel.set_tracks([Track(0, CodecConfig(codec, b"", *size), VIDEO_CLOCK)])
        ts = max(self._last_ts + 1, int((self._loop.time() - self._t0) * VIDEO_CLOCK))
        self._last_ts = ts
        self.channel.push(AccessUnit(0, ts, ts, True, body))
        self.frames += 1
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_later(INGEST_IDLE_TIMEOUT, self.close, "ingest idle")

    def close(self, reason: str = "") -> None:
        if self.closed:
            return
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
        self.hub.unpublish(self.channel, self, reason)


class MjpegViewer:
    """An MJPEG response's slot for the newest JPEG (older ones are replaced, never queued)."""

    def __init__(self) -> None:
        self.latest: bytes | None = None
        self.event = asyncio.Event()
        self.frames_skipped = 0

    def send_info(self, info: StreamInfo) -> None:
        pass

    def send_frame(self, frame: RenderedFrame) -> None:
        if frame.jpeg is None:
            return
        if self.event.is_set():
            self.frames_skipped += 1  # the previous one was not written yet: replace it
        self.latest = frame.jpeg
        self.event.set()


def setup(renders: RenderManager, ws_port: Callable[[], int]) -> RouteSetup:
    """Routes ``/view/``, ``/ingest/`` and ``/mjpeg/``. ``ws_port()`` gives the WebSocket port."""
    ingests: dict[str, IngestPublisher] = {}

    def stream_path(request: web.Request) -> str:
        try:
            return normalize_path(request.match_info["path"])
        except InvalidPath as e:
            raise web.HTTPBadRequest(text=f"{e}\n") from None

    async def view_page(request: web.Request) -> web.Response:
        stream_path(request)
        page = web_asset("view.html").replace(WS_PORT_PLACEHOLDER, str(ws_port()).encode())
        return web.Response(body=page, content_type="text/html", headers={"Cache-Control": "no-cache"})

    async def ingest(request: web.Request) -> web.Response:
        path = stream_path(request)
        body = await request.read()
        codec = image_codec(request.headers.get("Content-Type", ""), body)
        if codec is None:
            raise web.HTTPUnsupportedMediaType(
                text="expected an image/jpeg or image/webp body matching its Content-Type\n")
        pub = ingests.get(path)
        if pub is None or pub.closed:
            try:
                pub = ingests[path] = IngestPublisher(request.app[HUB_KEY], path)
            except PathBusy:
                raise web.HTTPConflict(text=f"{path} has another publisher\n") from None
        pub.push(codec, body)
        for p in [p for p, v in ingests.items() if v.closed]:
            del ingests[p]
        return web.Response(status=204)

    async def mjpeg(request: web.Request) -> web.StreamResponse:
        path = stream_path(request)
        resp = web.StreamResponse(headers={
            **CORS_HEADERS, "Cache-Control": "no-cache, no-store",
            "Content-Type": f"multipart/x-mixed-replace; boundary={MJPEG_BOUNDARY}"})
        await resp.prepare(request)
        viewer = MjpegViewer()
        renders.attach(path, viewer, jpeg=True)
        try:
            while True:
                try:
                    await asyncio.wait_for(viewer.event.wait(), MJPEG_DISCONNECT_CHECK)
                except TimeoutError:
                    transport = request.transport
                    if transport is None or transport.is_closing():
                        break
                    continue
                viewer.event.clear()
                data = viewer.latest
                if data is None:
                    continue
                head = (f"--{MJPEG_BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                        f"Content-Length: {len(data)}\r\n\r\n").encode()
                await resp.write(head + data + b"\r\n")
        except ConnectionError:  # the client went away
            pass
        finally:
            renders.detach(path, viewer, jpeg=True)
        return resp

    def add_routes(app: web.Application) -> None:
        app.router.add_get("/view/{path:.+}", view_page)
        app.router.add_post("/ingest/{path:.+}", ingest)
        app.router.add_get("/mjpeg/{path:.+}", mjpeg)

        async def close_ingests(app: web.Application) -> None:
            for pub in ingests.values():
                pub.close("server stopping")

        app.on_shutdown.append(close_ingests)

    return add_routes
