"""AAC: AudioSpecificConfig, ADTS headers, the ``mp4a.40.N`` CODECS string.

Implements ISO/IEC 14496-3 sections 1.6.2.1 (AudioSpecificConfig, with explicit SBR/PS
signalling), 4.4.1 (GASpecificConfig), 4.4.1.1 (program_config_element, channel count only),
1.A.2.2 (adts_fixed_header / adts_variable_header) and RFC 6381 section 3.3.

Strategy: bounds-checked ``BitReader``; ``ASC.sample_rate`` is the core (AAC) rate from the
config, the rate timestamps and MP4 timescales use. Malformed input raises ``CodecError``.
"""

from __future__ import annotations

from dataclasses import dataclass

from rtmpgop.codecs.bits import BitReader
from rtmpgop.errors import CodecError

SAMPLE_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025,
                8000, 7350)
"""samplingFrequencyIndex table (14496-3 table 1.18); 13 and 14 are reserved, 15 = explicit."""

CHANNEL_CONFIGS = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 7: 8, 11: 7, 12: 8, 13: 24, 14: 8}
"""channelConfiguration -> channel count (14496-3 table 1.19, with the 2013 additions)."""

AOT_AAC_LC = 2
AOT_SBR = 5
AOT_PS = 29
GA_OBJECT_TYPES = frozenset({1, 2, 3, 4, 6, 7, 17, 19, 20, 21, 22, 23})
"""Object types whose ASC continues with GASpecificConfig."""

SYNC_EXTENSION_SBR = 0x2B7
SYNC_EXTENSION_PS = 0x548

ADTS_HEADER_SIZE = 7
ADTS_CRC_SIZE = 2


@dataclass(frozen=True, slots=True)
class ASC:
    """An AudioSpecificConfig. ``object_type`` is the first AOT (5 for explicit HE-AAC)."""

    object_type: int
    sample_rate: int  # core rate; the SBR output rate is ``extension_sample_rate``
    channels: int  # 0 when unknown (channelConfiguration 0 without a readable PCE)
    frame_length: int = 1024  # 1024 or 960 samples per frame at the core rate
    sbr: bool = False
    ps: bool = False
    channel_config: int = 0
    base_object_type: int = 0  # the core AOT under SBR/PS, else == object_type
    extension_sample_rate: int = 0


def _aot(r: BitReader) -> int:
    aot = r.u(5)
    return 32 + r.u(6) if aot == 31 else aot


def _rate(r: BitReader) -> int:
    idx = r.u(4)
    if idx == 15:
        return r.u(24)
    if idx >= len(SAMPLE_RATES):
        raise CodecError("reserved samplingFrequencyIndex", index=idx)
    return SAMPLE_RATES[idx]


def _pce_channels(r: BitReader) -> int:
    r.skip(4 + 2 + 4)  # element_instance_tag, object_type, sampling_frequency_index
    front, side, back = r.u(4), r.u(4), r.u(4)
    lfe = r.u(2)
    r.skip(3 + 4)  # num_assoc_data_elements, num_valid_cc_elements
    for _ in range(3):  # mono/stereo mixdown (4 bits each), matrix mixdown (3 bits)
        if r.flag():
            r.skip(4 if _ < 2 else 3)
    channels = lfe
    for _ in range(front + side + back):
        channels += 2 if r.flag() else 1
        r.skip(4)
    return channels


def parse_asc(data: bytes | memoryview) -> ASC:
    """Parse an AudioSpecificConfig. Returns ``ASC``. Raises ``CodecError`` on bad input."""
    r = BitReader(data)
    aot = _aot(r)
    if aot == 0:
        raise CodecError("AudioSpecificConfig object type 0 (null)")
    rate = _rate(r)
    if rate == 0:
        raise CodecError("AudioSpecificConfig sample rate 0")
    chan_cfg = r.u(4)
    sbr = ps = False
    ext_rate = 0
    base = aot
    if aot in (AOT_SBR, AOT_PS):
        sbr, ps = True, aot == AOT_PS
        ext_rate = _rate(r)
        base = _aot(r)
        if base == 22:
            r.skip(4)
    frame_length = 1024
    channels = CHANNEL_CONFIGS.get(chan_cfg, 0)
    if chan_cfg and not channels:
        raise CodecError("reserved channelConfiguration", channel_config=chan_cfg)
    if base in GA_OBJECT_TYPES and r.bits_left:
        frame_length = 960 if r.flag() else 1024
        if r.flag():  # dependsOnCoreCoder
            r.skip(14)
        r.skip(1)  # extensionFlag
        if chan_cfg == 0:
            channels = _pce_channels(r)
        if not sbr and r.bits_left >= 16 and r.u(11) == SYNC_EXTENSION_SBR:
            # backward-compatible explicit SBR signalling (1.6.5.2), e.g. FFmpeg's aac writes
            # 2b7 + AOT 5 + sbrPresentFlag 0 after every AAC-LC config
            if _aot(r) == AOT_SBR and r.flag():
                sbr = True
                ext_rate = _rate(r)
                if r.bits_left >= 12 and r.u(11) == SYNC_EXTENSION_PS:
                    ps = r.flag()
    return ASC(aot, rate, channels, frame_length, sbr, ps, chan_cfg, base, ext_rate)


