"""RTSP message framing (rtmpgop.protocol.rtsp.message)."""

import pathlib

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from rtmpgop.errors import ProtocolError, RTSPError
from rtmpgop.protocol.rtsp import message as m
from rtmpgop.protocol.rtsp.message import (
    Headers, InterleavedFrame, MessageReader, Request, Response)
from tests.protocol.pieces import pieces

CAPTURES = pathlib.Path(__file__).resolve().parents[3] / "fixtures" / "captures"
PUBLISH = (CAPTURES / "ffmpeg_publish_h264_aac_tcp.bin").read_bytes()

GOLDEN = [
    ("options", b"OPTIONS rtsp://h/live/x RTSP/1.0\r\nCSeq: 1\r\nUser-Agent: t\r\n\r\n",
     Request("OPTIONS", "rtsp://h/live/x", Headers((("CSeq", "1"), ("User-Agent", "t"))))),
    ("announce body", b"ANNOUNCE rtsp://h/a RTSP/1.0\r\nCSeq: 2\r\nContent-Type: "
     b"application/sdp\r\nContent-Length: 4\r\n\r\nv=0\n",
     Request("ANNOUNCE", "rtsp://h/a", Headers((("CSeq", "2"), ("Content-Type",
                                                                "application/sdp"),
                                                ("Content-Length", "4"))), b"v=0\n")),
    ("response", b"RTSP/1.0 200 OK\r\nCSeq: 3\r\nSession: 1;timeout=60\r\n\r\n",
     Response(200, Headers((("CSeq", "3"), ("Session", "1;timeout=60"))), reason="OK")),
    ("response 454", b"RTSP/1.0 454 Session Not Found\r\nCSeq: 9\r\n\r\n",
     Response(454, Headers((("CSeq", "9"),)), reason="Session Not Found")),
    ("frame", b"$\x01\x00\x03abc", InterleavedFrame(1, b"abc")),
]


def _norm(msg):
    if isinstance(msg, InterleavedFrame):
        return ("frame", msg.channel, bytes(msg.payload))
    return msg


def _drain(reader):
    out = []
    while (msg := reader.next_message()) is not None:
        out.append(_norm(msg))
    return out


@pytest.mark.parametrize("name,wire,decoded", GOLDEN, ids=[g[0] for g in GOLDEN])
def test_golden_parse(name, wire, decoded):
    r = MessageReader()
    r.receive_data(wire)
    assert _drain(r) == [_norm(decoded)]
    assert r.buffered == 0


@pytest.mark.parametrize("name,wire,decoded", GOLDEN, ids=[g[0] for g in GOLDEN])
def test_golden_write(name, wire, decoded):
    if isinstance(decoded, InterleavedFrame):
        assert b"".join(m.encode_frame(decoded.channel, decoded.payload)) == wire
    else:
        # Our writer puts Content-Length last; parse our output and compare.
        r = MessageReader()
        r.receive_data(decoded.to_bytes())
        assert _drain(r) == [decoded]


def test_case_insensitive_headers_and_folding():
    r = MessageReader()
    r.receive_data(b"SETUP rtsp://h/x RTSP/1.0\r\ncseq: 4\r\nX-Long: a\r\n b\r\n"
                   b"content-length: 2\r\n\r\nhi")
    req = r.next_message()
    assert req.cseq == "4" and req.headers.get("X-LONG") == "a b" and req.body == b"hi"


def _split_all(data, cuts):
    r = MessageReader()
    out = []
    for piece in pieces(data, cuts):
        r.receive_data(piece)
        out += _drain(r)
    return out, r


WHOLE = _drain((lambda r: (r.receive_data(PUBLISH), r)[1])(MessageReader()))


def test_ffmpeg_publish_capture_whole():
    methods = [x.method for x in WHOLE if isinstance(x, Request)]
    assert methods == ["OPTIONS", "ANNOUNCE", "ANNOUNCE", "SETUP", "SETUP", "RECORD",
                       "TEARDOWN"]
    frames = [x for x in WHOLE if isinstance(x, tuple)]
    assert {f[1] for f in frames} <= {0, 1, 2, 3} and len(frames) > 10
    ann = WHOLE[1]
    assert ann.headers.get("content-type") == "application/sdp"
    assert ann.body.startswith(b"v=0\r\n") and len(ann.body) == int(
        ann.headers.get("Content-Length"))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, len(PUBLISH)), max_size=30))
