"""Opus RTP (rtmpgop.protocol.rtp.opus) with real libopus packets."""

import pytest

from rtmpgop import codecs
from rtmpgop.errors import LimitExceeded
from rtmpgop.media import Codec
from rtmpgop.protocol.rtp.opus import MAX_OPUS_PACKET, OpusDepacketizer, OpusPacketizer
from rtmpgop.protocol.rtp.packet import RTPPacket, parse_rtp

from .media_cache import audio


def test_roundtrip_with_timestamp_wrap():
    s = audio("opus")
    cfg = codecs.make_config(Codec.OPUS, s.config)
    pk = OpusPacketizer(111, 9, initial_timestamp=0xFFFFF000, initial_seq=0xFFFE)
    wires = [w for p in s.packets for w in pk.packetize(p.data, p.pts)]
    dp = OpusDepacketizer(cfg)
    frames = [f for w in wires for f in dp.push(parse_rtp(w))]
    assert [f.payload for f in frames] == [p.data for p in s.packets]
    assert [f.pts - 0xFFFFF000 for f in frames] == [p.pts for p in s.packets]
    assert frames[0].config.channels == 2 and frames[1].config is None


def test_empty_and_oversized():
    cfg = codecs.make_config(Codec.OPUS, b"")
    dp = OpusDepacketizer(cfg)
    assert dp.push(RTPPacket(111, 1, 0, 1, b"")) == []
    with pytest.raises(LimitExceeded):
        dp.push(RTPPacket(111, 2, 0, 1, bytes(MAX_OPUS_PACKET + 1)))
