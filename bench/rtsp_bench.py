"""RTSP benchmark: rtmpgop's RTSP ingest and play against its own RTMP ingest and play of the
same stream, in the same run.

    python bench/rtsp_bench.py [--quick] [--scenarios ingest-1 fanout-200 ...] [--repeat N]

Same method as bench/rtmp_bench.py (whose server runner, /proc readers and load generator it
reuses): each (scenario, protocol) run starts a fresh ``python -m rtmpgop`` pinned to one core,
the load generator (asyncio on uvloop) pinned to the other; the protocols alternate which goes
first per scenario. The load generator publishes the same cached ~5 Mbit/s H.264 + AAC loop,
each video frame stamped (SEI), over RTMP (bench/loadgen/clients.py) or RTSP with TCP
interleaved transport (bench/loadgen/rtsp.py), and plays it back over the same protocol.

Scenarios: ``ingest-N``: N publishers, no players; ``fanout-N``: one publisher, N players.
Reported: server CPU per Mbit of media payload received from publishers (ingest) or delivered
to players (fan-out; RTMP counts FLV tag bodies, RTSP RTP payloads), RTSP/RTMP ratio against
the target (<= 1.5), exactness (every stamped frame once and in order, plus no RTP sequence gap
for RTSP), join time and RSS. ``--repeat N`` runs every scenario N times (rounds alternate
which protocol goes first): the table then gives the median ratio of the rounds (each round's
RTSP run over the RTMP run next to it in time, so machine swings cancel) with their range,
and the median run of each protocol for the other columns. Writes bench/out/rtsp_bench.json
and .md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import re
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from bench.common import setup_process, start_py_spy, wait_py_spy  # noqa: E402
from bench.loadgen.clients import Player, Publisher  # noqa: E402
from bench.loadgen.media import load_media  # noqa: E402
from bench.loadgen.rtsp import RtspPlayer, RtspPublisher  # noqa: E402
from bench.loadgen.run import LoadSpec, run_load  # noqa: E402
from bench.rtmp_bench import (Rtmpgop, _f, cpu_seconds, machine_note,  # noqa: E402
                              profile_summary, sched_seconds, settle, status_kb)

SCENARIOS = ["ingest-1", "ingest-10", "fanout-1", "fanout-200"]
PROTOCOLS = ["rtmp", "rtsp"]
TARGET = 1.5  # max CPU/Mbit ratio RTSP / RTMP
OUT_DIR = os.path.join(ROOT, "bench", "out")
CLIENTS = {"rtmp": (Publisher, Player), "rtsp": (RtspPublisher, RtspPlayer)}


class RtmpgopBoth(Rtmpgop):
    """``python -m rtmpgop`` with its RTSP port read too (UDP pair on ephemeral ports)."""

    def start(self) -> RtmpgopBoth:
        os.environ["RTMPGOP_RTSP_UDP_RTP_PORT"] = "0"
        super().start()
        with open(self._out.name, "rb") as f:
            self.rtsp_port = int(re.search(rb"rtsp=(\d+)", f.read()).group(1))
        return self


def run_one(scenario: str, proto: str, media, args) -> dict:
    other_load = settle(args.settle, args.settle_deadline)
    srv = RtmpgopBoth(args.server_cpu).start()
    pid = srv.pid
    marks: dict[str, float] = {}
    rss_peak = [0]

    prof = prof_path = None

    def start():
        nonlocal prof, prof_path
        marks["cpu0"], marks["t0"] = cpu_seconds(pid), time.monotonic()
        marks["wait0"] = sched_seconds(pid)[1]
        if args.profile:
            os.makedirs(args.profile, exist_ok=True)
            prof_path = os.path.join(args.profile, f"{scenario}-{proto}.collapsed")
            prof = start_py_spy(pid, args.window, prof_path)

    def end():
        marks["cpu1"], marks["t1"] = cpu_seconds(pid), time.monotonic()
        marks["wait1"] = sched_seconds(pid)[1]

    def sample():
        rss_peak[0] = max(rss_peak[0], status_kb(pid, "VmRSS"))

    kind, n = scenario.split("-")
    n = int(n)
    port = srv.port if proto == "rtmp" else srv.rtsp_port
    common = dict(window=args.window, warmup=args.warmup, join_deadline=args.join_deadline)
    if kind == "fanout":
        spec = LoadSpec("127.0.0.1", port, publishers=1, players=n, **common)
    else:
        spec = LoadSpec("127.0.0.1", port, publishers=n, players=0,
                        probe_players=n if args.ingest_players else 0, **common)
    pub_cls, play_cls = CLIENTS[proto]
    try:
        res = asyncio.run(asyncio.wait_for(
            run_load(spec, media, (start, end), sample, publisher_cls=pub_cls,
                     player_cls=play_cls, scheme=proto),
            spec.warmup + spec.join_deadline + spec.window + 60))
        sample()
    finally:
        if prof is not None:
            wait_py_spy(prof)
        err = srv.stop()
    if prof_path and os.path.exists(prof_path):
        print(profile_summary(prof_path), flush=True)
    out = res.to_dict()
    out.update(scenario=scenario, protocol=proto, kind=kind, rss_peak_kb=rss_peak[0],
               other_load_cores=other_load)
    if "cpu1" in marks:
        cpu = marks["cpu1"] - marks["cpu0"]
        wall = marks["t1"] - marks["t0"]
        mbit = (res.delivered_bytes if kind == "fanout" else res.ingest_bytes) * 8 / 1e6
        out.update(server_cpu_s=cpu, server_cpu_pct=100 * cpu / wall, mbit=mbit,
                   mbit_s=mbit / wall, cpu_ms_per_mbit=1000 * cpu / mbit if mbit else None,
                   server_wait_pct=100 * (marks["wait1"] - marks["wait0"]) / wall)
    tail = [ln for ln in err.splitlines() if ln.strip()]
    out["server_log_tail"] = tail[-15:]
    bad = [ln for ln in tail if "Traceback" in ln or " ERROR " in ln]
    if bad:
        out["errors"].append(f"server log: {len(bad)} error lines, first: {bad[0][:100]}")
    return out


def _median_run(runs: list[dict]) -> dict | None:
    ok = sorted((r for r in runs if r.get("cpu_ms_per_mbit")), key=lambda r: r["cpu_ms_per_mbit"])
    return ok[(len(ok) - 1) // 2] if ok else (runs[0] if runs else None)


def round_ratios(results: list[dict], scenario: str) -> list[float]:
    """RTSP/RTMP CPU per Mbit of each round of ``scenario`` (runs paired by ``round``)."""
    by = {(r.get("round", 0), r["protocol"]): r for r in results if r["scenario"] == scenario}
    out = []
    for rnd in sorted({k[0] for k in by}):
        a, b = by.get((rnd, "rtmp")), by.get((rnd, "rtsp"))
        if a and b and a.get("cpu_ms_per_mbit") and b.get("cpu_ms_per_mbit"):
            out.append(b["cpu_ms_per_mbit"] / a["cpu_ms_per_mbit"])
    return out


def tables(results: list[dict], scenarios: list[str]) -> str:
    by = {}
    for sc in scenarios:
        for proto in PROTOCOLS:
            by[(sc, proto)] = _median_run([r for r in results
                                           if r["scenario"] == sc and r["protocol"] == proto])
    lines = ["| scenario | Mbit/s | CPU ms/Mbit RTMP | CPU ms/Mbit RTSP | RTSP/RTMP (target) "
             "| server CPU % RTMP / RTSP | RSS MB RTMP / RTSP | join p50/p95 ms RTMP | "
             "join p50/p95 ms RTSP | exact % RTMP / RTSP |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]

    def join(r):
        return "–" if not r or r.get("join_p50_ms") is None else \
            f"{r['join_p50_ms']:.0f} / {r['join_p95_ms']:.0f}"

    for sc in scenarios:
        a, b = by.get((sc, "rtmp")), by.get((sc, "rtsp"))
        rounds = sorted(round_ratios(results, sc))
        ratio = rounds[(len(rounds) - 1) // 2] if rounds else None
        ok = "" if ratio is None else (" ✓" if ratio <= TARGET else " ✗")
        spread = f" ({rounds[0]:.2f}-{rounds[-1]:.2f})" if len(rounds) > 1 else ""
        mbit = (a or b or {}).get("mbit_s")
        lines.append(
            f"| {sc} | {_f(mbit, '{:.0f}')} | {_f(a and a.get('cpu_ms_per_mbit'), '{:.2f}')} "
            f"| {_f(b and b.get('cpu_ms_per_mbit'), '{:.2f}')} | {_f(ratio, '{:.2f}')}{spread} "
            f"(≤ {TARGET}){ok} | {_f(a and a.get('server_cpu_pct'), '{:.0f}')} / "
            f"{_f(b and b.get('server_cpu_pct'), '{:.0f}')} "
            f"| {_f(a and a['rss_peak_kb'] / 1024, '{:.0f}')} / "
            f"{_f(b and b['rss_peak_kb'] / 1024, '{:.0f}')} | {join(a)} | {join(b)} "
            f"| {_f(a and a.get('exact_pct'), '{:.0f}')} / {_f(b and b.get('exact_pct'), '{:.0f}')} |")
    errs = []
    for r in results:
        if "error" in r:
            errs.append(f"- {r['scenario']} {r['protocol']}: {r['error'][:200]}")
        elif r.get("errors"):
            errs.append(f"- {r['scenario']} {r['protocol']}: "
                        + "; ".join(sorted(set(e[:100] for e in r["errors"]))[:3]))
    if errs:
        lines += ["", "Errors:", *errs]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="5 s windows (sanity run)")
    p.add_argument("--scenarios", nargs="+", default=SCENARIOS)
    p.add_argument("--window", type=float, help="measurement window, s (default 15, quick 5)")
    p.add_argument("--warmup", type=float, default=1.5)
    p.add_argument("--join-deadline", type=float, default=5.0)
    p.add_argument("--nice", type=int, default=-10)
    p.add_argument("--settle", type=float, default=0.3, metavar="CORES")
    p.add_argument("--settle-deadline", type=float, default=60.0, metavar="S")
    p.add_argument("--server-cpu", type=int, default=0)
    p.add_argument("--loadgen-cpu", type=int, default=1)
    p.add_argument("--ingest-players", action="store_true",
                   help="ingest scenarios: one checking player per publisher (its play cost "
                        "then counts as ingest CPU)")
    p.add_argument("--profile", metavar="DIR",
                   help="py-spy the server during each window (skews CPU: investigation only)")
    p.add_argument("--repeat", type=int, default=1,
                   help="run everything N times; the table takes medians (module docstring)")
    p.add_argument("--out", default=os.path.join(OUT_DIR, "rtsp_bench"))
    args = p.parse_args(argv)
    if args.window is None:
        args.window = 5.0 if args.quick else 15.0
    setup_process(args)
    command = "python bench/rtsp_bench.py " + " ".join(argv if argv is not None else sys.argv[1:])
    note = machine_note(args)
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    media = load_media()
    print(f"media: {media.width}x{media.height} {media.fps} fps, GoP {media.gop}, "
          f"video {media.video_bitrate / 1e6:.2f} Mbit/s", flush=True)
    results = []
    for rnd, i, sc in ((rnd, i, sc) for rnd in range(args.repeat)
                       for i, sc in enumerate(args.scenarios)):
        order = PROTOCOLS if (i + rnd) % 2 == 0 else list(reversed(PROTOCOLS))
        for proto in order:
            t = time.monotonic()
            try:
                r = run_one(sc, proto, media, args)
            except Exception as e:  # one broken run must not lose the others
                r = {"scenario": sc, "protocol": proto, "error": repr(e)}
            r["round"] = rnd
            results.append(r)
            print(f"{sc:>11} {proto}" + (f" #{rnd + 1}" if args.repeat > 1 else "") + ": " + (
                f"{_f(r.get('mbit_s'), '{:.0f}')} Mbit/s, CPU {_f(r.get('server_cpu_pct'))} %, "
                f"{_f(r.get('cpu_ms_per_mbit'), '{:.2f}')} ms/Mbit, exact "
                f"{_f(r.get('exact_pct'), '{:.0f}')} %, errors {len(r.get('errors', []))}"
                if "error" not in r else r["error"]) + f" ({time.monotonic() - t:.0f} s)",
                flush=True)
    table = tables(results, args.scenarios)
    print()
    print(table)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out + ".json", "w") as f:
        json.dump({"command": command, "date": started, "machine": note,
                   "window_s": args.window, "results": results}, f, indent=1)
    with open(args.out + ".md", "w") as f:
        f.write(f"Command: `{command}`  \nDate: {started}  \nMachine: {note}\n\n{table}\n")
    print(f"\nwrote {args.out}.json and {args.out}.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
