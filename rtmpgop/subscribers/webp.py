"""WebP frame renderer: a channel's video, decoded from its GoP head, as one WebP (or JPEG) per shown frame.

The browser path of the server (issue "WebP frame renderer over WebSockets"): any input codec
(H.264, HEVC, AV1, VP9 with B-frames, still JPEG/WebP frames from ``/ingest``) becomes a stream
of independent images that a ``<canvas>`` draws. This module is the pipeline only, synchronous
and free of threads and asyncio, so it can be driven from a worker thread (``io/webp_worker.py``)
and tested frame by frame:

    AccessUnit ─► decoder (PyAV, one per stream, frame threading off)
               ─► fps cap (on pts) ─► change check (numpy, block means of the luma plane)
               ─► downscale to ``max_width`` (swscale, stays YUV 4:2:0)
               ─► libwebp straight from the YUV frame (no RGB round trip) [+ JPEG for MJPEG]

Strategy and quirks:

- Decoders are dropped only after ``flush_buffers()``: PyAV deadlocks when a threaded decoder that
  still holds Python-owned packets is garbage-collected mid-GoP. We also keep frame threading off
  (it would add ``threads - 1`` frames of latency and is where that deadlock lives).
- Unchanged frames (static CCTV scenes) are not encoded: the luma plane is reduced to 8x8 block
  means and compared with the last *emitted* frame, so slow drifts add up; a keep-alive frame is
  still emitted every ``keepalive_seconds`` of media time.
- ``render=False`` on ``push`` decodes without encoding: the worker uses it while it catches up
  with a backlog (a new viewer starts at the GoP head, maybe a second behind live).
- A WebP still frame that needs no scaling is passed through as is (and a JPEG for MJPEG).
"""

from __future__ import annotations

import fractions
import json
import logging
from dataclasses import dataclass

from rtmpgop.media import VIDEO_CLOCK, AccessUnit, Codec, Statistics, Track, TrackSet

log = logging.getLogger(__name__)

av = np = None  # PyAV and numpy: imported by the first renderer (``load_codecs``), not here


def load_codecs() -> None:
    """Import PyAV and numpy into this module. They add ~45 MB of RSS; the io glue imports this
    module for its records (``RenderedFrame``, ``StreamInfo``), so a server that only relays
    RTMP/RTSP would pay for them without ever rendering. Called by ``WebpRenderer`` (in the
    worker thread) and ``luma_signature``; idempotent."""
    global av, np
    if av is None:
        import av as _av
        import numpy as _np
        av, np = _av, _np

DECODERS: dict[Codec, str] = {
    Codec.H264: "h264", Codec.H265: "hevc", Codec.VP9: "vp9",
    Codec.AV1: "libdav1d",  # FFmpeg's native "av1" decoder needs a hardware accelerator
    Codec.JPEG: "mjpeg", Codec.WEBP: "webp",
}
"""PyAV decoder per codec the renderer accepts."""

DECODER_THREADS = 1
"""Decoder threads. Frame threading adds a frame of latency per thread and is where PyAV's
garbage-collection deadlock lives; one renderer per stream already spreads streams over cores."""

CHANGE_BLOCK = 8
"""Side of the luma blocks whose means are compared to decide whether a frame changed."""

CHANGE_ROW_STEP = 4
"""Every 4th luma row is read for the change check (rows 0 and 4 of each block)."""

DEFAULT_CHANGE_THRESHOLD = 3.0
"""A frame counts as changed when some 8x8 block mean of its luma moved by more than this many
levels (0-255). Compression noise on a static scene stays below 2; a person walking in a
CCTV frame moves many blocks by tens of levels."""

DEFAULT_KEEPALIVE_SECONDS = 2.0
"""An unchanged scene still gets one frame this often, so viewers see the stream is alive."""

FPS_SLACK = 0.1
"""Fraction of the frame interval a frame may come early and still pass the fps cap (pts jitter)."""

MAX_OUTPUT_SIDE = 16383
"""libwebp cannot encode a side longer than this (WEBP_MAX_DIMENSION)."""

MAX_DECODE_ERRORS_LOGGED = 5
"""Decode errors logged per stream before going quiet (the counter keeps counting)."""


class RenderError(RuntimeError):
    """The renderer was misused (e.g. asked to decode a codec it has no decoder for)."""


