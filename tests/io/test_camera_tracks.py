"""Camera tracks onto the hub: one timeline from 0 aligned by arrival, discontinuities
re-anchored (backwards, large jumps) while bursts and frozen clocks pass; video-first
renumbering; waiting for in-band configurations with a grace; re-announce on real changes."""

from __future__ import annotations

from rtmpgop.io import camera_tracks
from rtmpgop.io.camera_tracks import Timeline, TrackMapper
from rtmpgop.media import VIDEO_CLOCK, AccessUnit, Codec, CodecConfig, Track


def au(track, dts, key=False, payload=b"x"):
    return AccessUnit(track, dts, dts, key, payload)


def test_timeline_starts_at_zero_and_aligns_tracks_by_arrival():
    tl = Timeline()
    v = tl.map(au(3, 1_000_000), 0, 90000, now=100.0)
    a = tl.map(au(5, 7_000), 1, 48000, now=100.5)  # audio's first unit 0.5 s later
    v2 = tl.map(au(3, 1_003_000), 0, 90000, now=100.533)
    assert (v.track, v.dts, a.track, a.dts) == (0, 0, 1, 24000)
    assert v2.dts == 3000 and v2.pts == 3000


def test_timeline_reanchors_backward_and_large_jumps_only():
    tl = Timeline()
    tl.map(au(0, 500), 0, 90000, now=0.0)
    same = tl.map(au(0, 500), 0, 90000, now=0.033)  # frozen camera clock: kept (watchdog's job)
    back = tl.map(au(0, 100), 0, 90000, now=0.066)  # encoder restart: timestamps went back
    ahead = tl.map(au(0, 100 + 3000), 0, 90000, now=0.1)
    jump = tl.map(au(0, 10**9), 0, 90000, now=0.133)  # hours ahead: re-anchored to the clock
    assert same.dts == 0 and tl.discontinuities == 2
    assert back.dts == round(0.033 * 90000) and ahead.dts == back.dts + 3000
    assert jump.dts == ahead.dts + round(0.033 * 90000)
    burst = [tl.map(au(0, 10**9 + 3000 * i), 0, 90000, now=0.2) for i in range(1, 200)]
    assert tl.discontinuities == 2  # a TCP backlog arriving at once is not a jump
    assert [b.dts - jump.dts for b in burst[:3]] == [3000, 6000, 9000]


class FakeSink:
    def __init__(self):
        self.tracksets = []
        self.units = []

    def set_tracks(self, tracks, metadata=None):
        self.tracksets.append(list(tracks))

    def push(self, unit):
        self.units.append(unit)


AAC = Track(0, CodecConfig(Codec.AAC, b"\x11\x90", sample_rate=48000, channels=2), 48000)
H264_NOCFG = Track(1, CodecConfig(Codec.H264), VIDEO_CLOCK)


def test_mapper_puts_video_first_and_waits_for_in_band_config():
    sink = FakeSink()
    m = TrackMapper(sink)
    m.playing((AAC, H264_NOCFG), now=0.0)
    m.unit(au(0, 1000, True), now=0.1)  # audio before the video config is known: held
    assert sink.tracksets == [] and m.units_held == 1
    video = Track(1, CodecConfig(Codec.H264, b"\x01avcC", 320, 240), VIDEO_CLOCK)
    m.changed(video, now=0.2)
    m.changed(video, now=0.3)  # the same parameter sets again (every keyframe): no re-announce
    m.unit(au(1, 90000, True), now=0.3)
    m.unit(au(0, 2024), now=0.31)
    (ts,) = sink.tracksets
    assert [(t.id, t.codec) for t in ts] == [(0, Codec.H264), (1, Codec.AAC)]
    assert [(u.track, u.dts) for u in sink.units] == [(0, 0), (1, 480)]
    m.changed(Track(1, CodecConfig(Codec.H264, b"\x01new", 640, 480), VIDEO_CLOCK), now=1.0)
    assert len(sink.tracksets) == 2 and sink.tracksets[1][0].config.width == 640


def test_mapper_publishes_known_tracks_after_the_grace():
    sink = FakeSink()
    m = TrackMapper(sink)
    m.playing((AAC, H264_NOCFG), now=0.0)
    m.unit(au(0, 0, True), now=1.0)
    m.unit(au(0, 1024, True), now=camera_tracks.ANNOUNCE_GRACE + 0.1)
    assert [[t.codec for t in ts] for ts in sink.tracksets] == [[Codec.AAC]]
    assert [u.track for u in sink.units] == [1]  # hub id 1: the video keeps id 0
