"""LL-HLS end to end through the whole App: ffmpeg publishes over RTMP; ffmpeg reads the live
playlist back and decodes every frame (bit-identical to the source) with monotonic timestamps;
ffprobe accepts init + segment; headless Chromium plays the page with hls.js."""

from __future__ import annotations

import re
import subprocess
import urllib.request

import pytest

from fixtures.media import make_media_file
from tests.interop.browser import AUTOPLAY, chromium_page, playback_latency
from tests.interop.rtmp_tools import FFMPEG, FFPROBE, framemd5, publish, stop, wait_until

pytestmark = pytest.mark.interop

@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """4 s of 320x240 H.264 (B-frames, 1 s GoPs) + AAC, published in a loop."""
    path = tmp_path_factory.mktemp("llhls") / "clip.mp4"
    return make_media_file(str(path), seconds=4.0, gop=30, bframes=True)


def get(url: str, timeout: float = 10) -> bytes:
    return urllib.request.urlopen(url, timeout=timeout).read()


def live_playlist(base: str, segments: int) -> str:
    """The media playlist once it lists ``segments`` complete segments (blocking reload)."""
    text = wait_until(lambda: _try(f"{base}/media.m3u8"), timeout=15, what="first part")
    first = int(re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", text)[1])
    while text.count("#EXTINF") < segments:
        text = get(f"{base}/media.m3u8?_HLS_msn={first + segments - 1}").decode()
    return text


def _try(url):
    try:
        return get(url).decode()
    except OSError:
        return None


@pytest.fixture
def live(server, clip):
    path = "live/hls"
    pub = publish(f"rtmp://127.0.0.1:{server.ports['rtmp']}/{path}", clip, loop=True)
    try:
        yield f"http://127.0.0.1:{server.ports['http']}/{path}"
    finally:
        stop(pub)


def test_ffmpeg_publish_rtmp_read_llhls_every_frame_identical(live, clip):
    text = live_playlist(live, 3)
    mv = get(f"{live}/index.m3u8").decode()
    assert re.search(r'CODECS="avc1\.[0-9a-f]{6},mp4a\.40\.2",RESOLUTION=320x240', mv), mv
    # ffprobe accepts init + a whole segment, and counts its frames
    init = re.search(r'#EXT-X-MAP:URI="([^"]+)"', text)[1]
    seg = re.findall(r"^(seg\d+\.m4s)$", text, re.M)[-1]
    blob = get(f"{live}/{init}") + get(f"{live}/{seg}")
    probe = subprocess.run([FFPROBE, "-v", "error", "-count_frames", "-select_streams", "v:0",
                            "-show_entries", "stream=codec_name,nb_read_frames,width,height",
                            "-of", "csv=p=0", "-"], input=blob, capture_output=True, timeout=30)
    assert probe.returncode == 0 and not probe.stderr, probe.stderr
    assert probe.stdout.decode().strip() == "h264,320,240,30"
    # ffmpeg reads the live stream over HTTP and decodes every frame
    seconds = 5
    res = subprocess.run([FFMPEG, "-hide_banner", "-nostdin", "-v", "warning", "-i", f"{live}/index.m3u8",
                          "-t", str(seconds), "-map", "0:v", "-map", "0:a", "-f", "framemd5", "-"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr[-2000:]
    assert not [l for l in res.stderr.splitlines() if "rror" in l], res.stderr[-2000:]
    tracks: dict[int, list[tuple[int, str]]] = {0: [], 1: []}
    for line in res.stdout.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        idx, dts, pts, dur, size, md5 = [x.strip() for x in line.split(",")]
        tracks[int(idx)].append((int(dts), md5))
    video, audio = tracks[0], tracks[1]
    assert len(video) >= seconds * 30 - 2 and len(audio) >= seconds * 46
    for t in (video, audio):
        assert all(b[0] > a[0] for a, b in zip(t, t[1:])), "timestamps not monotonic"
    ref = {h for _, h in framemd5(["-i", clip, "-map", "0:v"])}
    assert len(ref) == 120
    assert {h for _, h in video} <= ref  # every decoded picture is one of the source's, bit for bit


def test_chromium_plays_rtmp_published_stream(live):
    live_playlist(live, 1)
    with chromium_page(AUTOPLAY) as page:
        page.goto(f"{live}/")
        # playback advances 4 s, then latency is sampled for 3 s
        stats, lat = playback_latency(page, 4, 20_000, 3)
    assert stats["mode"] == "hls.js" and not [e for e in stats["errors"] if e["fatal"]], stats["errors"]
    lat = sorted(x for x in lat if x is not None)
    print(f"\nRTMP publish -> hls.js: PDT latency median {lat[len(lat) // 2]:.3f} s "
          f"(PDT = arrival at the server; excludes ffmpeg's own buffering)")
    assert lat[len(lat) // 2] <= 1.5
