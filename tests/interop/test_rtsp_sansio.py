"""The sans-IO RTSP cores against real programs, over a tiny blocking socket loop written
here (the production asyncio adapter lives in rtmpgop/io/ and has its own interop tests):

- Debian's ffmpeg 5.1 publishes H.264 (B-frames) + AAC to ``ServerConnection`` (TCP); the
  access units decode with PyAV to the right frame count and size;
- ffprobe plays H.264 + AAC from ``ServerConnection``: every packet arrives with our PTS;
- ``ClientConnection`` pulls from GStreamer's rtsp-server (fixtures/gst_rtsp_camera.py)
  with Digest auth, TCP interleaved.
Port 0, deadlines, no bare sleeps.
"""

from __future__ import annotations

import selectors
import socket
import subprocess
import threading
import time

import av
import pytest

from fixtures.media import encode_audio, encode_video
from rtmpgop import codecs
from rtmpgop.media import Codec, Track
from rtmpgop.protocol.rtp import rtcp
from rtmpgop.protocol.rtsp import events as ev
from rtmpgop.protocol.rtsp.auth import ServerAuth
from rtmpgop.protocol.rtsp.client import ClientConnection
from rtmpgop.protocol.rtsp.sdp_tracks import packetizer_for
from rtmpgop.protocol.rtsp.server import ServerConnection

pytestmark = pytest.mark.interop

FFMPEG = "/usr/bin/ffmpeg"
FFPROBE = "/usr/bin/ffprobe"
DEADLINE = 30.0


def _serve_one(listener: socket.socket, server: ServerConnection, on_event, result: dict,
               udp: tuple[socket.socket, socket.socket] | None = None):
    """Accept one connection and run ``server`` on it (plus its shared UDP port pair, demuxed
    by source port) until TEARDOWN, EOF or the deadline."""
    conn, _ = listener.accept()
    sel = selectors.DefaultSelector()
    sel.register(conn, selectors.EVENT_READ, None)
    for i, u in enumerate(udp or ()):
        sel.register(u, selectors.EVENT_READ, i == 1)
    by_port: dict[int, tuple[int, bool]] = {}
    end = time.monotonic() + DEADLINE
    try:
        while time.monotonic() < end and not server.closed:
            # Datagrams first: FFmpeg sends its last RTP just before TEARDOWN on TCP, and a
            # closed session ignores what comes after (the io adapter must do the same).
            ready = sorted(sel.select(1.0), key=lambda kv: kv[0].data is None)
            for key, _ in ready:
                if key.data is None:
                    data = conn.recv(65536)
                    if not data:
                        return
                    server.receive_data(data, time.monotonic())
                    continue
                while True:
                    try:
                        data, (_, port) = key.fileobj.recvfrom(65536, socket.MSG_DONTWAIT)
                    except BlockingIOError:
                        break
                    if port in by_port:
                        server.receive_udp(*by_port[port], data, time.monotonic())
            while (e := server.next_event()) is not None:
                result.setdefault("events", []).append(e)
                if isinstance(e, ev.SetupDone) and e.transport.client_port:
                    rtp, rtcp_port = e.transport.client_port
                    by_port[rtp] = (e.track_id, False)
                    by_port[rtcp_port] = (e.track_id, True)
                on_event(e)
            for buf in server.data_to_send():
                conn.sendall(buf)
            if result.get("close_after_send"):
                return
    finally:
        conn.close()
        result["done"] = True


def _serve_publisher(listener: socket.socket, server: ServerConnection,
                     udp: tuple[socket.socket, socket.socket] | None = None):
    """Run ``_serve_one`` in a started thread, accepting the publisher's ANNOUNCE and RECORD.
    Returns (thread, result dict ``_serve_one`` fills)."""
    def on_event(e):
        if isinstance(e, ev.AnnounceRequest):
            server.accept_announce()
        elif isinstance(e, ev.RecordRequest):
            server.accept_record()

    result: dict = {}
    th = threading.Thread(target=_serve_one, args=(listener, server, on_event, result, udp))
    th.start()
    return th, result


def _listener():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    return s, s.getsockname()[1]


