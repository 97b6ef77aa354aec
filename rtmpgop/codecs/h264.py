"""H.264 / AVC: NAL unit types, SPS parsing, the avcC record, Annex-B <-> AVCC framing.

Implements ITU-T H.264 (08/2021) section 7.3.2.1.1 (seq_parameter_set_data), E.1.1 (VUI) and
E.1.2 (HRD, skipped over), ISO/IEC 14496-15 section 5.3.3 (AVCDecoderConfigurationRecord) and
RFC 6381 section 3.3 (the ``avc1.PPCCLL`` CODECS string).

Strategy: parse only what a relay needs (size, profile, level, frame rate, reorder depth) with
``BitReader`` over the unescaped RBSP; every read is bounds-checked, so any malformed input raises
``CodecError``. Framing helpers return ``memoryview`` slices of the caller's buffer (no copies).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from rtmpgop.codecs.bits import BitReader, unescape_rbsp
from rtmpgop.errors import CodecError

# NAL unit types (H.264 table 7-1)
NAL_SLICE = 1
NAL_SLICE_DPA = 2
NAL_IDR = 5
NAL_SEI = 6
NAL_SPS = 7
NAL_PPS = 8
NAL_AUD = 9
NAL_END_OF_SEQUENCE = 10
NAL_END_OF_STREAM = 11
NAL_FILLER = 12
NAL_SPS_EXT = 13

HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})
"""profile_idc values whose SPS carries chroma_format_idc and bit depths (7.3.2.1.1)."""

AVCC_NO_EXT_PROFILES = frozenset({66, 77, 88})
"""Baseline, Main, Extended: the only profiles whose avcC has no chroma/bit-depth extension
(14496-15:2017 5.3.3.1; the 2004 edition listed only 100/110/122/144 as having it, and FFmpeg
follows the newer rule, so High 4:4:4 (244) carries it too)."""

MAX_PICTURE_DIMENSION = 16384
"""Largest width/height accepted: level 6.2 tops out at 8192x4320, so anything above is garbage."""

MAX_POC_CYCLE = 255
"""num_ref_frames_in_pic_order_cnt_cycle range limit (7.4.2.1.1)."""

MAX_CPB_COUNT = 32
"""cpb_cnt_minus1 is 0..31 (E.2.2)."""

_SUB_WH = {1: (2, 2), 2: (2, 1), 3: (1, 1)}  # chroma_format_idc -> (SubWidthC, SubHeightC)


@dataclass(frozen=True, slots=True)
class SPSInfo:
    """The fields of an H.264 SPS a relay needs. ``width``/``height`` are after cropping."""

    profile_idc: int
    constraint_flags: int
    level_idc: int
    width: int
    height: int
    frame_rate: float  # from VUI timing (time_scale / (2 * num_units_in_tick)); 0.0 if absent
    chroma_format_idc: int
    bit_depth: int  # luma
    pic_order_cnt_type: int
    log2_max_frame_num: int
    log2_max_poc_lsb: int  # 0 unless pic_order_cnt_type == 0
    frame_mbs_only: bool
    max_num_reorder_frames: int | None  # VUI bitstream_restriction, None if absent
    bit_depth_chroma: int = 8
    sps_id: int = 0


@dataclass(frozen=True, slots=True)
class AvcC:
    """An AVCDecoderConfigurationRecord. ``length_size`` is 1, 2 or 4 (bytes per NAL length)."""

    profile: int
    compat: int
    level: int
    length_size: int
    sps: tuple[bytes, ...]
    pps: tuple[bytes, ...]
    chroma_format: int | None = None  # the high-profile extension, None when absent
    bit_depth_luma: int | None = None
    bit_depth_chroma: int | None = None
    sps_ext: tuple[bytes, ...] = ()


def nal_type(nal: bytes | memoryview) -> int:
    """The nal_unit_type of a NAL unit (header byte included). Raises ``CodecError`` if empty."""
    if len(nal) == 0:
        raise CodecError("empty NAL unit")
    return nal[0] & 0x1F


def _skip_scaling_list(r: BitReader, size: int) -> None:
    last = nxt = 8
    for _ in range(size):
        if nxt != 0:
            nxt = (last + r.se() + 256) % 256
        last = nxt if nxt != 0 else last


def _skip_hrd(r: BitReader) -> None:
    cpb_cnt = r.ue() + 1
    if cpb_cnt > MAX_CPB_COUNT:
        raise CodecError("HRD cpb_cnt out of range", cpb_cnt=cpb_cnt)
    r.skip(8)  # bit_rate_scale, cpb_size_scale
    for _ in range(cpb_cnt):
        r.ue()
        r.ue()
        r.skip(1)
    r.skip(20)  # four 5-bit delay lengths


def _parse_vui(r: BitReader) -> tuple[float, int | None]:
    """Returns (frame_rate, max_num_reorder_frames) from vui_parameters (E.1.1)."""
    if r.flag():  # aspect_ratio_info_present_flag
        if r.u(8) == 255:  # Extended_SAR
            r.skip(32)
    if r.flag():  # overscan_info_present_flag
        r.skip(1)
    if r.flag():  # video_signal_type_present_flag
        r.skip(4)
        if r.flag():  # colour_description_present_flag
            r.skip(24)
    if r.flag():  # chroma_loc_info_present_flag
        r.ue()
        r.ue()
    frame_rate = 0.0
    if r.flag():  # timing_info_present_flag
        num_units = r.u(32)
        time_scale = r.u(32)
        r.skip(1)  # fixed_frame_rate_flag
        if num_units and time_scale:
            frame_rate = time_scale / (2 * num_units)
    nal_hrd = r.flag()
    if nal_hrd:
        _skip_hrd(r)
    vcl_hrd = r.flag()
    if vcl_hrd:
        _skip_hrd(r)
    if nal_hrd or vcl_hrd:
        r.skip(1)  # low_delay_hrd_flag
    r.skip(1)  # pic_struct_present_flag
    reorder = None
    if r.flag():  # bitstream_restriction_flag
        r.skip(1)
        for _ in range(4):
            r.ue()
        reorder = r.ue()
        r.ue()  # max_dec_frame_buffering
    return frame_rate, reorder


def parse_sps(nal: bytes | memoryview) -> SPSInfo:
    """Parse an SPS NAL unit (header byte included, emulation prevention still in).

    Returns ``SPSInfo``. Raises ``CodecError`` when it is not an SPS or is malformed.
    """
    if len(nal) < 4 or nal[0] & 0x1F != NAL_SPS:
        raise CodecError("not an H.264 SPS", length=len(nal))
    r = BitReader(unescape_rbsp(nal[1:]))
    profile, constraints, level = r.u(8), r.u(8), r.u(8)
    sps_id = r.ue()
    chroma, separate_planes, depth, depth_c = 1, False, 8, 8
    if profile in HIGH_PROFILES:
        chroma = r.ue()
        if chroma > 3:
            raise CodecError("bad chroma_format_idc", chroma_format_idc=chroma)
        if chroma == 3:
            separate_planes = r.flag()
        depth, depth_c = r.ue() + 8, r.ue() + 8
        if depth > 14 or depth_c > 14:
            raise CodecError("bad bit depth", bit_depth=depth)
        r.skip(1)  # qpprime_y_zero_transform_bypass_flag
        if r.flag():  # seq_scaling_matrix_present_flag
            for i in range(8 if chroma != 3 else 12):
                if r.flag():
                    _skip_scaling_list(r, 16 if i < 6 else 64)
    log2_max_frame_num = r.ue() + 4
    poc_type = r.ue()
    log2_max_poc_lsb = 0
    if poc_type == 0:
        log2_max_poc_lsb = r.ue() + 4
    elif poc_type == 1:
        r.skip(1)
        r.se()
        r.se()
        cycle = r.ue()
        if cycle > MAX_POC_CYCLE:
            raise CodecError("POC cycle too long", count=cycle)
        for _ in range(cycle):
            r.se()
    elif poc_type != 2:
        raise CodecError("bad pic_order_cnt_type", pic_order_cnt_type=poc_type)
    r.ue()  # max_num_ref_frames
    r.skip(1)  # gaps_in_frame_num_value_allowed_flag
    width_mbs = r.ue() + 1
    height_units = r.ue() + 1
    frame_mbs_only = r.flag()
    if not frame_mbs_only:
        r.skip(1)  # mb_adaptive_frame_field_flag
    r.skip(1)  # direct_8x8_inference_flag
    width = width_mbs * 16
    height = (2 - frame_mbs_only) * height_units * 16
    if r.flag():  # frame_cropping_flag
        left, right, top, bottom = r.ue(), r.ue(), r.ue(), r.ue()
        chroma_array_type = 0 if separate_planes else chroma
        sub_w, sub_h = _SUB_WH.get(chroma_array_type, (1, 1))
        crop_x = sub_w
        crop_y = sub_h * (2 - frame_mbs_only)
        width -= crop_x * (left + right)
        height -= crop_y * (top + bottom)
    if not (0 < width <= MAX_PICTURE_DIMENSION and 0 < height <= MAX_PICTURE_DIMENSION):
        raise CodecError("bad picture size", width=width, height=height)
    frame_rate, reorder = 0.0, None
    if r.flag():  # vui_parameters_present_flag
        try:
            frame_rate, reorder = _parse_vui(r)
        except CodecError:
            # Some IP cameras (and old x264 builds) truncate the VUI; the picture size is
            # already known, so treat a broken VUI as absent rather than refusing the stream.
            frame_rate, reorder = 0.0, None
    return SPSInfo(profile, constraints, level, width, height, frame_rate, chroma, depth,
                   poc_type, log2_max_frame_num, log2_max_poc_lsb, bool(frame_mbs_only),
                   reorder, depth_c, sps_id)


def parse_avcc(record: bytes | memoryview) -> AvcC:
    """Parse an AVCDecoderConfigurationRecord (14496-15 5.3.3.1).

    Returns ``AvcC``. Raises ``CodecError`` on a wrong version, bad length size or truncation.
    The high-profile extension is read when present and ignored when absent or truncated
    (FFmpeg before 2019 and many RTMP encoders leave it out).
    """
    data = bytes(record)
    if len(data) < 7 or data[0] != 1:
        raise CodecError("bad avcC header", length=len(data))
    length_size = (data[4] & 3) + 1
    if length_size == 3:
        raise CodecError("avcC lengthSizeMinusOne 2 is reserved")
    pos = 6
    sps: list[bytes] = []
    pps: list[bytes] = []
    for count, out in ((data[5] & 0x1F, sps), (None, pps)):
        if count is None:
            if pos >= len(data):
                raise CodecError("avcC truncated before PPS count")
            count = data[pos]
            pos += 1
        for _ in range(count):
            if pos + 2 > len(data):
                raise CodecError("avcC truncated", offset=pos)
            n = int.from_bytes(data[pos : pos + 2], "big")
            if n == 0 or pos + 2 + n > len(data):
                raise CodecError("avcC parameter set length out of range", offset=pos, length=n)
            out.append(data[pos + 2 : pos + 2 + n])
            pos += 2 + n
    chroma = depth = depth_c = None
    ext: list[bytes] = []
    if data[1] not in AVCC_NO_EXT_PROFILES and pos + 4 <= len(data):
        chroma, depth, depth_c = data[pos] & 3, (data[pos + 1] & 7) + 8, (data[pos + 2] & 7) + 8
        n_ext = data[pos + 3]
        pos += 4
        for _ in range(n_ext):
            if pos + 2 > len(data):
                break
            n = int.from_bytes(data[pos : pos + 2], "big")
            if pos + 2 + n > len(data):
                break
            ext.append(data[pos + 2 : pos + 2 + n])
            pos += 2 + n
    return AvcC(data[1], data[2], data[3], length_size, tuple(sps), tuple(pps),
                chroma, depth, depth_c, tuple(ext))


def build_avcc(sps: list[bytes], pps: list[bytes]) -> bytes:
    """Build an avcC record with lengthSizeMinusOne=3 from SPS and PPS NAL units (no start codes).

    Profile/level come from the first SPS; the chroma/bit-depth extension is added for every
    profile but Baseline, Main and Extended. Returns the record. Raises ``CodecError`` if the first SPS does
    not parse, ``ValueError`` when called without an SPS or PPS or with more than 31 SPS.
    """
    if not sps or not pps or len(sps) > 31 or len(pps) > 255:
        raise ValueError("build_avcc needs 1..31 SPS and 1..255 PPS")
    info = parse_sps(sps[0])
    out = bytearray((1, sps[0][1], sps[0][2], sps[0][3], 0xFF, 0xE0 | len(sps)))
    for nal in sps:
        out += len(nal).to_bytes(2, "big") + bytes(nal)
    out.append(len(pps))
    for nal in pps:
        out += len(nal).to_bytes(2, "big") + bytes(nal)
    if info.profile_idc not in AVCC_NO_EXT_PROFILES:
        out += bytes((0xFC | info.chroma_format_idc, 0xF8 | (info.bit_depth - 8),
                      0xF8 | (info.bit_depth_chroma - 8), 0))
    return bytes(out)


def codec_string(sps_nal: bytes | memoryview) -> str:
    """RFC 6381 CODECS string ``avc1.PPCCLL`` from SPS bytes 1..3. Raises ``CodecError`` if short."""
    if len(sps_nal) < 4:
        raise CodecError("SPS too short for a codec string", length=len(sps_nal))
    return "avc1.%02x%02x%02x" % (sps_nal[1], sps_nal[2], sps_nal[3])


def iter_avcc(payload: bytes | memoryview, length_size: int = 4) -> Iterator[memoryview]:
    """Yield each NAL unit of a length-prefixed (AVCC/HVCC) payload as a memoryview slice.

    Zero-length NAL units are skipped. Raises ``CodecError`` when a length prefix is truncated
    or points past the end of the payload.
    """
    view = memoryview(payload)
    pos, end = 0, len(view)
    while pos < end:
        if pos + length_size > end:
            raise CodecError("truncated NAL length prefix", offset=pos, length=end)
        n = int.from_bytes(view[pos : pos + length_size], "big")
        pos += length_size
        if n > end - pos:
            raise CodecError("NAL length past end of payload", offset=pos, nal_length=n,
                             remaining=end - pos)
        if n:
            yield view[pos : pos + n]
        pos += n


def is_keyframe(payload: bytes | memoryview, length_size: int = 4) -> bool:
    """True when the AVCC access unit contains an IDR slice. Raises ``CodecError`` on bad framing."""
    return any(nal[0] & 0x1F == NAL_IDR for nal in iter_avcc(payload, length_size))


def split_annexb(data: bytes | memoryview) -> list[memoryview]:
    """Split an Annex-B byte stream on 3- or 4-byte start codes into NAL unit views.

    Bytes before the first start code count as a NAL unit (a camera that sent one bare NAL unit
    gets it back whole); trailing zero bytes (trailing_zero_8bits, the first byte of a 4-byte
    start code) are trimmed; empty units are dropped. Never raises. The views slice ``data``;
    a non-``bytes`` input is copied once for the start-code search (memoryview has no find).
    """
    view = memoryview(data)
    raw = bytes(data) if not isinstance(data, bytes) else data
    out: list[memoryview] = []
    start = 0
    while True:
        i = raw.find(b"\x00\x00\x01", start)
        end = i if i >= 0 else len(raw)
        j = end
        while j > start and raw[j - 1] == 0:
            j -= 1
        if j > start:
            out.append(view[start:j])
        if i < 0:
            return out
        start = i + 3


def annexb_to_avcc(data: bytes | memoryview) -> bytes:
    """Convert an Annex-B access unit to AVCC (4-byte big-endian lengths). Returns new bytes."""
    parts: list[bytes | memoryview] = []
    for nal in split_annexb(data):
        parts.append(len(nal).to_bytes(4, "big"))
        parts.append(nal)
    return b"".join(parts)


def avcc_to_annexb(payload: bytes | memoryview, length_size: int = 4) -> bytes:
    """Convert an AVCC access unit to Annex-B with 4-byte start codes. Raises ``CodecError``."""
    parts: list[bytes | memoryview] = []
    for nal in iter_avcc(payload, length_size):
        parts.append(b"\x00\x00\x00\x01")
        parts.append(nal)
    return b"".join(parts)
