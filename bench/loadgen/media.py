"""The benchmark's media: a cached ~5 Mbit/s H.264 + AAC loop, and the per-frame SEI stamp.

Video is 640x360 30 fps libx264 (ultrafast, no B-frames, fixed GoP, VBV-capped ABR) of a
scrolling gradient with heavy noise, so the encoder really spends ~5 Mbit/s. Audio is 48 kHz
stereo AAC-LC at 128 kbit/s. Publishers loop the cached frames with ever-increasing timestamps.

Every video message a publisher sends starts with one SEI NAL unit (H.264 7.3.2.3, payload type 5
user_data_unregistered, D.1.6) in front of the encoder's NAL units::

    FLV video header (5)   0x17|0x27, AVCPacketType 1, CTS 0
    NAL length (4)         39
    06 05 23               NAL type 6, SEI type 5, payload size 35
    uuid (16)              BENCH_UUID
    publisher id (3)       7 bits per byte, high bit set
    sequence number (8)    7 bits per byte, high bit set
    send time (8)          CLOCK_MONOTONIC in microseconds, 7 bits per byte, high bit set
    80                     rbsp trailing bits

Setting the high bit of every stamp byte means the stamp never contains 00 00 0x, so it needs no
emulation prevention bytes and stays a valid NAL unit. Servers forward it untouched; a player
reads the first ``STAMP_PREFIX`` bytes of each video message to check order and exactness.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import struct
import tempfile
from dataclasses import dataclass

BENCH_UUID = bytes.fromhex("7274_6d70_676f_7062_656e_6368_5345_4901".replace("_", ""))
SEI_PAYLOAD_SIZE = 16 + 3 + 8 + 8
SEI_NAL_SIZE = 3 + SEI_PAYLOAD_SIZE + 1
STAMP_PREFIX = 5 + 4 + SEI_NAL_SIZE  # bytes a player needs from the start of a video message
_SEI_HEAD = struct.pack(">I", SEI_NAL_SIZE) + bytes((6, 5, SEI_PAYLOAD_SIZE)) + BENCH_UUID
_UUID_AT = 12
_PUB_AT, _SEQ_AT, _TIME_AT = 28, 31, 39

AUDIO_RATE = 48000
AAC_FRAME = 1024


@dataclass(frozen=True, slots=True)
class Media:
    """Cached frames: ``video`` is a list of (keyframe, AVCC payload), ``audio`` raw AAC frames."""

    width: int
    height: int
    fps: int
    gop: int
    avcc: bytes  # AVCDecoderConfigurationRecord
    asc: bytes  # AudioSpecificConfig
    video: list[tuple[bool, bytes]]
    audio: list[bytes]

    @property
    def video_bitrate(self) -> float:
        """Average video bits per second of the loop."""
        return sum(len(d) for _, d in self.video) * 8 * self.fps / len(self.video)

    @property
    def audio_bitrate(self) -> float:
        return sum(len(d) for d in self.audio) * 8 * AUDIO_RATE / AAC_FRAME / len(self.audio)


def _seven(v: int, n: int) -> bytes:
    return bytes(0x80 | ((v >> (7 * (n - 1 - i))) & 0x7F) for i in range(n))


def _unseven(b) -> int:
    v = 0
    for x in b:
        v = (v << 7) | (x & 0x7F)
    return v


def video_tag_head(keyframe: bool, pub: int, seq: int, t_us: int) -> bytes:
    """FLV video tag header + the SEI stamp NAL (``STAMP_PREFIX`` bytes)."""
    return (b"\x17\x01\x00\x00\x00" if keyframe else b"\x27\x01\x00\x00\x00") + _SEI_HEAD + \
        _seven(pub, 3) + _seven(seq, 8) + _seven(t_us, 8) + b"\x80"


def read_stamp(prefix) -> tuple[int, int, int] | None:
    """(publisher id, sequence number, send time us) from a video message's first bytes, or None
    when the message carries no stamp (sequence header, foreign stream)."""
    if len(prefix) < STAMP_PREFIX or prefix[1] != 1 or prefix[9] != 6 or \
            prefix[_UUID_AT:_UUID_AT + 16] != BENCH_UUID:
        return None
    return (_unseven(prefix[_PUB_AT:_SEQ_AT]), _unseven(prefix[_SEQ_AT:_TIME_AT]),
            _unseven(prefix[_TIME_AT:_TIME_AT + 8]))


def video_sequence_header(avcc: bytes) -> bytes:
    return b"\x17\x00\x00\x00\x00" + avcc


def audio_sequence_header(asc: bytes) -> bytes:
    return b"\xaf\x00" + asc


def _frame(i: int, w: int, h: int, rng):
    import numpy as np

    x = (np.arange(w, dtype=np.int16) * 255 // (w - 1) + i * 4) % 256
    y = np.arange(h, dtype=np.int16) * 255 // (h - 1)
    img = np.empty((h, w, 3), dtype=np.int16)
    img[:, :, 0] = x[None, :]
    img[:, :, 1] = y[:, None]
    img[:, :, 2] = 128
    img += rng.integers(-40, 40, (h, w, 3), dtype=np.int16)
    return np.clip(img, 0, 255).astype(np.uint8)


def _encode(width: int, height: int, fps: int, gop: int, video_kbps: int, seconds: int) -> Media:
    import av
    import numpy as np

    rng = np.random.default_rng(7)
    buf = io.BytesIO()
    nframes = gop * (seconds + 1)  # first GoP lets the rate control settle; it is dropped
    with av.open(buf, "w", format="mp4") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        vs.bit_rate = video_kbps * 1000
        vs.codec_context.options = {
            "preset": "ultrafast", "bf": "0", "g": str(gop),
            "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:"
                           f"vbv-maxrate={video_kbps}:vbv-bufsize={video_kbps}"}
        as_ = out.add_stream("aac", rate=AUDIO_RATE)
        as_.layout = "stereo"
        as_.bit_rate = 128000
        audio_t = 0
        for i in range(nframes):
            f = av.VideoFrame.from_ndarray(_frame(i, width, height, rng), format="rgb24")
            f = f.reformat(format="yuv420p")
            f.pts = i
            out.mux(vs.encode(f))
            while audio_t < (i + 1) * AUDIO_RATE // fps:
                s = np.sin(2 * np.pi * 440 * np.arange(audio_t, audio_t + AAC_FRAME) / AUDIO_RATE)
                af = av.AudioFrame.from_ndarray(np.tile(s.astype(np.float32) * 0.3, (2, 1)),
                                                format="fltp", layout="stereo")
                af.sample_rate, af.pts = AUDIO_RATE, audio_t
                out.mux(as_.encode(af))
                audio_t += AAC_FRAME
        out.mux(vs.encode(None))
        out.mux(as_.encode(None))
    buf.seek(0)
    with av.open(buf) as inp:
        v, a = inp.streams.video[0], inp.streams.audio[0]
        avcc, asc = bytes(v.codec_context.extradata), bytes(a.codec_context.extradata)
        vpk, apk = [], []
        for p in inp.demux(v, a):
            if p.size:
                (vpk if p.stream.type == "video" else apk).append((bool(p.is_keyframe), bytes(p)))
    video = vpk[gop:gop * (seconds + 1)]
    if not video[0][0]:
        raise RuntimeError("cached loop does not start with a keyframe")
    naudio = len(video) * AUDIO_RATE // fps // AAC_FRAME
    audio = [d for _, d in apk[-naudio - 4:-4]]
    return Media(width, height, fps, gop, avcc, asc, video, audio)


def load_media(width: int = 640, height: int = 360, fps: int = 30, gop: int = 30,
               video_kbps: int = 4800, seconds: int = 2) -> Media:
    """The cached media loop (``seconds`` of video, GoP ``gop`` frames), encoded once with PyAV
    and kept in the temp dir (keyed by the parameters)."""
    key = hashlib.sha1(repr((1, width, height, fps, gop, video_kbps, seconds)).encode()).hexdigest()[:12]
    path = os.path.join(tempfile.gettempdir(), f"rtmpgop-bench-media-{key}.pkl")
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except (OSError, EOFError, pickle.PickleError, AttributeError, TypeError):
        pass
    media = _encode(width, height, fps, gop, video_kbps, seconds)
    tmp = f"{path}.{os.getpid()}"
    with open(tmp, "wb") as f:
        pickle.dump(media, f)
    os.replace(tmp, path)
    return media
