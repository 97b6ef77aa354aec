"""AV1 RTP depacketizer/packetizer (rtmpgop.protocol.rtp.av1) with real SVT-AV1 output."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtmpgop import codecs
from rtmpgop.codecs import av1 as cav1
from rtmpgop.errors import ProtocolError
from rtmpgop.media import Codec
from rtmpgop.protocol.rtp.av1 import AV1Depacketizer, AV1Packetizer
from rtmpgop.protocol.rtp.packet import ReorderBuffer, RTPPacket, parse_rtp

from .media_cache import video


def _run(mtu, sdp_config=True, perm=None):
    s = video("av1")
    cfg = codecs.make_config(Codec.AV1, s.config)
    pk = AV1Packetizer(96, 3, mtu=mtu)
    pkts = [w for p in s.packets for w in pk.packetize(p.data, p.pts)]
    assert all(len(w) <= mtu for w in pkts)
    if perm is not None:
        pkts = perm(pkts)
    dp = AV1Depacketizer(cfg if sdp_config else None)
    rb = ReorderBuffer()
    frames = [f for w in pkts for p in rb.push(parse_rtp(w)) for f in dp.push(p)]
    return s, cfg, pkts, frames


def _without_td(tu):
    return b"".join(bytes(o.data) for o in cav1.iter_obus(tu)
                    if o.type != cav1.OBU_TEMPORAL_DELIMITER)


@pytest.mark.parametrize("mtu", [200, 1200, 1400])
def test_roundtrip(mtu):
    s, cfg, pkts, frames = _run(mtu)
    assert [(f.pts, f.payload, f.keyframe) for f in frames] == [
        (p.pts, _without_td(p.data), p.keyframe) for p in s.packets]
    # SVT-AV1's in-band sequence header differs from the one in its av1C (a few bits in
    # the tail), and in-band wins: same stream parameters, config announced once.
    c = frames[0].config
    assert (c.width, c.height, c.codec_string) == (cfg.width, cfg.height, cfg.codec_string)
    assert all(f.config is None for f in frames[1:])
    first = parse_rtp(pkts[0])
    assert first.payload[0] & 0x08  # N: new coded video sequence


def test_config_learned_in_band():
    s, cfg, _, frames = _run(1200, sdp_config=False)
    assert len(frames) == len(s.packets)
    assert frames[0].config is not None
    assert frames[0].config.width == cfg.width and frames[0].config.codec_string == \
        cfg.codec_string


@settings(max_examples=10, deadline=None)
@given(st.data())
def test_reordered(data):
    def perm(pkts):
        out = pkts[:1]
        for i in range(1, len(pkts), 12):
            out += data.draw(st.permutations(pkts[i:i + 12]))
        return out
    s, _, _, frames = _run(200, perm=perm)
    assert [f.payload for f in frames] == [_without_td(p.data) for p in s.packets]


def test_w_count_form_and_size_fields_accepted():
    # W=2: first element length-prefixed, the last one takes the rest; the second OBU keeps
    # its own size field (allowed for receivers).
    seq = video("av1")
    cfg = codecs.make_config(Codec.AV1, seq.config)
    meta = b"\x28\x01\x02"  # OBU_METADATA without size: type 5, payload 01 02 (fake)
    pad = b"\x7a\x02\xaa\xbb"  # OBU_PADDING with size field 2
    payload = bytes([0x20, len(meta)]) + meta + pad
    (f,) = AV1Depacketizer(cfg).push(RTPPacket(96, 1, 0, 1, payload, True))
    assert f.payload == b"\x2a\x02\x01\x02" + pad


@given(st.lists(st.binary(max_size=40), max_size=8))
def test_fuzz_contract(payloads):
    dp = AV1Depacketizer(codecs.make_config(Codec.AV1, video("av1").config))
    for i, p in enumerate(payloads):
        try:
            dp.push(RTPPacket(96, i, i // 3, 1, p, i % 3 == 2))
        except ProtocolError:
            pass
