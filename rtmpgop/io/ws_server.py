"""WebSocket server (RFC 6455, ``websockets`` library, default port 8889): ``/ws/PATH`` streams WebP.

Protocol seen by the viewer page (``web/view.html``):

- each binary message is exactly one WebP image (a complete RIFF file);
- a text message carries the stream info as JSON (``{"type":"info","width":..,"height":..,
  "codec":..,"fps":..}``), sent on connect and whenever it changes;
- a text message ``{"type":"ping","t":T}`` from the viewer is answered ``{"type":"pong","t":T}``
  (the page shows half the round trip in its latency figure);
- permessage-deflate is off (WebP is already compressed; deflate would cost CPU per viewer).

Fan-out: the renderer encodes a frame once and calls ``send_frame`` of every viewer in one
synchronous loop. Each send frames the message once (``frame_header``) and writes the header and
the shared payload with ``transport.writelines``: no per-viewer copy, no task, no await. A viewer
whose transport buffer holds more than ``VIEWER_MAX_BUFFER`` bytes skips frames until it drains,
so a slow viewer costs bounded memory and never delays the others. Origins can be restricted
(``Config.ws_allowed_origins``; empty = any).
"""

from __future__ import annotations

import http
import json
import logging
import socket
import struct

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

from rtmpgop.channels import Hub, InvalidPath, normalize_path
from rtmpgop.config import Config
from rtmpgop.io.webp_worker import RenderManager
from rtmpgop.media import Statistics
from rtmpgop.subscribers.webp import RenderedFrame, StreamInfo

log = logging.getLogger(__name__)

ws_log = logging.getLogger(__name__ + ".websockets")
"""The ``websockets`` library's logger for our server: it says "connection open/closed" at INFO
for every viewer, which is noise with thousands of them. Warnings and errors still show; set this
logger to DEBUG to see the handshakes."""
ws_log.setLevel(logging.WARNING)

WS_PREFIX = "/ws/"

VIEWER_MAX_BUFFER = 256 * 1024
"""Bytes queued in a viewer's transport past which it skips frames: a few frames of 720p WebP,
a fraction of a second on any link that can show the stream at all."""

VIEWER_SNDBUF = 128 * 1024
"""Kernel send buffer of a viewer socket (Linux doubles it: 256 KiB). Left to autotuning it grows
to 4 MiB on loopback and LANs, i.e. hundreds of small frames of lag before our own buffer limit
sees anything; 256 KiB still covers 20 Mbit/s at 100 ms RTT."""

MAX_INCOMING_MESSAGE = 4096
"""Viewers send nothing but control frames; a larger message is a misbehaving client."""

PING_INTERVAL = 20.0
"""Seconds between pings, to find viewers that vanished without a FIN (laptop lid closed)."""

OP_TEXT = 0x1
OP_BINARY = 0x2


def frame_header(opcode: int, length: int) -> bytes:
    """Header of one unmasked, unfragmented server-to-client frame (RFC 6455 5.2)."""
    if length < 126:
        return struct.pack("!BB", 0x80 | opcode, length)
    if length < 1 << 16:
        return struct.pack("!BBH", 0x80 | opcode, 126, length)
    return struct.pack("!BBQ", 0x80 | opcode, 127, length)


def pong_for(message: str) -> bytes | None:
    """The answer to a viewer's ``{"type":"ping","t":T}`` text message, or None to ignore it."""
    try:
        msg = json.loads(message)
    except ValueError:
        return None
    if not isinstance(msg, dict) or msg.get("type") != "ping":
        return None
    t = msg.get("t")
    if not isinstance(t, (int, float)) or isinstance(t, bool):
        return None
    return json.dumps({"type": "pong", "t": t}, separators=(",", ":")).encode()


