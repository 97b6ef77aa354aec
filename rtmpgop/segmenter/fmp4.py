"""Fragmented MP4 (CMAF-style) writer: init segments and moof+mdat fragments, sans-IO.

Implements ISO/IEC 14496-12:2022 (ftyp 4.3, moov/mvhd/trak/tkhd/mdia/mdhd/hdlr/minf/stbl 8.x,
mvex/trex 8.8, moof/mfhd/traf/tfhd/tfdt/trun 8.8.x, sample flags 8.8.3.1), 14496-15 (avcC
5.3.4.1, hvcC 8.4.1), 14496-14 (esds), the AV1 ISOBMFF binding v1.2.0 (av01/av1C) and
"Opus in ISOBMFF" v0.6.8 (Opus/dOps), following /work/shared/reference/llhls-fmp4.md 6-8.

Public API::

    init_segment(tracks: Sequence[Track]) -> bytes
        ftyp+moov for the tracks; MP4 track_ID = position in ``tracks`` + 1; timescale =
        ``track.clock_rate`` (video 90000, audio the sample rate, Opus 48000), so hub
        timestamps go in unchanged.
    Sample(dts, pts, duration, keyframe, payload)            one access unit, track clock
    build_fragment(sequence_number, runs, kinds=None) -> Fragment
        one moof+mdat; ``runs`` = [(track position, [Sample ...]), ...] (any object with the
        Sample attributes works); ``kinds`` (MediaKind per position) makes audio samples sync.
    Fragment.buffers / size() / to_bytes() / write_into(buf, offset)
        header bytes followed by the payload objects themselves (no copy) for writelines().
    FragmentWriter(tracks)  .init_segment()  .fragment(runs) (numbers fragments from 1)
    Packager: init(tracks) -> bytes, fragment(sequence, runs) -> bytes  (segmenter.llhls)

Raises ``ValueError`` for our own misuse (negative dts, a composition offset or size that does
not fit its field, a codec without a sample entry, no samples). Codec records are written as
the ``CodecConfig`` holds them (they were validated by ``rtmpgop.codecs.make_config``), except
that hvcC arrays get array_completeness=1 as ``hvc1`` requires.

Box tree (init segment, then each fragment)::

    ftyp                       major iso6, compatible iso6 cmfc isom mp41 mp42 hlsf
    moov
    ├── mvhd                   v0, timescale 1000, duration 0, next_track_ID
    ├── trak                   one per track, track_ID = position + 1
    │   ├── tkhd               v0, flags 3; width/height 16.16 (video), volume 1.0 (audio)
    │   └── mdia
    │       ├── mdhd           v0, timescale = track clock, language und
    │       ├── hdlr           vide | soun
    │       └── minf
    │           ├── vmhd | smhd
    │           ├── dinf > dref > url (flags 1: self-contained)
    │           └── stbl
    │               ├── stsd > avc1>avcC | hvc1>hvcC | av01>av1C | mp4a>esds | Opus>dOps
    │               └── stts stsc stsz stco (empty: samples live in fragments)
    └── mvex
        └── trex               one per track: sample description 1, other defaults 0

    moof
    ├── mfhd                   sequence_number
    └── traf                   one per track with samples, in ``runs`` order
        ├── tfhd               flags 0x020000 default-base-is-moof
        ├── tfdt               v1, baseMediaDecodeTime u64 = first sample's dts
        └── trun               v1, flags 0xF01: data_offset, per sample duration, size,
                               flags (sync 0x02000000, non-sync 0x01010000), signed CTS
    mdat                       track 1 payloads, track 2 payloads, ... (runs order)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from struct import Struct

from rtmpgop.codecs import opus
from rtmpgop.media import Codec, MediaKind, Track

SYNC_SAMPLE_FLAGS = 0x02000000
"""sample_depends_on=2 (an I picture): a random access point."""
NON_SYNC_SAMPLE_FLAGS = 0x01010000
"""sample_depends_on=1 plus sample_is_non_sync_sample."""

TRUN_FLAGS = 0x000F01
"""data-offset, sample-duration, sample-size, sample-flags and composition-offset present."""
TFHD_DEFAULT_BASE_IS_MOOF = 0x020000

MOVIE_TIMESCALE = 1000
MAX_BOX_SIZE = 0xFFFFFFFF
"""32-bit box sizes: a fragment is one LL-HLS part (well under a second), never near 4 GiB."""

_U32 = Struct(">I")
_SAMPLE = Struct(">IIIi")
_MATRIX = Struct(">9I").pack(0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000)


def box(kind: bytes, *parts: bytes) -> bytes:
    """A plain box: size + type + body."""
    body = b"".join(parts)
    return _U32.pack(8 + len(body)) + kind + body


def full_box(kind: bytes, version: int, flags: int, *parts: bytes) -> bytes:
    """A FullBox: size + type + version u8 + flags u24 + body."""
    return box(kind, _U32.pack((version << 24) | flags), *parts)


# ----------------------------------------------------------------------------- init segment


def _ftyp() -> bytes:
    return box(b"ftyp", b"iso6", _U32.pack(0), b"iso6cmfcisommp41mp42hlsf")


def _mvhd(next_track_id: int) -> bytes:
    return full_box(b"mvhd", 0, 0, Struct(">IIIIIH10s").pack(
        0, 0, MOVIE_TIMESCALE, 0, 0x00010000, 0x0100, b""), _MATRIX, bytes(24),
        _U32.pack(next_track_id))


def _tkhd(track_id: int, track: Track) -> bytes:
    video = track.kind is MediaKind.VIDEO
    return full_box(b"tkhd", 0, 3, Struct(">IIII4sIIhhhH").pack(
        0, 0, track_id, 0, b"", 0, 0, 0, 0 if video else 1, 0 if video else 0x0100, 0),
        _MATRIX, Struct(">II").pack((track.config.width << 16) if video else 0,
                                    (track.config.height << 16) if video else 0))


def _mdhd(timescale: int) -> bytes:
    # language 'und' packed as three 5-bit letters (ISO 639-2/T minus 0x60): 0x55C4
    return full_box(b"mdhd", 0, 0, Struct(">IIIIHH").pack(0, 0, timescale, 0, 0x55C4, 0))


def _hdlr(video: bool) -> bytes:
    handler, name = (b"vide", b"VideoHandler\0") if video else (b"soun", b"SoundHandler\0")
    return full_box(b"hdlr", 0, 0, _U32.pack(0), handler, bytes(12), name)


def _visual_entry(kind: bytes, track: Track, config_box: bytes) -> bytes:
    c = track.config
    return box(kind, bytes(6), Struct(">HHH12sHHIIIH32sHh").pack(
        1, 0, 0, b"", c.width, c.height, 0x00480000, 0x00480000, 0, 1, b"", 0x0018, -1),
        config_box)


def _audio_entry(kind: bytes, channels: int, rate: int, config_box: bytes) -> bytes:
    # samplerate is 16.16: rates above 65535 do not fit and are written as 0 (FFmpeg does too)
    return box(kind, bytes(6), Struct(">H8sHHHHI").pack(
        1, b"", channels, 16, 0, 0, (rate << 16) if rate <= 0xFFFF else 0), config_box)


def _descriptor(tag: int, body: bytes) -> bytes:
    n = len(body)
    size = bytearray()
    while True:
        size.insert(0, (n & 0x7F) | (0x80 if size else 0))
        n >>= 7
        if not n:
            break
    return bytes((tag,)) + bytes(size) + body


def _esds(track_id: int, asc: bytes) -> bytes:
    dec_config = _descriptor(0x04, bytes((0x40, 0x15)) + bytes(3) + bytes(8) +
                             _descriptor(0x05, asc))
    es = _descriptor(0x03, track_id.to_bytes(2, "big") + b"\x00" + dec_config +
                     _descriptor(0x06, b"\x02"))
    return full_box(b"esds", 0, 0, es)


def _hvc1_record(record: bytes) -> bytes:
    """hvcC with array_completeness=1 on the VPS/SPS/PPS arrays, as ``hvc1`` requires
    (14496-15 8.4.1: all parameter sets are in the sample entry; Apple authoring spec 1.10).
    Encoders (OBS, some cameras) send 0; a record that does not walk cleanly is kept as is."""
    out = bytearray(record)
    if len(out) < 23:
        return record
    pos = 23
    for _ in range(out[22]):
        if pos + 3 > len(out):
            return record
        if out[pos] & 0x3F in (32, 33, 34):
            out[pos] |= 0x80
        count = int.from_bytes(out[pos + 1 : pos + 3], "big")
        pos += 3
        for _ in range(count):
            if pos + 2 > len(out):
                return record
            pos += 2 + int.from_bytes(out[pos : pos + 2], "big")
    return bytes(out) if pos <= len(out) else record


def _sample_entry(track_id: int, track: Track) -> bytes:
    c = track.config
    if c.codec is Codec.H264:
        return _visual_entry(b"avc1", track, box(b"avcC", c.record))
    if c.codec is Codec.H265:
        return _visual_entry(b"hvc1", track, box(b"hvcC", _hvc1_record(c.record)))
    if c.codec is Codec.AV1:
        return _visual_entry(b"av01", track, box(b"av1C", c.record))
    if c.codec is Codec.AAC:
        return _audio_entry(b"mp4a", c.channels or 2, c.sample_rate, _esds(track_id, c.record))
    if c.codec is Codec.OPUS:
        head = opus.parse_opus_head(c.record or opus.build_opus_head(2))
        return _audio_entry(b"Opus", head.channels, opus.OPUS_CLOCK,
                            box(b"dOps", opus.dops_from_opus_head(head)))
    raise ValueError(f"no fMP4 sample entry for {c.codec.name}")


def _trak(track_id: int, track: Track) -> bytes:
    video = track.kind is MediaKind.VIDEO
    empty = _U32.pack(0)
    stbl = box(b"stbl",
               full_box(b"stsd", 0, 0, _U32.pack(1), _sample_entry(track_id, track)),
               full_box(b"stts", 0, 0, empty), full_box(b"stsc", 0, 0, empty),
               full_box(b"stsz", 0, 0, empty, empty), full_box(b"stco", 0, 0, empty))
    media_header = full_box(b"vmhd", 0, 1, bytes(8)) if video else full_box(b"smhd", 0, 0,
                                                                            bytes(4))
    dinf = box(b"dinf", full_box(b"dref", 0, 0, _U32.pack(1), full_box(b"url ", 0, 1)))
    return box(b"trak", _tkhd(track_id, track),
               box(b"mdia", _mdhd(track.clock_rate), _hdlr(video),
                   box(b"minf", media_header, dinf, stbl)))


def init_segment(tracks: Sequence[Track]) -> bytes:
    """ftyp+moov(+mvex) for ``tracks``; track_ID = position + 1, timescale = clock_rate.

    Returns the init segment bytes. Raises ``ValueError`` for an empty track list or a codec
    without an fMP4 sample entry (VP9, JPEG, WebP).
    """
    if not tracks:
        raise ValueError("init_segment needs at least one track")
    traks = [_trak(i + 1, t) for i, t in enumerate(tracks)]
    trex = [full_box(b"trex", 0, 0, Struct(">IIIII").pack(i + 1, 1, 0, 0, 0))
            for i in range(len(tracks))]
    return _ftyp() + box(b"moov", _mvhd(len(tracks) + 1), *traks, box(b"mvex", *trex))


# -------------------------------------------------------------------------------- fragments


@dataclass(frozen=True, slots=True)
class Sample:
    """One access unit for a fragment, in its track's clock. ``payload`` is stored as-is."""

    dts: int
    pts: int
    duration: int
    keyframe: bool
    payload: bytes | memoryview


