"""GStreamer (rtmp2sink / rtmp2src) as an RTMP publisher or player, for the interop tests.

Runs under the system ``/usr/bin/python3`` (Debian's python3-gi), not the project venv:

    /usr/bin/python3 tests/interop/gst_rtmp.py publish URL FRAMES
    /usr/bin/python3 tests/interop/gst_rtmp.py play URL FRAMES TIMEOUT

``publish`` pushes FRAMES frames of 320x240 H.264 (x264, no B-frames) + AAC through flvmux;
``play`` counts the H.264 access units flvdemux hands out until FRAMES arrived (or TIMEOUT s).
Each prints one JSON line; GStreamer errors go to stderr and a non-zero exit.
"""

import json
import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402


def run(pipeline: Gst.Pipeline, timeout: float, stop_when=lambda: False) -> str:
    loop = GLib.MainLoop()
    result = {"end": "timeout"}

    def on_message(bus, msg):
        if msg.type == Gst.MessageType.EOS:
            result["end"] = "eos"
            loop.quit()
        elif msg.type == Gst.MessageType.ERROR:
            err, dbg = msg.parse_error()
            result["end"] = f"error: {err.message}"
            print(f"gst error: {err.message} {dbg}", file=sys.stderr)
            loop.quit()

    bus = pipeline.get_bus()
    bus.add_signal_watch()
    bus.connect("message", on_message)

    def check():
        if stop_when():
            result["end"] = "done"
            loop.quit()
            return False
        return True

    GLib.timeout_add(20, check)
    GLib.timeout_add(int(timeout * 1000), loop.quit)
    pipeline.set_state(Gst.State.PLAYING)
    loop.run()
    pipeline.set_state(Gst.State.NULL)
    return result["end"]


def publish(url: str, frames: int) -> dict:
    p = Gst.parse_launch(
        f"videotestsrc num-buffers={frames} ! video/x-raw,width=320,height=240,framerate=30/1 ! "
        "x264enc key-int-max=15 bframes=0 speed-preset=ultrafast ! h264parse ! queue ! "
        "flvmux name=m streamable=true ! "
        f"rtmp2sink location={url} "
        f"audiotestsrc num-buffers={frames * 48000 // 30 // 1024} samplesperbuffer=1024 ! "
        "audio/x-raw,rate=48000,channels=2 ! voaacenc ! aacparse ! queue ! m.")
    end = run(p, 20)
    return {"end": end}


def play(url: str, frames: int, timeout: float) -> dict:
    p = Gst.parse_launch(
        f"rtmp2src location={url} ! flvdemux name=d "
        "d.video ! queue ! h264parse ! video/x-h264,alignment=au ! fakesink name=v signal-handoffs=true sync=false "
        "d.audio ! queue ! fakesink name=a signal-handoffs=true sync=false")
    count = {"video": 0, "audio": 0, "keyframe_first": None}

    def on_video(sink, buf, pad):
        if count["keyframe_first"] is None:
            count["keyframe_first"] = not buf.has_flags(Gst.BufferFlags.DELTA_UNIT)
        count["video"] += 1

    def on_audio(sink, buf, pad):
        count["audio"] += 1

    p.get_by_name("v").connect("handoff", on_video)
    p.get_by_name("a").connect("handoff", on_audio)
    end = run(p, timeout, lambda: count["video"] >= frames)
    count["end"] = end
    return count


if __name__ == "__main__":
    Gst.init(None)
    if sys.argv[1] == "publish":
        res = publish(sys.argv[2], int(sys.argv[3]))
    else:
        res = play(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    print(json.dumps(res), flush=True)
    sys.exit(0 if not res["end"].startswith("error") else 1)
