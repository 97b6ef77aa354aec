"""RTP header parse/write, unwrapping, reorder buffer (rtmpgop.protocol.rtp.packet)."""

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from rtmpgop.errors import ProtocolError, RTPError
from rtmpgop.protocol.rtp.packet import (
    REORDER_WINDOW, ReorderBuffer, RTPPacket, Unwrapper, parse_rtp)

# (name, wire bytes, decoded)
GOLDEN = [
    ("minimal", bytes.fromhex("80600001000000640000abcd") + b"PAY",
     RTPPacket(96, 1, 100, 0xABCD, b"PAY")),
    ("marker+csrc", bytes.fromhex("82e1ffff ffffffff 00000001 00000002 00000003".replace(" ", ""))
     + b"x", RTPPacket(97, 0xFFFF, 0xFFFFFFFF, 1, b"x", marker=True, csrc=(2, 3))),
    ("onvif extension", bytes.fromhex("90600002000000010000000a abac0001 01020304".replace(" ", ""))
     + b"\x65\x88", RTPPacket(96, 2, 1, 10, b"\x65\x88", extension_profile=0xABAC,
                              extension=b"\x01\x02\x03\x04")),
    ("padding", bytes.fromhex("a0000003000000020000000b") + b"ab\x00\x00\x03",
     RTPPacket(0, 3, 2, 11, b"ab", padding=3)),
]


@pytest.mark.parametrize("name,wire,decoded", GOLDEN, ids=[g[0] for g in GOLDEN])
def test_golden_parse(name, wire, decoded):
    p = parse_rtp(wire)
    assert (p.payload_type, p.sequence, p.timestamp, p.ssrc, p.marker, p.csrc,
            p.extension_profile, p.extension) == (
        decoded.payload_type, decoded.sequence, decoded.timestamp, decoded.ssrc,
        decoded.marker, decoded.csrc, decoded.extension_profile, decoded.extension)
    assert bytes(p.payload) == decoded.payload


@pytest.mark.parametrize("name,wire,decoded", GOLDEN, ids=[g[0] for g in GOLDEN])
def test_golden_write(name, wire, decoded):
    assert decoded.to_bytes() == wire
    assert decoded.size() == len(wire)
    assert decoded.write_header() + decoded.payload == wire[:decoded.header_size()
                                                          + len(decoded.payload)]


def test_payload_is_zero_copy_view():
    buf = bytearray(GOLDEN[0][1])
    p = parse_rtp(memoryview(buf))
    buf[-1] = ord("Z")
    assert bytes(p.payload) == b"PAZ"


def test_trailing_bytes_are_payload_and_untouched():
    wire = GOLDEN[0][1] + b"tail"
    assert bytes(parse_rtp(wire).payload) == b"PAYtail"


@pytest.mark.parametrize("wire,field", [
    (b"\x80\x60\x00", "length"),
    (bytes.fromhex("40600001000000640000abcd"), "version"),
    (bytes.fromhex("83600001000000640000abcd"), "csrc_count"),
    (bytes.fromhex("90600001000000640000abcd0001"), "length"),
    (bytes.fromhex("90600001000000640000abcd00010005"), "words"),
    (bytes.fromhex("a0600001000000640000abcd00"), "padding"),
    (bytes.fromhex("a0600001000000640000abcd09"), "padding"),
])
def test_errors_carry_fields(wire, field):
    with pytest.raises(RTPError) as ei:
        parse_rtp(wire)
    assert field in ei.value.fields


@given(st.binary(max_size=80))
@example(b"\xa0" + bytes(11))
def test_fuzz_contract(data):
    try:
        p = parse_rtp(data)
    except ProtocolError:
        return
    assert len(p.payload) <= len(data) - 12


@given(st.integers(0, 127), st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF),
       st.integers(0, 0xFFFFFFFF), st.binary(max_size=50), st.booleans(),
       st.lists(st.integers(0, 0xFFFFFFFF), max_size=15), st.integers(0, 255))
def test_roundtrip(pt, seq, ts, ssrc, payload, marker, csrc, padding):
    p = RTPPacket(pt, seq, ts, ssrc, payload, marker, tuple(csrc), padding=padding)
    q = parse_rtp(p.to_bytes())
    assert (q.payload_type, q.sequence, q.timestamp, q.ssrc, bytes(q.payload), q.marker,
            q.csrc) == (pt, seq, ts, ssrc, payload, marker, tuple(csrc))


def test_unwrap_seq_wraps_forward_and_back():
    u = Unwrapper(16)
    assert [u.unwrap(v) for v in (65534, 65535, 0, 1, 65535, 2)] == [
        65534, 65535, 65536, 65537, 65535, 65538]


def test_unwrap_timestamp_32bit():
    u = Unwrapper(32)
    vals = [0xFFFFFF00, 0x00000100, 0x00010000]
    assert [u.unwrap(v) for v in vals] == [0xFFFFFF00, 0x100000100, 0x100010000]


def _pkt(seq):
    return RTPPacket(96, seq & 0xFFFF, 0, 1, b"")


@given(st.permutations(list(range(12))))
def test_reorder_within_window_restores_order(perm):
    rb = ReorderBuffer()
    base = 65530  # crosses the 16-bit wrap
    out = [_pkt(base)] and rb.push(_pkt(base))
    for i in perm:
        out += rb.push(_pkt(base + 1 + i))
    assert [p.sequence for p in out] == [(base + i) & 0xFFFF for i in range(13)]
    assert rb.lost == 0 and rb.late == 0


def test_reorder_counts_duplicates_and_late():
    rb = ReorderBuffer()
    assert [p.sequence for p in rb.push(_pkt(10))] == [10]
    assert rb.push(_pkt(10)) == []
    assert rb.push(_pkt(12)) == []
    assert rb.push(_pkt(12)) == []
    assert [p.sequence for p in rb.push(_pkt(11))] == [11, 12]
    assert rb.push(_pkt(9)) == []
    assert rb.late == 3


def test_reorder_gap_beyond_window_counts_lost():
    rb = ReorderBuffer()
    rb.push(_pkt(0))
    assert rb.push(_pkt(2)) == []
    assert rb.push(_pkt(3)) == []
    out = rb.push(_pkt(1 + REORDER_WINDOW + 5))
    assert [p.sequence for p in out] == [2, 3, 1 + REORDER_WINDOW + 5]
    assert rb.lost == REORDER_WINDOW + 5 - 2
    assert [p.sequence for p in rb.push(_pkt(REORDER_WINDOW + 7))] == [REORDER_WINDOW + 7]


def test_reorder_flush_counts_holes():
    rb = ReorderBuffer()
    rb.push(_pkt(0))
    rb.push(_pkt(3))
    assert [p.sequence for p in rb.flush()] == [3]
    assert rb.lost == 2
