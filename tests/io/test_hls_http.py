"""LL-HLS over HTTP: playlists, media, blocking reload, preload hints, errors, the player page.

Media is pushed into the hub directly (generated H.264 + AAC); the HTTP side is the real
aiohttp server on port 0 and an aiohttp client.
"""

import asyncio
import io
import re

import aiohttp
import av
import pytest

from fixtures.media import encode_audio, encode_video
from rtmpgop.channels import Hub
from rtmpgop.codecs import make_config
from rtmpgop.config import Config
from rtmpgop.io import hls_http, http_server
from rtmpgop.media import VIDEO_CLOCK, AccessUnit, Codec, Track

CONFIG = Config(hls_part_target=0.2, hls_target_duration=1, hls_window_segments=6)


@pytest.fixture(scope="module")
def media():
    vs = encode_video("h264", frames=90, fps=30, gop=30, bframes=True)
    as_ = encode_audio("aac", seconds=3.0, rate=48000)
    v = Track(0, make_config(Codec.H264, vs.config), VIDEO_CLOCK)
    a = Track(1, make_config(Codec.AAC, as_.config), 48000)
    aus = [(p.dts / VIDEO_CLOCK, AccessUnit(0, p.dts, p.pts, p.keyframe, p.data)) for p in vs.packets]
    aus += [(p.dts / 48000, AccessUnit(1, p.dts, p.pts, True, p.data)) for p in as_.packets]
    aus.sort(key=lambda x: x[0])
    return v, a, [au for _, au in aus], vs


class Server:
    def __init__(self, hub, svc, lst):
        self.hub, self.svc, self.lst = hub, svc, lst
        self.base = f"http://127.0.0.1:{lst.port}"


async def start(config=CONFIG):
    hub = Hub()
    svc = hls_http.LLHLSService(hub, config)
    lst = await http_server.start(hub, config, "127.0.0.1", 0, setups=[hls_http.setup(svc)])
    return Server(hub, svc, lst)


async def stop(srv):
    await srv.svc.close()
    await srv.lst.close()


def run(coro_fn, **kw):
    async def main():
        srv = await start(**kw)
        try:
            async with aiohttp.ClientSession() as s:
                return await asyncio.wait_for(coro_fn(srv, s), 30)
        finally:
            await stop(srv)
    return asyncio.run(main())


async def drained():
    """Let the scheduled muxer drains run (they are loop.call_soon callbacks)."""
    for _ in range(3):
        await asyncio.sleep(0)


def uris(text, hint=False):
    """Media URIs of a playlist (the preload hint only when ``hint``)."""
    lines = [l for l in text.splitlines() if hint or "PRELOAD-HINT" not in l]
    return (re.findall(r'URI="([^"]+)"', "\n".join(lines))
            + [l for l in lines if l and not l.startswith("#")])


