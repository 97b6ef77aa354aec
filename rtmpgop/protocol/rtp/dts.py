"""Decode timestamps for RTP video, which carries presentation timestamps only (RFC 3550 5.1).

Strategy: a reorder-delay scheme rather than gortsplib/mediacommon's POC-based extractor. With
a reorder depth of N frames (H.264 ``max_num_reorder_frames`` / H.265
``sps_max_num_reorder_pics``), a frame decoded at position k is displayed no earlier than
position k - N, so the (k - N)-th smallest PTS seen so far is already final and is a valid DTS
for frame k: ``dts_k <= pts_k``, strictly increasing, and equal to what x264/x265 (through
FFmpeg) write when N is the encoder's delay. It needs no slice-header parsing, works across
IDR/POC resets and open GOPs, and adds latency only at start-up: the first N frames are held
until N + 1 frames give the frame duration used to place them before the first DTS.
A lost frame shifts the order statistics by one; the result is then clamped so DTS stays
monotonic and not above PTS. Audio and N = 0 streams get DTS = PTS.
"""

from __future__ import annotations

import heapq

from rtmpgop.codecs import h264 as c264
from rtmpgop.codecs import h265 as c265
from rtmpgop.codecs.bits import BitReader, unescape_rbsp
from rtmpgop.errors import CodecError
from rtmpgop.media import Codec, CodecConfig
from rtmpgop.protocol.rtp.base import Frame

DEFAULT_REORDER_DEPTH = 4
"""Reorder depth when the SPS does not say (no VUI bitstream_restriction) and the profile
allows B-frames: x264/x265 presets use at most 2-3 with B-pyramid. Too large only moves DTS
further below PTS; too small would give DTS > PTS."""

MAX_REORDER_DEPTH = 16  # the DPB never holds more than 16 frames (H.264 A.3.1, H.265 A.4.2)


def _h265_reorder(sps: bytes) -> int | None:
    """sps_max_num_reorder_pics of the highest sub-layer (H.265 7.3.2.2), or None."""
    r = BitReader(unescape_rbsp(sps[2:]))
    r.skip(4)
    msl = r.u(3)
    r.skip(1)
    r.skip(96)  # general profile/tier/level
    sub_p = []
    sub_l = []
    for _ in range(msl):
        sub_p.append(r.flag())
        sub_l.append(r.flag())
    if msl:
        r.skip(2 * (8 - msl))
    for i in range(msl):
        r.skip((88 if sub_p[i] else 0) + (8 if sub_l[i] else 0))
    r.ue()
    chroma = r.ue()
    if chroma == 3:
        r.skip(1)
    r.ue()
    r.ue()
    if r.flag():
        for _ in range(4):
            r.ue()
    r.ue()
    r.ue()
    r.ue()  # log2_max_pic_order_cnt_lsb_minus4
    all_layers = r.flag()
    reorder = None
    for _ in range(0 if all_layers else msl, msl + 1):
        r.ue()
        reorder = r.ue()
        r.ue()
    return reorder


def reorder_depth(config: CodecConfig) -> int:
    """The number of frames by which display order may trail decode order for this stream.

    H.264: VUI ``max_num_reorder_frames``, else 0 for POC type 2 or Baseline, else the default.
    H.265: ``sps_max_num_reorder_pics``. Other codecs: 0. Unparseable SPS: the default.
    """
    try:
        if config.codec is Codec.H264:
            rec = c264.parse_avcc(config.record)
            sps = c264.parse_sps(rec.sps[0])
            if sps.max_num_reorder_frames is not None:
                return min(sps.max_num_reorder_frames, MAX_REORDER_DEPTH)
            if sps.pic_order_cnt_type == 2 or sps.profile_idc == 66:
                return 0
            return DEFAULT_REORDER_DEPTH
        if config.codec is Codec.H265:
            rec = c265.parse_hvcc(config.record)
            n = _h265_reorder(rec.sps[0])
            return DEFAULT_REORDER_DEPTH if n is None else min(n, MAX_REORDER_DEPTH)
    except (CodecError, IndexError):
        return DEFAULT_REORDER_DEPTH
    return 0


class DTSExtractor:
    """Assigns DTS to frames arriving in decode order (see the module docstring).

    ``push(frame)`` returns ``[(dts, frame), ...]`` ready now (empty during start-up);
    ``set_depth`` adopts a new reorder depth after a configuration change.
    """

    __slots__ = ("depth", "_heap", "_startup", "_last")

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self._heap: list[int] = []
        self._startup: list[Frame] | None = [] if depth else None
        self._last: int | None = None

    def set_depth(self, depth: int) -> list[tuple[int, Frame]]:
        """Adopt a new depth (after a configuration change): restart the start-up phase.
        Returns the frames that were held; DTS stays monotonic across the restart."""
        if depth == self.depth:
            return []
        self.depth = depth
        return self.flush()

    def _clamp(self, dts: int, frame: Frame) -> tuple[int, Frame]:
        dts = min(dts, frame.pts)
        if self._last is not None and dts <= self._last:
            dts = self._last + 1
        self._last = dts
        return dts, frame

    def push(self, frame: Frame) -> list[tuple[int, Frame]]:
        """Add the next frame in decode order; return the (dts, frame) pairs now known."""
        if self.depth == 0:
            return [self._clamp(frame.pts, frame)]
        heapq.heappush(self._heap, frame.pts)
        if self._startup is not None:
            self._startup.append(frame)
            if len(self._startup) <= self.depth:
                return []
            held, self._startup = self._startup, None
            ordered = sorted(self._heap)
            steps = [b - a for a, b in zip(ordered, ordered[1:]) if b > a]
            step = min(steps) if steps else 1
            first = heapq.heappop(self._heap)
            n = self.depth
            out = [self._clamp(first - (n - k) * step, f) for k, f in enumerate(held[:-1])]
            out.append(self._clamp(first, held[-1]))
            return out
        return [self._clamp(heapq.heappop(self._heap), frame)]

    def flush(self) -> list[tuple[int, Frame]]:
        """Release frames held during start-up (end of stream or restart) and start over."""
        held = self._startup or []
        self._startup = [] if self.depth else None
        self._heap.clear()
        ordered = sorted(f.pts for f in held)
        return [self._clamp(d, f) for d, f in zip(ordered, held)]
