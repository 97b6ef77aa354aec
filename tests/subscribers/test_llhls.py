"""LL-HLS subscriber: muxer started on publish, drained on wake-up, dropped when idle."""

from rtmpgop.channels import Hub
from rtmpgop.media import VIDEO_CLOCK, AccessUnit, Codec, CodecConfig, Track
from rtmpgop.segmenter.playlist import PlaylistLayout
from rtmpgop.subscribers import llhls as sub_llhls
from rtmpgop.subscribers.llhls import LLHLSManager

V = Track(0, CodecConfig(Codec.H264, bytes.fromhex("0164001eff"), 320, 240), VIDEO_CLOCK)
A = Track(1, CodecConfig(Codec.AAC, b"\x11\x90", sample_rate=48000, channels=2), 48000)
LAYOUT = PlaylistLayout(target_duration=2, part_target=0.2, window=4)


class FakePackager:
    def init(self, tracks):
        return b"INIT"

    def fragment(self, seq, runs):
        return b"F%d" % seq


class Clock:
    def __init__(self):
        self.now = 1_800_000_000.0

    def __call__(self):
        return self.now


class Scheduler:
    def __init__(self):
        self.calls = []

    def __call__(self, fn):
        self.calls.append(fn)

    def run(self):
        calls, self.calls = self.calls, []
        for fn in calls:
            fn()
        return len(calls)


def frames(n, start=0):
    return [AccessUnit(0, i * 3000, i * 3000, i % 30 == 0, b"v%d" % i) for i in range(start, start + n)]


def setup():
    hub, clock, sched, changes = Hub(), Clock(), Scheduler(), []
    mgr = LLHLSManager(hub, LAYOUT, clock, sched, FakePackager, on_change=changes.append)
    return hub, clock, sched, changes, mgr


def test_muxer_starts_on_publish_and_drains_on_wakeup():
    hub, clock, sched, changes, mgr = setup()
    assert mgr.get("live/a") is None
    ch = hub.publish("live/a", "pub")
    cm = mgr.get("live/a")
    assert cm is not None and cm.muxer.tracks == ()
    first = cm.muxer.last_msn + 1
    assert first == int(clock.now) % sub_llhls.MSN_BASE_MODULUS  # URIs never repeat
    ch.set_tracks([V, A])
    for au in frames(13):
        ch.push(au)
    assert sched.run() == 1  # one drain scheduled for all 13 frames
    m = cm.muxer
    assert m.tracks == (V, A)
    assert [len(s.parts) for s in m.segments] == [2] and m.preload == (first, 2)
    assert changes and changes[-1] is cm
    assert cm.statistics().frames_in == 14  # TrackSet + 13 access units
    assert sched.run() == 0


def test_unpublish_flushes_and_republish_continues_with_discontinuity():
    hub, clock, sched, changes, mgr = setup()
    ch = hub.publish("live/a", "p1")
    ch.set_tracks([V])
    for au in frames(20):
        ch.push(au)
    hub.unpublish(ch, "p1")
    sched.run()
    cm = mgr.get("live/a")
    m = cm.muxer
    assert m.ended and m.segments[-1].complete and m.preload is None
    ch = hub.publish("live/a", "p2")
    assert mgr.get("live/a") is cm
    ch.set_tracks([V])
    for au in frames(20):
        ch.push(au)
    sched.run()
    assert m.segments[-1].discontinuity and not m.ended
    assert "#EXT-X-DISCONTINUITY\n" in m.media_playlist()


def test_idle_muxer_is_reaped():
    hub, clock, sched, changes, mgr = setup()
    ch = hub.publish("live/a", "p1")
    ch.set_tracks([V])
    hub.unpublish(ch, "p1")
    sched.run()
    assert mgr.reap(clock.now) == []
    assert mgr.reap(clock.now + sub_llhls.IDLE_SECONDS - 1) == []
    (gone,) = mgr.reap(clock.now + sub_llhls.IDLE_SECONDS)
    assert gone.sub.closed and mgr.get("live/a") is None
    assert hub.get("live/a") is None  # nobody holds the channel any more


def test_drain_yields_after_a_bounded_batch(monkeypatch):
    monkeypatch.setattr(sub_llhls, "MAX_ITEMS_PER_DRAIN", 10)
    hub, clock, sched, changes, mgr = setup()
    ch = hub.publish("live/a", "p1")
    ch.set_tracks([V])
    for au in frames(25):
        ch.push(au)
    cm = mgr.get("live/a")
    assert sched.run() == 1 and cm.items == 10
    assert sched.run() == 1 and cm.items == 20
    sched.run()
    assert cm.items == 26


def test_existing_live_channels_get_a_muxer_and_close_detaches():
    hub = Hub()
    ch = hub.publish("live/b", "p")
    ch.set_tracks([V])
    mgr = LLHLSManager(hub, LAYOUT, Clock(), Scheduler(), FakePackager)
    assert mgr.get("live/b") is not None
    mgr.close()
    assert mgr.muxers == {} and not hub.on_publish


def test_on_demand_starts_at_first_request_from_the_cached_gop_and_stops_when_unrequested():
    hub, clock, sched = Hub(), Clock(), Scheduler()
    mgr = LLHLSManager(hub, LAYOUT, clock, sched, FakePackager, mode="on_demand")
    assert mgr.request("live/od") is None  # not published: nothing to start
    ch = hub.publish("live/od", "pub")
    ch.set_tracks([V])
    for au in frames(40):  # one full GoP and the start of the next
        ch.push(au)
    assert mgr.get("live/od") is None  # publishing alone starts nothing
    cm = mgr.request("live/od")
    assert cm is not None and mgr.get("live/od") is cm and mgr.request("live/od") is cm
    # started at the newest GoP head (frame 30): parts of the cached frames exist at once
    assert cm.items == 11 and cm.muxer.has_media
    assert len(hub.get("live/od").subscriptions) == 1
    clock.now += sub_llhls.ON_DEMAND_IDLE_SECONDS - 1
    mgr.request("live/od")
    assert mgr.reap(clock.now + sub_llhls.ON_DEMAND_IDLE_SECONDS - 1) == []
    gone = mgr.reap(clock.now + sub_llhls.ON_DEMAND_IDLE_SECONDS)
    assert gone == [cm] and mgr.get("live/od") is None
    assert len(hub.get("live/od").subscriptions) == 0  # the subscription was closed
    assert mgr.statistics().extra[:2] == (("muxers", 0), ("mode", "on_demand"))


def test_always_mode_ignores_request_idleness():
    hub, clock, sched, changes, mgr = setup()
    hub.publish("live/al", "pub")
    cm = mgr.get("live/al")
    assert mgr.reap(clock.now + 10 * sub_llhls.ON_DEMAND_IDLE_SECONDS) == [] and mgr.get("live/al") is cm
