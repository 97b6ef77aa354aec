"""H.265 RTP depacketizer/packetizer (rtmpgop.protocol.rtp.h265) with real x265 output."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtmpgop import codecs
from rtmpgop.codecs import h264 as c264
from rtmpgop.codecs import h265 as c265
from rtmpgop.errors import ProtocolError, Unsupported
from rtmpgop.media import Codec
from rtmpgop.protocol.rtp.h265 import H265Depacketizer, H265Packetizer
from rtmpgop.protocol.rtp.packet import ReorderBuffer, RTPPacket, parse_rtp

from .media_cache import video


def _run(mtu, with_params=False, sdp_config=True, perm=None):
    s = video("hevc")
    cfg = codecs.make_config(Codec.H265, s.config)
    pk = H265Packetizer(96, 7, config=cfg if with_params else None, mtu=mtu)
    pkts = [w for p in s.packets for w in pk.packetize(p.data, p.pts)]
    assert all(len(w) <= mtu for w in pkts)
    if perm is not None:
        pkts = perm(pkts)
    dp = H265Depacketizer(cfg if sdp_config else None)
    rb = ReorderBuffer()
    frames = [f for w in pkts for p in rb.push(parse_rtp(w)) for f in dp.push(p)]
    return s, cfg, frames


@pytest.mark.parametrize("mtu", [400, 1200, 1400])
def test_roundtrip_exact(mtu):
    s, cfg, frames = _run(mtu)
    assert [(f.pts, f.payload, f.keyframe) for f in frames] == [
        (p.pts, p.data, p.keyframe) for p in s.packets]
    assert frames[0].config == cfg


@settings(max_examples=10, deadline=None)
@given(st.data())
def test_roundtrip_reordered(data):
    def perm(pkts):
        out = pkts[:1]
        for i in range(1, len(pkts), 20):
            out += data.draw(st.permutations(pkts[i:i + 20]))
        return out
    s, _, frames = _run(400, perm=perm)
    assert [f.payload for f in frames] == [p.data for p in s.packets]


def test_in_band_parameter_sets():
    s, cfg, frames = _run(1200, with_params=True, sdp_config=False)
    assert frames[0].keyframe and frames[0].config is not None
    assert c265.parse_hvcc(frames[0].config.record).sps == c265.parse_hvcc(cfg.record).sps
    types = [(n[0] >> 1) & 0x3F for n in c264.iter_avcc(frames[0].payload)]
    assert types[:3] == [32, 33, 34]
    assert len(frames) == len(s.packets)


def test_aggregation_packet_and_fu_headers():
    s = video("hevc")
    cfg = codecs.make_config(Codec.H265, s.config)
    a, b = b"\x02\x01abc", b"\x26\x01" + b"x" * 10  # TRAIL_R, IDR_W_RADL
    ap = b"\x60\x01" + len(a).to_bytes(2, "big") + a + len(b).to_bytes(2, "big") + b
    (f,) = H265Depacketizer(cfg).push(RTPPacket(96, 1, 0, 1, ap, True))
    assert [bytes(n) for n in c264.iter_avcc(f.payload)] == [a, b] and f.keyframe
    pk = H265Packetizer(96, 1, mtu=64)
    big = b"\x26\x01" + bytes(range(100))
    pkts = [parse_rtp(p) for p in pk.packetize(len(big).to_bytes(4, "big") + big, 0)]
    # 49 data bytes per FU at MTU 64: start, middle, end fragments of an IDR_W_RADL (19).
    assert [bytes(p.payload[:3]) for p in pkts] == [b"\x62\x01\x93", b"\x62\x01\x13",
                                                    b"\x62\x01\x53"]
    dp = H265Depacketizer(cfg)
    frames = [f for p in pkts for f in dp.push(p)]
    assert frames[0].payload == len(big).to_bytes(4, "big") + big


def test_paci_refused():
    with pytest.raises(Unsupported):
        H265Depacketizer(None).push(RTPPacket(96, 1, 0, 1, b"\x64\x01\x00\x00", True))


@given(st.lists(st.binary(max_size=40), max_size=8))
def test_fuzz_contract(payloads):
    dp = H265Depacketizer(None)
    for i, p in enumerate(payloads):
        try:
            dp.push(RTPPacket(96, i, i // 2, 1, p, i % 2 == 1))
        except ProtocolError:
            pass
