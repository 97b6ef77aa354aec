"""LL-HLS muxer: part/segment cutting, timestamp continuity, window, blocking-reload rules,
waiters with a controlled clock (rfc8216bis 6.2.5.2)."""

import pytest

from rtmpgop.media import VIDEO_CLOCK, AccessUnit, Codec, CodecConfig, Track, TrackSet
from rtmpgop.segmenter.llhls import (
    LLHLSMuxer, PlaylistRequestError, Readiness, Waiters)
from rtmpgop.segmenter.playlist import PlaylistLayout

V = Track(0, CodecConfig(Codec.H264, bytes.fromhex("0164001eff"), 320, 240,
                         codec_string="avc1.64001e"), VIDEO_CLOCK)
A = Track(1, CodecConfig(Codec.AAC, b"\x11\x90", sample_rate=48000, channels=2,
                         codec_string="mp4a.40.2"), 48000)
JPEG = Track(2, CodecConfig(Codec.JPEG), VIDEO_CLOCK)
LAYOUT = PlaylistLayout(target_duration=2, part_target=0.2, window=4)
T0 = 1_800_000_000.0


class FakePackager:
    def __init__(self):
        self.inits = []
        self.fragments = []

    def init(self, tracks):
        self.inits.append(tuple(tracks))
        return b"INIT:" + ",".join(t.codec.value for t in tracks).encode()

    def fragment(self, seq, runs):
        self.fragments.append((seq, [(pos, list(samples)) for pos, samples in runs]))
        return b"F%d;" % seq + b"".join(s.payload for _, ss in runs for s in ss)


