"""ServerConnection against captured FFmpeg sessions and hand-written edge cases."""

import pathlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtmpgop import codecs
from rtmpgop.errors import ProtocolError
from rtmpgop.media import Codec, Track
from rtmpgop.protocol.rtsp import events as ev
from rtmpgop.protocol.rtsp.auth import ServerAuth
from rtmpgop.protocol.rtsp.message import MessageReader, Response
from rtmpgop.protocol.rtsp.server import ServerConnection
from tests.protocol.pieces import pieces
from tests.protocol.rtp.media_cache import audio, video

from .session_helpers import ServerApp

CAPTURES = pathlib.Path(__file__).resolve().parents[3] / "fixtures" / "captures"


def _responses(server):
    r = MessageReader()
    r.receive_data(b"".join(bytes(b) for b in server.data_to_send()))
    out = []
    while (m := r.next_message()) is not None:
        out.append(m)
    return out


def _feed(server, app, data, chunks=None):
    for piece in pieces(data, chunks or []):
        server.receive_data(piece, 1.0)
        app.drain()


FFMPEG_PUB = (CAPTURES / "ffmpeg_publish_h264_aac_tcp.bin").read_bytes()


def _ffmpeg_publish(chunks=None):
    server = ServerConnection("12345678", publish_auth=ServerAuth(
        {"user": "pass"}, "rtmpgop", "0123456789abcdef"))
    app = ServerApp(server)
    _feed(server, app, FFMPEG_PUB, chunks)
    return server, app


def test_ffmpeg_publish_capture():
    server, app = _ffmpeg_publish()
    resp = [m.status for m in _responses(server) if isinstance(m, Response)]
    assert resp == [200, 401, 200, 200, 200, 200, 200]  # OPTIONS, 401, ANNOUNCE, SETUP x2, ...
    (ann,) = app.of(ev.AnnounceRequest)
    assert ann.path == "live/x" and [t.codec for t in ann.tracks] == [Codec.H264, Codec.AAC]
    assert [e.transport.interleaved for e in app.of(ev.SetupDone)] == [(0, 1), (2, 3)]
    assert app.of(ev.RecordRequest) and app.of(ev.Teardown) == [ev.Teardown("teardown")]
    units = [e.unit for e in app.of(ev.MediaReceived)]
    vids = [u for u in units if u.track == 0]
    auds = [u for u in units if u.track == 1]
    # 1 s of 10 fps video (the last frames may still sit in the DTS extractor) and of AAC.
    assert 7 <= len(vids) <= 10 and vids[0].keyframe
    assert all(u.dts <= u.pts for u in vids)
    assert all(b.dts > a.dts for a, b in zip(vids, vids[1:]))
    assert len(auds) >= 40 and all(b.pts - a.pts == 1024 for a, b in zip(auds, auds[1:]))
    assert not app.of(ev.MediaError)
    assert [t.track.id for t in app.of(ev.TrackChanged)] == [0, 1]


@settings(max_examples=20, deadline=None)
@given(st.lists(st.integers(0, len(FFMPEG_PUB)), max_size=20))
def test_ffmpeg_publish_capture_split(chunks):
    whole = _ffmpeg_publish()[1].events
    assert _ffmpeg_publish(chunks)[1].events.__len__() == len(whole)
    got = [e.unit.payload for e in _ffmpeg_publish(chunks)[1].of(ev.MediaReceived)]
    assert got == [e.unit.payload for e in whole if isinstance(e, ev.MediaReceived)]


def _tracks():
    v, a = video("h264"), audio("aac")
    return [Track(7, codecs.make_config(Codec.H264, v.config), 90000),
            Track(9, codecs.make_config(Codec.AAC, a.config), 48000)]


