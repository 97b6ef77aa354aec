"""Hub, Channel, Subscription: GoP starts, skipping, republish, wake-ups (DESIGN.md 1)."""

import pytest

from rtmpgop.channels import Hub, InvalidPath, normalize_path
from rtmpgop.channels import channel as channel_mod
from rtmpgop.errors import PathBusy
from rtmpgop.media import (VIDEO_CLOCK, AccessUnit, Codec, CodecConfig, Skipped, Track, TrackSet,
                           Unpublished)

V = Track(0, CodecConfig(Codec.H264, b"avcC", 64, 48), VIDEO_CLOCK)
A = Track(1, CodecConfig(Codec.AAC, b"\x12\x10", sample_rate=44100, channels=2), 44100)


def vid(i, key=False, size=100):
    return AccessUnit(0, i * 3000, i * 3000 + 6000, key, bytes([i % 256]) * size)


def aud(i, size=10):
    return AccessUnit(1, i * 1024, i * 1024, True, bytes([i % 256]) * size)


def drain(sub):
    out = []
    while (item := sub.get_nowait()) is not None:
        out.append(item)
    return out


def publish_gops(ch, n_gops, gop_len=10, start=0, size=100):
    i = start
    for _ in range(n_gops):
        for k in range(gop_len):
            ch.push(vid(i, key=(k == 0), size=size))
            i += 1
    return i


def test_normalize_path():
    assert normalize_path("/live/cam1/") == "live/cam1"
    for bad in ["", "/", "a/../b", "a b", "x" * 300, "a//b"]:
        with pytest.raises(InvalidPath):
            normalize_path(bad)


def test_late_joiner_starts_at_newest_gop_head_with_tracks_first():
    hub = Hub()
    ch = hub.publish("live/a", "pub")
    ch.set_tracks([V, A])
    publish_gops(ch, 2, gop_len=10)
    ch.push(aud(0))
    sub = hub.subscribe("live/a")
    items = drain(sub)
    assert isinstance(items[0], TrackSet) and items[0].tracks == (V, A)
    assert items[1].keyframe and items[1].dts == 10 * 3000  # head of the 2nd GoP
    assert [i.dts for i in items[1:11]] == [i * 3000 for i in range(10, 20)]
    assert items[-1].track == 1
    assert sub.get_nowait() is None


def test_frames_before_first_keyframe_are_dropped():
    hub = Hub()
    ch = hub.publish("a", "p")
    ch.set_tracks([V])
    sub = hub.subscribe("a")
    ch.push(vid(0, key=False))
    ch.push(vid(1, key=True))
    items = drain(sub)
    assert [type(i) for i in items] == [TrackSet, AccessUnit]
    assert items[1].dts == 3000
    assert ch.frames_dropped == 1


def test_wakeup_fires_once_after_running_dry():
    hub = Hub()
    ch = hub.publish("a", "p")
    ch.set_tracks([V])
    sub = hub.subscribe("a")
    calls = []
    sub.set_wakeup(lambda: calls.append(1))
    assert sub.get_nowait() is None
    ch.push(vid(0, key=True))
    ch.push(vid(1))
    assert calls == [1]  # woken once, not per frame
    assert len(drain(sub)) == 3


def test_slow_subscriber_skips_to_newest_head_and_counts():
    hub = Hub()
    ch = hub.publish("a", "p")
    ch.set_tracks([V])
    sub = hub.subscribe("a", max_backlog_bytes=10**9, max_backlog_gops=1)
    publish_gops(ch, 1)
    assert isinstance(sub.get_nowait(), TrackSet)
    first = sub.get_nowait()
    assert first.dts == 0
    publish_gops(ch, 3, start=10)  # GoPs 2..4 arrive while the reader sleeps
    item = sub.get_nowait()
    assert isinstance(item, Skipped)
    assert item.frames == 29 and item.nbytes == 2900  # 9 rest of gop1 + gops 2, 3
    items = drain(sub)
    assert isinstance(items[0], TrackSet)  # configs again at the new head
    assert [i.dts for i in items[1:]] == [i * 3000 for i in range(30, 40)]
    assert sub.statistics().skipped_frames == 29


def test_backlog_bytes_limit_triggers_skip():
    hub = Hub()
    ch = hub.publish("a", "p")
    ch.set_tracks([V])
    sub = hub.subscribe("a", max_backlog_bytes=1500, max_backlog_gops=100)
    publish_gops(ch, 1)
    drain(sub)
    publish_gops(ch, 2, start=10)  # 2000 bytes behind
    assert isinstance(sub.get_nowait(), Skipped)


