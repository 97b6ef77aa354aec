"""RTSP interop through the whole App with Debian's ffmpeg/ffprobe 5.1:

- ffmpeg publishes H.264 (B-frames) + AAC over RTSP with ``-rtsp_transport tcp`` and ``udp``;
  ffmpeg reads it back over both transports: every video frame decodes bit-identical to the
  source (framemd5), audio decodes, timestamps keep the source spacing;
- HEVC + Opus published over RTSP: ffprobe reports the codecs; every frame decodes;
- RTMP in -> RTSP out and RTSP in -> RTMP out, frame-exact;
- an RTSP-published stream plays through LL-HLS and the WebP WebSocket viewer.

Players join while the first GoP is the newest (2 s clips, one keyframe), so they start at
frame 0. Port 0, deadlines, no bare sleeps.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import subprocess
import urllib.request

import pytest
import websockets
from PIL import Image

from fixtures.media import make_media_file
from tests.interop.rtmp_tools import (FFMPEG, FFPROBE, channel_stat, framemd5, parse_framemd5,
                                      publish, publisher_then_output, stop, stopping,
                                      wait_until)

pytestmark = pytest.mark.interop

DEADLINE = 30


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """2 s of 320x240 H.264 (B-frames, one GoP) + AAC 48 kHz stereo."""
    path = tmp_path_factory.mktemp("rtsp") / "clip.mp4"
    return make_media_file(str(path), seconds=2.0, gop=60, bframes=True)


@pytest.fixture(scope="module")
def hevc_clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("rtsp") / "hevc.mkv"
    return make_media_file(str(path), vcodec="hevc", acodec="opus", seconds=2.0, gop=60)


def rtsp_url(server, path):
    return f"rtsp://127.0.0.1:{server.ports['rtsp']}/{path}"


def rtsp_publish(url: str, src: str, transport: str = "tcp", loop: bool = False):
    cmd = [FFMPEG, "-nostdin", "-v", "error", "-re"]
    if loop:
        cmd += ["-stream_loop", "-1"]
    cmd += ["-i", src, "-c", "copy", "-f", "rtsp", "-rtsp_transport", transport, url]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_live(server, path):
    wait_until(lambda: (channel_stat(server, path, "frames_in") or 0) > 0, timeout=15,
               what=f"{path} live")


def rtsp_read(url: str, transport: str, *maps: str) -> subprocess.Popen:
    cmd = [FFMPEG, "-nostdin", "-v", "error", "-rtsp_transport", transport, "-i", url]
    for m in maps or ("0:v",):
        cmd += ["-map", m]
    return subprocess.Popen(cmd + ["-f", "framemd5", "-"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def _get(url: str) -> bytes:
    try:
        return urllib.request.urlopen(url, timeout=10).read()
    except OSError:
        return b""


def seconds(out: bytes, stream: int) -> list[float]:
    """PTS of ``stream``'s frames in seconds, using the ``#tb`` header of framemd5."""
    tb = re.search(rf"#tb {stream}: (\d+)/(\d+)", out.decode())
    return [p * int(tb[1]) / int(tb[2]) for p in pts_column(out, stream)]


def hashes(out: bytes, stream: int = 0) -> list[str]:
    return [h for s, h in parse_framemd5(out.decode()) if s == stream]


def pts_column(out: bytes, stream: int) -> list[int]:
    rows = [line.split(",") for line in out.decode().splitlines()
            if line and not line.startswith("#")]
    return [int(r[2]) for r in rows if int(r[0]) == stream]


@pytest.mark.parametrize("pub_tr,play_tr", [("tcp", "tcp"), ("udp", "udp"), ("tcp", "udp"),
                                            ("udp", "tcp")])
def test_publish_and_read_every_frame_identical(server, clip, pub_tr, play_tr):
    path = f"live/{pub_tr}{play_tr}"
    url = rtsp_url(server, path)
    with stopping() as keep:
        pub = keep(rtsp_publish(url, clip, pub_tr))
        wait_live(server, path)
        player = keep(rtsp_read(url, play_tr, "0:v", "0:a"))
        out, err = publisher_then_output(pub, player, DEADLINE)  # ends when the publisher leaves
    ref = framemd5(["-i", clip, "-map", "0:v"])
    got = hashes(out, 0)
    assert len(ref) == 60 and got == [h for _, h in ref], err.decode()[-500:]
    vpts = pts_column(out, 0)
    assert vpts == sorted(vpts) and len(set(vpts)) == 60  # one frame per tick, in order
    # audio: ~2 s of 1024-sample AAC frames decode (a few before the keyframe are cut)
    apts = pts_column(out, 1)
    assert 85 <= len(apts) <= 95 and all(b - a == 1024 for a, b in zip(apts, apts[1:]))
    assert b"rror" not in err


