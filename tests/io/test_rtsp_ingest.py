"""RtspIngest and Timeline without sockets (publishers and pulled cameras alike): one timeline
from START_SECONDS aligned by the sender's SRs or else by arrival; discontinuities re-anchored
(backwards, large jumps) while bursts and frozen clocks pass; video-first renumbering; waiting
for in-band configurations with a grace; re-announce on real changes only; into a hub Channel
or a source's sink."""

from __future__ import annotations

from rtmpgop.channels import Hub
from rtmpgop.io import rtsp_ingest
from rtmpgop.io.rtsp_ingest import START_SECONDS, RtspIngest, Timeline
from rtmpgop.media import VIDEO_CLOCK, AccessUnit, Codec, CodecConfig, Track
from rtmpgop.protocol.rtp import rtcp

VIDEO = Track(0, CodecConfig(Codec.H264, b"\x01avcc", 320, 240), 90000)
AUDIO = Track(1, CodecConfig(Codec.AAC, b"\x11\x90", sample_rate=48000, channels=2), 48000)
AAC = Track(0, CodecConfig(Codec.AAC, b"\x11\x90", sample_rate=48000, channels=2), 48000)
H264_NOCFG = Track(1, CodecConfig(Codec.H264), VIDEO_CLOCK)
V0 = round(START_SECONDS * 90000)  # hub dts of a stream's first video unit
A0 = round(START_SECONDS * 48000)


def au(track, dts, key=False, payload=b"x"):
    return AccessUnit(track, dts, dts, key, payload)


def items(sub):
    out = []
    while (it := sub.get_nowait()) is not None:
        out.append(it)
    return out


class FakeSink:
    def __init__(self):
        self.tracksets = []
        self.units = []

    def set_tracks(self, tracks, metadata=None):
        self.tracksets.append(list(tracks))

    def push(self, unit):
        self.units.append(unit)


# ------------------------------------------------------------------------- Timeline
def test_timeline_starts_at_start_and_aligns_tracks_by_arrival():
    tl = Timeline()
    v = tl.map(au(3, 1_000_000), 0, 90000, now=100.0)
    a = tl.map(au(5, 7_000), 1, 48000, now=100.5)  # audio's first unit 0.5 s later
    v2 = tl.map(au(3, 1_003_000), 0, 90000, now=100.533)
    assert (v.track, v.dts, a.track, a.dts) == (0, V0, 1, A0 + 24000)
    assert v2.dts == V0 + 3000 and v2.pts == V0 + 3000


def test_timeline_anchors_the_first_unit_by_pts():
    tl = Timeline()
    v = tl.map(AccessUnit(0, 1000, 7000, True, b"v"), 0, 90000, now=1.0)  # B-frame delay
    assert (v.dts, v.pts) == (V0 - 6000, V0)


def test_timeline_sr_decides_over_arrival():
    tl = Timeline()
    tl.map(au(0, 500), 0, 90000, now=0.0, ntp=1000.0)
    a = tl.map(au(1, 99), 1, 48000, now=7.0, ntp=1000.5)  # arrives 7 s late, SR says +0.5 s
    b = tl.map(au(2, 99), 2, 48000, now=7.0)  # no SR for this one: arrival decides
    assert a.pts == A0 + 24000 and b.pts == A0 + 7 * 48000


def test_timeline_reanchors_backward_and_large_jumps_only():
    tl = Timeline()
    tl.map(au(0, 500), 0, 90000, now=0.0)
    same = tl.map(au(0, 500), 0, 90000, now=0.033)  # frozen camera clock: kept (watchdog's job)
    back = tl.map(au(0, 100), 0, 90000, now=0.066)  # encoder restart: timestamps went back
    ahead = tl.map(au(0, 100 + 3000), 0, 90000, now=0.1)
    jump = tl.map(au(0, 10**9), 0, 90000, now=0.133)  # hours ahead: re-anchored to the clock
    assert same.dts == V0 and tl.discontinuities == 2
    assert back.dts == V0 + round(0.033 * 90000) and ahead.dts == back.dts + 3000
    assert jump.dts == ahead.dts + round(0.033 * 90000)
    burst = [tl.map(au(0, 10**9 + 3000 * i), 0, 90000, now=0.2) for i in range(1, 200)]
    assert tl.discontinuities == 2  # a TCP backlog arriving at once is not a jump
    assert [b.dts - jump.dts for b in burst[:3]] == [3000, 6000, 9000]