def test_ffmpeg_publishes_h264_aac_to_server_connection():
    listener, port = _listener()
    server = ServerConnection("a1b2c3", publish_auth=ServerAuth({"pub": "pw"}, "rtmpgop", "n0"))
    th, result = _serve_publisher(listener, server)
    subprocess.run([FFMPEG, "-nostdin", "-v", "error", "-re", "-f", "lavfi", "-i",
                    "testsrc=size=160x120:rate=10", "-f", "lavfi", "-i",
                    "sine=frequency=440:sample_rate=48000", "-t", "1.5", "-c:v", "libx264",
                    "-pix_fmt", "yuv420p", "-bf", "2", "-g", "5", "-c:a", "aac", "-f", "rtsp",
                    "-rtsp_transport", "tcp", f"rtsp://pub:pw@127.0.0.1:{port}/live/cam"],
                   check=True, timeout=DEADLINE)
    th.join(DEADLINE)
    listener.close()
    events = result["events"]
    assert events[-1] == ev.Teardown("teardown")
    tracks = {e.track.id: e.track for e in events if isinstance(e, ev.TrackChanged)}
    units = [e.unit for e in events if isinstance(e, ev.MediaReceived)]
    assert not [e for e in events if isinstance(e, ev.MediaError)]
    vids = [u for u in units if u.track == 0]
    auds = [u for u in units if u.track == 1]
    assert len(vids) == 15 and vids[0].keyframe and sum(u.keyframe for u in vids) == 3
    assert all(u.dts <= u.pts for u in vids) and all(b.dts > a.dts for a, b in
                                                     zip(vids, vids[1:]))
    assert len(auds) >= 65  # 1.5 s of 48 kHz AAC is ~70 frames of 1024 samples
    # The hub payloads decode with the config record as extradata.
    cc = av.CodecContext.create("h264", "r")
    cc.extradata = tracks[0].config.record
    frames = []
    for u in vids:
        frames += cc.decode(av.Packet(u.payload))
    frames += cc.decode(None)
    assert len(frames) == 15 and (frames[0].width, frames[0].height) == (160, 120)
    ac = av.CodecContext.create("aac", "r")
    ac.extradata = tracks[1].config.record
    decoded = sum(f.samples for u in auds for f in ac.decode(av.Packet(u.payload)))
    assert decoded == 1024 * len(auds)


def test_ffmpeg_publishes_hevc_opus_over_udp():
    listener, port = _listener()
    udp = []
    for _ in range(2):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        udp.append(u)
    ports = (udp[0].getsockname()[1], udp[1].getsockname()[1])
    server = ServerConnection("u1", udp_ports=ports)
    th, result = _serve_publisher(listener, server, udp)
    subprocess.run([FFMPEG, "-nostdin", "-v", "error", "-re", "-f", "lavfi", "-i",
                    "testsrc=size=160x120:rate=10", "-f", "lavfi", "-i",
                    "sine=frequency=440:sample_rate=48000", "-t", "1.5", "-c:v", "libx265",
                    "-pix_fmt", "yuv420p", "-x265-params", "log-level=error:keyint=5",
                    "-c:a", "libopus", "-f", "rtsp", f"rtsp://127.0.0.1:{port}/live/udp"],
                   check=True, timeout=DEADLINE)
    th.join(DEADLINE)
    listener.close()
    for u in udp:
        u.close()
    events = result["events"]
    setups = [e.transport for e in events if isinstance(e, ev.SetupDone)]
    assert [t.protocol for t in setups] == ["UDP", "UDP"] and setups[0].server_port == ports
    tracks = {e.track.id: e.track for e in events if isinstance(e, ev.TrackChanged)}
    assert tracks[0].codec is Codec.H265 and tracks[1].codec is Codec.OPUS
    units = [e.unit for e in events if isinstance(e, ev.MediaReceived)]
    vids = [u for u in units if u.track == 0]
    auds = [u for u in units if u.track == 1]
    assert len(vids) == 15 and vids[0].keyframe
    assert all(u.dts <= u.pts for u in vids)
    assert len(auds) >= 70 and all(b.pts - a.pts == 960 for a, b in zip(auds, auds[1:]))
    cc = av.CodecContext.create("hevc", "r")
    cc.extradata = tracks[0].config.record
    frames = [f for u in vids for f in cc.decode(av.Packet(u.payload))] + cc.decode(None)
    assert len(frames) == 15 and frames[0].width == 160


