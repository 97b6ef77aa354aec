"""A minimal, fast RTMP client for the load generator (Adobe RTMP 1.0, sections 5.2-7.2).

Strategy: one ``asyncio.BufferedProtocol`` per connection. The socket reads into our own
256 KiB buffer; the chunk reader parses headers in place and never reassembles media: for an
audio/video message it hands the first ``prefix_len`` bytes to ``on_media`` and then only
counts the rest (so 200 players at 5 Mbit/s fit on one core). Control and command messages
(small) are reassembled and handled: Set Chunk Size, Window Ack Size (we then send
Acknowledgements, as librtmp/FFmpeg do), ping requests, ``_result``/``_error``/``onStatus``.

Handshake: the simple one (C1 = time, zero, random; C2 = S1 echoed). Both nginx-rtmp and rtmpgop
fall back to it for clients without an FP9 digest. Output chunks use Set Chunk Size 4096 or more;
media messages are written as fmt 0 then fmt 1 headers plus one-byte fmt 3 continuations with
``transport.writelines`` of memoryview slices (no copy of the payload).
"""

from __future__ import annotations

import asyncio
import os
import struct
import time

from bench.loadgen import amf0
from bench.loadgen.common import ReadBuffer

HANDSHAKE_SIZE = 1536
READ_BUFFER = 256 * 1024  # bytes; one recv at 1 Gbit/s fan-out rarely needs more
MAX_MESSAGE = 16 * 1024 * 1024  # RTMP's 24-bit length
OUT_CHUNK_SIZE = 4096
CSID_COMMAND, CSID_AUDIO, CSID_VIDEO, CSID_DATA = 3, 4, 6, 5
MEDIA_TYPES = (8, 9)


class RtmpError(Exception):
    """The server refused a command or broke the protocol."""


class _ChunkStream:
    __slots__ = ("ts", "delta", "length", "type", "msid", "remaining", "ext", "body", "media")

    def __init__(self) -> None:
        self.ts = self.delta = self.length = self.type = self.msid = 0
        self.remaining = 0  # bytes of the current message still to come
        self.ext = False  # the last fmt 0/1/2 header used an extended timestamp
        self.body: bytearray | None = None
        self.media = False


