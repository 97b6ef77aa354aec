"""Video of random noise encoded by PyAV through FFmpeg's MP4 muxer, in memory: the config
records (avcC, hvcC, av1C) are then the ones FFmpeg builds, for any encoder and pixel format."""

from __future__ import annotations

import io

import av
import numpy as np


def noise_mp4(encoder: str, width: int, height: int, pix_fmt: str, options: dict,
              frames: int, fps: int = 25, seed: int = 1) -> io.BytesIO:
    """Encode ``frames`` frames of seeded RGB noise (``seed``: same bytes every run) with
    ``encoder`` at ``fps``, converted to ``pix_fmt``, encoder ``options`` applied. Returns the
    MP4 file in a BytesIO (position at its end). Raises av.error.* for unknown encoders/options."""
    buf = io.BytesIO()
    rng = np.random.default_rng(seed)
    with av.open(buf, "w", format="mp4") as out:
        st = out.add_stream(encoder, rate=fps)
        st.width, st.height, st.pix_fmt = width, height, pix_fmt
        st.codec_context.options = dict(options)
        for i in range(frames):
            img = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
            f = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format=pix_fmt)
            f.pts = i
            out.mux(st.encode(f))
        out.mux(st.encode(None))
    return buf