class WsViewer:
    """One WebSocket viewer of a stream; called by the renderer on the loop thread."""

    __slots__ = ("conn", "path", "frames_sent", "frames_skipped", "bytes_sent")

    def __init__(self, conn: ServerConnection, path: str) -> None:
        self.conn = conn
        self.path = path
        self.frames_sent = 0
        self.frames_skipped = 0
        self.bytes_sent = 0

    def _write(self, opcode: int, data: bytes) -> bool:
        conn = self.conn
        if conn.protocol.state is not State.OPEN or conn.send_in_progress is not None:
            return False
        transport = conn.transport
        if transport.is_closing():
            return False
        transport.writelines((frame_header(opcode, len(data)), data))
        self.bytes_sent += len(data)
        return True

    def send_info(self, info: StreamInfo) -> None:
        self._write(OP_TEXT, info.to_json().encode())

    def send_frame(self, frame: RenderedFrame) -> None:
        if self.conn.transport.get_write_buffer_size() > VIEWER_MAX_BUFFER:
            self.frames_skipped += 1
            return
        if self._write(OP_BINARY, frame.webp):
            self.frames_sent += 1


class WsListener:
    """The running WebSocket server: ``port``, ``statistics()``, ``close()``."""

    def __init__(self, server: Server, renders: RenderManager) -> None:
        self.server = server
        self.renders = renders
        self.viewers: set[WsViewer] = set()
        self.port: int = server.sockets[0].getsockname()[1]
        self.connections_total = 0
        self.frames_skipped_closed = 0

    def statistics(self) -> Statistics:
        vs = self.viewers
        return Statistics(frames_out=sum(v.frames_sent for v in vs),
                          bytes_out=sum(v.bytes_sent for v in vs),
                          skipped_frames=sum(v.frames_skipped for v in vs),
                          extra=(("viewers", len(vs)), ("connections_total", self.connections_total)))

    async def close(self) -> None:
        self.server.close()
        await self.server.wait_closed()


def _stream_path(request_path: str) -> str | None:
    path = request_path.split("?", 1)[0]
    if not path.startswith(WS_PREFIX):
        return None
    try:
        return normalize_path(path[len(WS_PREFIX):])
    except InvalidPath:
        return None


def _refuse(status: http.HTTPStatus, text: str) -> Response:
    body = text.encode()
    return Response(status.value, status.phrase,
                    Headers([("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]), body)


async def start(hub: Hub, config: Config, host: str, port: int, *,
                renders: RenderManager) -> WsListener:
    """Serve ``/ws/PATH`` on ``host:port`` (0 = any free port). Returns the listener."""
    listener: WsListener | None = None

    def process_request(conn: ServerConnection, request: Request) -> Response | None:
        if _stream_path(request.path) is None:
            return _refuse(http.HTTPStatus.NOT_FOUND, "expected /ws/<stream path>\n")
        return None

    async def handler(conn: ServerConnection) -> None:
        assert listener is not None
        path = _stream_path(conn.request.path if conn.request else "")
        if path is None:  # process_request refused it already
            return
        sock = conn.transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, VIEWER_SNDBUF)
            except OSError:
                pass
        viewer = WsViewer(conn, path)
        listener.viewers.add(viewer)
        listener.connections_total += 1
        renders.attach(path, viewer)
        try:
            async for msg in conn:  # only pings (the page measures its round trip)
                if isinstance(msg, str):
                    pong = pong_for(msg)
                    if pong is not None:
                        viewer._write(OP_TEXT, pong)
        except ConnectionClosed:
            pass
        finally:
            listener.viewers.discard(viewer)
            renders.detach(path, viewer)

    origins = list(config.ws_allowed_origins) or None
    server = await serve(handler, host, port, compression=None, origins=origins,
                         process_request=process_request, max_size=MAX_INCOMING_MESSAGE,
                         ping_interval=PING_INTERVAL, server_header=None, logger=ws_log)
    log.info("WebSocket viewers on %s:%d (/ws/PATH)", host, server.sockets[0].getsockname()[1])
    listener = WsListener(server, renders)
    return listener
