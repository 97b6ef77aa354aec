"""Camera sources end to end: the App pulls real third-party RTSP servers and serves the
result to real players.

- GStreamer's rtsp-server (fixtures/gst_rtsp_camera.py, Debian's python3-gi) is the camera,
  with Digest auth; the pulled stream plays over RTMP (ffprobe), LL-HLS (ffmpeg decodes the
  playlist), WebP (WebSocket viewer gets a decodable image) and RTSP (ffprobe);
- an ``rtmp://`` source pulls that path from a second rtmpgop instance;
- faults: the camera is killed and restarted on the same port (an RTMP viewer stays connected
  and sees a keyframe again within the backoff window), the camera stalls (watchdog restart),
  wrong credentials, an unresolvable host and a refused port, while another camera on the same
  server keeps flowing; on-demand sources connect only while watched.
Port 0 everywhere, deadlines, no bare sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import subprocess
import time
import urllib.request

import pytest

from rtmpgop.config import Config, SourceConfig
from rtmpgop.io import sources as sources_mod
from rtmpgop.io.rtmp_client import open_url
from rtmpgop.protocol.rtmp import events as E
from tests.conftest import ServerThread
from tests.interop.browser import chromium_page
from tests.interop.rtmp_tools import FFMPEG, FFPROBE, wait_until

pytestmark = pytest.mark.interop

CAMERA = ["/usr/bin/python3", "fixtures/gst_rtsp_camera.py"]
DEADLINE = 30.0


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch):
    """Retries within 2 s (the server runs in-process, so the module constant applies)."""
    monkeypatch.setattr(sources_mod, "BACKOFF_MAX", 2.0)


def start_camera(*args: str, port: int = 0) -> tuple[subprocess.Popen, int]:
    """Start a GStreamer RTSP camera; returns (process, port). The caller kills it."""
    proc = subprocess.Popen([*CAMERA, "--port", str(port), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("camera ready port="), line
    except BaseException:
        kill(proc)
        raise
    return proc, int(line.strip().split("=")[1])


@contextlib.contextmanager
def camera(*args: str, port: int = 0):
    """A GStreamer RTSP camera for the ``with`` block; yields (process, port)."""
    proc, port = start_camera(*args, port=port)
    try:
        yield proc, port
    finally:
        kill(proc)


def kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)


@contextlib.contextmanager
def app(*srcs: SourceConfig):
    cfg = Config(host="127.0.0.1", rtmp_port=0, rtsp_port=0, http_port=0, ws_port=0,
                 rtsp_udp_rtp_port=0, sources=tuple(srcs))
    srv = ServerThread(cfg).start()
    try:
        yield srv
    finally:
        srv.stop()


def streams(srv) -> dict[str, dict]:
    url = f"http://127.0.0.1:{srv.ports['http']}/api/streams"
    data = json.loads(urllib.request.urlopen(url, timeout=5).read())
    return {s["path"]: s for s in data["streams"]}


def status(srv, path):
    return srv.call(lambda: srv.app.services["sources"].sources[path].status())


def frames_in(srv, path) -> int:
    return srv.call(lambda: (ch := srv.hub.get(path)) and ch.frames_in or 0)


def probe(url: str, *extra: str) -> list[dict]:
    out = subprocess.run([FFPROBE, "-v", "error", *extra, "-show_entries",
                          "stream=codec_name,width,height,sample_rate", "-of", "json", url],
                         capture_output=True, timeout=DEADLINE, text=True, check=True).stdout
    return json.loads(out)["streams"]


def decode_frames(url: str, n: int, *extra: str) -> int:
    """Video frames ffmpeg decodes from ``url`` (stops after ``n``)."""
    out = subprocess.run([FFMPEG, "-nostdin", "-v", "error", *extra, "-i", url, "-map", "0:v",
                          "-frames:v", str(n), "-f", "framemd5", "-"],
                         capture_output=True, timeout=DEADLINE, text=True, check=True).stdout
    return sum(1 for line in out.splitlines() if line and not line.startswith("#"))


def test_camera_pulled_with_digest_plays_over_rtmp_llhls_webp_rtsp():
    with camera("--user", "admin", "--password", "s3cret", "--audio") as (_, port):
        src = SourceConfig("live/cam1", f"rtsp://127.0.0.1:{port}/stream1", user="admin",
                           password="s3cret")
        with app(src) as srv:
            wait_until(lambda: status(srv, "live/cam1").state == "live", DEADLINE, what="live")
            info = streams(srv)["live/cam1"]
            assert info["source_state"] == "live" and info["source_error"] == ""
            assert info["source_url"] == f"rtsp://127.0.0.1:{port}/stream1"
            assert [(t["codec"], t["width"]) for t in info["tracks"]] == [("h264", 320), ("aac", 0)]
            rtmp = f"rtmp://127.0.0.1:{srv.ports['rtmp']}/live/cam1"
            got = probe(rtmp)
            assert {s["codec_name"] for s in got} == {"h264", "aac"}
            assert any(s.get("width") == 320 and s.get("height") == 240 for s in got)
            assert decode_frames(rtmp, 20) == 20
            hls = f"http://127.0.0.1:{srv.ports['http']}/live/cam1/index.m3u8"
            assert decode_frames(hls, 20) == 20
            assert webp_frame(srv.ports["ws"], "live/cam1") == (320, 240)
            if "rtsp" in srv.ports:
                rtsp = f"rtsp://127.0.0.1:{srv.ports['rtsp']}/live/cam1"
                assert decode_frames(rtsp, 20, "-rtsp_transport", "tcp") == 20
            # An rtmp:// source on a second server relays the first one.
            relay = SourceConfig("relay/cam1", rtmp)
            with app(relay) as srv2:
                wait_until(lambda: status(srv2, "relay/cam1").state == "live", DEADLINE,
                           what="relay live")
                got2 = probe(f"rtmp://127.0.0.1:{srv2.ports['rtmp']}/relay/cam1")
                assert {s["codec_name"] for s in got2} == {"h264", "aac"}
                assert decode_frames(f"rtmp://127.0.0.1:{srv2.ports['rtmp']}/relay/cam1", 10) == 10


def webp_frame(ws_port: int, path: str) -> tuple[int, int]:
    """Size of the first WebP image a WebSocket viewer receives."""
    import websockets
    from PIL import Image

    async def main():
        async with websockets.connect(f"ws://127.0.0.1:{ws_port}/ws/{path}") as ws:
            async with asyncio.timeout(DEADLINE):
                while True:
                    msg = await ws.recv()
                    if isinstance(msg, bytes):
                        img = Image.open(io.BytesIO(msg))
                        img.load()
                        assert img.format == "WEBP"
                        return img.size

    return asyncio.run(main())


class RtmpViewer:
    """Our asyncio RTMP client as a long-lived viewer: records (arrival, dts ms, keyframe)
    per video message and the status codes, and stays connected through UnpublishNotify."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.video: list[tuple[float, int, bool]] = []
        self.codes: list[str] = []

    async def run(self, until) -> None:
        client = await open_url(self.url, "play")
        try:
            async with asyncio.timeout(DEADLINE * 2):
                while not until(self):
                    ev = await client.next_event(DEADLINE)
                    if isinstance(ev, E.VideoData) and ev.payload:
                        self.video.append((time.monotonic(), ev.timestamp, ev.tag.keyframe))
                    elif isinstance(ev, E.Status):
                        self.codes.append(ev.code)
        finally:
            client.close()


