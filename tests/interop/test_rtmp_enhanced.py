"""Enhanced RTMP interop through PyAV's bundled FFmpeg 8.1: HEVC + AAC and AV1 + Opus are
published over RTMP (flv muxer, E-RTMP FourCC headers), ingested, and read back by a PyAV player
that lists the FourCCs in its connect (``rtmp_enhanced_codecs``); every frame decodes."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

from tests.interop.rtmp_tools import channel_stat, stop, wait_until

pytestmark = pytest.mark.interop

FRAMES = 30
ROOT = pathlib.Path(__file__).resolve().parents[2]


def helper(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.interop.pyav_rtmp", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.parametrize("vcodec,acodec", [("hevc", "aac"), ("av1", "libopus")])
def test_enhanced_rtmp_publish_and_play(server, vcodec, acodec):
    path = f"live/e-{vcodec}"
    url = f"rtmp://127.0.0.1:{server.ports['rtmp']}/{path}"
    reader = helper("read", url)
    try:
        wait_until(lambda: channel_stat(server, path, "subscribers"), what="player subscribed")
        pub = helper("publish", url, vcodec, acodec, str(FRAMES))
        out, err = pub.communicate(timeout=30)
        assert pub.returncode == 0, err.decode()[-800:]
        sent = json.loads(out)
        rout, rerr = reader.communicate(timeout=20)
        assert reader.returncode == 0, rerr.decode()[-800:]
    finally:
        stop(reader)
    got = json.loads(rout)
    assert sorted(t for t, _, _ in got["streams"]) == ["audio", "video"]  # no stray data streams
    streams = {t: (name, w) for t, name, w in got["streams"]}
    assert streams["video"][1] == 320
    assert streams["audio"][0] == ("aac" if acodec == "aac" else "opus")
    assert got["decoded"]["video"] == sent["video"] == FRAMES
    assert got["decoded"]["audio"] >= sent["audio"] - 2  # a decoder may hold back priming frames
    stats = server.call(lambda: server.app.listeners["rtmp"].statistics())
    assert dict(stats.extra)["protocol_errors"] == 0


def test_enhanced_tracks_reach_the_hub(server):
    path = "live/e-tracks"
    url = f"rtmp://127.0.0.1:{server.ports['rtmp']}/{path}"
    reader = helper("read", url)  # keeps the channel (and its tracks) observable after publish
    try:
        wait_until(lambda: channel_stat(server, path, "subscribers"), what="player subscribed")
        codecs_seen = []

        def tracks():
            ch = server.hub.get(path)
            if ch is not None and ch.trackset.tracks:
                codecs_seen[:] = [(t.codec.value, t.config.width, t.config.sample_rate) for t in ch.trackset.tracks]
            return bool(codecs_seen)

        pub = helper("publish", url, "hevc", "libopus", "60")
        wait_until(lambda: server.call(tracks), timeout=20, what="tracks announced")
        assert pub.wait(30) == 0
    finally:
        stop(reader)
    assert codecs_seen == [("hevc", 320, 0), ("opus", 0, 48000)]
