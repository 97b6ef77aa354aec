"""BitReader (u/ue/se/skip) and RBSP escaping."""

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from rtmpgop.codecs.bits import BitReader, escape_rbsp, unescape_rbsp
from rtmpgop.errors import CodecError

# (name, bits as text, decoded ue values) — H.264 table 9-2
UE_GOLDEN = [
    ("zero", "1", [0]),
    ("one two", "010" "011", [1, 2]),
    ("three..six", "00100" "00101" "00110" "00111", [3, 4, 5, 6]),
    ("seven", "0001000", [7]),
]


def bits_to_bytes(bits: str) -> bytes:
    bits += "0" * (-len(bits) % 8)
    return int(bits, 2).to_bytes(len(bits) // 8, "big") if bits else b""


def ue_bits(v: int) -> str:
    b = bin(v + 1)[2:]
    return "0" * (len(b) - 1) + b


@pytest.mark.parametrize("name,bits,values", UE_GOLDEN)
def test_ue_golden_both_directions(name, bits, values):
    r = BitReader(bits_to_bytes(bits))
    assert [r.ue() for _ in values] == values
    assert "".join(ue_bits(v) for v in values) == bits


def test_se_mapping():
    # se(v): codeNum k -> (-1)^(k+1) * ceil(k/2) (H.264 table 9-3)
    r = BitReader(bits_to_bytes("".join(ue_bits(k) for k in range(5))))
    assert [r.se() for _ in range(5)] == [0, 1, -1, 2, -2]


def test_u_across_bytes_and_bits_left():
    r = BitReader(b"\xab\xcd\xef")
    assert r.u(4) == 0xA
    assert r.u(12) == 0xBCD
    assert r.bits_left == 8
    r.skip(3)
    assert r.u(5) == 0xEF & 0x1F
    assert r.bits_left == 0
    assert r.u(0) == 0
    with pytest.raises(CodecError):
        r.u(1)
    with pytest.raises(CodecError):
        r.skip(1)


def test_memoryview_input_and_u32():
    r = BitReader(memoryview(b"\x00\x00\x00\x01\xff"))
    assert r.u(32) == 1
    assert r.u(8) == 255


def test_ue_too_long_is_codec_error():
    with pytest.raises(CodecError):
        BitReader(b"\x00" * 8 + b"\xff").ue()


@given(st.lists(st.integers(0, 2**31 - 2), max_size=20))
def test_ue_round_trip(values):
    r = BitReader(bits_to_bytes("".join(ue_bits(v) for v in values)))
    assert [r.ue() for _ in values] == values


@given(st.binary(max_size=64))
@example(b"\x00\x00\x03\x00\x00\x03")
def test_reader_fuzz_contract(data):
    r = BitReader(data)
    try:
        while True:
            r.ue()
            r.se()
            r.u(7)
    except CodecError:
        pass
    assert 0 <= r.bits_left <= len(data) * 8


RBSP_GOLDEN = [
    ("plain", b"\x67\x42\x00\x1f", b"\x67\x42\x00\x1f"),
    ("one", b"\x00\x00\x03\x01", b"\x00\x00\x01"),
    ("two", b"\x00\x00\x03\x00\x00\x03\x00", b"\x00\x00\x00\x00\x00"),
    ("trailing", b"\xaa\x00\x00\x03", b"\xaa\x00\x00"),
    ("not emulation", b"\x00\x00\x04", b"\x00\x00\x04"),
]


@pytest.mark.parametrize("name,escaped,raw", RBSP_GOLDEN)
def test_rbsp_golden(name, escaped, raw):
    assert unescape_rbsp(escaped) == raw
    if name != "trailing":  # a trailing 00 00 needs no 03 when nothing follows
        assert escape_rbsp(raw) == escaped


@given(st.binary(max_size=200))
@example(b"\x00\x00\x00\x00\x00")
def test_rbsp_round_trip(raw):
    esc = escape_rbsp(raw)
    assert b"\x00\x00\x00" not in esc and b"\x00\x00\x01" not in esc and b"\x00\x00\x02" not in esc
    assert unescape_rbsp(esc) == raw
