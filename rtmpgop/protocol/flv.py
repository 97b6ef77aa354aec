"""FLV audio/video tag bodies, legacy and Enhanced RTMP (FLV 10.1 annex E.4.2-E.4.3; veovera
E-RTMP v2 "ExVideoTagHeader"/"ExAudioTagHeader", multitrack and ModEx).

Strategy: the parsers read only the few header bytes of a message body and return where the
payload lies (``offset``, ``length``), never the payload itself, so the caller copies the media
bytes once, straight from the chunk pieces into the access unit. The body may be anything with
``len()`` and slicing (``bytes``, ``memoryview``, ``chunk.Pieces``).

- Legacy video: codec 7 (AVC) and the CDN-fork codec 12 (HEVC, accepted as gortmplib does);
  ``CompositionTime`` is a signed 24-bit ms offset (PTS = DTS + CTS).
- E-RTMP video: FourCC ``avc1 hvc1 av01 vp09``; CodedFrames carry SI24 CTS only for avc1/hvc1;
  CodedFramesX has CTS 0. ModEx prefixes are skipped (their nanosecond offset is reported).
  Multitrack: the entry with track id 0 (else the first) is returned; the other entries are
  counted in ``extra_tracks`` and ignored.
- Audio: legacy AAC (format 10); E-RTMP (format 9) with FourCC ``Opus`` or ``mp4a``. Other
  formats parse (so the caller can count and ignore them) with ``fourcc`` naming them.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

from rtmpgop.errors import FLVError, LimitExceeded

MAX_MODEX_ENTRIES = 8
"""ModEx prefixes accepted on one tag. The spec defines one ModEx type (nanosecond offset);
the bound stops a body made of nothing but ModEx headers from looping long."""

MAX_TRACKS = 64
"""Multitrack entries walked in one message (E-RTMP track ids are UI8; OBS sends <= 6)."""


class PacketType(enum.IntEnum):
    """Normalized packet types (legacy AVCPacketType and E-RTMP VideoPacketType/AudioPacketType)."""

    SEQUENCE_START = 0
    CODED_FRAMES = 1
    SEQUENCE_END = 2
    METADATA = 4  # video: AMF colorInfo
    MULTICHANNEL_CONFIG = 6  # audio
    COMMAND = 7  # video frameType 5 (seek/command frame) or legacy info frame
    OTHER = 8  # legacy non-AAC audio frame, MPEG2TS sequence start, ...


class FrameType(enum.IntEnum):
    KEY = 1
    INTER = 2
    DISPOSABLE = 3
    GENERATED = 4
    COMMAND = 5


LEGACY_VIDEO_CODECS = {7: "avc1", 12: "hvc1"}
"""Legacy FLV codec ids we understand. 12 is the non-standard HEVC id of CDN forks."""

LEGACY_AUDIO_FORMATS = {10: "mp4a", 2: ".mp3", 3: "lpcm", 7: "alaw", 8: "ulaw", 11: "spex"}

_VIDEO_CTS_FOURCCS = frozenset({"avc1", "hvc1", "vvc1"})
# E-RTMP VideoPacketType values
_V_SEQ_START, _V_CODED, _V_SEQ_END, _V_CODED_X, _V_META, _V_TS_SEQ, _V_MULTI, _V_MODEX = range(8)
# E-RTMP AudioPacketType values
_A_SEQ_START, _A_CODED, _A_SEQ_END, _A_MCC, _A_MULTI, _A_MODEX = 0, 1, 2, 4, 5, 7
_ONE_TRACK, _MANY_TRACKS, _MANY_CODECS = 0, 1, 2


class VideoTag(NamedTuple):
    """A parsed video message header. The payload is ``body[offset:offset + length]``.

    A NamedTuple rather than a frozen dataclass (DESIGN.md 2 asks for those): one is built per
    media message, and a frozen dataclass ``__init__`` costs ~2.5x a tuple's on CPython 3.11
    (the same reason ``rtp.packet.RTPPacket`` is one)."""

    fourcc: str
    frame_type: int
    packet: PacketType
    cts: int  # composition time offset, ms (PTS = DTS + cts)
    offset: int
    length: int
    enhanced: bool = False
    track: int = 0
    extra_tracks: int = 0  # other multitrack entries in this message, ignored
    nano_offset: int = 0  # ModEx TimestampOffsetNano

    @property
    def keyframe(self) -> bool:
        return self.frame_type == FrameType.KEY


class AudioTag(NamedTuple):
    """A parsed audio message header. The payload is ``body[offset:offset + length]``.
    A NamedTuple for the reason given on ``VideoTag``."""

    fourcc: str
    packet: PacketType
    offset: int
    length: int
    enhanced: bool = False
    track: int = 0
    extra_tracks: int = 0
    sound_format: int = 0
    flags: int = 0  # legacy low nibble: rate<<2 | size<<1 | stereo


class _Reader:
    __slots__ = ("body", "pos", "end", "what")

    def __init__(self, body, what: str) -> None:
        self.body = body
        self.pos = 0
        self.end = len(body)
        self.what = what

    def take(self, n: int) -> bytes:
        p = self.pos
        if p + n > self.end:
            raise FLVError(f"truncated {self.what} tag header", offset=p, need=n, length=self.end)
        self.pos = p + n
        return bytes(self.body[p:p + n])

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "big")

    def u24(self) -> int:
        return int.from_bytes(self.take(3), "big")

    def si24(self) -> int:
        return int.from_bytes(self.take(3), "big", signed=True)

    def fourcc(self) -> str:
        return self.take(4).decode("latin-1")

    def modex(self, first_type: int, modex_code: int) -> tuple[int, int]:
        """Skip ModEx prefixes; returns (next packet type, nanosecond offset)."""
        ptype, nano, n = first_type, 0, 0
        while ptype == modex_code:
            n += 1
            if n > MAX_MODEX_ENTRIES:
                raise LimitExceeded("MAX_MODEX_ENTRIES", n, MAX_MODEX_ENTRIES, what=self.what)
            size = self.u8() + 1
            if size == 256:
                size = self.u16() + 1
            data = self.take(size)
            b = self.u8()
            mtype, ptype = b >> 4, b & 0x0F
            if mtype == 0 and size >= 3:  # TimestampOffsetNano, UI24
                nano = int.from_bytes(data[:3], "big")
        return ptype, nano


def _walk_tracks(r: _Reader, multi: int | None, fourcc: str, build):
    """Walk multitrack entries; returns the chosen entry's tag with extra_tracks set."""
    if multi is None:
        return build(r, fourcc, 0, r.end)
    entries = []
    while r.pos < r.end:
        if len(entries) >= MAX_TRACKS:
            raise LimitExceeded("MAX_TRACKS", len(entries) + 1, MAX_TRACKS, what=r.what)
        fc = r.fourcc() if multi == _MANY_CODECS else fourcc
        track = r.u8()
        if multi == _ONE_TRACK:
            end = r.end
        else:
            size = r.u24()
            end = r.pos + size
            if end > r.end:
                raise FLVError(f"{r.what} multitrack entry overruns the body", track=track, size=size,
                               length=r.end)
        entries.append((fc, track, r.pos, end))
        r.pos = end
        if multi == _ONE_TRACK:
            break
    if not entries:
        raise FLVError(f"{r.what} multitrack message without tracks", length=r.end)
    chosen = next((e for e in entries if e[1] == 0), entries[0])
    fc, track, start, end = chosen
    sub = _Reader(r.body, r.what)
    sub.pos, sub.end = start, end
    return build(sub, fc, track, end, extra=len(entries) - 1)


