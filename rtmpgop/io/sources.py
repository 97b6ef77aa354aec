"""Configured sources: the server pulls a camera (``rtsp://``, ``rtsps://``) or another server
(``rtmp://``) and publishes it on a path, with reconnects and a watchdog.

Strategy: one ``Source`` task per configured path. It claims the path in the hub, runs a
*puller* (a coroutine that connects, announces tracks and pushes access units until the peer
fails), and on any failure waits an exponential backoff with jitter and tries again. A watchdog
restarts the puller when no frame arrived for ``stall_timeout`` seconds or when timestamps stop
advancing (a frozen encoder that still sends). While the source is down, the channel keeps its
viewers: they get ``Unpublished``, then resume at the next keyframe when the source returns,
on a continued timeline (the channel rebases timestamps).

``on_demand`` sources connect only while somebody watches (a non-passive subscription) and
disconnect ``idle_timeout`` seconds after the last viewer left.

Pullers live next to their protocol adapters (``io/rtsp_client.py``, ``io/rtmp_client.py``) and
are looked up by URL scheme in ``PULLERS``.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from rtmpgop.channels import Channel, Hub
from rtmpgop.config import SourceConfig
from rtmpgop.media import AccessUnit, Statistics, Track

log = logging.getLogger(__name__)

BACKOFF_INITIAL = 0.5
"""First retry delay in seconds: a camera that rebooted is often back within a second."""

BACKOFF_MAX = 15.0
"""Longest retry delay: a camera that comes back is picked up within this (plus jitter)."""

BACKOFF_JITTER = 0.2
"""Each delay is scaled by a random factor in [1 - J, 1 + J], so that twenty cameras behind one
failed switch do not reconnect in lockstep."""

FROZEN_TIMESTAMP_FRAMES = 60
"""Video frames in a row with the same dts before the watchdog calls the source frozen."""

WATCHDOG_PERIOD = 0.25
"""How often the watchdog looks at the last frame time (seconds)."""


class SourceState(enum.Enum):
    IDLE = "idle"  # on-demand source with no viewer
    CONNECTING = "connecting"
    LIVE = "live"
    RETRYING = "retrying"
    STOPPED = "stopped"


class SourceStalled(Exception):
    """The watchdog found no new frame (or frozen timestamps) for too long."""


class Sink:
    """What a puller publishes into. The path is claimed when the puller first announces
    tracks, so failed connection attempts do not flap the channel under its viewers."""

    def __init__(self, source: Source) -> None:
        self._source = source
        self.channel: Channel | None = None
        # The puller may set this: protocol counters of the current connection (RTP losses,
        # errors ...) for ``Source.statistics``.
        self.details: Callable[[], Iterable[tuple[str, object]]] | None = None

    def set_tracks(self, tracks: Iterable[Track], metadata: Iterable[tuple[str, object]] | None = None) -> None:
        """Announce the tracks. Raises ``PathBusy`` if somebody else publishes the path."""
        if self.channel is None:
            self.channel = self._source.hub.publish(self._source.cfg.path, self._source)
        self.channel.set_tracks(tracks, metadata)

    def push(self, au: AccessUnit) -> None:
        if self.channel is None:
            return  # a puller bug: frames before tracks; nothing can decode them
        self._source._on_frame(au)
        self.channel.push(au)


Puller = Callable[[SourceConfig, Sink], Awaitable[None]]
"""Connects to ``cfg.url``, calls ``sink.set_tracks`` then ``sink.push`` until the peer fails
(raise) or ends (return). Cancellation must close the connection."""

PULLERS: dict[str, Puller] = {}
"""URL scheme -> puller; filled by the protocol adapter modules on import."""


def backoff_delay(attempt: int, rng: random.Random) -> float:
    """Delay before reconnect ``attempt`` (1-based): exponential, capped, with jitter."""
    base = min(BACKOFF_MAX, BACKOFF_INITIAL * (2 ** max(0, attempt - 1)))
    return base * rng.uniform(1 - BACKOFF_JITTER, 1 + BACKOFF_JITTER)


@dataclass(frozen=True, slots=True)
class SourceStatus:
    path: str
    url: str  # credentials removed
    state: str
    last_error: str
    reconnects: int
    frames: int
    connected_for: float


def redact(url: str) -> str:
    """``rtsp://user:pass@host/x`` -> ``rtsp://user:***@host/x`` for logs and the API."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest.split("/", 1)[0]:
        return url
    cred, _, host = rest.partition("@")
    user = cred.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


