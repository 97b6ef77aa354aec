"""Camera sources benchmark: one rtmpgop pulls N RTSP cameras at 1080p-like bitrates; CPU and
RSS of the server per source.

    .venv/bin/python bench/sources_bench.py --counts 1 10 20 [--transport tcp|udp]
        [--bitrate 5M] [--window 20] [--runs 1]

Parts (each its own process, pinned so they do not share a core):

- the **camera farm** (core 1): a hub fed with one pre-encoded 1920x1080 30 fps H.264 clip
  (libx264 CBR with filler at ``--bitrate``, GoP 2 s, no B-frames; a panning noise texture so
  the bits are spent on detail; encoded once and cached in bench/out/) pushed on N paths
  ``cam/i`` at real time, served by rtmpgop's RTSP server code (``io/rtsp_server.py``). Each
  path is its own channel, so the farm packetizes N streams like N cameras would;
- the **server under test** (core 0): ``python -m rtmpgop --config FILE`` with N sources
  ``rtsp://127.0.0.1:FARM/cam/i`` (the production CLI, LL-HLS muxers included, as deployed);
- this script: waits until every source is live, lets it settle, then reads the server's
  utime+stime and VmRSS from /proc over the window, and per-source frames and bytes from
  ``/api/streams`` (to check every camera really delivered 30 fps at the bitrate).

A run with N = 0 gives the server's idle baseline; per-source RSS is (RSS(N) - RSS(0)) / N.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pathlib
import pickle
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

OUT = ROOT / "bench" / "out"
WIDTH, HEIGHT, FPS, GOP = 1920, 1080, 30, 60
CLIP_SECONDS = 4
LIVE_DEADLINE = 90.0  # s for every source to go live
SETTLE = 3.0  # s after all are live before the window opens


def pin(cpu: int) -> None:
    try:
        os.sched_setaffinity(0, {cpu % os.cpu_count()})
    except (AttributeError, OSError):
        pass


def proc_cpu_seconds(pid: int) -> float:
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_mib(pid: int) -> float:
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# ------------------------------------------------------------------------------------ clip
def clip(bitrate: int) -> tuple[bytes, list[tuple[int, bool, bytes]]]:
    """(avcC, [(pts 90 kHz, keyframe, AVCC payload)]) of the 1080p clip, cached."""
    path = OUT / f"sources_clip_{WIDTH}x{HEIGHT}_{bitrate}.pickle"
    if path.exists():
        return pickle.loads(path.read_bytes())
    import av
    import numpy as np

    from rtmpgop.codecs import h264

    import io

    rng = np.random.default_rng(7)
    noise = rng.integers(0, 60, size=(HEIGHT, WIDTH * 2), dtype=np.uint8)
    kbit = bitrate // 1000
    y = np.tile((np.arange(WIDTH, dtype=np.uint16) * 255 // WIDTH).astype(np.uint8), (HEIGHT, 1))
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:  # MP4 gives AVCC payloads and the avcC
        st = out.add_stream("libx264", rate=FPS)
        st.width, st.height, st.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        st.bit_rate = bitrate
        st.codec_context.options = {"preset": "ultrafast", "x264-params": (
            f"keyint={GOP}:min-keyint={GOP}:scenecut=0:bframes=0:nal-hrd=cbr:"
            f"vbv-maxrate={kbit}:vbv-bufsize={kbit}:force-cfr=1")}
        for i in range(FPS * CLIP_SECONDS):
            luma = y + noise[:, (i * 8) % WIDTH:(i * 8) % WIDTH + WIDTH]
            yuv = np.concatenate([luma, np.full((HEIGHT // 2, WIDTH), 128, np.uint8)])
            frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
            frame.pts = i
            out.mux(st.encode(frame))
        out.mux(st.encode(None))
    buf.seek(0)
    with av.open(buf, "r") as inp:
        vs = inp.streams.video[0]
        record = bytes(vs.codec_context.extradata or b"")
        tb = vs.time_base
        au = [(int(p.pts * tb * 90000), bool(p.is_keyframe), bytes(p))
              for p in inp.demux(vs) if p.size]
    h264.parse_avcc(record)
    OUT.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps((record, au)))
    return record, au


# ------------------------------------------------------------------------------------ farm
async def _farm(n: int, bitrate: int) -> None:
    from rtmpgop import codecs
    from rtmpgop.channels import Hub
    from rtmpgop.config import Config
    from rtmpgop.io import rtsp_server
    from rtmpgop.media import VIDEO_CLOCK, AccessUnit, Codec, Track

    record, units = clip(bitrate)
    hub = Hub()
    lst = await rtsp_server.start(hub, Config(rtsp_udp_rtp_port=0), "127.0.0.1", 0)
    track = Track(0, codecs.make_config(Codec.H264, record), VIDEO_CLOCK)
    chans = []
    for i in range(n):
        ch = hub.publish(f"cam/{i}", "farm")
        ch.set_tracks([track])
        chans.append(ch)
    print(f"farm ready port={lst.port}", flush=True)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    period = len(units) * 90000 // FPS
    k = 0
    while True:
        loops, j = divmod(k, len(units))
        pts, key, data = units[j]
        ts = loops * period + pts
        for ch in chans:
            ch.push(AccessUnit(0, ts, ts, key, data))
        k += 1
        delay = t0 + k / FPS - loop.time()
        await asyncio.sleep(max(0.0, delay))


def run_farm(args) -> None:
    pin(1)
    import uvloop
    uvloop.run(_farm(args.n, args.bitrate))


# ------------------------------------------------------------------------------------ runs
def start_farm(n: int, bitrate: int) -> tuple[subprocess.Popen, int]:
    p = subprocess.Popen([sys.executable, __file__, "farm", "--n", str(n), "--bitrate",
                          str(bitrate)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    line = p.stdout.readline()
    if not line.startswith("farm ready port="):
        p.kill()
        raise RuntimeError(f"farm did not start: {line!r}")
    return p, int(line.strip().split("=")[1])


def start_server(n: int, farm_port: int, transport: str, tmp: str) -> tuple[subprocess.Popen, dict]:
    cfg = pathlib.Path(tmp) / f"sources_{n}.toml"
    lines = ['host = "127.0.0.1"', "rtmp_port = 0", "rtsp_port = 0", "http_port = 0",
             "ws_port = 0", "rtsp_udp_rtp_port = 0", 'log_level = "warning"']
    for i in range(n):
        lines += [f'[paths."cam/{i}"]', f'source = "rtsp://127.0.0.1:{farm_port}/cam/{i}"',
                  f'transport = "{transport}"']
    cfg.write_text("\n".join(lines) + "\n")
    p = subprocess.Popen(["taskset", "-c", "0", sys.executable, "-m", "rtmpgop", "--config",
                          str(cfg)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    line = p.stdout.readline()
    if not line.startswith("rtmpgop ready"):
        p.kill()
        raise RuntimeError(f"server did not start: {line!r}")
    ports = dict(kv.split("=") for kv in line.split()[2:])
    return p, {k: int(v) for k, v in ports.items()}


def api(http_port: int) -> dict[str, dict]:
    data = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{http_port}/api/streams",
                                             timeout=10).read())
    return {s["path"]: s for s in data["streams"]}


def loadavg() -> float:
    return float(pathlib.Path("/proc/loadavg").read_text().split()[0])


def measure(n: int, args, tmp: str) -> dict:
    farm = None
    farm_port = 9  # unused when n == 0
    if n:
        farm, farm_port = start_farm(n, args.bitrate)
    server, ports = start_server(n, farm_port, args.transport, tmp)
    try:
        end = time.monotonic() + LIVE_DEADLINE
        while n:
            st = api(ports["http"])
            live = sum(1 for s in st.values() if s.get("source_state") == "live")
            if live == n:
                break
            if time.monotonic() > end:
                raise RuntimeError(f"only {live}/{n} sources live after {LIVE_DEADLINE} s")
            time.sleep(0.5)
        time.sleep(SETTLE)
        s0 = api(ports["http"]) if n else {}
        c0, f0, t0 = proc_cpu_seconds(server.pid), (proc_cpu_seconds(farm.pid) if farm else 0), time.monotonic()
        time.sleep(args.window)
        c1, f1, t1 = proc_cpu_seconds(server.pid), (proc_cpu_seconds(farm.pid) if farm else 0), time.monotonic()
        s1 = api(ports["http"]) if n else {}
        rss = proc_rss_mib(server.pid)
        dt = t1 - t0
        fps = [(s1[p]["frames_in"] - s0[p]["frames_in"]) / dt for p in s1 if p in s0]
        mbit = [(s1[p]["bytes_in"] - s0[p]["bytes_in"]) * 8 / dt / 1e6 for p in s1 if p in s0]
        reconnects = sum(s.get("reconnects", 0) for s in s1.values())
        return {"sources": n, "transport": args.transport, "server_cpu": (c1 - c0) / dt,
                "farm_cpu": (f1 - f0) / dt, "rss_mib": rss, "window": dt,
                "fps_min": min(fps, default=0), "fps_mean": sum(fps) / len(fps) if fps else 0,
                "mbit_mean": sum(mbit) / len(mbit) if mbit else 0, "reconnects": reconnects,
                "load": loadavg()}
    finally:
        for p in (server, farm):
            if p is not None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd")
    fa = sub.add_parser("farm")
    fa.add_argument("--n", type=int, required=True)
    fa.add_argument("--bitrate", type=int, default=5_000_000)
    ap.add_argument("--counts", type=int, nargs="+", default=[1, 10, 20])
    ap.add_argument("--transport", choices=("tcp", "udp"), default="tcp")
    ap.add_argument("--bitrate", type=lambda s: int(float(s.rstrip("Mm")) * 1e6) if s[-1] in "Mm" else int(s),
                    default=5_000_000)
    ap.add_argument("--window", type=float, default=20.0)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--out", help="write the results as JSON here")
    args = ap.parse_args()
    if args.cmd == "farm":
        run_farm(args)
        return
    clip(args.bitrate)  # encode once before anything is measured
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        base = measure(0, args, tmp)
        print(f"baseline: server CPU {base['server_cpu']:.1%}, RSS {base['rss_mib']:.1f} MiB", flush=True)
        for n in args.counts:
            for run in range(args.runs):
                r = measure(n, args, tmp)
                r["run"] = run + 1
                r["cpu_per_source"] = (r["server_cpu"] - base["server_cpu"]) / n
                r["rss_per_source_mib"] = (r["rss_mib"] - base["rss_mib"]) / n
                results.append(r)
                print(json.dumps(r), flush=True)
    print()
    print("| sources | run | server CPU | per source | RSS MiB | per source | fps min / mean "
          "| Mbit/s per source | reconnects | farm CPU | load |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    print(f"| 0 | - | {base['server_cpu']:.1%} | - | {base['rss_mib']:.1f} | - | - | - | - | - "
          f"| {base['load']:.1f} |")
    for r in results:
        print(f"| {r['sources']} | {r['run']} | {r['server_cpu']:.1%} | {r['cpu_per_source']:.2%} "
              f"| {r['rss_mib']:.1f} | {r['rss_per_source_mib']:.2f} | {r['fps_min']:.1f} / "
              f"{r['fps_mean']:.1f} | {r['mbit_mean']:.2f} | {r['reconnects']} "
              f"| {r['farm_cpu']:.1%} | {r['load']:.1f} |")
    if args.out:
        pathlib.Path(args.out).write_text(json.dumps({"baseline": base, "runs": results}, indent=1))


if __name__ == "__main__":
    main()
