"""LL-HLS benchmark: many clients in blocking playlist reload on one live stream.

    python bench/llhls_bench.py [--clients 500] [--seconds 10] [--runs 3] [--gc freeze|default|off] [--quick]

A child process (pinned to ``--server-cpu``) runs the hub, the LL-HLS service and the aiohttp
front end on uvloop, with a paced publisher pushing a generated 30 fps H.264 (1 s GoPs) + AAC
stream into the hub in real time. This process (pinned to ``--client-cpu``) runs N aiohttp
clients that behave like hls.js in low-latency mode: each asks for the preload-hinted part with
``_HLS_msn``/``_HLS_part`` and asks again as soon as the answer arrives.

Measured over the window, after every client has had its first answer:
- server CPU (utime+stime of the child, % of one core) and client CPU;
- answer delay, server side: from the moment a part completes (the muxer's change callback) to
  the response of each request that was waiting for it being written (p50/p99/max);
- fan-out spread, client side: for each part, receive time of each client that was already
  waiting minus the first client's (includes this process's own lag in reading 500 answers);
- publish-to-part: from the push of a part's last video frame (and from the push of the frame
  that closes it) into the hub to the part being servable.

Prints a table; writes bench/out/llhls_bench.json.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import multiprocessing as mp
import os
import platform
import re
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

OUT_DIR = os.path.join(ROOT, "bench", "out")
PATH = "live/bench"
TARGET_P99_MS = 20.0
HINT = re.compile(rb'PRELOAD-HINT:TYPE=PART,URI="seg(\d+)\.p(\d+)\.m4s"')


def cpu_seconds(pid: int | str = "self") -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


# ---------------------------------------------------------------- server (child process)

def serve(conn, cpu: int | None, part_target: float, gc_mode: str) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    import uvloop

    uvloop.run(_serve(conn, part_target, gc_mode))


async def _serve(conn, part_target: float, gc_mode: str) -> None:
    from fixtures.media import encode_audio, encode_video
    from rtmpgop.channels import Hub
    from rtmpgop.codecs import make_config
    from rtmpgop.config import Config
    from rtmpgop.io import hls_http, http_server
    from rtmpgop.media import VIDEO_CLOCK, AccessUnit, Codec, Track

    loop = asyncio.get_running_loop()
    cfg = Config(hls_part_target=part_target, hls_target_duration=2)
    vs = encode_video("h264", frames=240, fps=30, gop=30, bframes=False, width=640, height=360)
    as_ = encode_audio("aac", seconds=8.0)
    v = Track(0, make_config(Codec.H264, vs.config), VIDEO_CLOCK)
    a = Track(1, make_config(Codec.AAC, as_.config), 48000)
    items = sorted([(p.dts / VIDEO_CLOCK, AccessUnit(0, p.dts, p.pts, p.keyframe, p.data)) for p in vs.packets]
                   + [(k * 1024 / 48000, AccessUnit(1, k * 1024, k * 1024, True, p.data))
                      for k, p in enumerate(as_.packets[:375])], key=lambda x: x[0])

    hub = Hub()
    svc = hls_http.LLHLSService(hub, cfg)
    answer_delays: list[float] = []
    state = {"measure": False}
    push_times: list[tuple[int, float]] = []  # (video dts, loop time), ascending
    part_lat: list[tuple[float, float]] = []  # (last frame -> servable, closing frame -> servable)
    seen: set[tuple[int, int]] = set()

    orig_changed = svc._changed

    clock = time.perf_counter  # uvloop's loop.time() has only millisecond resolution

    def changed(cm):
        now = clock()
        orig_changed(cm)
        for seg in cm.muxer.segments:
            end = seg.start
            for p in seg.parts:
                end += p.duration
                key = (seg.msn, p.index)
                if key in seen:
                    continue
                seen.add(key)
                end_ticks = round(end * VIDEO_CLOCK)
                i = bisect.bisect_left(push_times, (end_ticks, -1.0))
                if state["measure"] and 0 < i < len(push_times) and push_times[i][0] == end_ticks:
                    part_lat.append((now - push_times[i - 1][1], now - push_times[i][1]))
    svc._changed = changed
    svc.manager.on_change = changed

    lst = await http_server.start(hub, cfg, "127.0.0.1", 0, setups=[hls_http.setup(svc)])

    async def publish():
        ch = hub.publish(PATH, "bench")
        ch.set_tracks([v, a])
        t0 = loop.time()
        cycle = 0
        while True:
            for t, au in items:
                delay = t0 + cycle * 8 + t - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                off = cycle * 8 * (VIDEO_CLOCK if au.track == 0 else 48000)
                ch.push(AccessUnit(au.track, au.dts + off, au.pts + off, au.keyframe, au.payload))
                if au.track == 0:
                    push_times.append((au.dts + off, clock()))
                    if len(push_times) > 600:
                        del push_times[:300]
            cycle += 1

    pub = asyncio.ensure_future(publish())
    import gc
    if gc_mode == "freeze":  # what rtmpgop.app.serve does after start-up
        gc.freeze()
    elif gc_mode == "off":
        gc.disable()
    gc_pauses: list[tuple[int, float, int]] = []  # (generation, seconds, collected)
    gc_t = [0.0]

    def on_gc(phase, info):
        if phase == "start":
            gc_t[0] = time.perf_counter()
        elif state["measure"]:
            gc_pauses.append((info["generation"], time.perf_counter() - gc_t[0], info["collected"]))
    gc.callbacks.append(on_gc)
    conn.send(lst.port)
    cmd = asyncio.Event()
    got: list[str] = []

    def reader():
        got.append(conn.recv())
        loop.call_soon_threadsafe(cmd.set)
    loop.run_in_executor(None, reader)
    while True:
        await cmd.wait()
        cmd.clear()
        what = got.pop()
        if what == "start":
            state["measure"] = True
            svc.answer_log = answer_delays
            fast0, answered0 = svc.fast_answers, svc.answered
            part_lat.clear()
            conn.send(("cpu", cpu_seconds()))
            loop.run_in_executor(None, reader)
        else:
            svc.answer_log = None
            conn.send({"cpu": cpu_seconds(), "answer_delays": answer_delays,
                       "fast": svc.fast_answers - fast0, "slow": svc.answered - answered0 - (svc.fast_answers - fast0),
                       "part_latency": part_lat, "gc": gc_pauses, "gc_objects": len(gc.get_objects()), "answered": svc.answered, "timeouts": svc.timeouts})
            break
    pub.cancel()
    await svc.close()
    await lst.close()


# ---------------------------------------------------------------- clients

class _State:
    def __init__(self) -> None:
        self.joined = 0
        self.answers = 0
        self.errors = 0
        self.measuring = False
        self.stop = False
        self.first_rx: dict[tuple[int, int], float] = {}
        self.spreads: list[float] = []


CONTENT_LENGTH = re.compile(rb"(?i)\r\ncontent-length: *(\d+)")


class RawClient(asyncio.Protocol):
    """One hls.js-like client on its own keep-alive connection, in plain HTTP/1.1 over a
    Protocol: a full aiohttp client costs ~4x more CPU per request, and on a 2-core machine the
    clients' own lag would then be most of what is measured."""

    def __init__(self, state: _State, target: str) -> None:
        self.state = state
        self.target = target
        self.buf = bytearray()
        self.key: tuple[int, int] | None = None
        self.asked = 0.0
        self.joined = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.get(None)

    def get(self, key: tuple[int, int] | None) -> None:
        q = "" if key is None else f"?_HLS_msn={key[0]}&_HLS_part={key[1]}"
        self.key, self.asked = key, time.time()
        self.transport.write(f"GET {self.target}{q} HTTP/1.1\r\nHost: bench\r\n"
                             "Accept-Encoding: identity\r\n\r\n".encode())

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            m = CONTENT_LENGTH.search(self.buf, 0, end + 2)
            n = int(m[1]) if m else 0
            if len(self.buf) < end + 4 + n:
                return
            status = int(self.buf[9:12])
            body = bytes(self.buf[end + 4:end + 4 + n])
            del self.buf[:end + 4 + n]
            self.answered(status, body)

    def answered(self, status: int, body: bytes) -> None:
        now = time.time()
        st = self.state
        if not self.joined:
            self.joined = True
            st.joined += 1
        if status != 200:
            st.errors += 1
        elif self.key is not None and st.measuring:
            st.answers += 1
            f = st.first_rx.setdefault(self.key, now)
            if self.asked < f or f == now:  # this client was waiting when the part came
                st.spreads.append(now - f)
        if st.stop:
            self.transport.close()
            return
        m = HINT.search(body)
        self.get((int(m[1]), int(m[2])) if m else None)