def test_playlists_media_and_decode_identical(media):
    v, a, aus, vs = media

    async def body(srv, s):
        ch = srv.hub.publish("live/cam1", "pub")
        ch.set_tracks([v, a])
        for au in aus:
            ch.push(au)
        await drained()
        async with s.get(srv.base + "/live/cam1/index.m3u8") as r:
            assert r.status == 200 and r.headers["Content-Type"] == "application/vnd.apple.mpegurl"
            assert r.headers["Content-Encoding"] == "gzip"  # aiohttp's client accepts gzip
            assert r.headers["Access-Control-Allow-Origin"] == "*"
            mv = await r.text()
        async with s.get(srv.base + "/live/cam1/media.m3u8") as r:
            assert r.headers["Cache-Control"] == "no-cache"
            text = await r.text()
        async with s.get(srv.base + "/live/cam1/media.m3u8", headers={"Accept-Encoding": "identity"}) as r:
            assert "Content-Encoding" not in r.headers and await r.text() == text
        blobs = {}
        for u in set(uris(text)):
            async with s.get(f"{srv.base}/live/cam1/{u}") as r:
                assert r.status == 200, u
                assert r.headers["Content-Type"] == "video/mp4"
                assert "immutable" in r.headers["Cache-Control"]
                blobs[u] = await r.read()
        return mv, text, blobs

    mv, text, blobs = run(body)
    assert 'CODECS="avc1.64000d,mp4a.40.2",RESOLUTION=320x240' in mv or \
        re.search(r'CODECS="avc1\.[0-9a-f]{6},mp4a\.40\.2",RESOLUTION=320x240,FRAME-RATE=30\.000', mv)
    assert mv.splitlines()[-1] == "media.m3u8"
    segs = re.findall(r"^(seg(\d+)\.m4s)$", text, re.M)
    assert len(segs) == 2  # 3 s of 1 s GoPs: two complete, the third in progress
    for name, msn in segs:
        parts = sorted((u for u in blobs if u.startswith(f"seg{msn}.p")),
                       key=lambda u: int(u.split(".p")[1].split(".")[0]))
        assert len(parts) == 5
        assert blobs[name] == b"".join(blobs[p] for p in parts)  # segment = its parts
    init = next(u for u in blobs if u.startswith("init"))
    stream = blobs[init] + b"".join(blobs[n] for n, _ in segs)
    with av.open(io.BytesIO(stream), "r") as c:
        got = [(f.pts, f.to_ndarray().tobytes()) for f in c.decode(video=0)]
    # a direct decode of the same access units
    cc = av.CodecContext.create("h264", "r")
    cc.extradata = vs.config
    want = []
    for p in vs.packets[:60]:
        pkt = av.Packet(p.data)
        pkt.pts, pkt.dts = p.pts, p.dts
        want += [(f.pts, f.to_ndarray().tobytes()) for f in cc.decode(pkt)]
    want += [(f.pts, f.to_ndarray().tobytes()) for f in cc.decode(None)]
    assert len(got) == 60
    assert [g[1] for g in got] == [w[1] for w in sorted(want)]  # bit-identical pictures


def test_blocking_reload_and_preload_hint(media):
    v, a, aus, vs = media
    video = [au for au in aus if au.track == 0]

    async def body(srv, s):
        ch = srv.hub.publish("live/b", "pub")
        ch.set_tracks([v])
        for au in video[:10]:
            ch.push(au)
        await drained()
        async with s.get(srv.base + "/live/b/media.m3u8") as r:
            text = await r.text()
        hint = re.search(r'PRELOAD-HINT:TYPE=PART,URI="seg(\d+)\.p(\d+)\.m4s"', text)
        msn, part = int(hint[1]), int(hint[2])
        assert part == 1
        reload = asyncio.ensure_future(s.get(f"{srv.base}/live/b/media.m3u8?_HLS_msn={msn}&_HLS_part={part}"))
        preload = asyncio.ensure_future(s.get(f"{srv.base}/live/b/seg{msn}.p{part}.m4s"))
        done, _ = await asyncio.wait({reload, preload}, timeout=0.3)
        assert not done  # held: the part does not exist yet
        assert len(srv.hub.get("live/b").subscriptions) == 1
        for au in video[10:13]:  # frame 12 closes part 1 (frames 6..11)
            ch.push(au)
        r1, r2 = await asyncio.gather(reload, preload)
        text2 = await r1.text()
        data = await r2.read()
        assert srv.svc.fast_answers == 2  # both written by the fan-out fast path
        for r in (r1, r2):
            assert r.headers["Access-Control-Allow-Origin"] == "*" and "Date" in r.headers
        assert r1.headers["Content-Type"] == "application/vnd.apple.mpegurl"
        assert r1.headers["Content-Encoding"] == "gzip" and r1.headers["Cache-Control"] == "no-cache"
        assert r2.headers["Content-Type"] == "video/mp4" and "immutable" in r2.headers["Cache-Control"]
        assert r1.status == 200 and f'URI="seg{msn}.p{part}.m4s"' in text2
        assert f'PRELOAD-HINT:TYPE=PART,URI="seg{msn}.p{part + 1}.m4s"' in text2
        assert r2.status == 200 and data[4:8] == b"moof" and len(data) == int(r2.headers["Content-Length"])
        # the same part fetched again afterwards: same bytes
        async with s.get(f"{srv.base}/live/b/seg{msn}.p{part}.m4s") as r:
            assert await r.read() == data
        # an old MSN is answered at once; N beyond the parts of a complete segment = next
        async with s.get(f"{srv.base}/live/b/media.m3u8?_HLS_msn={msn}&_HLS_part=0") as r:
            assert r.status == 200
        # the connections the fast path answered on stay usable (keep-alive)
        assert s.connector is not None
        for _ in range(3):
            async with s.get(f"{srv.base}/live/b/media.m3u8") as r:
                assert r.status == 200 and (await r.text()).startswith("#EXTM3U")
        # a HEAD or a request with a token is held too, and answered the ordinary way
        nxt = asyncio.ensure_future(s.get(f"{srv.base}/live/b/media.m3u8?_HLS_msn={msn}&_HLS_part={part + 1}&t=1"))
        await asyncio.sleep(0.05)
        for au in video[13:19]:
            ch.push(au)
        r3 = await nxt
        assert r3.status == 200 and f'seg{msn}.p{part + 1}.m4s?t=1' in await r3.text()
        assert srv.svc.fast_answers == 2
        return srv.svc.answered

    assert run(body) >= 2


