"""RTP fixed header (RFC 3550 section 5.1), sequence/timestamp unwrapping, a reorder buffer.

Strategy: ``parse_rtp`` reads the header from a ``memoryview`` and returns the payload as a
slice of the same buffer (no copy); CSRC list, header extension (RFC 3550 5.3.1, ONVIF replay
headers use it) and padding are handled before the payload. ``RTPPacket.to_bytes`` writes one.

``Unwrapper`` turns the modular 16-bit sequence numbers and 32-bit timestamps into unbounded
integers. ``ReorderBuffer`` puts UDP packets back in order within ``REORDER_WINDOW`` packets and
counts losses (the gortsplib "rtpreorderer" design); over TCP it is a pass-through.
"""

from __future__ import annotations

import heapq
import struct
from typing import NamedTuple

from rtmpgop.errors import RTPError

RTP_VERSION = 2
RTP_HEADER_SIZE = 12

REORDER_WINDOW = 64
"""Packets held while waiting for a missing one (UDP). gortsplib uses 64: about 50 ms of a
10 Mbit/s stream, long enough for kernel/NIC reordering, short enough to bound latency."""

_HDR = struct.Struct(">BBHII")
_HDR_UNPACK = _HDR.unpack_from


class RTPPacket(NamedTuple):
    """One RTP packet. ``payload`` is a memoryview into the received buffer (or bytes).

    An immutable ``NamedTuple`` rather than a frozen dataclass: one is made per received
    packet (~17 per video frame), and ``tuple.__new__`` costs a fraction of a frozen
    dataclass ``__init__`` (measured: the packet objects were 11 % of an ingest profile)."""

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes | memoryview
    marker: bool = False
    csrc: tuple[int, ...] = ()
    extension_profile: int | None = None
    extension: bytes = b""  # extension data, a multiple of 4 bytes
    padding: int = 0  # padding bytes to add on write (the count byte included)

    def header_size(self) -> int:
        """Bytes before the payload when written."""
        n = RTP_HEADER_SIZE + 4 * len(self.csrc)
        if self.extension_profile is not None:
            n += 4 + len(self.extension)
        return n

    def size(self) -> int:
        """Total bytes when written."""
        return self.header_size() + len(self.payload) + self.padding

    def write_header(self) -> bytes:
        """The header bytes (fixed header, CSRCs, extension) for a ``writelines`` pair."""
        if len(self.csrc) > 15 or len(self.extension) % 4:
            raise ValueError("at most 15 CSRCs; extension length must be a multiple of 4")
        b0 = RTP_VERSION << 6 | len(self.csrc)
        if self.padding:
            b0 |= 0x20
        if self.extension_profile is not None:
            b0 |= 0x10
        out = [_HDR.pack(b0, (0x80 if self.marker else 0) | (self.payload_type & 0x7F),
                         self.sequence & 0xFFFF, self.timestamp & 0xFFFFFFFF,
                         self.ssrc & 0xFFFFFFFF)]
        out.extend(struct.pack(">I", c) for c in self.csrc)
        if self.extension_profile is not None:
            out.append(struct.pack(">HH", self.extension_profile, len(self.extension) // 4))
            out.append(bytes(self.extension))
        return b"".join(out)

    def to_bytes(self) -> bytes:
        """The whole packet as bytes."""
        pad = b""
        if self.padding:
            if not 1 <= self.padding <= 255:
                raise ValueError("padding must be 1..255")
            pad = bytes(self.padding - 1) + bytes([self.padding])
        return b"".join((self.write_header(), self.payload, pad))


_new_packet = tuple.__new__
_NO_CSRC: tuple[int, ...] = ()


def parse_rtp(data: bytes | bytearray | memoryview) -> RTPPacket:
    """Parse one RTP packet (a whole UDP datagram or interleaved frame).

    Returns an ``RTPPacket`` whose payload is a memoryview slice of ``data``.
    Raises ``RTPError`` on a short packet, a version other than 2, or bad padding/extension.
    """
    view = data if type(data) is memoryview else memoryview(data)
    n = len(view)
    if n < RTP_HEADER_SIZE:
        raise RTPError("RTP packet too short", length=n)
    b0, b1, seq, ts, ssrc = _HDR_UNPACK(view, 0)
    if b0 == 0x80:  # the common case: version 2, no padding, extension or CSRC
        return _new_packet(RTPPacket, (b1 & 0x7F, seq, ts, ssrc, view[RTP_HEADER_SIZE:],
                                       b1 > 0x7F, _NO_CSRC, None, b"", 0))
    if b0 >> 6 != RTP_VERSION:
        raise RTPError("RTP version is not 2", version=b0 >> 6)
    cc = b0 & 0x0F
    pos = RTP_HEADER_SIZE + 4 * cc
    if pos > n:
        raise RTPError("RTP CSRC list truncated", csrc_count=cc, length=n)
    csrc = struct.unpack_from(f">{cc}I", view, RTP_HEADER_SIZE) if cc else ()
    ext_profile = None
    ext = b""
    if b0 & 0x10:
        if pos + 4 > n:
            raise RTPError("RTP extension header truncated", length=n)
        ext_profile, words = struct.unpack_from(">HH", view, pos)
        end = pos + 4 + 4 * words
        if end > n:
            raise RTPError("RTP extension truncated", words=words, length=n)
        ext = bytes(view[pos + 4:end])
        pos = end
    end = n
    if b0 & 0x20:
        pad = view[n - 1]
        if pad == 0 or pos + pad > n:
            raise RTPError("RTP padding count invalid", padding=pad, length=n)
        end = n - pad
    return _new_packet(RTPPacket, (b1 & 0x7F, seq, ts, ssrc, view[pos:end], bool(b1 & 0x80),
                                   tuple(csrc), ext_profile, ext, 0))


class Unwrapper:
    """Extends a modular counter (``bits`` wide) to an unbounded integer.

    Each value is placed nearest to the previous one (within half the range), so late packets
    come out slightly smaller and forward wraps keep counting up. The first value is kept as-is.
    """

    __slots__ = ("_half", "_mask", "_last")

    def __init__(self, bits: int) -> None:
        self._mask = (1 << bits) - 1
        self._half = 1 << (bits - 1)
        self._last: int | None = None

    def unwrap(self, value: int) -> int:
        """Return ``value`` extended to 64 bits relative to the previous value."""
        if self._last is None:
            self._last = value & self._mask
            return self._last
        diff = (value - self._last) & self._mask
        if diff >= self._half:
            diff -= self._mask + 1
        self._last += diff
        return self._last

    def reset(self) -> None:
        """Forget the reference (after an SSRC change or a discontinuity)."""
        self._last = None


class ReorderBuffer:
    """Puts packets back into sequence order within ``window`` packets and counts losses.

    ``push(packet)`` returns the packets now ready, in order. A packet older than the next
    expected one (late or duplicate) is dropped and counted in ``late``. When the gap to a
    future packet is larger than the window, the missing packets are counted in ``lost`` and
    everything held is released: the stream jumps forward, as after a burst of loss.
    The depacketizers notice the gaps themselves from the sequence numbers they see.
    """

    __slots__ = ("window", "_unwrap", "_expected", "_held", "lost", "late")

    def __init__(self, window: int = REORDER_WINDOW) -> None:
        self.window = window
        self._unwrap = Unwrapper(16)
        self._expected: int | None = None
        self._held: list[tuple[int, int, RTPPacket]] = []  # heap of (ext seq, tiebreak, packet)
        self.lost = 0
        self.late = 0

    def push(self, packet: RTPPacket) -> list[RTPPacket]:
        """Add one packet; return the packets that can be delivered now, in order."""
        ext = self._unwrap.unwrap(packet.sequence)
        if self._expected is None:
            self._expected = ext
        rel = ext - self._expected
        if rel == 0 and not self._held:  # in order, nothing waiting: the usual case
            self._expected = ext + 1
            return [packet]
        if rel < 0:
            self.late += 1
            return []
        if rel >= self.window:
            # Too far ahead: give up on the gap, release what we hold, restart after this one.
            out = [p for _, _, p in sorted(self._held)]
            self.lost += rel - len(self._held)
            self._held.clear()
            out.append(packet)
            self._expected = ext + 1
            return out
        if any(s == ext for s, _, _ in self._held):
            self.late += 1
            return []
        heapq.heappush(self._held, (ext, id(packet), packet))
        out = []
        while self._held and self._held[0][0] == self._expected:
            out.append(heapq.heappop(self._held)[2])
            self._expected += 1
        return out

    def flush(self) -> list[RTPPacket]:
        """Release everything held (end of stream), counting the holes as lost."""
        out = []
        while self._held:
            ext, _, p = heapq.heappop(self._held)
            self.lost += ext - self._expected
            self._expected = ext + 1
            out.append(p)
        return out