def test_camera_killed_and_restarted_viewer_resumes(caplog):
    caplog.set_level(logging.INFO)
    procs = [start_camera()]
    port = procs[0][1]
    src = SourceConfig("live/door", f"rtsp://127.0.0.1:{port}/stream1", stall_timeout=3.0)
    try:
        with app(src) as srv:
            wait_until(lambda: status(srv, "live/door").state == "live", DEADLINE, what="live")
            viewer = RtmpViewer(f"rtmp://127.0.0.1:{srv.ports['rtmp']}/live/door")
            marks: dict[str, float] = {}

            def script(v: RtmpViewer) -> bool:
                if "killed" not in marks and len(v.video) >= 15:
                    kill(procs[0][0])
                    marks["killed"] = time.monotonic()
                elif "killed" in marks and "restarted" not in marks and \
                        status(srv, "live/door").state == "retrying":
                    procs.append(start_camera(port=port))  # the same port, like a rebooted camera
                    marks["restarted"] = time.monotonic()
                return "restarted" in marks and \
                    sum(t > marks["restarted"] for t, _, _ in v.video) >= 15

            asyncio.run(viewer.run(script))
            st = status(srv, "live/door")
    finally:
        for proc, _ in procs:
            kill(proc)
    assert st.state == "live" and st.reconnects >= 1
    assert "NetStream.Play.UnpublishNotify" in viewer.codes  # the viewer was told, and stayed
    assert viewer.codes.count("NetStream.Play.PublishNotify") >= 1
    after = [(t, ts, k) for t, ts, k in viewer.video if t > marks["restarted"]]
    assert after[0][2]  # resumes on a keyframe
    # Back within the backoff window (BACKOFF_MAX 2 s + jitter, plus the camera's start-up).
    assert after[0][0] - marks["restarted"] < 2.0 * 1.2 + 3.0
    ts = [ts for _, ts, _ in viewer.video]
    assert ts == sorted(ts)  # one continuous timeline for the viewer
    assert "source live/door (rtsp://127.0.0.1" in caplog.text