def build_asc(object_type: int, sample_rate: int, channels: int) -> bytes:
    """Build a minimal AudioSpecificConfig (GASpecificConfig with 1024-sample frames).

    Returns the bytes. Raises ``ValueError`` for a channel count no channelConfiguration has.
    """
    cfg = {v: k for k, v in CHANNEL_CONFIGS.items() if k in (1, 2, 3, 4, 5, 6, 7, 11)}.get(channels)
    if cfg is None:
        raise ValueError(f"no channelConfiguration for {channels} channels")
    bits: list[tuple[int, int]] = []
    if object_type >= 31:
        bits += [(31, 5), (object_type - 32, 6)]
    else:
        bits.append((object_type, 5))
    if sample_rate in SAMPLE_RATES:
        bits.append((SAMPLE_RATES.index(sample_rate), 4))
    else:
        bits += [(15, 4), (sample_rate, 24)]
    bits.append((cfg, 4))
    if object_type in GA_OBJECT_TYPES:
        bits.append((0, 3))
    value, n = 0, 0
    for v, w in bits:
        value = (value << w) | v
        n += w
    pad = -n % 8
    return (value << pad).to_bytes((n + pad) // 8, "big")


def parse_adts(data: bytes | memoryview) -> tuple[ASC, int, int]:
    """Parse the ADTS header at the start of ``data``.

    Returns (ASC, header_len, frame_len) where frame_len includes the header. Raises
    ``CodecError`` on a missing syncword, a frame shorter than its header, or a frame holding
    more than one raw data block (not supported).
    """
    if len(data) < ADTS_HEADER_SIZE:
        raise CodecError("ADTS header truncated", length=len(data))
    h = bytes(data[:ADTS_HEADER_SIZE])
    if h[0] != 0xFF or h[1] & 0xF6 != 0xF0:
        raise CodecError("no ADTS syncword")
    header_len = ADTS_HEADER_SIZE if h[1] & 1 else ADTS_HEADER_SIZE + ADTS_CRC_SIZE
    profile = h[2] >> 6
    idx = (h[2] >> 2) & 0xF
    if idx >= len(SAMPLE_RATES):
        raise CodecError("reserved ADTS sampling index", index=idx)
    chan_cfg = ((h[2] & 1) << 2) | (h[3] >> 6)
    frame_len = ((h[3] & 3) << 11) | (h[4] << 3) | (h[5] >> 5)
    if frame_len < header_len:
        raise CodecError("ADTS frame shorter than its header", frame_length=frame_len)
    if h[6] & 3:
        raise CodecError("ADTS frames with several raw data blocks are not supported",
                         blocks=(h[6] & 3) + 1)
    asc = ASC(profile + 1, SAMPLE_RATES[idx], CHANNEL_CONFIGS.get(chan_cfg, 0), 1024,
              channel_config=chan_cfg, base_object_type=profile + 1)
    return asc, header_len, frame_len


def strip_adts(data: bytes | memoryview) -> list[memoryview]:
    """Split a run of ADTS frames into raw AAC frames (memoryview slices of ``data``).

    Raises ``CodecError`` on a bad header or a frame running past the end of ``data``.
    """
    view = memoryview(data)
    out: list[memoryview] = []
    pos = 0
    while pos < len(view):
        _, header_len, frame_len = parse_adts(view[pos:])
        if pos + frame_len > len(view):
            raise CodecError("ADTS frame past end of data", offset=pos, frame_length=frame_len)
        out.append(view[pos + header_len : pos + frame_len])
        pos += frame_len
    return out


def codec_string(asc: ASC | bytes | memoryview) -> str:
    """RFC 6381 CODECS string ``mp4a.40.<object type>``, e.g. ``mp4a.40.2``.

    Accepts a parsed ``ASC`` or AudioSpecificConfig bytes (then raises ``CodecError`` if bad).
    """
    if not isinstance(asc, ASC):
        asc = parse_asc(asc)
    return f"mp4a.40.{asc.object_type}"
