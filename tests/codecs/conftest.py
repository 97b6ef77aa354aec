"""Encoder variants for the codec tests: encode with PyAV, mux to MP4 in memory and demux again,
so config records (avcC, hvcC, av1C, ASC, OpusHead) are the ones FFmpeg's muxer builds."""

from __future__ import annotations

import functools
import io
import os
from dataclasses import dataclass

import av
import numpy as np
import pytest

from tests.noise_mp4 import noise_mp4

os.environ.setdefault("SVT_LOG", "1")


@dataclass(frozen=True)
class Encoded:
    extradata: bytes
    packets: tuple[tuple[bool, bytes], ...]  # (keyframe flag from the demuxer, payload)
    width: int
    height: int
    profile: str | None
    sample_rate: int = 0
    channels: int = 0
    frame_size: int = 0


@functools.lru_cache(maxsize=None)
def encode_variant(encoder: str, width: int = 64, height: int = 48, pix_fmt: str = "yuv420p",
                   options: tuple[tuple[str, str], ...] = (), frames: int = 4,
                   fps: int = 25) -> Encoded:
    """Encode ``frames`` frames of noise with ``encoder``; returns what the MP4 demuxer sees."""
    return _demux(noise_mp4(encoder, width, height, pix_fmt, dict(options), frames, fps, seed=1))


@functools.lru_cache(maxsize=None)
def encode_audio_variant(encoder: str, rate: int = 48000, layout: str = "stereo",
                         options: tuple[tuple[str, str], ...] = (), frames: int = 4) -> Encoded:
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        st = out.add_stream(encoder, rate=rate, layout=layout)
        st.codec_context.options = dict(options)
        cc = st.codec_context
        fmt = cc.format.name
        fs = 1024
        nch = cc.layout.nb_channels
        t = 0
        for _ in range(frames + 2):
            s = (np.sin(np.arange(t, t + fs) / 7.0) * 0.2).astype(np.float32)
            if fmt == "fltp":
                arr = np.tile(s, (nch, 1))
            elif fmt == "flt":
                arr = np.repeat(s[None, :], nch, axis=0).T.reshape(1, -1).copy()
            else:
                arr = (np.repeat(s[None, :], nch, axis=0).T.reshape(1, -1) * 32767).astype(np.int16)
            af = av.AudioFrame.from_ndarray(arr, format=fmt, layout=layout)
            af.sample_rate, af.pts = rate, t
            out.mux(st.encode(af))
            t += fs
        out.mux(st.encode(None))
    return _demux(buf)


def _demux(buf: io.BytesIO) -> Encoded:
    buf.seek(0)
    with av.open(buf) as inp:
        st = inp.streams[0]
        cc = st.codec_context
        pkts = tuple((bool(p.is_keyframe), bytes(p)) for p in inp.demux(st) if p.size)
        if st.type == "video":
            return Encoded(bytes(cc.extradata or b""), pkts, cc.width, cc.height, cc.profile)
        return Encoded(bytes(cc.extradata or b""), pkts, 0, 0, cc.profile, cc.sample_rate,
                       cc.layout.nb_channels, cc.frame_size)


@pytest.fixture(scope="session")
def encode():
    return encode_variant


@pytest.fixture(scope="session")
def encode_audio():
    return encode_audio_variant
