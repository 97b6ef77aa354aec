"""RTSP/1.0 message framing (RFC 2326 sections 4, 6, 7, 10.12): requests, responses and the
``$``-interleaved binary frames that share the TCP stream.

Strategy: ``MessageReader`` is a sans-IO pull parser shared by both roles.
``receive_data(data)`` hands it bytes; ``next_message()`` returns a ``Request``, ``Response``
or ``InterleavedFrame``, or ``None`` when more data is needed. The first byte of each message
tells them apart: ``$`` (0x24) is a binary frame, anything else starts a text message. Empty
lines between messages are skipped (some cameras send a bare CRLF as keepalive).

Zero-copy: data handed to ``receive_data`` is parsed in place while the internal buffer is
empty, and interleaved frames found there come back as ``memoryview`` slices of it (pass
immutable ``bytes``, as ``asyncio.Protocol.data_received`` does, or do not reuse the buffer
until the frames are consumed). Only an incomplete tail is copied into the internal buffer;
frames completed from it are copied once into ``bytes``.

Limits are named constants below; crossing one raises ``RTSPError`` whose ``status`` is the
code to answer with (400 malformed, 413 body too large, 431 headers too large).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import NamedTuple

from rtmpgop.errors import RTSPError

MAX_HEADER_BYTES = 16 * 1024
"""Request line + headers. Real requests are < 1 KiB; long SETUP URLs and Digest headers stay
far below. Bounds what a peer can make us buffer before a message is complete."""

MAX_HEADERS = 64
"""Header lines per message. FFmpeg/GStreamer/cameras send fewer than 15."""

MAX_BODY_BYTES = 64 * 1024
"""Content-Length limit. Bodies are SDP (a few KiB) or GET/SET_PARAMETER text."""

INTERLEAVED_HEADER = 4  # '$' | channel u8 | length u16
RTSP_VERSION = "RTSP/1.0"

REASONS = {
    200: "OK", 301: "Moved Permanently", 302: "Moved Temporarily", 400: "Bad Request",
    401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    406: "Not Acceptable", 413: "Request Entity Too Large", 415: "Unsupported Media Type",
    431: "Request Header Fields Too Large", 453: "Not Enough Bandwidth",
    454: "Session Not Found", 455: "Method Not Valid in This State",
    459: "Aggregate Operation Not Allowed", 461: "Unsupported Transport",
    500: "Internal Server Error", 501: "Not Implemented", 503: "Service Unavailable",
    505: "RTSP Version Not Supported",
}

_FRAME = struct.Struct(">BBH")


@dataclass(frozen=True, slots=True)
class Headers:
    """Ordered header list with case-insensitive lookup (``Cseq``, ``Content-length`` exist)."""

    items: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, pairs: dict[str, str] | list[tuple[str, str]] | tuple | Headers | None
           ) -> Headers:
        """Build from a dict, a list of pairs or another Headers."""
        if pairs is None:
            return cls()
        if isinstance(pairs, Headers):
            return pairs
        if isinstance(pairs, dict):
            pairs = list(pairs.items())
        return cls(tuple((str(k), str(v)) for k, v in pairs))

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of header ``name`` (case-insensitive), or ``default``."""
        low = name.lower()
        for k, v in self.items:
            if k.lower() == low:
                return v
        return default

    def get_all(self, name: str) -> list[str]:
        """Every value of header ``name``, in order."""
        low = name.lower()
        return [v for k, v in self.items if k.lower() == low]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def with_(self, name: str, value: str) -> Headers:
        """A copy with ``name`` replaced (or appended)."""
        low = name.lower()
        kept = tuple((k, v) for k, v in self.items if k.lower() != low)
        return Headers(kept + ((name, value),))

    def without(self, name: str) -> Headers:
        """A copy without any ``name`` header."""
        low = name.lower()
        return Headers(tuple((k, v) for k, v in self.items if k.lower() != low))


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    url: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    version: str = RTSP_VERSION

    @property
    def cseq(self) -> str | None:
        return self.headers.get("CSeq")

    def to_bytes(self) -> bytes:
        """Serialize; Content-Length is added for a non-empty body."""
        return _serialize(f"{self.method} {self.url} {self.version}", self.headers, self.body)


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    reason: str = ""
    version: str = RTSP_VERSION

    @property
    def cseq(self) -> str | None:
        return self.headers.get("CSeq")

    def to_bytes(self) -> bytes:
        """Serialize; the reason phrase defaults to the standard one for ``status``."""
        reason = self.reason or REASONS.get(self.status, "Unknown")
        return _serialize(f"{self.version} {self.status} {reason}", self.headers, self.body)


