"""AMF0 encoding and decoding (Adobe "Action Message Format -- AMF 0", 2007, sections 2.2-2.14).

Strategy: a recursive-descent decoder over a ``memoryview`` with explicit bounds on nesting depth,
item counts and string sizes, raising ``AMFError`` for anything malformed or truncated. Python
values map as follows, so that decode -> encode gives back the same bytes:

===============  ===========================  =====================================
marker           decoded as                   encoded from
===============  ===========================  =====================================
00 number        ``float``                    ``float`` / ``int`` (not ``bool``)
01 boolean       ``bool``                     ``bool``
02 string        ``str``                      ``str`` (long string if > 65535 bytes)
03 object        ``dict`` (ordered)           ``dict``
05 null          ``None``                     ``None``
06 undefined     ``UNDEFINED``                ``UNDEFINED``
08 ECMA array    ``ECMAArray`` (a dict)       ``ECMAArray``
0A strict array  ``list``                     ``list`` / ``tuple``
0B date          ``Date``                     ``Date``
0C long string   ``LongString`` (a str)       ``LongString``
10 typed object  ``TypedObject``              ``TypedObject``
===============  ===========================  =====================================

References (07) and the AMF3 switch (11) are refused with ``Unsupported``: no RTMP peer we
serve sends them in AMF0 commands. The ECMA array count is a hint only (often 0, per FFmpeg and
OBS): the decoder reads to the ``00 00 09`` end marker.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from rtmpgop.errors import AMFError, LimitExceeded, Unsupported

MAX_DEPTH = 16
"""Deepest nesting of objects/arrays decoded. Real commands nest 2-3 levels (E-RTMP connect
info maps: 3); the bound keeps recursion far from Python's stack limit on hostile input."""

MAX_ITEMS = 4096
"""Values (including object members) in one decode call: an onMetaData has ~30, a connect
with E-RTMP maps ~40. Bounds the work a small message full of empty objects can cause."""

MAX_STRICT_ARRAY_COUNT = 4096
"""Declared strict array length accepted (checked before reading, so no huge preallocation)."""

_F64 = struct.Struct(">d")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_DATE = struct.Struct(">dh")


class _Undefined:
    __slots__ = ()

    def __repr__(self) -> str:
        return "UNDEFINED"


UNDEFINED = _Undefined()
"""The AMF0 undefined value (marker 06)."""


class ECMAArray(dict):
    """An AMF0 ECMA array (marker 08): an ordered string-keyed map, as onMetaData uses."""

    __slots__ = ()


