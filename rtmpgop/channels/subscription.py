"""Subscription: one subscriber's cursor into a channel's chain of GoPs.

A subscription starts at the head of the newest random-access GoP, yielding that GoP's
``TrackSet`` first, so no subscriber writes its own "wait for keyframe" loop. It then walks the
GoP chain item by item (``get_nowait``). Nothing is copied per subscriber: the cursor points into
the channel's shared GoPs.

Backlog = channel bytes pushed minus bytes this cursor has passed. When it exceeds
``max_backlog_bytes``, when the cursor is ``max_backlog_gops`` GoPs behind the newest, or when the
cursor's GoP was evicted from the ring, the next ``get_nowait`` jumps to the newest GoP head and
yields ``Skipped(frames, nbytes)`` first; a rate-limited log line says so.

The one wake-up primitive: ``set_wakeup(callback)``. The channel calls it (synchronously, on the
publisher's call stack) when new items arrive after ``get_nowait`` has returned ``None``. The
callback must not block; typically it sets an asyncio event or schedules a write.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from rtmpgop.media import AccessUnit, Item, Skipped, Statistics, TrackSet

if TYPE_CHECKING:
    from rtmpgop.channels.channel import Channel
    from rtmpgop.channels.gop import GoP

log = logging.getLogger(__name__)

DEFAULT_MAX_BACKLOG_BYTES = 8 * 1024 * 1024
"""Undelivered payload bytes before a subscriber is skipped: ~6 s of a 10 Mbit/s stream, far more
than a live player that keeps up ever holds, small enough to bound memory per viewer."""

DEFAULT_MAX_BACKLOG_GOPS = 2
"""A subscriber more than this many GoPs behind the newest one is too late for live."""

SKIP_LOG_INTERVAL_FRAMES = 300
"""Log "too slow" at most once per this many skipped frames (plus the first), per subscription."""


class Subscription:
    """A cursor into ``channel``. Use ``get_nowait`` until it returns None, then wait for wake-up."""

    def __init__(self, channel: Channel, name: str = "",
                 max_backlog_bytes: int = DEFAULT_MAX_BACKLOG_BYTES,
                 max_backlog_gops: int = DEFAULT_MAX_BACKLOG_GOPS, passive: bool = False) -> None:
        self.channel = channel
        # passive = a background consumer (e.g. the LL-HLS muxer), not a viewer: it does not
        # keep an on-demand source connected
        self.passive = passive
        self.name = name or f"sub-{id(self):x}"
        self.max_backlog_bytes = max_backlog_bytes
        self.max_backlog_gops = max_backlog_gops
        self._gop: GoP | None = None
        self._index = 0
        self._gop_bytes = 0  # payload bytes of ``_gop`` already passed
        self._gop_frames = 0
        self._head_pending = False
        self._version = -1  # TrackSet version last yielded
        self._wakeup: Callable[[], None] | None = None
        self._waiting = False
        self.closed = False
        # statistics
        self.frames_out = 0
        self.bytes_out = 0
        self.skipped_frames = 0
        self.skipped_bytes = 0
        self.skip_events = 0
        self.peak_backlog_bytes = 0
        self._logged_skips = -SKIP_LOG_INTERVAL_FRAMES

    # ---------------------------------------------------------------- API
    def set_wakeup(self, callback: Callable[[], None] | None) -> None:
        """Install the callback the channel calls when data arrives after a ``None``."""
        self._wakeup = callback

    def get_nowait(self) -> Item | None:
        """The next item (AccessUnit, TrackSet, Unpublished, Skipped), or None when caught up.

        After None, the wake-up callback fires once when more items arrive.
        """
        if self.closed:
            return None
        gop = self._gop
        if gop is None:
            if not self._start():
                return self._wait()
            gop = self._gop
            assert gop is not None
        else:  # the checks of _too_far_behind, inlined: this runs once per item per reader
            ch = self.channel
            backlog = ch.bytes_in - gop.start_bytes - self._gop_bytes
            if backlog > self.peak_backlog_bytes:
                self.peak_backlog_bytes = backlog
            newest = ch.last_gop
            if (gop.evicted or backlog > self.max_backlog_bytes
                    or (newest is not None and newest.seq - gop.seq > self.max_backlog_gops)):
                if self._too_far_behind(gop):
                    return self._skip()
        while True:
            if self._head_pending:
                self._head_pending = False
                if gop.head.version != self._version:
                    self._version = gop.head.version
                    return gop.head
            items = gop.items
            if self._index < len(items):
                item = items[self._index]
                self._index += 1
                if type(item) is AccessUnit:
                    n = len(item.payload)
                    self._gop_bytes += n
                    self._gop_frames += 1
                    self.frames_out += 1
                    self.bytes_out += n
                    return item
                if type(item) is TrackSet:
                    self._version = item.version
                return item
            nxt = gop.next
            if nxt is None:
                return self._wait()
            self._enter(nxt)
            gop = nxt

    @property
    def gop(self) -> GoP | None:
        """The GoP the last yielded item came from (None before the first one). Subscribers
        keep data derived from it, shared by all readers, in ``gop.cache``."""
        return self._gop

    @property
    def index(self) -> int:
        """Position in ``gop.items`` of the next item (the last yielded one is ``index - 1``)."""
        return self._index

    def backlog_bytes(self) -> int:
        """Payload bytes pushed to the channel that this subscription has not passed yet."""
        gop = self._gop
        if gop is None:
            return 0
        return self.channel.bytes_in - (gop.start_bytes + self._gop_bytes)

    def close(self) -> None:
        """Detach from the channel. Idempotent."""
        if self.closed:
            return
        self.closed = True
        self._wakeup = None
        self._gop = None
        self.channel._unstarted.discard(self)
        self.channel._remove(self)

    def statistics(self) -> Statistics:
        return Statistics(
            frames_out=self.frames_out, bytes_out=self.bytes_out,
            skipped_frames=self.skipped_frames, skipped_bytes=self.skipped_bytes,
            peak_backlog_bytes=self.peak_backlog_bytes,
            extra=(("name", self.name), ("skip_events", self.skip_events),
                   ("backlog_bytes", self.backlog_bytes())),
        )

    # ---------------------------------------------------------------- internals
    def _start(self) -> bool:
        """Put the cursor on the newest GoP head; if there is none yet, ask the channel to put
        it on the first GoP that opens. Returns True if the cursor is placed."""
        gop = self.channel.newest_start()
        if gop is None:
            self.channel._unstarted.add(self)
            return False
        self._enter(gop)
        return True

    def _enter(self, gop: GoP) -> None:
        self._gop = gop
        self._head_pending = True
        self._index = 0
        self._gop_bytes = 0
        self._gop_frames = 0

    def _wait(self) -> None:
        if not self._waiting:
            self._waiting = True
            self.channel._add_waiting(self)
        return None

    def _wake(self) -> None:
        """Called by the channel."""
        self._waiting = False
        cb = self._wakeup
        if cb is not None and not self.closed:
            try:
                cb()
            except Exception:  # a subscriber's bug must never reach the publisher
                log.exception("subscription %s: wake-up callback failed; closing it", self.name)
                self.close()

    def _too_far_behind(self, gop: GoP) -> bool:
        if gop.evicted:
            return True
        backlog = self.backlog_bytes()
        if backlog > self.peak_backlog_bytes:
            self.peak_backlog_bytes = backlog
        newest = self.channel.last_gop
        if backlog <= self.max_backlog_bytes and (newest is None or newest.seq - gop.seq <= self.max_backlog_gops):
            return False
        # Jumping only helps when a newer head exists: a cursor already on the newest
        # random-access GoP (one GoP bigger than the byte bound) would skip to itself forever.
        return self.channel.newest_start() is not gop

    def _skip(self) -> Skipped:
        gop = self._gop
        assert gop is not None
        target = self.channel.newest_start()
        # frames/bytes between the cursor and the target head are not delivered
        passed_frames = gop.start_frames + self._gop_frames
        passed_bytes = gop.start_bytes + self._gop_bytes
        if target is None:  # ring forgotten (publisher left): wait for the next publisher
            frames = self.channel.frames_in - passed_frames
            nbytes = self.channel.bytes_in - passed_bytes
            self._gop = None
            self._start()
        else:
            frames = target.start_frames - passed_frames
            nbytes = target.start_bytes - passed_bytes
            self._enter(target)
            self._version = -1  # re-announce tracks at the new head (seq headers again)
        self.skipped_frames += frames
        self.skipped_bytes += nbytes
        self.skip_events += 1
        if self.skipped_frames - self._logged_skips >= SKIP_LOG_INTERVAL_FRAMES or self.skip_events == 1:
            self._logged_skips = self.skipped_frames
            log.warning("subscriber %s on %s too slow, skipped %d frames (%d bytes); %d in total",
                        self.name, self.channel.path, frames, nbytes, self.skipped_frames)
        return Skipped(frames, nbytes)

    def __repr__(self) -> str:
        return f"Subscription({self.name!r}, {self.channel.path!r})"
