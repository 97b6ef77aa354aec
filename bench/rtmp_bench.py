"""RTMP benchmark: rtmpgop against nginx-rtmp, in the same run, on the same media.

    python bench/rtmp_bench.py [--quick] [--scenarios fanout-1 fanout-50 ...] [--servers ...]
                               [--repeat N] [--ingest-players] [--profile DIR]

Each (scenario, server) run starts a fresh server pinned to one core (``--server-cpu``), while
this process, the load generator (bench/loadgen, asyncio on uvloop), is pinned to another
(``--loadgen-cpu``). Servers take turns per scenario (which one goes first rotates). rtmpgop
runs in two configurations: its default (``rtmpgop``: an LL-HLS muxer per published path) and
``rtmpgop-nohls`` (``hls = "off"``), which matches the nginx-rtmp configuration (no HLS).
On a shared machine: both run at nice -10 (``--nice``), each run first waits until other work
quiets down (``--settle``), and the detail table shows the other load seen, how long the server
and the load generator sat runnable but off-core, and how far publishers fell behind schedule.
``--repeat N`` runs everything N times; the summary takes the median run.

``--servers ... floor`` adds the stack's floor to the ingest scenarios (bench/rtmp_floor.py:
rtmpgop reading its publishers into a scratch buffer and discarding the bytes).

Scenarios: ``fanout-N``: one ~5 Mbit/s publisher, N players; ``ingest-N``: N publishers, no
players (``--ingest-players`` adds one per publisher, to check exactness).

Measured over the window, after every player joined:
- server CPU: on-CPU time of all its threads (/proc/PID/task/*/schedstat, ns; falls back to
  /proc/PID/stat utime+stime), per Mbit delivered to players (fan-out) or received from
  publishers (ingest): media payload bytes (FLV tag bodies) as the load generator counts them;
- RSS: peak VmRSS sampled every 0.25 s during the run, and VmHWM;
- join: TCP connect -> first keyframe video message, p50/p95 over players;
- exact: % of players that got every frame from their first keyframe on, in order, once.

Prints a summary table and a detail table; writes bench/out/rtmp_bench.json and .md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import glob
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from bench import nginx_rtmp  # noqa: E402
from bench.common import setup_process, start_py_spy, wait_py_spy  # noqa: E402
from bench.loadgen.media import load_media  # noqa: E402
from bench.loadgen.run import LoadResult, LoadSpec, run_load  # noqa: E402

SCENARIOS = ["fanout-1", "fanout-50", "fanout-200", "ingest-1", "ingest-10", "ingest-50"]
SERVERS = ["rtmpgop", "rtmpgop-nohls", "nginx"]
EXTRA_SERVERS = ["floor"]
"""``floor`` (ingest scenarios only, bench/rtmp_floor.py): rtmpgop reading its publishers and
discarding the bytes, what the stack costs before any RTMP work."""
LABELS = {"rtmpgop": "rtmpgop (default: LL-HLS on)", "rtmpgop-nohls": "rtmpgop (hls = off, as nginx)",
          "nginx": "nginx-rtmp", "floor": "stack floor (read and discard)"}
"""rtmpgop runs twice: as configured by default (an LL-HLS muxer per published path) and with
``hls = "off"``, the configuration that matches the nginx one (``live on``, no HLS)."""
READY_DEADLINE = 20.0  # s for `python -m rtmpgop` to print its ready line
OUT_DIR = os.path.join(ROOT, "bench", "out")
TARGETS = {"fanout": 1.0, "ingest": 1.3}  # max CPU/Mbit ratio rtmpgop / nginx
JOIN_TARGET_MS = 50.0


# ---- servers --------------------------------------------------------------------------
class Rtmpgop:
    """``python -m rtmpgop`` on a port it picks, pinned to ``cpu``; ``hls`` = the ``hls`` key."""

    def __init__(self, cpu: int | None = None, hls: str = "always",
                 entry: tuple[str, ...] = ("-m", "rtmpgop")) -> None:
        self.cpu = cpu
        self.hls = hls
        self.entry = entry
        self.dir = tempfile.mkdtemp(prefix="rtmpgop-bench-")
        self.proc: subprocess.Popen | None = None
        self.port = 0

    @property
    def pid(self) -> int:
        return self.proc.pid

    def start(self) -> Rtmpgop:
        cpu = self.cpu
        self._out = open(os.path.join(self.dir, "stdout"), "w+b")
        self._err = open(os.path.join(self.dir, "stderr"), "w+b")
        cmd = [sys.executable, *self.entry, "--host", "127.0.0.1", "--rtmp-port", "0",
               "--rtsp-port", "0", "--http-port", "0", "--ws-port", "0", "--log-level", "warning"]
        # every listener on a free port, or runs collide with other rtmpgops on the machine
        env = dict(os.environ, RTMPGOP_RTSP_UDP_RTP_PORT="0", RTMPGOP_HLS=self.hls)
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=self._out, stderr=self._err, stdin=subprocess.DEVNULL,
            preexec_fn=(lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None)
        end = time.monotonic() + READY_DEADLINE
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"rtmpgop exited with {self.proc.returncode}: {self.stderr()[-2000:]}")
            with open(self._out.name, "rb") as f:
                m = re.search(rb"rtmpgop ready .*?rtmp=(\d+)", f.read())
            if m:
                self.port = int(m.group(1))
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"rtmpgop not ready within {READY_DEADLINE} s: {self.stderr()[-2000:]}")

    def stderr(self) -> str:
        with open(self._err.name, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self) -> str:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        err = self.stderr()
        self._out.close()
        self._err.close()
        for f in glob.glob(os.path.join(self.dir, "*")):
            os.unlink(f)
        os.rmdir(self.dir)
        return err


def start_server(name: str, cpu: int | None):
    if name == "rtmpgop":
        return Rtmpgop(cpu).start()
    if name == "rtmpgop-nohls":
        return Rtmpgop(cpu, hls="off").start()
    if name == "floor":
        floor = os.path.join(ROOT, "bench", "rtmp_floor.py")
        return Rtmpgop(cpu, hls="off", entry=(floor,)).start()
    if name == "nginx":
        return nginx_rtmp.NginxRtmp(cpu=cpu).start()
    raise ValueError(name)


# ---- /proc ----------------------------------------------------------------------------
def sched_seconds(pid: int) -> tuple[float, float]:
    """(on-CPU, runnable-but-waiting) seconds summed over the threads of ``pid``, from
    /proc/PID/task/*/schedstat (ns). The wait share shows how much other work on a shared
    machine held the process off its core."""
    run = wait = 0
    for p in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        try:
            with open(p) as f:
                a, b, _ = f.read().split()
            run, wait = run + int(a), wait + int(b)
        except (OSError, ValueError):
            pass
    return run / 1e9, wait / 1e9


def cpu_seconds(pid: int) -> float:
    """On-CPU seconds of every thread of ``pid`` (schedstat, ns precision; else utime+stime)."""
    run, _ = sched_seconds(pid)
    if run:
        return run
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def user_sys_ticks(pid: int) -> tuple[int, int]:
    """(utime, stime) of ``pid``, all threads, in clock ticks (/proc/PID/stat): the kernel's
    share of the server's CPU (socket work; on loopback a send also runs the receiver's TCP
    path) is what no user-space speed-up touches."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]), int(fields[12])


def busy_cores(seconds: float = 0.5) -> float:
    """Cores' worth of CPU the whole machine used over ``seconds`` (/proc/stat)."""
    def snap():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]  # total, idle + iowait
    t0, i0 = snap()
    time.sleep(seconds)
    t1, i1 = snap()
    return (os.cpu_count() or 1) * (1 - (i1 - i0) / max(1, t1 - t0))


def settle(limit: float, deadline: float) -> float:
    """Wait (up to ``deadline`` s) until other work uses less than ``limit`` cores; returns the
    last measured background load."""
    end = time.monotonic() + deadline
    while True:
        b = busy_cores()
        if b < limit or time.monotonic() > end:
            return b


def status_kb(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


# ---- one run --------------------------------------------------------------------------
def spec_for(scenario: str, port: int, args) -> LoadSpec:
    kind, n = scenario.split("-")
    n = int(n)
    common = dict(window=args.window, warmup=args.warmup, join_deadline=args.join_deadline)
    if kind == "fanout":
        return LoadSpec("127.0.0.1", port, publishers=1, players=n, **common)
    if kind == "ingest":
        return LoadSpec("127.0.0.1", port, publishers=n, players=0,
                        probe_players=n if args.ingest_players else 0, **common)
    raise ValueError(scenario)


def run_one(scenario: str, server: str, media, args) -> dict:
    other_load = settle(args.settle, args.settle_deadline)
    srv = start_server(server, args.server_cpu)
    pid = srv.pid
    marks: dict[str, float] = {}
    rss_peak = [0]

    prof = None
    prof_path = None

    def start():
        nonlocal prof, prof_path
        marks["cpu0"], marks["t0"] = cpu_seconds(pid), time.monotonic()
        marks["us0"] = user_sys_ticks(pid)
        marks["wait0"] = sched_seconds(pid)[1]
        marks["lgwait0"] = sched_seconds(os.getpid())[1]
        if args.profile and server.startswith("rtmpgop"):
            os.makedirs(args.profile, exist_ok=True)
            prof_path = os.path.join(args.profile, f"{scenario}-{server}.collapsed")
            prof = start_py_spy(pid, args.window, prof_path)

    def end():
        marks["cpu1"], marks["t1"] = cpu_seconds(pid), time.monotonic()
        marks["us1"] = user_sys_ticks(pid)
        marks["wait1"] = sched_seconds(pid)[1]
        marks["lgwait1"] = sched_seconds(os.getpid())[1]

    def sample():
        rss_peak[0] = max(rss_peak[0], status_kb(pid, "VmRSS"))

    err = ""
    try:
        spec = spec_for(scenario, srv.port, args)
        res: LoadResult = asyncio.run(asyncio.wait_for(
            run_load(spec, media, (start, end), sample),
            spec.warmup + spec.join_deadline + spec.window + 60), debug=False)
        sample()
        rss_end, hwm = status_kb(pid, "VmRSS"), status_kb(pid, "VmHWM")
    finally:
        if prof is not None:
            wait_py_spy(prof)
        err = srv.stop()
    kind = scenario.split("-")[0]
    out = res.to_dict()
    if prof_path and os.path.exists(prof_path):
        out["profile"] = prof_path
        print(profile_summary(prof_path), flush=True)
    out.update(scenario=scenario, server=server, kind=kind, rss_peak_kb=rss_peak[0],
               rss_end_kb=rss_end, vmhwm_kb=hwm)
    if "cpu1" in marks:
        cpu = marks["cpu1"] - marks["cpu0"]
        wall = marks["t1"] - marks["t0"]
        mbit = (res.delivered_bytes if kind == "fanout" else res.ingest_bytes) * 8 / 1e6
        out.update(server_wait_pct=100 * (marks["wait1"] - marks["wait0"]) / wall,
                   loadgen_wait_pct=100 * (marks["lgwait1"] - marks["lgwait0"]) / wall)
        du, ds = (b - a for a, b in zip(marks["us0"], marks["us1"]))
        out["server_kernel_pct"] = 100 * ds / (du + ds) if du + ds else None
        out.update(server_cpu_s=cpu, server_cpu_pct=100 * cpu / wall, mbit=mbit,
                   mbit_s=mbit / wall, cpu_ms_per_mbit=1000 * cpu / mbit if mbit else None)
    tail = [ln for ln in err.splitlines() if ln.strip()]
    out["server_log_tail"] = tail[-15:]
    out["server_log_lines"] = len(tail)
    out["other_load_cores"] = other_load
    bad = [ln for ln in tail if "Traceback" in ln or " ERROR " in ln or "[emerg]" in ln or "[alert]" in ln]
    if bad:
        out["errors"].append(f"server log: {len(bad)} error lines, first: {bad[0][:100]}")
    return out


def profile_summary(path: str, top: int = 25) -> str:
    """Self and inclusive sample shares per function from py-spy's collapsed stacks."""
    self_n: dict[str, int] = {}
    incl: dict[str, int] = {}
    total = 0
    with open(path) as f:
        for line in f:
            stack, _, n = line.rstrip().rpartition(" ")
            if not stack:
                continue
            n = int(n)
            total += n
            frames = [re.sub(r":\d+\)$", ")", fr) for fr in stack.split(";")]
            self_n[frames[-1]] = self_n.get(frames[-1], 0) + n
            for fr in set(frames):
                incl[fr] = incl.get(fr, 0) + n
    if not total:
        return f"{path}: no samples"
    out = [f"profile {path}: {total} samples", "  self %  incl %  function"]
    for fr, n in sorted(self_n.items(), key=lambda x: -x[1])[:top]:
        out.append(f"  {100 * n / total:6.1f}  {100 * incl[fr] / total:6.1f}  {fr}")
    return "\n".join(out)


# ---- tables ---------------------------------------------------------------------------
def runs(scenario: str, server: str) -> bool:
    """Whether ``server`` runs ``scenario`` (the floor has no players to serve)."""
    return not (server == "floor" and scenario.startswith("fanout"))


def _f(v, fmt="{:.1f}", none="–"):
    return none if v is None else fmt.format(v)


def median_runs(results: list[dict]) -> tuple[dict, dict]:
    """Per (scenario, server): the run with the median CPU/Mbit, and (min, max) CPU/Mbit."""
    groups: dict[tuple, list[dict]] = {}
    for r in results:
        groups.setdefault((r["scenario"], r["server"]), []).append(r)
    by, span = {}, {}
    for k, rs in groups.items():
        ok = sorted((r for r in rs if r.get("cpu_ms_per_mbit")), key=lambda r: r["cpu_ms_per_mbit"])
        by[k] = ok[(len(ok) - 1) // 2] if ok else rs[0]
        if len(ok) > 1:
            span[k] = (ok[0]["cpu_ms_per_mbit"], ok[-1]["cpu_ms_per_mbit"])
    return by, span


def tables(results: list[dict], scenarios: list[str], servers: list[str]) -> str:
    """Summary (median run per scenario and server, CPU range when repeated) and detail (every
    run) tables in Markdown."""
    by, span = median_runs(results)
    n = "nginx"
    variants = [sv for sv in servers if sv != n] or [None]
    short = {"rtmpgop": "default (LL-HLS on)", "rtmpgop-nohls": "hls = off (as nginx)",
             "floor": "stack floor: read and discard"}
    lines = ["| scenario | rtmpgop config | Mbit/s | CPU ms/Mbit rtmpgop | CPU ms/Mbit nginx "
             "| ratio (target) | RSS MB rtmpgop / nginx | join p50/p95 ms rtmpgop "
             "| join p50/p95 ms nginx | exact % rtmpgop / nginx |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for sc, g in ((sc, g) for sc in scenarios for g in variants if g is None or runs(sc, g)):
        a, b = by.get((sc, g)), by.get((sc, n))
        kind = sc.split("-")[0]
        ratio = None
        if a and b and a.get("cpu_ms_per_mbit") and b.get("cpu_ms_per_mbit"):
            ratio = a["cpu_ms_per_mbit"] / b["cpu_ms_per_mbit"]
        tgt = TARGETS[kind]
        ok = "" if ratio is None else (" ✓" if ratio <= tgt else " ✗")
        mbit = (a or b or {}).get("mbit_s")

        def join(r):
            return "–" if not r or r.get("join_p50_ms") is None else \
                f"{r['join_p50_ms']:.0f} / {r['join_p95_ms']:.0f}"

        def rss(r):
            return _f(r["rss_peak_kb"] / 1024 if r and "rss_peak_kb" in r else None, "{:.0f}")

        def exact(r):
            return _f(r and r.get("exact_pct"), "{:.0f}")

        def cpu(r, sv):
            c = _f(r and r.get("cpu_ms_per_mbit"), "{:.2f}")
            lo_hi = span.get((sc, sv))
            return c + (f" ({lo_hi[0]:.2f}-{lo_hi[1]:.2f})" if lo_hi else "")

        lines.append(
            f"| {sc} | {short.get(g, g or '–')} | {_f(mbit, '{:.0f}')} | {cpu(a, g)} | {cpu(b, n)} "
            f"| {_f(ratio, '{:.2f}')} (≤ {tgt}){ok} | {rss(a)} / {rss(b)} | {join(a)} | {join(b)} "
            f"| {exact(a)} / {exact(b)} |")
    lines += ["", "| scenario | server | Mbit/s | server CPU % | kernel share % | CPU ms/Mbit | RSS peak / end MB "
              "| join p50/p95 ms | latency p50/p95 ms | players ok / exact | missing / dups "
              "| loadgen CPU % | publisher max lag ms | other load (cores) "
              "| run-queue wait % server / loadgen | errors |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for sc in scenarios:
        for r in (r for sv in servers for r in results if r["scenario"] == sc and r["server"] == sv):
            sv = r["server"] + (f" #{r['rep'] + 1}" if r.get("rep") else "")
            if "error" in r and "window_s" not in r:
                lines.append(f"| {sc} | {sv} | | | | | | | | | | | | | | {r['error'][:120]} |")
                continue
            errs = "; ".join(sorted(set(e[:80] for e in r["errors"])))[:200] or "–"
            lines.append(
                f"| {sc} | {sv} | {_f(r.get('mbit_s'), '{:.0f}')} | {_f(r.get('server_cpu_pct'))} "
                f"| {_f(r.get('server_kernel_pct'), '{:.0f}')} "
                f"| {_f(r.get('cpu_ms_per_mbit'), '{:.2f}')} "
                f"| {r['rss_peak_kb'] / 1024:.0f} / {r['rss_end_kb'] / 1024:.0f} "
                f"| {_f(r.get('join_p50_ms'), '{:.0f}')} / {_f(r.get('join_p95_ms'), '{:.0f}')} "
                f"| {_f(r.get('latency_p50_ms'))} / {_f(r.get('latency_p95_ms'))} "
                f"| {r['players_ok']} / {r['players_exact']} of {r['players_checked']} "
                f"| {r['missing']} / {r['dups']} | {100 * r['loadgen_cpu']:.0f} "
                f"| {r['publisher_max_lag_ms']:.0f} | {r['other_load_cores']:.2f} "
                f"| {_f(r.get('server_wait_pct'))} / {_f(r.get('loadgen_wait_pct'))} | {errs} |")
    return "\n".join(lines)


def machine_note(args) -> str:
    load = os.getloadavg()
    return (f"{platform.node()}: {os.cpu_count()} cores ({platform.processor() or platform.machine()}), "
            f"Linux {platform.release()}, Python {platform.python_version()}, "
            f"{subprocess.run(['nginx', '-v'], capture_output=True, text=True).stderr.strip()}; "
            f"server pinned to CPU {args.server_cpu}, load generator to CPU {args.loadgen_cpu}, "
            f"both at nice {args.nice}; "
            f"load average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
            f"(the machine is shared with other work)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="5 s windows (sanity run)")
    p.add_argument("--scenarios", nargs="+", default=SCENARIOS, choices=SCENARIOS)
    p.add_argument("--servers", nargs="+", default=SERVERS, choices=SERVERS + EXTRA_SERVERS)
    p.add_argument("--repeat", type=int, default=1,
                   help="run everything N times (server order flips each time); the summary "
                        "shows the median run by CPU/Mbit and the CPU range")
    p.add_argument("--window", type=float, help="measurement window, s (default 15, quick 5)")
    p.add_argument("--warmup", type=float, default=1.5, help="publishing before players join, s")
    p.add_argument("--join-deadline", type=float, default=5.0)
    p.add_argument("--ingest-players", action="store_true",
                   help="ingest scenarios: one checking player per publisher")
    p.add_argument("--nice", type=int, default=-10,
                   help="scheduling niceness of the load generator and the servers (inherited); "
                        "negative needs root, ignored otherwise. Keeps other work on a shared "
                        "machine from delaying them (see the run-queue wait column)")
    p.add_argument("--settle", type=float, default=0.3, metavar="CORES",
                   help="before each run, wait until other work uses fewer cores than this ...")
    p.add_argument("--settle-deadline", type=float, default=60.0, metavar="S",
                   help="... but at most this long (the load measured is in the detail table)")
    p.add_argument("--server-cpu", type=int, default=0)
    p.add_argument("--loadgen-cpu", type=int, default=1)
    p.add_argument("--profile", metavar="DIR",
                   help="py-spy the rtmpgop process during each window (collapsed stacks in DIR; "
                        "skews its CPU numbers: use for investigation only)")
    p.add_argument("--out", default=os.path.join(OUT_DIR, "rtmp_bench"),
                   help="output path without extension (.json and .md are written)")
    args = p.parse_args(argv)
    if args.window is None:
        args.window = 5.0 if args.quick else 15.0
    if args.profile and not os.path.exists(os.path.join(os.path.dirname(sys.executable), "py-spy")):
        p.error("--profile needs py-spy next to this Python: .venv/bin/pip install py-spy")
    setup_process(args)
    command = " ".join(["python bench/rtmp_bench.py", *(argv if argv is not None else sys.argv[1:])])
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or "?"
    note = machine_note(args)
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    media = load_media()
    print(f"media: {media.width}x{media.height} {media.fps} fps, GoP {media.gop}, "
          f"video {media.video_bitrate / 1e6:.2f} Mbit/s + audio {media.audio_bitrate / 1e3:.0f} kbit/s",
          flush=True)
    results = []
    for rep, (i, sc) in ((rep, x) for rep in range(args.repeat) for x in enumerate(args.scenarios)):
        k = (i + rep) % len(args.servers)  # rotate which server goes first
        order = args.servers[k:] + args.servers[:k]
        for sv in order:
            if not runs(sc, sv):
                continue
            t = time.monotonic()
            try:
                r = run_one(sc, sv, media, args)
            except Exception as e:  # one broken run must not lose the others
                r = {"scenario": sc, "server": sv, "error": repr(e)}
            r["rep"] = rep
            results.append(r)
            print(f"{sc:>11} {sv:>8}: " + (
                f"{_f(r.get('mbit_s'), '{:.0f}')} Mbit/s, CPU {_f(r.get('server_cpu_pct'))} %, "
                f"{_f(r.get('cpu_ms_per_mbit'), '{:.2f}')} ms/Mbit, exact {_f(r.get('exact_pct'), '{:.0f}')} %, "
                f"join p50 {_f(r.get('join_p50_ms'), '{:.0f}')} ms, errors {len(r.get('errors', []))}"
                if "error" not in r else r["error"]) + f" ({time.monotonic() - t:.0f} s)", flush=True)
    table = tables(results, args.scenarios, args.servers)
    print()
    print(table)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out + ".json", "w") as f:
        json.dump({"command": command, "date": started, "commit": commit, "machine": note,
                   "media": {"width": media.width, "height": media.height, "fps": media.fps,
                             "gop": media.gop, "video_bps": media.video_bitrate,
                             "audio_bps": media.audio_bitrate},
                   "window_s": args.window, "results": results}, f, indent=1)
    with open(args.out + ".md", "w") as f:
        f.write(f"Command: `{command}`  \nDate: {started}, commit {commit}  \nMachine: {note}\n\n"
                f"{table}\n")
    print(f"\nwrote {args.out}.json and {args.out}.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
