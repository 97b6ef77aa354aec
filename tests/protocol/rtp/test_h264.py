"""H.264 RTP depacketizer/packetizer (rtmpgop.protocol.rtp.h264) with real x264 output."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtmpgop import codecs
from rtmpgop.codecs import h264 as c264
from rtmpgop.errors import LimitExceeded, ProtocolError, Unsupported
from rtmpgop.media import Codec
from rtmpgop.protocol.rtp import nal
from rtmpgop.protocol.rtp.h264 import H264Depacketizer, H264Packetizer
from rtmpgop.protocol.rtp.packet import ReorderBuffer, RTPPacket, parse_rtp

from .media_cache import video


def _stream():
    s = video("h264")
    return s, codecs.make_config(Codec.H264, s.config)


def _packetize(mtu, with_params=False):
    s, cfg = _stream()
    pk = H264Packetizer(96, 0x1234, config=cfg if with_params else None, mtu=mtu,
                        initial_seq=65500, initial_timestamp=0xFFFF0000)
    pkts = []
    for p in s.packets:
        pkts += pk.packetize(p.data, p.pts)
    assert all(len(x) <= mtu for x in pkts)
    return s, cfg, pkts


def _depacketize(wires, cfg, reorder=True):
    dp = H264Depacketizer(cfg)
    rb = ReorderBuffer()
    out = []
    for w in wires:
        for p in (rb.push(parse_rtp(w)) if reorder else [parse_rtp(w)]):
            out += dp.push(p)
    for p in rb.flush():
        out += dp.push(p)
    return dp, out


@pytest.mark.parametrize("mtu", [400, 1200, 1400])
def test_roundtrip_exact(mtu):
    s, cfg, pkts = _packetize(mtu)
    dp, frames = _depacketize(pkts, cfg)
    assert [f.payload for f in frames] == [p.data for p in s.packets]
    base = frames[0].pts - s.packets[0].pts
    assert base == 0xFFFF0000
    assert [f.pts - base for f in frames] == [p.pts for p in s.packets]
    assert [f.keyframe for f in frames] == [p.keyframe for p in s.packets]
    assert frames[0].config == cfg and all(f.config is None for f in frames[1:])


@settings(max_examples=15, deadline=None)
@given(st.data())
def test_roundtrip_reordered_within_window(data):
    s, cfg, pkts = _packetize(400)
    # Shuffle inside blocks of 16 packets (well within REORDER_WINDOW); the very first packet
    # stays first, since it sets the sequence origin of the reorder buffer.
    shuffled = pkts[:1]
    for i in range(1, len(pkts), 16):
        shuffled += data.draw(st.permutations(pkts[i:i + 16]))
    _, frames = _depacketize(shuffled, cfg)
    assert [f.payload for f in frames] == [p.data for p in s.packets]


@settings(max_examples=15, deadline=None)
@given(st.data())
def test_loss_drops_only_the_damaged_nal_unit(data):
    s, cfg, pkts = _packetize(400)
    lost = data.draw(st.integers(1, len(pkts) - 1))
    _, frames = _depacketize(pkts[:lost] + pkts[lost + 1:], cfg)
    by_pts = {p.pts + 0xFFFF0000: p.data for p in s.packets}
    damaged = 0
    for f in frames:
        orig = by_pts[f.pts]
        if f.payload != orig:
            damaged += 1
            got = [bytes(n) for n in c264.iter_avcc(f.payload)]
            want = [bytes(n) for n in c264.iter_avcc(orig)]
            assert set(got) < set(want)
    assert damaged <= 1 and len(frames) >= len(s.packets) - 1


def test_in_band_parameter_sets_and_config_change():
    s, cfg, pkts = _packetize(1200, with_params=True)
    dp, frames = _depacketize(pkts, None)  # no SDP parameter sets: learn them in-band
    assert frames[0].keyframe and frames[0].config is not None
    assert c264.parse_avcc(frames[0].config.record).sps == c264.parse_avcc(cfg.record).sps
    assert frames[0].config.width == 320 and frames[0].config.height == 240
    nals = [bytes(n) for n in c264.iter_avcc(frames[0].payload)]
    assert [n[0] & 0x1F for n in nals[:2]] == [7, 8]
    assert all(f.config is None for f in frames[1:])


def _pkt(payload, seq=1, ts=1000, marker=True):
    return RTPPacket(96, seq, ts, 1, payload, marker)


IDR = b"\x65\x88\x84\x00\x11"
SPS = bytes.fromhex("6764000aacd94284")  # truncated SPS is fine for assembly
PPS = b"\x68\xeb\xe3\xcb"


def _cfg():
    return _stream()[1]


def test_stap_a_with_zero_padding():
    dp = H264Depacketizer(_cfg())
    stap = b"\x18" + len(SPS).to_bytes(2, "big") + SPS + len(IDR).to_bytes(2, "big") + IDR + \
        b"\x00\x00"
    (f,) = dp.push(_pkt(stap))
    assert [bytes(n) for n in c264.iter_avcc(f.payload)] == [SPS, IDR] and f.keyframe


def test_fu_a_start_and_end_in_one_packet():  # CostarHD
    dp = H264Depacketizer(_cfg())
    (f,) = dp.push(_pkt(b"\x7c\xc5" + IDR[1:]))
    assert f.payload == len(IDR).to_bytes(4, "big") + IDR and f.keyframe


def test_annexb_inside_single_nal_packet():
    dp = H264Depacketizer(_cfg())
    (f,) = dp.push(_pkt(b"\x00\x00\x00\x01" + PPS + b"\x00\x00\x01" + IDR))
    assert [bytes(n) for n in c264.iter_avcc(f.payload)] == [PPS, IDR]


def test_fu_without_start_is_ignored_and_timestamp_change_flushes():
    dp = H264Depacketizer(_cfg())
    assert dp.push(_pkt(b"\x7c\x45abc", seq=1, marker=False)) == []  # end without start
    assert dp.push(_pkt(IDR, seq=2, ts=1000, marker=False)) == []  # no marker (FLIR)
    (f,) = dp.push(_pkt(b"\x41\x9a", seq=3, ts=4000, marker=False))
    assert f.pts == 1000 and f.payload == len(IDR).to_bytes(4, "big") + IDR


def test_gap_inside_fu_drops_nal():
    dp = H264Depacketizer(_cfg())
    dp.push(_pkt(b"\x7c\x85" + b"a" * 10, seq=1, marker=False))
    dp.push(_pkt(b"\x7c\x05" + b"b" * 10, seq=3, marker=False))  # seq 2 lost
    assert dp.push(_pkt(b"\x7c\x45" + b"c" * 10, seq=4)) == []
    assert dp.dropped_nalus == 1


@pytest.mark.parametrize("t", [25, 26, 27, 29])
def test_interleaved_mode_refused(t):
    with pytest.raises(Unsupported):
        H264Depacketizer(_cfg()).push(_pkt(bytes([t, 0, 0])))


def test_limits():
    dp = H264Depacketizer(_cfg())
    for i in range(nal.NALDepacketizer.MAX_NALUS_PER_AU):
        dp.push(_pkt(b"\x06\x05", seq=i, marker=False))
    with pytest.raises(LimitExceeded) as ei:
        dp.push(_pkt(b"\x06\x05", seq=99, marker=False))
    assert ei.value.limit == "MAX_NALUS_PER_AU"
    # still usable afterwards
    (f,) = dp.push(_pkt(IDR, seq=100, ts=5000))
    assert f.payload.endswith(IDR)


def test_frames_before_config_are_dropped():
    dp = H264Depacketizer(None)
    assert dp.push(_pkt(IDR)) == [] and dp.dropped_frames == 1


@given(st.lists(st.binary(min_size=0, max_size=40), max_size=8), st.booleans())
def test_fuzz_contract(payloads, marker):
    dp = H264Depacketizer(_cfg())
    for i, p in enumerate(payloads):
        try:
            for f in dp.push(_pkt(p, seq=i, marker=marker)):
                assert isinstance(f.payload, bytes)
        except ProtocolError:
            pass


def test_packetizer_fu_headers():
    pk = H264Packetizer(96, 1, mtu=64)
    nalu = b"\x65" + bytes(range(120))  # 50 data bytes per FU-A at MTU 64
    pkts = [parse_rtp(p) for p in pk.packetize(len(nalu).to_bytes(4, "big") + nalu, 0)]
    assert len(pkts) == 3 and [p.marker for p in pkts] == [False, False, True]
    assert [bytes(p.payload[:2]) for p in pkts] == [b"\x7c\x85", b"\x7c\x05", b"\x7c\x45"]
    assert b"".join(bytes(p.payload[2:]) for p in pkts) == nalu[1:]
    assert [p.sequence for p in pkts] == [0, 1, 2] and pk.packets_sent == 3
