"""Micro-benchmark of the sans-IO RTSP receive path alone (no sockets, no hub): 10 s of the
benchmark media (bench/loadgen/media.py, 640x360 H.264 + AAC, MTU 1200) published over TCP
interleaved into one ``ServerConnection``, fed in 64 KiB reads and drained to events.

    python bench/rtsp_core_bench.py [--profile] [--runs N]

Prints the best of N runs (default 20: a run lasts ~20 ms, shorter than the machine's swings)
in microseconds per RTP packet (``--profile``: cProfile, top 20
by own time). bench/rtsp_bench.py measures the whole server; this isolates the core.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from bench.loadgen.media import AAC_FRAME, AUDIO_RATE, load_media  # noqa: E402
from bench.loadgen.rtsp import _tracks  # noqa: E402
from rtmpgop.protocol.rtsp.client import ClientConnection  # noqa: E402
from rtmpgop.protocol.rtsp.sdp_tracks import packetizer_for  # noqa: E402
from rtmpgop.protocol.rtsp.server import ServerConnection  # noqa: E402
from tests.protocol.rtsp.session_helpers import ServerApp, pump  # noqa: E402

SECONDS = 10
READ_SIZE = 65536


def _stream(media, tracks) -> tuple[list[bytes], int]:
    vpk, apk = packetizer_for(tracks[0], 96, 1), packetizer_for(tracks[1], 97, 2)
    out: list[bytes] = []
    aseq = 0
    for seq in range(media.fps * SECONDS):
        while aseq * AAC_FRAME * media.fps <= seq * AUDIO_RATE:
            for p in apk.packetize(media.audio[aseq % len(media.audio)], aseq * AAC_FRAME):
                out.append(bytes((0x24, 2)) + len(p).to_bytes(2, "big") + p)
            aseq += 1
        data = media.video[seq % len(media.video)][1]
        for p in vpk.packetize(data, seq * 90000 // media.fps):
            out.append(bytes((0x24, 0)) + len(p).to_bytes(2, "big") + p)
    whole = b"".join(out)
    return [whole[i:i + READ_SIZE] for i in range(0, len(whole), READ_SIZE)], len(out)


def _recording(tracks) -> ServerConnection:
    server = ServerConnection("bench1")
    client = ClientConnection("rtsp://127.0.0.1/live/pub", mode="record", tracks=tracks)
    client.start(0.0)
    pump(ServerApp(server), client)
    if not server.recording:
        raise RuntimeError("RECORD was not accepted")
    return server


def _run(server: ServerConnection, reads: list[bytes]) -> int:
    events = 0
    for r in reads:
        server.receive_data(r, 1.0)
        while server.next_event() is not None:
            events += 1
    return events


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    media = load_media()
    tracks = _tracks(media)
    reads, packets = _stream(media, tracks)
    if args.profile:
        prof = cProfile.Profile()
        server = _recording(tracks)
        prof.runcall(_run, server, reads)
        pstats.Stats(prof).sort_stats("tottime").print_stats(20)
        return
    best, events = float("inf"), 0
    for _ in range(args.runs):
        server = _recording(tracks)
        t = time.perf_counter()
        events = _run(server, reads)
        best = min(best, time.perf_counter() - t)
    print(f"{packets} RTP packets, {sum(map(len, reads)) / 1e6:.1f} MB, {events} events: "
          f"{best * 1e3:.0f} ms, {best / packets * 1e6:.2f} us/packet (best of {args.runs})")


if __name__ == "__main__":
    main()
