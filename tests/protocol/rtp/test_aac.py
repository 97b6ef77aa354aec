"""AAC RFC 3640 depacketizer/packetizer (rtmpgop.protocol.rtp.aac) with real AAC frames."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtmpgop import codecs
from rtmpgop.errors import ProtocolError, Unsupported
from rtmpgop.media import Codec
from rtmpgop.protocol.rtp.aac import AAC_LBR, AACDepacketizer, AACPacketizer, AUHeaderFormat
from rtmpgop.protocol.rtp.packet import RTPPacket, parse_rtp

from .media_cache import audio


def _cfg():
    s = audio("aac")
    return s, codecs.make_config(Codec.AAC, s.config)


@pytest.mark.parametrize("mtu", [100, 400, 1200])
def test_roundtrip(mtu):
    s, cfg = _cfg()
    pk = AACPacketizer(97, 3, mtu=mtu, initial_timestamp=123)
    wires = [w for p in s.packets for w in pk.packetize(p.data, p.pts)]
    assert all(len(w) <= mtu for w in wires)
    dp = AACDepacketizer(cfg)
    frames = [f for w in wires for f in dp.push(parse_rtp(w))]
    assert [f.payload for f in frames] == [p.data for p in s.packets]
    assert [f.pts - 123 for f in frames] == [p.pts for p in s.packets]
    assert frames[0].config == cfg and frames[0].config.sample_rate == 48000


def _multi(aus, fmt_bits=(13, 3)):
    size_bits, idx_bits = fmt_bits
    hdr_bits = (size_bits + idx_bits) * len(aus)
    acc = 0
    for a in aus:
        acc = (acc << (size_bits + idx_bits)) | (len(a) << idx_bits)
    nbytes = (hdr_bits + 7) // 8
    acc <<= nbytes * 8 - hdr_bits
    return hdr_bits.to_bytes(2, "big") + acc.to_bytes(nbytes, "big") + b"".join(aus)


def test_several_aus_per_packet_get_ts_plus_i_times_1024():
    _, cfg = _cfg()
    aus = [b"\x21" * 10, b"\x22" * 20, b"\x23" * 5]
    frames = AACDepacketizer(cfg).push(RTPPacket(97, 1, 5000, 1, _multi(aus), True))
    assert [(f.pts, f.payload) for f in frames] == [(5000, aus[0]), (6024, aus[1]),
                                                     (7048, aus[2])]


def test_lbr_header_format():
    _, cfg = _cfg()
    aus = [b"\x01" * 7, b"\x02" * 3]
    frames = AACDepacketizer(cfg, AAC_LBR).push(RTPPacket(97, 1, 0, 1, _multi(aus, (6, 2)), True))
    assert [f.payload for f in frames] == aus


@pytest.mark.parametrize("whole_size", [True, False])
def test_fragmented_au_both_size_conventions(whole_size):
    _, cfg = _cfg()
    au = bytes(range(256)) * 3
    parts = [au[:300], au[300:600], au[600:]]
    dp = AACDepacketizer(cfg)
    out = []
    for i, part in enumerate(parts):
        size = len(au) if whole_size else len(part)
        hdr = b"\x00\x10" + bytes((size >> 5, (size & 0x1F) << 3))
        out += dp.push(RTPPacket(97, 10 + i, 900, 1, hdr + part, i == 2))
    if whole_size:
        assert [f.payload for f in out] == [au]
    else:
        # gortsplib's convention: the first packet looks complete (size == data) unless M=0
        # and the size exceeds the data; fragments then arrive as single whole AUs.
        assert b"".join(f.payload for f in out) == au


def test_fragment_gap_drops_au():
    _, cfg = _cfg()
    au = b"z" * 900
    dp = AACDepacketizer(cfg)
    hdr = b"\x00\x10" + bytes((len(au) >> 5, (len(au) & 0x1F) << 3))
    dp.push(RTPPacket(97, 1, 0, 1, hdr + au[:400], False))
    assert dp.push(RTPPacket(97, 3, 0, 1, hdr + au[800:], True)) == []  # seq 2 lost
    assert dp.dropped_frames == 1
    # A middle fragment right after a gap is not mistaken for a start.
    assert dp.push(RTPPacket(97, 5, 1024, 1, hdr + au[400:800], False)) == []
    assert dp.push(RTPPacket(97, 6, 1024, 1, hdr + au[800:], True)) == []
    small = b"\x00\x10\x00\x18abc"
    assert [f.payload for f in dp.push(RTPPacket(97, 7, 2048, 1, small, True))] == [b"abc"]


def test_adts_wrapped_au_is_stripped_and_config_learned():
    s, cfg = _cfg()
    raw = s.packets[3].data
    n = len(raw) + 7
    adts = bytes((0xFF, 0xF1, (1 << 6) | (3 << 2), (2 << 6) | (n >> 11), (n >> 3) & 0xFF,
                  ((n & 7) << 5) | 0x1F, 0xFC)) + raw
    (f,) = AACDepacketizer(None).push(RTPPacket(97, 1, 0, 1, _multi([adts]), True))
    assert f.payload == raw and f.config.sample_rate == 48000 and f.config.channels == 2


def test_interleaving_refused():
    _, cfg = _cfg()
    pkt = b"\x00\x10" + bytes((0, (1 << 3) | 1)) + b"x"
    with pytest.raises(Unsupported):
        AACDepacketizer(cfg).push(RTPPacket(97, 1, 0, 1, pkt, True))


@given(st.lists(st.binary(max_size=30), max_size=6))
def test_fuzz_contract(payloads):
    _, cfg = _cfg()
    dp = AACDepacketizer(cfg, AUHeaderFormat(13, 3, 3, 2, 2, True, 1, 8))
    for i, p in enumerate(payloads):
        try:
            dp.push(RTPPacket(97, i, 0, 1, p, i % 2 == 0))
        except ProtocolError:
            pass


def test_latm_two_subframes_and_gap():
    from rtmpgop.protocol.rtp.aac import LATMDepacketizer
    _, cfg = _cfg()
    dp = LATMDepacketizer(cfg, subframes=2)
    frames = dp.push(RTPPacket(96, 1, 0, 1, b"\x03abc\x02de", True))
    assert [(f.pts, f.payload) for f in frames] == [(0, b"abc"), (1024, b"de")]
    dp.push(RTPPacket(96, 2, 2048, 1, b"\x03ab", False))
    assert dp.push(RTPPacket(96, 4, 2048, 1, b"\x01x\x01y", True)) != []  # gap: restart
    assert dp.dropped_frames == 1


@given(st.lists(st.binary(max_size=30), max_size=6))
def test_latm_fuzz_contract(payloads):
    from rtmpgop.protocol.rtp.aac import LATMDepacketizer
    _, cfg = _cfg()
    dp = LATMDepacketizer(cfg, subframes=2)
    for i, p in enumerate(payloads):
        try:
            dp.push(RTPPacket(96, i, 0, 1, p, i % 2 == 1))
        except ProtocolError:
            pass
