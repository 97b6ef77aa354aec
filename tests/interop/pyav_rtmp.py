"""PyAV (FFmpeg 8.1) as an Enhanced RTMP publisher or player, run as a subprocess because PyAV
holds the GIL while it blocks on the network (an in-process server thread would starve).

    python -m tests.interop.pyav_rtmp publish URL hevc|av1 aac|libopus FRAMES
    python -m tests.interop.pyav_rtmp read URL

Each prints one JSON line: packets sent per kind, or streams and frames decoded per kind.
"""

from __future__ import annotations

import json
import sys

import av
import numpy as np

ENCODERS = {"h264": ("libx264", {"bf": "0", "g": "15"}),
            "hevc": ("libx265", {"x265-params": "log-level=error:keyint=15:bframes=0"}),
            "av1": ("libsvtav1", {"preset": "12", "svtav1-params": "keyint=15"})}


def publish(url: str, vcodec: str, acodec: str, frames: int) -> dict:
    from fixtures.media import pattern_frame

    out = av.open(url, "w", format="flv")
    name, opts = ENCODERS[vcodec]
    v = out.add_stream(name, rate=30)
    v.width, v.height, v.pix_fmt, v.options = 320, 240, "yuv420p", opts
    a = out.add_stream(acodec, rate=48000)
    a.layout = "stereo"
    per = 960 if acodec == "libopus" else 1024
    sent = {"video": 0, "audio": 0}

    def mux(packets, kind):
        for p in packets:
            if p.size:
                sent[kind] += 1
            out.mux(p)

    samples = 0
    for i in range(frames):
        fr = av.VideoFrame.from_ndarray(pattern_frame(i, 320, 240), format="rgb24")
        fr.pts = i
        mux(v.encode(fr), "video")
        while samples < (i + 1) * 1600:
            af = av.AudioFrame.from_ndarray(np.zeros((1, per * 2), dtype=np.int16), format="s16", layout="stereo")
            af.sample_rate, af.pts = 48000, samples
            samples += per
            mux(a.encode(af), "audio")
    mux(v.encode(), "video")
    mux(a.encode(), "audio")
    out.close()
    return sent


def read(url: str) -> dict:
    c = av.open(url, options={"rtmp_enhanced_codecs": "hvc1,av01,Opus", "rw_timeout": "15000000"}, timeout=15)
    streams = [[s.type, s.codec_context.name, getattr(s.codec_context, "width", 0)] for s in c.streams]
    n = {"video": 0, "audio": 0}
    for f in c.decode():
        n["video" if isinstance(f, av.VideoFrame) else "audio"] += 1
    c.close()
    return {"streams": streams, "decoded": n}


if __name__ == "__main__":
    if sys.argv[1] == "publish":
        res = publish(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        res = read(sys.argv[2])
    print(json.dumps(res), flush=True)
