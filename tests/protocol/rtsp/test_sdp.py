"""SDP parse/format and track mapping (rtmpgop.protocol.rtsp.sdp, sdp_tracks)."""

import base64
import pathlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtmpgop import codecs
from rtmpgop.errors import ProtocolError, SDPError, Unsupported
from rtmpgop.media import Codec, Track
from rtmpgop.protocol.rtp.aac import AACDepacketizer
from rtmpgop.protocol.rtp.packet import RTPPacket
from rtmpgop.protocol.rtsp import sdp as S
from rtmpgop.protocol.rtsp.sdp_tracks import (
    depacketizer_for, media_for_track, packetizer_for, track_from_media)

CAPTURES = pathlib.Path(__file__).resolve().parents[3] / "fixtures" / "captures"


def _announce_sdp(name):
    data = (CAPTURES / name).read_bytes()
    start = data.index(b"v=0")
    return data[start:data.index(b"ANNOUNCE", start) if b"ANNOUNCE" in data[start:]
                else data.index(b"SETUP", start)]


def test_ffmpeg_h264_aac_announce():
    sd = S.parse_sdp(_announce_sdp("ffmpeg_publish_h264_aac_tcp.bin"))
    assert sd.name == "No Name" and sd.control is None
    v, a = sd.media
    assert (v.kind, v.payload_type, v.encoding, v.clock_rate, v.control) == (
        "video", 96, "H264", 90000, "streamid=0")
    assert v.param("packetization-mode") == "1" and v.param("PROFILE-LEVEL-ID") == "64000A"
    assert (a.encoding, a.clock_rate, a.channels, a.param("config")) == (
        "MPEG4-GENERIC", 48000, 1, "118856E500")
    tv, ta = track_from_media(v, 0), track_from_media(a, 1)
    assert (tv.codec, tv.config.width, tv.config.height, tv.clock_rate) == (
        Codec.H264, 160, 120, 90000)
    assert tv.config.codec_string == "avc1.64000a"
    assert (ta.codec, ta.config.sample_rate, ta.config.channels, ta.clock_rate) == (
        Codec.AAC, 48000, 1, 48000)
    assert isinstance(depacketizer_for(a, ta), AACDepacketizer)


def test_ffmpeg_hevc_opus_announce():
    sd = S.parse_sdp(_announce_sdp("ffmpeg_publish_hevc_opus_udp.bin"))
    tv, ta = (track_from_media(m, i) for i, m in enumerate(sd.media))
    assert (tv.codec, tv.config.width, tv.config.height) == (Codec.H265, 160, 120)
    assert (ta.codec, ta.config.channels, ta.clock_rate) == (Codec.OPUS, 2, 48000)


GOLDEN_SDP = (
    b"v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=Stream\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n"
    b"a=control:*\r\nm=audio 0 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\n"
    b"a=fmtp:111 sprop-stereo=1\r\na=control:trackID=1\r\n")


def test_golden_both_directions():
    sd = S.parse_sdp(GOLDEN_SDP)
    assert sd == S.SessionDescription(media=(S.MediaDescription(
        "audio", 0, "RTP/AVP", 111, "opus", 48000, 2, (("sprop-stereo", "1"),),
        "trackID=1"),))
    assert S.format_sdp(sd) == GOLDEN_SDP


@pytest.mark.parametrize("codec", [Codec.H264, Codec.H265, Codec.AAC, Codec.OPUS])
def test_track_roundtrip_through_sdp(codec):
    from tests.protocol.rtp.media_cache import audio, video
    s = {Codec.H264: lambda: video("h264"), Codec.H265: lambda: video("hevc"),
         Codec.AAC: lambda: audio("aac"), Codec.OPUS: lambda: audio("opus")}[codec]()
    cfg = codecs.make_config(codec, s.config)
    clock = 90000 if codec.kind.value == "video" else 48000
    track = Track(3, cfg, clock)
    wire = S.format_sdp(S.SessionDescription(media=(media_for_track(track, "trackID=3"),)))
    (m,) = S.parse_sdp(wire).media
    back = track_from_media(m, 3)
    assert back.clock_rate == clock and back.codec is codec
    if codec is Codec.OPUS:
        assert back.config.channels == cfg.channels
    elif codec is Codec.H265:  # x265's hvcC carries an SEI array the SDP does not
        from rtmpgop.codecs import h265 as c265
        a, b = c265.parse_hvcc(back.config.record), c265.parse_hvcc(cfg.record)
        assert (a.vps, a.sps, a.pps) == (b.vps, b.sps, b.pps)
        assert back.config.codec_string == cfg.codec_string
    else:
        assert back.config == cfg
    assert packetizer_for(back, m.payload_type, 1) is not None
    depacketizer_for(m, back)


def _h264_media(fmtp):
    return S.parse_sdp(f"v=0\nm=video 0 RTP/AVP 96\na=rtpmap:96 H264/90000\n"
                       f"a=fmtp:96 {fmtp}\n").media[0]