@dataclass(frozen=True, slots=True)
class Fragment:
    """One moof+mdat as buffers: ``buffers[0]`` is moof plus the mdat header, the rest are the
    sample payloads themselves (not copied). ``independent`` is True when every track's first
    sample is a sync sample (an LL-HLS INDEPENDENT part)."""

    sequence_number: int
    buffers: tuple[bytes | memoryview, ...]
    independent: bool
    base_times: tuple[tuple[int, int, int], ...]  # (position, first dts, total duration)

    def size(self) -> int:
        """Total byte length of the fragment."""
        return sum(len(b) for b in self.buffers)

    def to_bytes(self) -> bytes:
        """The fragment as one bytes object (one copy)."""
        return b"".join(self.buffers)

    def write_into(self, buf: bytearray | memoryview, offset: int = 0) -> int:
        """Copy the fragment into ``buf`` at ``offset``; returns the offset after it."""
        view = memoryview(buf)
        for b in self.buffers:
            n = len(b)
            view[offset : offset + n] = b
            offset += n
        return offset


def build_fragment(sequence_number: int, runs: Iterable[tuple[int, Sequence[Sample]]],
                   kinds: Sequence[MediaKind] | None = None) -> Fragment:
    """Build one moof+mdat from ``runs`` = [(track position, samples in decode order), ...].

    track_ID = position + 1 (as in ``init_segment``). ``kinds`` gives each position's media
    kind: audio samples are always flagged sync; without it the ``keyframe`` flag decides.
    Runs without samples are left out. Returns a ``Fragment``. Raises ``ValueError`` when no
    run has samples, a dts is negative, or a duration/size/CTS does not fit its field.
    """
    runs = [(pos, samples) for pos, samples in runs if samples]
    if not runs:
        raise ValueError("a fragment needs at least one sample")
    # sizes are known up front, so data_offset needs no patching
    traf_sizes = [8 + 16 + 20 + (20 + 16 * len(s)) for _, s in runs]
    moof_size = 8 + 16 + sum(traf_sizes)
    payload_total = sum(len(x.payload) for _, s in runs for x in s)
    if moof_size + 8 + payload_total > MAX_BOX_SIZE:
        raise ValueError("fragment larger than 4 GiB")
    head = bytearray()
    head += _U32.pack(moof_size) + b"moof"
    head += _U32.pack(16) + b"mfhd" + _U32.pack(0) + _U32.pack(sequence_number)
    data_offset = moof_size + 8
    payloads: list[bytes | memoryview] = []
    independent = True
    base_times = []
    for (pos, samples), traf_size in zip(runs, traf_sizes):
        audio = kinds is not None and kinds[pos] is MediaKind.AUDIO
        first = samples[0]
        if first.dts < 0:
            raise ValueError(f"negative dts {first.dts} (shift the timeline first)")
        independent = independent and (audio or bool(first.keyframe))
        head += _U32.pack(traf_size) + b"traf"
        head += _U32.pack(16) + b"tfhd" + _U32.pack(TFHD_DEFAULT_BASE_IS_MOOF) + _U32.pack(pos + 1)
        head += _U32.pack(20) + b"tfdt" + _U32.pack(1 << 24) + first.dts.to_bytes(8, "big")
        head += _U32.pack(20 + 16 * len(samples)) + b"trun" + _U32.pack((1 << 24) | TRUN_FLAGS)
        head += _U32.pack(len(samples)) + data_offset.to_bytes(4, "big", signed=True)
        total = 0
        for s in samples:
            flags = SYNC_SAMPLE_FLAGS if audio or s.keyframe else NON_SYNC_SAMPLE_FLAGS
            size = len(s.payload)
            try:
                head += _SAMPLE.pack(s.duration, size, flags, s.pts - s.dts)
            except Exception as exc:  # struct.error: out of range for u32/s32
                raise ValueError(f"sample does not fit trun fields: duration={s.duration} "
                                 f"cts={s.pts - s.dts}") from exc
            payloads.append(s.payload)
            data_offset += size
            total += s.duration
        base_times.append((pos, first.dts, total))
    head += _U32.pack(8 + payload_total) + b"mdat"
    return Fragment(sequence_number, (bytes(head), *payloads), independent, tuple(base_times))


