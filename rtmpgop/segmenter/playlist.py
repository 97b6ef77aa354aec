"""HLS playlist text: the multivariant playlist and the LL-HLS media playlist (sans-IO).

Implements the playlist side of draft-pantos-hls-rfc8216bis (4.4.3-4.4.6: EXT-X-TARGETDURATION,
EXT-X-SERVER-CONTROL, EXT-X-PART-INF, EXT-X-PART, EXT-X-PRELOAD-HINT, EXT-X-SKIP; 6.2.5.1 delta
updates) with the Apple authoring rules from /work/shared/reference/llhls-fmp4.md sections 1 and 4.

Strategy: the muxer (``llhls.py``) keeps mutable ``Segment``/``Part`` records; this module only
reads them and writes text. Everything a client must never see change between reloads
(TARGETDURATION, PART-TARGET, PART-HOLD-BACK, CAN-SKIP-UNTIL) lives in the frozen
``PlaylistLayout``, fixed from the configuration before the first playlist (RFC 8216 6.2.1;
Apple CoreMedia fails for good on a PART-HOLD-BACK change, MediaMTX #6237).

URIs are relative to the playlist: ``init{n}.mp4``, ``seg{msn}.m4s``, ``seg{msn}.p{i}.m4s``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

from rtmpgop.errors import ConfigError
from rtmpgop.media import Codec, CodecConfig, Track

PLAYLIST_VERSION = 9
"""EXT-X-VERSION: 6 is enough for EXT-X-MAP in fMP4, 9 is required once EXT-X-SKIP may appear."""

MEDIA_PLAYLIST = "media.m3u8"
"""Name of the (single, muxed audio+video) media playlist next to ``index.m3u8``."""

DEFAULT_BANDWIDTH = 1_000_000
"""BANDWIDTH announced before a whole segment has been measured (the attribute is required)."""

MIN_PART_TARGET = 0.05
"""Shortest PART-TARGET accepted: one or two frames at 30 fps. Parts below ~200 ms are already
unstable in players (MediaMTX PR #938); shorter only multiplies requests."""


def init_uri(n: int) -> str:
    return f"init{n}.mp4"


def segment_uri(msn: int) -> str:
    return f"seg{msn}.m4s"


def part_uri(msn: int, index: int) -> str:
    return f"seg{msn}.p{index}.m4s"


@dataclass(frozen=True, slots=True)
class PlaylistLayout:
    """The playlist constants, frozen for the life of a media playlist.

    ``part_target`` seconds (PART-TARGET), ``target_duration`` whole seconds, ``window`` complete
    segments kept in the playlist (Apple 8.11: at least 6).
    """

    target_duration: int = 2
    part_target: float = 0.2
    window: int = 7

    def __post_init__(self) -> None:
        if not isinstance(self.target_duration, int) or self.target_duration < 1:
            raise ConfigError("hls_target_duration", f"must be a whole number >= 1, got {self.target_duration!r}")
        if not MIN_PART_TARGET <= self.part_target <= self.target_duration:
            raise ConfigError("hls_part_target", f"must lie in [{MIN_PART_TARGET}, "
                              f"hls_target_duration], got {self.part_target!r}")
        if self.window < 1:
            raise ConfigError("hls_window_segments", f"must be >= 1, got {self.window!r}")

    @property
    def part_hold_back(self) -> float:
        """PART-HOLD-BACK: 3x PART-TARGET (rfc8216bis SHOULD, Apple 14.3 MUST)."""
        return 3 * self.part_target

    @property
    def can_skip_until(self) -> float:
        """The Skip Boundary: 6x TARGETDURATION, the minimum rfc8216bis 4.4.3.8 allows."""
        return 6.0 * self.target_duration

    @property
    def parts_horizon(self) -> float:
        """Parts of segments ending further than this from the live edge are not listed
        (rfc8216bis 4.4.4.9: remove EXT-X-PART tags more than 3 target durations old)."""
        return 3.0 * self.target_duration

    @property
    def block_timeout(self) -> float:
        """A blocking reload still waiting after 3x TARGETDURATION gets 503 (6.2.5.2)."""
        return 3.0 * self.target_duration

    @property
    def advance_part_limit(self) -> int:
        """How far past the last part ``_HLS_part`` may point before 400 (6.2.5.2)."""
        return math.ceil(3 / self.part_target) if self.part_target < 1 else 3


@dataclass(slots=True)
class Part:
    """One partial segment: ``index`` within its segment, ``duration`` seconds."""

    index: int
    duration: float
    independent: bool
    data: bytes | memoryview = b""


@dataclass(slots=True)
class Segment:
    """One media segment (complete or in progress).

    ``start`` is media time in seconds, ``pdt`` wall-clock seconds (epoch) of its first sample,
    ``init`` the number of its initialization segment, ``discontinuity`` True when an
    EXT-X-DISCONTINUITY precedes it (new init, publisher change, skipped media).
    """

    msn: int
    start: float
    pdt: float
    init: int
    discontinuity: bool = False
    parts: list[Part] = field(default_factory=list)
    complete: bool = False
    duration: float = 0.0  # sum of part durations so far
    nbytes: int = 0

    @property
    def end(self) -> float:
        return self.start + self.duration


def format_pdt(epoch: float) -> str:
    """ISO 8601 with milliseconds and Z, as EXT-X-PROGRAM-DATE-TIME wants it."""
    ms = int(round(epoch * 1000))
    dt = datetime.fromtimestamp(ms // 1000, timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


def _uri(name: str, query: str) -> str:
    return f"{name}?{query}" if query else name


def skipped_count(segments: Sequence[Segment], layout: PlaylistLayout) -> int:
    """Segments a delta update replaces with EXT-X-SKIP: the leading complete segments that end
    further from the live edge than the Skip Boundary (rfc8216bis 6.2.5.1, measured from the
    END of the playlist, not from its start as gohlslib did, MediaMTX #6237)."""
    if not segments:
        return 0
    edge = segments[-1].end
    n = 0
    for seg in segments:
        if not seg.complete or edge - seg.end <= layout.can_skip_until:
            break
        n += 1
    return n


def render_media(segments: Sequence[Segment], layout: PlaylistLayout, *,
                 discontinuity_sequence: int = 0, preload: tuple[int, int] | None = None,
                 skip: bool = False, query: str = "") -> str:
    """The media playlist text for ``segments`` (oldest first; the last may be in progress).

    ``preload`` = (msn, part index) of the part being built, announced with EXT-X-PRELOAD-HINT.
    ``skip`` makes a delta update (``_HLS_skip=YES``). ``query`` (without ``_HLS_`` directives)
    is appended to every URI so access tokens follow the client.
    """
    out = [
        "#EXTM3U",
        f"#EXT-X-VERSION:{PLAYLIST_VERSION}",
        f"#EXT-X-TARGETDURATION:{layout.target_duration}",
        f"#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={layout.part_hold_back:.3f},"
        f"CAN-SKIP-UNTIL={layout.can_skip_until:.1f}",
        f"#EXT-X-PART-INF:PART-TARGET={layout.part_target:.3f}",
        f"#EXT-X-MEDIA-SEQUENCE:{segments[0].msn if segments else 0}",
        f"#EXT-X-DISCONTINUITY-SEQUENCE:{discontinuity_sequence}",
    ]
    nskip = skipped_count(segments, layout) if skip else 0
    if nskip:
        # after MEDIA-SEQUENCE: hls.js 2025 builds reject SKIP before it (digest section 1)
        out.append(f"#EXT-X-SKIP:SKIPPED-SEGMENTS={nskip}")
    edge = segments[-1].end if segments else 0.0
    prev_init = segments[nskip - 1].init if nskip else None
    for seg in segments[nskip:]:
        if not seg.parts and not seg.complete:
            continue  # nothing of it exists yet: only the preload hint below names it
        if seg.discontinuity:
            # rendered even on the first listed segment: the DISCONTINUITY-SEQUENCE bump when
            # it scrolls off (llhls.py) only stays consistent if every tag was visible
            out.append("#EXT-X-DISCONTINUITY")
        if seg.init != prev_init:
            out.append(f'#EXT-X-MAP:URI="{_uri(init_uri(seg.init), query)}"')
        prev_init = seg.init
        out.append(f"#EXT-X-PROGRAM-DATE-TIME:{format_pdt(seg.pdt)}")
        if not seg.complete or edge - seg.end < layout.parts_horizon:
            for p in seg.parts:
                ind = ",INDEPENDENT=YES" if p.independent else ""
                out.append(f'#EXT-X-PART:DURATION={p.duration:.5f},'
                           f'URI="{_uri(part_uri(seg.msn, p.index), query)}"{ind}')
        if seg.complete:
            out.append(f"#EXTINF:{seg.duration:.5f},")
            out.append(_uri(segment_uri(seg.msn), query))
    if preload is not None:
        out.append(f'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="{_uri(part_uri(*preload), query)}"')
    out.append("")
    return "\n".join(out)


# ---------------------------------------------------------------- multivariant playlist

def codec_string(config: CodecConfig) -> str:
    """RFC 6381 CODECS entry: ``config.codec_string`` when the codecs layer filled it, else one
    derived from the config record (avcC bytes 1..3, the ASC audioObjectType)."""
    if config.codec_string:
        return config.codec_string
    rec = config.record
    if config.codec is Codec.H264 and len(rec) >= 4:
        return f"avc1.{rec[1]:02x}{rec[2]:02x}{rec[3]:02x}"
    if config.codec is Codec.AAC:
        aot = rec[0] >> 3 if rec else 2
        return f"mp4a.40.{aot or 2}"
    if config.codec is Codec.OPUS:
        return "opus"
    if config.codec is Codec.H265:
        return "hvc1.1.6.L93.B0"  # Main, level 3.1: a guess hls.js accepts; the codecs layer knows better
    if config.codec is Codec.AV1:
        return "av01.0.08M.08"
    return config.codec.value


@dataclass(frozen=True, slots=True)
class Variant:
    """One EXT-X-STREAM-INF entry."""

    uri: str
    tracks: tuple[Track, ...]
    bandwidth: int = DEFAULT_BANDWIDTH
    average_bandwidth: int = 0
    frame_rate: float = 0.0


def render_multivariant(variants: Sequence[Variant], query: str = "") -> str:
    """The multivariant playlist (Apple 9.1/9.2/9.14/9.15: CODECS, RESOLUTION, FRAME-RATE,
    AVERAGE-BANDWIDTH present whenever known)."""
    out = ["#EXTM3U", f"#EXT-X-VERSION:{PLAYLIST_VERSION}", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for v in variants:
        attrs = [f"BANDWIDTH={max(1, v.bandwidth)}",
                 f"AVERAGE-BANDWIDTH={max(1, v.average_bandwidth or v.bandwidth)}"]
        codecs = ",".join(codec_string(t.config) for t in v.tracks)
        if codecs:
            attrs.append(f'CODECS="{codecs}"')
        video = next((t for t in v.tracks if t.config.width and t.config.height), None)
        if video is not None:
            attrs.append(f"RESOLUTION={video.config.width}x{video.config.height}")
        rate = v.frame_rate or (video.config.frame_rate if video is not None else 0.0)
        if rate:
            attrs.append(f"FRAME-RATE={rate:.3f}")
        out.append("#EXT-X-STREAM-INF:" + ",".join(attrs))
        out.append(_uri(v.uri, query))
    out.append("")
    return "\n".join(out)
