"""H.265 / HEVC: NAL unit types, SPS parsing, the hvcC record, the ``hvc1.`` CODECS string.

Implements ITU-T H.265 (V8) sections 7.3.1.2 (NAL header), 7.3.2.2 (seq_parameter_set_rbsp),
7.3.3 (profile_tier_level), 7.3.7 (st_ref_pic_set) and E.2.1 (VUI, up to the timing info),
ISO/IEC 14496-15 section 8.3.3 (HEVCDecoderConfigurationRecord) and 14496-15 annex E.3 (CODECS).

Strategy: like ``h264``: bounds-checked ``BitReader`` over the unescaped RBSP, parse only up to
the VUI timing info (frame rate). AVCC framing is shared with H.264 (``iter_avcc`` etc.).
"""

from __future__ import annotations

from dataclasses import dataclass

from rtmpgop.codecs.bits import BitReader, unescape_rbsp
from rtmpgop.codecs.h264 import (  # noqa: F401 (re-exported: HEVC uses the same framing)
    MAX_PICTURE_DIMENSION,
    annexb_to_avcc,
    avcc_to_annexb,
    iter_avcc,
    split_annexb,
)
from rtmpgop.errors import CodecError

# NAL unit types (H.265 table 7-1)
NAL_TRAIL_N = 0
NAL_TRAIL_R = 1
NAL_BLA_W_LP = 16
NAL_BLA_W_RADL = 17
NAL_BLA_N_LP = 18
NAL_IDR_W_RADL = 19
NAL_IDR_N_LP = 20
NAL_CRA = 21
NAL_VPS = 32
NAL_SPS = 33
NAL_PPS = 34
NAL_AUD = 35
NAL_EOS = 36
NAL_EOB = 37
NAL_FD = 38
NAL_SEI_PREFIX = 39
NAL_SEI_SUFFIX = 40
IRAP_TYPES = range(NAL_BLA_W_LP, NAL_CRA + 1)

MAX_SUB_LAYERS = 7
"""sps_max_sub_layers_minus1 is 0..6 (7.4.3.2.1)."""

MAX_SHORT_TERM_RPS = 64
"""num_short_term_ref_pic_sets is 0..64 (7.4.3.2.1)."""

MAX_RPS_PICS = 16
"""num_negative_pics + num_positive_pics never exceed sps_max_dec_pic_buffering (<= 16)."""

MAX_LONG_TERM_REF_PICS = 32
"""num_long_term_ref_pics_sps is 0..32 (7.4.3.2.1)."""

_SUB_WH = {0: (1, 1), 1: (2, 2), 2: (2, 1), 3: (1, 1)}


@dataclass(frozen=True, slots=True)
class SPSInfo:
    """The fields of an H.265 SPS a relay needs. Size is after the conformance window."""

    general_profile_space: int
    general_tier_flag: int
    general_profile_idc: int
    general_profile_compatibility_flags: int  # u32, bit 31 = flag 0
    general_constraint_indicator_flags: bytes  # 6 bytes
    general_level_idc: int
    width: int
    height: int
    chroma_format_idc: int
    bit_depth_luma: int
    bit_depth_chroma: int
    frame_rate: float  # VUI time_scale / num_units_in_tick; 0.0 if absent
    max_sub_layers: int = 1
    temporal_id_nesting: bool = True


@dataclass(frozen=True, slots=True)
class HvcC:
    """An HEVCDecoderConfigurationRecord. ``other`` keeps non-parameter-set arrays (SEI)."""

    general_profile_space: int
    general_tier_flag: int
    general_profile_idc: int
    general_profile_compatibility_flags: int
    general_constraint_indicator_flags: bytes
    general_level_idc: int
    chroma_format_idc: int
    bit_depth_luma: int
    bit_depth_chroma: int
    length_size: int
    vps: tuple[bytes, ...]
    sps: tuple[bytes, ...]
    pps: tuple[bytes, ...]
    other: tuple[tuple[int, bytes], ...] = ()


def nal_type(nal: bytes | memoryview) -> int:
    """The nal_unit_type of an HEVC NAL unit. Raises ``CodecError`` if shorter than its header."""
    if len(nal) < 2:
        raise CodecError("HEVC NAL unit shorter than its header", length=len(nal))
    return (nal[0] >> 1) & 0x3F


