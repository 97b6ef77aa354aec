"""Source reconnect loop, watchdog and on-demand logic, with scripted pullers.

The protocol pullers themselves are exercised against real cameras in tests/interop.
"""

import asyncio
import random
import re

import pytest

from rtmpgop.channels import Hub
from rtmpgop.config import SourceConfig
from rtmpgop.io import sources as sources_mod
from rtmpgop.io.sources import Source, SourceManager, SourceState, backoff_delay, redact
from rtmpgop.media import VIDEO_CLOCK, AccessUnit, Codec, CodecConfig, Track, TrackSet, Unpublished

V = Track(0, CodecConfig(Codec.H264, b"x", 64, 48), VIDEO_CLOCK)


@pytest.fixture(autouse=True)
def fast(monkeypatch):
    monkeypatch.setattr(sources_mod, "BACKOFF_INITIAL", 0.05)
    monkeypatch.setattr(sources_mod, "BACKOFF_MAX", 0.2)
    monkeypatch.setattr(sources_mod, "WATCHDOG_PERIOD", 0.02)


def frames(sink, start, n, gop=5, dts_step=3000, frozen=False):
    for i in range(start, start + n):
        d = start * dts_step if frozen else i * dts_step
        sink.push(AccessUnit(0, d, d, i % gop == 0, b"f%d" % i))


def endless_puller(runs: list):
    """A puller that appends 1 to ``runs`` each time it is started, then pushes one video frame
    every 10 ms until cancelled."""
    async def puller(cfg, sink):
        runs.append(1)
        sink.set_tracks([V])
        i = 0
        while True:
            frames(sink, i, 1)
            i += 1
            await asyncio.sleep(0.01)
    return puller


def drain(sub):
    out = []
    while (it := sub.get_nowait()) is not None:
        out.append(it)
    return out


async def until(cond, timeout=5.0):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        assert loop.time() < end, "deadline passed"
        await asyncio.sleep(0.01)


def test_backoff_grows_caps_and_jitters(monkeypatch):
    monkeypatch.setattr(sources_mod, "BACKOFF_INITIAL", 0.5)
    monkeypatch.setattr(sources_mod, "BACKOFF_MAX", 15.0)
    rng = random.Random(1)
    d = [backoff_delay(a, rng) for a in range(1, 12)]
    assert 0.4 <= d[0] <= 0.6
    assert d[3] > d[1] > d[0]
    assert all(x <= sources_mod.BACKOFF_MAX * 1.2 for x in d)
    assert len({round(x, 6) for x in d[-4:]}) == 4  # jitter: capped delays still differ


def test_redact():
    assert redact("rtsp://admin:secret@10.0.0.2:554/s1") == "rtsp://admin:***@10.0.0.2:554/s1"
    assert redact("rtmp://h/live/x") == "rtmp://h/live/x"


def test_reconnects_after_failures_and_viewer_resumes():
    attempts = []

    async def puller(cfg, sink):
        attempts.append(1)
        if len(attempts) <= 2:
            raise ConnectionRefusedError("camera down")
        sink.set_tracks([V])
        frames(sink, 0, 10)
        if len(attempts) == 3:
            raise ConnectionResetError("camera rebooted")
        await asyncio.sleep(3600)

    async def main():
        hub = Hub()
        sub = hub.subscribe("cam")
        items = []
        sub.set_wakeup(lambda: items.extend(drain(sub)))  # a viewer that keeps up
        drain(sub)
        src = Source(hub, SourceConfig("cam", "rtsp://c/s"), puller)
        src.start()
        await until(lambda: len(attempts) == 4 and src.state is SourceState.LIVE)
        seen = list(items)
        await src.close()
        assert isinstance(items[-1], Unpublished)  # closing the source ends the publication
        return src, seen

    src, items = asyncio.run(main())
    assert src.reconnects == 3 and src.frames == 20
    kinds = [type(i).__name__ for i in items]
    assert kinds.count("Unpublished") == 1 and kinds.count("TrackSet") == 2
    dts = [i.dts for i in items if isinstance(i, AccessUnit)]
    assert len(dts) == 20 and dts == sorted(dts)  # continued, monotonic timeline
    first_after = items[kinds.index("Unpublished") + 2]
    assert isinstance(items[kinds.index("Unpublished") + 1], TrackSet) and first_after.keyframe


def test_watchdog_restarts_stalled_and_frozen_sources(caplog):
    runs = []

    async def puller(cfg, sink):
        runs.append(1)
        sink.set_tracks([V])
        if len(runs) == 1:
            frames(sink, 0, 5)  # then silence: TCP open, no data
        else:
            frames(sink, 0, 70, frozen=True)  # frames keep coming with the same timestamp
        await asyncio.sleep(3600)

    async def main():
        hub = Hub()
        src = Source(hub, SourceConfig("cam", "rtsp://c/s", stall_timeout=0.2), puller)
        src.start()
        await until(lambda: len(runs) >= 3)
        await src.close()

    asyncio.run(main())
    assert "no frame for 0.2 s" in caplog.text
    assert re.search(r"timestamps frozen for \d+ frames", caplog.text)


def test_on_demand_connects_with_viewer_and_idles_out():
    runs = []
    puller = endless_puller(runs)

    async def main():
        hub = Hub()
        cfg = SourceConfig("cam", "rtsp://c/s", on_demand=True, idle_timeout=0.2)
        mgr = SourceManager(hub, [cfg])
        mgr.sources["cam"]._puller = puller
        mgr.start()
        await asyncio.sleep(0.2)
        assert runs == []  # nobody watches: not connected
        passive = hub.subscribe("cam", passive=True)
        await asyncio.sleep(0.1)
        assert runs == []  # a background consumer is not a viewer
        sub = hub.subscribe("cam")
        await until(lambda: mgr.sources["cam"].state is SourceState.LIVE)
        await until(lambda: any(isinstance(i, AccessUnit) for i in drain(sub)))
        sub.close()
        await until(lambda: mgr.sources["cam"].state is SourceState.IDLE, timeout=3)
        passive.close()
        status = mgr.status()["cam"]
        await mgr.close()
        return status

    status = asyncio.run(main())
    assert runs == [1] and status.state == "idle"


def test_touch_keeps_on_demand_source_without_subscription():
    runs = []
    puller = endless_puller(runs)

    async def main():
        hub = Hub()
        mgr = SourceManager(hub, [SourceConfig("cam", "rtsp://c/s", on_demand=True, idle_timeout=0.3),
                                  SourceConfig("always", "rtsp://c/t")])
        mgr.sources["cam"]._puller = puller
        mgr.sources["always"]._puller = puller
        mgr.start()
        assert mgr.touch("always") is False and mgr.touch("nope") is False
        assert mgr.touch("cam") is True  # an LL-HLS request: no subscription
        assert await mgr.wait_live("cam", 5.0)
        loop = asyncio.get_running_loop()
        end = loop.time() + 0.6
        while loop.time() < end:  # requests keep coming: the source stays
            mgr.touch("cam")
            await asyncio.sleep(0.05)
        kept = mgr.sources["cam"].state
        await until(lambda: mgr.sources["cam"].state is SourceState.IDLE)
        assert await mgr.wait_live("cam", 0.05) is False
        await mgr.close()
        return kept

    assert asyncio.run(main()) is SourceState.LIVE
    assert runs == [1, 1]  # "always" once, "cam" once
