"""FLV / E-RTMP tag bodies: golden tables both directions, multitrack, ModEx, fuzz contract."""

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from rtmpgop.errors import FLVError, ProtocolError
from rtmpgop.protocol import flv
from rtmpgop.protocol.flv import AudioTag, PacketType as P, VideoTag
from rtmpgop.protocol.rtmp.chunk import Pieces

PAY = b"PAYLOAD"

# name, header hex, (fourcc, frame_type, packet, cts, enhanced), writer args or None
VIDEO = [
    ("avc seq", "17 00 000000", ("avc1", 1, P.SEQUENCE_START, 0, False), ("avc1", P.SEQUENCE_START, True, 0)),
    ("avc key cts 66", "17 01 000042", ("avc1", 1, P.CODED_FRAMES, 66, False), ("avc1", P.CODED_FRAMES, True, 66)),
    ("avc inter negative cts", "27 01 ffffdf", ("avc1", 2, P.CODED_FRAMES, -33, False), ("avc1", P.CODED_FRAMES, False, -33)),
    ("avc eos", "17 02 000000", ("avc1", 1, P.SEQUENCE_END, 0, False), ("avc1", P.SEQUENCE_END, True, 0)),
    ("legacy hevc id 12", "1c 01 000021", ("hvc1", 1, P.CODED_FRAMES, 33, False), None),
    ("hvc1 seq", "90 68766331", ("hvc1", 1, P.SEQUENCE_START, 0, True), ("hvc1", P.SEQUENCE_START, True, 0)),
    ("hvc1 coded cts", "a1 68766331 000021", ("hvc1", 2, P.CODED_FRAMES, 33, True), ("hvc1", P.CODED_FRAMES, False, 33)),
    ("hvc1 coded X", "93 68766331", ("hvc1", 1, P.CODED_FRAMES, 0, True), ("hvc1", P.CODED_FRAMES, True, 0)),
    ("av01 seq", "90 61763031", ("av01", 1, P.SEQUENCE_START, 0, True), ("av01", P.SEQUENCE_START, True, 0)),
    ("av01 coded (no cts)", "a1 61763031", ("av01", 2, P.CODED_FRAMES, 0, True), None),
    ("av01 coded X", "a3 61763031", ("av01", 2, P.CODED_FRAMES, 0, True), ("av01", P.CODED_FRAMES, False, 0)),
    ("vp09 key", "91 76703039", ("vp09", 1, P.CODED_FRAMES, 0, True), None),
    ("avc1 enhanced cts", "91 61766331 000010", ("avc1", 1, P.CODED_FRAMES, 16, True), None),
    ("hvc1 seq end", "92 68766331", ("hvc1", 1, P.SEQUENCE_END, 0, True), ("hvc1", P.SEQUENCE_END, True, 0)),
    ("metadata", "f4 68766331", ("hvc1", 7, P.METADATA, 0, True), None),
    ("modex nano offset", "97 02 0001f4 01 61763031",
     ("av01", 1, P.CODED_FRAMES, 0, True), None),
]


def _hex(h):
    return bytes.fromhex(h.replace(" ", ""))


@pytest.mark.parametrize("name,hdr,exp,_w", VIDEO, ids=[v[0] for v in VIDEO])
def test_video_golden_parse(name, hdr, exp, _w):
    body = _hex(hdr) + PAY
    for form in (body, memoryview(body), Pieces([memoryview(body[:3]), memoryview(body[3:])])):
        tag = flv.parse_video(form)
        assert (tag.fourcc, tag.frame_type, tag.packet, tag.cts, tag.enhanced) == exp
        assert body[tag.offset:tag.offset + tag.length] == PAY


def test_modex_fields():
    # ModEx (7), size-1 = 2 -> 3 bytes of data (500 ns), then modExType 0 | packetType 1
    body = _hex("97 02 0001f4 01 61763031") + PAY
    tag = flv.parse_video(body)
    assert tag.packet is P.CODED_FRAMES and tag.nano_offset == 500 and tag.fourcc == "av01"
    assert body[tag.offset:] == PAY


@pytest.mark.parametrize("name,hdr,exp,w", [v for v in VIDEO if v[3]], ids=[v[0] for v in VIDEO if v[3]])
def test_video_golden_write(name, hdr, exp, w):
    fourcc, packet, key, cts = w
    assert flv.video_header(fourcc, packet, key, cts) == _hex(hdr)


AUDIO = [
    ("aac seq", "af 00", ("mp4a", P.SEQUENCE_START, False), ("mp4a", P.SEQUENCE_START)),
    ("aac raw", "af 01", ("mp4a", P.CODED_FRAMES, False), ("mp4a", P.CODED_FRAMES)),
    ("opus seq", "90 4f707573", ("Opus", P.SEQUENCE_START, True), ("Opus", P.SEQUENCE_START)),
    ("opus frame", "91 4f707573", ("Opus", P.CODED_FRAMES, True), ("Opus", P.CODED_FRAMES)),
    ("e-rtmp mp4a frame", "91 6d703461", ("mp4a", P.CODED_FRAMES, True), None),
    ("mp3 legacy", "2f", (".mp3", P.OTHER, False), None),
    ("multichannel config", "94 4f707573", ("Opus", P.MULTICHANNEL_CONFIG, True), None),
]


