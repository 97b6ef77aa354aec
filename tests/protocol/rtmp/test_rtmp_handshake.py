"""Handshake: simple echo, FP9 digest answered and verified the way FFmpeg verifies it."""

import os

import pytest

from rtmpgop.errors import HandshakeError, Unsupported
from rtmpgop.protocol.rtmp import handshake as hs


def test_simple_handshake_echoes_c1_and_zero_version():
    c1 = bytes(4) + bytes(4) + os.urandom(1528)  # librtmp/GStreamer style: no digest
    out, digest = hs.server_response(c1, time_ms=1234)
    assert not digest and len(out) == 1 + 2 * 1536
    assert out[0] == 3
    s1, s2 = out[1:1537], out[1537:]
    assert s1[0:4] == (1234).to_bytes(4, "big") and s1[4:8] == bytes(4)
    assert s2 == c1  # GStreamer checks S2[8:] == C1 random


def test_digest_c1_gets_digest_s1_and_signed_s2():
    hello = hs.client_hello(digest=True)
    out, digest = hs.server_response(hello[1:])
    assert digest
    s1 = out[1:1537]
    assert s1[4:8] == hs.SERVER_VERSION
    assert hs.find_digest(s1, hs.FMS_KEY) is not None
    # our client performs FFmpeg's check (S1 digest + S2 signature) and returns C2 = S1
    assert hs.client_finish(hello[1:], out) == s1


def test_client_detects_bad_s2_signature():
    hello = hs.client_hello(digest=True)
    out, _ = hs.server_response(hello[1:])
    bad = out[:-1] + bytes([out[-1] ^ 1])
    with pytest.raises(HandshakeError):
        hs.client_finish(hello[1:], bad)


def test_client_without_digest_demands_echo():
    hello = hs.client_hello(digest=False)
    out, digest = hs.server_response(hello[1:])
    assert not digest
    assert hs.client_finish(hello[1:], out) == out[1:1537]
    with pytest.raises(HandshakeError):
        hs.client_finish(hello[1:], out[:1600] + bytes(1537 + 1536 - 1600))


def test_digest_scheme_772_is_found():
    pkt = bytearray(os.urandom(1536))
    off = hs._imprint(pkt, 772, hs.FP_KEY)
    assert hs.find_digest(bytes(pkt), hs.FP_KEY) == off


def test_c0_versions():
    hs.check_c0(3)
    with pytest.raises(Unsupported):
        hs.check_c0(6)
    with pytest.raises(HandshakeError):
        hs.check_c0(0x47)  # "GET ..." sent to the RTMP port


def test_short_c1():
    with pytest.raises(HandshakeError):
        hs.server_response(b"x" * 10)