class LongString(str):
    """A string that was (or must be) encoded with the long-string marker 0C."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Date:
    """AMF0 date: milliseconds since the Unix epoch and a (reserved) time-zone field."""

    ms: float
    tz: int = 0


@dataclass(frozen=True, slots=True)
class TypedObject:
    """AMF0 typed object (marker 10): a class name and its members."""

    class_name: str
    members: dict = field(default_factory=dict)


class _Decoder:
    __slots__ = ("buf", "pos", "items")

    def __init__(self, buf: memoryview, pos: int) -> None:
        self.buf = buf
        self.pos = pos
        self.items = 0

    def _take(self, n: int) -> memoryview:
        p = self.pos
        if p + n > len(self.buf):
            raise AMFError("truncated AMF0 value", offset=p, need=n, have=len(self.buf) - p)
        self.pos = p + n
        return self.buf[p:p + n]

    def _str(self, n: int) -> str:
        return str(self._take(n), "utf-8", "replace")

    def _key(self) -> str:
        (n,) = _U16.unpack(self._take(2))
        return self._str(n)

    def _count(self) -> None:
        self.items += 1
        if self.items > MAX_ITEMS:
            raise LimitExceeded("MAX_ITEMS", self.items, MAX_ITEMS, offset=self.pos)

    def _members(self, out: dict, depth: int) -> dict:
        while True:
            key = self._key()
            if key == "" and self.pos < len(self.buf) and self.buf[self.pos] == 0x09:
                self.pos += 1
                return out
            out[key] = self.value(depth)

    def value(self, depth: int = 0) -> object:
        if depth > MAX_DEPTH:
            raise LimitExceeded("MAX_DEPTH", depth, MAX_DEPTH, offset=self.pos)
        self._count()
        marker = self._take(1)[0]
        if marker == 0x00:
            return _F64.unpack(self._take(8))[0]
        if marker == 0x01:
            return self._take(1)[0] != 0
        if marker == 0x02:
            (n,) = _U16.unpack(self._take(2))
            return self._str(n)
        if marker == 0x03:
            return self._members({}, depth + 1)
        if marker == 0x05:
            return None
        if marker == 0x06:
            return UNDEFINED
        if marker == 0x08:
            self._take(4)  # count: a hint only, often 0 (FFmpeg, OBS)
            return self._members(ECMAArray(), depth + 1)
        if marker == 0x0A:
            (n,) = _U32.unpack(self._take(4))
            if n > MAX_STRICT_ARRAY_COUNT:
                raise LimitExceeded("MAX_STRICT_ARRAY_COUNT", n, MAX_STRICT_ARRAY_COUNT, offset=self.pos)
            return [self.value(depth + 1) for _ in range(n)]
        if marker == 0x0B:
            ms, tz = _DATE.unpack(self._take(10))
            return Date(ms, tz)
        if marker == 0x0C:
            (n,) = _U32.unpack(self._take(4))
            return LongString(self._str(n))
        if marker == 0x10:
            name = self._key()
            return TypedObject(name, self._members({}, depth + 1))
        if marker in (0x07, 0x11):
            raise Unsupported("AMF0 reference / AMF3 switch not supported", marker=marker, offset=self.pos - 1)
        raise AMFError("unknown AMF0 marker", marker=marker, offset=self.pos - 1)


def decode(data: bytes | bytearray | memoryview, offset: int = 0) -> tuple[object, int]:
    """Decode one AMF0 value at ``offset``. Returns ``(value, offset after it)``.

    Raises ``AMFError`` (truncated/unknown marker), ``LimitExceeded`` or ``Unsupported``.
    """
    d = _Decoder(memoryview(data), offset)
    return d.value(), d.pos


def decode_all(data: bytes | bytearray | memoryview) -> list[object]:
    """Decode consecutive AMF0 values until the end of ``data`` (a command or data message).

    The item bound applies to the whole message. Raises like ``decode``.
    """
    d = _Decoder(memoryview(data), 0)
    out = []
    while d.pos < len(d.buf):
        out.append(d.value())
    return out


def _enc_str_body(s: str) -> bytes:
    return s.encode("utf-8")


def _enc_key(out: bytearray, key: str) -> None:
    b = key.encode("utf-8")
    if len(b) > 0xFFFF:
        raise ValueError(f"AMF0 key too long ({len(b)} bytes)")
    out += _U16.pack(len(b))
    out += b


def _encode(out: bytearray, v: object) -> None:
    if v is None:
        out.append(0x05)
    elif v is UNDEFINED:
        out.append(0x06)
    elif isinstance(v, bool):
        out += b"\x01\x01" if v else b"\x01\x00"
    elif isinstance(v, (int, float)):
        out.append(0x00)
        out += _F64.pack(float(v))
    elif isinstance(v, str):
        b = _enc_str_body(v)
        if isinstance(v, LongString) or len(b) > 0xFFFF:
            out.append(0x0C)
            out += _U32.pack(len(b))
        else:
            out.append(0x02)
            out += _U16.pack(len(b))
        out += b
    elif isinstance(v, ECMAArray):
        out.append(0x08)
        out += _U32.pack(len(v))
        _enc_members(out, v)
    elif isinstance(v, dict):
        out.append(0x03)
        _enc_members(out, v)
    elif isinstance(v, (list, tuple)):
        out.append(0x0A)
        out += _U32.pack(len(v))
        for item in v:
            _encode(out, item)
    elif isinstance(v, Date):
        out.append(0x0B)
        out += _DATE.pack(v.ms, v.tz)
    elif isinstance(v, TypedObject):
        out.append(0x10)
        _enc_key(out, v.class_name)
        _enc_members(out, v.members)
    else:
        raise TypeError(f"cannot encode {type(v).__name__} as AMF0")


def _enc_members(out: bytearray, d: dict) -> None:
    for k, item in d.items():
        _enc_key(out, str(k))
        _encode(out, item)
    out += b"\x00\x00\x09"


def encode(*values: object) -> bytes:
    """Encode values as consecutive AMF0 values. Raises ``TypeError`` for unmappable types."""
    out = bytearray()
    for v in values:
        _encode(out, v)
    return bytes(out)