_LEGACY_PACKETS = (PacketType.SEQUENCE_START, PacketType.CODED_FRAMES, PacketType.SEQUENCE_END)
_FOURCCS = {fc.encode(): fc for fc in ("avc1", "hvc1", "av01", "vp09", "vvc1")}


def parse_video(body, head=None) -> VideoTag:
    """Parse a video message body (legacy FLV or E-RTMP). ``head``, if given, is a prefix of
    ``body`` (e.g. ``Pieces.head``): the common headers are read from it without slicing
    ``body``. Raises ``FLVError``/``LimitExceeded``."""
    h = body if head is None else head
    if len(h) >= 8:  # fast path: a legacy AVC/HEVC header or a plain E-RTMP coded frame
        b0 = h[0]
        if not b0 & 0x80:
            fourcc = LEGACY_VIDEO_CODECS.get(b0 & 0x0F)
            frame_type, ptype = b0 >> 4, h[1]
            if fourcc is not None and ptype <= 2 and frame_type != FrameType.COMMAND:
                return VideoTag(fourcc, frame_type, _LEGACY_PACKETS[ptype],
                                int.from_bytes(h[2:5], "big", signed=True), 5, len(body) - 5)
        else:
            frame_type, ptype = (b0 >> 4) & 0x07, b0 & 0x0F
            fourcc = _FOURCCS.get(bytes(h[1:5]))
            if fourcc is not None and frame_type != FrameType.COMMAND and ptype in (_V_CODED, _V_CODED_X):
                if ptype == _V_CODED and fourcc in _VIDEO_CTS_FOURCCS:
                    return VideoTag(fourcc, frame_type, PacketType.CODED_FRAMES,
                                    int.from_bytes(h[5:8], "big", signed=True), 8, len(body) - 8, True)
                return VideoTag(fourcc, frame_type, PacketType.CODED_FRAMES, 0, 5, len(body) - 5, True)
    r = _Reader(body, "video")
    b0 = r.u8()
    if not b0 & 0x80:  # legacy
        frame_type, codec_id = (b0 >> 4) & 0x0F, b0 & 0x0F
        if frame_type == FrameType.COMMAND:
            return VideoTag("", frame_type, PacketType.COMMAND, 0, r.pos, r.end - r.pos)
        fourcc = LEGACY_VIDEO_CODECS.get(codec_id)
        if fourcc is None:  # VP6, Sorenson, ...: report, the caller ignores it
            return VideoTag(f"flv{codec_id}", frame_type, PacketType.OTHER, 0, r.pos, r.end - r.pos)
        ptype = r.u8()
        cts = r.si24()
        if ptype > 2:
            raise FLVError("unknown AVCPacketType", packet_type=ptype)
        return VideoTag(fourcc, frame_type, PacketType(ptype), cts, r.pos, r.end - r.pos)
    frame_type, ptype = (b0 >> 4) & 0x07, b0 & 0x0F
    ptype, nano = r.modex(ptype, _V_MODEX)
    if frame_type == FrameType.COMMAND and ptype != _V_META:
        return VideoTag("", frame_type, PacketType.COMMAND, 0, r.pos, r.end - r.pos, True)
    multi = None
    if ptype == _V_MULTI:
        b = r.u8()
        multi, ptype = b >> 4, b & 0x0F
        if multi > _MANY_CODECS:
            raise FLVError("unknown video multitrack type", multitrack_type=multi)
    fourcc = "" if multi == _MANY_CODECS else r.fourcc()

    def build(rr: _Reader, fc: str, track: int, end: int, extra: int = 0) -> VideoTag:
        cts = 0
        if ptype == _V_SEQ_START:
            packet = PacketType.SEQUENCE_START
        elif ptype == _V_CODED:
            packet = PacketType.CODED_FRAMES
            if fc in _VIDEO_CTS_FOURCCS:
                cts = rr.si24()
        elif ptype == _V_CODED_X:
            packet = PacketType.CODED_FRAMES
        elif ptype == _V_SEQ_END:
            packet = PacketType.SEQUENCE_END
        elif ptype == _V_META:
            packet = PacketType.METADATA
        elif ptype == _V_TS_SEQ:
            packet = PacketType.OTHER
        else:
            raise FLVError("unknown E-RTMP video packet type", packet_type=ptype)
        return VideoTag(fc, frame_type, packet, cts, rr.pos, end - rr.pos, True, track, extra, nano)

    return _walk_tracks(r, multi, fourcc, build)