def test_ffmpeg_play_capture():
    data = (CAPTURES / "ffmpeg_play_tcp.bin").read_bytes()
    server = ServerConnection("12345678")
    app = ServerApp(server, _tracks(), {7: (1, 2), 9: (3, 4)})
    _feed(server, app, data)
    resps = [m for m in _responses(server) if isinstance(m, Response)]
    assert [m.status for m in resps] == [200] * 5
    opts, desc, s1, s2, play = resps
    assert "GET_PARAMETER" in opts.headers.get("Public")
    assert desc.headers.get("Content-Base").endswith("/live/x/")
    assert b"a=control:trackID=0" in desc.body and b"a=control:*" in desc.body
    assert b"packetization-mode=1" in desc.body and b"MPEG4-GENERIC/48000/2" in desc.body
    # FFmpeg SETUPs Content-Base + "trackID=N" and PLAYs the base URL with its slash.
    assert s1.headers.get("Transport") == "RTP/AVP/TCP;unicast;interleaved=0-1"
    assert s1.headers.get("Session") == "12345678;timeout=60"
    assert play.headers.get("RTP-Info") == (
        "url=rtsp://127.0.0.1:52105/live/x/trackID=0;seq=1;rtptime=2,"
        "url=rtsp://127.0.0.1:52105/live/x/trackID=1;seq=3;rtptime=4")
    assert play.headers.get("Session") == "12345678"
    assert server.playing and app.of(ev.PlayRequest)[0].track_ids == (7, 9)


def _req(method, url, cseq, *extra, body=b""):
    h = "".join(f"{k}: {v}\r\n" for k, v in extra)
    if body:
        h += f"Content-Length: {len(body)}\r\n"
    return f"{method} {url} RTSP/1.0\r\nCSeq: {cseq}\r\n{h}\r\n".encode() + body


def _status(server, app, data):
    server.receive_data(data, 0.0)
    app.drain()
    return [m.status for m in _responses(server) if isinstance(m, Response)]


def _playing_server(**kw):
    server = ServerConnection("s1", **kw)
    app = ServerApp(server, _tracks())
    assert _status(server, app, _req("DESCRIBE", "rtsp://h/live/x", 1)) == [200]
    return server, app


@pytest.mark.parametrize("url,index", [
    ("rtsp://h/live/x/trackID=1", 1),  # standard
    ("rtsp://h/live/x?tok=1/trackID=1", 1),  # FFmpeg: control after the query
    ("rtsp://h/live/x/trackID=1?tok=1", 1),  # GStreamer: control in the path
    ("rtsp://h/live/x/", 0),  # VLC: base URL with trailing slash
    ("rtsp://h/live/x", 0),  # HappyTime NVR: base URL
])
def test_setup_url_forms(url, index):
    server, app = _playing_server()
    assert _status(server, app, _req("SETUP", url, 2, ("Transport", "RTP/AVP/TCP;interleaved=4-5"))) == [200]
    assert list(server.setups) == [index]


def test_setup_transport_choice_and_channel_allocation():
    server, app = _playing_server(udp_ports=(8000, 8001))
    _status(server, app, _req("SETUP", "rtsp://h/live/x/trackID=0", 2,
                              ("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1")))
    # Same channels asked again for track 1: the server picks the next free pair.
    _status(server, app, _req("SETUP", "rtsp://h/live/x/trackID=1", 3,
                              ("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1"),
                              ("Session", "s1")))
    assert [s.transport.interleaved for s in server.setups.values()] == [(0, 1), (2, 3)]
    server, app = _playing_server(udp_ports=(8000, 8001))
    server.receive_data(_req("SETUP", "rtsp://h/live/x/trackID=0", 2, (
        "Transport", "RTP/SAVP;unicast;client_port=1-2,RTP/AVP;unicast;destination=6.6.6.6;"
        "client_port=5000-5001")), 0.0)
    app.drain()
    (r,) = _responses(server)
    assert r.headers.get("Transport") == (
        "RTP/AVP;unicast;client_port=5000-5001;server_port=8000-8001")
    server, app = _playing_server()  # no UDP configured
    assert _status(server, app, _req("SETUP", "rtsp://h/live/x/trackID=0", 2, (
        "Transport", "RTP/AVP;unicast;client_port=5000-5001"))) == [461]


