"""AMF0 (Adobe AMF0 spec, section 2): the value types RTMP commands use.

Encoding covers number, boolean, string, object, null and ECMA array; decoding also accepts
undefined, strict array, date and long string. Objects decode to dicts. This is a load generator,
not a hardened parser: the peer is the server under test, and a malformed reply raises ValueError.
"""

from __future__ import annotations

import struct

NUMBER, BOOLEAN, STRING, OBJECT, NULL, UNDEFINED = 0, 1, 2, 3, 5, 6
ECMA_ARRAY, OBJECT_END, STRICT_ARRAY, DATE, LONG_STRING = 8, 9, 10, 11, 12


class EcmaArray(dict):
    """A dict that encodes as an AMF0 ECMA array (onMetaData)."""


def _enc_str(s: str) -> bytes:
    b = s.encode()
    return struct.pack(">H", len(b)) + b


def encode(*values) -> bytes:
    """Encode values in order. ``None`` is null, dict an object, ``EcmaArray`` an ECMA array."""
    out = bytearray()
    for v in values:
        if v is None:
            out.append(NULL)
        elif isinstance(v, bool):
            out += bytes((BOOLEAN, 1 if v else 0))
        elif isinstance(v, (int, float)):
            out.append(NUMBER)
            out += struct.pack(">d", float(v))
        elif isinstance(v, str):
            out.append(STRING)
            out += _enc_str(v)
        elif isinstance(v, dict):
            if isinstance(v, EcmaArray):
                out.append(ECMA_ARRAY)
                out += struct.pack(">I", len(v))
            else:
                out.append(OBJECT)
            for k, x in v.items():
                out += _enc_str(k)
                out += encode(x)
            out += b"\x00\x00\x09"
        else:
            raise TypeError(f"cannot AMF0-encode {type(v).__name__}")
    return bytes(out)


def _dec(b: bytes, i: int, depth: int = 0):
    if depth > 16:
        raise ValueError("AMF0 nesting too deep")
    t = b[i]
    i += 1
    if t == NUMBER:
        return struct.unpack_from(">d", b, i)[0], i + 8
    if t == BOOLEAN:
        return b[i] != 0, i + 1
    if t == STRING:
        n = struct.unpack_from(">H", b, i)[0]
        return b[i + 2:i + 2 + n].decode("utf-8", "replace"), i + 2 + n
    if t == LONG_STRING:
        n = struct.unpack_from(">I", b, i)[0]
        return b[i + 4:i + 4 + n].decode("utf-8", "replace"), i + 4 + n
    if t in (NULL, UNDEFINED):
        return None, i
    if t in (OBJECT, ECMA_ARRAY):
        if t == ECMA_ARRAY:
            i += 4
        d = {}
        while True:
            if i + 3 > len(b):
                raise ValueError("AMF0 object truncated")
            n = struct.unpack_from(">H", b, i)[0]
            if n == 0 and b[i + 2] == OBJECT_END:
                return d, i + 3
            k = b[i + 2:i + 2 + n].decode("utf-8", "replace")
            d[k], i = _dec(b, i + 2 + n, depth + 1)
    if t == STRICT_ARRAY:
        n = struct.unpack_from(">I", b, i)[0]
        i += 4
        arr = []
        for _ in range(n):
            v, i = _dec(b, i, depth + 1)
            arr.append(v)
        return arr, i
    if t == DATE:
        return struct.unpack_from(">d", b, i)[0], i + 10
    raise ValueError(f"AMF0 type {t} not supported")


def decode_all(b: bytes) -> list:
    """Decode every value in ``b``. Raises ValueError (or IndexError/struct.error) on bad input."""
    out = []
    i = 0
    while i < len(b):
        v, i = _dec(b, i)
        out.append(v)
    return out
