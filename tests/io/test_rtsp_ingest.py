"""RtspIngest without sockets: tracks are announced once configured; per-track RTP timelines
land on one stream timeline, by the publisher's SRs or else by arrival time."""

from __future__ import annotations

from rtmpgop.channels import Hub
from rtmpgop.io.rtsp_ingest import INGEST_START_SECONDS, RtspIngest
from rtmpgop.media import AccessUnit, Codec, CodecConfig, Track
from rtmpgop.protocol.rtp import rtcp

VIDEO = Track(0, CodecConfig(Codec.H264, b"\x01avcc", 320, 240), 90000)
AUDIO = Track(1, CodecConfig(Codec.AAC, b"\x11\x90", sample_rate=48000, channels=2), 48000)


def items(sub):
    out = []
    while (it := sub.get_nowait()) is not None:
        out.append(it)
    return out


def test_units_wait_for_a_known_configuration():
    hub = Hub()
    ch = hub.publish("live/a", object())
    sub = hub.subscribe("live/a")
    empty = Track(0, CodecConfig(Codec.H264), 90000)
    ing = RtspIngest(ch, (empty, AUDIO), lambda tid: None)
    ing.push(AccessUnit(0, 0, 0, True, b"x"), 10.0)  # no SPS/PPS yet: dropped
    assert ch.trackset.tracks == ()
    ing.track_changed(VIDEO)
    ing.push(AccessUnit(0, 1000, 1000, True, b"\x00\x00\x00\x01\x65"), 10.0)
    assert ch.trackset.tracks == (VIDEO, AUDIO)
    version = ch.trackset.version
    ing.track_changed(VIDEO)  # the same parameter sets again in-band: no new TrackSet
    ing.push(AccessUnit(0, 4000, 4000, False, b"y"), 10.1)
    assert ch.trackset.version == version
    got = [it for it in items(sub) if isinstance(it, AccessUnit)]
    start = round(INGEST_START_SECONDS * 90000)
    assert [(u.dts, u.pts) for u in got] == [(start, start), (start + 3000, start + 3000)]


def test_sender_reports_align_the_tracks():
    hub = Hub()
    ch = hub.publish("live/b", object())
    sub = hub.subscribe("live/b")
    ntp0 = rtcp.unix_to_ntp(1_700_000_000.0)
    # both SRs name the same instant: video RTP 1_000_000, audio RTP 5_000
    srs = {0: rtcp.SenderReport(1, ntp0, 1_000_000, 0, 0), 1: rtcp.SenderReport(2, ntp0, 5_000, 0, 0)}
    ing = RtspIngest(ch, (VIDEO, AUDIO), srs.get)
    ing.push(AccessUnit(0, 1_000_000, 1_000_000, True, b"v"), 50.0)
    # audio 0.5 s after the SR instant, arriving "late": the SR decides, not the arrival
    ing.push(AccessUnit(1, 5_000 + 24_000, 5_000 + 24_000, True, b"a"), 57.0)
    got = {u.track: u for u in items(sub) if isinstance(u, AccessUnit)}
    assert got[0].pts / 90000 == INGEST_START_SECONDS
    assert abs(got[1].pts / 48000 - (INGEST_START_SECONDS + 0.5)) < 1 / 48000


def test_without_sender_reports_arrival_decides():
    hub = Hub()
    ch = hub.publish("live/c", object())
    sub = hub.subscribe("live/c")
    ing = RtspIngest(ch, (VIDEO, AUDIO), lambda tid: None)
    ing.push(AccessUnit(0, 123_456, 123_456, True, b"v"), 20.0)
    ing.push(AccessUnit(1, 777, 777, True, b"a"), 20.25)
    ing.push(AccessUnit(1, 777 + 1024, 777 + 1024, True, b"a"), 20.3)
    got = [u for u in items(sub) if isinstance(u, AccessUnit)]
    assert [u.pts for u in got] == [round(INGEST_START_SECONDS * 90000),
                                    round((INGEST_START_SECONDS + 0.25) * 48000),
                                    round((INGEST_START_SECONDS + 0.25) * 48000) + 1024]