class InterleavedFrame(NamedTuple):
    """A ``$`` frame: ``channel`` (even = RTP, odd = RTCP by convention) and its payload.
    A ``NamedTuple`` (immutable, cheap to make): one is made per RTP packet received."""

    channel: int
    payload: bytes | memoryview


Message = Request | Response | InterleavedFrame
_new_frame = tuple.__new__


def _serialize(start: str, headers: Headers, body: bytes) -> bytes:
    lines = [start]
    for k, v in headers.items:
        if k.lower() == "content-length":
            continue
        if "\r" in v or "\n" in v or "\r" in k or "\n" in k:
            raise ValueError(f"header {k!r} contains a line break")
        lines.append(f"{k}: {v}")
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + bytes(body)


def frame_header(channel: int, length: int) -> bytes:
    """The 4-byte ``$`` header for an interleaved frame (write it before the payload)."""
    if not 0 <= channel <= 255 or not 0 <= length <= 0xFFFF:
        raise ValueError("interleaved channel 0..255, length 0..65535")
    return _FRAME.pack(0x24, channel, length)


def encode_frame(channel: int, payload: bytes | memoryview) -> list[bytes | memoryview]:
    """Buffers for one ``writelines``: the ``$`` header and the payload (not copied)."""
    return [frame_header(channel, len(payload)), payload]


def _parse_head(text: bytes) -> tuple[str, str, str, Headers]:
    """Split a message head into its start line's three tokens and its headers."""
    try:
        s = text.decode("utf-8")
    except UnicodeDecodeError:
        s = text.decode("latin-1")
    lines = s.replace("\r\n", "\n").split("\n")
    parts = lines[0].split(" ", 2)
    if len(parts) != 3:
        raise RTSPError("malformed start line", status=400, line=lines[0][:80])
    if len(lines) - 1 > MAX_HEADERS:
        raise RTSPError("too many headers", status=431, count=len(lines) - 1,
                        maximum=MAX_HEADERS)
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        if line[0] in " \t" and headers:  # obsolete line folding
            k, v = headers[-1]
            headers[-1] = (k, v + " " + line.strip())
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise RTSPError("malformed header line", status=400, line=line[:80])
        headers.append((name.strip(), value.strip()))
    return parts[0], parts[1], parts[2], Headers(tuple(headers))


