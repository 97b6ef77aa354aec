"""RTMP interop with GStreamer's rtmp2sink/rtmp2src (Debian packages, system python3-gi):
the strictest peer about the handshake (S2 must echo C1) and about onStatus travelling on the
stream's msid. GStreamer publishes and plays; ffmpeg publishes while GStreamer joins mid-stream."""

from __future__ import annotations

import json
import pathlib
import subprocess

import pytest

from fixtures.media import make_media_file
from tests.interop.rtmp_tools import channel_stat, publish, stop, wait_until

pytestmark = pytest.mark.interop

SYSTEM_PYTHON = "/usr/bin/python3"
SCRIPT = str(pathlib.Path(__file__).with_name("gst_rtmp.py"))


def _have_gst() -> bool:
    try:
        r = subprocess.run([SYSTEM_PYTHON, "-c", "import gi; gi.require_version('Gst', '1.0'); "
                            "from gi.repository import Gst; Gst.init(None); "
                            "assert Gst.ElementFactory.find('rtmp2src') and Gst.ElementFactory.find('x264enc')"],
                           capture_output=True, timeout=20)
        return r.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


needs_gst = pytest.mark.skipif(not _have_gst(), reason="GStreamer rtmp2 / python3-gi not installed")


def gst(*args) -> subprocess.Popen:
    return subprocess.Popen([SYSTEM_PYTHON, SCRIPT, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@needs_gst
def test_gstreamer_publishes_and_plays(server):
    url = f"rtmp://127.0.0.1:{server.ports['rtmp']}/live/gst"
    player = gst("play", url, "60", "20")
    try:
        wait_until(lambda: channel_stat(server, "live/gst", "subscribers"), what="player subscribed")
        pub = gst("publish", url, "60")
        out, err = pub.communicate(timeout=30)
        assert pub.returncode == 0 and json.loads(out)["end"] == "eos", err.decode()[-600:]
        out, err = player.communicate(timeout=25)
    finally:
        stop(player)
    got = json.loads(out)
    assert got["end"] == "done", err.decode()[-600:]
    assert got["video"] == 60 and got["keyframe_first"] is True
    assert got["audio"] >= 90
    assert dict(server.call(lambda: server.app.listeners["rtmp"].statistics()).extra)["protocol_errors"] == 0


@needs_gst
def test_gstreamer_joins_an_ffmpeg_stream_mid_way(server, tmp_path):
    clip = make_media_file(str(tmp_path / "clip.mp4"), seconds=2.0, gop=30, bframes=True)
    url = f"rtmp://127.0.0.1:{server.ports['rtmp']}/live/mix"
    pub = publish(url, clip, loop=True)
    try:
        wait_until(lambda: (channel_stat(server, "live/mix", "frames_in") or 0) > 40, what="publishing")
        player = gst("play", url, "45", "15")
        out, err = player.communicate(timeout=25)
    finally:
        stop(pub)
    got = json.loads(out)
    assert got["end"] == "done", err.decode()[-600:]
    assert got["video"] >= 45 and got["keyframe_first"] is True and got["audio"] > 0
