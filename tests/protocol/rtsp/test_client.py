"""ClientConnection against scripted camera answers (the digest section 9 quirks)."""

import pytest

from rtmpgop import codecs
from rtmpgop.media import Codec, Track
from rtmpgop.protocol.rtsp import events as ev
from rtmpgop.protocol.rtsp.client import RR_INTERVAL, ClientConnection
from rtmpgop.protocol.rtsp.message import MessageReader, Request
from rtmpgop.protocol.rtsp.sdp import SessionDescription, format_sdp
from rtmpgop.protocol.rtsp.sdp_tracks import media_for_track
from tests.protocol.rtp.media_cache import video


def _sent(client):
    r = MessageReader()
    r.receive_data(b"".join(bytes(b) for b in client.data_to_send()))
    out = []
    while (m := r.next_message()) is not None:
        out.append(m)
    return out


def _answer(client, cseq, status=200, headers=(), body=b""):
    h = "".join(f"{k}: {v}\r\n" for k, v in headers)
    if body:
        h += f"Content-Length: {len(body)}\r\n"
    client.receive_data(f"RTSP/1.0 {status} X\r\nCSeq: {cseq}\r\n{h}\r\n".encode() + body, 0.0)
    out = []
    while (e := client.next_event()) is not None:
        out.append(e)
    return out


def _sdp(control="trackID=0", session_control="*"):
    t = Track(0, codecs.make_config(Codec.H264, video("h264").config), 90000)
    return format_sdp(SessionDescription(media=(media_for_track(t, control),),
                                         control=session_control))


def _to_setup(client, content_base=None, control="trackID=0", public="OPTIONS, DESCRIBE"):
    client.start(0.0)
    (opt,) = _sent(client)
    assert opt.method == "OPTIONS" and opt.url == "rtsp://cam.example:554/stream1"
    _answer(client, opt.cseq, headers=[("Public", public)])
    (desc,) = _sent(client)
    assert desc.method == "DESCRIBE" and desc.headers.get("Accept") == "application/sdp"
    hdrs = [("Content-Type", "application/sdp")]
    if content_base:
        hdrs.append(("Content-Base", content_base))
    evs = _answer(client, desc.cseq, headers=hdrs, body=_sdp(control))
    assert isinstance(evs[0], ev.Described)
    (setup,) = _sent(client)
    return evs[0], setup


@pytest.mark.parametrize("content_base,control,setup_url,base", [
    (None, "trackID=0", "rtsp://cam.example:554/stream1/trackID=0",
     "rtsp://cam.example:554/stream1"),
    ("rtsp://192.168.1.10/stream1/", "trackID=0", "rtsp://cam.example:554/stream1/trackID=0",
     "rtsp://cam.example:554/stream1/"),  # internal IP in Content-Base: keep our host
    ("/stream1/", "track1", "rtsp://cam.example:554/stream1/track1",
     "rtsp://cam.example:554/stream1/"),  # relative Content-Base
    (None, "rtsp://10.0.0.2/stream1/video", "rtsp://cam.example:554/stream1/video",
     "rtsp://cam.example:554/stream1"),  # absolute control with a NAT address
])
def test_base_url_rules(content_base, control, setup_url, base):
    client = ClientConnection("rtsp://cam.example:554/stream1")
    described, setup = _to_setup(client, content_base, control)
    assert described.base_url == base and setup.url == setup_url
    assert setup.headers.get("Transport") == "RTP/AVP/TCP;unicast;interleaved=0-1"