@pytest.mark.parametrize("name,hdr,exp,_w", AUDIO, ids=[a[0] for a in AUDIO])
def test_audio_golden_parse(name, hdr, exp, _w):
    body = _hex(hdr) + PAY
    tag = flv.parse_audio(body)
    assert (tag.fourcc, tag.packet, tag.enhanced) == exp
    assert body[tag.offset:tag.offset + tag.length] == PAY


@pytest.mark.parametrize("name,hdr,exp,w", [a for a in AUDIO if a[3]], ids=[a[0] for a in AUDIO if a[3]])
def test_audio_golden_write(name, hdr, exp, w):
    assert flv.audio_header(*w) == _hex(hdr)


def test_empty_audio_is_silence():
    assert flv.parse_audio(b"") == AudioTag("", P.CODED_FRAMES, 0, 0)


def test_video_multitrack_one_track_keeps_track_id():
    # OBS sends tracks > 0 as OneTrack multitrack: 0x96 = key | Multitrack, 0x01 = OneTrack|CodedFrames
    body = _hex("96 01 68766331 02 000021") + PAY
    tag = flv.parse_video(body)
    assert tag.track == 2 and tag.fourcc == "hvc1" and tag.cts == 33 and tag.extra_tracks == 0
    assert body[tag.offset:tag.offset + tag.length] == PAY


def test_video_multitrack_many_tracks_picks_track0_counts_rest():
    t1 = _hex("000021") + b"ONE"
    t0 = _hex("000010") + b"ZERO"
    body = _hex("96 11 68766331") + b"\x01" + len(t1).to_bytes(3, "big") + t1 \
        + b"\x00" + len(t0).to_bytes(3, "big") + t0
    tag = flv.parse_video(body)
    assert tag.track == 0 and tag.extra_tracks == 1 and tag.cts == 16
    assert body[tag.offset:tag.offset + tag.length] == b"ZERO"


def test_video_multitrack_many_codecs():
    t0 = b"AV1DATA"
    t1 = _hex("000021") + b"HEVC"
    body = _hex("96 23") + b"av01\x00" + len(t0).to_bytes(3, "big") + t0 \
        + b"hvc1\x01" + len(t1).to_bytes(3, "big") + t1
    tag = flv.parse_video(body)
    assert (tag.fourcc, tag.track, tag.extra_tracks, tag.cts) == ("av01", 0, 1, 0)
    assert body[tag.offset:tag.offset + tag.length] == t0


def test_audio_multitrack():
    body = _hex("95 11 4f707573") + b"\x00" + (3).to_bytes(3, "big") + b"abc" + b"\x01" \
        + (2).to_bytes(3, "big") + b"de"
    tag = flv.parse_audio(body)
    assert (tag.fourcc, tag.track, tag.extra_tracks) == ("Opus", 0, 1)
    assert body[tag.offset:tag.offset + tag.length] == b"abc"


def test_multitrack_overrun_raises():
    body = _hex("96 13 68766331 00 0000ff 000000")
    with pytest.raises(FLVError):
        flv.parse_video(body)


def test_command_frame():
    tag = flv.parse_video(b"\x57\x01")
    assert tag.packet is P.COMMAND


@pytest.mark.parametrize("name,hdr,exp,_w", VIDEO, ids=[v[0] for v in VIDEO])
def test_video_truncated_header_raises(name, hdr, exp, _w):
    data = _hex(hdr)
    for n in range(1, len(data)):
        try:
            tag = flv.parse_video(data[:n])
        except FLVError:
            continue
        assert tag.packet in (P.COMMAND, P.OTHER) or tag.offset <= n  # never reads past the end


@given(st.binary(max_size=64))
@example(b"\x97\xff\xff\xff")
@example(b"\x96\x13hvc1\x00\x00\x00\x00" * 3)
def test_fuzz_contract(data):
    for fn in (flv.parse_video, flv.parse_audio):
        try:
            tag = fn(data)
        except ProtocolError:
            continue
        assert isinstance(tag, (VideoTag, AudioTag))
        assert 0 <= tag.offset and tag.offset + tag.length <= len(data)


def _outcome(fn, body, head=None):
    try:
        return fn(body, head)
    except ProtocolError as e:
        return type(e)


@given(st.binary(max_size=24), st.binary(max_size=16))
@example(_hex("17 01 000042") + PAY, b"")
@example(_hex("a1 68766331 000021") + PAY, b"")
@example(_hex("c3 61763031") + PAY, b"")  # frame type 4 (generated), coded X
@example(b"\xaf\x01\x21", b"")
@example(b"\xaf\x02\x21", b"")
def test_head_fast_path_matches_full_parse(data, tail):
    """A prefix ``head`` of any length gives the same tag (or error) as parsing the body alone:
    heads of 8+ bytes take the fast path, shorter ones the general parser."""
    body = data + tail
    for fn in (flv.parse_video, flv.parse_audio):
        full = _outcome(fn, body)
        for k in range(len(body) + 1):
            assert _outcome(fn, body, body[:k]) == full
            pieces = Pieces([memoryview(body[:k]), memoryview(body[k:])])
            assert _outcome(fn, pieces, pieces.head) == full
