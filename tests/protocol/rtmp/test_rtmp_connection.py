"""ServerConnection <-> ClientConnection in memory: whole sessions, splits, replies, limits."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtmpgop.errors import HandshakeError, LimitExceeded, ProtocolError
from rtmpgop.protocol import amf0, flv
from rtmpgop.protocol.flv import PacketType as P
from rtmpgop.protocol.rtmp import events as E
from rtmpgop.protocol.rtmp import messages as m
from rtmpgop.protocol.rtmp.chunk import chunk_message
from rtmpgop.protocol.rtmp.client import ClientConnection
from rtmpgop.protocol.rtmp.connection import ServerConnection
from tests.protocol.pieces import pieces


def drain(conn):
    out = []
    while (e := conn.next_event()) is not None:
        out.append(e)
    return out


def flat(bufs):
    return b"".join(bytes(b) for b in bufs)


class Pair:
    """A server and a client wired back to back; the server auto-accepts by default."""

    def __init__(self, fourccs=(), digest=True, accept=True):
        self.s = ServerConnection()
        self.c = ClientConnection("live", "rtmp://localhost/live", fourccs=fourccs, digest=digest)
        self.accept = accept
        self.sev, self.cev = [], []
        self.wire_c2s = bytearray()

    def pump(self):
        for _ in range(20):
            a = flat(self.c.data_to_send())
            if a:
                self.wire_c2s += a
                self.s.receive_data(a)
            while (ev := self.s.next_event()) is not None:  # decide before parsing on
                self.sev.append(ev)
                if self.accept:
                    if isinstance(ev, E.Connect):
                        self.s.accept_connect(ev)
                    elif isinstance(ev, E.Publish):
                        self.s.accept_publish(ev)
                    elif isinstance(ev, E.Play):
                        self.s.accept_play(ev)
            b = flat(self.s.data_to_send())
            if b:
                self.c.receive_data(b)
            self.cev += drain(self.c)
            if not a and not b:
                return

    def of(self, events, cls):
        return [e for e in events if isinstance(e, cls)]

    def publish(self, name="cam1"):
        self.pump()
        self.c.create_stream()
        self.pump()
        msid = self.of(self.cev, E.StreamCreated)[-1].msid
        self.c.publish(msid, name)
        self.pump()
        return msid


AVCC = bytes.fromhex("0164001fffe100046764001f01000468ee3cb0")  # connection layer does not parse it


def media_script(c, msid):
    c.send_metadata(msid, {"width": 320.0, "height": 240.0, "framerate": 30.0})
    c.send_video(msid, 0, [flv.video_header("avc1", P.SEQUENCE_START, True), AVCC])
    c.send_audio(msid, 0, [flv.audio_header("mp4a", P.SEQUENCE_START), b"\x11\x90"])
    frames = []
    for i in range(10):
        payload = bytes([i]) * (300 + 1000 * (i == 0))
        c.send_video(msid, i * 33, [flv.video_header("avc1", P.CODED_FRAMES, i == 0, 66), payload])
        c.send_audio(msid, i * 21, [flv.audio_header("mp4a", P.CODED_FRAMES), b"a" * 20])
        frames.append(payload)
    return frames


def test_connect_publish_session():
    p = Pair()
    msid = p.publish()
    assert msid == 1
    connect = p.of(p.sev, E.Connect)[0]
    assert connect.app == "live" and connect.tc_url == "rtmp://localhost/live"
    assert p.of(p.sev, E.HandshakeComplete)[0].digest is True
    assert p.of(p.sev, E.Publish)[0] == E.Publish(1, "cam1", "live", "", connect.transaction + 4)
    status = p.of(p.cev, E.Status)
    assert [(s.msid, s.level, s.code) for s in status] == [(1, "status", "NetStream.Publish.Start")]
    assert p.s.out_chunk_size == 4096 and p.c.reader.chunk_size == 4096
    assert p.s.reader.chunk_size == 4096  # the client announced 4096 too


def test_media_events_timestamps_and_payloads():
    p = Pair()
    msid = p.publish()
    frames = media_script(p.c, msid)
    p.pump()
    meta = p.of(p.sev, E.Metadata)[0]
    assert dict(meta.values) == {"width": 320.0, "height": 240.0, "framerate": 30.0}
    vids = p.of(p.sev, E.VideoData)
    assert vids[0].tag.packet is P.SEQUENCE_START and vids[0].payload == AVCC
    coded = vids[1:]
    assert [v.payload for v in coded] == frames
    assert [v.timestamp for v in coded] == [i * 33 for i in range(10)]
    assert all(v.tag.cts == 66 for v in coded) and coded[0].tag.keyframe and not coded[1].tag.keyframe
    auds = p.of(p.sev, E.AudioData)
    assert auds[0].payload == b"\x11\x90" and [a.timestamp for a in auds[1:]] == [i * 21 for i in range(10)]


def test_copy_budget():
    p = Pair()
    msid = p.publish()
    before = p.s.reader.bytes_copied
    frames = media_script(p.c, msid)
    p.pump()
    copied = p.s.reader.bytes_copied - before
    payload = sum(len(f) for f in frames) + 10 * 20 + len(AVCC) + 2
    stats = dict(p.s.statistics().extra)
    assert stats["bytes_copied"] >= copied
    assert copied <= payload + 200  # + the metadata message body, parsed from a copy


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 100_000), max_size=15))
def test_server_split_anywhere(cuts):
    p = Pair()
    msid = p.publish()
    frames = media_script(p.c, msid)
    p.pump()
    wire = bytes(p.wire_c2s)
    s = ServerConnection()
    events = []
    for piece in pieces(wire, (c % (len(wire) + 1) for c in cuts)):
        s.receive_data(piece)
        while (ev := s.next_event()) is not None:
            events.append(ev)
            if isinstance(ev, E.Connect):
                s.accept_connect(ev)
    assert [v.payload for v in events if isinstance(v, E.VideoData)][1:] == frames
    assert len([a for a in events if isinstance(a, E.AudioData)]) == 11


def test_reject_publish_bad_name_and_media_ignored():
    p = Pair(accept=False)
    p.pump()
    p.s.accept_connect(p.of(p.sev, E.Connect)[0])
    p.pump()
    p.c.create_stream()
    p.pump()
    p.c.publish(1, "busy")
    p.pump()
    pub = p.of(p.sev, E.Publish)[0]
    p.s.reject_publish(pub)
    p.pump()
    assert p.of(p.cev, E.Status)[-1].code == "NetStream.Publish.BadName"
    assert p.of(p.cev, E.Status)[-1].level == "error"
    n = len(p.sev)
    p.c.send_video(1, 0, [flv.video_header("avc1", P.CODED_FRAMES, True), b"x"])
    p.pump()
    assert p.sev[n:] == [] and p.s.ignored_messages >= 1


def test_reject_connect():
    p = Pair(accept=False)
    p.pump()
    p.s.reject_connect(p.of(p.sev, E.Connect)[0], "no")
    p.pump()
    st_ = p.of(p.cev, E.Status)[0]
    assert (st_.level, st_.code) == ("error", "NetConnection.Connect.Rejected")


def test_play_session_receives_status_sequence_and_fourccs():
    p = Pair(fourccs=("hvc1", "av01"))
    p.pump()
    assert p.s.accepts_fourcc("hvc1") and not p.s.accepts_fourcc("vp09")
    p.c.create_stream()
    p.pump()
    p.c.play(1, "cam1?token=abc")
    p.pump()
    play = p.of(p.sev, E.Play)[0]
    assert (play.msid, play.name, play.query, play.start) == (1, "cam1", "token=abc", -2000.0)
    codes = [s.code for s in p.of(p.cev, E.Status)]
    assert codes == ["NetStream.Play.Reset", "NetStream.Play.Start"]
    p.s.send_unpublish_notify(1)
    p.s.send_publish_notify(1)
    p.pump()
    assert [s.code for s in p.of(p.cev, E.Status)][2:] == ["NetStream.Play.UnpublishNotify",
                                                           "NetStream.Play.PublishNotify"]


def test_unpublish_and_delete_stream_events():
    p = Pair()
    msid = p.publish()
    p.c.unpublish(msid, "cam1")
    p.pump()
    assert p.of(p.sev, E.Unpublish) == [E.Unpublish(1, "cam1")]
    assert p.of(p.sev, E.DeleteStream) == [E.DeleteStream(1)]
    assert p.s.publishing == {}


def test_ping_answered_and_acks_sent():
    p = Pair()
    p.pump()
    p.c.send(m.user_control(m.UserControl.PING_REQUEST, 4242))
    p.c.send(m.window_ack_size(5000))
    p.s.receive_data(flat(p.c.data_to_send()))
    out = flat(p.s.data_to_send())
    assert bytes.fromhex("0007 00001092".replace(" ", "")) in out  # PingResponse(4242)
    p.c.send_video(0, 0, b"\x17\x01\x00\x00\x00" + bytes(6000))
    p.s.receive_data(flat(p.c.data_to_send()))
    out = flat(p.s.data_to_send())
    assert out[:1] == b"\x02" and out[7] == 3  # an Ack on csid 2
    assert int.from_bytes(out[12:16], "big") == p.s.bytes_received


def test_multitrack_beyond_first_ignored_and_counted():
    p = Pair()
    msid = p.publish()
    p.c.send_video(msid, 0, bytes.fromhex("96016876633102000021") + b"track2")  # OneTrack, id 2
    p.c.send_video(msid, 0, bytes.fromhex("93 68766331".replace(" ", "")) + b"track0")
    p.pump()
    vids = p.of(p.sev, E.VideoData)
    assert [v.payload for v in vids] == [b"track0"] and p.s.ignored_tracks == 1


def test_aggregate_message_split_into_media():
    tags = b""
    for i, pay in enumerate([b"\xaf\x01AAA", b"\xaf\x01BBBB"]):
        tags += bytes([8]) + len(pay).to_bytes(3, "big") + (1000 + 20 * i).to_bytes(3, "big") + b"\x00" \
            + b"\x00\x00\x00" + pay + (11 + len(pay)).to_bytes(4, "big")
    p = Pair()
    msid = p.publish()
    p.c.send(m.Message(22, tags, msid, 500, 4))
    p.pump()
    auds = p.of(p.sev, E.AudioData)
    assert [(a.timestamp, a.payload) for a in auds] == [(500, b"AAA"), (520, b"BBBB")]


def test_timestamps_unwrap_past_32_bits():
    p = Pair()
    msid = p.publish()
    for ts in (0xFFFFFF00, 0xFFFFFFF0, 0x10, 0x100):
        p.c.send_audio(msid, ts, b"\xaf\x01x")
    p.pump()
    assert [a.timestamp for a in p.of(p.sev, E.AudioData)] == [0xFFFFFF00, 0xFFFFFFF0, 0x100000010, 0x100000100]


def test_garbage_instead_of_handshake():
    s = ServerConnection()
    with pytest.raises(HandshakeError):
        s.receive_data(b"GET / HTTP/1.1\r\n\r\n")


def test_garbage_after_handshake_raises_protocol_error():
    p = Pair()
    p.pump()
    with pytest.raises(ProtocolError):
        p.s.receive_data(bytes.fromhex("46 000000 000001 09") + b"\xff" * 100)


def test_chunk_size_above_limit():
    p = Pair()
    p.pump()
    with pytest.raises(LimitExceeded):
        p.s.receive_data(flat(chunk_message(2, 0, 1, 0, (0x7FFFFFFF).to_bytes(4, "big"), 128)))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_fuzz_contract_after_handshake(data):
    p = Pair()
    p.pump()
    try:
        p.s.receive_data(data)
    except ProtocolError:
        return
    drain(p.s)


def test_metadata_without_setdataframe():
    p = Pair()
    msid = p.publish()
    p.c.send(m.data("onMetaData", amf0.ECMAArray(duration=0.0), msid=msid))
    p.pump()
    assert p.of(p.sev, E.Metadata)[0].values == (("duration", 0.0),)
