"""Encoded test streams shared by the RTP tests (encoded once per session; small sizes)."""

import functools

from fixtures.media import encode_audio, encode_video
from rtmpgop import codecs
from rtmpgop.media import AccessUnit, Codec, Track


@functools.lru_cache(maxsize=None)
def video(codec: str, bframes: bool = True):
    return encode_video(codec, frames=24, width=320, height=240, fps=24, bframes=bframes, gop=12)


@functools.lru_cache(maxsize=None)
def audio(codec: str, channels: int = 2):
    return encode_audio(codec, seconds=0.5, rate=48000, channels=channels)


def h264_aac_units(v, a) -> tuple[list, list]:
    """Tracks 0 (H.264 ``v``, 90 kHz) and 1 (AAC ``a``, 48 kHz), and every packet of both as an
    AccessUnit, in decode-time order (video first at equal times): (tracks, units)."""
    tracks = [Track(0, codecs.make_config(Codec.H264, v.config), 90000),
              Track(1, codecs.make_config(Codec.AAC, a.config), 48000)]
    units = [AccessUnit(0, p.dts, p.pts, p.keyframe, p.data) for p in v.packets]
    units += [AccessUnit(1, p.dts, p.pts, True, p.data) for p in a.packets]
    units.sort(key=lambda u: (u.dts / (90000 if u.track == 0 else 48000), u.track))
    return tracks, units
