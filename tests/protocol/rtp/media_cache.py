"""Encoded test streams shared by the RTP tests (encoded once per session; small sizes)."""

import functools

from fixtures.media import encode_audio, encode_video


@functools.lru_cache(maxsize=None)
def video(codec: str, bframes: bool = True):
    return encode_video(codec, frames=24, width=320, height=240, fps=24, bframes=bframes, gop=12)


@functools.lru_cache(maxsize=None)
def audio(codec: str, channels: int = 2):
    return encode_audio(codec, seconds=0.5, rate=48000, channels=channels)