def test_stalled_camera_is_restarted_by_the_watchdog():
    with camera("--stall-after", "1.5") as (_, port):
        src = SourceConfig("live/stall", f"rtsp://127.0.0.1:{port}/stream1", stall_timeout=1.0)
        with app(src) as srv:
            wait_until(lambda: status(srv, "live/stall").reconnects >= 1, DEADLINE, what="restart")
            st = status(srv, "live/stall")
            assert st.last_error == "no frame for 1 s" or st.state == "live"
            before = frames_in(srv, "live/stall")
            # The fresh session gets frames again (GStreamer builds a new pipeline for it).
            wait_until(lambda: frames_in(srv, "live/stall") > before + 5, DEADLINE,
                       what="frames after the restart")


def test_bad_sources_fail_clearly_and_do_not_disturb_a_good_one(caplog):
    with camera("--user", "u", "--password", "right") as (_, port):
        srcs = [
            SourceConfig("live/good", f"rtsp://u:right@127.0.0.1:{port}/stream1"),
            SourceConfig("live/badauth", f"rtsp://u:wrong@127.0.0.1:{port}/stream1"),
            SourceConfig("live/nohost", "rtsp://camera.invalid/stream1"),
            SourceConfig("live/refused", "rtsp://127.0.0.1:9/stream1"),
            SourceConfig("live/badrtmp", "rtmp://127.0.0.1:9/live/x"),
        ]
        with app(*srcs) as srv:
            wait_until(lambda: all(status(srv, s.path).reconnects >= 2 for s in srcs[1:]),
                       DEADLINE, what="two retries of each bad source")
            st = {s.path: status(srv, s.path) for s in srcs}
            good = st["live/good"]
            assert good.state == "live" and good.reconnects == 0
            assert st["live/badauth"].last_error == \
                "RtspSourceError: DESCRIBE failed: 401 Unauthorized"
            assert "gaierror" in st["live/nohost"].last_error
            for p in ("live/refused", "live/badrtmp"):
                assert st[p].last_error.startswith("ConnectionRefusedError: ")
                assert "refused" in st[p].last_error.lower()
            listed = streams(srv)
            assert listed["live/badauth"]["source_state"] in ("retrying", "connecting")
            assert listed["live/badauth"]["reconnects"] >= 2
            assert listed["live/nohost"]["live"] is False and listed["live/good"]["live"]
            n = frames_in(srv, "live/good")
            wait_until(lambda: frames_in(srv, "live/good") > n + 10, 5, what="good keeps flowing")
            stats = srv.call(lambda: srv.app.services["sources"].statistics())
            assert dict(stats.extra)["live"] == 1 and dict(stats.extra)["sources"] == 5
            rows = index_page_rows(srv.ports["http"])  # what a person sees on /
            assert rows["live/badauth"].startswith("retrying: RtspSourceError: DESCRIBE failed: "
                                                   "401 Unauthorized (") or \
                rows["live/badauth"].startswith("connecting")
            assert rows["live/good"] == "live"
    assert "wrong" not in caplog.text  # the password never reaches the logs
    assert "source live/badauth (rtsp://u:***@127.0.0.1" in caplog.text


def index_page_rows(http_port: int) -> dict[str, str]:
    """Path -> state cell of the stream list at ``/``, rendered by headless Chromium."""
    with chromium_page() as page:
        page.goto(f"http://127.0.0.1:{http_port}/")
        page.wait_for_selector("#streams tbody tr", timeout=DEADLINE * 1000)
        cells = page.eval_on_selector_all(
            "#streams tbody tr", "rows => rows.map(r => [r.cells[0].textContent, "
            "r.cells[1].textContent])")
    return dict(cells)