def av_stream(seconds, fps=30, gop=30, jitter_ms=True, start_frame=0):
    """Interleaved video (30 fps, keyframe every ``gop``) and AAC (48 kHz) in DTS order.
    With ``jitter_ms`` the audio timestamps went through RTMP milliseconds (ms * 48)."""
    out = []
    nv = int(seconds * fps)
    k0 = -(-start_frame * 48000 // (fps * 1024))  # first audio frame at or after the video
    na = int(seconds * 48000 / 1024)
    for i in range(start_frame, start_frame + nv):
        out.append((i / fps, AccessUnit(0, i * 3000, i * 3000, i % gop == 0, b"v%d" % i)))
    for k in range(k0, k0 + na):
        t = k * 1024
        if jitter_ms:
            t = (k * 1024 * 1000 // 48000) * 48
        out.append((t / 48000, AccessUnit(1, t, t, True, b"a%d" % k)))
    out.sort(key=lambda p: p[0])
    return [au for _, au in out]


def feed(m, aus, t0=T0):
    changed = 0
    for au in aus:
        clock = VIDEO_CLOCK if au.track == 0 else 48000
        changed += m.push(au, t0 + au.dts / clock)
    return changed


def make(tracks=(V, A), layout=LAYOUT):
    pk = FakePackager()
    m = LLHLSMuxer(layout, pk)
    m.set_tracks(TrackSet(tracks, 1), T0)
    return m, pk


def all_samples(pk, pos):
    return [s for _, runs in pk.fragments for p, ss in runs if p == pos for s in ss]


def test_parts_of_200ms_segments_at_keyframes():
    m, pk = make()
    feed(m, av_stream(3.1))
    segs = list(m.segments)
    assert [s.msn for s in segs] == [0, 1, 2, 3]
    assert [s.complete for s in segs] == [True, True, True, False]
    for s in segs[:3]:
        assert len(s.parts) == 5
        assert [p.duration for p in s.parts] == pytest.approx([0.2] * 5)
        assert [p.independent for p in s.parts] == [True, False, False, False, False]
        assert s.duration == pytest.approx(1.0)
    assert [s.start for s in segs] == pytest.approx([0.0, 1.0, 2.0, 3.0])
    # every part carries 6 video frames; a segment starts with its keyframe
    vid = [[s.payload for s in runs[0][1]] for _, runs in pk.fragments]
    assert vid[0] == [b"v%d" % i for i in range(6)] and vid[5][0] == b"v30"
    assert m.preload == (3, len(segs[3].parts))
    assert segs[0].pdt == pytest.approx(T0) and segs[2].pdt == pytest.approx(T0 + 2.0)


def test_timestamps_are_continuous_and_aac_durations_steady_despite_ms_jitter():
    m, pk = make()
    feed(m, av_stream(3.1, jitter_ms=True))
    for pos in (0, 1):
        ss = all_samples(pk, pos)
        assert len(ss) > 50
        for a, b in zip(ss, ss[1:]):
            assert b.dts == a.dts + a.duration  # tfdt(next) = tfdt + sum of durations
    audio = all_samples(pk, 1)
    assert {s.duration for s in audio} == {1024}
    assert [s.payload for s in audio] == [b"a%d" % k for k in range(len(audio))]
    video = all_samples(pk, 0)
    assert {s.duration for s in video} == {3000}
    assert [s.keyframe for s in video[:31]] == [True] + [False] * 29 + [True]
    # audio in a part never starts after the part's end
    for _, runs in pk.fragments:
        vend = runs[0][1][-1].dts + runs[0][1][-1].duration
        for pos, ss in runs[1:]:
            assert all(s.dts * VIDEO_CLOCK / 48000 < vend for s in ss)


def test_aac_reanchors_on_a_real_gap():
    m, pk = make(tracks=(A,))
    aus = [AccessUnit(1, k * 1024, k * 1024, True, b"a%d" % k) for k in range(10)]
    aus += [AccessUnit(1, 48000 + k * 1024, 48000 + k * 1024, True, b"b%d" % k) for k in range(30)]
    feed(m, aus)
    ss = all_samples(pk, 0)
    assert [s.duration for s in ss[8:11]] == [1024, 48000 - 9 * 1024, 1024]
    assert ss[10].dts == 48000


def test_audio_only_parts_and_segments():
    m, pk = make(tracks=(A,))
    feed(m, [AccessUnit(1, k * 1024, k * 1024, True, b"x") for k in range(300)])  # 6.4 s
    done = [s for s in m.segments if s.complete]
    assert done
    for s in done:
        assert all(p.independent for p in s.parts)
        assert all(p.duration <= 0.2 + 1e-9 for p in s.parts)
        assert [round(p.duration * 48000) for p in s.parts] == [9216] * 10  # 9 frames each
        assert s.duration <= 2.0


def test_parts_never_exceed_part_target_at_24fps():
    m, pk = make(tracks=(V,))
    feed(m, [AccessUnit(0, i * 3750, i * 3750, i % 48 == 0, b"v") for i in range(200)])
    parts = [p for s in m.segments for p in s.parts]
    assert parts and all(p.duration <= 0.2 + 1e-9 for p in parts)
    assert {round(p.duration * 90000) for p in parts} == {15000}  # 4 frames of 41.7 ms


def test_b_frames_keep_composition_offsets():
    m, pk = make(tracks=(V,))
    order = [0, 3, 1, 2, 6, 4, 5, 9, 7, 8]  # pts order of I P B B P B B ...
    aus = [AccessUnit(0, i * 3000, (o + 1) * 3000, i == 0, b"v%d" % i) for i, o in enumerate(order)]
    feed(m, aus + [AccessUnit(0, 10 * 3000, 11 * 3000, True, b"k")])
    ss = all_samples(pk, 0)
    assert [s.pts - s.dts for s in ss] == [(o + 1 - i) * 3000 for i, o in enumerate(order)]


def test_window_slides_and_retired_segments_stay_servable():
    m, pk = make()
    feed(m, av_stream(8.1))
    assert [s.msn for s in m.segments] == [4, 5, 6, 7, 8]
    assert [s.msn for s in m.retired] == [1, 2, 3]
    text = m.media_playlist()
    assert "#EXT-X-MEDIA-SEQUENCE:4\n" in text and "seg3.m4s" not in text
    state, data = m.segment(3)
    assert state is Readiness.READY and len(data) == 5 and bytes(data[0]).startswith(b"F")
    assert m.segment(0)[0] is Readiness.GONE
    assert m.part(0, 0)[0] is Readiness.GONE
    # a segment is the concatenation of its parts, which are the fragments
    assert b"".join(m.segment(5)[1]) == b"".join(p.data for p in m.segments[1].parts)


def test_track_change_makes_new_init_and_discontinuity():
    m, pk = make()
    feed(m, av_stream(2.1))
    assert m.set_tracks(TrackSet((V, A), 2), T0 + 3) is False  # same tracks: nothing happens
    v2 = Track(0, CodecConfig(Codec.H264, bytes.fromhex("0164001fff"), 640, 480), VIDEO_CLOCK)
    m.set_tracks(TrackSet((v2, A, JPEG), 3), T0 + 3)
    assert len(pk.inits) == 2 and pk.inits[1] == (v2, A)  # JPEG has no fMP4 sample entry
    feed(m, av_stream(1.1, start_frame=90)[:40], t0=T0 + 0.1)
    text = m.media_playlist()
    assert text.count("#EXT-X-MAP") == 2
    assert '#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI="init1.mp4"' in text
    assert m.init(1) == b"INIT:h264,aac" and m.init(0) is not None
    # the segment cut by the change ends with the held frame, duration estimated
    cut = [s for s in m.segments if s.init == 0][-1]
    assert cut.complete and round(cut.parts[-1].duration * 90000) % 3000 == 0


def test_flush_ends_segment_then_discontinuity_and_pdt_reanchors():
    m, pk = make()
    feed(m, av_stream(1.5))
    assert m.flush(T0 + 1.5) is True and m.ended and m.preload is None
    last = m.segments[-1]
    assert last.complete and last.duration == pytest.approx(0.5)
    feed(m, av_stream(1.1, start_frame=100), t0=T0 + 50)
    new = m.segments[2]
    assert new.start == pytest.approx(100 / 30)
    assert new.discontinuity and new.pdt == pytest.approx(T0 + 50 + 100 / 30)
    assert "#EXT-X-DISCONTINUITY\n" in m.media_playlist()


def test_dropped_inputs():
    m, pk = make()
    assert m.push(AccessUnit(7, 0, 0, True, b"?"), T0) is False
    m.push(AccessUnit(0, 3000, 3000, True, b"k"), T0)
    m.push(AccessUnit(0, 3000, 3000, False, b"same dts"), T0)
    m.push(AccessUnit(0, -5, -5, False, b"negative"), T0)
    assert m.dropped == 3


def test_playlist_cache_follows_version():
    m, pk = make()
    feed(m, av_stream(0.5))
    a = m.media_playlist()
    assert m.media_playlist() is a
    v = m.version
    feed(m, av_stream(0.3, start_frame=15)[:9])
    assert m.version > v and m.media_playlist() != a
    assert m.media_playlist(query="t=1") != m.media_playlist()


def test_multivariant_measures_bandwidth_and_frame_rate():
    m, pk = make()
    feed(m, av_stream(3.1))
    text = m.multivariant_playlist()
    assert 'CODECS="avc1.64001e,mp4a.40.2",RESOLUTION=320x240,FRAME-RATE=30.000' in text
    v = m.variant()
    assert v.bandwidth >= v.average_bandwidth > 0


# ---------------------------------------------------------------- blocking reload decisions

def at(m, msn, nparts):
    """Feed until segment msn has nparts parts (1 s segments of 5 parts)."""
    frames = msn * 30 + nparts * 6 + 1
    feed(m, [AccessUnit(0, i * 3000, i * 3000, i % 30 == 0, b"v") for i in range(frames)])
    assert m.preload == (msn, nparts)


@pytest.mark.parametrize("msn,part,ready", [
    (None, None, True),
    (0, None, True), (1, None, True), (2, None, False), (3, None, False),
    (2, 0, True), (2, 1, True), (2, 2, False), (2, 3, False),
    (1, 4, True), (1, 5, True),  # beyond the last part of a complete segment: part 0 of the next
    (3, 0, False), (4, 0, False),
    (0, 99, True),  # complete segment: N beyond its parts means part 0 of msn+1, which exists
])
def test_playlist_ready(msn, part, ready):
    m, _ = make(tracks=(V,))
    at(m, 2, 2)
    assert m.playlist_ready(msn, part) is ready


@pytest.mark.parametrize("msn,part,why", [
    (None, 0, "without _HLS_msn"),
    (5, None, "more than 2"), (5, 0, "more than 2"),
    (2, 2 + 15 + 1, "Advance Part Limit"),
    (3, 15, "Advance Part Limit"),
    (-1, None, "negative"), (1, -1, "negative"),
])
def test_playlist_request_400(msn, part, why):
    m, _ = make(tracks=(V,))
    at(m, 2, 2)
    with pytest.raises(PlaylistRequestError, match=why) as e:
        m.playlist_ready(msn, part)
    assert e.value.status == 400


def test_old_msn_answers_at_once():
    m, _ = make(tracks=(V,))
    at(m, 9, 1)
    assert m.segments[0].msn == 5
    assert m.playlist_ready(1, 3) is True and m.playlist_ready(0, None) is True


def test_part_readiness_and_preload_hint():
    m, _ = make(tracks=(V,))
    at(m, 1, 2)
    assert m.part(1, 1)[0] is Readiness.READY
    assert m.part(1, 2) == (Readiness.WAIT, b"")  # the hinted part
    assert m.part(1, 3)[0] is Readiness.GONE  # not hinted: 404
    assert m.segment(1)[0] is Readiness.WAIT and m.segment(0)[0] is Readiness.READY
    assert m.media_playlist().endswith('#EXT-X-PRELOAD-HINT:TYPE=PART,URI="seg1.p2.m4s"\n')


def test_waiters_with_controlled_clock():
    m, _ = make(tracks=(V,))
    w = Waiters(m)
    now = 100.0
    w.hold_playlist(0, 1, "p01", now + 6)
    w.hold_playlist(0, 1, "p01b", now + 6)
    w.hold_playlist(0, 4, "p04", now + 6)
    w.hold_playlist(0, None, "s0", now + 6)
    w.hold_playlist(1, None, "s1", now + 6)
    w.hold_playlist(0, 2, "late", now + 1)
    frames = iter([AccessUnit(0, i * 3000, i * 3000, i % 30 == 0, b"v") for i in range(100)])
    m.push(next(frames), now)
    assert m.part(0, 0)[0] is Readiness.WAIT
    w.hold_part(0, 0, "part00", now + 6)
    assert len(w) == 7 and w.poll() == []
    resolved = {}
    for _ in range(7):  # part 0 closes when frame 6 arrives
        m.push(next(frames), now)
        for tok, state in w.poll():
            resolved[tok] = (state, m.version)
    assert resolved == {"part00": (Readiness.READY, resolved["part00"][1])}
    assert m.part(0, 0)[0] is Readiness.READY
    assert w.expire(now + 0.5) == []
    assert w.expire(now + 1) == ["late"]  # deadline reached: 503
    for _ in range(6):
        m.push(next(frames), now)
        resolved.update((tok, st) for tok, st in w.poll())
    assert {"p01", "p01b"} <= set(resolved) and "p04" not in resolved
    for _ in range(19):  # up to frame 32: segment 0 complete, segment 1 has its part 0
        m.push(next(frames), now)
        resolved.update((tok, st) for tok, st in w.poll())
    assert {"p04", "s0"} <= set(resolved) and "s1" not in resolved
    assert len(w) == 1 and w.expire(now + 6) == ["s1"] and len(w) == 0
    w.hold_part(1, 1, "x", now + 6)
    w.cancel("x")
    assert len(w) == 0


def test_waiter_on_hinted_part_resolves_on_flush():
    m, _ = make(tracks=(V,))
    at(m, 0, 2)
    w = Waiters(m)
    w.hold_part(0, 2, "tok", 10.0)
    m.flush(T0)
    assert w.poll() == [("tok", Readiness.READY)]


def test_a_part_the_box_writer_refuses_is_dropped_not_retried():
    m, pk = make(tracks=(V,))
    calls = []

    def bad(seq, runs):
        calls.append(seq)
        raise ValueError("cts does not fit")
    pk.fragment = bad
    at_frames = [AccessUnit(0, i * 3000, i * 3000, i % 30 == 0, b"v") for i in range(20)]
    feed(m, at_frames)
    assert len(calls) == 3 and m.fragment_errors == 3 and m.dropped == 18
    assert all(not s.parts for s in m.segments)


def test_frame_rate_from_the_sps_wins_over_measured_timestamps():
    v = Track(0, CodecConfig(Codec.H264, bytes.fromhex("0164001eff"), 320, 240,
                             codec_string="avc1.64001e", frame_rate=25.0), VIDEO_CLOCK)
    m, _ = make(tracks=(v,))
    feed(m, [AccessUnit(0, i * 3000, i * 3000, i % 30 == 0, b"v") for i in range(40)])
    assert m.variant().frame_rate == 25.0
    m2, _ = make(tracks=(V,))
    feed(m2, [AccessUnit(0, i * 3000, i * 3000, i % 30 == 0, b"v") for i in range(40)])
    assert m2.variant().frame_rate == 30.0


def test_ms_timestamps_give_whole_200ms_parts_and_29_97_never_overruns():
    # 30 fps through RTMP milliseconds, segment starting at an odd phase (ffmpeg -stream_loop)
    m, _ = make(tracks=(V,))
    ms = [11 + round(i * 1000 / 30) for i in range(95)]
    feed(m, [AccessUnit(0, t * 90, t * 90, i % 30 == 0, b"v") for i, t in enumerate(ms)])
    parts = [round(p.duration * 1000) for s in m.segments for p in s.parts]
    assert parts[:15] == [200] * 15
    # 29.97 fps: six frames would be 200.2 ms, so parts hold five
    m, _ = make(tracks=(V,))
    feed(m, [AccessUnit(0, i * 3003, i * 3003, i % 30 == 0, b"v") for i in range(95)])
    durs = [p.duration for s in m.segments for p in s.parts]
    assert durs and max(durs) <= 0.2 and {round(d * 90000) for d in durs[:5]} == {5 * 3003}
