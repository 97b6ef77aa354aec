"""Replay a real Debian ffmpeg 5.1 RTMP publish session (fixtures/captures/capture_rtmp.py)."""

import pathlib

from hypothesis import given, settings
from hypothesis import strategies as st

from rtmpgop.protocol.flv import PacketType as P
from rtmpgop.protocol.rtmp import events as E
from rtmpgop.protocol.rtmp.connection import ServerConnection
from tests.protocol.pieces import pieces

CAPTURE = (pathlib.Path(__file__).resolve().parents[3] / "fixtures" / "captures"
           / "ffmpeg_rtmp_publish_h264_aac.bin").read_bytes()


def replay(cuts=()):
    s = ServerConnection()
    events = []
    for piece in pieces(CAPTURE, cuts):
        s.receive_data(piece)
        while (ev := s.next_event()) is not None:
            events.append(ev)
            if isinstance(ev, E.Connect):
                s.accept_connect(ev)
            elif isinstance(ev, E.Publish):
                s.accept_publish(ev)
    return s, events


def summary(events):
    out = []
    for e in events:
        if isinstance(e, E.VideoData):
            out.append(("V", e.timestamp, e.tag.packet, e.tag.cts, e.tag.keyframe, len(e.payload)))
        elif isinstance(e, E.AudioData):
            out.append(("A", e.timestamp, e.tag.packet, len(e.payload)))
        else:
            out.append(type(e).__name__)
    return out


EXPECTED = [
    "HandshakeComplete", "Connect", "CreateStream", "Publish", "Metadata",
    ("V", 0, P.SEQUENCE_START, 0, True, 40),
    ("A", 0, P.SEQUENCE_START, 5),
    ("V", 0, P.CODED_FRAMES, 200, True, 4821),
    ("V", 100, P.CODED_FRAMES, 400, False, 2427),
    ("A", 177, P.CODED_FRAMES, 138),
    ("V", 200, P.CODED_FRAMES, 100, False, 1570),
    ("A", 200, P.CODED_FRAMES, 162),
    ("V", 300, P.CODED_FRAMES, 100, False, 1063),
    ("V", 400, P.CODED_FRAMES, 300, False, 2118),
    ("V", 500, P.CODED_FRAMES, 100, False, 1512),
    ("V", 500, P.SEQUENCE_END, 0, True, 0),
    "Unpublish", "DeleteStream",
]


def test_replay_whole():
    s, events = replay()
    assert summary(events) == EXPECTED
    connect = events[1]
    assert connect.app == "live" and connect.params["flashVer"].endswith("Lavf59.27.100)")
    assert events[0].digest  # FFmpeg always sends a digest C1
    meta = dict(events[4].values)
    assert (meta["width"], meta["height"], meta["framerate"], meta["videocodecid"]) == (160.0, 120.0, 10.0, 7.0)
    assert events[3] == E.Publish(1, "capture", "live", "", 5.0)
    assert s.reader.chunk_size == 4096  # ffmpeg adopted and echoed our Set Chunk Size


def test_keyframe_payload_is_avcc():
    _, events = replay()
    key = [e for e in events if isinstance(e, E.VideoData) and e.tag.packet is P.CODED_FRAMES][0]
    n = int.from_bytes(key.payload[:4], "big")
    assert 0 < n < len(key.payload) and key.payload[4] & 0x1F in (5, 6, 9)  # IDR, SEI or AUD


def test_copy_budget_on_capture():
    s, events = replay()
    media = sum(len(e.payload) for e in events if isinstance(e, (E.VideoData, E.AudioData)))
    copied = dict(s.statistics().extra)["bytes_copied"]
    assert media <= copied <= media + 1200  # + command/metadata bodies


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, len(CAPTURE)), max_size=20))
def test_replay_split_anywhere(cuts):
    assert summary(replay(cuts)[1]) == EXPECTED


def test_trailing_partial_chunk_untouched():
    s = ServerConnection()
    s.receive_data(CAPTURE + b"\x06\x00\x00")
    n = 0
    while (ev := s.next_event()) is not None:
        n += 1
        if isinstance(ev, E.Connect):
            s.accept_connect(ev)
    assert n == len(EXPECTED) and s.reader.available() == 3