def test_eviction_from_ring_forces_skip(monkeypatch):
    monkeypatch.setattr(channel_mod, "MAX_RING_GOPS", 2)
    hub = Hub()
    ch = hub.publish("a", "p")
    ch.set_tracks([V])
    sub = hub.subscribe("a", max_backlog_bytes=10**9, max_backlog_gops=100)
    publish_gops(ch, 1)
    drain(sub)
    publish_gops(ch, 3, start=10)
    assert len(ch.ring) == 2
    # cursor sits at the end of gop 1, which was evicted
    assert isinstance(sub.get_nowait(), Skipped)


def test_publisher_never_blocks_and_memory_is_bounded(monkeypatch):
    monkeypatch.setattr(channel_mod, "MAX_RING_BYTES", 50_000)
    hub = Hub()
    ch = hub.publish("a", "p")
    ch.set_tracks([V])
    subs = [hub.subscribe("a") for _ in range(100)]  # none of them ever reads
    publish_gops(ch, 50, gop_len=10, size=1000)
    assert ch.statistics().extra[2][1] <= 50_000 + 10_000  # ring_bytes: one GoP of slack
    assert all(s.backlog_bytes() > 0 for s in subs)


def test_second_publisher_refused_and_republish_continues_timeline():
    hub = Hub()
    ch = hub.publish("a", "p1")
    with pytest.raises(PathBusy):
        hub.publish("a", "p2")
    ch.set_tracks([V])
    sub = hub.subscribe("a")
    publish_gops(ch, 1)
    hub.unpublish(ch, "p1", "gone")
    items = drain(sub)
    assert isinstance(items[-1], Unpublished) and items[-1].reason == "gone"
    last_dts = items[-2].dts
    ch2 = hub.publish("a", "p2")
    assert ch2 is ch
    ch.set_tracks([V])
    publish_gops(ch, 1)  # the new publisher starts again at dts 0
    items = drain(sub)
    assert isinstance(items[0], TrackSet)
    assert items[1].keyframe
    dts = [i.dts for i in items[1:]]
    assert dts[0] == last_dts + channel_mod.REPUBLISH_GAP_US * 90 // 1000
    assert dts == sorted(dts)


def test_channel_dropped_when_empty():
    hub = Hub()
    ch = hub.publish("a", "p")
    sub = hub.subscribe("a")
    hub.unpublish(ch, "p")
    assert hub.get("a") is ch  # a player still waits
    sub.close()
    assert hub.get("a") is None


def test_audio_only_gops_cut_by_time():
    hub = Hub()
    ch = hub.publish("a", "p")
    ch.set_tracks([A])
    for i in range(200):  # 200 * 1024 / 44100 = 4.6 s
        ch.push(aud(i))
    assert ch.last_gop.seq == 5
    sub = hub.subscribe("a")
    items = drain(sub)
    assert items[1].dts == ch.last_gop.start_dts


def test_midgop_track_change_delivered_inline():
    hub = Hub()
    ch = hub.publish("a", "p")
    ch.set_tracks([V])
    sub = hub.subscribe("a")
    ch.push(vid(0, key=True))
    ch.set_tracks([V, A])
    ch.push(aud(0))
    items = drain(sub)
    assert [type(i) for i in items] == [TrackSet, AccessUnit, TrackSet, AccessUnit]
    assert items[2].tracks == (V, A)


def test_failing_wakeup_closes_only_that_subscription():
    hub = Hub()
    ch = hub.publish("a", "p")
    ch.set_tracks([V])
    bad, good = hub.subscribe("a"), hub.subscribe("a")
    bad.set_wakeup(lambda: 1 / 0)
    woke = []
    good.set_wakeup(lambda: woke.append(1))
    bad.get_nowait(), good.get_nowait()
    ch.push(vid(0, key=True))
    assert bad.closed and not good.closed and woke == [1]


def test_gop_larger_than_backlog_bound_does_not_skip_forever():
    # a single GoP bigger than max_backlog_bytes: the reader on its head must read it, not
    # yield Skipped(0, 0) over and over (found by the RTMP play tests)
    hub = Hub()
    ch = hub.publish("live/big", "pub")
    ch.set_tracks([V])
    sub = hub.subscribe("live/big", max_backlog_bytes=500)
    publish_gops(ch, 1, gop_len=10, size=100)
    items = drain(sub)
    assert [type(i).__name__ for i in items] == ["TrackSet"] + ["AccessUnit"] * 10
    publish_gops(ch, 2, gop_len=10, start=10, size=100)  # now behind by 2 GoPs: one real skip
    items = drain(sub)
    assert sum(isinstance(i, Skipped) for i in items) == 1
    assert [i.dts for i in items if isinstance(i, AccessUnit)] == [i * 3000 for i in range(20, 30)]
