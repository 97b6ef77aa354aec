"""ClientConnection specifics: hello bytes, connect object, replies and errors mapped to events."""

import pytest

from rtmpgop.errors import HandshakeError
from rtmpgop.protocol.rtmp import events as E
from rtmpgop.protocol.rtmp import handshake
from rtmpgop.protocol.rtmp import messages as m
from rtmpgop.protocol.rtmp.chunk import ChunkReader
from rtmpgop.protocol.rtmp.client import ClientConnection


def flat(bufs):
    return b"".join(bytes(b) for b in bufs)


def handshaken(**kw):
    c = ClientConnection("live", "rtmp://h:1935/live", **kw)
    hello = flat(c.data_to_send())
    resp, _ = handshake.server_response(hello[1:])
    c.receive_data(resp)
    return c, hello


def test_hello_is_c0_c1_with_digest_by_default():
    c = ClientConnection("live", "rtmp://h/live")
    hello = flat(c.data_to_send())
    assert len(hello) == 1537 and hello[0] == 3
    assert handshake.find_digest(hello[1:], handshake.FP_KEY) is not None
    plain = flat(ClientConnection("live", "rtmp://h/live", digest=False).data_to_send())
    assert plain[5:9] == bytes(4)


def test_after_handshake_sends_c2_chunk_size_and_connect_with_fourccs():
    c, _ = handshaken(fourccs=("hvc1", "av01"))
    assert isinstance(c.next_event(), E.HandshakeComplete)
    out = flat(c.data_to_send())
    c2, rest = out[:1536], out[1536:]
    assert len(c2) == 1536
    r = ChunkReader()
    r.feed(rest)
    first = r.next_message()
    assert (first.type_id, first.body.to_bytes()) == (1, (4096).to_bytes(4, "big"))
    connect = m.parse_command(r.next_message().body)
    assert connect.name == "connect" and connect.transaction == 1.0
    assert connect.obj["app"] == "live" and connect.obj["fourCcList"] == ["hvc1", "av01"]


def test_bad_server_response_raises():
    c = ClientConnection("live", "rtmp://h/live", digest=False)
    with pytest.raises(HandshakeError):
        c.receive_data(b"\x03" + bytes(3072))  # S2 does not echo C1


def reply(c, msg):
    from rtmpgop.protocol.rtmp.chunk import chunk_message
    c.receive_data(flat(chunk_message(msg.csid, msg.msid, msg.type_id, 0, msg.body, 128)))


def test_replies_become_events():
    c, _ = handshaken()
    c.next_event()
    c.data_to_send()
    reply(c, m.command("_result", 1, {"fmsVer": "x"}, m.status("status", "NetConnection.Connect.Success")))
    assert isinstance(c.next_event(), E.Connected) and c.connected
    c.create_stream()
    reply(c, m.command("_error", 2, None, m.status("error", "NetConnection.Call.Failed", "nope")))
    assert c.next_event() == E.Status(0, "error", "NetConnection.Call.Failed", "nope")
    c.create_stream()
    reply(c, m.command("_result", 3, None, 7.0))
    assert c.next_event() == E.StreamCreated(7)
    reply(c, m.on_status(7, "status", "NetStream.Play.Start", "go"))
    assert c.next_event() == E.Status(7, "status", "NetStream.Play.Start", "go")
    reply(c, m.command("onBWDone", 0, None))
    assert c.next_event() is None and c.ignored_messages == 1


def test_publish_sends_ffmpeg_sequence():
    c, _ = handshaken()
    c.next_event()
    c.data_to_send()
    c.out_chunk_size = 128  # what a fresh reader expects (the announced 4096 is tested above)
    c.publish(1, "cam")
    r = ChunkReader()
    r.feed(flat(c.data_to_send()))
    names = []
    while (msg := r.next_message()) is not None:
        names.append((m.parse_command(msg.body).name, msg.msid))
    assert names == [("releaseStream", 0), ("FCPublish", 0), ("publish", 1)]
