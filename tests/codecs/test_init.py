"""rtmpgop.codecs.make_config / is_keyframe: one entry point per codec, CodecError on garbage."""

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from fixtures.media import encode_audio, encode_video
from rtmpgop.codecs import is_keyframe, make_config, opus
from rtmpgop.errors import CodecError
from rtmpgop.media import Codec


@pytest.mark.parametrize("name,codec,prefix", [
    ("h264", Codec.H264, "avc1.64"), ("hevc", Codec.H265, "hvc1.1.6.L"),
    ("av1", Codec.AV1, "av01.0.")])
def test_video_configs(name, codec, prefix):
    s = encode_video(name, frames=6, width=320, height=240)
    cfg = make_config(codec, s.config, frame_rate=29.97)
    assert (cfg.codec, cfg.record, cfg.width, cfg.height, cfg.bit_depth) == \
        (codec, s.config, 320, 240, 8)
    assert cfg.codec_string.startswith(prefix)
    # the SPS VUI says 30 fps; SVT-AV1 writes no timing info, so the hint is used
    assert cfg.frame_rate == (29.97 if codec is Codec.AV1 else 30.0)
    assert [is_keyframe(codec, p.data) for p in s.packets] == [p.keyframe for p in s.packets]


def test_audio_configs():
    a = make_config(Codec.AAC, encode_audio("aac", seconds=0.1, rate=44100, channels=1).config)
    assert (a.sample_rate, a.channels, a.codec_string) == (44100, 1, "mp4a.40.2")
    o = make_config(Codec.OPUS, encode_audio("opus", seconds=0.1).config)
    assert (o.sample_rate, o.channels, o.codec_string) == (48000, 2, "opus")
    assert is_keyframe(Codec.AAC, b"\x21") and is_keyframe(Codec.OPUS, b"\xf8")


def test_empty_opus_record_means_stereo():
    cfg = make_config(Codec.OPUS, b"")
    assert cfg.record == opus.build_opus_head(2) and (cfg.channels, cfg.sample_rate) == (2, 48000)


@pytest.mark.parametrize("codec", [Codec.JPEG, Codec.WEBP])
def test_images(codec):
    cfg = make_config(codec, b"", frame_rate=5.0)
    assert (cfg.record, cfg.codec_string, cfg.frame_rate) == (b"", "", 5.0)
    assert is_keyframe(codec, b"\xff\xd8")


def test_vp9():
    cfg = make_config(Codec.VP9, bytes.fromhex("01000000" "001f" "80" "020202" "0000"))
    assert (cfg.codec_string, cfg.bit_depth) == ("vp09.00.31.08", 8)
    assert is_keyframe(Codec.VP9, bytes((0b1000_0000,)))  # marker 2, profile 0, show 0, key
    assert not is_keyframe(Codec.VP9, bytes((0b1000_0100,)))  # non-key
    assert not is_keyframe(Codec.VP9, bytes((0b1000_1000,)))  # show_existing_frame


@pytest.mark.parametrize("codec", [c for c in Codec if c not in (Codec.JPEG, Codec.WEBP)])
def test_garbage_record(codec):
    with pytest.raises(CodecError):
        make_config(codec, b"\x00\x01\x02")


@given(st.sampled_from(list(Codec)), st.binary(max_size=60))
@example(Codec.H264, b"\x01\x64\x00\x1f\xff\xe0\x00")  # avcC without SPS
@example(Codec.H265, bytes(23))
@example(Codec.AV1, b"\x81\x00\x0c\x00")  # av1C without sequence header
def test_fuzz_contract(codec, data):
    try:
        cfg = make_config(codec, data)
    except CodecError:
        pass
    else:
        assert cfg.codec is codec
    try:
        is_keyframe(codec, data)
    except CodecError:
        pass
