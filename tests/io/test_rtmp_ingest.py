"""RtmpIngest: sequence headers -> tracks, timestamps (video ms*90 + cts, AAC frame counting with
re-anchoring, Opus packet durations), AVCC pass-through and re-packing, keyframe confirmation."""

import functools

import pytest

from fixtures.media import encode_audio, encode_video
from rtmpgop.channels import Hub
from rtmpgop.codecs import h264, opus
from rtmpgop.errors import CodecError
from rtmpgop.io.rtmp_ingest import RtmpIngest
from rtmpgop.media import AccessUnit, TrackSet
from rtmpgop.protocol.flv import AudioTag, PacketType as P, VideoTag
from rtmpgop.protocol.rtmp.events import AudioData, Metadata, VideoData


@functools.cache
def h264_stream():
    return encode_video("h264", frames=10, bframes=True, gop=10)


@functools.cache
def aac_stream():
    return encode_audio("aac", seconds=0.5, rate=48000)


def vtag(packet, key=True, cts=0, fourcc="avc1"):
    return VideoTag(fourcc, 1 if key else 2, packet, cts, 5, 0)


def atag(packet, fourcc="mp4a"):
    return AudioTag(fourcc, packet, 2, 0)


def setup():
    hub = Hub()
    ch = hub.publish("live/x", "me")
    sub = hub.subscribe("live/x")
    return ch, RtmpIngest(ch), sub


def drain(sub):
    out = []
    while (i := sub.get_nowait()) is not None:
        out.append(i)
    return out


def test_tracks_announced_once_with_metadata_before_first_frame():
    ch, ing, sub = setup()
    v, a = h264_stream(), aac_stream()
    ing.on_metadata(Metadata(1, (("framerate", 30.0), ("encoder", "x"))))
    ing.on_video(VideoData(1, 0, vtag(P.SEQUENCE_START), v.config))
    ing.on_audio(AudioData(1, 0, atag(P.SEQUENCE_START), a.config))
    assert ch.trackset.version == 0  # nothing announced before a frame
    ing.on_video(VideoData(1, 0, vtag(P.SEQUENCE_START), v.config))  # repeated: no change
    p = v.packets[0]
    ing.on_video(VideoData(1, 0, vtag(P.CODED_FRAMES, True, 66), p.data))
    items = drain(sub)
    ts = items[0]
    assert isinstance(ts, TrackSet) and ts.version == 1
    assert [t.codec.value for t in ts.tracks] == ["h264", "aac"]
    assert ts.tracks[0].config.width == 320 and ts.tracks[1].config.sample_rate == 48000
    assert dict(ts.metadata)["encoder"] == "x"
    au = items[1]
    assert au == AccessUnit(0, 0, 66 * 90, True, p.data)
    assert au.payload is p.data  # the event's bytes go to the hub as they are (no re-pack)


def test_aac_counts_frames_and_reanchors_on_drift():
    ch, ing, sub = setup()
    a = aac_stream()
    ing.on_audio(AudioData(1, 0, atag(P.SEQUENCE_START), a.config))
    # RTMP ms timestamps of 1024-sample frames at 48 kHz: 0, 21, 42, 64, ... (rounded)
    ms = [round(i * 1024 / 48) for i in range(6)] + [5000, 5021]
    for t in ms:
        ing.on_audio(AudioData(1, t, atag(P.CODED_FRAMES), b"\x21\x00"))
    dts = [i.dts for i in drain(sub) if isinstance(i, AccessUnit)]
    assert dts[:6] == [i * 1024 for i in range(6)]  # exact sample counts, no ms rounding
    assert dts[6:] == [5000 * 48, 5000 * 48 + 1024]  # re-anchored after the jump


def test_opus_durations_from_toc():
    ch, ing, sub = setup()
    ing.on_audio(AudioData(1, 0, atag(P.SEQUENCE_START, "Opus"), opus.build_opus_head(2)))
    pkt20 = bytes([0xFC, 0x00])  # config 31 (CELT FB 20 ms), code 0
    for t in (0, 20, 40):
        ing.on_audio(AudioData(1, t, atag(P.CODED_FRAMES, "Opus"), pkt20))
    dts = [i.dts for i in drain(sub) if isinstance(i, AccessUnit)]
    assert dts == [0, 960, 1920]
    assert ch.trackset.audio().clock_rate == 48000


def test_avcc_with_2_byte_lengths_is_repacked():
    v = h264_stream()
    rec = h264.parse_avcc(v.config)
    cfg2 = bytearray(v.config)
    cfg2[4] = (cfg2[4] & 0xFC) | 1  # lengthSizeMinusOne = 1
    nals = list(h264.iter_avcc(v.packets[0].data, 4))
    two = b"".join(len(n).to_bytes(2, "big") + bytes(n) for n in nals)
    ch, ing, sub = setup()
    ing.on_video(VideoData(1, 0, vtag(P.SEQUENCE_START), bytes(cfg2)))
    ing.on_video(VideoData(1, 0, vtag(P.CODED_FRAMES), two))
    aus = [i for i in drain(sub) if isinstance(i, AccessUnit)]
    assert aus[0].payload == v.packets[0].data and ing.repacked == 1 and rec.length_size == 4


def test_flv_key_flag_confirmed_by_bitstream():
    v = h264_stream()
    ch, ing, sub = setup()
    ing.on_video(VideoData(1, 0, vtag(P.SEQUENCE_START), v.config))
    inter = next(p for p in v.packets if not p.keyframe)
    ing.on_video(VideoData(1, 0, vtag(P.CODED_FRAMES, True), inter.data))  # lies: "key"
    assert ch.frames_dropped == 1  # not a GoP start: nothing decodable yet


def test_frames_before_sequence_header_and_unknown_codecs_dropped():
    ch, ing, sub = setup()
    ing.on_video(VideoData(1, 0, vtag(P.CODED_FRAMES), b"\x00\x00\x00\x01\x65"))
    ing.on_audio(AudioData(1, 0, AudioTag(".mp3", P.OTHER, 1, 0), b"\xff"))
    ing.on_video(VideoData(1, 0, vtag(P.SEQUENCE_START, fourcc="vp08"), b"x"))
    assert ing.frames_dropped == 1 and ch.frames_in == 0


def test_bad_config_record_raises_codec_error():
    ch, ing, sub = setup()
    with pytest.raises(CodecError):
        ing.on_video(VideoData(1, 0, vtag(P.SEQUENCE_START), b"\x01\x02"))


def test_legacy_codec_7_carrying_hvcc_is_hevc():
    hv = encode_video("hevc", frames=2, bframes=False)
    ch, ing, sub = setup()
    ing.on_video(VideoData(1, 0, vtag(P.SEQUENCE_START), hv.config))
    ing.on_video(VideoData(1, 0, vtag(P.CODED_FRAMES), hv.packets[0].data))
    assert ch.trackset.video().codec.value == "hevc" and ch.frames_in == 1
