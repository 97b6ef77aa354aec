"""Keep the test run off real-time scheduling.

libsvtav1 (PyAV's AV1 encoder), run as root as on CI, switches threads of the encoding process
to SCHED_FIFO priority 99. Programs started from such a thread inherit it: headless Chromium then
livelocked both cores (its threads spun on futexes at real-time priority and could not even be
killed), so the run hung. fixtures/media.py resets after its own AV1 encodes; tests that call
PyAV's encoder directly rely on this guard.
This guard puts every real-time thread of the test process and of its descendants (ffmpeg,
Chromium, servers) back on SCHED_OTHER, once a second, in a daemon thread.
"""

from __future__ import annotations

import os
import threading
import time

PERIOD = 1.0
"""Seconds between sweeps: a real-time spinner holds a core at most this long."""

_REALTIME = {os.SCHED_FIFO, os.SCHED_RR}


def _descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(name))
    out, todo = set(), [root]
    while todo:
        pid = todo.pop()
        out.add(pid)
        todo.extend(children.get(pid, ()))
    return out


def sweep(root: int | None = None) -> int:
    """Reset real-time threads under ``root`` (default: this process). Returns how many."""
    n = 0
    for pid in _descendants(root or os.getpid()):
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                if os.sched_getscheduler(int(tid)) in _REALTIME:
                    os.sched_setscheduler(int(tid), os.SCHED_OTHER, os.sched_param(0))
                    n += 1
            except OSError:
                pass
    return n


def start() -> threading.Thread:
    def loop() -> None:
        while True:
            sweep()
            time.sleep(PERIOD)

    t = threading.Thread(target=loop, name="rt-guard", daemon=True)
    t.start()
    return t
