"""Codec bitstream helpers: NAL/OBU types, SPS parsing, config records, CODECS strings.

Modules: ``bits`` (BitReader, RBSP), ``h264``, ``h265``, ``av1``, ``aac``, ``opus``. This package
adds the two entry points the rest of rtmpgop uses:

- ``make_config(codec, record, *, frame_rate=0.0) -> CodecConfig``: parse a configuration record
  (avcC, hvcC, av1C, vpcC, AudioSpecificConfig, OpusHead; empty for JPEG/WebP) and fill the
  derived fields (size, rate, channels, CODECS string, frame rate, bit depth).
- ``is_keyframe(codec, payload) -> bool``: whether an access unit is a random access point.

Both raise ``rtmpgop.errors.CodecError`` on malformed input and nothing else.
"""

from __future__ import annotations

from rtmpgop.codecs import aac, av1, h264, h265, opus
from rtmpgop.errors import CodecError
from rtmpgop.media import Codec, CodecConfig

__all__ = ["make_config", "is_keyframe", "aac", "av1", "h264", "h265", "opus"]


def _h264(record: bytes, frame_rate: float) -> CodecConfig:
    rec = h264.parse_avcc(record)
    if not rec.sps:
        raise CodecError("avcC without SPS")
    sps = h264.parse_sps(rec.sps[0])
    return CodecConfig(Codec.H264, record, width=sps.width, height=sps.height,
                       codec_string=h264.codec_string(rec.sps[0]),
                       frame_rate=sps.frame_rate or frame_rate, bit_depth=sps.bit_depth)


def _h265(record: bytes, frame_rate: float) -> CodecConfig:
    rec = h265.parse_hvcc(record)
    if not rec.sps:
        raise CodecError("hvcC without SPS")
    sps = h265.parse_sps(rec.sps[0])
    cs = h265.codec_string_from(sps.general_profile_space, sps.general_tier_flag,
                                sps.general_profile_idc, sps.general_profile_compatibility_flags,
                                sps.general_constraint_indicator_flags, sps.general_level_idc)
    return CodecConfig(Codec.H265, record, width=sps.width, height=sps.height, codec_string=cs,
                       frame_rate=sps.frame_rate or frame_rate, bit_depth=sps.bit_depth_luma)


def _av1(record: bytes, frame_rate: float) -> CodecConfig:
    rec = av1.parse_av1c(record)
    seq = rec.sequence_header
    if seq is None:
        raise CodecError("av1C without a sequence header OBU")
    return CodecConfig(Codec.AV1, record, width=seq.max_frame_width,
                       height=seq.max_frame_height, codec_string=av1.codec_string(seq),
                       frame_rate=seq.frame_rate or frame_rate, bit_depth=seq.bit_depth)


def _vp9(record: bytes, frame_rate: float) -> CodecConfig:
    # vpcC (VP Codec ISO Media File Format Binding 2.2): version 1 FullBox body.
    if len(record) < 12 or record[0] != 1:
        raise CodecError("bad vpcC record", length=len(record))
    profile, level, depth = record[4], record[5], record[6] >> 4
    return CodecConfig(Codec.VP9, record, codec_string=f"vp09.{profile:02d}.{level:02d}.{depth:02d}",
                       frame_rate=frame_rate, bit_depth=depth)


def _aac(record: bytes, frame_rate: float) -> CodecConfig:
    asc = aac.parse_asc(record)
    return CodecConfig(Codec.AAC, record, sample_rate=asc.sample_rate, channels=asc.channels,
                       codec_string=aac.codec_string(asc))


def _opus(record: bytes, frame_rate: float) -> CodecConfig:
    if not record:
        # E-RTMP allows an empty Opus SequenceStart (rtmp.md 6): assume stereo 48 kHz.
        record = opus.build_opus_head(2)
    head = opus.parse_opus_head(record)
    return CodecConfig(Codec.OPUS, record, sample_rate=opus.OPUS_CLOCK, channels=head.channels,
                       codec_string="opus")


def _image(codec: Codec):
    def make(record: bytes, frame_rate: float) -> CodecConfig:
        return CodecConfig(codec, b"", frame_rate=frame_rate)
    return make


_MAKERS = {Codec.H264: _h264, Codec.H265: _h265, Codec.AV1: _av1, Codec.VP9: _vp9,
           Codec.AAC: _aac, Codec.OPUS: _opus, Codec.JPEG: _image(Codec.JPEG),
           Codec.WEBP: _image(Codec.WEBP)}


def make_config(codec: Codec, record: bytes | memoryview, *, frame_rate: float = 0.0) -> CodecConfig:
    """Parse ``record`` for ``codec`` and return a ``CodecConfig`` with the derived fields.

    ``frame_rate`` (e.g. from onMetaData) is used when the bitstream carries none. An empty
    Opus record means stereo 48 kHz and is replaced by a built OpusHead; JPEG/WebP records are
    ignored (empty). Raises ``CodecError`` on a malformed record.
    """
    return _MAKERS[codec](bytes(record), frame_rate)


def _vp9_keyframe(payload: bytes | memoryview) -> bool:
    # VP9 uncompressed header (VP9 bitstream spec 6.2): frame_marker(2) profile_low/high(2)
    # [reserved_zero(1) for profile 3] show_existing_frame(1) frame_type(1, 0 = KEY_FRAME).
    if len(payload) == 0:
        raise CodecError("empty VP9 frame")
    b = payload[0]
    if b >> 6 != 2:
        raise CodecError("bad VP9 frame marker")
    profile = ((b >> 5) & 1) | (((b >> 4) & 1) << 1)
    shift = 2 if profile == 3 else 3
    if (b >> shift) & 1:  # show_existing_frame
        return False
    return not (b >> (shift - 1)) & 1


def is_keyframe(codec: Codec, payload: bytes | memoryview) -> bool:
    """True when ``payload`` (one access unit in hub form) is a random access point.

    H.264: contains an IDR; H.265: an IRAP; AV1: a KEY_FRAME header; VP9: a key frame; audio and
    still images: always. Raises ``CodecError`` on malformed framing.
    """
    if codec is Codec.H264:
        return h264.is_keyframe(payload)
    if codec is Codec.H265:
        return h265.is_keyframe(payload)
    if codec is Codec.AV1:
        return av1.is_keyframe(payload)
    if codec is Codec.VP9:
        return _vp9_keyframe(payload)
    return True
