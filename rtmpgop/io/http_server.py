"""HTTP front end (default port 8888): pages, LL-HLS, API, frame ingest; aiohttp on the app's loop.

aiohttp keeps connections alive and long-polls well (blocking playlist reload holds hundreds of
requests open), which is why it serves HTTP rather than our own code or the ``websockets``
library's HTTP path (which closes every connection). Features add their routes through
``RouteSetup`` callables passed to ``start``; this module owns only the shared parts:

- CORS on *every* response, errors included (hls.js on another origin needs it on 400/503 too);
- ``/`` the list of live streams (HTML) and ``/api/streams`` (JSON, from ``statistics()``);
- ``/healthz``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from importlib import resources

from aiohttp import web

from rtmpgop.channels import Hub
from rtmpgop.config import Config

log = logging.getLogger(__name__)

RouteSetup = Callable[[web.Application], None]

HUB_KEY = web.AppKey("hub", Hub)
CONFIG_KEY = web.AppKey("config", Config)
SOURCES_KEY = web.AppKey("sources", object)  # io.sources.SourceManager, when configured

CLIENT_MAX_SIZE = 8 * 1024 * 1024
"""Largest request body (POSTed frames for /ingest): a 4K JPEG fits with room to spare."""

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, HEAD, POST, OPTIONS",
    "Access-Control-Allow-Headers": "*",
    "Access-Control-Expose-Headers": "*",
}


@web.middleware
async def cors_middleware(request: web.Request, handler):
    if request.method == "OPTIONS":
        return web.Response(status=204, headers=CORS_HEADERS)
    try:
        resp = await handler(request)
    except web.HTTPException as e:
        e.headers.update(CORS_HEADERS)
        raise
    resp.headers.update(CORS_HEADERS)
    return resp


def web_asset(name: str) -> bytes:
    """A static file shipped in ``rtmpgop/web``."""
    return resources.files("rtmpgop.web").joinpath(name).read_bytes()


def streams_info(hub: Hub, sources=None) -> list[dict]:
    """One dict per channel: path, live, tracks, counters; configured sources add
    ``source_state``, ``source_error``, ``reconnects`` (and are listed without a channel too,
    e.g. an on-demand camera nobody watches)."""
    out = []
    status = sources.status() if sources is not None else {}
    for ch in sorted(hub.channels(), key=lambda c: c.path):
        st = ch.statistics()
        tracks = [{"id": t.id, "kind": t.kind.value, "codec": t.codec.value,
                   "codec_string": t.config.codec_string, "width": t.config.width,
                   "height": t.config.height, "sample_rate": t.config.sample_rate,
                   "channels": t.config.channels} for t in ch.trackset.tracks]
        out.append({"path": ch.path, "live": ch.is_live, "tracks": tracks,
                    "frames_in": st.frames_in, "bytes_in": st.bytes_in,
                    **{k: v for k, v in st.extra if isinstance(v, (int, float, str, bool))}})
    seen = {s["path"] for s in out}
    for path in sorted(set(status) - seen):
        out.append({"path": path, "live": False, "tracks": [], "frames_in": 0, "bytes_in": 0})
    for s in out:
        src = status.get(s["path"])
        if src is not None:
            s.update(source_state=src.state, source_error=src.last_error,
                     reconnects=src.reconnects, source_url=src.url)
    out.sort(key=lambda s: s["path"])
    return out


ON_DEMAND_WAIT = 10.0
"""Seconds an HTTP request for an idle on-demand camera waits for it to go live (connect,
DESCRIBE, first keyframe) before it is answered as for any path without a stream."""


def sources_setup(manager) -> RouteSetup:
    """Route setup that makes the stream list show ``manager``'s source states, and lets
    requests under an on-demand source's path (LL-HLS playlists and parts hold no hub
    subscription) start that camera and keep it connected."""
    on_demand = {p for p, s in manager.sources.items() if s.cfg.on_demand}

    @web.middleware
    async def wake_sources(request: web.Request, handler):
        rest = request.path.strip("/")
        while "/" in rest:  # /cams/door/index.m3u8 -> cams/door, cams
            rest = rest.rpartition("/")[0]
            if rest in on_demand:
                manager.touch(rest)
                await manager.wait_live(rest, ON_DEMAND_WAIT)
                break
        return await handler(request)

    def setup(app: web.Application) -> None:
        app[SOURCES_KEY] = manager
        if on_demand:
            app.middlewares.append(wake_sources)
    return setup


async def api_streams(request: web.Request) -> web.Response:
    return web.json_response({"streams": streams_info(request.app[HUB_KEY],
                                                      request.app.get(SOURCES_KEY))},
                             headers={"Cache-Control": "no-cache"})


async def index_page(request: web.Request) -> web.Response:
    return web.Response(body=web_asset("index.html"), content_type="text/html",
                        headers={"Cache-Control": "no-cache"})


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


class HttpListener:
    def __init__(self, runner: web.AppRunner, site: web.TCPSite) -> None:
        self._runner = runner
        self._site = site
        sock = site._server.sockets[0]  # type: ignore[union-attr]
        self.port: int = sock.getsockname()[1]

    async def close(self) -> None:
        await self._runner.cleanup()


def build_app(hub: Hub, config: Config, setups: Iterable[RouteSetup] = ()) -> web.Application:
    app = web.Application(middlewares=[cors_middleware], client_max_size=CLIENT_MAX_SIZE)
    app[HUB_KEY] = hub
    app[CONFIG_KEY] = config
    app.router.add_get("/", index_page)
    app.router.add_get("/api/streams", api_streams)
    app.router.add_get("/healthz", healthz)
    for setup in setups:
        setup(app)
    return app


async def start(hub: Hub, config: Config, host: str, port: int,
                setups: Iterable[RouteSetup] = ()) -> HttpListener:
    """Serve HTTP on ``host:port`` (0 = any free port). Returns a listener with ``.port``."""
    app = build_app(hub, config, setups)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    return HttpListener(runner, site)


def dumps(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"))
