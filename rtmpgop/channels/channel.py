"""Channel: one stream path, its tracks and a short ring of GoPs.

Strategy: the publisher calls ``push`` for every access unit; the channel appends it to the
current GoP (opening a new one at each video keyframe) and wakes the subscriptions that had run
dry. Nothing here blocks or waits: a subscriber that does not keep up is skipped forward by its
own ``Subscription`` (see subscription.py), never waited for. The ring keeps at most
``MAX_RING_GOPS`` GoPs and ``MAX_RING_BYTES`` bytes; an evicted GoP's readers skip ahead.

A new publisher on a channel that already had one continues its timeline: its timestamps are
shifted so that subscribers see a monotonic clock (``REPUBLISH_GAP_US`` after the last frame).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from rtmpgop.channels.gop import GoP
from rtmpgop.media import AccessUnit, MediaKind, Statistics, Track, TrackSet, Unpublished

if TYPE_CHECKING:
    from rtmpgop.channels.subscription import Subscription

log = logging.getLogger(__name__)

MAX_RING_GOPS = 3
"""GoPs kept per channel: the current one, plus two for subscribers reading slightly behind.
A reader further behind than that is too slow for live and skips to the newest head."""

MAX_RING_BYTES = 64 * 1024 * 1024
"""Payload bytes kept per channel: about 50 s of a 10 Mbit/s stream, bounding memory per path
even when a publisher sends very long GoPs."""

MAX_GOP_FRAMES = 3000
"""Access units in one GoP before it is cut without a keyframe (100 s at 30 fps; x264's default
keyint is 250). Bounds memory for publishers that never send another keyframe."""

MAX_GOP_BYTES = 48 * 1024 * 1024
"""Payload bytes in one GoP before it is cut without a keyframe (same reason as above)."""

AUDIO_GOP_SECONDS = 1
"""Audio-only channels have no keyframes: cut a GoP every second of audio (DESIGN.md 1)."""

REPUBLISH_GAP_US = 100_000
"""When a new publisher continues a channel, its first frame lands this long after the last
frame of the previous one, so no subscriber sees a timestamp go backwards or repeat."""


class Channel:
    """A stream path with tracks and a ring of GoPs. Created and owned by ``Hub``."""

    def __init__(self, path: str, on_empty: Callable[[Channel], None] | None = None) -> None:
        self.path = path
        self.trackset = TrackSet(())
        self.publisher: object | None = None
        self.ring: deque[GoP] = deque()
        self.last_gop: GoP | None = None  # the GoP items are appended to (kept across publishers)
        self.subscriptions: set[Subscription] = set()
        self._waiting: list[Subscription] = []
        self._unstarted: set[Subscription] = set()  # cursors waiting for the first GoP to open
        self._on_empty = on_empty
        self._gop_seq = 0
        self._ring_bytes = 0
        # counters (monotonic over the life of the channel)
        self.bytes_in = 0
        self.frames_in = 0
        self.frames_dropped = 0  # arrived before the first keyframe: undecodable
        self.publish_count = 0
        # timeline continuity across publishers
        self._timeline_end_us = -1  # largest dts seen, in microseconds; -1 = never published
        self._base_us: int | None = None  # the current publisher's shift, set on its first frame
        self._offsets: dict[int, int] = {}  # track id -> shift in that track's clock
        self._clocks: dict[int, int] = {}  # track id -> clock rate
        self._video_ids: frozenset[int] = frozenset()

    # ---------------------------------------------------------------- publisher side
    @property
    def is_live(self) -> bool:
        return self.publisher is not None

    def begin_publish(self, owner: object) -> None:
        """Start a publisher session. The hub checks the path is free."""
        self.publisher = owner
        self.publish_count += 1
        self._base_us = None
        self._offsets = {}

    def set_tracks(self, tracks: Iterable[Track], metadata: Iterable[tuple[str, object]] | None = None) -> TrackSet:
        """Announce the publisher's tracks (and onMetaData). Returns the new ``TrackSet``.

        Subscribers see it at the head of the next GoP, or in-line if the current GoP already
        holds frames of this publisher.
        """
        tracks = tuple(tracks)
        meta = self.trackset.metadata if metadata is None else tuple(metadata)
        ts = TrackSet(tracks, self.trackset.version + 1, meta)
        self.trackset = ts
        self._clocks = {t.id: t.clock_rate for t in tracks}
        self._video_ids = frozenset(t.id for t in tracks if t.kind is MediaKind.VIDEO)
        gop = self.last_gop
        if gop is not None and not gop.closed:
            if gop.nframes == 0 and not gop.items:
                gop.head = ts
            else:
                gop.append(ts)
                self._wake()
        return ts

    def push(self, au: AccessUnit) -> None:
        """Append one access unit. Never blocks; wakes subscriptions waiting for data."""
        clock = self._clocks.get(au.track)
        if clock is None:
            self.frames_dropped += 1  # a track nobody announced: nothing can decode it
            return
        au = self._rebase(au, clock)
        gop = self.last_gop
        if gop is not None and gop.closed:
            gop = None
        if self._video_ids:
            if au.keyframe and au.track in self._video_ids:
                self._open_gop(au, random_access=True)
            elif gop is None:
                self.frames_dropped += 1  # nothing decodable before the first keyframe
                return
            elif gop.nframes >= MAX_GOP_FRAMES or gop.nbytes >= MAX_GOP_BYTES:
                log.warning("channel %s: GoP of %d frames/%d bytes without a keyframe, cutting",
                            self.path, gop.nframes, gop.nbytes)
                self._open_gop(au, random_access=False)
        else:
            if gop is None or au.dts - gop.start_dts >= AUDIO_GOP_SECONDS * clock:
                self._open_gop(au, random_access=True)
        gop = self.last_gop
        assert gop is not None  # our own invariant, not peer input
        gop.append(au)
        n = len(au.payload)
        self.bytes_in += n
        self.frames_in += 1
        self._ring_bytes += n
        us = au.dts * 1_000_000 // clock
        if us > self._timeline_end_us:
            self._timeline_end_us = us
        if self._ring_bytes > MAX_RING_BYTES:
            self._trim()
        if self._waiting:
            self._wake()

    def unpublish(self, owner: object, reason: str = "") -> bool:
        """End the publisher session of ``owner``. Returns False if it was not the publisher."""
        if self.publisher is not owner:
            return False
        self.publisher = None
        gop = self.last_gop
        if gop is not None and not gop.closed:
            gop.append(Unpublished(reason))
            gop.closed = True
        # Keep the chain (readers finish their GoP, then see Unpublished), but new readers must
        # not start on a stale GoP: forget the ring.
        self.ring.clear()
        self._ring_bytes = 0
        self.trackset = TrackSet((), self.trackset.version + 1)
        self._clocks = {}
        self._video_ids = frozenset()
        self._wake()
        self._check_empty()
        return True

    # ---------------------------------------------------------------- subscriber side
    def newest_start(self) -> GoP | None:
        """The GoP a new subscriber starts on: the newest random-access one, else the newest."""
        for gop in reversed(self.ring):
            if gop.random_access:
                return gop
        return self.ring[-1] if self.ring else None

    def _add_waiting(self, sub: Subscription) -> None:
        self._waiting.append(sub)

    def _remove(self, sub: Subscription) -> None:
        self.subscriptions.discard(sub)
        self._check_empty()

    def _check_empty(self) -> None:
        if self.publisher is None and not self.subscriptions and self._on_empty is not None:
            self._on_empty(self)

    # ---------------------------------------------------------------- internals
    def _rebase(self, au: AccessUnit, clock: int) -> AccessUnit:
        if self._base_us is None:
            # first frame of this publisher: shift it after the previous publisher's last frame
            if self._timeline_end_us < 0:
                self._base_us = 0
            else:
                first_us = au.dts * 1_000_000 // clock
                self._base_us = self._timeline_end_us + REPUBLISH_GAP_US - first_us
        off = self._offsets.get(au.track)
        if off is None:
            off = self._offsets[au.track] = self._base_us * clock // 1_000_000
        if off == 0:
            return au
        return AccessUnit(au.track, au.dts + off, au.pts + off, au.keyframe, au.payload)

    def _open_gop(self, au: AccessUnit, random_access: bool) -> None:
        prev = self.last_gop
        self._gop_seq += 1
        gop = GoP(self._gop_seq, self.trackset, self.bytes_in, self.frames_in, random_access, au.dts)
        if prev is not None:
            prev.closed = True
            prev.next = gop
        self.last_gop = gop
        self.ring.append(gop)
        if self._unstarted:
            for sub in self._unstarted:
                sub._enter(gop)
            self._unstarted.clear()
        while len(self.ring) > MAX_RING_GOPS:
            self._evict()

    def _trim(self) -> None:
        while self._ring_bytes > MAX_RING_BYTES and len(self.ring) > 1:
            self._evict()

    def _evict(self) -> None:
        old = self.ring.popleft()
        old.evicted = True
        self._ring_bytes -= old.nbytes
        old.cache.clear()

    def _wake(self) -> None:
        waiting, self._waiting = self._waiting, []
        for sub in waiting:
            sub._wake()

    def statistics(self) -> Statistics:
        out = sum(s.frames_out for s in self.subscriptions)
        return Statistics(
            frames_in=self.frames_in, frames_out=out, bytes_in=self.bytes_in,
            bytes_out=sum(s.bytes_out for s in self.subscriptions),
            skipped_frames=sum(s.skipped_frames for s in self.subscriptions),
            peak_backlog_bytes=max((s.peak_backlog_bytes for s in self.subscriptions), default=0),
            extra=(("subscribers", len(self.subscriptions)), ("gops", len(self.ring)),
                   ("ring_bytes", self._ring_bytes), ("dropped_before_keyframe", self.frames_dropped),
                   ("live", self.is_live), ("publish_count", self.publish_count)),
        )

    def __repr__(self) -> str:
        return f"Channel({self.path!r}, live={self.is_live}, subs={len(self.subscriptions)})"
