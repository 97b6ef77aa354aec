"""H.264: SPS parsing against libx264 output, avcC parse/build, AVCC/Annex-B framing."""

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from rtmpgop.codecs import h264
from rtmpgop.codecs.bits import escape_rbsp
from rtmpgop.errors import CodecError

# Golden: libx264 (FFmpeg 8.1), 320x240 30 fps, profile high, through the MP4 muxer.
X264_HIGH_AVCC = bytes.fromhex(
    "0164000dffe100186764000dacd94141fa10000003001000000303c0f142996001000468ef8fcbfdf8f800")
X264_HIGH_SPS = X264_HIGH_AVCC[8:8 + 0x18]
X264_HIGH_PPS = bytes.fromhex("68ef8fcb")


def test_golden_sps():
    info = h264.parse_sps(X264_HIGH_SPS)
    assert (info.profile_idc, info.constraint_flags, info.level_idc) == (100, 0, 13)
    assert (info.width, info.height, info.frame_rate) == (320, 240, 30.0)
    assert (info.chroma_format_idc, info.bit_depth, info.frame_mbs_only) == (1, 8, True)
    assert info.pic_order_cnt_type == 0 and info.max_num_reorder_frames is not None
    assert h264.codec_string(X264_HIGH_SPS) == "avc1.64000d"


def test_golden_avcc_both_directions():
    rec = h264.parse_avcc(X264_HIGH_AVCC)
    assert (rec.profile, rec.compat, rec.level, rec.length_size) == (100, 0, 13, 4)
    assert rec.sps == (X264_HIGH_SPS,) and rec.pps == (X264_HIGH_PPS,)
    assert (rec.chroma_format, rec.bit_depth_luma, rec.bit_depth_chroma) == (1, 8, 8)
    assert h264.build_avcc([X264_HIGH_SPS], [X264_HIGH_PPS]) == X264_HIGH_AVCC


PROFILES = [  # (x264 profile, pix_fmt, profile_idc, PyAV profile name, chroma, depth)
    ("baseline", "yuv420p", 66, "Constrained Baseline", 1, 8),
    ("main", "yuv420p", 77, "Main", 1, 8),
    ("high", "yuv420p", 100, "High", 1, 8),
    ("high10", "yuv420p10le", 110, "High 10", 1, 10),
    ("high422", "yuv422p", 122, "High 4:2:2", 2, 8),
    ("high444", "yuv444p", 244, "High 4:4:4 Predictive", 3, 8),
]


@pytest.mark.parametrize("profile,pix,idc,name,chroma,depth", PROFILES)
@pytest.mark.parametrize("size", [(64, 48), (320, 240), (176, 144)])
def test_libx264_profiles(encode, profile, pix, idc, name, chroma, depth, size):
    e = encode("libx264", size[0], size[1], pix, (("profile", profile),))
    assert e.profile == name
    rec = h264.parse_avcc(e.extradata)
    info = h264.parse_sps(rec.sps[0])
    assert (info.width, info.height) == (e.width, e.height) == size
    assert (info.profile_idc, info.chroma_format_idc, info.bit_depth) == (idc, chroma, depth)
    assert info.frame_rate == 25.0
    # our avcC equals FFmpeg's (which includes the high-profile extension bytes)
    assert h264.build_avcc(list(rec.sps), list(rec.pps)) == e.extradata
    if idc not in h264.AVCC_NO_EXT_PROFILES:
        assert (rec.chroma_format, rec.bit_depth_luma) == (chroma, depth)
    assert h264.codec_string(rec.sps[0]) == "avc1." + e.extradata[1:4].hex()
    keys = [h264.is_keyframe(p) for _, p in e.packets]
    assert keys == [k for k, _ in e.packets] and keys[0]


def test_cropping_odd_size(encode):
    e = encode("libx264", 66, 50)
    info = h264.parse_sps(h264.parse_avcc(e.extradata).sps[0])
    assert (info.width, info.height) == (66, 50)


def test_parse_sps_rejects_non_sps():
    with pytest.raises(CodecError):
        h264.parse_sps(X264_HIGH_PPS)
    with pytest.raises(CodecError):
        h264.parse_sps(X264_HIGH_SPS[:6])


def test_parse_avcc_trailing_bytes_and_missing_ext():
    # without the 4 extension bytes (old FFmpeg, many RTMP encoders) the record still parses
    short = X264_HIGH_AVCC[:-4]
    assert h264.parse_avcc(short).sps == (X264_HIGH_SPS,)
    assert h264.parse_avcc(short).chroma_format is None


