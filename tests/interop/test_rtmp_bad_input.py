"""Bad input over real sockets: garbage after the handshake, an oversized message and a chunk
size above the limit each close their own connection with one clear log line, while an ffmpeg
publisher and an ffmpeg player on the same server keep flowing, frame-exact."""

from __future__ import annotations

import logging
import socket
import subprocess

import pytest

from fixtures.media import make_media_file
from rtmpgop.protocol.rtmp import handshake
from rtmpgop.protocol.rtmp.chunk import MAX_CHUNK_SIZE, MAX_MESSAGE_SIZE, chunk_header
from tests.interop.rtmp_tools import (FFMPEG, channel_stat, closed_by_server, framemd5,
                                      parse_framemd5, publish, stop, wait_until)

pytestmark = pytest.mark.interop


def after_handshake(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    hello = handshake.client_hello(digest=False)
    s.sendall(hello)
    got = b""
    while len(got) < 1 + 2 * handshake.PACKET_SIZE:
        chunk = s.recv(8192)
        assert chunk, "server closed during the handshake"
        got += chunk
    s.sendall(handshake.client_finish(hello[1:], got))
    return s


BAD = {
    "garbage": chunk_header(1, 9, 0, 1, 9) + b"\xff" * 200,  # a type-1 chunk on an unknown csid
    "oversized": chunk_header(0, 6, 0, 0xFFFFFF, 9, 1) + b"\x00" * 100,
    "chunk size": chunk_header(0, 2, 0, 4, 1, 0) + (MAX_CHUNK_SIZE + 1).to_bytes(4, "big"),
}
LOG = {
    "garbage": "ChunkError first chunk of a chunk stream is not type 0 (csid=9 fmt=1)",
    "oversized": f"LimitExceeded MAX_MESSAGE_SIZE exceeded: {0xFFFFFF} > {MAX_MESSAGE_SIZE}",
    "chunk size": f"LimitExceeded MAX_CHUNK_SIZE exceeded: {MAX_CHUNK_SIZE + 1} > {MAX_CHUNK_SIZE}",
}


def test_bad_connections_do_not_disturb_a_live_stream(server, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="rtmpgop.io.rtmp_server")
    clip = make_media_file(str(tmp_path / "clip.mp4"), seconds=2.0, gop=30, bframes=True)
    port = server.ports["rtmp"]
    url = f"rtmp://127.0.0.1:{port}/live/steady"
    player = subprocess.Popen([FFMPEG, "-nostdin", "-v", "error", "-rw_timeout", "15000000", "-i", url,
                               "-map", "0:v", "-f", "framemd5", "-"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    try:
        wait_until(lambda: channel_stat(server, "live/steady", "subscribers"), what="player subscribed")
        pub = publish(url, clip)
        wait_until(lambda: (channel_stat(server, "live/steady", "frames_in") or 0) > 10, what="publishing")
        for name, data in BAD.items():
            s = after_handshake(port)
            s.sendall(data)
            assert closed_by_server(s, 5), name
        assert pub.wait(15) == 0
        out, err = player.communicate(timeout=15)
    finally:
        stop(player)
    got = [h for _, h in parse_framemd5(out.decode())]
    ref = [h for _, h in framemd5(["-i", clip, "-map", "0:v"])]
    assert got == ref and len(ref) == 60, err.decode()[-400:]
    lines = [r.getMessage() for r in caplog.records if r.name == "rtmpgop.io.rtmp_server"]
    for name, text in LOG.items():
        matching = [x for x in lines if text in x]
        assert len(matching) == 1, (name, lines)
        assert matching[0].startswith("rtmp 127.0.0.1:") and " closed: " in matching[0]
    stats = server.call(lambda: server.app.listeners["rtmp"].statistics())
    assert dict(stats.extra)["protocol_errors"] == 3