def test_h264_sprop_with_annexb_prefix_and_spaces():
    from tests.protocol.rtp.media_cache import video
    cfg = codecs.make_config(Codec.H264, video("h264").config)
    from rtmpgop.codecs import h264 as c264
    rec = c264.parse_avcc(cfg.record)
    sps = base64.b64encode(b"\x00\x00\x00\x01" + rec.sps[0]).decode()
    pps = base64.b64encode(rec.pps[0]).decode()
    m = _h264_media(f"packetization-mode=1;sprop-parameter-sets= {sps},{pps}")
    assert track_from_media(m, 0).config == cfg


def test_h264_broken_or_missing_sprop_means_in_band():
    t = track_from_media(_h264_media("packetization-mode=1; sprop-parameter-sets=Z0LAHg,aM4"), 0)
    assert t.codec is Codec.H264 and t.config.record == b""
    t = track_from_media(_h264_media("packetization-mode=1"), 0)
    assert t.config.record == b""
    with pytest.raises(Unsupported):
        track_from_media(_h264_media("packetization-mode=2"), 0)


def test_h265_don_refused():
    m = S.parse_sdp("v=0\nm=video 0 RTP/AVP 96\na=rtpmap:96 H265/90000\n"
                    "a=fmtp:96 sprop-max-don-diff=2\n").media[0]
    with pytest.raises(Unsupported):
        track_from_media(m, 0)


def test_aac_case_insensitive_params_lbr():
    m = S.parse_sdp("v=0\nm=audio 0 RTP/AVP 97\na=rtpmap:97 mpeg4-generic/16000/1\n"
                    "a=fmtp:97 StreamType=5;Mode=AAC-lbr;SizeLength=6;IndexLength=2;"
                    "IndexDeltaLength=2;Config=1408\n").media[0]
    t = track_from_media(m, 0)
    assert (t.config.sample_rate, t.config.channels) == (16000, 1)
    assert depacketizer_for(m, t).fmt.size_length == 6


def test_latm_config_and_depacketizer():
    # StreamMuxConfig for AAC-LC 48 kHz stereo (cpresent=0), as Axis cameras announce.
    m = S.parse_sdp("v=0\nm=audio 0 RTP/AVP 96\na=rtpmap:96 MP4A-LATM/48000/2\n"
                    "a=fmtp:96 profile-level-id=1;cpresent=0;object=2;config=400023203FC0\n"
                    ).media[0]
    t = track_from_media(m, 0)
    assert (t.codec, t.config.sample_rate, t.config.channels) == (Codec.AAC, 48000, 2)
    dp = depacketizer_for(m, t)
    frame = bytes(range(256)) + b"tail"  # 260 bytes: PayloadLengthInfo = 255, 5
    first = RTPPacket(96, 1, 90, 1, b"\xff\x05" + frame[:100], False)
    second = RTPPacket(96, 2, 90, 1, frame[100:], True)
    assert dp.push(first) == []
    (f,) = dp.push(second)
    assert (f.pts, f.payload, f.config) == (90, frame, t.config)


def test_unsupported_codec():
    m = S.parse_sdp("v=0\nm=audio 0 RTP/AVP 0\n").media[0]
    assert (m.encoding, m.clock_rate) == ("PCMU", 8000)
    with pytest.raises(Unsupported):
        track_from_media(m, 0)


@pytest.mark.parametrize("base,control,url", [
    ("rtsp://h/live/x/", "trackID=0", "rtsp://h/live/x/trackID=0"),
    ("rtsp://h/live/x", "streamid=1", "rtsp://h/live/x/streamid=1"),
    ("rtsp://h/live/x?token=1", "?ctype=video", "rtsp://h/live/x?token=1?ctype=video"),
    ("rtsp://h:554/live/x", "*", "rtsp://h:554/live/x"),
    ("rtsp://h:554/live/x", None, "rtsp://h:554/live/x"),
    ("rtsp://pub.example:8554/cam/", "rtsp://10.0.0.5/cam/track1",
     "rtsp://pub.example:8554/cam/track1"),
    ("rtsp://u:p@h/cam/", "/other/t1", "rtsp://h/other/t1"),
])
def test_resolve_control(base, control, url):
    assert S.resolve_control(base, control) == url


@pytest.mark.parametrize("body", [b"", b"x=1\n", b"v=0\nbad\n", b"v=0\nm=video x RTP/AVP 96\n",
                                  b"v=0\nm=video 0 RTP/AVP 96\na=rtpmap:96 H264/abc\n",
                                  b"v=0\nm=video\n"])
def test_errors(body):
    with pytest.raises(SDPError):
        S.parse_sdp(body)


@given(st.binary(max_size=200))
def test_fuzz_contract(data):
    try:
        sd = S.parse_sdp(b"v=0\n" + data)
        for i, m in enumerate(sd.media):
            try:
                depacketizer_for(m, track_from_media(m, i))
            except ProtocolError:
                pass
    except ProtocolError:
        pass