# ------------------------------------------------------------------------- cameras (a sink)
def test_video_first_and_waits_for_in_band_config():
    sink = FakeSink()
    m = RtspIngest(sink)
    m.start((AAC, H264_NOCFG), now=0.0)
    m.push(au(0, 1000, True), now=0.1)  # audio before the video config is known: held
    assert sink.tracksets == [] and m.units_held == 1
    video = Track(1, CodecConfig(Codec.H264, b"\x01avcC", 320, 240), VIDEO_CLOCK)
    m.track_changed(video, now=0.2)
    m.track_changed(video, now=0.3)  # the same parameter sets again (every keyframe): kept
    m.push(au(1, 90000, True), now=0.3)
    m.push(au(0, 2024), now=0.31)
    (ts,) = sink.tracksets
    assert [(t.id, t.codec) for t in ts] == [(0, Codec.H264), (1, Codec.AAC)]
    assert [(u.track, u.dts) for u in sink.units] == [(0, V0), (1, A0 + 480)]
    m.track_changed(Track(1, CodecConfig(Codec.H264, b"\x01new", 640, 480), VIDEO_CLOCK), 1.0)
    assert len(sink.tracksets) == 2 and sink.tracksets[1][0].config.width == 640
    assert m.frames_in == 2


def test_known_tracks_published_after_the_grace():
    sink = FakeSink()
    m = RtspIngest(sink)
    m.start((AAC, H264_NOCFG), now=0.0)
    m.push(au(0, 0, True), now=1.0)
    m.push(au(0, 1024, True), now=rtsp_ingest.ANNOUNCE_GRACE + 0.1)
    assert [[t.codec for t in ts] for ts in sink.tracksets] == [[Codec.AAC]]
    assert [u.track for u in sink.units] == [1]  # hub id 1: the video keeps id 0


# ------------------------------------------------------------------------- publishers (a Channel)
def test_units_wait_for_a_known_configuration():
    hub = Hub()
    ch = hub.publish("live/a", object())
    sub = hub.subscribe("live/a")
    empty = Track(0, CodecConfig(Codec.H264), 90000)
    ing = RtspIngest(ch, lambda tid: None)
    ing.start((empty, AUDIO), 10.0)
    ing.push(AccessUnit(0, 0, 0, True, b"x"), 10.0)  # no SPS/PPS yet: dropped
    assert ch.trackset.tracks == ()
    ing.track_changed(VIDEO, 10.0)
    ing.push(AccessUnit(0, 1000, 1000, True, b"\x00\x00\x00\x01\x65"), 10.0)
    assert ch.trackset.tracks == (VIDEO, AUDIO)
    version = ch.trackset.version
    ing.track_changed(VIDEO, 10.1)  # the same parameter sets again in-band: no new TrackSet
    ing.push(AccessUnit(0, 4000, 4000, False, b"y"), 10.1)
    assert ch.trackset.version == version
    got = [it for it in items(sub) if isinstance(it, AccessUnit)]
    assert [(u.dts, u.pts) for u in got] == [(V0, V0), (V0 + 3000, V0 + 3000)]


def test_sender_reports_align_the_tracks():
    hub = Hub()
    ch = hub.publish("live/b", object())
    sub = hub.subscribe("live/b")
    ntp0 = rtcp.unix_to_ntp(1_700_000_000.0)
    # both SRs name the same instant: video RTP 1_000_000, audio RTP 5_000
    srs = {0: rtcp.SenderReport(1, ntp0, 1_000_000, 0, 0),
           1: rtcp.SenderReport(2, ntp0, 5_000, 0, 0)}
    ing = RtspIngest(ch, srs.get)
    ing.start((VIDEO, AUDIO), 50.0)
    ing.push(AccessUnit(0, 1_000_000, 1_000_000, True, b"v"), 50.0)
    # audio 0.5 s after the SR instant, arriving "late": the SR decides, not the arrival
    ing.push(AccessUnit(1, 5_000 + 24_000, 5_000 + 24_000, True, b"a"), 57.0)
    got = {u.track: u for u in items(sub) if isinstance(u, AccessUnit)}
    assert got[0].pts / 90000 == START_SECONDS
    assert abs(got[1].pts / 48000 - (START_SECONDS + 0.5)) < 1 / 48000


def test_without_sender_reports_arrival_decides():
    hub = Hub()
    ch = hub.publish("live/c", object())
    sub = hub.subscribe("live/c")
    ing = RtspIngest(ch, lambda tid: None)
    ing.start((VIDEO, AUDIO), 20.0)
    ing.push(AccessUnit(0, 123_456, 123_456, True, b"v"), 20.0)
    ing.push(AccessUnit(1, 777, 777, True, b"a"), 20.25)
    ing.push(AccessUnit(1, 777 + 1024, 777 + 1024, True, b"a"), 20.3)
    got = [u for u in items(sub) if isinstance(u, AccessUnit)]
    assert [u.pts for u in got] == [V0, round((START_SECONDS + 0.25) * 48000),
                                    round((START_SECONDS + 0.25) * 48000) + 1024]


def test_sr_seconds_across_the_32_bit_wrap():
    sr = rtcp.SenderReport(1, 100 << 32, 0xFFFFFF00, 0, 0)
    assert rtsp_ingest.sr_seconds(sr, (1 << 32) + 0x100, 90000) == 100 + 0x200 / 90000