async def run_clients(port: int, n: int, warmup: float, seconds: float, conn,
                      profile: str | None = None, server_pid: int = 0) -> dict:
    import subprocess

    loop = asyncio.get_running_loop()
    st = _State()
    target = f"/{PATH}/media.m3u8"
    transports = []
    for _ in range(n):
        tr, _ = await loop.create_connection(lambda: RawClient(st, target), "127.0.0.1", port)
        transports.append(tr)
    t_join = time.monotonic()
    while st.joined < n and time.monotonic() - t_join < 30:
        await asyncio.sleep(0.1)
    await asyncio.sleep(warmup)
    conn.send("start")
    _, server_cpu0 = conn.recv()
    cpu0, t0 = cpu_seconds(), time.monotonic()
    prof = None
    if profile:
        prof = subprocess.Popen(
            [os.path.join(os.path.dirname(sys.executable), "py-spy"), "record", "--pid",
             str(server_pid), "--duration", str(int(seconds)), "--rate", "250", "--nonblocking",
             "--format", "raw", "--output", profile],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    st.measuring = True
    await asyncio.sleep(seconds)
    st.measuring = False
    wall = time.monotonic() - t0
    cpu1 = cpu_seconds()
    conn.send("stop")
    server = conn.recv()
    st.stop = True
    for tr in transports:
        tr.close()
    if prof is not None:
        prof.wait(timeout=30)
    return {"wall": wall, "client_cpu": (cpu1 - cpu0) / wall * 100,
            "server_cpu": (server["cpu"] - server_cpu0) / wall * 100,
            "spreads": st.spreads, "parts": len(st.first_rx), "joined": st.joined,
            "answers": st.answers, "errors": st.errors, "server": server}


def one_run(args, server_cpu, client_cpu) -> dict:
    """One server process + one client window; prints its table, returns its summary."""
    ncpu = os.cpu_count() or 1
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=serve, args=(child, server_cpu, args.part_target, args.gc), daemon=True)
    proc.start()
    port = parent.recv()
    if client_cpu is not None:
        os.sched_setaffinity(0, {client_cpu})
    import uvloop

    res = uvloop.run(run_clients(port, args.clients, args.warmup, args.seconds, parent,
                                 args.profile, proc.pid))
    proc.join(10)

    srv = res["server"]
    delays = [d * 1000 for d in srv["answer_delays"]]
    spreads = [s * 1000 for s in res["spreads"]]
    last = [a * 1000 for a, _ in srv["part_latency"]]
    closing = [b * 1000 for _, b in srv["part_latency"]]
    summary = {
        "clients": args.clients, "seconds": round(res["wall"], 2), "part_target": args.part_target,
        "gc": args.gc,
        "parts": res["parts"], "answers": res["answers"], "errors": res["errors"],
        "server_timeouts": srv["timeouts"], "fast_answers": srv["fast"], "slow_answers": srv["slow"],
        "answers_per_s": round(res["answers"] / res["wall"], 1),
        "server_cpu_pct": round(res["server_cpu"], 1), "client_cpu_pct": round(res["client_cpu"], 1),
        "answer_delay_ms": {"p50": round(pct(delays, 0.5), 2), "p99": round(pct(delays, 0.99), 2),
                            "max": round(max(delays, default=float("nan")), 2), "n": len(delays)},
        "client_spread_ms": {"p50": round(pct(spreads, 0.5), 2), "p99": round(pct(spreads, 0.99), 2),
                             "max": round(max(spreads, default=float("nan")), 2)},
        "publish_to_part_ms": {
            "last_frame_p50": round(pct(last, 0.5), 2), "last_frame_p99": round(pct(last, 0.99), 2),
            "closing_frame_p50": round(pct(closing, 0.5), 2),
            "closing_frame_p99": round(pct(closing, 0.99), 2), "n": len(last)},
        "target_p99_ms": TARGET_P99_MS,
        "machine": f"{platform.machine()} {ncpu} CPU, Python {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }
    d, s, p = summary["answer_delay_ms"], summary["client_spread_ms"], summary["publish_to_part_ms"]
    rows = [
        ("clients in blocking reload", f"{args.clients} (joined {res['joined']})"),
        ("answers / s (parts seen)", f"{summary['answers_per_s']} ({res['parts']})"),
        ("errors / server 503s", f"{res['errors']} / {srv['timeouts']}"),
        ("answers by fast path / ordinary path", f"{srv['fast']} / {srv['slow']}"),
        ("server CPU (% of one core)", f"{summary['server_cpu_pct']}"),
        ("client CPU (% of one core)", f"{summary['client_cpu_pct']}"),
        ("part complete -> answer prepared, p50/p99/max ms",
         f"{d['p50']} / {d['p99']} / {d['max']}  (target p99 <= {TARGET_P99_MS})"),
        ("client receive spread per part, p50/p99/max ms", f"{s['p50']} / {s['p99']} / {s['max']}"),
        ("publish last frame -> part servable, p50/p99 ms", f"{p['last_frame_p50']} / {p['last_frame_p99']}"),
        ("publish closing frame -> part servable, p50/p99 ms",
         f"{p['closing_frame_p50']} / {p['closing_frame_p99']}"),
    ]
    gcs = srv["gc"]
    for gen in (0, 1, 2):
        ms = [g[1] * 1000 for g in gcs if g[0] == gen]
        if ms:
            rows.append((f"GC gen{gen}: count, max ms", f"{len(ms)}, {max(ms):.1f}"))
    rows.append(("GC-tracked objects at the end", str(srv["gc_objects"])))
    summary["gc_pauses"] = {f"gen{gen}": {"count": sum(1 for g in gcs if g[0] == gen),
                                   "max_ms": round(max((g[1] * 1000 for g in gcs if g[0] == gen), default=0), 2)}
                     for gen in (0, 1, 2)}
    w = max(len(r[0]) for r in rows)
    load = os.getloadavg()[0]
    summary["load1"] = round(load, 2)
    print(f"\nLL-HLS blocking reload, {args.clients} clients, {summary['seconds']} s, "
          f"PART-TARGET {args.part_target} s, GC {args.gc}, {summary['machine']}, load {load:.2f}")
    for k, val in rows:
        print(f"  {k:<{w}}  {val}")
    if args.profile and os.path.exists(args.profile):
        from bench.rtmp_bench import profile_summary

        print(profile_summary(args.profile, top=30))
    return summary


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=500)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--part-target", type=float, default=0.2)
    ap.add_argument("--server-cpu", type=int, default=0)
    ap.add_argument("--client-cpu", type=int, default=1)
    ap.add_argument("--gc", choices=["freeze", "default", "off"], default="freeze",
                    help="server GC: gc.freeze() after start-up as rtmpgop.app.serve does "
                         "(default), CPython defaults, or disabled (to measure GC pauses)")
    ap.add_argument("--runs", type=int, default=1, help="repeat; the verdict is the median p99")
    ap.add_argument("--quick", action="store_true", help="100 clients, 4 s")
    ap.add_argument("--profile", metavar="FILE",
                    help="py-spy the server during the window (collapsed stacks to FILE)")
    args = ap.parse_args()
    if args.quick:
        args.clients, args.seconds, args.warmup = 100, 4.0, 2.0
    ncpu = os.cpu_count() or 1
    server_cpu = args.server_cpu if args.server_cpu < ncpu else None
    client_cpu = args.client_cpu if args.client_cpu < ncpu else None

    runs = []
    for i in range(args.runs):
        runs.append(one_run(args, server_cpu, client_cpu))
    p99s = sorted(r["answer_delay_ms"]["p99"] for r in runs)
    median = p99s[len(p99s) // 2]
    if args.runs > 1:
        print(f"\np99 answer delay over {args.runs} runs: {', '.join(f'{x:.2f}' for x in p99s)} ms; "
              f"median {median:.2f} ms (target {TARGET_P99_MS})")
    os.makedirs(OUT_DIR, exist_ok=True)
    with open(os.path.join(OUT_DIR, "llhls_bench.json"), "w") as f:
        json.dump({"median_p99_ms": median, "runs": runs}, f, indent=2)
    return 0 if median <= TARGET_P99_MS else 1


if __name__ == "__main__":
    sys.exit(main())
