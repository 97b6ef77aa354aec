"""AV1: OBU framing, the sequence header, the av1C record, the ``av01.`` CODECS string.

Implements the AV1 Bitstream & Decoding Process Specification (2019, with errata) sections
5.3 (OBU header, leb128 4.10.5), 5.5 (sequence_header_obu, color_config) and the start of 5.9.2
(uncompressed_header: show_existing_frame, frame_type); the AV1 Codec ISO Media File Format
Binding v1.2.0 section 2.3 (AV1CodecConfigurationRecord) and its annex A (CODECS string).

Strategy: ``iter_obus`` yields ``Obu`` records whose payloads are memoryview slices of the input;
the sequence header is parsed with the bounds-checked ``BitReader``; anything malformed raises
``CodecError``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from rtmpgop.codecs.bits import BitReader
from rtmpgop.errors import CodecError

OBU_SEQUENCE_HEADER = 1
OBU_TEMPORAL_DELIMITER = 2
OBU_FRAME_HEADER = 3
OBU_TILE_GROUP = 4
OBU_METADATA = 5
OBU_FRAME = 6
OBU_REDUNDANT_FRAME_HEADER = 7
OBU_TILE_LIST = 8
OBU_PADDING = 15

KEY_FRAME = 0

MAX_LEB128_BYTES = 8
"""leb128() reads at most 8 bytes (spec 4.10.5)."""

MAX_OPERATING_POINTS = 32
"""operating_points_cnt_minus_1 is a 5-bit field."""


@dataclass(frozen=True, slots=True)
class Obu:
    """One OBU. ``data`` is the whole OBU (header included); ``payload`` the body after size."""

    type: int
    temporal_id: int
    spatial_id: int
    has_extension: bool
    data: memoryview
    payload: memoryview


@dataclass(frozen=True, slots=True)
class SequenceHeader:
    """Fields of a sequence_header_obu (5.5) that config records and CODECS need."""

    seq_profile: int
    still_picture: bool
    reduced_still_picture_header: bool
    seq_level_idx: int  # operating point 0
    seq_tier: int  # operating point 0
    bit_depth: int
    mono_chrome: bool
    subsampling_x: int
    subsampling_y: int
    chroma_sample_position: int
    max_frame_width: int
    max_frame_height: int
    frame_rate: float  # from timing_info when equal_picture_interval, else 0.0
    color_primaries: int = 2
    transfer_characteristics: int = 2
    matrix_coefficients: int = 2
    color_range: int = 0


@dataclass(frozen=True, slots=True)
class Av1C:
    """An AV1CodecConfigurationRecord; ``sequence_header`` is parsed from ``config_obus``."""

    seq_profile: int
    seq_level_idx_0: int
    seq_tier_0: int
    high_bitdepth: bool
    twelve_bit: bool
    monochrome: bool
    chroma_subsampling_x: int
    chroma_subsampling_y: int
    chroma_sample_position: int
    initial_presentation_delay: int | None
    config_obus: bytes
    sequence_header: SequenceHeader | None


def read_leb128(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    """Decode leb128 at ``pos``. Returns (value, new_pos). Raises ``CodecError`` if truncated."""
    value = 0
    for i in range(MAX_LEB128_BYTES):
        if pos + i >= len(data):
            raise CodecError("truncated leb128", offset=pos)
        b = data[pos + i]
        value |= (b & 0x7F) << (7 * i)
        if not b & 0x80:
            return value, pos + i + 1
    raise CodecError("leb128 longer than 8 bytes", offset=pos)


def leb128(value: int) -> bytes:
    """Encode ``value`` as minimal leb128."""
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def iter_obus(data: bytes | memoryview) -> Iterator[Obu]:
    """Yield the OBUs of a low-overhead bitstream (a temporal unit or configOBUs).

    An OBU without ``obu_has_size_field`` extends to the end of ``data``. Raises ``CodecError``
    on a set forbidden bit, a truncated header or a size past the end.
    """
    view = memoryview(data)
    pos, end = 0, len(view)
    while pos < end:
        start = pos
        h = view[pos]
        if h & 0x80:
            raise CodecError("OBU forbidden bit set", offset=pos)
        typ, ext, has_size = (h >> 3) & 0xF, bool(h & 4), bool(h & 2)
        tid = sid = 0
        pos += 1
        if ext:
            if pos >= end:
                raise CodecError("truncated OBU extension header", offset=start)
            tid, sid = view[pos] >> 5, (view[pos] >> 3) & 3
            pos += 1
        if has_size:
            size, pos = read_leb128(view, pos)
            if size > end - pos:
                raise CodecError("OBU size past end", offset=start, size=size)
        else:
            size = end - pos
        yield Obu(typ, tid, sid, ext, view[start : pos + size], view[pos : pos + size])
        pos += size


def _uvlc(r: BitReader) -> int:
    zeros = 0
    while not r.flag():
        zeros += 1
        if zeros >= 32:
            raise CodecError("uvlc too long")
    return (1 << zeros) - 1 + r.u(zeros)


def parse_sequence_header(payload: bytes | memoryview) -> SequenceHeader:
    """Parse a sequence_header_obu body (after the OBU header and size). Raises ``CodecError``."""
    r = BitReader(payload)
    profile, still, reduced = r.u(3), r.flag(), r.flag()
    if profile > 2:
        raise CodecError("reserved seq_profile", seq_profile=profile)
    frame_rate = 0.0
    if reduced:
        level, tier = r.u(5), 0
    else:
        decoder_model = False
        buffer_delay_len = 0
        if r.flag():  # timing_info_present_flag
            num_units, time_scale = r.u(32), r.u(32)
            if r.flag():  # equal_picture_interval
                ticks = _uvlc(r) + 1
                if num_units:
                    frame_rate = time_scale / (num_units * ticks)
            decoder_model = r.flag()
            if decoder_model:
                buffer_delay_len = r.u(5) + 1
                r.skip(32 + 5 + 5)
        initial_delay = r.flag()
        level = tier = 0
        for i in range(r.u(5) + 1):
            r.skip(12)  # operating_point_idc
            lv = r.u(5)
            tr = r.u(1) if lv > 7 else 0
            if i == 0:
                level, tier = lv, tr
            if decoder_model and r.flag():
                r.skip(2 * buffer_delay_len + 1)
            if initial_delay and r.flag():
                r.skip(4)
    wbits, hbits = r.u(4) + 1, r.u(4) + 1
    width, height = r.u(wbits) + 1, r.u(hbits) + 1
    if not reduced and r.flag():  # frame_id_numbers_present_flag
        r.skip(7)
    r.skip(3)  # use_128x128_superblock, enable_filter_intra, enable_intra_edge_filter
    if not reduced:
        r.skip(4)  # interintra, masked compound, warped motion, dual filter
        order_hint = r.flag()
        if order_hint:
            r.skip(2)
        force_sct = 2 if r.flag() else r.u(1)  # seq_choose_screen_content_tools
        if force_sct > 0 and not r.flag():  # seq_choose_integer_mv
            r.skip(1)
        if order_hint:
            r.skip(3)
    r.skip(3)  # enable_superres, enable_cdef, enable_restoration
    # color_config (5.5.2)
    high = r.flag()
    depth = 8
    if profile == 2 and high:
        depth = 12 if r.flag() else 10
    elif high:
        depth = 10
    mono = False if profile == 1 else r.flag()
    cp = tc = mc = 2
    if r.flag():  # color_description_present_flag
        cp, tc, mc = r.u(8), r.u(8), r.u(8)
    csp = 0
    if mono:
        rng, sx, sy = r.u(1), 1, 1
    elif cp == 1 and tc == 13 and mc == 0:
        rng, sx, sy = 1, 0, 0
    else:
        rng = r.u(1)
        if profile == 0:
            sx, sy = 1, 1
        elif profile == 1:
            sx, sy = 0, 0
        elif depth == 12:
            sx = r.u(1)
            sy = r.u(1) if sx else 0
        else:
            sx, sy = 1, 0
        if sx and sy:
            csp = r.u(2)
    return SequenceHeader(profile, still, reduced, level, tier, depth, mono, sx, sy, csp,
                          width, height, frame_rate, cp, tc, mc, rng)


def find_sequence_header(data: bytes | memoryview) -> Obu | None:
    """The first sequence header OBU in an OBU stream, or None. Raises ``CodecError``."""
    for obu in iter_obus(data):
        if obu.type == OBU_SEQUENCE_HEADER:
            return obu
    return None


def parse_av1c(record: bytes | memoryview) -> Av1C:
    """Parse an AV1CodecConfigurationRecord (marker 1, version 1) and its configOBUs.

    Returns ``Av1C``. Raises ``CodecError`` on a bad marker/version or malformed OBUs.
    """
    d = bytes(record)
    if len(d) < 4 or d[0] != 0x81:
        raise CodecError("bad av1C header", length=len(d))
    obus = d[4:]
    seq = find_sequence_header(obus)
    header = parse_sequence_header(seq.payload) if seq is not None else None
    delay = (d[3] & 0xF) + 1 if d[3] & 0x10 else None
    return Av1C(d[1] >> 5, d[1] & 0x1F, d[2] >> 7, bool(d[2] & 0x40), bool(d[2] & 0x20),
                bool(d[2] & 0x10), (d[2] >> 3) & 1, (d[2] >> 2) & 1, d[2] & 3, delay, obus,
                header)


def build_av1c(sequence_header_obu: bytes | memoryview) -> bytes:
    """Build an av1C record from an OBU stream holding a sequence header OBU.

    The sequence header is stored in configOBUs with ``obu_has_size_field`` set. Returns the
    record. Raises ``CodecError`` if there is no (valid) sequence header.
    """
    obu = find_sequence_header(sequence_header_obu)
    if obu is None:
        raise CodecError("no AV1 sequence header OBU")
    s = parse_sequence_header(obu.payload)
    hdr = bytes((obu.data[0] & 0xF8 | 0x02,)) + (bytes(obu.data[1:2]) if obu.has_extension else b"")
    config_obu = hdr + leb128(len(obu.payload)) + bytes(obu.payload)
    return bytes((
        0x81,
        (s.seq_profile << 5) | s.seq_level_idx,
        (s.seq_tier << 7) | ((s.bit_depth > 8) << 6) | ((s.bit_depth == 12) << 5)
        | (s.mono_chrome << 4) | (s.subsampling_x << 3) | (s.subsampling_y << 2)
        | s.chroma_sample_position,
        0,
    )) + config_obu


def codec_string(seq: SequenceHeader | bytes | memoryview) -> str:
    """The short CODECS string ``av01.P.LLT.DD`` (e.g. ``av01.0.04M.08``).

    Accepts a parsed ``SequenceHeader``, an av1C record or an OBU stream holding a sequence
    header. Raises ``CodecError`` when bytes hold no valid sequence header.
    """
    if not isinstance(seq, SequenceHeader):
        data = bytes(seq)
        if data[:1] == b"\x81":
            found = parse_av1c(data).sequence_header
        else:
            obu = find_sequence_header(data)
            found = parse_sequence_header(obu.payload) if obu is not None else None
        if found is None:
            raise CodecError("no AV1 sequence header for a codec string")
        seq = found
    return "av01.%d.%02d%s.%02d" % (seq.seq_profile, seq.seq_level_idx,
                                    "H" if seq.seq_tier else "M", seq.bit_depth)


def is_keyframe(temporal_unit: bytes | memoryview) -> bool:
    """True when the first frame header of the temporal unit is a shown-or-not KEY_FRAME.

    A sequence header in the same unit decides ``reduced_still_picture_header`` (then every frame
    is a key frame); without one the full header form is assumed. ``show_existing_frame`` units
    are not key frames. Raises ``CodecError`` on malformed OBU framing.
    """
    reduced = False
    for obu in iter_obus(temporal_unit):
        if obu.type == OBU_SEQUENCE_HEADER:
            reduced = parse_sequence_header(obu.payload).reduced_still_picture_header
        elif obu.type in (OBU_FRAME, OBU_FRAME_HEADER):
            if reduced:
                return True
            if len(obu.payload) == 0:
                raise CodecError("empty frame header OBU")
            b = obu.payload[0]
            if b & 0x80:  # show_existing_frame
                return False
            return (b >> 5) & 3 == KEY_FRAME
    return False
