"""Process setup and profiling the benchmark drivers share (bench/rtmp_bench.py,
bench/rtsp_bench.py).

``setup_process(args)``: lower this process's priority to ``args.nice``, pin it to
``args.loadgen_cpu`` when the machine has a core for the server (``args.server_cpu``) besides,
and run asyncio on uvloop when it is installed.

``start_py_spy(pid, seconds, path)`` / ``wait_py_spy(proc)``: sample the server under test with
py-spy (next to this Python) during a measurement window, collapsed stacks to ``path``.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

PY_SPY_RATE = 500  # samples/s: enough for a 5-15 s window, little skew on the server
PY_SPY_GRACE = 30  # s for py-spy to write its output after the window before we kill it


def setup_process(args) -> None:
    """Apply niceness, CPU pinning and the uvloop policy for a benchmark's load generator.

    Updates ``args`` in place: ``args.nice`` becomes the niceness actually in effect, and
    ``args.server_cpu``/``args.loadgen_cpu`` become None when there are not enough cores to pin
    (nothing is pinned then). Raises nothing: a refused niceness is printed and ignored.
    """
    try:
        os.setpriority(os.PRIO_PROCESS, 0, args.nice)
    except OSError as e:
        print(f"cannot set niceness {args.nice}: {e}")
    args.nice = os.getpriority(os.PRIO_PROCESS, 0)
    if os.cpu_count() and os.cpu_count() > max(args.server_cpu, args.loadgen_cpu):
        os.sched_setaffinity(0, {args.loadgen_cpu})
    else:
        args.server_cpu = args.loadgen_cpu = None
    try:
        import uvloop
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass


def start_py_spy(pid: int, seconds: float, path: str) -> subprocess.Popen:
    """Start ``py-spy record`` on process ``pid`` for ``seconds`` (whole seconds), writing raw
    collapsed stacks to ``path``; its output is discarded. Returns the py-spy process.
    Raises OSError when py-spy is not installed next to this Python."""
    return subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "py-spy"), "record", "--pid", str(pid),
         "--duration", str(int(seconds)), "--rate", str(PY_SPY_RATE), "--format", "raw",
         "--output", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_py_spy(proc: subprocess.Popen) -> None:
    """Wait up to ``PY_SPY_GRACE`` s for a py-spy started by ``start_py_spy`` to finish; kill it
    (and reap it) if it has not."""
    try:
        proc.wait(timeout=PY_SPY_GRACE)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
