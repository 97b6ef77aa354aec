"""Control, user control and command messages: golden bodies both directions."""

import pytest

from rtmpgop.errors import AMFError, ChunkError
from rtmpgop.protocol import amf0
from rtmpgop.protocol.rtmp import messages as m

H = bytes.fromhex

CONTROL = [
    ("set chunk size", m.set_chunk_size(4096), 1, "00001000"),
    ("abort", m.abort(6), 2, "00000006"),
    ("ack", m.ack(2_500_000), 3, "002625a0"),
    ("window ack size", m.window_ack_size(2_500_000), 5, "002625a0"),
    ("set peer bandwidth", m.set_peer_bandwidth(2_500_000, 2), 6, "002625a002"),
    ("stream begin", m.user_control(m.UserControl.STREAM_BEGIN, 1), 4, "000000000001"),
    ("ping request", m.user_control(m.UserControl.PING_REQUEST, 77), 4, "00060000004d"),
    ("set buffer length", m.user_control(m.UserControl.SET_BUFFER_LENGTH, 1, 3000), 4, "00030000000100000bb8"),
]


@pytest.mark.parametrize("name,msg,type_id,body", CONTROL, ids=[c[0] for c in CONTROL])
def test_control_golden(name, msg, type_id, body):
    assert msg.type_id == type_id and msg.body == H(body) and msg.msid == 0 and msg.csid == 2


def test_parse_user_control():
    assert m.parse_user_control(H("00030000000100000bb8")) == (3, (1, 3000))
    assert m.parse_user_control(H("0006 0000004d")) == (6, (77,))
    with pytest.raises(ChunkError):
        m.parse_user_control(b"\x00")


def test_parse_u32():
    assert m.parse_u32(H("00001000")) == 4096
    with pytest.raises(ChunkError):
        m.parse_u32(b"\x00")


def test_command_roundtrip():
    msg = m.command("publish", 5, None, "cam1", "live", msid=1, csid=m.CSID_STREAM_COMMAND)
    assert msg.body == H("02 0007 7075626c697368 00 4014000000000000 05 02 0004 63616d31 02 0004 6c697665"
                         .replace(" ", ""))
    assert m.parse_command(msg.body) == m.Command("publish", 5.0, None, ("cam1", "live"))


def test_amf3_command_has_a_leading_byte():
    body = b"\x00" + amf0.encode("connect", 1.0, {"app": "a"})
    assert m.parse_command(body, amf3=True).obj == {"app": "a"}


def test_command_without_transaction_is_an_error():
    with pytest.raises(AMFError):
        m.parse_command(amf0.encode("connect"))


def test_on_status_shape():
    msg = m.on_status(1, "error", "NetStream.Publish.BadName", "busy")
    name, txn, obj, info = amf0.decode_all(msg.body)
    assert (name, txn, obj, msg.msid) == ("onStatus", 0.0, None, 1)
    assert info == {"level": "error", "code": "NetStream.Publish.BadName", "description": "busy"}