class MessageReader:
    """Incremental parser of one direction of an RTSP TCP stream (see module docstring)."""

    __slots__ = ("_buf", "_view", "_pos")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._view: memoryview | None = None  # caller's data, parsed in place
        self._pos = 0  # read offset into _view

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Add received bytes. Frames may reference ``data`` until they are consumed."""
        if self._view is not None:
            self._buf += self._view[self._pos:]
            self._view = None
        if self._buf:
            buf = self._buf
            if len(buf) >= INTERLEAVED_HEADER and buf[0] == 0x24:
                # A frame split across reads: copy only its rest, and parse the data after it
                # in place (else every later frame would go through the buffer, copied).
                need = INTERLEAVED_HEADER + (buf[2] << 8 | buf[3]) - len(buf)
                if 0 < need < len(data):
                    view = data if isinstance(data, memoryview) else memoryview(data)
                    buf += view[:need]
                    self._view, self._pos = view, need
                    return
            buf += data
        elif len(data):
            self._view = data if isinstance(data, memoryview) else memoryview(data)
            self._pos = 0

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as messages."""
        extra = len(self._view) - self._pos if self._view is not None else 0
        return len(self._buf) + extra

    def next_message(self) -> Message | None:
        """Return the next complete message, or None if more data is needed.

        Raises ``RTSPError`` (with ``.status``) on malformed input or a crossed limit; the
        stream cannot be resynchronised after that, so close the connection.
        """
        if self._buf:  # holds bytes that come before ``_view``
            msg, used = self._parse(memoryview(self._buf), 0, zero_copy=False)
            if msg is not None:
                del self._buf[:used]
                return msg
            if self._view is None:
                return None
            self._buf += self._view[self._pos:]  # not reached: the buffer held a whole frame
            self._view = None
            return None
        view = self._view
        if view is not None:
            pos, n = self._pos, len(view)
            if pos + INTERLEAVED_HEADER <= n and view[pos] == 0x24:
                # A whole frame in place: the common case, inlined (runs once per RTP packet).
                end = pos + INTERLEAVED_HEADER + (view[pos + 2] << 8 | view[pos + 3])
                if end <= n:
                    self._pos = end
                    if end == n:
                        self._view = None
                    return _new_frame(InterleavedFrame,
                                      (view[pos + 1], view[pos + INTERLEAVED_HEADER:end]))
            msg, used = self._parse(view, pos, zero_copy=True)
            if msg is None:
                self._buf += self._view[self._pos:]
                self._view = None
                return None
            self._pos = used
            if self._pos >= len(self._view):
                self._view = None
            return msg
        return None

    @staticmethod
    def _parse(view: memoryview, pos: int, zero_copy: bool) -> tuple[Message | None, int]:
        n = len(view)
        if pos < n and view[pos] != 0x24:  # frames come back to back: skip this test for them
            while pos < n and view[pos] in (0x0D, 0x0A):
                pos += 1
        if pos >= n:
            return None, pos
        if view[pos] == 0x24:
            if pos + INTERLEAVED_HEADER > n:
                return None, pos
            _, channel, length = _FRAME.unpack_from(view, pos)
            end = pos + INTERLEAVED_HEADER + length
            if end > n:
                return None, pos
            payload = view[pos + INTERLEAVED_HEADER:end]
            if not zero_copy:
                with payload:
                    payload = bytes(payload)
            return _new_frame(InterleavedFrame, (channel, payload)), end
        # Text message: find the blank line ending the head.
        raw = view[pos:min(n, pos + MAX_HEADER_BYTES + 4)]
        data = bytes(raw)
        head_end = data.find(b"\r\n\r\n")
        sep = 4
        lf = data.find(b"\n\n")
        if lf != -1 and (head_end == -1 or lf < head_end):
            head_end, sep = lf, 2
        if head_end == -1:
            if n - pos > MAX_HEADER_BYTES:
                raise RTSPError("message head too large", status=431,
                                size=n - pos, maximum=MAX_HEADER_BYTES)
            return None, pos
        if head_end > MAX_HEADER_BYTES:
            raise RTSPError("message head too large", status=431, size=head_end,
                            maximum=MAX_HEADER_BYTES)
        a, b, c, headers = _parse_head(data[:head_end])
        clen = headers.get("Content-Length")
        length = 0
        if clen is not None:
            if not clen.strip().isdigit():
                raise RTSPError("bad Content-Length", status=400, value=clen[:20])
            length = int(clen)
            if length > MAX_BODY_BYTES:
                raise RTSPError("body too large", status=413, length=length,
                                maximum=MAX_BODY_BYTES)
        body_start = pos + head_end + sep
        if body_start + length > n:
            return None, pos
        body = bytes(view[body_start:body_start + length])
        end = body_start + length
        if a.startswith("RTSP/"):
            if not (len(b) == 3 and b.isdigit()):
                raise RTSPError("malformed status line", status=400, line=f"{a} {b}"[:80])
            return Response(int(b), headers, body, c, a), end
        if not c.startswith("RTSP/"):
            raise RTSPError("not an RTSP request", status=400, version=c[:20])
        if not a.isascii() or not a.replace("_", "").isalpha():
            raise RTSPError("malformed method", status=400, method=a[:20])
        return Request(a, b, headers, body, c), end
