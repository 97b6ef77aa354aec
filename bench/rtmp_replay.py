"""In-process RTMP replay for profiling: the bench media, published by N publishers, fed
straight into ``io.rtmp_server.RtmpServerProtocol`` (no sockets), optionally with the LL-HLS
service and M players per publisher, under cProfile or just timed.

    python bench/rtmp_replay.py [--publishers N] [--seconds S] [--players M] [--hls always|off]
                                [--profile FILE] [--top 40]

Each publisher's wire bytes (handshake, connect, publish, then S seconds of video + audio
messages, chunk size 4096 like the load generator) are built once with rtmpgop's own client,
then handed to the server in 64 KiB ``recv_into``-sized blocks, round robin across publishers,
with one event-loop turn between rounds (so scheduled work such as LL-HLS drains and coalesced
player pumps runs). Prints CPU seconds per Mbit of FLV payload received: comparable between
code versions on the same machine, not with ``rtmp_bench.py`` (no kernel, no real time).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from bench.loadgen.media import (  # noqa: E402
    AAC_FRAME, AUDIO_RATE, audio_sequence_header, load_media, video_sequence_header, video_tag_head)

RECV_BLOCK = 64 * 1024


class FakeTransport:
    """Collects what the server writes; never pauses."""

    def __init__(self) -> None:
        self.out: list = []
        self.nbytes = 0
        self.closing = False

    def writelines(self, bufs) -> None:
        for b in bufs:
            self.nbytes += len(b)

    def write(self, b) -> None:
        self.nbytes += len(b)

    def get_extra_info(self, name, default=None):
        return ("127.0.0.1", 1) if name == "peername" else default

    def set_write_buffer_limits(self, high=None, low=None) -> None:
        pass

    def is_closing(self) -> bool:
        return self.closing

    def abort(self) -> None:
        self.closing = True

    close = abort


def publisher_bytes(media, pub: int, seconds: float, name: str) -> tuple[bytes, bytes, int]:
    """(handshake+commands bytes, media bytes, FLV payload bytes) of one publisher, built with
    rtmpgop's client against rtmpgop's server connection."""
    from rtmpgop.protocol.rtmp import events as E
    from rtmpgop.protocol.rtmp.client import ClientConnection
    from rtmpgop.protocol.rtmp.connection import ServerConnection

    cli = ClientConnection("live", "rtmp://127.0.0.1/live")
    srv = ServerConnection()
    setup = bytearray()
    msid = None
    for _ in range(50):
        out = b"".join(bytes(b) for b in cli.data_to_send())
        setup += out
        if out:
            srv.receive_data(out)
        while (ev := srv.next_event()) is not None:
            if isinstance(ev, E.Connect):
                srv.accept_connect(ev)
            elif isinstance(ev, E.Publish):
                srv.accept_publish(ev)
        back = b"".join(bytes(b) for b in srv.data_to_send())
        if back:
            cli.receive_data(back)
        while (ev := cli.next_event()) is not None:
            if isinstance(ev, E.Connected):
                cli.create_stream()
            elif isinstance(ev, E.StreamCreated):
                msid = ev.msid
                cli.publish(msid, name)
            elif isinstance(ev, E.Status) and ev.code == "NetStream.Publish.Start":
                break
        else:
            continue
        break
    assert msid is not None
    cli.send_metadata(msid, {"width": float(media.width), "height": float(media.height),
                             "framerate": float(media.fps)})
    cli.send_video(msid, 0, video_sequence_header(media.avcc))
    cli.send_audio(msid, 0, audio_sequence_header(media.asc))
    payload = 0
    nframes = int(seconds * media.fps)
    audio_i = 0
    for seq in range(nframes):
        ms = seq * 1000 // media.fps
        while audio_i * AAC_FRAME * 1000 // AUDIO_RATE <= ms:
            a = b"\xaf\x01" + media.audio[audio_i % len(media.audio)]
            cli.send_audio(msid, audio_i * AAC_FRAME * 1000 // AUDIO_RATE, a)
            payload += len(a)
            audio_i += 1
        key, data = media.video[seq % len(media.video)]
        body = video_tag_head(key, pub, seq, 0) + data
        cli.send_video(msid, ms, body)
        payload += len(body)
    tail = b"".join(bytes(b) for b in cli.data_to_send())
    return bytes(setup), tail, payload


async def replay(args) -> None:
    from rtmpgop.channels import Hub
    from rtmpgop.config import Config
    from rtmpgop.io import rtmp_server

    media = load_media()
    hub = Hub()
    cfg = Config()
    svc = None
    if args.hls != "off":
        from rtmpgop.io import hls_http
        svc = await hls_http.start_service(hub, cfg)
    lst = rtmp_server.RtmpListener(hub, cfg)
    streams = []
    total_payload = 0
    for i in range(args.publishers):
        setup, data, payload = publisher_bytes(media, i + 1, args.seconds, f"s{i}")
        total_payload += payload
        proto = rtmp_server.RtmpServerProtocol(lst)
        proto.connection_made(FakeTransport())
        streams.append([proto, setup + data, 0])
    players = []
    prof = cProfile.Profile(time.process_time) if args.profile else None  # CPU time: a loaded machine must not skew it
    t0, c0 = time.perf_counter(), time.process_time()
    if prof:
        prof.enable()
    first = True
    while streams:
        for st in list(streams):
            proto, data, pos = st
            n = min(RECV_BLOCK, len(data) - pos)
            buf = proto.get_buffer(n)
            n = min(n, len(buf))
            buf[:n] = data[pos:pos + n]
            proto.buffer_updated(n)
            st[2] = pos + n
            if st[2] >= len(data):
                streams.remove(st)
        if first and args.players and len(hub.channels()) == args.publishers:
            first = False
            players = await add_players(lst, hub, args)
        await asyncio.sleep(0)
    await asyncio.sleep(0)
    if prof:
        prof.disable()
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    mbit = total_payload * 8 / 1e6
    out = sum(p.transport.nbytes for p in players)
    print(f"{args.publishers} publishers x {args.seconds:.0f} s, {args.players} players each, "
          f"hls {args.hls}: {mbit:.0f} Mbit in, {out * 8 / 1e6:.0f} Mbit out; "
          f"CPU {cpu:.2f} s ({wall:.2f} s wall): {1000 * cpu / mbit:.3f} ms/Mbit in"
          + (f", {1000 * cpu / (out * 8 / 1e6):.3f} ms/Mbit out" if out else ""))
    if prof:
        prof.dump_stats(args.profile)
        st = pstats.Stats(prof)
        st.sort_stats("tottime").print_stats(args.top)
    if svc is not None:
        await svc.close()


async def add_players(lst, hub, args) -> list:
    """M players per live channel, attached straight to the hub (no handshake)."""
    from rtmpgop.io import rtmp_server
    from rtmpgop.protocol.rtmp import events as E

    out = []
    for ch in hub.channels():
        for _ in range(args.players):
            proto = rtmp_server.RtmpServerProtocol(lst)
            proto.connection_made(FakeTransport())
            proto.conn._handshaking = False
            app, _, name = ch.path.partition("/")
            proto._on_event(E.Connect(1.0, app, ""))  # the server's own chunk size
            proto._play(E.Play(1, name))
            proto._flush()  # as after the play command: first pull, then wake-ups
            out.append(proto)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--publishers", type=int, default=10)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--players", type=int, default=0)
    p.add_argument("--hls", choices=["always", "off"], default="always")
    p.add_argument("--profile", metavar="FILE")
    p.add_argument("--top", type=int, default=40)
    args = p.parse_args()
    import uvloop
    uvloop.run(replay(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
