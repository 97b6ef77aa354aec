"""RTSP authentication through the whole App with Debian's ffmpeg/ffprobe 5.1: the config keys
``rtsp_publish_user``/``_password`` and ``rtsp_read_user``/``_password`` (Digest MD5).

- ffmpeg publishing to ``rtsp://user:pass@host/path`` goes live; without credentials, or with
  the read credentials, the server answers 401 and ffmpeg gives up without publishing;
- ffprobe reading with the read credentials sees the stream; without them, or with the publish
  credentials, it gets 401 and fails.

Port 0, deadlines, no bare sleeps.
"""

from __future__ import annotations

import subprocess

import pytest

from fixtures.media import make_media_file
from rtmpgop.config import Config
from tests.conftest import ServerThread
from tests.interop.rtmp_tools import FFMPEG, FFPROBE, channel_stat, stop, wait_until

pytestmark = pytest.mark.interop

DEADLINE = 20


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("rtsp_auth") / "clip.mp4"
    return make_media_file(str(path), seconds=1.0, gop=30, bframes=False)


@pytest.fixture
def auth_server():
    cfg = Config(host="127.0.0.1", rtmp_port=0, rtsp_port=0, http_port=0, ws_port=0,
                 rtsp_udp_rtp_port=0, rtsp_publish_user="cam", rtsp_publish_password="pub pw",
                 rtsp_read_user="viewer", rtsp_read_password="r3ad")
    srv = ServerThread(cfg).start()
    try:
        yield srv
    finally:
        srv.stop()


def _url(server, path, cred=""):
    return f"rtsp://{cred}127.0.0.1:{server.ports['rtsp']}/{path}"


def _publish(url, clip, loop=False):
    cmd = [FFMPEG, "-nostdin", "-v", "error", "-re"]
    if loop:
        cmd += ["-stream_loop", "-1"]
    cmd += ["-i", clip, "-c", "copy", "-f", "rtsp", "-rtsp_transport", "tcp", url]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _probe(url):
    return subprocess.run([FFPROBE, "-v", "error", "-rtsp_transport", "tcp", "-show_entries",
                           "stream=codec_name", "-of", "csv=p=0", url],
                          capture_output=True, timeout=DEADLINE)


@pytest.mark.parametrize("cred", ["", "viewer:r3ad@", "cam:wrong@"])
def test_publish_without_the_publish_credentials_is_refused(auth_server, clip, cred):
    p = _publish(_url(auth_server, "live/locked", cred), clip)
    try:
        _, err = p.communicate(timeout=DEADLINE)
    finally:
        stop(p)
    assert p.returncode != 0 and b"401" in err
    assert auth_server.hub.get("live/locked") is None


def test_publish_and_read_with_credentials(auth_server, clip):
    pub = _publish(_url(auth_server, "live/ok", "cam:pub%20pw@"), clip, loop=True)
    try:
        wait_until(lambda: (channel_stat(auth_server, "live/ok", "frames_in") or 0) > 0,
                   timeout=15, what="live/ok published with credentials")
        ok = _probe(_url(auth_server, "live/ok", "viewer:r3ad@"))
        assert ok.returncode == 0, ok.stderr
        assert ok.stdout.split() == [b"h264", b"aac"]
        for cred in ("", "cam:pub%20pw@"):
            bad = _probe(_url(auth_server, "live/ok", cred))
            assert bad.returncode != 0 and b"401" in bad.stderr
            assert bad.stdout == b""
    finally:
        stop(pub)
