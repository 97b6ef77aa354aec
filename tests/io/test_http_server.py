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
