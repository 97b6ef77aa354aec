"""Whole RTSP sessions without sockets: ServerConnection <-> ClientConnection, with Digest."""

import pytest

from rtmpgop.codecs import h264 as c264
from rtmpgop.media import Codec
from rtmpgop.protocol.rtsp import events as ev
from rtmpgop.protocol.rtsp.auth import ServerAuth
from rtmpgop.protocol.rtsp.client import ClientConnection
from rtmpgop.protocol.rtsp.sdp_tracks import packetizer_for
from rtmpgop.protocol.rtsp.server import ServerConnection
from tests.protocol.rtp.media_cache import audio, h264_aac_units, video

from .session_helpers import ServerApp, pump


def _tracks():
    v, a = video("h264"), audio("aac")
    return h264_aac_units(v, a)[0], v, a


def _units(v, a):
    return h264_aac_units(v, a)[1]


def _without_params(payload):
    return b"".join(len(n).to_bytes(4, "big") + bytes(n) for n in c264.iter_avcc(payload)
                    if n[0] & 0x1F not in (7, 8))


def _auth():
    return ServerAuth({"cam": "pw"}, "rtmpgop", "nonce1")


@pytest.mark.parametrize("with_auth", [False, True])
def test_describe_setup_play(with_auth):
    tracks, v, a = _tracks()
    server = ServerConnection("abc123", read_auth=_auth() if with_auth else None)
    pk = {t.id: packetizer_for(t, 96 + t.id, 0x1000 + t.id, initial_seq=100,
                               initial_timestamp=5000) for t in tracks}
    app = ServerApp(server, tracks, {t.id: (p.seq, p.rtp_timestamp(0)) for t, p in
                                     zip(tracks, pk.values())})
    creds = "cam:pw@" if with_auth else ""
    client = ClientConnection(f"rtsp://{creds}127.0.0.1:8554/live/x", cnonce="cn",
                              media_timeout=100.0)
    client.start(0.0)
    events = pump(app, client)
    assert [type(e).__name__ for e in events] == ["Described", "Playing"]
    assert [t.codec for t in events[0].tracks] == [Codec.H264, Codec.AAC]
    assert events[0].base_url == "rtsp://127.0.0.1:8554/live/x/"
    assert [e.track_id for e in app.of(ev.SetupDone)] == [0, 1]
    assert server.playing and client.state == "streaming"
    # The server's app streams every access unit; the client rebuilds them exactly.
    for u in _units(v, a):
        for pkt in pk[u.track].packetize(u.payload, u.pts):
            server.send_rtp(u.track, pkt)
    client.receive_data(b"".join(bytes(b) for b in server.data_to_send()), 1.0)
    got = []
    while (e := client.next_event()) is not None:
        got.append(e)
    st = client.statistics()
    assert st.frames_in == len(v.packets) + len(a.packets) and dict(st.extra)["rtp_errors"] == 0
    changed = [e.track for e in got if isinstance(e, ev.TrackChanged)]
    assert {t.id for t in changed} == {0, 1}
    vids = [e.unit for e in got if isinstance(e, ev.MediaReceived) and e.unit.track == 0]
    auds = [e.unit for e in got if isinstance(e, ev.MediaReceived) and e.unit.track == 1]
    assert [u.payload for u in auds] == [p.data for p in a.packets]
    assert [u.pts - 5000 for u in auds] == [p.pts for p in a.packets]
    # Video comes out whole; the packetizer put SPS/PPS in-band before each keyframe.
    assert [_without_params(u.payload) for u in vids] == [p.data for p in v.packets]
    assert all(u.payload[4] & 0x1F == 7 for u in vids if u.keyframe)
    assert [(u.dts - 5000, u.pts - 5000) for u in vids] == [(p.dts, p.pts) for p in v.packets]
    # Keepalive uses GET_PARAMETER (listed in Public) on the base URL, TEARDOWN closes.
    client.handle_timer(56.0)
    ka = b"".join(bytes(b) for b in client.data_to_send())
    assert ka.startswith(b"GET_PARAMETER rtsp://127.0.0.1:8554/live/x/ RTSP/1.0")
    server.receive_data(ka, 56.0)
    app.drain()
    assert b"200 OK" in b"".join(bytes(b) for b in server.data_to_send())
    client.close()
    tail = pump(app, client, 57.0)
    assert isinstance(tail[-1], ev.Teardown) and app.of(ev.Teardown)


def test_announce_setup_record_with_digest():
    tracks, v, a = _tracks()
    server = ServerConnection("sess9", publish_auth=_auth())
    app = ServerApp(server)
    client = ClientConnection("rtsp://cam:pw@127.0.0.1/live/pub", mode="record", tracks=tracks)
    client.start(0.0)
    events = pump(app, client)
    assert [type(e).__name__ for e in events] == ["Playing"]
    (ann,) = app.of(ev.AnnounceRequest)
    assert ann.path == "live/pub" and [t.codec for t in ann.tracks] == [Codec.H264, Codec.AAC]
    assert ann.tracks[0].config == tracks[0].config
    assert server.recording
    for u in _units(v, a):
        client.send_access_unit(u)
    server.receive_data(b"".join(bytes(b) for b in client.data_to_send()), 1.0)
    app.drain()
    vids = [e.unit for e in app.of(ev.MediaReceived) if e.unit.track == 0]
    auds = [e.unit for e in app.of(ev.MediaReceived) if e.unit.track == 1]
    assert [u.payload for u in auds] == [p.data for p in a.packets]
    assert [(u.dts, u.pts, u.keyframe) for u in vids] == [
        (p.dts, p.pts, p.keyframe) for p in v.packets]
    assert [_without_params(u.payload) for u in vids] == [p.data for p in v.packets]


def test_wrong_password_fails_and_unknown_path_404():
    server = ServerConnection("s1", read_auth=_auth())
    app = ServerApp(server, _tracks()[0])
    client = ClientConnection("rtsp://cam:nope@h/live/x")
    client.start(0.0)
    events = pump(app, client)
    assert events == [ev.RequestFailed("DESCRIBE", 401, "Unauthorized")]
    server = ServerConnection("s2")
    app = ServerApp(server, _tracks()[0])
    client = ClientConnection("rtsp://h/live/missing")
    client.start(0.0)
    assert pump(app, client) == [ev.RequestFailed("DESCRIBE", 404, "Not Found")]


def test_session_timeout_and_client_media_timeout():
    tracks, _, _ = _tracks()
    server = ServerConnection("s3")
    app = ServerApp(server, tracks)
    client = ClientConnection("rtsp://h/live/x")
    client.start(0.0)
    pump(app, client)
    assert server.next_deadline() == 65.0
    server.handle_timer(64.0)
    assert server.next_event() is None
    server.handle_timer(65.0)
    assert server.next_event() == ev.Teardown("session timeout")
    assert client.next_deadline() == 5.0  # first receiver report
    client.handle_timer(10.0)
    assert client.next_event() == ev.Teardown("no media")
