"""RTSP URL helpers (rtmpgop.protocol.rtsp.urls)."""

import pytest

from rtmpgop.errors import RTSPError
from rtmpgop.protocol.rtsp.urls import RTSPURL, parse_url, request_path, split_control


def test_parse_url_credentials_percent_decoded():
    u = parse_url("rtsp://ad%3Amin:p%40ss@10.0.0.1:554/Streaming/Channels/101?transport=tcp")
    assert u == RTSPURL("rtsp", "10.0.0.1:554", "Streaming/Channels/101", "transport=tcp",
                        "ad:min", "p@ss")
    assert u.base() == "rtsp://10.0.0.1:554/Streaming/Channels/101?transport=tcp"
    assert parse_url("rtsp://h?x=1").query == "x=1"
    with pytest.raises(RTSPError):
        parse_url("http://h/x")


def test_request_path():
    assert request_path("rtsp://h/live/x/") == ("live/x", "")
    assert request_path("*") == ("", "")
    assert request_path("/live/x?a=b") == ("live/x", "a=b")


@pytest.mark.parametrize("url,controls,result", [
    ("rtsp://h/live/x/trackID=1", ["trackID=0", "trackID=1"], ("live/x", "", 1)),
    ("rtsp://h/live/x?q=1/trackID=0", ["trackID=0"], ("live/x", "q=1", 0)),
    ("rtsp://h/live/x/trackID=0?q=1", ["trackID=0"], ("live/x", "q=1", 0)),
    ("rtsp://h/live/x/", ["trackID=0"], ("live/x", "", None)),
    ("rtsp://h/live/x?q=1/", ["trackID=0"], ("live/x", "q=1", None)),
    ("rtsp://h/live/x/video", ["rtsp://10.0.0.1/live/x/video"], ("live/x", "", 0)),
])
def test_split_control(url, controls, result):
    assert split_control(url, controls) == result