class Source:
    """One configured source and its reconnect loop."""

    def __init__(self, hub: Hub, cfg: SourceConfig, puller: Puller | None = None,
                 rng: random.Random | None = None) -> None:
        self.hub = hub
        self.cfg = cfg
        scheme = cfg.url.split("://", 1)[0]
        self._puller = puller
        self._scheme = scheme
        self._rng = rng or random.Random()
        self.state = SourceState.IDLE
        self.last_error = ""
        self.reconnects = 0
        self.frames = 0
        self._attempt = 0
        self._last_frame = 0.0
        self._connected_at = 0.0
        self._last_video_dts: int | None = None
        self._same_dts = 0
        self._task: asyncio.Task | None = None
        self._wanted = asyncio.Event()

    # ---------------------------------------------------------------- control
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"source {self.cfg.path}")
        self._wanted.set()

    def pause(self) -> None:
        """On-demand: stop pulling (the run loop waits until ``start`` again)."""
        self._wanted.clear()
        if self._task is not None and self.state in (SourceState.LIVE, SourceState.CONNECTING,
                                                     SourceState.RETRYING):
            self._restart = "idle"
            self._pull_task_cancel()

    async def close(self) -> None:
        self._wanted.clear()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None
        self.state = SourceState.STOPPED

    # ---------------------------------------------------------------- loop
    _pull: asyncio.Task | None = None
    _sink: Sink | None = None
    _restart = ""

    def _pull_task_cancel(self) -> None:
        if self._pull is not None and not self._pull.done():
            self._pull.cancel()

    async def _run(self) -> None:
        while True:
            await self._wanted.wait()
            puller = self._puller or PULLERS.get(self._scheme)
            if puller is None:
                self.last_error = f"no puller for {self._scheme}://"
                self.state = SourceState.STOPPED
                log.error("source %s: %s", self.cfg.path, self.last_error)
                return
            self.state = SourceState.CONNECTING
            self._restart = ""
            self._last_frame = time.monotonic()
            self._last_video_dts = None
            self._same_dts = 0
            sink = self._sink = Sink(self)
            self._pull = asyncio.get_running_loop().create_task(puller(self.cfg, sink))
            watchdog = asyncio.get_running_loop().create_task(self._watchdog())
            try:
                await self._pull
                self._fail("source ended the stream")
            except asyncio.CancelledError:
                if self._pull.cancelled() and self._restart:
                    if self._restart != "idle":
                        self._fail(self._restart)
                else:
                    raise
            except Exception as e:  # any puller failure: log one line and retry
                self._fail(f"{type(e).__name__}: {e}")
            finally:
                watchdog.cancel()
                self._pull_task_cancel()
                if sink.channel is not None:
                    self.hub.unpublish(sink.channel, self, self.last_error or "source stopped")
            if not self._wanted.is_set():
                self.state = SourceState.IDLE
                self._attempt = 0
                continue
            await self._sleep_backoff()

    def _fail(self, why: str) -> None:
        self.last_error = why
        self.state = SourceState.RETRYING
        log.warning("source %s (%s): %s", self.cfg.path, redact(self.cfg.url), why)

    async def _sleep_backoff(self) -> None:
        self._attempt += 1
        self.reconnects += 1
        delay = backoff_delay(self._attempt, self._rng)
        try:
            await asyncio.wait_for(self._wait_unwanted(), delay)
        except asyncio.TimeoutError:
            pass

    async def _wait_unwanted(self) -> None:
        while self._wanted.is_set():
            await asyncio.sleep(WATCHDOG_PERIOD)

    async def _watchdog(self) -> None:
        while True:
            await asyncio.sleep(WATCHDOG_PERIOD)
            now = time.monotonic()
            if now - self._last_frame > self.cfg.stall_timeout:
                self._restart = f"no frame for {self.cfg.stall_timeout:g} s"
            elif self._same_dts >= FROZEN_TIMESTAMP_FRAMES:
                self._restart = f"timestamps frozen for {self._same_dts} frames"
            else:
                continue
            self._pull_task_cancel()
            return

    def _on_frame(self, au: AccessUnit) -> None:
        self.frames += 1
        self._last_frame = time.monotonic()
        if self.state is not SourceState.LIVE:
            self.state = SourceState.LIVE
            self._connected_at = self._last_frame
            self._attempt = 0
            self.last_error = ""
            log.info("source %s (%s) live", self.cfg.path, redact(self.cfg.url))
        if au.track == 0:
            if au.dts == self._last_video_dts:
                self._same_dts += 1
            else:
                self._same_dts = 0
                self._last_video_dts = au.dts

    # ---------------------------------------------------------------- status
    def status(self) -> SourceStatus:
        live_for = time.monotonic() - self._connected_at if self.state is SourceState.LIVE else 0.0
        return SourceStatus(self.cfg.path, redact(self.cfg.url), self.state.value, self.last_error,
                            self.reconnects, self.frames, round(live_for, 3))

    def statistics(self) -> Statistics:
        """Frames pulled, state, last error, reconnects, plus the current connection's
        protocol counters when the puller reports them (``Sink.details``)."""
        st = self.status()
        details = ()
        if self._sink is not None and self._sink.details is not None:
            details = tuple(self._sink.details())
        return Statistics(frames_in=self.frames, extra=(
            ("state", st.state), ("last_error", st.last_error), ("reconnects", st.reconnects),
            ("url", st.url), *details))


