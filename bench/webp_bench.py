"""WebP renderer and WebSocket fan-out benchmark (issue "WebP frame renderer over WebSockets").

Two parts, each printing a table and writing JSON to bench/out/:

``render``: cost of one rendered frame (decode + change check + scale + libwebp encode) at 720p
and 360p, H.264 with B-frames, on one core (this process pinned). Target: <= 12 ms per 720p frame.

``fanout``: one 720p30 H.264 stream to N WebSocket clients. The server (hub + renderer + ws
server, exactly the production code) runs in a child process pinned to core 0 with a paced
publisher; the clients run in this process pinned to core 1, as raw-socket WebSocket readers that
parse frame headers and keep each message's last 16 bytes. The server records, for every frame it
fans out, the payload's tail and the time its access unit was published; the clients record the
tail and arrival time of every message. Both use CLOCK_MONOTONIC (shared by processes), so
latency = arrival - publish. Delivered % = messages received / frames fanned out, per client.
Server CPU = utime + stime of the server process (all its threads) from /proc, over the window.

Run:  .venv/bin/python bench/webp_bench.py render
      .venv/bin/python bench/webp_bench.py fanout --clients 100 500 1000 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import bisect
import json
import os
import pathlib
import resource
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench" / "out"

TAIL = 16  # bytes of each WebP kept to match a received message with the frame sent


def pin(cpu: int) -> None:
    try:
        os.sched_setaffinity(0, {cpu % os.cpu_count()})
    except (AttributeError, OSError):
        pass


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def proc_cpu_seconds(pid: int | str = "self") -> float:
    """utime + stime of a process (all threads), from /proc/PID/stat."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(q / 100 * len(v)))]