def _profile_tier_level(r: BitReader, max_sub_layers_minus1: int) -> tuple:
    space, tier, idc = r.u(2), r.u(1), r.u(5)
    compat = r.u(32)
    constraints = bytes(r.u(8) for _ in range(6))
    level = r.u(8)
    sub_profile, sub_level = [], []
    for _ in range(max_sub_layers_minus1):
        sub_profile.append(r.flag())
        sub_level.append(r.flag())
    if max_sub_layers_minus1 > 0:
        r.skip(2 * (8 - max_sub_layers_minus1))
    for i in range(max_sub_layers_minus1):
        if sub_profile[i]:
            r.skip(88)
        if sub_level[i]:
            r.skip(8)
    return space, tier, idc, compat, constraints, level


def _skip_scaling_list_data(r: BitReader) -> None:
    for size_id in range(4):
        for _ in range(0, 6, 3 if size_id == 3 else 1):
            if not r.flag():  # scaling_list_pred_mode_flag
                r.ue()  # scaling_list_pred_matrix_id_delta
            else:
                coefs = min(64, 1 << (4 + (size_id << 1)))
                if size_id > 1:
                    r.se()  # scaling_list_dc_coef_minus8
                for _ in range(coefs):
                    r.se()


def _skip_short_term_rps(r: BitReader, idx: int, num_delta_pocs: list[int]) -> None:
    """st_ref_pic_set(idx) as it appears in the SPS (7.3.7); appends NumDeltaPocs[idx]."""
    if idx != 0 and r.flag():  # inter_ref_pic_set_prediction_flag
        r.skip(1)  # delta_rps_sign
        r.ue()  # abs_delta_rps_minus1
        ref = num_delta_pocs[idx - 1]
        count = 0
        for _ in range(ref + 1):
            used = r.flag()
            use_delta = True if used else r.flag()
            count += use_delta
        num_delta_pocs.append(count)
        return
    neg, pos = r.ue(), r.ue()
    if neg + pos > MAX_RPS_PICS:
        raise CodecError("too many pictures in a short-term RPS", count=neg + pos)
    for _ in range(neg + pos):
        r.ue()
        r.skip(1)
    num_delta_pocs.append(neg + pos)


def _vui_frame_rate(r: BitReader) -> float:
    """Read vui_parameters (E.2.1) up to the timing info; returns the frame rate or 0.0."""
    if r.flag():  # aspect_ratio_info_present_flag
        if r.u(8) == 255:
            r.skip(32)
    if r.flag():  # overscan_info_present_flag
        r.skip(1)
    if r.flag():  # video_signal_type_present_flag
        r.skip(4)
        if r.flag():
            r.skip(24)
    if r.flag():  # chroma_loc_info_present_flag
        r.ue()
        r.ue()
    r.skip(3)  # neutral_chroma, field_seq, frame_field_info_present
    if r.flag():  # default_display_window_flag
        for _ in range(4):
            r.ue()
    if r.flag():  # vui_timing_info_present_flag
        num_units, time_scale = r.u(32), r.u(32)
        if num_units and time_scale:
            return time_scale / num_units
    return 0.0


