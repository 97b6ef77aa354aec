"""Bad RTSP input over real sockets while ffmpeg publishes and ffmpeg plays over RTSP on the same
server: a malformed request, oversized headers, RTP garbage on an interleaved channel of a
publishing session, and a player that never reads each close only their own session with one
clear log line; the live stream keeps flowing, frame-exact."""

from __future__ import annotations

import logging
import re
import socket

import pytest

from fixtures.media import encode_video, make_media_file
from rtmpgop import codecs
from rtmpgop.io import rtsp_server
from rtmpgop.media import AccessUnit, Codec, Track
from rtmpgop.protocol.rtsp.message import MAX_HEADER_BYTES
from tests.interop.rtmp_tools import closed_by_server, framemd5, parse_framemd5, stop, wait_until
from tests.interop.test_rtsp_ffmpeg import rtsp_publish, rtsp_read, wait_live

pytestmark = pytest.mark.interop

SDP = (b"v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=bad\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n"
       b"m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1\r\n"
       b"a=control:trackID=0\r\n")


def request(s: socket.socket, head: str, body: bytes = b"") -> bytes:
    """Send one request; return the response head (and body, unread, is not expected)."""
    s.sendall(head.encode() + b"\r\n" + body)
    got = b""
    while b"\r\n\r\n" not in got:
        chunk = s.recv(65536)
        assert chunk, f"closed after {head.split()[0]}: {got!r}"
        got += chunk
    return got


def garbage_publisher(port: int) -> socket.socket:
    """A publishing session (ANNOUNCE/SETUP/RECORD over TCP) that then sends RTP garbage."""
    url = f"rtsp://127.0.0.1:{port}/live/garbage"
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    assert request(s, f"ANNOUNCE {url} RTSP/1.0\r\nCSeq: 1\r\nContent-Type: application/sdp\r\n"
                      f"Content-Length: {len(SDP)}\r\n", SDP).startswith(b"RTSP/1.0 200")
    got = request(s, f"SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 2\r\n"
                     "Transport: RTP/AVP/TCP;unicast;interleaved=0-1;mode=record\r\n")
    session = re.search(rb"Session: ([^;\r]+)", got)[1].decode()
    assert request(s, f"RECORD {url} RTSP/1.0\r\nCSeq: 3\r\nSession: {session}\r\n"
                   ).startswith(b"RTSP/1.0 200")
    s.sendall(b"$\x00\x00\x14" + b"\x00" * 20)  # RTP version 0
    return s


def never_reader(port: int, path: str) -> socket.socket:
    """A player that sets up and plays, then never reads another byte."""
    url = f"rtsp://127.0.0.1:{port}/{path}"
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    head = request(s, f"DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\n")
    length = int(re.search(rb"Content-Length: (\d+)", head)[1])
    body = head.split(b"\r\n\r\n", 1)[1]
    while len(body) < length:
        body += s.recv(65536)
    got = request(s, f"SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 2\r\n"
                     "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n")
    session = re.search(rb"Session: ([^;\r]+)", got)[1].decode()
    s.sendall(f"PLAY {url} RTSP/1.0\r\nCSeq: 3\r\nSession: {session}\r\n\r\n".encode())
    return s


def big_stream(server, path: str):
    """Publish straight into the hub: an H.264 track whose access units are 64 KiB of filler
    (never decoded), so a player that does not read fills its buffers within a second."""
    v = encode_video("h264", frames=1)
    owner = object()
    track = Track(0, codecs.make_config(Codec.H264, v.config), 90000)

    def begin():
        ch = server.hub.publish(path, owner)
        ch.set_tracks([track])
        return ch

    ch = server.call(begin)
    filler = bytes(range(256)) * 256

    def push(i):
        nal = bytes([0x65 if i == 0 else 0x41]) + filler
        ch.push(AccessUnit(0, i * 3000, i * 3000, i == 0, len(nal).to_bytes(4, "big") + nal))

    return ch, owner, push


def test_bad_sessions_do_not_disturb_a_live_stream(server, tmp_path, caplog, monkeypatch):
    caplog.set_level(logging.WARNING, logger="rtmpgop.io.rtsp_server")
    # small limits so the never-reading player stalls within the clip
    monkeypatch.setattr(rtsp_server, "WRITE_HIGH_WATER", 32 * 1024)
    monkeypatch.setattr(rtsp_server, "WRITE_STALL_TIMEOUT", 0.5)
    clip = make_media_file(str(tmp_path / "clip.mp4"), seconds=3.0, gop=90, bframes=True)
    port = server.ports["rtsp"]
    path = "live/steady"
    url = f"rtsp://127.0.0.1:{port}/{path}"
    pub = rtsp_publish(url, clip, "tcp")
    player = stalled = None
    try:
        wait_live(server, path)
        player = rtsp_read(url, "tcp")
        big, owner, push_big = big_stream(server, "live/big")
        server.call(push_big, 0)
        stalled = never_reader(port, "live/big")
        for i in range(1, 200):
            server.call(push_big, i)
            if any("WriteStalled" in r.getMessage() for r in caplog.records):
                break
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"HELLO\x00 there\r\n\r\n")
        assert closed_by_server(s, 10)
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"OPTIONS rtsp://h/x RTSP/1.0\r\nCSeq: 1\r\nX: " + b"a" * MAX_HEADER_BYTES + b"\r\n\r\n")
        assert closed_by_server(s, 10)
        assert closed_by_server(garbage_publisher(port), 10)
        wait_until(lambda: any("WriteStalled" in r.getMessage() for r in caplog.records),
                   timeout=10, what="stalled player closed")
        assert pub.wait(20) == 0, pub.stderr.read()
        out, err = player.communicate(timeout=20)
    finally:
        stop(pub)
        if player is not None:
            stop(player)
        if stalled is not None:
            stalled.close()
        server.call(lambda: server.hub.unpublish(big, owner))
    got = [h for _, h in parse_framemd5(out.decode())]
    ref = [h for _, h in framemd5(["-i", clip, "-map", "0:v"])]
    assert got == ref and len(ref) == 90, err.decode()[-400:]
    lines = [r.getMessage() for r in caplog.records if r.name == "rtmpgop.io.rtsp_server"]
    expected = ["closed: RTSPError ", "closed: RTSPError message head too large",
                "closed: RTPError ", "closed: WriteStalled "]
    for text in expected:
        assert sum(text in x for x in lines) >= 1, (text, lines)
    assert len(lines) == 4 and all(x.startswith("rtsp 127.0.0.1:") for x in lines), lines
    stats = server.call(lambda: server.app.listeners["rtsp"].statistics())
    assert dict(stats.extra)["protocol_errors"] == 4
    garbage = server.call(lambda: server.hub.get("live/garbage"))
    assert garbage is None or not garbage.is_live  # its publisher is gone