@dataclass(frozen=True, slots=True)
class RenderSettings:
    """What the renderer produces. Defaults follow ``Config.webp_*``."""

    quality: int = 70  # libwebp quality 0-100
    method: int = 0  # libwebp method 0 (fastest) - 6; 0-2 keep a 720p frame near 10 ms
    max_width: int = 1280  # downscale wider pictures to this width (0 = never)
    max_fps: float = 30.0  # at most this many frames per second of media time (0 = no cap)
    change_threshold: float = DEFAULT_CHANGE_THRESHOLD  # < 0 disables change detection
    keepalive_seconds: float = DEFAULT_KEEPALIVE_SECONDS
    jpeg: bool = False  # also encode a JPEG per frame (MJPEG viewers)
    jpeg_quality: int = 5  # FFmpeg qscale 2 (best) - 31


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """What a viewer is told on connect and on change (sent as a JSON text message)."""

    codec: str
    width: int  # size of the images sent
    height: int
    source_width: int
    source_height: int
    fps: float  # source frame rate when known, else 0

    def to_json(self) -> str:
        return json.dumps({"type": "info", "codec": self.codec, "width": self.width,
                           "height": self.height, "source_width": self.source_width,
                           "source_height": self.source_height, "fps": self.fps},
                          separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class RenderedFrame:
    """One output picture. ``webp`` is a complete RIFF WebP file; ``jpeg`` is set when asked for."""

    seq: int  # 1, 2, ... per renderer
    pts: int  # in the 90 kHz video clock
    width: int
    height: int
    webp: bytes
    jpeg: bytes | None = None
    keepalive: bool = False  # emitted although unchanged


Output = RenderedFrame | StreamInfo


def output_size(width: int, height: int, max_width: int) -> tuple[int, int]:
    """The size pictures are encoded at: at most ``max_width`` wide, aspect kept, even sides."""
    if width <= 0 or height <= 0:
        raise RenderError(f"bad picture size {width}x{height}")
    w, h = width, height
    if max_width and w > max_width:
        h = max(2, round(h * max_width / w))
        w = max_width
    w = min(w, MAX_OUTPUT_SIDE)
    h = min(h, MAX_OUTPUT_SIDE)
    return max(2, w - w % 2), max(2, h - h % 2)


def luma_signature(frame: av.VideoFrame) -> np.ndarray:
    """8x8 block means of the luma plane (float32, 8-bit scale): the fingerprint for change checks.

    Each block mean is taken over its rows 0 and 4 only (16 of 64 pixels): a quarter of the
    memory traffic (0.3 ms instead of 2.5 ms at 720p) and still every column, so thin vertical
    edges moving sideways count.
    """
    load_codecs()
    plane = frame.planes[0]
    h, w = frame.height, frame.width
    wide = frame.format.name.endswith(("10le", "12le", "16le"))
    rows = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:h]
    y = rows.view("<u2")[:, :w] if wide else rows[:, :w]
    b = CHANGE_BLOCK
    hh, ww = h - h % b, w - w % b
    if hh == 0 or ww == 0:
        return y.astype(np.float32).reshape(1, -1)
    sampled = y[:hh:CHANGE_ROW_STEP, :ww]
    per_row = b // CHANGE_ROW_STEP
    r = sampled.reshape(hh // b, per_row, ww).sum(axis=1, dtype=np.uint32)
    blocks = r.reshape(hh // b, ww // b, b).sum(axis=2, dtype=np.uint32).astype(np.float32)
    blocks /= per_row * b * (4 if wide else 1)  # 10-bit pictures compared on the 8-bit scale
    return blocks


class WebpRenderer:
    """The decode -> cap -> change check -> scale -> encode pipeline of one stream.

    Feed ``set_tracks`` with each ``TrackSet`` and ``push`` with the video access units in decode
    order; both return the outputs they produced (``StreamInfo`` first when the picture size or
    codec changes). Call ``jump()`` before continuing at a later GoP head, ``close()`` at the end.
    Not thread-safe: one thread drives one renderer.
    """

    def __init__(self, settings: RenderSettings | None = None) -> None:
        load_codecs()
        self.settings = settings or RenderSettings()
        self.track: Track | None = None
        self.info: StreamInfo | None = None
        self._decoder: av.CodecContext | None = None
        self._webp_enc: av.CodecContext | None = None
        self._jpeg_enc: av.CodecContext | None = None
        self._enc_size = (0, 0)
        self._need_key = True
        self._seq = 0
        self._next_due: int | None = None
        self._last_sig: np.ndarray | None = None
        self._last_emit_pts: int | None = None
        # statistics
        self.frames_in = 0
        self.frames_decoded = 0
        self.frames_encoded = 0
        self.frames_unchanged = 0
        self.frames_capped = 0
        self.frames_not_rendered = 0  # decoded while catching up
        self.decode_errors = 0
        self.bytes_out = 0

    # ---------------------------------------------------------------- input
    def set_tracks(self, trackset: TrackSet) -> list[Output]:
        """Take the channel's tracks; (re)opens the decoder when the video track changed."""
        track = trackset.video()
        if track is not None and track.codec not in DECODERS:
            log.warning("renderer: no decoder for %s", track.codec.value)
            track = None
        old = self.track
        if track is not None and old is not None and track.config == old.config:
            self.track = track  # same decoder configuration (e.g. an audio track changed)
            return []
        self._drop_decoder()
        self.track = track
        self._need_key = True
        return []

    def jump(self) -> None:
        """Forget the decoder state: the next access unit will be a later GoP's keyframe."""
        if self._decoder is not None:
            self._decoder.flush_buffers()
        self._need_key = True

    def push(self, au: AccessUnit, render: bool = True) -> list[Output]:
        """Decode one access unit of the video track; encode the frames that are due.

        With ``render=False`` the frames are decoded (the decoder needs them) but not encoded.
        Returns the outputs (``StreamInfo`` before the first frame of a new size). Never raises
        on a bad bitstream: the error is counted and the stream waits for the next keyframe.
        """
        track = self.track
        if track is None or au.track != track.id:
            return []
        if self._need_key:
            if not au.keyframe:
                return []
            self._need_key = False
        self.frames_in += 1
        if self._decoder is None:
            self._decoder = self._open_decoder(track)
        pkt = av.Packet(au.payload)
        pkt.pts, pkt.dts = au.pts, au.dts
        pkt.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        if au.keyframe:
            pkt.is_keyframe = True
        try:
            frames = self._decoder.decode(pkt)
        except av.FFmpegError as e:
            self._decode_failed(e)
            return []
        out: list[Output] = []
        for frame in frames:
            self.frames_decoded += 1
            self._frame(frame, au if track.codec in (Codec.WEBP, Codec.JPEG) else None, render, out)
        return out

    def flush(self, render: bool = True) -> list[Output]:
        """Drain the decoder's delayed frames (end of stream). Returns the outputs."""
        if self._decoder is None:
            return []
        out: list[Output] = []
        try:
            frames = self._decoder.decode(None)
        except av.FFmpegError as e:
            self._decode_failed(e)
            frames = []
        for frame in frames:
            self.frames_decoded += 1
            self._frame(frame, None, render, out)
        self._drop_decoder()
        self._need_key = True
        return out

    def close(self) -> None:
        """Release the decoder and encoders (flushing first, see the module docstring)."""
        self._drop_decoder()
        self._webp_enc = self._jpeg_enc = None
        self._enc_size = (0, 0)

    def statistics(self) -> Statistics:
        return Statistics(
            frames_in=self.frames_in, frames_out=self.frames_encoded, bytes_out=self.bytes_out,
            extra=(("decoded", self.frames_decoded), ("unchanged", self.frames_unchanged),
                   ("capped", self.frames_capped), ("not_rendered", self.frames_not_rendered),
                   ("decode_errors", self.decode_errors)))

    # ---------------------------------------------------------------- internals
    def _open_decoder(self, track: Track) -> av.CodecContext:
        try:
            ctx = av.CodecContext.create(DECODERS[track.codec], "r")
        except KeyError:
            raise RenderError(f"no decoder for {track.codec}") from None
        if track.config.record:
            ctx.extradata = track.config.record
        ctx.thread_count = DECODER_THREADS
        ctx.thread_type = "SLICE"
        return ctx

    def _drop_decoder(self) -> None:
        dec, self._decoder = self._decoder, None
        if dec is not None:
            dec.flush_buffers()  # never let a decoder holding our packets be collected mid-GoP

    def _decode_failed(self, e: Exception) -> None:
        self.decode_errors += 1
        if self.decode_errors <= MAX_DECODE_ERRORS_LOGGED:
            log.warning("renderer: decode error (%s); waiting for the next keyframe", e)
        self.jump()

    def _frame(self, frame: av.VideoFrame, still: AccessUnit | None, render: bool,
               out: list[Output]) -> None:
        s = self.settings
        pts = frame.pts if frame.pts is not None else (self._last_emit_pts or 0)
        # fps cap, on media time; not for POSTed stills: their producer sets the rate, and a capped
        # still might be the last one for a long time
        if s.max_fps > 0 and still is None:
            interval = VIDEO_CLOCK / s.max_fps
            due = self._next_due
            if due is not None and pts < due - interval * FPS_SLACK:
                self.frames_capped += 1
                return
            self._next_due = (pts if due is None or pts > due + interval else due) + round(interval)
        if not render:
            self.frames_not_rendered += 1
            return
        # change check against the last emitted picture
        keepalive = False
        sig = luma_signature(frame) if s.change_threshold >= 0 else None
        if sig is not None and self._last_sig is not None and sig.shape == self._last_sig.shape:
            if float(np.max(np.abs(sig - self._last_sig))) <= s.change_threshold:
                last = self._last_emit_pts
                if last is not None and 0 <= pts - last < s.keepalive_seconds * VIDEO_CLOCK:
                    self.frames_unchanged += 1
                    return
                keepalive = True
        w, h = output_size(frame.width, frame.height, s.max_width)
        info = self._info(frame, w, h)
        if info != self.info:
            self.info = info
            out.append(info)
        if (still is not None and self.track is not None and self.track.codec is Codec.WEBP
                and (w, h) == (frame.width, frame.height)):
            webp = still.payload  # a POSTed WebP that fits: send it as is
        else:
            webp = self._encode_webp(frame, w, h)
        jpeg = None
        if s.jpeg:
            if (still is not None and self.track is not None and self.track.codec is Codec.JPEG
                    and (w, h) == (frame.width, frame.height)):
                jpeg = still.payload
            else:
                jpeg = self._encode_jpeg(frame, w, h)
        self._seq += 1
        self._last_sig = sig
        self._last_emit_pts = pts
        self.frames_encoded += 1
        self.bytes_out += len(webp)
        out.append(RenderedFrame(self._seq, pts, w, h, webp, jpeg, keepalive))

    def _info(self, frame: av.VideoFrame, w: int, h: int) -> StreamInfo:
        track = self.track
        codec = track.codec.value if track is not None else ""
        fps = track.config.frame_rate if track is not None else 0.0
        return StreamInfo(codec, w, h, frame.width, frame.height, float(fps))

    def _scaled(self, frame: av.VideoFrame, w: int, h: int, fmt: str) -> av.VideoFrame:
        if (frame.width, frame.height) == (w, h) and frame.format.name == fmt:
            return frame
        return frame.reformat(width=w, height=h, format=fmt, interpolation="BILINEAR")

    def _encoders(self, w: int, h: int) -> None:
        if self._enc_size != (w, h):
            self._webp_enc = self._jpeg_enc = None
            self._enc_size = (w, h)

    def _encode_webp(self, frame: av.VideoFrame, w: int, h: int) -> bytes:
        self._encoders(w, h)
        enc = self._webp_enc
        if enc is None:
            enc = av.CodecContext.create("libwebp", "w")
            enc.width, enc.height, enc.pix_fmt = w, h, "yuv420p"
            enc.time_base = fractions.Fraction(1, VIDEO_CLOCK)
            enc.options = {"quality": str(self.settings.quality),
                           "compression_level": str(self.settings.method)}
            enc.open()
            self._webp_enc = enc
        src = self._scaled(frame, w, h, "yuv420p")
        src.pts = None
        return b"".join(bytes(p) for p in enc.encode(src))

    def _encode_jpeg(self, frame: av.VideoFrame, w: int, h: int) -> bytes:
        self._encoders(w, h)
        enc = self._jpeg_enc
        if enc is None:
            enc = av.CodecContext.create("mjpeg", "w")
            enc.width, enc.height, enc.pix_fmt = w, h, "yuvj420p"
            enc.time_base = fractions.Fraction(1, VIDEO_CLOCK)
            enc.options = {"qmin": str(self.settings.jpeg_quality), "qmax": str(self.settings.jpeg_quality)}
            enc.open()
            self._jpeg_enc = enc
        src = self._scaled(frame, w, h, "yuvj420p")
        src.pts = None
        return b"".join(bytes(p) for p in enc.encode(src))