# ------------------------------------------------------------------------------------ render
def bench_render(args) -> dict:
    from fixtures.media import encode_video
    from rtmpgop.media import VIDEO_CLOCK, AccessUnit, Codec, CodecConfig, Track, TrackSet
    from rtmpgop.subscribers.webp import RenderedFrame, RenderSettings, WebpRenderer

    import numpy as np

    from fixtures.media import pattern_frame

    def textured(i, w, h):
        """The pattern plus a fixed +-6 grain that pans: sensor-noise-like detail, costlier than the
        smooth pattern (libwebp time grows with the bytes it writes)."""
        rng = np.random.default_rng(1)
        grain = rng.integers(-6, 7, size=(h, w + 64, 1), dtype=np.int16)
        img = pattern_frame(i, w, h).astype(np.int16) + grain[:, i % 64:i % 64 + w]
        return np.clip(img, 0, 255).astype(np.uint8)

    pin(0)
    rows = []
    for (w, h) in [(1280, 720), (640, 360)]:
        stream = encode_video("h264", frames=args.frames, width=w, height=h, bframes=True, gop=60,
                              frame_source=textured if args.texture else None)
        ts = TrackSet((Track(0, CodecConfig(Codec.H264, stream.config, w, h), VIDEO_CLOCK),), 1)
        aus = [AccessUnit(0, p.dts, p.pts, p.keyframe, p.data) for p in stream.packets]
        for method in (0, 2):
            best = None
            for _ in range(args.repeat):
                r = WebpRenderer(RenderSettings(quality=70, method=method, max_width=1280, max_fps=0))
                r.set_tracks(ts)
                sizes = []
                c0, t0 = time.process_time(), time.perf_counter()
                for au in aus:
                    sizes += [o.webp for o in r.push(au) if isinstance(o, RenderedFrame)]
                sizes += [o.webp for o in r.flush() if isinstance(o, RenderedFrame)]
                wall, cpu = time.perf_counter() - t0, time.process_time() - c0
                # decode only, for the split
                d = WebpRenderer(RenderSettings(max_fps=0))
                d.set_tracks(ts)
                c1 = time.process_time()
                for au in aus:
                    d.push(au, render=False)
                d.flush(render=False)
                dec = time.process_time() - c1
                row = {"size": f"{w}x{h}", "method": method, "frames": len(sizes),
                       "ms_per_frame_wall": wall * 1000 / len(sizes), "ms_per_frame_cpu": cpu * 1000 / len(sizes),
                       "decode_ms": dec * 1000 / len(sizes), "webp_bytes_avg": sum(map(len, sizes)) // len(sizes)}
                if best is None or row["ms_per_frame_cpu"] < best["ms_per_frame_cpu"]:
                    best = row
                r.close()
                d.close()
            rows.append(best)
    print(f"{'size':>9} {'method':>6} {'frames':>6} {'ms/frame':>9} {'cpu ms':>7} {'decode ms':>9} {'bytes':>7}")
    for r in rows:
        print(f"{r['size']:>9} {r['method']:>6} {r['frames']:>6} {r['ms_per_frame_wall']:>9.2f} "
              f"{r['ms_per_frame_cpu']:>7.2f} {r['decode_ms']:>9.2f} {r['webp_bytes_avg']:>7}")
    return {"render": rows}


# ------------------------------------------------------------------------------------ server
def run_server(args) -> None:
    """Child process: the production hub + renderer + ws server with a paced 720p30 publisher."""
    import uvloop

    pin(0)
    raise_nofile()
    uvloop.run(_server_main(args))


async def _server_main(args) -> None:
    from fixtures.media import encode_video
    from rtmpgop.channels import Hub
    from rtmpgop.config import Config
    from rtmpgop.io import webp_worker, ws_server
    from rtmpgop.media import VIDEO_CLOCK, AccessUnit, Codec, CodecConfig, Track

    w, h = map(int, args.size.split("x"))
    # a clip longer than the window plus any lag, so no picture repeats among the frames matched
    stream = encode_video("h264", frames=int(args.fps * (args.seconds + 6)), width=w, height=h, fps=args.fps,
                          bframes=args.bframes, gop=args.fps * 2)
    cfg = Config(webp_max_fps=float(args.fps), webp_method=0, webp_quality=70)
    hub = Hub()
    renders = webp_worker.RenderManager(hub, cfg)
    lst = await ws_server.start(hub, cfg, "127.0.0.1", 0, renders=renders)
    published: dict[int, int] = {}  # pts -> monotonic ns of push
    sent: list[tuple[str, int, int]] = []  # (tail, pts, fan-out ns) while measuring
    measuring = False

    orig_deliver = webp_worker.StreamRender._deliver

    def deliver(self, outputs):
        t = time.monotonic_ns()
        orig_deliver(self, outputs)
        if measuring:
            for o in outputs:
                if hasattr(o, "webp"):
                    sent.append((base64.b64encode(o.webp[-TAIL:]).decode(), o.pts, t))

    webp_worker.StreamRender._deliver = deliver

    async def publish():
        ch = hub.publish("live/bench", "bench")
        ch.set_tracks([Track(0, CodecConfig(Codec.H264, stream.config, w, h), VIDEO_CLOCK)])
        n, k, step = len(stream.packets), 0, VIDEO_CLOCK // args.fps
        t0 = time.monotonic()
        i = 0
        while True:
            for p in stream.packets:
                off = k * n * step
                published[p.pts + off] = time.monotonic_ns()
                ch.push(AccessUnit(0, p.dts + off, p.pts + off, p.keyframe, p.data))
                i += 1
                await asyncio.sleep(max(0.0, t0 + i / args.fps - time.monotonic()))
            k += 1
            for old in [q for q in published if q < (k - 2) * n * step]:
                del published[old]

    task = asyncio.create_task(publish())
    print(json.dumps({"port": lst.port}), flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    line = await reader.readline()  # "measure SECONDS"
    seconds = float(line.split()[1])
    pub_log: dict[int, int] = {}
    cpu0, t0 = proc_cpu_seconds(), time.monotonic()
    measuring = True
    end = t0 + seconds
    while time.monotonic() < end:
        pub_log.update(published)
        await asyncio.sleep(0.5)
    measuring = False
    cpu = proc_cpu_seconds() - cpu0
    wall = time.monotonic() - t0
    pub_log.update(published)
    st = lst.statistics()
    rs = renders.statistics()
    result = {"cpu_seconds": cpu, "wall_seconds": wall, "cpu_pct": 100 * cpu / wall,
              "frames_fanned_out": len(sent), "viewers": len(lst.viewers),
              "ws_skipped_frames": st.skipped_frames,
              "renderer": {k: v for k, v in (("frames_in", rs.frames_in), ("frames_out", rs.frames_out))},
              "webp_bytes_avg": 0,
              "sent": [(tail, pts, t, pub_log.get(pts)) for tail, pts, t in sent]}
    print(json.dumps(result), flush=True)
    await reader.readline()  # "quit"
    task.cancel()
    await renders.close()
    await lst.close()


# ------------------------------------------------------------------------------------ clients
class WsReader(asyncio.BufferedProtocol):
    """A minimal WebSocket client: handshake, then frame headers only; keeps each message's tail."""

    BUF = 1 << 20

    def __init__(self, host: str, port: int, path: str, log: list, ready: asyncio.Future) -> None:
        self.req = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                    f"Connection: Upgrade\r\nSec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
                    "Sec-WebSocket-Version: 13\r\n\r\n").encode()
        self.buf = bytearray(self.BUF)
        self.view = memoryview(self.buf)
        self.have = 0  # bytes in buf not yet parsed (header parsing state)
        self.handshaken = False
        self.remaining = 0  # payload bytes of the current message still to come
        self.opcode = 0
        self.tail = b""
        self.log = log  # (tail, arrival ns) of binary messages while recording
        self.recording = False
        self.messages = 0
        self.ready = ready
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        transport.write(self.req)

    def get_buffer(self, sizehint):
        return self.view[self.have:]

    def buffer_updated(self, nbytes):
        now = time.monotonic_ns()
        end = self.have + nbytes
        pos = 0
        buf = self.buf
        if not self.handshaken:
            i = buf.find(b"\r\n\r\n", 0, end)
            if i < 0:
                self.have = end
                return
            if not buf.startswith(b"HTTP/1.1 101"):
                self.ready.set_exception(RuntimeError(bytes(buf[:80]).decode(errors="replace")))
                self.transport.close()
                return
            self.handshaken = True
            pos = i + 4
        while pos < end:
            if self.remaining:
                n = min(self.remaining, end - pos)
                self.tail = (self.tail + bytes(buf[pos + n - min(n, TAIL):pos + n]))[-TAIL:]
                self.remaining -= n
                pos += n
                if self.remaining == 0:
                    self._message(now)
                continue
            if end - pos < 2:
                break
            b1 = buf[pos + 1] & 0x7F
            hl = 2 + (2 if b1 == 126 else 8 if b1 == 127 else 0)
            if end - pos < hl:
                break
            if b1 == 126:
                length = int.from_bytes(buf[pos + 2:pos + 4], "big")
            elif b1 == 127:
                length = int.from_bytes(buf[pos + 2:pos + 10], "big")
            else:
                length = b1
            self.opcode = buf[pos] & 0x0F
            pos += hl
            self.tail = b""
            self.remaining = length
            if length == 0:
                self._message(now)
        # keep an incomplete header at the start of the buffer
        rest = end - pos
        if rest:
            buf[:rest] = buf[pos:end]
        self.have = rest

    def _message(self, now):
        if self.opcode == 2:
            self.messages += 1
            if self.recording:
                self.log.append((self.tail, now))
            if not self.ready.done():
                self.ready.set_result(True)


async def run_clients(port: int, n: int, seconds: float, proc) -> dict:
    loop = asyncio.get_running_loop()
    clients = []
    logs = []
    for i in range(n):
        log: list = []
        ready = loop.create_future()
        _, proto = await loop.create_connection(
            lambda log=log, ready=ready: WsReader("127.0.0.1", port, "/ws/live/bench", log, ready),
            "127.0.0.1", port)
        clients.append(proto)
        logs.append(log)
        if i % 50 == 49:
            await asyncio.sleep(0.05)
    async with asyncio.timeout(60):
        await asyncio.gather(*(c.ready for c in clients))
    await asyncio.sleep(1.0)  # settle
    for c in clients:
        c.recording = True
    proc.stdin.write(f"measure {seconds}\n".encode())
    proc.stdin.flush()
    line = await loop.run_in_executor(None, proc.stdout.readline)
    await asyncio.sleep(0.3)  # frames in flight at the end of the window
    for c in clients:
        c.recording = False
    server = json.loads(line)
    # The clip loops, so the same picture (same tail) comes back every loop: match each client's
    # messages, in order, to the next fan-out with the same tail (delivery is in order).
    sent = server.pop("sent")
    positions: dict[bytes, list[int]] = {}
    for i, (tail, _pts, _t_out, _t_pub) in enumerate(sent):
        positions.setdefault(base64.b64decode(tail), []).append(i)
    start = sent[0][2] if sent else 0
    delivered, lat = [], []
    for log in logs:
        got, last = 0, -1
        for tail, t in log:
            if t < start:
                continue
            pos = positions.get(tail)
            if not pos:
                continue
            j = bisect.bisect_right(pos, last)
            if j == len(pos):
                continue
            last = pos[j]
            got += 1
            t_pub = sent[last][3]
            if t_pub is not None:
                lat.append((t - t_pub) / 1e6)
        delivered.append(100.0 * got / max(1, len(sent)))
    for c in clients:
        c.transport.close()
    render_lat = [(t_out - t_pub) / 1e6 for _tail, _pts, t_out, t_pub in sent if t_pub is not None]
    return {"clients": n, "server": server, "delivered_pct_mean": statistics.fmean(delivered),
            "render_ms_p50": pct(render_lat, 50), "render_ms_p99": pct(render_lat, 99),
            "delivered_pct_min": min(delivered), "latency_ms_p50": pct(lat, 50),
            "latency_ms_p99": pct(lat, 99), "latency_samples": len(lat)}


def bench_fanout(args) -> dict:
    import uvloop

    pin(1)
    raise_nofile()
    rows = []
    for n in [n for n in args.clients for _ in range(args.runs)]:
        cmd = [sys.executable, __file__, "_server", "--size", args.size, "--fps", str(args.fps),
               "--seconds", str(args.seconds)]
        if args.bframes:
            cmd.append("--bframes")
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT)
        try:
            port = json.loads(proc.stdout.readline())["port"]
            row = uvloop.run(run_clients(port, n, args.seconds, proc))
            proc.stdin.write(b"quit\n")
            proc.stdin.flush()
            proc.wait(20)
        finally:
            if proc.poll() is None:
                proc.kill()
        s = row["server"]
        print(f"{n:>5} clients: delivered {row['delivered_pct_mean']:6.2f} % (min {row['delivered_pct_min']:6.2f}) "
              f"server CPU {s['cpu_pct']:5.1f} %  latency p50 {row['latency_ms_p50']:6.1f} ms "
              f"p99 {row['latency_ms_p99']:6.1f} ms (publish->fan-out p50 {row['render_ms_p50']:.1f} "
              f"p99 {row['render_ms_p99']:.1f})  frames {s['frames_fanned_out']}  "
              f"ws skipped {s['ws_skipped_frames']}", flush=True)
        rows.append(row)
    return {"fanout": rows, "size": args.size, "fps": args.fps, "bframes": args.bframes}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("render")
    r.add_argument("--frames", type=int, default=90)
    r.add_argument("--repeat", type=int, default=2)
    r.add_argument("--texture", action="store_true", help="add a panning grain (camera-like detail)")
    for name in ("fanout", "_server"):
        f = sub.add_parser(name)
        f.add_argument("--clients", type=int, nargs="+", default=[100, 500, 1000])
        f.add_argument("--seconds", type=float, default=10.0)
        f.add_argument("--size", default="1280x720")
        f.add_argument("--fps", type=int, default=30)
        f.add_argument("--bframes", action="store_true")
        f.add_argument("--runs", type=int, default=1, help="runs per client count")
    for p in (r, sub.choices["fanout"]):
        p.add_argument("--out", help="JSON file to write (default bench/out/webp_CMD.json)")
    args = ap.parse_args()
    if args.cmd == "_server":
        run_server(args)
        return
    OUT.mkdir(parents=True, exist_ok=True)
    result = bench_render(args) if args.cmd == "render" else bench_fanout(args)
    result["command"] = " ".join(["python"] + sys.argv)
    suffix = "_texture" if getattr(args, "texture", False) else "_bframes" if getattr(args, "bframes", False) else ""
    out = pathlib.Path(args.out) if args.out else OUT / f"webp_{args.cmd}{suffix}.json"
    out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