def test_hevc_opus_probe_and_decode(server, hevc_clip):
    path = "live/hevc"
    url = rtsp_url(server, path)
    with stopping() as keep:
        pub = keep(rtsp_publish(url, hevc_clip, "udp"))
        wait_live(server, path)
        player = keep(rtsp_read(url, "tcp", "0:v", "0:a"))
        probe = subprocess.run([FFPROBE, "-v", "error", "-rtsp_transport", "tcp", "-show_streams",
                                "-of", "json", url], capture_output=True, timeout=DEADLINE)
        out, err = publisher_then_output(pub, player, DEADLINE)
    streams = {s["codec_type"]: s for s in json.loads(probe.stdout)["streams"]}
    assert (streams["video"]["codec_name"], streams["video"]["width"]) == ("hevc", 320)
    assert (streams["audio"]["codec_name"], int(streams["audio"]["sample_rate"]),
            streams["audio"]["channels"]) == ("opus", 48000, 2)
    ref = framemd5(["-i", hevc_clip, "-map", "0:v"])
    assert hashes(out, 0) == [h for _, h in ref] and len(ref) == 60, err.decode()[-500:]
    apts = pts_column(out, 1)
    assert len(apts) >= 90 and all(b - a == 960 for a, b in zip(apts, apts[1:]))


def test_rtmp_in_rtsp_out_frame_exact(server, clip):
    path = "live/r2s"
    with stopping() as keep:
        pub = keep(publish(f"rtmp://127.0.0.1:{server.ports['rtmp']}/{path}", clip))
        wait_live(server, path)
        player = keep(rtsp_read(rtsp_url(server, path), "tcp", "0:v", "0:a"))
        out, err = publisher_then_output(pub, player, DEADLINE)
    ref = [h for _, h in framemd5(["-i", clip, "-map", "0:v"])]
    assert hashes(out) == ref and len(ref) == 60, err.decode()[-500:]
    # our RTCP SRs put both tracks on FFmpeg's one clock: audio starts with the video
    vsec, asec = seconds(out, 0), seconds(out, 1)
    assert abs(asec[0] - vsec[0]) <= 0.05, (vsec[:3], asec[:3])
    assert all(abs(b - a - 1024 / 48000) < 1e-6 for a, b in zip(asec, asec[1:]))


def test_rtsp_in_rtmp_out_frame_exact(server, clip):
    path = "live/s2r"
    with stopping() as keep:
        player = keep(subprocess.Popen(
            [FFMPEG, "-nostdin", "-v", "error", "-rw_timeout", "15000000", "-i",
             f"rtmp://127.0.0.1:{server.ports['rtmp']}/{path}", "-map", "0:v", "-map", "0:a",
             "-f", "framemd5", "-"], stdout=subprocess.PIPE, stderr=subprocess.PIPE))
        wait_until(lambda: channel_stat(server, path, "subscribers"), what="rtmp player")
        pub = keep(rtsp_publish(rtsp_url(server, path), clip, "tcp"))
        out, err = publisher_then_output(pub, player, DEADLINE)
    ref = [h for _, h in framemd5(["-i", clip, "-map", "0:v"])]
    assert hashes(out) == ref and len(ref) == 60, err.decode()[-500:]
    # one timeline for both tracks (RTSP gives each its own random RTP clock): the first
    # audio frame starts within a frame of the first video frame, and audio runs on evenly
    vsec, asec = seconds(out, 0), seconds(out, 1)
    assert abs(asec[0] - vsec[0]) <= 0.034, (vsec[:3], asec[:3])
    assert len(asec) >= 85 and all(0.020 <= b - a <= 0.022 for a, b in zip(asec, asec[1:]))


def test_rtsp_in_plays_over_llhls_and_webp(server, tmp_path):
    clip = make_media_file(str(tmp_path / "loop.mp4"), seconds=2.0, gop=30, bframes=True)
    path = "live/s2web"
    pub = rtsp_publish(rtsp_url(server, path), clip, "tcp", loop=True)
    try:
        wait_live(server, path)
        base = f"http://127.0.0.1:{server.ports['http']}/{path}"
        wait_until(lambda: _get(f"{base}/media.m3u8").count(b"#EXTINF") >= 2, timeout=15,
                   what="two LL-HLS segments")
        hls = subprocess.run([FFMPEG, "-nostdin", "-v", "error", "-i",
                              f"http://127.0.0.1:{server.ports['http']}/{path}/index.m3u8",
                              "-t", "2", "-map", "0:v", "-map", "0:a", "-f", "framemd5", "-"],
                             capture_output=True, timeout=DEADLINE)
        assert hls.returncode == 0 and b"rror" not in hls.stderr, hls.stderr[-500:]
        assert len(hashes(hls.stdout, 0)) >= 55 and len(hashes(hls.stdout, 1)) >= 85

        async def one_image():
            url = f"ws://127.0.0.1:{server.ports['ws']}/ws/{path}"
            async with asyncio.timeout(DEADLINE):
                async with websockets.connect(url) as ws:
                    while True:
                        msg = await ws.recv()
                        if isinstance(msg, bytes):
                            return msg
        img = Image.open(io.BytesIO(asyncio.run(one_image())))
        assert img.format == "WEBP" and img.size == (320, 240)
    finally:
        stop(pub)
