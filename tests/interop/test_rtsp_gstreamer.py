"""GStreamer's rtspsrc (another RTSP client implementation than FFmpeg's; VLC's live555 is not
installed here) pulls an ffmpeg-published stream over TCP and UDP: every video access unit and
the audio arrive, and the session ends with EOS (our RTCP BYE) when the publisher leaves.
GStreamer runs in the system Python (PyGObject), as fixtures/gst_rtsp_camera.py does."""

from __future__ import annotations

import subprocess

import pytest

from fixtures.media import make_media_file
from tests.interop.rtmp_tools import stop
from tests.interop.test_rtsp_ffmpeg import rtsp_publish, rtsp_url, wait_live

pytestmark = pytest.mark.interop

COUNTER = """import sys
import gi
gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst
Gst.init(None)
url, proto = sys.argv[1], sys.argv[2]
p = Gst.parse_launch(
    f"rtspsrc name=src location={url} protocols={proto} latency=0 "
    "rtph264depay name=vd ! h264parse ! video/x-h264,alignment=au ! "
    "fakesink name=v signal-handoffs=true sync=false "
    "rtpmp4gdepay name=ad ! fakesink name=a signal-handoffs=true sync=false")
def on_pad(src, pad):
    # Link each RTP pad by its media ourselves: gst-launch's delayed linking ("src. ! caps")
    # could give the first pad the other branch when its caps were not set yet (both dead).
    caps = pad.get_current_caps() or pad.query_caps(None)
    media = caps.get_structure(0).get_string("media")
    pad.link(p.get_by_name("vd" if media == "video" else "ad").get_static_pad("sink"))
p.get_by_name("src").connect("pad-added", on_pad)
n = {"v": 0, "a": 0, "vpts": []}
def on_v(sink, buf, pad):
    n["v"] += 1
    n["vpts"].append(buf.pts)
def on_a(sink, buf, pad):
    n["a"] += 1
p.get_by_name("v").connect("handoff", on_v)
p.get_by_name("a").connect("handoff", on_a)
loop = GLib.MainLoop()
end = {"why": "timeout"}
def on_msg(bus, msg):
    if msg.type == Gst.MessageType.EOS:
        end["why"] = "eos"; loop.quit()
    elif msg.type == Gst.MessageType.ERROR:
        end["why"] = "error: " + msg.parse_error()[0].message; loop.quit()
bus = p.get_bus(); bus.add_signal_watch(); bus.connect("message", on_msg)
GLib.timeout_add_seconds(float(sys.argv[3]) if len(sys.argv) > 3 else 20, loop.quit)
p.set_state(Gst.State.PLAYING)
loop.run()
p.set_state(Gst.State.NULL)
steps = sorted(set(b - a for a, b in zip(sorted(n["vpts"]), sorted(n["vpts"])[1:])))
print(f"video={n['v']} audio={n['a']} end={end['why']} steps={steps[:5]}")
"""


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_gstreamer_rtspsrc_gets_every_frame(server, tmp_path, transport):
    clip = make_media_file(str(tmp_path / "clip.mp4"), seconds=2.0, gop=60, bframes=True)
    counter = tmp_path / "gst_count.py"
    counter.write_text(COUNTER)
    path = f"live/gst{transport}"
    pub = rtsp_publish(rtsp_url(server, path), clip, "tcp")
    try:
        wait_live(server, path)
        out = subprocess.run(["/usr/bin/python3", str(counter), rtsp_url(server, path), transport,
                              "20"], capture_output=True, text=True, timeout=40)
        assert pub.wait(20) == 0
    finally:
        stop(pub)
    line = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else out.stderr[-500:]
    fields = dict(kv.split("=", 1) for kv in line.split(" ") if "=" in kv)
    assert fields.get("end") == "eos", line
    assert int(fields["video"]) == 60 and 85 <= int(fields["audio"]) <= 95, line
