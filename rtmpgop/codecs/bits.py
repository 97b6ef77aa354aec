"""Bit-level reading for codec headers: ``BitReader`` (MSB first, Exp-Golomb) and RBSP unescaping.

Implements the ``u(n)``, ``ue(v)`` and ``se(v)`` descriptors of ITU-T H.264 section 7.2 / 9.1
(H.265 uses the same ones, section 9.2) and the removal of ``emulation_prevention_three_byte``
(H.264 7.4.1, H.265 7.4.2). Strategy: the reader keeps an integer bit position over the input
bytes and never reads past the end: running out raises ``CodecError``, so parsers built on it
satisfy the fuzz contract (garbage raises ``CodecError``, never ``IndexError``).
"""

from __future__ import annotations

from rtmpgop.errors import CodecError

MAX_EXP_GOLOMB_ZEROS = 31
"""Leading zeros accepted in ue(v): 32 or more would encode a value above 2**32 - 2, which no
syntax element of H.264/H.265 allows; stops a run of zero bytes from being read as a huge number."""


class BitReader:
    """Reads bits MSB-first from ``data`` (bytes, bytearray or memoryview).

    Every read raises ``CodecError`` when the data runs out.
    """

    __slots__ = ("_data", "_pos", "_end")

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        self._data = bytes(data) if isinstance(data, memoryview) else data
        self._pos = 0
        self._end = len(data) * 8

    @property
    def bits_left(self) -> int:
        """Number of bits not read yet."""
        return self._end - self._pos

    @property
    def position(self) -> int:
        """Bits read so far."""
        return self._pos

    def byte_aligned(self) -> bool:
        """True when the position is on a byte boundary."""
        return self._pos % 8 == 0

    def u(self, n: int) -> int:
        """Read an ``n``-bit unsigned integer (``n`` may be 0). Raises ``CodecError`` at the end."""
        if n == 0:
            return 0
        if self._pos + n > self._end:
            raise CodecError("bitstream truncated", need_bits=n, bits_left=self.bits_left)
        pos = self._pos
        first = pos >> 3
        last = (pos + n - 1) >> 3
        chunk = int.from_bytes(self._data[first : last + 1], "big")
        total = (last - first + 1) * 8
        shift = total - (pos & 7) - n
        self._pos = pos + n
        return (chunk >> shift) & ((1 << n) - 1)

    def flag(self) -> bool:
        """Read one bit as a bool."""
        return bool(self.u(1))

    def skip(self, n: int) -> None:
        """Skip ``n`` bits. Raises ``CodecError`` if fewer are left."""
        if n < 0 or self._pos + n > self._end:
            raise CodecError("bitstream truncated", need_bits=n, bits_left=self.bits_left)
        self._pos += n

    def ue(self) -> int:
        """Read an unsigned Exp-Golomb code ``ue(v)``. Raises ``CodecError`` if too long."""
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > MAX_EXP_GOLOMB_ZEROS:
                raise CodecError("Exp-Golomb code too long", zeros=zeros)
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        """Read a signed Exp-Golomb code ``se(v)``."""
        k = self.ue()
        return (k + 1) >> 1 if k & 1 else -(k >> 1)

    def byte_align(self) -> None:
        """Skip to the next byte boundary."""
        self._pos = min(self._end, (self._pos + 7) & ~7)


def unescape_rbsp(nal: bytes | bytearray | memoryview) -> bytes:
    """Remove emulation-prevention bytes: every ``00 00 03`` becomes ``00 00``.

    Returns the raw byte sequence payload (the NAL header is left in place and untouched).
    Never raises.
    """
    data = bytes(nal)
    if b"\x00\x00\x03" not in data:
        return data
    out = bytearray()
    i = 0
    n = len(data)
    while i < n:
        j = data.find(b"\x00\x00\x03", i)
        if j < 0:
            out += data[i:]
            break
        out += data[i : j + 2]
        i = j + 3
    return bytes(out)


def escape_rbsp(rbsp: bytes | bytearray | memoryview) -> bytes:
    """Insert emulation-prevention bytes (inverse of ``unescape_rbsp``): after ``00 00`` any byte
    <= 3 is preceded by ``03``. Returns the escaped bytes."""
    out = bytearray()
    zeros = 0
    for b in bytes(rbsp):
        if zeros >= 2 and b <= 3:
            out.append(3)
            zeros = 0
        out.append(b)
        zeros = zeros + 1 if b == 0 else 0
    return bytes(out)
