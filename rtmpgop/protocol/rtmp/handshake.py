"""RTMP handshake (Adobe RTMP 1.0 section 5.2; the FP9 "digest" variant as in nginx-rtmp,
FFmpeg ``rtmpproto.c`` and gortmplib).

Strategy, server side: answer C0+C1 with S0+S1+S2 in one write without waiting for C2
(GStreamer reads all 3073 bytes before it writes C2). By default the handshake is simple: S1
version bytes are zero and S2 echoes C1 (GStreamer demands the echo, FFmpeg only checks when
S1's version is non-zero). When C1 carries a valid digest (FFmpeg, Flash), the server answers
with a digest S1 and a signed S2, which FFmpeg verifies when it plays. C2 is read and only
compared for the log. Client side: C1 carries a digest like FFmpeg's; S1/S2 are verified only
when S1 announces a version (as FFmpeg does).

Pure functions; randomness comes from ``os.urandom`` and time is a parameter.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from rtmpgop.errors import HandshakeError, Unsupported

VERSION = 3
"""The only protocol version we speak (6 = RTMPE, refused)."""

PACKET_SIZE = 1536
"""Size of C1/S1/C2/S2."""

DIGEST_SIZE = 32

FP_KEY = b"Genuine Adobe Flash Player 001"
FMS_KEY = b"Genuine Adobe Flash Media Server 001"
_KEY_TAIL = bytes.fromhex("F0EEC24A8068BEE82E00D0D1029E7E576EEC5D2D29806FAB93B8E636CFEB31AE")
FP_KEY_FULL = FP_KEY + _KEY_TAIL
FMS_KEY_FULL = FMS_KEY + _KEY_TAIL

SERVER_VERSION = bytes.fromhex("0D0E0A0D")
"""Version bytes of a digest S1 (nginx-rtmp's choice)."""

CLIENT_VERSION = bytes([9, 0, 124, 2])
"""Version bytes of our digest C1 (FFmpeg's choice)."""

_SCHEME_BASES = (8, 772)


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def digest_offset(packet: bytes, base: int) -> int:
    """Position of the 32-byte digest in a 1536-byte packet for scheme ``base`` (8 or 772)."""
    return (packet[base] + packet[base + 1] + packet[base + 2] + packet[base + 3]) % 728 + base + 4


def _digest_at(packet: bytes, off: int, key: bytes) -> bytes:
    return _hmac(key, packet[:off] + packet[off + DIGEST_SIZE:])


def find_digest(packet: bytes, key: bytes) -> int | None:
    """Offset of a valid digest (signed with ``key``) in ``packet``, trying both schemes, or None."""
    for base in _SCHEME_BASES:
        off = digest_offset(packet, base)
        if hmac.compare_digest(_digest_at(packet, off, key), packet[off:off + DIGEST_SIZE]):
            return off
    return None


def _imprint(packet: bytearray, base: int, key: bytes) -> int:
    off = digest_offset(packet, base)
    packet[off:off + DIGEST_SIZE] = _digest_at(bytes(packet), off, key)
    return off


def _random_packet(time_ms: int, version: bytes) -> bytearray:
    pkt = bytearray(os.urandom(PACKET_SIZE))
    pkt[0:4] = (time_ms & 0xFFFFFFFF).to_bytes(4, "big")
    pkt[4:8] = version
    return pkt


def check_c0(c0: int) -> None:
    """Raise ``Unsupported`` for RTMPE (6/8) and ``HandshakeError`` for other versions."""
    if c0 in (6, 8, 9):
        raise Unsupported("encrypted RTMP (RTMPE) is not supported", version=c0)
    if c0 != VERSION:
        raise HandshakeError("bad RTMP version byte", version=c0)


def server_response(c1: bytes, time_ms: int = 0) -> tuple[bytes, bool]:
    """S0+S1+S2 for client packet ``c1``. Returns ``(bytes, digest_used)``."""
    if len(c1) != PACKET_SIZE:
        raise HandshakeError("short C1", length=len(c1))
    off = find_digest(c1, FP_KEY)
    if off is None:
        s1 = _random_packet(time_ms, b"\x00\x00\x00\x00")
        return bytes([VERSION]) + bytes(s1) + c1, False
    s1 = _random_packet(time_ms, SERVER_VERSION)
    base = 8 if digest_offset(c1, 8) == off else 772
    _imprint(s1, base, FMS_KEY)
    key = _hmac(FMS_KEY_FULL, c1[off:off + DIGEST_SIZE])
    s2 = bytearray(os.urandom(PACKET_SIZE))
    s2[-DIGEST_SIZE:] = _hmac(key, bytes(s2[:-DIGEST_SIZE]))
    return bytes([VERSION]) + bytes(s1) + bytes(s2), True


def client_hello(time_ms: int = 0, digest: bool = True) -> bytes:
    """C0+C1; with ``digest`` the C1 carries an FP9 digest (scheme 8) like FFmpeg's."""
    c1 = _random_packet(time_ms, CLIENT_VERSION if digest else b"\x00\x00\x00\x00")
    if digest:
        _imprint(c1, 8, FP_KEY)
    return bytes([VERSION]) + bytes(c1)


def client_finish(c1: bytes, s0s1s2: bytes) -> bytes:
    """Verify S0+S1+S2 against our ``c1`` and return C2 (= S1 echoed).

    When S1 announces a version (byte 4 non-zero) and our C1 had a digest, S1's digest and S2's
    signature must verify (FFmpeg's rule). Raises ``HandshakeError``/``Unsupported``."""
    if len(s0s1s2) != 1 + 2 * PACKET_SIZE:
        raise HandshakeError("short S0+S1+S2", length=len(s0s1s2))
    check_c0(s0s1s2[0])
    s1 = s0s1s2[1:1 + PACKET_SIZE]
    s2 = s0s1s2[1 + PACKET_SIZE:]
    c1_off = find_digest(c1, FP_KEY)
    if s1[4] != 0 and c1_off is not None:
        if find_digest(s1, FMS_KEY) is None:
            raise HandshakeError("S1 digest does not verify")
        key = _hmac(FMS_KEY_FULL, c1[c1_off:c1_off + DIGEST_SIZE])
        if not hmac.compare_digest(_hmac(key, s2[:-DIGEST_SIZE]), s2[-DIGEST_SIZE:]):
            raise HandshakeError("S2 signature does not verify")
    elif s2[8:] != c1[8:]:
        raise HandshakeError("S2 does not echo C1")
    return bytes(s1)
