"""AMF0: golden values both directions, trailing bytes, truncation, limits, fuzz contract."""

import math

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from rtmpgop.errors import AMFError, LimitExceeded, ProtocolError, Unsupported
from rtmpgop.protocol import amf0
from rtmpgop.protocol.amf0 import UNDEFINED, Date, ECMAArray, LongString, TypedObject

GOLDEN = [
    ("number", "00 3ff0000000000000", 1.0),
    ("number zero", "00 0000000000000000", 0.0),
    ("true", "01 01", True),
    ("false", "01 00", False),
    ("string", "02 0007 636f6e6e656374", "connect"),
    ("empty string", "02 0000", ""),
    ("utf8 string", "02 0002 c3a9", "\u00e9"),
    ("object", "03 0003 617070 02 0004 6c697665 0000 09", {"app": "live"}),
    ("empty object", "03 000009", {}),
    ("null", "05", None),
    ("undefined", "06", UNDEFINED),
    ("ecma array", "08 00000001 0005 7769647468 00 4074000000000000 000009",
     ECMAArray(width=320.0)),
    ("strict array", "0a 00000002 02 0004 68766331 02 0004 61763031", ["hvc1", "av01"]),
    ("date", "0b 4270000000000000 0000", Date(1099511627776.0, 0)),
    ("long string", "0c 00000003 616263", LongString("abc")),
    ("typed object", "10 0001 43 0001 78 05 000009", TypedObject("C", {"x": None})),
    ("nested", "03 0001 61 03 0001 62 01 01 000009 000009", {"a": {"b": True}}),
]


@pytest.mark.parametrize("name,wire,value", GOLDEN, ids=[g[0] for g in GOLDEN])
def test_golden_decode(name, wire, value):
    data = bytes.fromhex(wire.replace(" ", ""))
    got, end = amf0.decode(data)
    assert got == value and type(got) is type(value)
    assert end == len(data)


@pytest.mark.parametrize("name,wire,value", GOLDEN, ids=[g[0] for g in GOLDEN])
def test_golden_encode(name, wire, value):
    assert amf0.encode(value) == bytes.fromhex(wire.replace(" ", ""))


@pytest.mark.parametrize("name,wire,value", GOLDEN, ids=[g[0] for g in GOLDEN])
def test_trailing_bytes_untouched(name, wire, value):
    data = bytes.fromhex(wire.replace(" ", "")) + b"\xde\xad"
    got, end = amf0.decode(data)
    assert got == value and end == len(data) - 2


@pytest.mark.parametrize("name,wire,value", GOLDEN, ids=[g[0] for g in GOLDEN])
def test_every_truncation_raises(name, wire, value):
    data = bytes.fromhex(wire.replace(" ", ""))
    for n in range(len(data)):
        with pytest.raises(AMFError):
            amf0.decode(data[:n])


def test_decode_all_command():
    body = amf0.encode("connect", 1.0, {"app": "live", "tcUrl": "rtmp://h/live"}, None)
    assert amf0.decode_all(body) == ["connect", 1.0, {"app": "live", "tcUrl": "rtmp://h/live"}, None]


def test_object_order_kept():
    d = {"z": 1.0, "a": 2.0, "m": 3.0}
    assert list(amf0.decode(amf0.encode(d))[0]) == ["z", "a", "m"]


def test_ecma_count_is_only_a_hint():
    # FFmpeg and OBS write count 0: read to the end marker
    wire = bytes.fromhex("08 00000000 0001 61 01 01 0001 62 01 00 000009".replace(" ", ""))
    assert amf0.decode(wire)[0] == {"a": True, "b": False}


def test_long_python_string_encodes_as_long_string():
    s = "x" * 70000
    data = amf0.encode(s)
    assert data[0] == 0x0C and amf0.decode(data)[0] == s


def test_depth_limit():
    deep = b"\x0a\x00\x00\x00\x01" * (amf0.MAX_DEPTH + 2) + b"\x05"
    with pytest.raises(LimitExceeded) as e:
        amf0.decode(deep)
    assert e.value.limit == "MAX_DEPTH"


def test_item_limit():
    many = b"\x05" * (amf0.MAX_ITEMS + 1)
    with pytest.raises(LimitExceeded) as e:
        amf0.decode_all(many)
    assert e.value.limit == "MAX_ITEMS"


def test_strict_array_count_checked_before_reading():
    with pytest.raises(LimitExceeded):
        amf0.decode(b"\x0a\xff\xff\xff\xff")


def test_reference_and_amf3_refused():
    with pytest.raises(Unsupported):
        amf0.decode(b"\x07\x00\x01")
    with pytest.raises(Unsupported):
        amf0.decode(b"\x11\x01")


def test_unknown_marker():
    with pytest.raises(AMFError) as e:
        amf0.decode(b"\x42")
    assert e.value.fields["marker"] == 0x42


def test_encode_refuses_unknown_types():
    with pytest.raises(TypeError):
        amf0.encode(object())


values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda ch: st.lists(ch, max_size=4) | st.dictionaries(st.text(max_size=8), ch, max_size=4),
    max_leaves=20)


@given(values)
def test_roundtrip(v):
    got = amf0.decode_all(amf0.encode(v))
    assert got == [v]


@given(st.binary(max_size=200))
@example(b"\x03\x00\x00")
@example(b"\x08\x00\x00\x00\x00\x00\x00")
@example(b"\x0b" + b"\x7f\xf8" + b"\x00" * 8)
def test_fuzz_contract(data):
    try:
        out = amf0.decode_all(data)
    except ProtocolError:
        return
    assert isinstance(out, list)


def test_nan_date_decodes():
    v, _ = amf0.decode(b"\x0b\x7f\xf8\x00\x00\x00\x00\x00\x00\x00\x00")
    assert math.isnan(v.ms)