def test_digest_401_retry_and_authorization_on_every_request():
    client = ClientConnection("rtsp://admin:p%40ss@cam.example:554/stream1", cnonce="abc")
    client.start(0.0)
    (opt,) = _sent(client)
    assert "admin" not in opt.url and opt.headers.get("Authorization") is None
    _answer(client, opt.cseq, 401, [("WWW-Authenticate", 'Basic realm="cam"'),
                                    ("WWW-Authenticate", 'Digest realm="cam", nonce="n1"')])
    (again,) = _sent(client)
    assert again.method == "OPTIONS" and int(again.cseq) == int(opt.cseq) + 1
    assert again.headers.get("Authorization").startswith('Digest username="admin"')
    _answer(client, again.cseq, headers=[("Public", "OPTIONS, DESCRIBE, GET_PARAMETER")])
    (desc,) = _sent(client)
    from rtmpgop.protocol.rtsp.auth import ServerAuth
    srv = ServerAuth({"admin": "p@ss"}, "cam", "n1")
    assert srv.verify("DESCRIBE", desc.url, desc.headers.get("Authorization")) == (True, False)
    _answer(client, desc.cseq, headers=[("Content-Type", "application/sdp")], body=_sdp())
    (setup,) = _sent(client)
    assert srv.verify("SETUP", setup.url, setup.headers.get("Authorization"))[0]
    # A second 401 in a row for the same request is final.
    assert _answer(client, setup.cseq, 401, [("WWW-Authenticate",
                                              'Digest realm="cam", nonce="n2"')]) == []
    (retry,) = _sent(client)
    evs = _answer(client, retry.cseq, 401, [("WWW-Authenticate", 'Digest realm="cam"')])
    assert evs == [ev.RequestFailed("SETUP", 401, "X")]


def test_play_keepalive_options_when_no_get_parameter_and_teardown():
    client = ClientConnection("rtsp://cam.example:554/stream1", media_timeout=100.0)
    _, setup = _to_setup(client, public="OPTIONS, DESCRIBE, SETUP, PLAY")
    _answer(client, setup.cseq, headers=[("Session", "ABCD;timeout=20"),
                                         ("Transport", "RTP/AVP/TCP;unicast;interleaved=6-7")])
    (play,) = _sent(client)
    assert play.method == "PLAY" and play.headers.get("Session") == "ABCD"
    assert play.url == "rtsp://cam.example:554/stream1"
    assert _answer(client, play.cseq)[0].__class__ is ev.Playing
    assert client._track_channels[0] == (6, 7)  # the server's channels, not ours
    client.handle_timer(RR_INTERVAL)
    (rr,) = _sent_frames(client)
    assert rr[0] == 7 and rr[1][1] == 201  # RTCP RR (no block yet) on the RTCP channel
    client.handle_timer(15.0)  # timeout 20 -> keepalive every 15 s, OPTIONS (no GET_PARAMETER)
    msgs = [m for m in _sent(client) if isinstance(m, Request)]
    assert [m.method for m in msgs] == ["OPTIONS"]
    client.close()
    (td,) = _sent(client)
    assert td.method == "TEARDOWN" and td.headers.get("Session") == "ABCD"
    assert _answer(client, td.cseq) == [ev.Teardown("closed")]


def _sent_frames(client):
    r = MessageReader()
    r.receive_data(b"".join(bytes(b) for b in client.data_to_send()))
    out = []
    while (m := r.next_message()) is not None:
        if not isinstance(m, Request):
            out.append((m.channel, bytes(m.payload)))
    return out


def test_redirect_and_options_refused():
    client = ClientConnection("rtsp://cam.example/stream1")
    client.start(0.0)
    (opt,) = _sent(client)
    _answer(client, opt.cseq, 501)  # some cameras refuse OPTIONS: go on
    (desc,) = _sent(client)
    assert desc.method == "DESCRIBE"
    assert _answer(client, desc.cseq, 302, [("Location", "rtsp://other/s")]) == [
        ev.Redirect("rtsp://other/s")]


def test_udp_setup_and_request_timeout():
    client = ClientConnection("rtsp://cam.example:554/stream1", transport="udp",
                              udp_client_ports=[(50000, 50001)])
    _, setup = _to_setup(client)
    assert setup.headers.get("Transport") == "RTP/AVP;unicast;client_port=50000-50001"
    assert client.next_deadline() == 10.0
    client.handle_timer(10.0)
    assert client.next_event() == ev.Teardown("no answer to SETUP")