def parse_sps(nal: bytes | memoryview) -> SPSInfo:
    """Parse an HEVC SPS NAL unit (2-byte header included, still escaped).

    Returns ``SPSInfo``. Raises ``CodecError`` when it is not an SPS or is malformed.
    """
    if len(nal) < 3 or (nal[0] >> 1) & 0x3F != NAL_SPS:
        raise CodecError("not an HEVC SPS", length=len(nal))
    r = BitReader(unescape_rbsp(nal[2:]))
    r.skip(4)  # sps_video_parameter_set_id
    max_sub_layers_minus1 = r.u(3)
    if max_sub_layers_minus1 >= MAX_SUB_LAYERS:
        raise CodecError("bad sps_max_sub_layers_minus1", value=max_sub_layers_minus1)
    nesting = r.flag()
    space, tier, idc, compat, constraints, level = _profile_tier_level(r, max_sub_layers_minus1)
    r.ue()  # sps_seq_parameter_set_id
    chroma = r.ue()
    if chroma > 3:
        raise CodecError("bad chroma_format_idc", chroma_format_idc=chroma)
    separate = r.flag() if chroma == 3 else False
    width, height = r.ue(), r.ue()
    if r.flag():  # conformance_window_flag
        left, right, top, bottom = r.ue(), r.ue(), r.ue(), r.ue()
        sub_w, sub_h = _SUB_WH[0 if separate else chroma]
        width -= sub_w * (left + right)
        height -= sub_h * (top + bottom)
    if not (0 < width <= MAX_PICTURE_DIMENSION and 0 < height <= MAX_PICTURE_DIMENSION):
        raise CodecError("bad picture size", width=width, height=height)
    depth, depth_c = r.ue() + 8, r.ue() + 8
    if depth > 16 or depth_c > 16:
        raise CodecError("bad bit depth", bit_depth=depth)
    info = dict(general_profile_space=space, general_tier_flag=tier, general_profile_idc=idc,
                general_profile_compatibility_flags=compat,
                general_constraint_indicator_flags=constraints, general_level_idc=level,
                width=width, height=height, chroma_format_idc=chroma, bit_depth_luma=depth,
                bit_depth_chroma=depth_c, max_sub_layers=max_sub_layers_minus1 + 1,
                temporal_id_nesting=nesting)
    try:
        frame_rate = _sps_tail_frame_rate(r, max_sub_layers_minus1)
    except CodecError:
        # Broken tails (VUI, RPS) are seen from cheap cameras; the size and profile above are
        # all that routing needs, so treat them as "frame rate unknown".
        frame_rate = 0.0
    return SPSInfo(frame_rate=frame_rate, **info)


def _sps_tail_frame_rate(r: BitReader, max_sub_layers_minus1: int) -> float:
    log2_max_poc_lsb = r.ue() + 4
    if log2_max_poc_lsb > 16:
        raise CodecError("bad log2_max_pic_order_cnt_lsb", value=log2_max_poc_lsb)
    ordering_all = r.flag()
    for _ in range(0 if ordering_all else max_sub_layers_minus1, max_sub_layers_minus1 + 1):
        r.ue()
        r.ue()
        r.ue()
    for _ in range(6):  # coding/transform block sizes, transform hierarchy depths
        r.ue()
    if r.flag() and r.flag():  # scaling_list_enabled_flag, sps_scaling_list_data_present_flag
        _skip_scaling_list_data(r)
    r.skip(2)  # amp_enabled_flag, sample_adaptive_offset_enabled_flag
    if r.flag():  # pcm_enabled_flag
        r.skip(8)
        r.ue()
        r.ue()
        r.skip(1)
    num_rps = r.ue()
    if num_rps > MAX_SHORT_TERM_RPS:
        raise CodecError("too many short-term RPS", count=num_rps)
    deltas: list[int] = []
    for i in range(num_rps):
        _skip_short_term_rps(r, i, deltas)
    if r.flag():  # long_term_ref_pics_present_flag
        n = r.ue()
        if n > MAX_LONG_TERM_REF_PICS:
            raise CodecError("too many long-term ref pics", count=n)
        for _ in range(n):
            r.skip(log2_max_poc_lsb + 1)
    r.skip(2)  # sps_temporal_mvp_enabled_flag, strong_intra_smoothing_enabled_flag
    if r.flag():  # vui_parameters_present_flag
        return _vui_frame_rate(r)
    return 0.0


def parse_hvcc(record: bytes | memoryview) -> HvcC:
    """Parse an HEVCDecoderConfigurationRecord (14496-15 8.3.3.1).

    Returns ``HvcC``. Raises ``CodecError`` on a wrong version, bad length size or truncation.
    """
    d = bytes(record)
    if len(d) < 23 or d[0] != 1:
        raise CodecError("bad hvcC header", length=len(d))
    length_size = (d[21] & 3) + 1
    if length_size == 3:
        raise CodecError("hvcC lengthSizeMinusOne 2 is reserved")
    arrays: dict[int, list[bytes]] = {NAL_VPS: [], NAL_SPS: [], NAL_PPS: []}
    other: list[tuple[int, bytes]] = []
    pos = 23
    for _ in range(d[22]):
        if pos + 3 > len(d):
            raise CodecError("hvcC truncated in array header", offset=pos)
        typ = d[pos] & 0x3F
        count = int.from_bytes(d[pos + 1 : pos + 3], "big")
        pos += 3
        for _ in range(count):
            if pos + 2 > len(d):
                raise CodecError("hvcC truncated in NAL length", offset=pos)
            n = int.from_bytes(d[pos : pos + 2], "big")
            if n == 0 or pos + 2 + n > len(d):
                raise CodecError("hvcC NAL length out of range", offset=pos, length=n)
            nal = d[pos + 2 : pos + 2 + n]
            pos += 2 + n
            if typ in arrays:
                arrays[typ].append(nal)
            else:
                other.append((typ, nal))
    return HvcC(d[1] >> 6, (d[1] >> 5) & 1, d[1] & 0x1F, int.from_bytes(d[2:6], "big"),
                d[6:12], d[12], d[16] & 3, (d[17] & 7) + 8, (d[18] & 7) + 8, length_size,
                tuple(arrays[NAL_VPS]), tuple(arrays[NAL_SPS]), tuple(arrays[NAL_PPS]),
                tuple(other))