class RtmpClient(ReadBuffer):
    """RTMP client connection. Subclasses override ``on_media`` (and read ``media_bytes``)."""

    prefix_len = 48  # bytes of each media message given to on_media
    READ_BUFFER = READ_BUFFER
    COMPACT_MARGIN = 65536

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self._init_read_buffer()
        self._handshaking = True
        self._c1 = b""
        self.in_chunk_size = 128
        self.out_chunk_size = 128
        self._cs: dict[int, _ChunkStream] = {}
        self._cur: _ChunkStream | None = None  # stream whose chunk payload we are inside
        self._chunk_left = 0  # bytes of that chunk payload still to come
        self.media_bytes = 0  # payload bytes of audio/video messages
        self._ack_window = 0
        self._acked = 0
        self._txn = 0
        self._waiters: dict[int, asyncio.Future] = {}
        self._status: asyncio.Queue = asyncio.Queue()
        self._out_last: dict[int, tuple[int, int]] = {}  # csid -> (msid, ts) of the last header
        self.handshake_done = self.loop.create_future()
        self.closed = self.loop.create_future()
        self.error: BaseException | None = None
        self._closing = False

    # ---- asyncio protocol --------------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport
        self._c1 = struct.pack(">II", int(time.monotonic() * 1000) & 0xFFFFFFFF, 0) + \
            os.urandom(HANDSHAKE_SIZE - 8)
        transport.writelines((b"\x03", self._c1))

    def connection_lost(self, exc) -> None:
        err = exc or ConnectionError("connection closed by server")
        if self.error is None and not self._closing:
            self.error = err
        for f in (self.handshake_done, self.closed, *self._waiters.values()):
            if not f.done():
                if f is self.closed:
                    f.set_result(None)
                else:
                    f.set_exception(err)
        self._status.put_nowait(None)

    def _consume(self) -> None:
        if self._handshaking:
            if self._w - self._r < 1 + 2 * HANDSHAKE_SIZE:
                return
            s1 = bytes(self._mv[self._r + 1:self._r + 1 + HANDSHAKE_SIZE])
            if self._buf[self._r] != 3:
                raise RtmpError(f"server handshake version {self._buf[self._r]}")
            self._r += 1 + 2 * HANDSHAKE_SIZE
            self._handshaking = False
            self.transport.write(s1)  # C2 = S1 echoed
            self.handshake_done.set_result(None)
        self._parse()

    def _after_read(self) -> None:
        if self._ack_window and self.received - self._acked >= self._ack_window:
            self._acked = self.received
            self.send_message(2, 3, 0, struct.pack(">I", self.received & 0xFFFFFFFF))

    # ---- chunk reader ------------------------------------------------------------------
    def _parse(self) -> None:
        buf, mv = self._buf, self._mv
        pos, end = self._r, self._w
        while True:
            st = self._cur
            if st is not None:  # inside a chunk payload
                n = self._chunk_left
                if n > end - pos:
                    n = end - pos
                if st.media:
                    self.media_bytes += n
                else:
                    st.body += mv[pos:pos + n]
                pos += n
                self._chunk_left -= n
                st.remaining -= n
                if self._chunk_left:
                    break
                self._cur = None
                if st.remaining == 0 and not st.media:
                    body, st.body = st.body, None
                    self._on_message(st.type, st.msid, st.ts, bytes(body))
                continue
            # a chunk header
            avail = end - pos
            if avail < 1:
                break
            b0 = buf[pos]
            fmt, csid = b0 >> 6, b0 & 0x3F
            h = pos + 1
            if csid == 0:
                if avail < 2:
                    break
                csid, h = buf[pos + 1] + 64, pos + 2
            elif csid == 1:
                if avail < 3:
                    break
                csid, h = buf[pos + 1] + buf[pos + 2] * 256 + 64, pos + 3
            mh = (11, 7, 3, 0)[fmt]
            if end - h < mh:
                break
            st = self._cs.get(csid)
            if st is None:
                if fmt != 0:
                    raise RtmpError(f"fmt {fmt} chunk opens csid {csid}")
                st = self._cs[csid] = _ChunkStream()
            tsf = -1
            if fmt < 3:
                tsf = (buf[h] << 16) | (buf[h + 1] << 8) | buf[h + 2]
                if fmt < 2:
                    length = (buf[h + 3] << 16) | (buf[h + 4] << 8) | buf[h + 5]
                    mtype = buf[h + 6]
                    if fmt == 0:
                        msid = int.from_bytes(buf[h + 7:h + 11], "little")
                h += mh
                st.ext = tsf == 0xFFFFFF
            if st.ext:  # extended timestamp (in fmt 3 too, as RTMP 1.0 and FFmpeg do)
                if end - h < 4:
                    break
                ext = int.from_bytes(buf[h:h + 4], "big")
                h += 4
                if tsf == 0xFFFFFF:
                    tsf = ext
            new_msg = st.remaining == 0
            if new_msg and fmt < 2 and length > MAX_MESSAGE:
                raise RtmpError(f"message length {length}")
            clen = st.remaining if not new_msg else (length if fmt < 2 else st.length)
            if clen > self.in_chunk_size:
                clen = self.in_chunk_size
            if new_msg:
                mtype_ = mtype if fmt < 2 else st.type
                if mtype_ in MEDIA_TYPES:  # media: need the first bytes in one piece
                    k = self.prefix_len
                    if k > clen:
                        k = clen
                    if end - h < k:
                        break
            elif fmt != 3:
                raise RtmpError(f"fmt {fmt} header in the middle of a message on csid {csid}")
            # commit the header
            if new_msg:
                if fmt == 0:
                    st.ts, st.delta, st.length, st.type, st.msid = tsf, 0, length, mtype, msid
                elif fmt == 1:
                    st.delta, st.length, st.type = tsf, length, mtype
                    st.ts = (st.ts + tsf) & 0xFFFFFFFF
                elif fmt == 2:
                    st.delta = tsf
                    st.ts = (st.ts + tsf) & 0xFFFFFFFF
                else:
                    st.ts = (st.ts + st.delta) & 0xFFFFFFFF
                st.remaining = st.length
                st.media = st.type in MEDIA_TYPES
                if st.media:
                    self.on_media(st.type, st.ts, mv[h:h + min(self.prefix_len, clen)], st.length)
                else:
                    st.body = bytearray()
                if st.length == 0:  # empty message (E-RTMP silence): nothing follows
                    if not st.media:
                        st.body = None
                        self._on_message(st.type, st.msid, st.ts, b"")
                    pos = h
                    continue
            pos = h
            self._cur, self._chunk_left = st, clen
        self._r = pos

    # ---- messages ----------------------------------------------------------------------
    def on_media(self, mtype: int, ts: int, prefix: memoryview, length: int) -> None:
        """Called at the start of each audio (8) / video (9) message with its first bytes."""

    def _on_message(self, mtype: int, msid: int, ts: int, body: bytes) -> None:
        if mtype == 1:
            size = struct.unpack(">I", body[:4])[0] & 0x7FFFFFFF
            if size < 1:
                raise RtmpError(f"chunk size {size}")
            self.in_chunk_size = size
        elif mtype == 5:
            self._ack_window = struct.unpack(">I", body[:4])[0]
        elif mtype == 4:
            ev = struct.unpack(">H", body[:2])[0]
            if ev == 6:  # PingRequest -> PingResponse
                self.send_message(2, 4, 0, b"\x00\x07" + body[2:6])
        elif mtype == 20:
            vals = amf0.decode_all(body)
            name = vals[0] if vals else None
            if name in ("_result", "_error") and len(vals) > 1:
                fut = self._waiters.pop(int(vals[1]), None)
                if fut is not None and not fut.done():
                    if name == "_result":
                        fut.set_result(vals[2:])
                    else:
                        fut.set_exception(RtmpError(f"_error {vals[2:]}"))
            elif name == "onStatus":
                info = vals[3] if len(vals) > 3 and isinstance(vals[3], dict) else {}
                self._status.put_nowait(info)

    # ---- writer ------------------------------------------------------------------------
    def send_message(self, csid: int, mtype: int, msid: int, payload, ts: int = 0) -> None:
        """Write one message, chunked at ``out_chunk_size`` (fmt 0, then fmt 1 on the same
        msid, then fmt 3 continuations)."""
        n = len(payload)
        last = self._out_last.get(csid)
        if last is None or last[0] != msid or ts < last[1] or ts >= 0xFFFFFF:
            if ts >= 0xFFFFFF:
                raise RtmpError("benchmark timestamps never need extended timestamps")
            hdr = bytes((csid,)) + ts.to_bytes(3, "big") + n.to_bytes(3, "big") + \
                bytes((mtype,)) + msid.to_bytes(4, "little")
        else:
            hdr = bytes((0x40 | csid,)) + (ts - last[1]).to_bytes(3, "big") + \
                n.to_bytes(3, "big") + bytes((mtype,))
        self._out_last[csid] = (msid, ts)
        cs = self.out_chunk_size
        if n <= cs:
            self.transport.writelines((hdr, payload))
            return
        mv = memoryview(payload)
        parts = [hdr, mv[:cs]]
        c3 = bytes((0xC0 | csid,))
        for off in range(cs, n, cs):
            parts.append(c3)
            parts.append(mv[off:off + cs])
        self.transport.writelines(parts)

    def set_chunk_size(self, size: int = OUT_CHUNK_SIZE) -> None:
        self.send_message(2, 1, 0, struct.pack(">I", size))
        self.out_chunk_size = size

    async def command(self, name: str, *args, msid: int = 0, wait: bool = True):
        """Send a command; with ``wait``, return the ``_result`` values (raises RtmpError)."""
        self._txn += 1
        fut = None
        if wait:
            fut = self._waiters[self._txn] = self.loop.create_future()
        self.send_message(CSID_COMMAND if msid == 0 else 8, 20, msid,
                          amf0.encode(name, self._txn, *args))
        return await fut if fut is not None else None

    async def wait_status(self, *codes: str) -> dict:
        """Wait for an onStatus whose code is one of ``codes`` (error-level ones raise)."""
        while True:
            info = await self._status.get()
            if info is None:
                raise self.error or ConnectionError("closed")
            code = info.get("code", "")
            if code in codes:
                return info
            if info.get("level") == "error":
                raise RtmpError(f"onStatus {code}: {info.get('description')}")

    async def setup(self, app: str, tc_url: str) -> int:
        """Handshake, Set Chunk Size, connect, createStream. Returns the stream id."""
        await self.handshake_done
        self.set_chunk_size()
        await self.command("connect", {"app": app, "type": "nonprivate", "flashVer": "FMLE/3.0",
                                       "tcUrl": tc_url, "objectEncoding": 0})
        res = await self.command("createStream", None)
        return int(res[1])

    def close(self) -> None:
        self._closing = True
        if self.transport is not None:
            self.transport.close()


async def connect(factory, host: str, port: int):
    """Open a TCP connection with ``factory()`` (an RtmpClient) as its protocol."""
    loop = asyncio.get_running_loop()
    _, proto = await loop.create_connection(factory, host, port)
    return proto
