"""RTSP header values (rtmpgop.protocol.rtsp.headers)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtmpgop.errors import ProtocolError, RTSPError
from rtmpgop.protocol.rtsp import headers as h
from rtmpgop.protocol.rtsp.headers import RTPInfo, Range, Session, Transport

TRANSPORTS = [
    ("ffmpeg tcp record", "RTP/AVP/TCP;unicast;interleaved=0-1;mode=record",
     Transport("TCP", interleaved=(0, 1), mode="record")),
    ("ffmpeg udp record", "RTP/AVP/UDP;unicast;client_port=7002-7003;mode=record",
     Transport("UDP", client_port=(7002, 7003), mode="record")),
    ("server udp reply", "RTP/AVP;unicast;client_port=5000-5001;server_port=8000-8001;"
     "ssrc=1A2B3C4D", Transport("UDP", client_port=(5000, 5001), server_port=(8000, 8001),
                                ssrc=0x1A2B3C4D)),
    ("tcp play", "RTP/AVP/TCP;unicast;interleaved=2-3", Transport("TCP", interleaved=(2, 3))),
]


@pytest.mark.parametrize("name,wire,decoded", TRANSPORTS, ids=[t[0] for t in TRANSPORTS])
def test_transport_golden(name, wire, decoded):
    assert h.parse_transport(wire) == [decoded]
    # We write UDP as plain "RTP/AVP" (the RFC 2326 default lower transport).
    assert decoded.format() == wire.replace("RTP/AVP/UDP;", "RTP/AVP;")


@pytest.mark.parametrize("mode", ['mode="RECORD"', "mode=receive", "MODE=Record"])
def test_transport_mode_tolerance(mode):
    (t,) = h.parse_transport(f"RTP/AVP/TCP;unicast;interleaved=0-1;{mode}")
    assert t.record


def test_transport_alternatives_and_destination():
    alts = h.parse_transport("RTP/SAVP;unicast;client_port=1-2, RTP/AVP/TCP;interleaved=4 ,"
                             "RTP/AVP;unicast;destination=10.0.0.1;client_port=9000")
    assert [a.protocol for a in alts] == ["UDP", "TCP", "UDP"]
    assert alts[0].profile == "RTP/SAVP"
    assert alts[1].interleaved == (4, 5)
    assert alts[2].destination == "10.0.0.1" and alts[2].client_port == (9000, 9001)


@pytest.mark.parametrize("wire,status", [
    ("RAW/RAW/UDP;unicast", 461), ("RTP/AVP/SCTP;unicast", 461),
    ("RTP/AVP/TCP;interleaved=a-b", 400), ("RTP/AVP;client_port=70000-70001", 400), ("", 400),
])
def test_transport_errors(wire, status):
    with pytest.raises(RTSPError) as ei:
        h.parse_transport(wire)
    assert ei.value.status == status


@given(st.text(max_size=80))
def test_transport_fuzz(s):
    try:
        h.parse_transport(s)
    except ProtocolError:
        pass


def test_session():
    assert h.parse_session("12345678;timeout=60") == Session("12345678", 60)
    assert h.parse_session(" abc ") == Session("abc")
    assert Session("x", 55).format() == "x;timeout=55"
    with pytest.raises(RTSPError):
        h.parse_session(";timeout=3")


def test_rtp_info_roundtrip_and_commas_in_url():
    infos = [RTPInfo("rtsp://h/a/trackID=0", 100, 9000), RTPInfo("rtsp://h/a,b/trackID=1", 7, 1)]
    wire = h.format_rtp_info(infos)
    assert wire == ("url=rtsp://h/a/trackID=0;seq=100;rtptime=9000,"
                    "url=rtsp://h/a,b/trackID=1;seq=7;rtptime=1")
    assert h.parse_rtp_info(wire) == infos
    assert h.parse_rtp_info("url=x;seq=bad") == [RTPInfo("x")]


def test_range():
    assert h.parse_range("npt=0.000-") == Range(0.0, None)
    assert h.parse_range("npt=now-") == Range(0.0, None)
    assert h.parse_range("npt=1.5-3") == Range(1.5, 3.0)
    assert h.parse_range("clock=19961108T142300Z-") is None
    assert Range().format() == "npt=0.000-"
    with pytest.raises(RTSPError):
        h.parse_range("npt=x-")


def test_public():
    assert h.parse_public("OPTIONS, describe ,GET_PARAMETER") == [
        "OPTIONS", "DESCRIBE", "GET_PARAMETER"]
    assert h.format_public(["OPTIONS", "PLAY"]) == "OPTIONS, PLAY"