def build_hvcc(vps: list[bytes], sps: list[bytes], pps: list[bytes]) -> bytes:
    """Build an hvcC record (version 1, lengthSizeMinusOne=3, arrays with array_completeness=1).

    Profile, level, chroma format and bit depths come from the first SPS. Returns the record.
    Raises ``CodecError`` if that SPS does not parse, ``ValueError`` when a list is empty.
    """
    if not vps or not sps or not pps:
        raise ValueError("build_hvcc needs at least one VPS, SPS and PPS")
    info = parse_sps(sps[0])
    ptl = (info.general_profile_space << 6) | (info.general_tier_flag << 5) | \
        info.general_profile_idc
    out = bytearray((1, ptl))
    out += info.general_profile_compatibility_flags.to_bytes(4, "big")
    out += info.general_constraint_indicator_flags
    out.append(info.general_level_idc)
    out += b"\xf0\x00"  # reserved 1111 + min_spatial_segmentation_idc 0
    out.append(0xFC)  # reserved 111111 + parallelismType 0 (unknown)
    out.append(0xFC | info.chroma_format_idc)
    out.append(0xF8 | (info.bit_depth_luma - 8))
    out.append(0xF8 | (info.bit_depth_chroma - 8))
    out += b"\x00\x00"  # avgFrameRate unspecified
    # constantFrameRate 0 | numTemporalLayers | temporalIdNested | lengthSizeMinusOne 3
    out.append((info.max_sub_layers << 3) | (int(info.temporal_id_nesting) << 2) | 3)
    out.append(3)
    for typ, nals in ((NAL_VPS, vps), (NAL_SPS, sps), (NAL_PPS, pps)):
        out.append(0x80 | typ)
        out += len(nals).to_bytes(2, "big")
        for nal in nals:
            out += len(nal).to_bytes(2, "big") + bytes(nal)
    return bytes(out)


def codec_string_from(profile_space: int, tier: int, profile_idc: int, compat: int,
                      constraints: bytes, level: int) -> str:
    """The ``hvc1.`` CODECS string from profile_tier_level fields (14496-15 E.3)."""
    rev = int(f"{compat & 0xFFFFFFFF:032b}"[::-1], 2)
    cons = bytes(constraints).rstrip(b"\x00")
    parts = ["hvc1", ("", "A", "B", "C")[profile_space] + str(profile_idc), f"{rev:X}",
             ("H" if tier else "L") + str(level)]
    parts += [f"{b:X}" for b in cons]
    return ".".join(parts)


def codec_string(sps_nal: bytes | memoryview) -> str:
    """RFC 6381 CODECS string ``hvc1.1.6.L93.B0`` from an SPS NAL. Raises ``CodecError``."""
    i = parse_sps(sps_nal)
    return codec_string_from(i.general_profile_space, i.general_tier_flag, i.general_profile_idc,
                             i.general_profile_compatibility_flags,
                             i.general_constraint_indicator_flags, i.general_level_idc)


def is_keyframe(payload: bytes | memoryview, length_size: int = 4) -> bool:
    """True when the AVCC-framed access unit holds an IRAP picture (types 16-21).

    Raises ``CodecError`` on bad framing.
    """
    for nal in iter_avcc(payload, length_size):
        if ((nal[0] >> 1) & 0x3F) in IRAP_TYPES:
            return True
    return False
