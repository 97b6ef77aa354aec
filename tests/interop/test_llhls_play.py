"""LL-HLS interop: ffmpeg reads the live playlist and decodes every frame; headless Chromium
plays the player page with hls.js and reports its latency behind live.

The publisher here is a paced task on the server's loop pushing a generated H.264 (B-frames,
1 s GoPs) + AAC clip, looped, into the hub in real time; tests/interop/test_llhls_rtmp.py does
the same with ffmpeg publishing over RTMP.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import threading

import pytest

from fixtures.media import encode_audio, encode_video
from rtmpgop.channels import Hub
from rtmpgop.codecs import make_config
from rtmpgop.config import Config
from rtmpgop.io import hls_http, http_server
from rtmpgop.media import VIDEO_CLOCK, AccessUnit, Codec, Track
from tests.interop.browser import AUTOPLAY, chromium_page, playback_latency

pytestmark = pytest.mark.interop

CLIP_SECONDS = 8  # 240 video frames, 375 AAC frames: both end exactly at 8 s
PATH = "live/test"


def clip():
    vs = encode_video("h264", frames=CLIP_SECONDS * 30, fps=30, gop=30, bframes=True)
    as_ = encode_audio("aac", seconds=CLIP_SECONDS, rate=48000)
    v = Track(0, make_config(Codec.H264, vs.config), VIDEO_CLOCK)
    a = Track(1, make_config(Codec.AAC, as_.config), 48000)
    vids = [(p.dts, p.pts, p.keyframe, p.data) for p in vs.packets]
    auds = [(k * 1024, p.data) for k, p in enumerate(as_.packets[:CLIP_SECONDS * 48000 // 1024])]
    return v, a, vids, auds


class LiveServer:
    """Hub + LL-HLS service + HTTP on a uvloop thread, with a real-time publisher task."""

    def __init__(self, config: Config) -> None:
        import uvloop

        self.config = config
        self.loop = uvloop.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(10)
        self.base = f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._start())
        self.ready.set()
        self.loop.run_forever()

    async def _start(self) -> None:
        self.hub = Hub()
        self.svc = hls_http.LLHLSService(self.hub, self.config)
        self.lst = await http_server.start(self.hub, self.config, "127.0.0.1", 0,
                                           setups=[hls_http.setup(self.svc)])
        self.port = self.lst.port

    def publish(self, path, media) -> None:
        self.pub_task = asyncio.run_coroutine_threadsafe(self._publish(path, media), self.loop)

    async def _publish(self, path, media) -> None:
        v, a, vids, auds = media
        ch = self.hub.publish(path, self)
        ch.set_tracks([v, a])
        items = sorted([(d / VIDEO_CLOCK, AccessUnit(0, d, p, k, data)) for d, p, k, data in vids]
                       + [(d / 48000, AccessUnit(1, d, d, True, data)) for d, data in auds],
                       key=lambda x: x[0])
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        cycle = 0
        while True:
            base = cycle * CLIP_SECONDS
            for t, au in items:
                due = t0 + base + t
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                clock = VIDEO_CLOCK if au.track == 0 else 48000
                off = base * clock
                ch.push(AccessUnit(au.track, au.dts + off, au.pts + off, au.keyframe, au.payload))
            cycle += 1

    def close(self) -> None:
        async def stop():
            self.pub_task.cancel()
            await self.svc.close()
            await self.lst.close()
        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def live():
    srv = LiveServer(Config(hls_part_target=0.2, hls_target_duration=2))
    srv.publish(PATH, clip())
    yield srv
    srv.close()


def wait_segments(base: str, n: int) -> str:
    """Block (with the server's own blocking reload) until ``n`` complete segments exist."""
    import urllib.request

    url = f"{base}/{PATH}/media.m3u8"
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    first = int(re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", text)[1])
    while text.count("#EXTINF") < n:
        msn = first + n - 1
        text = urllib.request.urlopen(f"{url}?_HLS_msn={msn}", timeout=10).read().decode()
    return text


def test_ffmpeg_reads_live_llhls_and_decodes_every_frame(live):
    seconds = 6
    wait_segments(live.base, 3)  # ffmpeg (not LL-aware) starts 3 segments from the end
    proc = subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "warning",
         "-i", f"{live.base}/{PATH}/index.m3u8", "-t", str(seconds), "-map", "0:v", "-map", "0:a",
         "-f", "framemd5", "-"],
        capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    frames = {0: [], 1: []}
    for line in proc.stdout.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        idx, dts, pts, dur, size, md5 = [x.strip() for x in line.split(",")]
        frames[int(idx)].append((int(dts), int(pts)))
    video, audio = frames[0], frames[1]
    assert len(video) >= seconds * 30 - 2
    assert len(audio) >= seconds * 46
    for track in (video, audio):
        assert all(b[0] > a[0] for a, b in zip(track, track[1:])), "timestamps not monotonic"
    bad = [l for l in proc.stderr.splitlines() if "rror" in l]
    assert not bad, bad


def test_chromium_plays_page_with_hls_js_and_reports_latency(live):
    with chromium_page(AUTOPLAY) as page:
        console = []
        page.on("console", lambda m: console.append(m.text))
        page.goto(f"{live.base}/{PATH}/")
        assert page.evaluate("window.__stats.mode") == "hls.js"
        # playback advances 6 s, then latency is sampled for 4 s
        stats, samples = playback_latency(page, 6, 30_000, 4)
    fatal = [e for e in stats["errors"] if e["fatal"]]
    assert not fatal, stats["errors"]
    assert re.fullmatch(r"avc1\.[0-9a-f]{6},mp4a\.40\.2", stats["levelCodecs"])
    lat = sorted(x for x in samples[-8:] if x is not None)
    median = lat[len(lat) // 2]
    print(f"\nhls.js live latency (PROGRAM-DATE-TIME vs wall clock): median {median:.3f} s, "
          f"min {lat[0]:.3f} s, max {lat[-1]:.3f} s; hls.latency {stats['latency']:.3f} s; "
          f"non-fatal errors {json.dumps(stats['errors'])}")
    assert median <= 1.5


def test_page_jumps_back_to_live_after_falling_behind(live):
    """A viewer paused for 5 s is 5 s behind when it resumes; hls.js alone would stay there.
    The page seeks back to hls.js's live sync position and plays within 1.5 s of live again."""
    with chromium_page(AUTOPLAY) as page:
        page.goto(f"{live.base}/{PATH}/")
        playback_latency(page, 2, 30_000, 0)
        jumps = page.evaluate("window.__stats.liveJumps")
        page.evaluate("document.getElementById('v').pause()")
        paused_at = page.evaluate("document.getElementById('v').currentTime")
        page.wait_for_timeout(5000)
        page.evaluate("document.getElementById('v').play()")
        page.wait_for_function(f"window.__stats.liveJumps > {jumps}", timeout=10_000)
        now = page.evaluate("document.getElementById('v').currentTime")
        assert now > paused_at + 3, (paused_at, now)  # it jumped, it did not play through
        stats, samples = playback_latency(page, 2, 30_000, 2)
    lat = sorted(x for x in samples if x is not None)
    assert lat and lat[len(lat) // 2] <= 1.5, (lat, stats)
