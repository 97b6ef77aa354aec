"""Batched subscriber pumps with an optional merged-write delay (shared by the RTMP and RTSP
listeners).

A subscription's wake-up runs on the publisher's stack, once per message. Writing to the
player right there costs one ``writev`` per message per player. Instead the connection asks
the listener's ``PumpScheduler`` to run its pump; the scheduler runs every woken connection's
pump in one pass (one loop callback for all of them, not one per player):

- at the next loop turn (``merge_ms`` = 0): every message the publisher's current receive
  completed leaves in one ``writelines`` per player;
- ``merge_ms`` after the first wake-up (merged write, SRS's ``mw_latency``): every message that
  arrives meanwhile leaves in the same ``writelines``. With 30 fps video and a 50 ms window a
  player gets about one write per two frames instead of one per message, for at most 50 ms
  of added delay (bench/RESULTS.md, RTMP section, has the numbers).

A connection that falls behind still never holds more than its transport's high-water mark plus
one batch: pumps stop while the transport is paused; the hub skips a player that lags GoPs.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

log = logging.getLogger(__name__)


class Pumped(Protocol):
    peer: str

    def pump(self) -> None: ...

    def close(self) -> None: ...


class PumpScheduler:
    """Runs scheduled pumps in one pass, at the next loop turn or ``merge_ms`` later."""

    def __init__(self, merge_ms: int = 0) -> None:
        self.merge_s = merge_ms / 1000
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop of the first schedule
        self._due: dict[Pumped, None] = {}  # in wake-up order, each connection once
        self._pending = False
        self.passes = 0  # statistics: pump passes run

    def schedule(self, conn: Pumped) -> None:
        """Have ``conn.pump()`` called in the next pass (once, however often it is woken
        before). Call it on the loop's thread (the hub is not thread-safe)."""
        if not self._pending:
            loop = self._loop
            if loop is None:
                loop = self._loop = asyncio.get_running_loop()
            if self.merge_s:
                loop.call_later(self.merge_s, self._run)
            else:
                loop.call_soon(self._run)
            self._pending = True  # only once a pass is really scheduled
        self._due[conn] = None

    def _run(self) -> None:
        self._pending = False
        self.passes += 1
        due, self._due = self._due, {}
        for conn in due:
            try:
                conn.pump()
            except Exception:  # one connection's bug must not starve the others
                log.exception("%s: pump failed; closing the connection", conn.peer)
                conn.close()
