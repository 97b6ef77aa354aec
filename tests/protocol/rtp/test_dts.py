"""DTS derivation for RTP video (rtmpgop.protocol.rtp.dts) against the encoders' real DTS."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtmpgop import codecs
from rtmpgop.media import Codec
from rtmpgop.protocol.rtp.base import Frame
from rtmpgop.protocol.rtp.dts import DEFAULT_REORDER_DEPTH, DTSExtractor, reorder_depth

from .media_cache import video


def _run(ex, pts_list):
    out = []
    for p in pts_list:
        out += ex.push(Frame(p, b"", False))
    return out


@pytest.mark.parametrize("codec,bframes", [("h264", True), ("h264", False), ("hevc", True),
                                           ("hevc", False)])
def test_matches_encoder_dts(codec, bframes):
    s = video(codec, bframes)
    cfg = codecs.make_config(Codec.H264 if codec == "h264" else Codec.H265, s.config)
    depth = reorder_depth(cfg)
    assert depth == (2 if bframes else 0)
    out = _run(DTSExtractor(depth), [p.pts for p in s.packets])
    assert [d for d, _ in out] == [p.dts for p in s.packets]
    assert [f.pts for _, f in out] == [p.pts for p in s.packets]


def test_deeper_than_needed_is_still_valid():
    s = video("h264")
    out = _run(DTSExtractor(DEFAULT_REORDER_DEPTH), [p.pts for p in s.packets])
    dts = [d for d, _ in out]
    assert all(d <= f.pts for d, f in out) and dts == sorted(set(dts))
    assert len(out) == len(s.packets)


@given(st.lists(st.integers(0, 10), min_size=1, max_size=60), st.integers(0, 5))
def test_invariants_on_any_order(jitter, depth):
    pts = [i * 3000 + j * 3000 for i, j in enumerate(jitter)]
    out = _run(DTSExtractor(depth), pts)
    out += DTSExtractor(depth).flush()
    dts = [d for d, _ in out]
    assert all(b > a for a, b in zip(dts, dts[1:]))


def test_flush_releases_startup_frames():
    ex = DTSExtractor(2)
    assert _run(ex, [6000, 15000]) == []
    out = ex.flush()
    assert [(d, f.pts) for d, f in out] == [(6000, 6000), (15000, 15000)]
