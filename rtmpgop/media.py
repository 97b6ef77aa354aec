"""The shared media vocabulary: codecs, tracks, access units.

Every ingest (RTMP, RTSP, HTTP frame POST) turns its input into these records, and every
subscriber (RTMP play, RTSP play, WebP renderer, LL-HLS) reads them. See DESIGN.md section 2.

- Timestamps are unwrapped 64-bit integers in the track's clock: video 90 kHz, audio the sample
  rate (Opus 48 kHz). RTMP milliseconds become ``ms * 90`` (exact) or ``ms * rate // 1000``.
- Video payloads are AVCC form (4-byte big-endian length + NAL unit, repeated) for H.264/H.265,
  the OBU stream of one temporal unit for AV1, one whole image for JPEG/WebP. Audio payloads are
  one raw frame (AAC without ADTS, one Opus packet). This is the form RTMP carries, MP4 ``mdat``
  stores, and PyAV decodes with ``CodecConfig.record`` as extradata.
- Payloads are immutable ``bytes`` once they enter the hub: one copy at reassembly, none after.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

VIDEO_CLOCK = 90_000
"""Clock rate of every video track (RTP video clock, MP4 video timescale; RTMP ms * 90 exact)."""


class MediaKind(enum.Enum):
    VIDEO = "video"
    AUDIO = "audio"


class Codec(enum.Enum):
    """Codecs the hub carries. The value is the FFmpeg/PyAV decoder name."""

    H264 = "h264"
    H265 = "hevc"
    AV1 = "av1"
    VP9 = "vp9"
    AAC = "aac"
    OPUS = "opus"
    JPEG = "mjpeg"  # still frames POSTed to /ingest
    WEBP = "webp"  # still frames POSTed to /ingest

    @property
    def kind(self) -> MediaKind:
        return MediaKind.AUDIO if self in (Codec.AAC, Codec.OPUS) else MediaKind.VIDEO


@dataclass(frozen=True, slots=True)
class CodecConfig:
    """Decoder configuration of one track, plus what was derived from it.

    ``record`` is the codec's configuration record exactly as MP4 and FFmpeg extradata want it:
    avcC for H.264, hvcC for H.265, av1C for AV1, vpcC for VP9, AudioSpecificConfig for AAC,
    the RFC 7845 ``OpusHead`` (little-endian, with magic) for Opus, empty for JPEG/WebP.
    Build these with the helpers in ``rtmpgop.codecs``, which fill the derived fields.
    """

    codec: Codec
    record: bytes = b""
    width: int = 0
    height: int = 0
    sample_rate: int = 0
    channels: int = 0
    codec_string: str = ""  # RFC 6381 string for HLS CODECS, e.g. "avc1.64001f", "mp4a.40.2"
    frame_rate: float = 0.0  # from SPS VUI or metadata; 0 when unknown
    bit_depth: int = 8

    @property
    def kind(self) -> MediaKind:
        return self.codec.kind


@dataclass(frozen=True, slots=True)
class Track:
    """One elementary stream of a channel. ``id`` is stable for the life of the publisher."""

    id: int
    config: CodecConfig
    clock_rate: int

    @property
    def kind(self) -> MediaKind:
        return self.config.codec.kind

    @property
    def codec(self) -> Codec:
        return self.config.codec


@dataclass(frozen=True, slots=True)
class TrackSet:
    """The tracks of a channel at one moment, sent to a subscriber first and on every change.

    ``metadata`` is the publisher's onMetaData (or an equivalent built from SDP), as ordered
    (key, value) pairs. ``version`` grows by one on every change within a channel.
    """

    tracks: tuple[Track, ...]
    version: int = 0
    metadata: tuple[tuple[str, object], ...] = ()

    def video(self) -> Track | None:
        """The first video track, or None."""
        for t in self.tracks:
            if t.kind is MediaKind.VIDEO:
                return t
        return None

    def audio(self) -> Track | None:
        """The first audio track, or None."""
        for t in self.tracks:
            if t.kind is MediaKind.AUDIO:
                return t
        return None

    def by_id(self, track_id: int) -> Track | None:
        for t in self.tracks:
            if t.id == track_id:
                return t
        return None


@dataclass(frozen=True, slots=True)
class AccessUnit:
    """One frame of one track. ``dts``/``pts`` are in the track's clock, unwrapped."""

    track: int
    dts: int
    pts: int
    keyframe: bool
    payload: bytes

    @property
    def size(self) -> int:
        return len(self.payload)


@dataclass(frozen=True, slots=True)
class Unpublished:
    """Marker: the publisher left. The subscription stays open for the next publisher."""

    reason: str = ""


@dataclass(frozen=True, slots=True)
class Skipped:
    """Marker: the subscription fell behind and jumped to the newest GoP head.

    ``frames`` access units and ``nbytes`` payload bytes were not delivered.
    """

    frames: int
    nbytes: int


Item = AccessUnit | TrackSet | Unpublished | Skipped
"""What a subscription yields."""


@dataclass(frozen=True, slots=True)
class Statistics:
    """Counters common to queues, subscriptions, channels and connections (DESIGN.md 6)."""

    frames_in: int = 0
    frames_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    skipped_frames: int = 0
    skipped_bytes: int = 0
    peak_backlog_bytes: int = 0
    extra: tuple[tuple[str, object], ...] = field(default=())
