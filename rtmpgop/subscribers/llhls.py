"""LL-HLS subscriber: one muxer per live channel, fed from a hub Subscription.

Modes (config ``hls``): ``always`` (the default) starts the muxer when the publisher starts
(``Hub.on_publish``), subscribed before the first GoP, so a player's first request finds parts
already being cut instead of waiting for a segment to fill. ``on_demand`` starts it at the first
HLS request for the path (``request``): the muxer's subscription starts at the cached GoP head, so
that request waits for the first part to be cut from it (milliseconds, plus one part duration
when the GoP head is the newest frame), and the playlist starts at that GoP instead of holding
the full window; the muxer is dropped once nobody asked for ``ON_DEMAND_IDLE_SECONDS``, which
saves its CPU and memory (about 30 % of the ingest CPU and ~6 MB per 5 Mbit/s channel) on
paths nobody watches over HLS. A muxer outlives its publisher by ``IDLE_SECONDS`` (a publisher
that reconnects continues the same playlist after an EXT-X-DISCONTINUITY) and is then dropped.

Strategy: the subscription's wake-up (called on the publisher's stack) only *schedules* a drain
through the ``schedule`` callable the I/O layer gives (``loop.call_soon``); the drain feeds every
pending item to the sans-IO ``LLHLSMuxer`` and, when its playlist changed, calls ``on_change``
so the I/O layer answers the requests held in ``waiters``. No asyncio here: the clock and the
scheduler are parameters, so tests drive it by hand.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from rtmpgop.channels import Channel, Hub
from rtmpgop.media import AccessUnit, Skipped, Statistics, TrackSet, Unpublished
from rtmpgop.segmenter import fmp4
from rtmpgop.segmenter.llhls import LLHLSMuxer, Packager, Waiters
from rtmpgop.segmenter.playlist import PlaylistLayout

log = logging.getLogger(__name__)

IDLE_SECONDS = 30.0
"""A muxer whose channel has had no publisher for this long is dropped (its URLs then 404).
Long enough for an encoder to reconnect after a network blip and keep its viewers."""

MAX_ITEMS_PER_DRAIN = 2000
"""Items handled per scheduled drain before yielding to the loop (a backlog after a stall must
not starve the HTTP side); the rest is drained on the next turn."""

ON_DEMAND_IDLE_SECONDS = 30.0
"""``on_demand`` mode: a muxer without an HLS request for this long is dropped. Players reload
the playlist every part (0.2 s) or segment; 30 s rides out a paused player or a background tab
without restarting the playlist."""

MODES = ("always", "on_demand", "off")
"""Values of the ``hls`` config key (``off`` is handled by the app: no LL-HLS service)."""

MSN_BASE_MODULUS = 1_000_000_000
"""First MSN of a muxer = wall-clock seconds modulo this: a recreated muxer never reuses a URI
for different bytes (parts and segments are served as immutable)."""


class ChannelMuxer:
    """A channel's LL-HLS muxer plus the requests waiting on it."""

    def __init__(self, hub: Hub, path: str, layout: PlaylistLayout, packager: Packager,
                 clock: Callable[[], float], schedule: Callable[[Callable[[], None]], object],
                 on_change: Callable[[ChannelMuxer], None] | None = None) -> None:
        self.path = path
        self.clock = clock
        self._schedule = schedule
        self.on_change = on_change
        now = clock()
        self.muxer = LLHLSMuxer(layout, packager, first_msn=int(now) % MSN_BASE_MODULUS)
        self.waiters = Waiters(self.muxer)
        # passive: the muxer runs whenever the path is published and is not a viewer, so it
        # must not keep an on-demand camera connected (io/sources.py)
        self.sub = hub.subscribe(path, f"llhls:{path}", passive=True)
        self.channel: Channel = self.sub.channel
        self.idle_since: float | None = None
        self.last_request = now  # clock() of the last HLS request (on_demand mode)
        self._scheduled = False
        self.items = 0
        self.sub.set_wakeup(self._wake)
        self.drain()

    def _wake(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            self._schedule(self._run)

    def _run(self) -> None:
        self._scheduled = False
        self.drain()

    def drain(self) -> bool:
        """Feed every pending item to the muxer. Returns True if the playlist changed."""
        m = self.muxer
        version = m.version
        now = self.clock()
        for _ in range(MAX_ITEMS_PER_DRAIN):
            item = self.sub.get_nowait()
            if item is None:
                break
            self.items += 1
            if type(item) is AccessUnit:
                m.push(item, now)
            elif type(item) is TrackSet:
                m.set_tracks(item, now)
            elif type(item) is Unpublished:
                m.flush(now)
            elif type(item) is Skipped:
                log.warning("llhls %s: muxer fell behind, %d frames skipped", self.path, item.frames)
                m.flush(now)
        else:
            self._wake()  # more to do: continue on the next loop turn
        changed = m.version != version
        if changed and self.on_change is not None:
            self.on_change(self)
        return changed

    def close(self) -> None:
        self.sub.close()

    def statistics(self) -> Statistics:
        m = self.muxer
        return Statistics(
            frames_in=self.items, frames_out=m.version, bytes_out=sum(s.nbytes for s in m.segments),
            extra=(("path", self.path), ("segments", len(m.segments)), ("last_msn", m.last_msn),
                   ("waiting", len(self.waiters)), ("dropped", m.dropped)))


class LLHLSManager:
    """All channel muxers: started on publish (``mode="always"``) or at the first request
    (``"on_demand"``), dropped ``IDLE_SECONDS`` after the publisher left (and, on demand,
    ``ON_DEMAND_IDLE_SECONDS`` after the last request)."""

    def __init__(self, hub: Hub, layout: PlaylistLayout, clock: Callable[[], float],
                 schedule: Callable[[Callable[[], None]], object],
                 packager_factory: Callable[[], Packager] = fmp4.Packager,
                 on_change: Callable[[ChannelMuxer], None] | None = None,
                 mode: str = "always") -> None:
        if mode not in ("always", "on_demand"):
            raise ValueError(f"LL-HLS manager mode {mode!r}")
        self.mode = mode
        self.hub = hub
        self.layout = layout
        self.clock = clock
        self.schedule = schedule
        self.packager_factory = packager_factory
        self.on_change = on_change
        self.muxers: dict[str, ChannelMuxer] = {}
        hub.on_publish.append(self._on_publish)
        if mode == "always":
            for ch in hub.channels():
                if ch.is_live:
                    self._on_publish(ch)

    def _on_publish(self, ch: Channel) -> None:
        cm = self.muxers.get(ch.path)
        if cm is not None:
            cm.idle_since = None
            return
        if self.mode == "always":
            self._start(ch.path)

    def _start(self, path: str) -> ChannelMuxer:
        cm = self.muxers[path] = ChannelMuxer(self.hub, path, self.layout, self.packager_factory(),
                                              self.clock, self.schedule, self.on_change)
        log.info("llhls %s: muxer started", path)
        return cm

    def get(self, path: str) -> ChannelMuxer | None:
        return self.muxers.get(path)

    def request(self, path: str) -> ChannelMuxer | None:
        """The muxer an HLS request for ``path`` uses, started now in ``on_demand`` mode if the
        path is live; None when there is none. Counts as a request for the idle timeout."""
        cm = self.muxers.get(path)
        if cm is None and self.mode == "on_demand":
            ch = self.hub.get(path)
            if ch is not None and ch.is_live:
                cm = self._start(path)
        if cm is not None:
            cm.last_request = self.clock()
        return cm

    def reap(self, now: float) -> list[ChannelMuxer]:
        """Drop muxers whose channel has been without publisher for ``IDLE_SECONDS``."""
        gone = []
        on_demand = self.mode == "on_demand"
        for path, cm in list(self.muxers.items()):
            if on_demand and now - cm.last_request >= ON_DEMAND_IDLE_SECONDS:
                del self.muxers[path]
                cm.close()
                gone.append(cm)
                log.info("llhls %s: muxer dropped after %.0f s without requests", path,
                         ON_DEMAND_IDLE_SECONDS)
                continue
            if cm.channel.is_live:
                cm.idle_since = None
            elif cm.idle_since is None:
                cm.idle_since = now
            elif now - cm.idle_since >= IDLE_SECONDS:
                del self.muxers[path]
                cm.close()
                gone.append(cm)
                log.info("llhls %s: muxer dropped after %.0f s without publisher", path, IDLE_SECONDS)
        return gone

    def close(self) -> None:
        if self._on_publish in self.hub.on_publish:
            self.hub.on_publish.remove(self._on_publish)
        for cm in self.muxers.values():
            cm.close()
        self.muxers.clear()

    def statistics(self) -> Statistics:
        return Statistics(extra=(("muxers", len(self.muxers)), ("mode", self.mode),
                                 ("waiting", sum(len(c.waiters) for c in self.muxers.values()))))