def test_on_demand_camera_connects_only_while_watched():
    with camera() as (_, port):
        src = SourceConfig("live/lazy", f"rtsp://127.0.0.1:{port}/stream1", on_demand=True,
                           idle_timeout=1.0)
        with app(src) as srv:
            listed = streams(srv)["live/lazy"]  # listed although nobody pulls it yet
            assert listed["source_state"] == "idle" and listed["live"] is False
            viewer = RtmpViewer(f"rtmp://127.0.0.1:{srv.ports['rtmp']}/live/lazy")
            asyncio.run(viewer.run(lambda v: len(v.video) >= 10))
            assert viewer.video[0][2]
            wait_until(lambda: status(srv, "live/lazy").state == "idle", 10, what="idle again")
            assert streams(srv)["live/lazy"]["source_state"] == "idle"
            # LL-HLS requests hold no subscription: the playlist request wakes the camera.
            hls = f"http://127.0.0.1:{srv.ports['http']}/live/lazy/index.m3u8"
            assert decode_frames(hls, 20) == 20
            assert status(srv, "live/lazy").reconnects == 0
            wait_until(lambda: status(srv, "live/lazy").state == "idle", 10, what="idle after HLS")


def test_on_demand_camera_woken_by_rtsp_describe():
    """An RTSP player DESCRIBE-ing an idle on-demand camera's path waits for it to come up."""
    with camera("--audio") as (_, port):
        src = SourceConfig("live/lazyrtsp", f"rtsp://127.0.0.1:{port}/stream1", on_demand=True,
                           idle_timeout=1.0)
        with app(src) as srv:
            assert status(srv, "live/lazyrtsp").state == "idle"
            url = f"rtsp://127.0.0.1:{srv.ports['rtsp']}/live/lazyrtsp"
            got = probe(url, "-rtsp_transport", "tcp")
            assert sorted(s["codec_name"] for s in got) == ["aac", "h264"]
            assert frames_in(srv, "live/lazyrtsp") > 0
            wait_until(lambda: status(srv, "live/lazyrtsp").state == "idle", 10,
                       what="idle after the RTSP player left")
            # A path that is neither live nor a source is still a plain 404, at once.
            t0 = time.monotonic()
            missing = subprocess.run([FFPROBE, "-v", "error", "-rtsp_transport", "tcp",
                                      url + "x"], capture_output=True, timeout=DEADLINE)
            assert missing.returncode != 0 and b"404" in missing.stderr
            assert time.monotonic() - t0 < 5


def test_ffmpeg_publishing_to_our_rtsp_server_is_a_second_camera():
    """ffmpeg publishes H.264 + AAC over RTSP to one rtmpgop; a second pulls it as a camera
    (alongside the GStreamer one) and serves both over RTMP."""
    with app() as cam_srv, camera("--audio") as (_, gst_port):
        pub_url = f"rtsp://127.0.0.1:{cam_srv.ports['rtsp']}/cams/ffmpeg"
        pub = subprocess.Popen(
            [FFMPEG, "-nostdin", "-v", "error", "-re", "-f", "lavfi", "-i",
             "testsrc=size=320x240:rate=25", "-f", "lavfi", "-i",
             "sine=frequency=440:sample_rate=48000", "-t", "60", "-c:v", "libx264",
             "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "25", "-c:a", "aac",
             "-f", "rtsp", "-rtsp_transport", "tcp", pub_url],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_until(lambda: frames_in(cam_srv, "cams/ffmpeg") > 0, DEADLINE, what="publish")
            srcs = (SourceConfig("live/second", pub_url),
                    SourceConfig("live/first", f"rtsp://127.0.0.1:{gst_port}/stream1",
                                 transport="udp"))
            with app(*srcs) as srv:
                for s in srcs:
                    wait_until(lambda: status(srv, s.path).state == "live", DEADLINE, what=s.path)
                for path in ("live/second", "live/first"):
                    url = f"rtmp://127.0.0.1:{srv.ports['rtmp']}/{path}"
                    assert {s["codec_name"] for s in probe(url)} == {"h264", "aac"}
                    assert decode_frames(url, 15) == 15
        finally:
            pub.terminate()
            pub.wait(10)
