"""Opus: the OpusHead header, the MP4 ``dOps`` body, packet durations from the TOC byte.

Implements RFC 7845 section 5.1 (identification header, little-endian, "OpusHead" magic),
"Encapsulation of Opus in ISO Base Media File Format" v0.6.8 section 4.3.2 (``dOps``,
big-endian, no magic) and RFC 6716 section 3.1/3.2 (TOC byte, frame count code).

Strategy: plain ``struct``-free slicing with explicit bounds checks; ``CodecError`` on bad input.
"""

from __future__ import annotations

from dataclasses import dataclass

from rtmpgop.errors import CodecError

OPUS_HEAD_MAGIC = b"OpusHead"
OPUS_CLOCK = 48_000
"""Opus timestamps are always 48 kHz (RFC 7587 section 4.1, RFC 7845 section 4)."""

DEFAULT_PRE_SKIP = 312
"""Pre-skip to assume when the source does not say (libopus default at 48 kHz; mediacommon)."""

MAX_PACKET_SAMPLES = 5760
"""A packet lasts at most 120 ms (RFC 6716 section 3.2.5): 5760 samples at 48 kHz."""

# Frame sizes in 48 kHz samples per TOC config (RFC 6716 table 2): SILK 10/20/40/60 ms,
# hybrid 10/20 ms, CELT 2.5/5/10/20 ms.
_FRAME_SAMPLES = tuple([480, 960, 1920, 2880] * 3 + [480, 960] * 2 + [120, 240, 480, 960] * 4)


@dataclass(frozen=True, slots=True)
class OpusHead:
    """An RFC 7845 identification header. ``mapping`` is empty for family 0."""

    channels: int
    pre_skip: int = DEFAULT_PRE_SKIP
    input_rate: int = OPUS_CLOCK
    output_gain: int = 0
    mapping_family: int = 0
    stream_count: int = 1
    coupled_count: int = 1
    mapping: bytes = b""
    version: int = 1


def parse_opus_head(data: bytes | memoryview) -> OpusHead:
    """Parse an OpusHead. Returns ``OpusHead``. Raises ``CodecError`` on bad magic, an
    unsupported major version, zero channels or a truncated channel mapping table."""
    d = bytes(data)
    if len(d) < 19 or d[:8] != OPUS_HEAD_MAGIC:
        raise CodecError("bad OpusHead", length=len(d))
    version, channels = d[8], d[9]
    if version & 0xF0:
        raise CodecError("unsupported OpusHead major version", version=version)
    if channels == 0:
        raise CodecError("OpusHead with 0 channels")
    pre_skip = int.from_bytes(d[10:12], "little")
    rate = int.from_bytes(d[12:16], "little")
    gain = int.from_bytes(d[16:18], "little", signed=True)
    family = d[18]
    if family == 0:
        if channels > 2:
            raise CodecError("mapping family 0 allows at most 2 channels", channels=channels)
        return OpusHead(channels, pre_skip, rate, gain, 0, 1, channels - 1, b"", version)
    if len(d) < 21 + channels:
        raise CodecError("OpusHead channel mapping truncated", length=len(d))
    streams, coupled = d[19], d[20]
    if streams == 0 or coupled > streams:
        raise CodecError("bad Opus stream counts", streams=streams, coupled=coupled)
    return OpusHead(channels, pre_skip, rate, gain, family, streams, coupled,
                    d[21 : 21 + channels], version)


def build_opus_head(channels: int = 2, pre_skip: int = DEFAULT_PRE_SKIP,
                    input_rate: int = OPUS_CLOCK) -> bytes:
    """Build an OpusHead with mapping family 0 (channels 1 or 2) or 1 (3..8, Vorbis order).

    Returns the header bytes. Raises ``ValueError`` for a channel count outside 1..8.
    """
    if not 1 <= channels <= 8:
        raise ValueError("Opus channels must be 1..8")
    head = bytearray(OPUS_HEAD_MAGIC)
    head += bytes((1, channels)) + pre_skip.to_bytes(2, "little")
    head += input_rate.to_bytes(4, "little") + b"\x00\x00"
    if channels <= 2:
        head.append(0)
    else:
        # RFC 7845 5.1.1.2: Vorbis channel order; streams/coupled as libopus' surround encoder.
        coupled = {3: 1, 4: 2, 5: 2, 6: 2, 7: 3, 8: 3}[channels]
        streams = channels - coupled
        head += bytes((1, streams, coupled)) + _vorbis_mapping(channels, streams, coupled)
    return bytes(head)


def _vorbis_mapping(channels: int, streams: int, coupled: int) -> bytes:
    # libopus opus_multistream_surround_encoder_create mapping tables (vorbis_mappings).
    table = {3: (0, 2, 1), 4: (0, 1, 2, 3), 5: (0, 4, 1, 2, 3), 6: (0, 4, 1, 2, 3, 5),
             7: (0, 4, 1, 2, 3, 5, 6), 8: (0, 6, 1, 2, 3, 4, 5, 7)}
    return bytes(table[channels])


def dops_from_opus_head(head: OpusHead | bytes | memoryview) -> bytes:
    """The MP4 ``dOps`` box body (big-endian, Version 0, no magic) for an OpusHead.

    Accepts a parsed ``OpusHead`` or its bytes. Raises ``CodecError`` if the bytes do not parse.
    """
    h = head if isinstance(head, OpusHead) else parse_opus_head(head)
    out = bytearray((0, h.channels)) + h.pre_skip.to_bytes(2, "big")
    out += h.input_rate.to_bytes(4, "big") + h.output_gain.to_bytes(2, "big", signed=True)
    out.append(h.mapping_family)
    if h.mapping_family != 0:
        out += bytes((h.stream_count, h.coupled_count)) + h.mapping
    return bytes(out)


def packet_samples(packet: bytes | memoryview) -> int:
    """Duration of an Opus packet in 48 kHz samples, from its TOC byte (RFC 6716 3.1).

    Raises ``CodecError`` for an empty packet, a code-3 packet without its count byte or with
    zero frames, or a total above 120 ms.
    """
    if len(packet) == 0:
        raise CodecError("empty Opus packet")
    toc = packet[0]
    per_frame = _FRAME_SAMPLES[toc >> 3]
    code = toc & 3
    if code == 0:
        frames = 1
    elif code < 3:
        frames = 2
    else:
        if len(packet) < 2:
            raise CodecError("Opus code 3 packet without frame count")
        frames = packet[1] & 0x3F
        if frames == 0:
            raise CodecError("Opus packet with 0 frames")
    total = per_frame * frames
    if total > MAX_PACKET_SAMPLES:
        raise CodecError("Opus packet longer than 120 ms", samples=total)
    return total
