"""TrackReceiver: RTP -> AccessUnits with DTS, config announcements, RTCP bookkeeping."""

import pytest

from rtmpgop import codecs
from rtmpgop.errors import Unsupported
from rtmpgop.media import AccessUnit, Codec, CodecConfig, Track
from rtmpgop.protocol.rtp import rtcp
from rtmpgop.protocol.rtp.h264 import H264Depacketizer, H264Packetizer
from rtmpgop.protocol.rtp.receiver import TrackReceiver

from .media_cache import video


def test_in_band_config_then_units_with_encoder_dts():
    s = video("h264")
    cfg = codecs.make_config(Codec.H264, s.config)
    pk = H264Packetizer(96, 5, config=cfg, mtu=1000, initial_timestamp=0)
    rx = TrackReceiver(Track(4, CodecConfig(Codec.H264), 90000), H264Depacketizer(None),
                       reorder=True)
    items = []
    for p in s.packets:
        for w in pk.packetize(p.data, p.pts):
            items += rx.receive_rtp(w, arrival=1.0)
    items += rx.flush()
    assert isinstance(items[0], Track) and items[0].id == 4 and items[0].config.width == 320
    units = [i for i in items if isinstance(i, AccessUnit)]
    assert [(u.dts, u.pts) for u in units] == [(p.dts, p.pts) for p in s.packets]
    assert rx.statistics().frames_in == len(s.packets)
    # RTCP: SR remembered, RR reports the source with no loss.
    rx.receive_rtcp(rtcp.build_sr(rtcp.SenderReport(5, 1 << 40, 0, 1, 2)), now=3.0)
    rr = rtcp.parse_rtcp(rx.receiver_report(now=3.5))
    assert rr[0].reports[0].ssrc == 5 and rr[0].reports[0].cumulative_lost == 0
    assert rr[0].reports[0].dlsr == 32768 and rr[1].chunks[0][1][0] == (1, b"rtmpgop")


def test_bad_packet_raises_and_counts():
    rx = TrackReceiver(Track(0, CodecConfig(Codec.H264), 90000), H264Depacketizer(None))
    with pytest.raises(Unsupported):
        rx.receive_rtp(b"\x80\x60\x00\x01" + bytes(8) + b"\x19")  # STAP-B: refused
    assert rx.errors == 1


def _with_extension(packet: bytes) -> bytes:
    """The same packet with a one-word header extension: it takes the general parse path."""
    return bytes((packet[0] | 0x10,)) + packet[1:12] + b"\xbe\xde\x00\x01\x10\xaa\x00\x00" + \
        packet[12:]


@pytest.mark.parametrize("mtu", [300, 1200])
def test_fast_and_general_receive_paths_give_the_same_units(mtu):
    s = video("h264")
    cfg = codecs.make_config(Codec.H264, s.config)
    pk = H264Packetizer(96, 5, config=cfg, mtu=mtu, initial_timestamp=0xFFFF0000)
    fast = TrackReceiver(Track(1, cfg, 90000), H264Depacketizer(cfg))  # TCP: no reorder
    general = TrackReceiver(Track(1, cfg, 90000), H264Depacketizer(cfg))
    a, b = [], []
    for i, p in enumerate(s.packets):
        for w in pk.packetize(p.data, p.pts):
            a += fast.receive_rtp(w, arrival=i / 30)
            b += general.receive_rtp(_with_extension(w), arrival=i / 30)
    a += fast.flush()
    b += general.flush()
    units = [(u.dts, u.pts, u.keyframe, bytes(u.payload)) for u in a if isinstance(u, AccessUnit)]
    assert units == [(u.dts, u.pts, u.keyframe, bytes(u.payload))
                     for u in b if isinstance(u, AccessUnit)]
    # every frame whole, across the RTP timestamp wrap (keyframes get SPS/PPS put in front)
    assert len(units) == len(s.packets)
    assert all(u[3].endswith(bytes(p.data)) for u, p in zip(units, s.packets))
    assert fast.stats.received == general.stats.received > len(s.packets)
    assert fast.stats.max_seq == general.stats.max_seq and fast.stats.jitter == general.stats.jitter