def parse_audio(body, head=None) -> AudioTag:
    """Parse an audio message body (legacy FLV or E-RTMP). Zero-length bodies are E-RTMP
    "silence": returned as a CODED_FRAMES tag of length 0 with an empty fourcc. ``head`` as
    for ``parse_video``. Raises ``FLVError``/``LimitExceeded``."""
    h = body if head is None else head
    if len(h) >= 2 and h[0] >> 4 == 10 and h[1] <= 1:  # fast path: legacy AAC
        return AudioTag("mp4a", PacketType.CODED_FRAMES if h[1] else PacketType.SEQUENCE_START,
                        2, len(body) - 2, sound_format=10, flags=h[0] & 0x0F)
    if len(body) == 0:
        return AudioTag("", PacketType.CODED_FRAMES, 0, 0)
    r = _Reader(body, "audio")
    b0 = r.u8()
    fmt, low = b0 >> 4, b0 & 0x0F
    if fmt != 9:
        fourcc = LEGACY_AUDIO_FORMATS.get(fmt, f"flv{fmt}")
        if fmt != 10:
            return AudioTag(fourcc, PacketType.OTHER, r.pos, r.end - r.pos, sound_format=fmt, flags=low)
        ptype = r.u8()
        if ptype > 1:
            raise FLVError("unknown AACPacketType", packet_type=ptype)
        packet = PacketType.SEQUENCE_START if ptype == 0 else PacketType.CODED_FRAMES
        return AudioTag(fourcc, packet, r.pos, r.end - r.pos, sound_format=fmt, flags=low)
    ptype, _nano = r.modex(low, _A_MODEX)
    multi = None
    if ptype == _A_MULTI:
        b = r.u8()
        multi, ptype = b >> 4, b & 0x0F
        if multi > _MANY_CODECS:
            raise FLVError("unknown audio multitrack type", multitrack_type=multi)
    fourcc = "" if multi == _MANY_CODECS else r.fourcc()
    packets = {_A_SEQ_START: PacketType.SEQUENCE_START, _A_CODED: PacketType.CODED_FRAMES,
               _A_SEQ_END: PacketType.SEQUENCE_END, _A_MCC: PacketType.MULTICHANNEL_CONFIG}
    packet = packets.get(ptype)
    if packet is None:
        raise FLVError("unknown E-RTMP audio packet type", packet_type=ptype)

    def build(rr: _Reader, fc: str, track: int, end: int, extra: int = 0) -> AudioTag:
        return AudioTag(fc, packet, rr.pos, end - rr.pos, True, track, extra, 9)

    return _walk_tracks(r, multi, fourcc, build)