class FragmentWriter:
    """Numbers fragments for one init segment: ``fragment(runs)`` uses 1, 2, 3 ...

    ``runs`` may be a mapping {position: samples} or a list of (position, samples) pairs.
    """

    def __init__(self, tracks: Sequence[Track], sequence_number: int = 1) -> None:
        self.tracks = tuple(tracks)
        self.kinds = tuple(t.kind for t in self.tracks)
        self.next_sequence_number = sequence_number

    def init_segment(self) -> bytes:
        """The init segment for this writer's tracks (see ``init_segment``)."""
        return init_segment(self.tracks)

    def fragment(self, runs) -> Fragment:
        """Build the next fragment; raises ``ValueError`` as ``build_fragment`` does."""
        items = runs.items() if hasattr(runs, "items") else runs
        frag = build_fragment(self.next_sequence_number, items, self.kinds)
        self.next_sequence_number += 1
        return frag


class Packager:
    """Adapter for ``rtmpgop.segmenter.llhls``: its ``Packager`` protocol (bytes out)."""

    def __init__(self) -> None:
        self._kinds: tuple[MediaKind, ...] = ()

    def init(self, tracks: Sequence[Track]) -> bytes:
        """ftyp+moov for ``tracks`` (track_ID = position + 1); remembers their kinds."""
        self._kinds = tuple(t.kind for t in tracks)
        return init_segment(tracks)

    def fragment(self, sequence: int, runs: Sequence[tuple[int, Sequence[Sample]]]) -> bytes:
        """moof+mdat bytes for ``runs`` = (track position, samples)."""
        return build_fragment(sequence, runs, self._kinds or None).to_bytes()
