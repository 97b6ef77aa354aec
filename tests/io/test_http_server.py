"""HTTP front end: stream list, API, CORS on every response."""

import asyncio

import aiohttp

from rtmpgop.channels import Hub
from rtmpgop.config import Config
from rtmpgop.io import http_server
from rtmpgop.media import VIDEO_CLOCK, Codec, CodecConfig, Track


def test_api_lists_streams_with_cors():
    async def main():
        hub = Hub()
        ch = hub.publish("live/cam1", "p")
        ch.set_tracks([Track(0, CodecConfig(Codec.H264, b"", 640, 360, codec_string="avc1.64001e"), VIDEO_CLOCK)])
        lst = await http_server.start(hub, Config(), "127.0.0.1", 0)
        try:
            async with aiohttp.ClientSession() as s:
                async with s.get(f"http://127.0.0.1:{lst.port}/api/streams") as r:
                    assert r.headers["Access-Control-Allow-Origin"] == "*"
                    data = await r.json()
                async with s.get(f"http://127.0.0.1:{lst.port}/nope") as r:
                    assert r.status == 404
                    assert r.headers["Access-Control-Allow-Origin"] == "*"
                async with s.get(f"http://127.0.0.1:{lst.port}/") as r:
                    assert "Live streams" in await r.text()
        finally:
            await lst.close()
        return data

    data = asyncio.run(main())
    (s,) = data["streams"]
    assert s["path"] == "live/cam1" and s["live"] is True
    assert s["tracks"][0]["width"] == 640 and s["tracks"][0]["codec"] == "h264"


def test_streams_info_shows_source_state_and_idle_sources():
    from rtmpgop.config import SourceConfig
    from rtmpgop.io.sources import SourceManager

    async def main():
        hub = Hub()
        mgr = SourceManager(hub, [SourceConfig("cams/door", "rtsp://u:pw@cam/s", on_demand=True),
                                  SourceConfig("cams/yard", "rtsp://cam2/s")])
        yard = mgr.sources["cams/yard"]
        yard.last_error, yard.reconnects = "RtspSourceError: DESCRIBE failed: 401 Unauthorized", 3
        ch = hub.publish("cams/yard", yard)
        ch.set_tracks([Track(0, CodecConfig(Codec.H264, b"", 640, 360), VIDEO_CLOCK)])
        hub.publish("live/other", "p")
        info = {s["path"]: s for s in http_server.streams_info(hub, mgr)}
        await mgr.close()
        return info

    info = asyncio.run(main())
    assert list(info) == ["cams/door", "cams/yard", "live/other"]
    door = info["cams/door"]
    assert door["live"] is False and door["tracks"] == [] and door["source_state"] == "idle"
    assert door["source_url"] == "rtsp://u:***@cam/s"
    yard = info["cams/yard"]
    assert yard["live"] is True and yard["reconnects"] == 3
    assert yard["source_error"].endswith("401 Unauthorized")
    assert "source_state" not in info["live/other"]
