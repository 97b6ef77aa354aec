"""LL-HLS muxer state: segments and parts built from access units, and blocking-reload rules.

Implements draft-pantos-hls-rfc8216bis 4.4.4.9 (partial segments), 6.2.5.2 (blocking playlist
reload: ``_HLS_msn``/``_HLS_part``, the +2 MSN and Advance Part Limit 400s) and the segmentation
policy of /work/shared/reference/llhls-fmp4.md section 5. Sans-IO: no clock reads; ``now`` (wall
clock, epoch seconds) is a parameter and only stamps EXT-X-PROGRAM-DATE-TIME.

Strategy:

- One *primary* track drives the cuts: the first video track, else the first audio track. Its
  samples are held one at a time until the next one arrives, since a sample's duration is the
  next sample's DTS minus its own. When that next sample arrives the held one is committed to the
  current part, and the part is closed right there if the next sample is a keyframe (which also
  ends the segment: segments start at GoP heads), if the part reached PART-TARGET, or if one more
  sample of the same length would overrun it. Parts therefore close on the media clock, one frame
  after their last sample arrives: a steady clock for a live source.
- Other tracks (audio) are committed the same way into a queue; a closing part takes the queued
  samples that start before its end. AAC durations are the frame length (1024) and re-anchor to
  the source timestamps only when they drift by more than a frame, so RTMP's millisecond jitter
  never reaches ``tfdt`` (digest section 7). Each track's ``tfdt`` = previous ``tfdt`` + durations.
- A part is one ``moof``+``mdat`` (``Packager.fragment``) holding all tracks; a segment is the
  concatenation of its parts. Complete segments beyond ``layout.window`` leave the playlist but
  stay servable for ``RETIRED_SEGMENTS`` more.
- A track change (new init segment), a skip or a publisher change ends the segment; the next one
  carries EXT-X-DISCONTINUITY and, for new tracks, a new EXT-X-MAP.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from rtmpgop.errors import ProtocolError
from rtmpgop.media import AccessUnit, Codec, MediaKind, Track, TrackSet
from rtmpgop.segmenter.playlist import (
    MEDIA_PLAYLIST, Part, PlaylistLayout, Segment, Variant, render_media, render_multivariant)

RETIRED_SEGMENTS = 3
"""Segments kept servable after they scroll out of the playlist: a client that fetched the
playlist just before the scroll (ffmpeg reads 3 segments from the end) still gets them."""

MAX_SEGMENT_TARGETS = 3
"""A segment without a keyframe for this many target durations is cut anyway (the parts after
the cut are not INDEPENDENT). Apple 7.7 allows TD + 0.5 s; beyond 3x the playlist window and
memory would be ruled by a publisher that never sends keyframes (x264 defaults to 10 s GoPs)."""

MAX_QUEUED_SAMPLES = 2000
"""Secondary-track samples waiting for a part (about 40 s of AAC): bounds memory when the video
track stalls while audio keeps coming. The oldest are dropped beyond this."""

PDT_REANCHOR_SECONDS = 0.5
"""EXT-X-PROGRAM-DATE-TIME follows the media clock from the first sample; when it drifts this far
from the wall clock (publisher's clock, a stall) it is re-anchored at the next segment."""

AAC_FRAME = 1024
"""AAC-LC samples per frame: the duration of every AAC access unit (ISO 14496-3)."""

EPSILON_TICKS = 2
"""Clock ticks of slack when comparing a part length to PART-TARGET (float rounding)."""


class PlaylistRequestError(ProtocolError):
    """A blocking-reload request the spec answers with 400 (rfc8216bis 6.2.5.2)."""

    status = 400


@dataclass(frozen=True, slots=True)
class Sample:
    """One access unit as the fragment writer wants it, in its track's clock."""

    dts: int
    pts: int
    duration: int
    keyframe: bool
    payload: bytes


class Packager(Protocol):
    """The fMP4 box writer the muxer calls (``rtmpgop.segmenter.fmp4`` behind an adapter)."""

    def init(self, tracks: Sequence[Track]) -> bytes:
        """ftyp+moov for ``tracks`` (track_ID = position + 1)."""
        ...

    def fragment(self, sequence: int, runs: Sequence[tuple[int, Sequence[Sample]]]) -> bytes:
        """moof+mdat; ``runs`` = (position of the track in ``init``'s list, its samples)."""
        ...


class Readiness(enum.Enum):
    READY = "ready"
    WAIT = "wait"
    GONE = "gone"


PACKABLE = frozenset({Codec.H264, Codec.H265, Codec.AV1, Codec.AAC, Codec.OPUS})
"""Codecs the fMP4 writer has sample entries for; other tracks (JPEG, WebP, VP9) are left out."""


class _Track:
    """Per-track muxing state."""

    __slots__ = ("track", "pos", "clock", "frame", "pending", "pending_out", "last_dur", "queue")

    def __init__(self, track: Track, pos: int) -> None:
        self.track = track
        self.pos = pos
        self.clock = track.clock_rate
        self.frame = AAC_FRAME if track.codec is Codec.AAC else 0  # 0: durations from DTS gaps
        self.pending: AccessUnit | None = None
        self.pending_out = 0  # output DTS of the pending sample
        self.last_dur = 0
        self.queue: deque[Sample] = deque()  # committed, waiting for a part (secondary tracks)

    def advance(self, au: AccessUnit) -> tuple[Sample | None, int]:
        """Make ``au`` the pending sample; return the previous one with its duration, and the
        output DTS given to ``au``."""
        p = self.pending
        if p is None:
            self.pending, self.pending_out = au, au.dts
            return None, au.dts
        gap = au.dts - self.pending_out
        if self.frame and abs(gap - self.frame) <= self.frame:
            dur = self.frame  # steady frame clock; source jitter (ms timestamps) ignored
            if abs(au.dts - (self.pending_out + dur)) > self.frame:
                dur = gap
        else:
            dur = gap if gap > 0 else (self.last_dur or self.frame or 1)
        sample = self._sample(p, self.pending_out, dur)
        out = self.pending_out + dur
        self.pending, self.pending_out = au, out
        return sample, out

    def flush(self) -> Sample | None:
        """The pending sample with an estimated duration (end of stream)."""
        p = self.pending
        if p is None:
            return None
        self.pending = None
        dur = self.last_dur or self.frame or max(1, self.clock // 30)
        return self._sample(p, self.pending_out, dur)

    def _sample(self, au: AccessUnit, out_dts: int, dur: int) -> Sample:
        self.last_dur = dur
        return Sample(out_dts, au.pts + (out_dts - au.dts), dur, au.keyframe, au.payload)


class LLHLSMuxer:
    """Segments and parts of one channel, and the decisions of its HTTP endpoint.

    Feed it with ``set_tracks``, ``push`` and ``flush``; each returns True when the playlist
    changed (``version`` moved: a part completed, a segment opened or closed), which is when
    waiting requests must be re-checked.
    """

    def __init__(self, layout: PlaylistLayout, packager: Packager, first_msn: int = 0) -> None:
        """``first_msn`` numbers the first segment and init segment: a muxer started later
        should start higher, so URIs never repeat with other bytes (they are cached as
        immutable)."""
        self.layout = layout
        self.packager = packager
        self.segments: deque[Segment] = deque()  # the playlist window; the last may be open
        self.retired: deque[Segment] = deque()
        self.inits: dict[int, bytes] = {}
        self.init_id = first_msn - 1
        self.tracks: tuple[Track, ...] = ()
        self.discontinuity_sequence = 0
        self.version = 0  # +1 per playlist change (part completed, segment opened/closed)
        self.ended = False  # flushed and nothing new since (publisher gone)
        self._state: dict[int, _Track] = {}
        self._primary: _Track | None = None
        self._open: Segment | None = None
        self._part_samples: list[Sample] = []
        self._part_start = 0
        self._part_end = 0
        self._seg_start = 0
        self._next_msn = first_msn
        self._seq = 0
        self._disc_next = False
        self._anchor: tuple[float, float] | None = None  # (media seconds, wall seconds)
        self._cache: dict[tuple[int, bool], str] = {}
        self.dropped = 0  # access units refused (unknown track, time going backwards)
        self.fragment_errors = 0
        self.video_frames = 0
        self.video_seconds = 0.0

    # ---------------------------------------------------------------- input
    def set_tracks(self, trackset: TrackSet, now: float) -> bool:
        """Adopt the channel's tracks. A real change ends the segment and makes a new init."""
        tracks = tuple(t for t in trackset.tracks if t.codec in PACKABLE)
        if not tracks or tracks == self.tracks:
            return False
        changed = self.flush(now) if self.tracks else False
        self.tracks = tracks
        self.init_id += 1
        self.inits[self.init_id] = self.packager.init(tracks)
        self._prune_inits()
        self._state = {t.id: _Track(t, i) for i, t in enumerate(tracks)}
        video = [s for s in self._state.values() if s.track.kind is MediaKind.VIDEO]
        self._primary = video[0] if video else next(iter(self._state.values()))
        if self.segments:
            self._disc_next = True
        return changed

    def push(self, au: AccessUnit, now: float) -> bool:
        """Add one access unit. Returns True if the playlist changed (``version`` moved)."""
        st = self._state.get(au.track)
        if st is None or au.dts < 0 or (st.pending is not None and au.dts <= st.pending.dts):
            self.dropped += 1  # unknown track, or DTS not increasing: no valid duration
            return False
        self.ended = False
        if st is not self._primary:
            sample, _ = st.advance(au)
            if sample is not None:
                st.queue.append(sample)
                if len(st.queue) > MAX_QUEUED_SAMPLES:
                    st.queue.popleft()
                    self.dropped += 1
            return False
        version = self.version
        sample, out = st.advance(au)
        if sample is not None:
            self._commit(sample, out, au)
        if self._open is None:
            self._open_segment(out, st.clock, now)
        return self.version != version

    def flush(self, now: float) -> bool:
        """End of the current timeline (publisher left, media skipped, tracks changed): commit
        the held samples with estimated durations and close the segment. The next segment
        carries EXT-X-DISCONTINUITY."""
        version = self.version
        for st in self._state.values():
            if st is not self._primary:
                s = st.flush()
                if s is not None:
                    st.queue.append(s)
        prim = self._primary
        if prim is not None:
            s = prim.flush()
            if s is not None:
                self._part_samples.append(s)
                self._part_end = s.dts + s.duration
        if self._part_samples:
            self._close_part()
        if self._open is not None:
            self._close_segment()
        for st in self._state.values():
            st.queue.clear()
        if self.segments:
            self._disc_next = True
        self._anchor = None
        self.ended = True
        return self.version != version

    # ---------------------------------------------------------------- cutting
    def _commit(self, sample: Sample, end: int, nxt: AccessUnit) -> None:
        """Add the primary track's held sample (ending at ``end``) to the part; close the part
        (and the segment) when ``nxt``, the sample after it, says so."""
        prim = self._primary
        if prim is None or self._open is None:  # our invariant: opened with the 1st held sample
            raise RuntimeError("LL-HLS muxer: sample committed without an open segment")
        video = prim.track.kind is MediaKind.VIDEO
        if video:
            self.video_frames += 1
            self.video_seconds += sample.duration / prim.clock
        clock = prim.clock
        target = round(self.layout.part_target * clock)
        if self._part_samples and end - self._part_start > target + EPSILON_TICKS:
            self._close_part()  # the sample does not fit: a part never exceeds PART-TARGET
        self._part_samples.append(sample)
        self._part_end = end
        length = end - self._part_start
        seg_len = end - self._seg_start
        # close now if full, or if one more sample like this one would not fit (give the
        # estimate a millisecond: RTMP timestamps are whole ms, so 30 fps frames last 33 or 34)
        close_part = (length >= target - EPSILON_TICKS
                      or length + sample.duration > target + EPSILON_TICKS + clock // 1000)
        if video:
            # segments start at GoP heads; a GoP far too long is cut anyway at a part boundary
            cut = nxt.keyframe or (close_part and seg_len >= MAX_SEGMENT_TARGETS
                                   * self.layout.target_duration * clock)
        else:  # audio only: as many whole parts as fit in the target duration
            cut = close_part and seg_len + target > self.layout.target_duration * clock + EPSILON_TICKS
        if close_part or cut:
            self._close_part()
        if cut:
            self._close_segment()

    def _open_segment(self, start_ticks: int, clock: int, now: float) -> None:
        start = start_ticks / clock
        anchor = self._anchor
        if anchor is None or abs(anchor[1] + (start - anchor[0]) - now) > PDT_REANCHOR_SECONDS:
            anchor = self._anchor = (start, now)
        seg = Segment(self._next_msn, start, anchor[1] + (start - anchor[0]), self.init_id,
                      discontinuity=self._disc_next)
        self._next_msn += 1
        self._disc_next = False
        self._open = seg
        self._part_start = self._part_end = self._seg_start = start_ticks
        self.segments.append(seg)
        self.version += 1  # the preload hint moved

    def _close_part(self) -> None:
        seg, prim = self._open, self._primary
        if seg is None or prim is None:
            raise RuntimeError("LL-HLS muxer: part closed without an open segment")
        end_s = self._part_end / prim.clock
        runs: list[tuple[int, Sequence[Sample]]] = []
        for st in self._state.values():
            if st is prim:
                runs.append((st.pos, self._part_samples))
                continue
            q = st.queue
            take = []
            while q and q[0].dts / st.clock < end_s:
                take.append(q.popleft())
            if take:
                runs.append((st.pos, take))
        runs.sort(key=lambda r: r[0])
        self._seq += 1
        try:
            data = self.packager.fragment(self._seq, runs)
        except ValueError:
            # a sample the box writer cannot represent (a CTS or duration beyond 32 bits):
            # drop the part rather than retry it forever; the timeline gets a hole
            self.dropped += sum(len(r[1]) for r in runs)
            self.fragment_errors += 1
            self._part_samples = []
            self._part_start = self._part_end
            return
        duration = (self._part_end - self._part_start) / prim.clock
        independent = self._part_samples[0].keyframe or prim.track.kind is MediaKind.AUDIO
        seg.parts.append(Part(len(seg.parts), duration, independent, data))
        seg.duration += duration
        seg.nbytes += len(data)
        self._part_samples = []
        self._part_start = self._part_end
        self.version += 1

    def _close_segment(self) -> None:
        seg = self._open
        if seg is None:
            raise RuntimeError("LL-HLS muxer: no open segment to close")
        self._open = None
        if not seg.parts:  # opened on a sample that never completed: forget it
            self.segments.pop()
            self._next_msn -= 1
            return
        seg.complete = True
        self.version += 1
        while len(self.segments) > self.layout.window:  # no segment is open here
            old = self.segments.popleft()
            if old.discontinuity:
                self.discontinuity_sequence += 1
            self.retired.append(old)
            if len(self.retired) > RETIRED_SEGMENTS:
                self.retired.popleft()
        self._prune_inits()

    def _prune_inits(self) -> None:
        """Forget init segments no servable segment refers to (the current one stays)."""
        used = {s.init for s in self.segments} | {s.init for s in self.retired} | {self.init_id}
        for k in [k for k in self.inits if k not in used]:
            del self.inits[k]

    # ---------------------------------------------------------------- output
    @property
    def preload(self) -> tuple[int, int] | None:
        """(msn, part) of the part being built, or None."""
        seg = self._open
        return None if seg is None else (seg.msn, len(seg.parts))

    @property
    def last_msn(self) -> int:
        """MSN of the newest segment (in progress or not); one less than the first before any."""
        return self.segments[-1].msn if self.segments else self._next_msn - 1

    @property
    def has_media(self) -> bool:
        """Whether a playlist with at least one part can be written."""
        return bool(self.segments) and bool(self.segments[0].parts)

    def media_playlist(self, skip: bool = False, query: str = "") -> str:
        """The media playlist (a delta update when ``skip``); cached per version."""
        key = (self.version, skip)
        if not query:
            text = self._cache.get(key)
            if text is not None:
                return text
        text = render_media(list(self.segments), self.layout,
                            discontinuity_sequence=self.discontinuity_sequence,
                            preload=self.preload, skip=skip, query=query)
        if not query:
            if len(self._cache) > 4:
                self._cache.clear()
            self._cache[key] = text
        return text

    def variant(self) -> Variant:
        """The EXT-X-STREAM-INF data: tracks, measured bandwidth and frame rate."""
        done = [s for s in self.segments if s.complete and s.duration > 0]
        peak = max((round(s.nbytes * 8 / s.duration) for s in done), default=0)
        total = sum(s.duration for s in done)
        avg = round(sum(s.nbytes for s in done) * 8 / total) if total else 0
        video = next((t for t in self.tracks if t.kind is MediaKind.VIDEO), None)
        fps = video.config.frame_rate if video is not None else 0.0  # from the SPS when known
        if not fps and self.video_seconds:
            fps = self.video_frames / self.video_seconds  # else measured from the timestamps
        kw = {"bandwidth": peak} if peak else {}
        return Variant(MEDIA_PLAYLIST, self.tracks, average_bandwidth=avg,
                       frame_rate=round(fps, 3), **kw)

    def multivariant_playlist(self, query: str = "") -> str:
        return render_multivariant([self.variant()], query)

    def _find(self, msn: int) -> Segment | None:
        for group in (self.segments, self.retired):
            if group and group[0].msn <= msn <= group[-1].msn:
                return group[msn - group[0].msn]
        return None

    def playlist_ready(self, msn: int | None, part: int | None) -> bool:
        """Whether a playlist request with these directives can be answered now.

        Raises ``PlaylistRequestError`` for the requests rfc8216bis 6.2.5.2 answers with 400:
        ``_HLS_part`` without ``_HLS_msn``, an MSN more than 2 past the last segment, a part
        more than the Advance Part Limit past the last part, negative numbers.
        """
        if msn is None:
            if part is not None:
                raise PlaylistRequestError("_HLS_part without _HLS_msn", part=part)
            return True
        if msn < 0 or (part is not None and part < 0):
            raise PlaylistRequestError("negative _HLS_msn or _HLS_part", msn=msn, part=part)
        last = self.last_msn
        if msn > last + 2:
            raise PlaylistRequestError("_HLS_msn more than 2 past the last segment",
                                       msn=msn, last=last)
        seg = self._find(msn)
        if seg is None:
            if self.segments and msn < self.segments[0].msn:
                return True  # long gone: answer with the current playlist
            if part is not None and part + 1 > self.layout.advance_part_limit:
                raise PlaylistRequestError("_HLS_part beyond the Advance Part Limit", part=part)
            return False
        if part is None:
            return seg.complete
        if part < len(seg.parts):
            return True
        if seg.complete:  # N beyond the last part of M means part 0 of M + 1
            nxt = self._find(msn + 1)
            return nxt is not None and bool(nxt.parts)
        if part - (len(seg.parts) - 1) > self.layout.advance_part_limit:
            raise PlaylistRequestError("_HLS_part beyond the Advance Part Limit",
                                       part=part, last=len(seg.parts) - 1)
        return False

    def part(self, msn: int, index: int) -> tuple[Readiness, bytes | memoryview]:
        """A part's bytes (READY), WAIT if it is the one being built (preload hint), else GONE."""
        seg = self._find(msn)
        if seg is not None and 0 <= index < len(seg.parts):
            return Readiness.READY, seg.parts[index].data
        if self.preload == (msn, index):
            return Readiness.WAIT, b""
        return Readiness.GONE, b""

    def segment(self, msn: int) -> tuple[Readiness, list[bytes | memoryview]]:
        """A complete segment as the list of its parts' bytes; WAIT while it is being built."""
        seg = self._find(msn)
        if seg is not None and seg.complete:
            return Readiness.READY, [p.data for p in seg.parts]
        if seg is not None and seg is self._open:
            return Readiness.WAIT, []
        return Readiness.GONE, []

    def init(self, n: int) -> bytes | None:
        return self.inits.get(n)


class Waiters:
    """Requests held until a playlist or part exists (blocking reload, preload hints).

    Sans-IO: ``token`` is whatever the caller resumes (an asyncio future in ``io/hls_http.py``),
    ``deadline`` a number on the caller's clock. Requests waiting for the same thing share one
    key, so a part completing costs one check per distinct request, not per client.
    """

    def __init__(self, muxer: LLHLSMuxer) -> None:
        self.muxer = muxer
        self._playlists: dict[tuple[int, int | None], list[tuple[float, object]]] = {}
        self._parts: dict[tuple[int, int], list[tuple[float, object]]] = {}

    def __len__(self) -> int:
        return sum(map(len, self._playlists.values())) + sum(map(len, self._parts.values()))

    def hold_playlist(self, msn: int, part: int | None, token: object, deadline: float) -> None:
        """Hold a playlist request until ``muxer.playlist_ready(msn, part)``."""
        self._playlists.setdefault((msn, part), []).append((deadline, token))

    def hold_part(self, msn: int, index: int, token: object, deadline: float) -> None:
        """Hold a request for the part being built until it completes (or never will)."""
        self._parts.setdefault((msn, index), []).append((deadline, token))

    def poll(self) -> list[tuple[object, Readiness]]:
        """Tokens whose wait is over, with READY or (for parts that will never exist) GONE.
        Call after the muxer's ``version`` moved."""
        out: list[tuple[object, Readiness]] = []
        m = self.muxer
        for key in list(self._playlists):
            try:
                ready = m.playlist_ready(*key)
            except PlaylistRequestError:
                ready = True  # cannot get worse by waiting: answer with what there is
            if ready:
                out.extend((tok, Readiness.READY) for _, tok in self._playlists.pop(key))
        for key in list(self._parts):
            state, _ = m.part(*key)
            if state is not Readiness.WAIT:
                out.extend((tok, state) for _, tok in self._parts.pop(key))
        return out

    def expire(self, now: float) -> list[object]:
        """Tokens whose deadline passed (answer 503), removed from the waiters."""
        out: list[object] = []
        for table in (self._playlists, self._parts):
            for key in list(table):
                waiting = table[key]
                keep = [w for w in waiting if w[0] > now]
                if len(keep) != len(waiting):
                    out.extend(tok for d, tok in waiting if d <= now)
                    if keep:
                        table[key] = keep
                    else:
                        del table[key]
        return out

    def cancel(self, token: object) -> None:
        """Forget ``token`` (its client went away)."""
        for table in (self._playlists, self._parts):
            for key in list(table):
                waiting = [w for w in table[key] if w[1] is not token]
                if waiting:
                    table[key] = waiting
                else:
                    del table[key]