def test_ffprobe_plays_h264_aac_from_server_connection():
    v = encode_video("h264", frames=20, width=160, height=120, fps=20, bframes=True, gop=10)
    a = encode_audio("aac", seconds=1.0)
    tracks = [Track(0, codecs.make_config(Codec.H264, v.config), 90000),
              Track(1, codecs.make_config(Codec.AAC, a.config), 48000)]
    pk = {0: packetizer_for(tracks[0], 96, 0x11, initial_seq=7, initial_timestamp=1000),
          1: packetizer_for(tracks[1], 97, 0x22, initial_seq=9, initial_timestamp=2000)}
    listener, port = _listener()
    server = ServerConnection("d4e5f6")
    result: dict = {}

    def on_event(e):
        if isinstance(e, ev.DescribeRequest):
            server.accept_describe(tracks)
        elif isinstance(e, ev.PlayRequest):
            server.accept_play({i: (p.seq, p.rtp_timestamp(0)) for i, p in pk.items()})
            for tid, p in pk.items():  # an SR per SSRC right after PLAY (digest section 7)
                server.send_rtp(tid, p.sender_report(rtcp.unix_to_ntp(1.7e9), 0), rtcp=True)
            units = [(p.dts / 90000, 0, p) for p in v.packets]
            units += [(p.dts / 48000, 1, p) for p in a.packets]
            for _, tid, p in sorted(units, key=lambda x: (x[0], x[1])):
                for pkt in pk[tid].packetize(p.data, p.pts):
                    server.send_rtp(tid, pkt)
            result["close_after_send"] = True

    th = threading.Thread(target=_serve_one, args=(listener, server, on_event, result))
    th.start()
    out = subprocess.run([FFPROBE, "-v", "error", "-rtsp_transport", "tcp", "-show_entries",
                          "packet=stream_index,pts", "-of", "csv=p=0",
                          f"rtsp://127.0.0.1:{port}/live/x"],
                         capture_output=True, timeout=DEADLINE, text=True)
    th.join(DEADLINE)
    listener.close()
    rows = [line.split(",")[:2] for line in out.stdout.split() if line]
    vid = [p for s, p in rows if s == "0"]
    aud = [int(p) for s, p in rows if s == "1"]
    assert len(vid) == len(v.packets) and len(aud) == len(a.packets)
    # FFmpeg rebases each stream on its first RTP timestamp (video also shifted by its
    # reorder delay), so PTS differences are ours. FFmpeg 5.1 gives the very first H.264
    # packet (the keyframe) no PTS at all.
    want = sorted(p.pts for p in v.packets)
    if vid.count("N/A") == 1:
        want.remove(v.packets[0].pts)
    got = sorted(int(p) for p in vid if p != "N/A")
    assert [x - got[0] for x in got] == [w - want[0] for w in want]
    assert [x - aud[0] for x in aud] == [p.pts for p in a.packets]


def test_client_pulls_from_gstreamer_camera_with_digest():
    cam = subprocess.Popen(["/usr/bin/python3", "fixtures/gst_rtsp_camera.py", "--port", "0",
                            "--user", "u", "--password", "p", "--audio", "--fps", "15"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = cam.stdout.readline()
        assert line.startswith("camera ready port="), line
        port = int(line.strip().split("=")[1])
        client = ClientConnection(f"rtsp://u:p@127.0.0.1:{port}/stream1", cnonce="f00d")
        sock = socket.create_connection(("127.0.0.1", port), timeout=1.0)
        client.start(time.monotonic())
        events = []
        end = time.monotonic() + DEADLINE
        closing = False
        while time.monotonic() < end:
            for buf in client.data_to_send():
                sock.sendall(buf)
            try:
                data = sock.recv(65536)
            except socket.timeout:
                client.handle_timer(time.monotonic())
                continue
            if not data:
                break
            client.receive_data(data, time.monotonic())
            while (e := client.next_event()) is not None:
                events.append(e)
            if isinstance(events[-1:] and events[-1], (ev.Teardown, ev.RequestFailed)):
                break
            vids = [e for e in events if isinstance(e, ev.MediaReceived) and e.unit.track == 0]
            if len(vids) >= 20 and not closing:
                closing = True
                client.close()
        for buf in client.data_to_send():
            sock.sendall(buf)
        sock.close()
    finally:
        cam.terminate()
        cam.wait(10)
    described = next(e for e in events if isinstance(e, ev.Described))
    assert [t.codec for t in described.tracks] == [Codec.H264, Codec.AAC]
    assert any(isinstance(e, ev.Playing) for e in events)
    assert events[-1] == ev.Teardown("closed")
    changed = {e.track.id: e.track for e in events if isinstance(e, ev.TrackChanged)}
    assert (changed[0].config.width, changed[0].config.height) == (320, 240)
    assert changed[1].config.sample_rate == 48000 and changed[1].config.channels == 2
    vids = [e.unit for e in events if isinstance(e, ev.MediaReceived) and e.unit.track == 0]
    assert vids[0].keyframe and all(u.dts == u.pts for u in vids)  # baseline: no B-frames
    assert all(b.pts - a.pts == 6000 for a, b in zip(vids, vids[1:]))  # 15 fps
    auds = [e.unit for e in events if isinstance(e, ev.MediaReceived) and e.unit.track == 1]
    assert auds and all(b.pts - a.pts == 1024 for a, b in zip(auds, auds[1:]))