@pytest.mark.parametrize("data,status", [
    (b"OPTIONS * RTSP/1.0\r\n\r\n", 400),  # no CSeq
    (_req("FOO", "rtsp://h/x", 1), 501),
    (_req("SETUP", "rtsp://h/x", 1, ("Transport", "RTP/AVP/TCP")), 455),
    (_req("PLAY", "rtsp://h/x", 1), 455),
    (_req("RECORD", "rtsp://h/x", 1), 455),
    (_req("ANNOUNCE", "rtsp://h/x", 1, body=b"v=0\r\n"), 400),  # no Content-Type
    (_req("ANNOUNCE", "rtsp://h/x", 1, ("Content-Type", "application/sdp"), body=b"junk"), 400),
    (_req("ANNOUNCE", "rtsp://h/x", 1, ("Content-Type", "application/sdp"),
          body=b"v=0\r\nm=audio 0 RTP/AVP 0\r\n"), 415),
    (_req("GET_PARAMETER", "rtsp://h/x", 1), 200),
    (_req("SET_PARAMETER", "rtsp://h/x", 1, body=b"a: b\r\n"), 200),
])
def test_status_codes(data, status):
    server = ServerConnection("s1")
    assert _status(server, ServerApp(server), data) == [status]


def test_record_needs_every_media_set_up_and_session_checks():
    server = ServerConnection("s1")
    app = ServerApp(server)
    sdp = FFMPEG_PUB[FFMPEG_PUB.index(b"v=0"):FFMPEG_PUB.index(b"ANNOUNCE", 100)]
    assert _status(server, app, _req("ANNOUNCE", "rtsp://h/live/p", 1, (
        "Content-Type", "application/sdp"), body=sdp)) == [200]
    assert _status(server, app, _req("SETUP", "rtsp://h/live/p/streamid=0", 2, (
        "Transport", "RTP/AVP/TCP;unicast;interleaved=0-1;mode=record"))) == [200]
    assert _status(server, app, _req("RECORD", "rtsp://h/live/p", 3, ("Session", "s1"))) == [455]
    assert _status(server, app, _req("GET_PARAMETER", "rtsp://h/live/p", 4,
                                     ("Session", "other"))) == [454]
    assert _status(server, app, _req("SETUP", "rtsp://h/other/streamid=1", 5, (
        "Transport", "RTP/AVP/TCP;unicast;interleaved=2-3;mode=record"))) == [400]


def test_pipelined_requests_wait_for_the_answer():
    server = ServerConnection("s1")
    server.receive_data(_req("DESCRIBE", "rtsp://h/live/x", 1) + _req("OPTIONS", "*", 2), 0.0)
    e = server.next_event()
    assert isinstance(e, ev.DescribeRequest) and server.next_event() is None
    assert server.data_to_send() == []
    server.accept_describe(_tracks())
    assert server.next_event() is None
    assert [m.cseq for m in _responses(server)] == ["1", "2"]


def test_send_rtp_before_play_is_misuse():
    server, _ = _playing_server()
    with pytest.raises(RuntimeError):
        server.send_rtp(7, b"x" * 12)


def test_describe_without_playable_tracks_is_404():
    server = ServerConnection("s1")
    app = ServerApp(server, [Track(0, codecs.make_config(Codec.JPEG, b""), 90000)])
    assert _status(server, app, _req("DESCRIBE", "rtsp://h/live/x", 1)) == [404]


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_contract(data):
    server = ServerConnection("s1")
    app = ServerApp(server, _tracks())
    try:
        server.receive_data(_req("DESCRIBE", "rtsp://h/live/x", 1) + data, 0.0)
        app.drain()
    except ProtocolError:
        pass


def test_publisher_sender_reports_and_receiver_reports():
    from rtmpgop.protocol.rtp import rtcp
    server, app = _ffmpeg_publish()
    srs = [server.sender_report(t) for t in (0, 1)]
    # FFmpeg sends an SR per track before its first RTP packet.
    assert all(isinstance(sr, rtcp.SenderReport) for sr in srs)
    assert srs[0].ssrc != srs[1].ssrc and server.sender_report(5) is None
    reports = server.receiver_reports(2.0)
    assert [tid for tid, _ in reports] == [0, 1]
    for (tid, data), sr in zip(reports, srs):
        rr = rtcp.parse_rtcp(data)[0]
        assert isinstance(rr, rtcp.ReceiverReport)
        assert [b.ssrc for b in rr.reports] == [sr.ssrc]
        assert server.setup_of(tid).interleaved == (2 * tid, 2 * tid + 1)
