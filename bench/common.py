"""Process setup the benchmark drivers share (bench/rtsp_bench.py; bench/rtmp_bench.py has its
own copy for now).

``setup_process(args)``: lower this process's priority to ``args.nice``, pin it to
``args.loadgen_cpu`` when the machine has a core for the server (``args.server_cpu``) besides,
and run asyncio on uvloop when it is installed.
"""

from __future__ import annotations

import asyncio
import os


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
