"""AV1: OBU framing, sequence header parsing against libsvtav1, av1C build/parse, keyframes."""

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from rtmpgop.codecs import av1
from rtmpgop.errors import CodecError

# Golden: libsvtav1 (FFmpeg 8.1 MP4 muxer) 320x240 8-bit: av1C with one sequence header OBU
SVT_AV1C = bytes.fromhex("81000c000a0b000000043cffbc02f80040")
SEQ_OBU = SVT_AV1C[4:]


def test_golden_av1c():
    rec = av1.parse_av1c(SVT_AV1C)
    assert (rec.seq_profile, rec.seq_level_idx_0, rec.seq_tier_0) == (0, 0, 0)
    assert (rec.high_bitdepth, rec.monochrome, rec.chroma_subsampling_x,
            rec.chroma_subsampling_y) == (False, False, 1, 1)
    seq = rec.sequence_header
    assert (seq.max_frame_width, seq.max_frame_height, seq.bit_depth) == (320, 240, 8)
    assert av1.codec_string(seq) == "av01.0.00M.08"
    assert av1.build_av1c(SEQ_OBU) == SVT_AV1C


OBUS = [  # (name, bytes, [(type, payload)])
    ("td", b"\x12\x00", [(2, b"")]),
    ("td+padding", b"\x12\x00\x7a\x02\xaa\xbb", [(2, b""), (15, b"\xaa\xbb")]),
    ("no size field", b"\x78\x01\x02", [(15, b"\x01\x02")]),
    ("extension", b"\x7e\x28\x01\xcc", [(15, b"\xcc")]),
    ("leb128 2 bytes", b"\x7a\x80\x01" + b"\x00" * 128, [(15, b"\x00" * 128)]),
]


@pytest.mark.parametrize("name,data,obus", OBUS)
def test_iter_obus_golden(name, data, obus):
    got = [(o.type, bytes(o.payload)) for o in av1.iter_obus(data)]
    assert got == obus
    assert b"".join(bytes(o.data) for o in av1.iter_obus(data)) == data


def test_extension_ids():
    (o,) = av1.iter_obus(b"\x7e\x28\x01\xcc")
    assert (o.temporal_id, o.spatial_id, o.has_extension) == (1, 1, True)


@pytest.mark.parametrize("bad", [b"\x92\x00", b"\x12\x05\x00", b"\x7e", b"\x12\x80"])
def test_iter_obus_bad(bad):
    with pytest.raises(CodecError):
        list(av1.iter_obus(bad))


@pytest.mark.parametrize("v", [0, 1, 127, 128, 300, 2**21, 2**35])
def test_leb128_round_trip(v):
    enc = av1.leb128(v)
    assert av1.read_leb128(enc + b"\xff", 0) == (v, len(enc))


@pytest.mark.parametrize("pix,depth", [("yuv420p", 8), ("yuv420p10le", 10)])
@pytest.mark.parametrize("size", [(64, 48), (320, 240), (200, 120)])
def test_libsvtav1(encode, pix, depth, size):
    e = encode("libsvtav1", size[0], size[1], pix)
    rec = av1.parse_av1c(e.extradata)
    seq = rec.sequence_header
    assert (seq.max_frame_width, seq.max_frame_height) == (e.width, e.height) == size
    assert seq.bit_depth == depth and rec.high_bitdepth == (depth > 8)
    assert e.profile == "Main" and seq.seq_profile == 0
    assert av1.build_av1c(rec.config_obus) == e.extradata
    keys = [av1.is_keyframe(p) for _, p in e.packets]
    assert keys == [k for k, _ in e.packets] and keys[0]
    # a keyframe temporal unit carries its own sequence header
    assert av1.find_sequence_header(e.packets[0][1]) is not None


def test_build_av1c_adds_size_field():
    seq = av1.find_sequence_header(SEQ_OBU)
    bare = bytes((SEQ_OBU[0] & ~0x02,)) + bytes(seq.payload)  # obu_has_size_field = 0
    assert av1.build_av1c(bare) == SVT_AV1C


def test_build_av1c_without_sequence_header():
    with pytest.raises(CodecError):
        av1.build_av1c(b"\x12\x00")


def test_is_keyframe_frame_types():
    def tu(first_byte):
        return b"\x12\x00" + b"\x32\x02" + bytes((first_byte, 0))  # TD + frame OBU
    assert av1.is_keyframe(tu(0b0001_0000))  # show_existing 0, frame_type 0 (KEY), show 1
    assert not av1.is_keyframe(tu(0b0011_0000))  # frame_type 1 (INTER)
    assert not av1.is_keyframe(tu(0b1000_0000))  # show_existing_frame
    assert not av1.is_keyframe(b"\x12\x00")


@given(st.binary(max_size=64))
@example(b"\x0a\x01\xff")
@example(b"\x81\x00\x0c\x00\x0a\x01\x00")
def test_fuzz_contract(data):
    for fn in (lambda d: list(av1.iter_obus(d)), av1.parse_av1c, av1.build_av1c,
               av1.is_keyframe, av1.parse_sequence_header):
        try:
            fn(data)
        except CodecError:
            pass


@given(st.integers(0, len(SEQ_OBU) - 2))
def test_sequence_header_truncated(cut):
    try:
        seq = av1.parse_sequence_header(SEQ_OBU[2:2 + cut])
    except CodecError:
        assert cut < len(SEQ_OBU) - 3  # only the last payload byte (trailing bits) may go
        return
    assert (seq.max_frame_width, seq.max_frame_height, seq.bit_depth) == (320, 240, 8)


def test_codec_string_from_bytes():
    assert av1.codec_string(SVT_AV1C) == av1.codec_string(SEQ_OBU) == "av01.0.00M.08"
    with pytest.raises(CodecError):
        av1.codec_string(b"\x12\x00")


def test_av1c_trailing_bytes_are_kept_as_config_obus():
    # configOBUs may hold more OBUs (metadata); a padding OBU after the header parses fine
    rec = av1.parse_av1c(SVT_AV1C + b"\x7a\x01\x00")
    assert rec.sequence_header.max_frame_width == 320 and rec.config_obus.endswith(b"\x7a\x01\x00")