def test_errors_400_503_404_with_cors(media):
    v, a, aus, vs = media

    async def body(srv, s):
        ch = srv.hub.publish("live/c", "pub")
        ch.set_tracks([v])
        for au in aus:
            if au.track == 0 and au.dts < 20 * 3000:
                ch.push(au)
        await drained()
        out = {}
        for name, q in [("part only", "_HLS_part=1"), ("msn +3", "_HLS_msn=%d"),
                        ("not a number", "_HLS_msn=x"), ("far part", "_HLS_msn=%d&_HLS_part=40")]:
            last = srv.svc.manager.get("live/c").muxer.last_msn
            url = f"{srv.base}/live/c/media.m3u8?" + (q % (last + 3) if "msn +3" in name else
                                                       q % last if "%d" in q else q)
            async with s.get(url) as r:
                out[name] = (r.status, r.headers.get("Access-Control-Allow-Origin"))
        for u in ["/live/nope/media.m3u8", "/live/c/seg1.p0.m4s", "/live/c/init99.mp4",
                  "/live/c/seg99999999999.p9.m4s"]:
            async with s.get(srv.base + u) as r:
                out[u] = (r.status, r.headers.get("Access-Control-Allow-Origin"))
        # a blocking request that is never satisfied: 503 after the (shortened) timeout
        srv.svc.layout = type("L", (), {"block_timeout": 0.3})()
        last = srv.svc.manager.get("live/c").muxer.last_msn
        async with s.get(f"{srv.base}/live/c/media.m3u8?_HLS_msn={last + 1}") as r:
            out["timeout"] = (r.status, r.headers.get("Access-Control-Allow-Origin"))
        return out

    out = run(body)
    assert out["part only"] == (400, "*")
    assert out["msn +3"] == (400, "*")
    assert out["not a number"] == (400, "*")
    assert out["far part"] == (400, "*")
    assert out["timeout"] == (503, "*")
    for u in ["/live/nope/media.m3u8", "/live/c/seg1.p0.m4s", "/live/c/init99.mp4",
              "/live/c/seg99999999999.p9.m4s"]:
        assert out[u] == (404, "*"), u


def test_first_request_waits_for_the_first_part_and_tokens_follow(media):
    v, a, aus, vs = media

    async def body(srv, s):
        ch = srv.hub.publish("live/d", "pub")
        ch.set_tracks([v, a])
        first = asyncio.ensure_future(s.get(srv.base + "/live/d/media.m3u8?token=abc&_HLS_skip=YES"))
        mv = asyncio.ensure_future(s.get(srv.base + "/live/d/index.m3u8?token=abc"))
        done, _ = await asyncio.wait({first, mv}, timeout=0.2)
        assert not done
        for au in aus[:30]:
            ch.push(au)
        r1, r2 = await asyncio.gather(first, mv)
        return r1.status, await r1.text(), await r2.text()

    status, text, mv = run(body)
    assert status == 200 and "#EXT-X-PART:" in text
    assert all(u.endswith("?token=abc") for u in uris(text, hint=True))
    assert mv.splitlines()[-1] == "media.m3u8?token=abc"


