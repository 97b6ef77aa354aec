"""RTCP parse/build (rtmpgop.protocol.rtp.rtcp)."""

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from rtmpgop.errors import ProtocolError, RTPError
from rtmpgop.protocol.rtp import rtcp
from rtmpgop.protocol.rtp.rtcp import (
    Goodbye, ReceiverReport, ReceptionStats, ReportBlock, SenderReport, SourceDescription)

BLOCK = ReportBlock(0x11223344, 12, -5, 70000, 33, 0xAABBCCDD, 65536)
GOLDEN = [
    ("sr", bytes.fromhex("80c80006" "00000001" "e0000000" "80000000" "00015f90"
                         "0000000a" "00000400"),
     SenderReport(1, 0xE0000000_80000000, 90000, 10, 1024)),
    ("rr empty (FFmpeg punch)", bytes.fromhex("80c90001" "12345678"), ReceiverReport(0x12345678)),
    ("rr block", bytes.fromhex("81c90007" "00000002" "11223344" "0cfffffb" "00011170"
                               "00000021" "aabbccdd" "00010000"),
     ReceiverReport(2, (BLOCK,))),
    ("sdes cname", bytes.fromhex("81ca0003" "00000005" "0103616263" "000000"),
     SourceDescription(((5, ((1, b"abc"),)),))),
    ("bye", bytes.fromhex("81cb0001" "00000007"), Goodbye((7,))),
    ("bye reason", bytes.fromhex("81cb0002" "00000007" "03656e64"),
     Goodbye((7,), b"end")),
]


@pytest.mark.parametrize("name,wire,decoded", GOLDEN, ids=[g[0] for g in GOLDEN])
def test_golden_parse(name, wire, decoded):
    assert rtcp.parse_rtcp(wire) == [decoded]


@pytest.mark.parametrize("name,wire,decoded", GOLDEN, ids=[g[0] for g in GOLDEN])
def test_golden_build(name, wire, decoded):
    build = {SenderReport: rtcp.build_sr, ReceiverReport: rtcp.build_rr,
             SourceDescription: rtcp.build_sdes, Goodbye: rtcp.build_bye}[type(decoded)]
    assert build(decoded) == wire


def test_compound_and_unknown_app():
    app = bytes.fromhex("80cc0002" "00000001" "41424344")
    wire = GOLDEN[0][1] + GOLDEN[3][1] + app
    pkts = rtcp.parse_rtcp(wire)
    assert [type(p).__name__ for p in pkts] == ["SenderReport", "SourceDescription",
                                                 "RTCPUnknown"]
    assert pkts[2].packet_type == 204 and pkts[2].body == bytes.fromhex("0000000141424344")


@pytest.mark.parametrize("wire", [
    b"\x80\xc8", bytes.fromhex("40c80000"), bytes.fromhex("80c80006" "00000001"),
    bytes.fromhex("81c90001" "00000001"), bytes.fromhex("81ca0001" "00000005"),
    bytes.fromhex("a0c9000100000000"),
])
def test_errors(wire):
    with pytest.raises(RTPError):
        rtcp.parse_rtcp(wire)


@given(st.binary(max_size=80))
@example(bytes.fromhex("81ca0002000000050105"))
def test_fuzz_contract(data):
    try:
        rtcp.parse_rtcp(data)
    except ProtocolError:
        pass


def test_ntp_conversion():
    ntp = rtcp.unix_to_ntp(1_700_000_000.5)
    assert ntp >> 32 == 1_700_000_000 + 2_208_988_800
    assert ntp & 0xFFFFFFFF == 1 << 31
    assert rtcp.ntp_to_unix(ntp) == 1_700_000_000.5
    assert rtcp.ntp_middle(ntp) == ((ntp >> 32) & 0xFFFF) << 16 | 0x8000


def test_reception_stats_report():
    st_ = ReceptionStats(ssrc=9, clock_rate=90000)
    for seq in (100, 101, 103, 104):  # 102 lost
        st_.on_packet(seq, seq * 3000, (seq * 3000 + 500) / 90000)
    st_.on_sr(SenderReport(9, 0x0001_0002_0003_0004, 0, 0, 0), now=10.0)
    b = st_.report_block(now=10.5)
    assert (b.ssrc, b.cumulative_lost, b.highest_seq, b.fraction_lost) == (9, 1, 104, 51)
    assert b.lsr == 0x0002_0003 and b.dlsr == 32768 and b.jitter == 0
    b2 = st_.report_block(now=11)
    assert b2.fraction_lost == 0 and b2.cumulative_lost == 1


def test_reception_stats_jitter_from_each_frames_first_packet():
    st_ = ReceptionStats(ssrc=9, clock_rate=90000)
    delays = [0, 900, 0, 900]  # ticks late, per frame: transit swings by 900 each frame
    seq = 0
    for k, late in enumerate(delays):
        for i in range(3):  # the later packets of a frame arrive 450 ticks after each other
            st_.on_packet(seq, k * 3000, (k * 3000 + late + 450 * i) / 90000)
            seq += 1
    expect = 0.0
    for _ in delays[1:]:
        expect += (900 - expect) / 16  # RFC 3550 A.8 over the frames' first packets only
    assert abs(st_.jitter - expect) < 1e-6 and int(st_.report_block(1.0).jitter) == int(expect)


def test_reception_stats_unwrap_sequence_numbers_across_the_wrap():
    st_ = ReceptionStats(ssrc=9, clock_rate=90000)
    for seq in (0xFFFE, 0xFFFF, 1, 0, 2):  # 0 arrives late, after 1
        st_.on_packet(seq, 0, 0.0)
    b = st_.report_block(now=1.0)
    assert (b.highest_seq, b.cumulative_lost) == (0x10002, 0)  # one wrap, nothing lost


def test_packetizer_sender_report():
    from rtmpgop.protocol.rtp.opus import OpusPacketizer
    pk = OpusPacketizer(111, 0xABC, initial_timestamp=1000)
    pk.packetize(b"\x01" * 10, 0)
    pk.packetize(b"\x02" * 20, 960)
    sr, sdes = rtcp.parse_rtcp(pk.sender_report(rtcp.unix_to_ntp(1.7e9), 1920))
    assert (sr.ssrc, sr.rtp_timestamp, sr.packet_count, sr.octet_count) == (
        0xABC, 2920, 2, 30)
    assert rtcp.ntp_to_unix(sr.ntp) == 1.7e9 and sdes.chunks == ((0xABC, ((1, b"rtmpgop"),)),)
