"""Renderer service: one WebP renderer per watched channel, each in its own worker thread.

``RenderManager.attach(path, viewer)`` starts a ``StreamRender`` for a channel on its first
viewer and stops it when the last one leaves, so nothing is decoded for a channel nobody
watches. Each frame is encoded once and handed to every viewer by one synchronous fan-out on the
loop thread (``Viewer.send_frame``); a new viewer gets the stream info and the latest picture at
once.

Threads and queues:

- Loop thread: the subscription's wake-up drains the hub into ``_pending`` (a deque under a
  condition variable), keeping only the video track.
- Worker thread: pops one item at a time and runs ``WebpRenderer`` (PyAV releases the GIL while
  decoding and encoding); results go back with ``loop.call_soon_threadsafe``.
- No backlog: when a keyframe arrives while ``MAX_PENDING_FRAMES`` frames are still queued, the
  queue is dropped up to that keyframe (the renderer jumps to the newest GoP). Within one long GoP
  the queue stops at ``MAX_PENDING_HARD`` and waits for the next keyframe. While more than
  ``CATCHUP_PENDING`` frames wait, frames are decoded but not encoded (a new renderer starts at
  the GoP head, up to a GoP behind live).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
from collections import deque
from typing import Protocol

from rtmpgop.channels import Hub, normalize_path
from rtmpgop.config import Config
from rtmpgop.errors import ConfigError
from rtmpgop.media import AccessUnit, Skipped, Statistics, TrackSet, Unpublished
from rtmpgop.subscribers.webp import (MAX_OUTPUT_SIDE, RenderedFrame, RenderSettings, StreamInfo,
                                      WebpRenderer)

log = logging.getLogger(__name__)

MAX_PENDING_FRAMES = 8
"""Queued frames (~0.27 s at 30 fps) past which the worker counts as behind: the next keyframe
then replaces the whole queue, so latency never grows past about one GoP."""

MAX_PENDING_HARD = 300
"""Queued frames at which input stops until the next keyframe (a very long GoP on a renderer
that cannot keep up): bounds memory per stream whatever the GoP length."""

CATCHUP_PENDING = 2
"""Frames may wait in the queue while the worker still encodes (B-frame reordering keeps up to
two in flight). More than this means we are catching up: decode only."""

JUMP = object()
"""Queue marker: the items before were dropped; the renderer flushes and waits for a keyframe."""

FLUSH = object()
"""Queue marker: the publisher left; show the frames the decoder still holds (B-frame delay)."""

_STOP = object()


class Viewer(Protocol):
    """Something that shows a stream: a WebSocket, an MJPEG response. Called on the loop thread."""

    def send_info(self, info: StreamInfo) -> None: ...

    def send_frame(self, frame: RenderedFrame) -> None: ...


def settings_from(config: Config, jpeg: bool = False) -> RenderSettings:
    """Renderer settings from the ``webp_*`` configuration keys. Raises ``ConfigError``."""
    for key, value, lo, hi in (("webp_quality", config.webp_quality, 0, 100),
                               ("webp_method", config.webp_method, 0, 6),
                               ("webp_max_width", config.webp_max_width, 0, MAX_OUTPUT_SIDE),
                               ("webp_max_fps", config.webp_max_fps, 0, 240)):
        if not lo <= value <= hi:
            raise ConfigError(key, f"{value!r} outside {lo}..{hi}")
    return RenderSettings(quality=config.webp_quality, method=config.webp_method,
                          max_width=config.webp_max_width, max_fps=config.webp_max_fps, jpeg=jpeg)


class StreamRender:
    """The renderer of one channel: subscription, pending queue, worker thread, viewers."""

    def __init__(self, hub: Hub, path: str, settings: RenderSettings,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.path = path
        self.settings = settings
        self.loop = loop
        self.viewers: set[Viewer] = set()
        self.jpeg_viewers = 0
        self.latest: RenderedFrame | None = None
        self.info: StreamInfo | None = None
        self.frames_delivered = 0
        self.frames_dropped = 0  # dropped from the queue because the worker was behind
        self.jumps = 0
        self._video_id: int | None = None
        self._pending: deque = deque()
        self._pending_frames = 0
        self._dropping = False  # input stopped (MAX_PENDING_HARD) until the next keyframe
        self._cond = threading.Condition()
        self._stopped = False
        self.renderer = WebpRenderer(settings)
        self.sub = hub.subscribe(path, f"webp:{path}")
        self.sub.set_wakeup(self._drain)
        self.thread = threading.Thread(target=self._run, name=f"webp:{path}", daemon=True)
        self.thread.start()
        self._drain()

    # ---------------------------------------------------------------- loop thread
    def _drain(self) -> None:
        items = []
        while (item := self.sub.get_nowait()) is not None:
            items.append(item)
        if items:
            self._enqueue(items)

    def _enqueue(self, items: list) -> None:
        with self._cond:
            q = self._pending
            for item in items:
                if type(item) is AccessUnit:
                    if item.track != self._video_id:
                        continue
                    if item.keyframe and (self._dropping or self._pending_frames >= MAX_PENDING_FRAMES):
                        self._drop_queue()
                        self._dropping = False
                    elif self._dropping:
                        self.frames_dropped += 1
                        continue
                    elif self._pending_frames >= MAX_PENDING_HARD:
                        self._drop_queue()
                        self._dropping = True
                        self.frames_dropped += 1
                        continue
                    self._pending_frames += 1
                elif type(item) is TrackSet:
                    v = item.video()
                    self._video_id = v.id if v is not None else None
                elif type(item) is Skipped:
                    item = JUMP
                elif type(item) is Unpublished:
                    item = FLUSH
                q.append(item)
            self._cond.notify()

    def _drop_queue(self) -> None:
        """Drop queued frames (keep track and settings changes) and tell the worker to jump."""
        kept = [i for i in self._pending if type(i) is not AccessUnit and i is not JUMP and i is not FLUSH]
        self.frames_dropped += self._pending_frames
        self._pending.clear()
        self._pending.extend(kept)
        self._pending.append(JUMP)
        self._pending_frames = 0
        self.jumps += 1

    def _deliver(self, outputs: list) -> None:
        if self._stopped:
            return
        for out in outputs:
            if type(out) is RenderedFrame:
                self.latest = out
                self.frames_delivered += 1
                for v in list(self.viewers):
                    v.send_frame(out)
            else:
                self.info = out
                for v in list(self.viewers):
                    v.send_info(out)

    def add(self, viewer: Viewer, jpeg: bool = False) -> None:
        """Add a viewer; it receives the stream info and the latest picture right away."""
        self.viewers.add(viewer)
        if jpeg:
            self.jpeg_viewers += 1
            if not self.settings.jpeg:
                self._set_jpeg(True)
        if self.info is not None:
            viewer.send_info(self.info)
        if self.latest is not None and (self.latest.jpeg is not None or not jpeg):
            viewer.send_frame(self.latest)

    def remove(self, viewer: Viewer, jpeg: bool = False) -> None:
        if viewer in self.viewers:
            self.viewers.discard(viewer)
            if jpeg:
                self.jpeg_viewers -= 1
                if self.jpeg_viewers == 0:
                    self._set_jpeg(False)

    def _set_jpeg(self, on: bool) -> None:
        self.settings = dataclasses.replace(self.settings, jpeg=on)
        with self._cond:
            self._pending.append(("settings", self.settings))
            self._cond.notify()

    def stop(self) -> None:
        """Detach from the hub and tell the worker to finish (it flushes its decoder)."""
        if self._stopped:
            return
        self._stopped = True
        self.sub.close()
        with self._cond:
            self._pending.clear()
            self._pending.append(_STOP)
            self._cond.notify()

    def statistics(self) -> Statistics:
        st = self.renderer.statistics()
        return Statistics(frames_in=st.frames_in, frames_out=self.frames_delivered,
                          bytes_out=st.bytes_out, skipped_frames=self.frames_dropped,
                          extra=(("viewers", len(self.viewers)), ("jumps", self.jumps)) + st.extra)

    # ---------------------------------------------------------------- worker thread
    def _run(self) -> None:
        r = self.renderer
        try:
            while True:
                with self._cond:
                    while not self._pending:
                        self._cond.wait()
                    item = self._pending.popleft()
                    if type(item) is AccessUnit:
                        self._pending_frames -= 1
                    behind = self._pending_frames
                if item is _STOP:
                    return
                if type(item) is AccessUnit:
                    outputs = r.push(item, render=behind <= CATCHUP_PENDING)
                elif type(item) is TrackSet:
                    outputs = r.set_tracks(item)
                elif item is JUMP:
                    r.jump()
                    outputs = []
                elif item is FLUSH:
                    outputs = r.flush()
                elif type(item) is tuple and item[0] == "settings":
                    r.settings = item[1]
                    outputs = []
                else:
                    outputs = []
                if outputs and not self._stopped:
                    try:
                        self.loop.call_soon_threadsafe(self._deliver, outputs)
                    except RuntimeError:  # loop closed under us
                        return
        except Exception:
            log.exception("renderer %s failed", self.path)
        finally:
            r.close()


class RenderManager:
    """Starts a ``StreamRender`` per channel while it has viewers. A service of the App."""

    def __init__(self, hub: Hub, config: Config) -> None:
        """Raises ``ConfigError`` for ``webp_*`` values out of range (at start, not per stream)."""
        settings_from(config)
        self.hub = hub
        self.config = config
        self.streams: dict[str, StreamRender] = {}
        self._threads: list[threading.Thread] = []

    def attach(self, path: str, viewer: Viewer, jpeg: bool = False) -> StreamRender:
        """Add ``viewer`` to the renderer of ``path`` (started if needed). Raises ``InvalidPath``.
        Must be called on the event loop thread."""
        p = normalize_path(path)
        sr = self.streams.get(p)
        if sr is None:
            sr = StreamRender(self.hub, p, settings_from(self.config, jpeg),
                              asyncio.get_running_loop())
            self.streams[p] = sr
            self._threads = [t for t in self._threads if t.is_alive()] + [sr.thread]
            log.info("renderer start %s", p)
        sr.add(viewer, jpeg)
        return sr

    def detach(self, path: str, viewer: Viewer, jpeg: bool = False) -> None:
        """Remove ``viewer``; the renderer stops with its last viewer."""
        p = normalize_path(path)
        sr = self.streams.get(p)
        if sr is None:
            return
        sr.remove(viewer, jpeg)
        if not sr.viewers:
            del self.streams[p]
            sr.stop()
            log.info("renderer stop %s", p)

    def statistics(self) -> Statistics:
        sts = [s.statistics() for s in self.streams.values()]
        return Statistics(frames_in=sum(s.frames_in for s in sts),
                          frames_out=sum(s.frames_out for s in sts),
                          extra=(("renderers", len(sts)),))

    async def close(self) -> None:
        """Stop every renderer and wait for the worker threads to finish."""
        for p in list(self.streams):
            self.streams.pop(p).stop()
        threads, self._threads = self._threads, []
        for t in threads:
            await asyncio.to_thread(t.join, 5.0)