class SourceManager:
    """All configured sources; starts always-on ones, drives on-demand ones from the hub."""

    def __init__(self, hub: Hub, sources: Iterable[SourceConfig]) -> None:
        self.hub = hub
        self.sources = {s.path: Source(hub, s) for s in sources}
        self._idle_timers: dict[str, asyncio.TimerHandle] = {}
        self._idle_task: asyncio.Task | None = None
        self._touched: dict[str, float] = {}  # path -> last request of a viewer without a subscription
        hub.on_subscribe.append(self._on_subscribe)

    def start(self) -> None:
        for src in self.sources.values():
            if not src.cfg.on_demand:
                src.start()
        if any(s.cfg.on_demand for s in self.sources.values()):
            self._idle_task = asyncio.get_running_loop().create_task(self._idle_loop())

    def _on_subscribe(self, ch: Channel) -> None:
        src = self.sources.get(ch.path)
        if src is not None and src.cfg.on_demand:
            timer = self._idle_timers.pop(ch.path, None)
            if timer:
                timer.cancel()
            src.start()

    def touch(self, path: str) -> bool:
        """A viewer that holds no subscription (an LL-HLS request) wants ``path``: start its
        on-demand source and keep it for ``idle_timeout`` after the last touch. Returns
        whether ``path`` is an on-demand source."""
        src = self.sources.get(path)
        if src is None or not src.cfg.on_demand:
            return False
        self._touched[path] = time.monotonic()
        src.start()
        return True

    async def wait_live(self, path: str, timeout: float) -> bool:
        """Wait until ``path`` is published with tracks, at most ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while True:
            ch = self.hub.get(path)
            if ch is not None and ch.is_live and ch.trackset.tracks:
                return True
            if loop.time() >= end:
                return False
            await asyncio.sleep(WATCHDOG_PERIOD)

    async def _idle_loop(self) -> None:
        idle_since: dict[str, float] = {}
        while True:
            await asyncio.sleep(WATCHDOG_PERIOD)
            now = time.monotonic()
            for path, src in self.sources.items():
                if not src.cfg.on_demand or not src._wanted.is_set():
                    continue
                ch = self.hub.get(path)
                viewers = sum(1 for s in ch.subscriptions if not s.passive) if ch else 0
                if viewers or now - self._touched.get(path, -1e18) < src.cfg.idle_timeout:
                    idle_since.pop(path, None)
                elif now - idle_since.setdefault(path, now) >= src.cfg.idle_timeout:
                    idle_since.pop(path, None)
                    log.info("source %s: no viewer for %g s, disconnecting", path, src.cfg.idle_timeout)
                    src.pause()

    def status(self) -> dict[str, SourceStatus]:
        return {p: s.status() for p, s in self.sources.items()}

    def statistics(self) -> Statistics:
        """Frames pulled by all sources; per state counts and total reconnects in ``extra``."""
        st = [s.status() for s in self.sources.values()]
        return Statistics(frames_in=sum(s.frames for s in st), extra=(
            ("sources", len(st)), *((k.value, sum(s.state == k.value for s in st))
                                    for k in SourceState),
            ("reconnects", sum(s.reconnects for s in st))))

    async def close(self) -> None:
        if self._on_subscribe in self.hub.on_subscribe:
            self.hub.on_subscribe.remove(self._on_subscribe)
        if self._idle_task is not None:
            self._idle_task.cancel()
            self._idle_task = None
        for src in self.sources.values():
            await src.close()