def test_player_page_and_hls_js():
    async def body(srv, s):
        async with s.get(srv.base + "/live/cam1/") as r:
            page = (r.status, r.headers["Content-Type"], await r.text())
        async with s.get(srv.base + "/_static/hls.min.js") as r:
            js = (r.status, r.headers["Content-Type"], len(await r.read()))
        return page, js

    page, js = run(body)
    assert page[0] == 200 and page[1].startswith("text/html")
    assert "live/cam1" in page[2] and "/_static/hls.min.js" in page[2] and "index.m3u8" in page[2]
    assert js[0] == 200 and js[1] == "application/javascript" and js[2] > 100_000


@pytest.mark.parametrize("vcodec,acodec,vtag,atag", [
    ("hevc", "opus", r"hvc1\.[^,]+", "opus"),
    ("av1", "aac", r"av01\.[^,]+", r"mp4a\.40\.2"),
])
def test_hevc_av1_opus_over_http_decode_identical(vcodec, acodec, vtag, atag):
    vs = encode_video(vcodec, frames=30, fps=30, gop=15, bframes=False, width=160, height=120)
    as_ = encode_audio(acodec, seconds=1.0, rate=48000)
    codec = {"hevc": Codec.H265, "av1": Codec.AV1}[vcodec]
    v = Track(0, make_config(codec, vs.config), VIDEO_CLOCK)
    a = Track(1, make_config(Codec.OPUS if acodec == "opus" else Codec.AAC, as_.config), 48000)
    aus = sorted([(p.dts / VIDEO_CLOCK, AccessUnit(0, p.dts, p.pts, p.keyframe, p.data)) for p in vs.packets]
                 + [(p.dts / 48000, AccessUnit(1, p.dts, p.pts, True, p.data)) for p in as_.packets],
                 key=lambda x: x[0])

    async def body(srv, s):
        ch = srv.hub.publish("live/x", "pub")
        ch.set_tracks([v, a])
        for _, au in aus:
            ch.push(au)
        await drained()
        async with s.get(srv.base + "/live/x/index.m3u8") as r:
            mv = await r.text()
        async with s.get(srv.base + "/live/x/media.m3u8") as r:
            text = await r.text()
        init = re.search(r'#EXT-X-MAP:URI="([^"]+)"', text)[1]
        blob = b""
        for u in [init] + re.findall(r"^(seg\d+\.m4s)$", text, re.M):
            async with s.get(f"{srv.base}/live/x/{u}") as r:
                blob += await r.read()
        return mv, blob

    mv, blob = run(body)
    assert re.search(rf'CODECS="{vtag},{atag}",RESOLUTION=160x120', mv), mv
    with av.open(io.BytesIO(blob), "r") as c:
        got = [f.to_ndarray().tobytes() for f in c.decode(video=0)]
    cc = av.CodecContext.create(vs.codec if vcodec != "av1" else "libdav1d", "r")
    cc.extradata = vs.config
    want = []
    for p in vs.packets[:15]:  # the first segment (one GoP of 15 frames)
        want += [f.to_ndarray().tobytes() for f in cc.decode(av.Packet(p.data))]
    want += [f.to_ndarray().tobytes() for f in cc.decode(None)]
    assert len(got) == 15 and got == want


def test_on_demand_muxer_starts_at_the_first_request(media):
    v, a, aus, vs = media

    async def body(srv, s):
        ch = srv.hub.publish("live/od", "pub")
        ch.set_tracks([v, a])
        for au in aus[:len(aus) // 2]:
            ch.push(au)
        await drained()
        assert srv.svc.manager.get("live/od") is None  # nothing runs before a request
        async with s.get(srv.base + "/live/od/media.m3u8") as r:
            assert r.status == 200
            text = await r.text()
        async with s.get(srv.base + "/live/none/media.m3u8") as r:
            assert r.status == 404
        cm = srv.svc.manager.get("live/od")
        return text, cm

    text, cm = run(body, config=CONFIG.replace(hls="on_demand"))
    # the playlist starts at the cached GoP head: parts exist at once
    assert cm is not None and "#EXT-X-PART:" in text and "INDEPENDENT=YES" in text