def test_ffmpeg_publish_capture_split(cuts):
    out, r = _split_all(PUBLISH, cuts)
    assert out == WHOLE and r.buffered == 0


def test_trailing_bytes_untouched():
    r = MessageReader()
    r.receive_data(GOLDEN[0][1] + b"$\x00\x00\x05ab")
    assert r.next_message().method == "OPTIONS"
    assert r.next_message() is None and r.buffered == 6
    r.receive_data(b"cdeOPT")
    assert _norm(r.next_message()) == ("frame", 0, b"abcde")
    assert r.next_message() is None and r.buffered == 3


def test_zero_copy_frames_from_caller_bytes():
    data = b"$\x00\x00\x02xy$\x02\x00\x01z"
    r = MessageReader()
    r.receive_data(data)
    f1, f2 = r.next_message(), r.next_message()
    assert isinstance(f1.payload, memoryview) and f1.payload.obj is data
    assert bytes(f2.payload) == b"z"


def test_frame_split_across_reads_copies_only_that_frame():
    r = MessageReader()
    r.receive_data(b"$\x00\x00\x04ab")
    assert r.next_message() is None and r.buffered == 6
    data = b"cd$\x02\x00\x01z$\x00\x00\x02xy$\x00"
    r.receive_data(data)
    first = r.next_message()
    assert (first.channel, bytes(first.payload)) == (0, b"abcd")
    rest = [r.next_message(), r.next_message()]
    assert [(f.channel, bytes(f.payload)) for f in rest] == [(2, b"z"), (0, b"xy")]
    assert all(isinstance(f.payload, memoryview) and f.payload.obj is data for f in rest)
    assert r.next_message() is None and r.buffered == 2


def test_bare_crlf_keepalive_skipped():
    r = MessageReader()
    r.receive_data(b"\r\n\r\n" + GOLDEN[0][1])
    assert r.next_message().method == "OPTIONS"


@pytest.mark.parametrize("wire,status", [
    (b"GARBAGE\r\n\r\n", 400),
    (b"OPTIONS * HTTP/1.1\r\n\r\n", 400),
    (b"OPTIONS * RTSP/1.0\r\nbad header\r\n\r\n", 400),
    (b"OPTIONS * RTSP/1.0\r\nContent-Length: x\r\n\r\n", 400),
    (b"OPTIONS * RTSP/1.0\r\nContent-Length: 99999999\r\n\r\n", 413),
    (b"OPTIONS * RTSP/1.0\r\n" + b"A: b\r\n" * (m.MAX_HEADERS + 1) + b"\r\n", 431),
    (b"OPTIONS * RTSP/1.0\r\nA: " + b"x" * m.MAX_HEADER_BYTES, 431),
    (b"RTSP/1.0 2x0 OK\r\n\r\n", 400),
])
def test_errors_have_status(wire, status):
    r = MessageReader()
    r.receive_data(wire)
    with pytest.raises(RTSPError) as ei:
        r.next_message()
    assert ei.value.status == status


@given(st.binary(max_size=200))
@example(b"$")
@example(b"A B RTSP/1.0\n\n")
def test_fuzz_contract(data):
    r = MessageReader()
    r.receive_data(data)
    try:
        for _ in range(50):
            if r.next_message() is None:
                break
    except ProtocolError:
        pass


def test_writer_rejects_header_injection():
    with pytest.raises(ValueError):
        Request("OPTIONS", "*", Headers((("CSeq", "1\r\nX: y"),))).to_bytes()


def test_headers_helpers():
    h = Headers.of({"CSeq": "1", "Session": "a"})
    assert h.with_("cseq", "2").get("CSeq") == "2"
    assert "session" in h and "Session" not in h.without("SESSION")
    assert Headers.of([("A", "1"), ("a", "2")]).get_all("A") == ["1", "2"]