# ---------------------------------------------------------------------------- writers
def _si24(v: int) -> bytes:
    return (v & 0xFFFFFF).to_bytes(3, "big")


def video_header(fourcc: str, packet: PacketType, keyframe: bool, cts: int = 0,
                 enhanced: bool | None = None) -> bytes:
    """The header bytes preceding a video payload. ``avc1`` is written legacy (0x17/0x27)
    unless ``enhanced``; other FourCCs are always E-RTMP. CodedFrames with cts 0 are written
    as CodedFramesX for E-RTMP. Returns the header bytes."""
    ft = FrameType.KEY if keyframe else FrameType.INTER
    if enhanced is None:
        enhanced = fourcc != "avc1"
    if not enhanced:
        codec = {v: k for k, v in LEGACY_VIDEO_CODECS.items()}[fourcc]
        ptype = {PacketType.SEQUENCE_START: 0, PacketType.CODED_FRAMES: 1, PacketType.SEQUENCE_END: 2}[packet]
        return bytes([(ft << 4) | codec, ptype]) + _si24(cts)
    fc = fourcc.encode("latin-1")
    if packet is PacketType.SEQUENCE_START:
        return bytes([0x80 | (ft << 4) | _V_SEQ_START]) + fc
    if packet is PacketType.SEQUENCE_END:
        return bytes([0x80 | (ft << 4) | _V_SEQ_END]) + fc
    if packet is PacketType.CODED_FRAMES:
        if fourcc in _VIDEO_CTS_FOURCCS and cts != 0:
            return bytes([0x80 | (ft << 4) | _V_CODED]) + fc + _si24(cts)
        return bytes([0x80 | (ft << 4) | _V_CODED_X]) + fc
    raise ValueError(f"cannot write video packet {packet!r}")


def audio_header(fourcc: str, packet: PacketType, flags: int = 0x0F) -> bytes:
    """The header bytes preceding an audio payload: legacy AAC ``0xAF 00/01`` for ``mp4a``
    (``flags`` = rate/size/stereo nibble), E-RTMP ``0x9p`` + FourCC otherwise."""
    if fourcc == "mp4a":
        return bytes([0xA0 | flags, 0 if packet is PacketType.SEQUENCE_START else 1])
    ptype = {PacketType.SEQUENCE_START: _A_SEQ_START, PacketType.CODED_FRAMES: _A_CODED,
             PacketType.SEQUENCE_END: _A_SEQ_END}[packet]
    return bytes([0x90 | ptype]) + fourcc.encode("latin-1")