@pytest.mark.parametrize("cut", range(1, 20))
def test_parse_avcc_truncated(cut):
    with pytest.raises(CodecError):
        h264.parse_avcc(X264_HIGH_AVCC[:cut])


FRAMING = [  # (name, AVCC payload, NAL units)
    ("one", b"\x00\x00\x00\x02\x65\x88", [b"\x65\x88"]),
    ("two", b"\x00\x00\x00\x01\x09\x00\x00\x00\x03\x41\x9a\x00", [b"\x09", b"\x41\x9a\x00"]),
    ("empty nal skipped", b"\x00\x00\x00\x00\x00\x00\x00\x01\x06", [b"\x06"]),
]


@pytest.mark.parametrize("name,payload,nals", FRAMING)
def test_iter_avcc_golden(name, payload, nals):
    assert [bytes(n) for n in h264.iter_avcc(payload)] == nals
    views = list(h264.iter_avcc(memoryview(payload)))
    assert all(isinstance(v, memoryview) for v in views)


def test_iter_avcc_length_size_2():
    assert [bytes(n) for n in h264.iter_avcc(b"\x00\x01\x65\x00\x01\x41", 2)] == [b"\x65", b"\x41"]


@pytest.mark.parametrize("bad", [b"\x00\x00\x00\x05\x65", b"\x00\x00\x01", b"\xff\xff\xff\xff"])
def test_iter_avcc_bad_length(bad):
    with pytest.raises(CodecError):
        list(h264.iter_avcc(bad))


def test_is_keyframe():
    assert h264.is_keyframe(b"\x00\x00\x00\x01\x09\x00\x00\x00\x02\x65\x88")
    assert not h264.is_keyframe(b"\x00\x00\x00\x02\x41\x9a")


ANNEXB = [  # (name, Annex-B, NAL units)
    ("4-byte", b"\x00\x00\x00\x01\x67\x42\x00\x00\x00\x01\x68\xce", [b"\x67\x42", b"\x68\xce"]),
    ("3-byte", b"\x00\x00\x01\x65\x88\x00\x00\x01\x41", [b"\x65\x88", b"\x41"]),
    ("trailing zeros", b"\x00\x00\x01\x65\x88\x00\x00", [b"\x65\x88"]),
    ("no start code", b"\x65\x88", [b"\x65\x88"]),
    ("empty", b"", []),
]


@pytest.mark.parametrize("name,data,nals", ANNEXB)
def test_split_annexb_golden(name, data, nals):
    assert [bytes(n) for n in h264.split_annexb(data)] == nals


@given(st.lists(st.binary(min_size=1, max_size=40), min_size=0, max_size=8),
       st.lists(st.booleans(), min_size=8, max_size=8))
def test_annexb_avcc_round_trip(raw_nals, four):
    # real NAL units: escaped, first byte non-zero, last byte non-zero (rbsp_stop_one_bit)
    nals = [escape_rbsp(b"\x41" + n + b"\x80") for n in raw_nals]
    annexb = b"".join((b"\x00\x00\x00\x01" if f else b"\x00\x00\x01") + n
                      for n, f in zip(nals, four))
    assert [bytes(n) for n in h264.split_annexb(annexb)] == nals
    avcc = h264.annexb_to_avcc(annexb)
    assert [bytes(n) for n in h264.iter_avcc(avcc)] == nals
    assert h264.avcc_to_annexb(avcc) == b"".join(b"\x00\x00\x00\x01" + n for n in nals)


@given(st.binary(max_size=80))
@example(b"\x67\x64\x00\x0d\x00")
@example(b"\x67" + b"\x00" * 12)
def test_fuzz_contract(data):
    for fn in (h264.parse_sps, h264.parse_avcc, lambda d: list(h264.iter_avcc(d)),
               h264.is_keyframe):
        try:
            fn(data)
        except CodecError:
            pass
    h264.split_annexb(data)


@given(st.integers(8, len(X264_HIGH_SPS) - 1))
def test_sps_truncated_fuzz(cut):
    try:
        info = h264.parse_sps(X264_HIGH_SPS[:cut])
    except CodecError:
        return
    assert (info.width, info.height) == (320, 240)  # cut inside the VUI: size survives
