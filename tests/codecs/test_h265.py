"""H.265: SPS parsing against libx265 output, hvcC parse/build, CODECS strings, keyframes."""

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from rtmpgop.codecs import h265
from rtmpgop.errors import CodecError

# Golden: libx265 4.x Main, 320x240, 30 fps (VPS, SPS, PPS from FFmpeg's hvcC)
VPS = bytes.fromhex("40010c01ffff01600000030090000003000003003c959009")
SPS = bytes.fromhex("42010101600000030090000003000003003ca00a080f16595912930b9a0200000300"
                    "02000003003c10")
PPS = bytes.fromhex("4401c073c189")

X265 = (("x265-params", "log-level=error"),)


def test_golden_sps():
    info = h265.parse_sps(SPS)
    assert (info.general_profile_idc, info.general_tier_flag, info.general_level_idc) == (1, 0, 60)
    assert info.general_profile_compatibility_flags == 0x60000000
    assert info.general_constraint_indicator_flags == bytes.fromhex("900000000000")
    assert (info.width, info.height, info.frame_rate) == (320, 240, 30.0)
    assert (info.chroma_format_idc, info.bit_depth_luma, info.bit_depth_chroma) == (1, 8, 8)
    assert h265.codec_string(SPS) == "hvc1.1.6.L60.90"


def test_hvcc_build_parse_golden():
    rec = h265.build_hvcc([VPS], [SPS], [PPS])
    assert rec[:23] == bytes.fromhex("010160000000900000000000" "3c" "f000fcfdf8f8" "0000" "0f" "03")
    assert rec[0] == 1 and rec[1] == 0x01 and rec[12] == 60 and rec[21] & 3 == 3 and rec[22] == 3
    assert rec[23] == 0x80 | 32 and rec[23 + 3 + 2 + len(VPS)] == 0x80 | 33
    p = h265.parse_hvcc(rec)
    assert (p.vps, p.sps, p.pps, p.length_size) == ((VPS,), (SPS,), (PPS,), 4)
    assert (p.general_profile_idc, p.general_level_idc, p.chroma_format_idc) == (1, 60, 1)
    assert p.general_constraint_indicator_flags == bytes.fromhex("900000000000")


@pytest.mark.parametrize("pix,profile,depth,name", [
    ("yuv420p", 1, 8, "Main"), ("yuv420p10le", 2, 10, "Main 10"), ("yuv422p", 4, 8, "Rext")])
@pytest.mark.parametrize("size", [(64, 48), (320, 240), (200, 120)])
def test_libx265(encode, pix, profile, depth, name, size):
    e = encode("libx265", size[0], size[1], pix, X265)
    assert e.profile == name
    rec = h265.parse_hvcc(e.extradata)
    info = h265.parse_sps(rec.sps[0])
    assert (info.width, info.height) == (e.width, e.height) == size
    assert (info.general_profile_idc, info.bit_depth_luma) == (profile, depth)
    assert info.frame_rate == 25.0
    assert len(rec.vps) == len(rec.pps) == 1 and rec.other  # x265 puts its SEI in hvcC
    ours = h265.parse_hvcc(h265.build_hvcc(list(rec.vps), list(rec.sps), list(rec.pps)))
    assert ours.general_profile_compatibility_flags == rec.general_profile_compatibility_flags
    assert ours.general_constraint_indicator_flags == rec.general_constraint_indicator_flags
    assert (ours.bit_depth_luma, ours.chroma_format_idc) == (rec.bit_depth_luma, rec.chroma_format_idc)
    keys = [h265.is_keyframe(p) for _, p in e.packets]
    assert keys == [k for k, _ in e.packets] and keys[0]


def test_codec_strings():
    assert h265.codec_string_from(0, 0, 1, 0x60000000, bytes.fromhex("b00000000000"), 93) == \
        "hvc1.1.6.L93.B0"
    assert h265.codec_string_from(0, 1, 2, 0x20000000, bytes(6), 120) == "hvc1.2.4.H120"
    assert h265.codec_string_from(1, 0, 4, 0x08000000, bytes.fromhex("900800000000"), 153) == \
        "hvc1.A4.10.L153.90.8"


def test_is_keyframe_types():
    for typ in range(0, 41):
        nal = bytes(((typ << 1), 1, 0xAA))
        assert h265.is_keyframe(b"\x00\x00\x00\x03" + nal) == (16 <= typ <= 21)


@pytest.mark.parametrize("cut", range(1, 30))
def test_hvcc_truncated(cut):
    rec = h265.build_hvcc([VPS], [SPS], [PPS])
    with pytest.raises(CodecError):
        h265.parse_hvcc(rec[:cut])


def test_parse_sps_rejects_vps():
    with pytest.raises(CodecError):
        h265.parse_sps(VPS)


@given(st.binary(max_size=80))
@example(b"\x42\x01" + b"\x00" * 20)
def test_fuzz_contract(data):
    for fn in (h265.parse_sps, h265.parse_hvcc, h265.is_keyframe, h265.codec_string):
        try:
            fn(data)
        except CodecError:
            pass


@given(st.integers(3, len(SPS) - 1))
def test_sps_truncated(cut):
    try:
        info = h265.parse_sps(SPS[:cut])
    except CodecError:
        return
    assert (info.width, info.height) == (320, 240)


def test_hvcc_trailing_bytes_ignored():
    rec = h265.build_hvcc([VPS], [SPS], [PPS])
    assert h265.parse_hvcc(rec + b"\x00\x01").sps == (SPS,)
