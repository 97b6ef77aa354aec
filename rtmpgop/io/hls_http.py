"""LL-HLS over HTTP: routes, blocking playlist reload and preload-hinted parts on asyncio.

Routes (``PATH`` has one or more segments, e.g. ``live/cam1``):

- ``/PATH/index.m3u8``  multivariant playlist (CODECS, RESOLUTION, FRAME-RATE, BANDWIDTH)
- ``/PATH/media.m3u8``  media playlist; ``_HLS_msn``/``_HLS_part`` block, ``_HLS_skip=YES`` deltas
- ``/PATH/init{n}.mp4``, ``/PATH/seg{msn}.m4s``, ``/PATH/seg{msn}.p{i}.m4s``  fMP4 media
- ``/PATH/``  the player page (hls.js, or native HLS where the browser has it)
- ``/_static/hls.min.js``  hls.js, fetched from npm by scripts/setup.sh

Behaviour (rfc8216bis 6.2.5.2, /work/shared/reference/llhls-fmp4.md sections 2-3): a blocking
request is answered as soon as the part exists, 400 for out-of-range directives, 503 after 3x
TARGETDURATION. A request for the preload-hinted part is held until the part is complete, then
sent whole. Playlists are ``no-cache`` and gzip-encoded when the client accepts it (Apple 10.1),
rendered and compressed once per version however many clients wait. Media is immutable.
HTTP/1.1 only (aiohttp has no HTTP/2 server): hls.js keeps two requests open per rendition (the
blocking playlist and the preload-hinted part), well within a browser's six per host; for Safari
on Apple devices, which want LL-HLS over HTTP/2 + TLS, put a proxy in front.

Strategy: ``Waiters`` (sans-IO) keeps the held requests keyed by what they wait for; the muxer's
drain calls ``_changed``, which answers the ready ones; a sweeper task expires the late ones
every ``SWEEP_INTERVAL``.

Fan-out fast path: when a part completes, hundreds of held requests want the same bytes. Waking
one handler task per request and letting aiohttp build each response interleaves those answers
with the parsing of the clients' next requests, so the last answer of a batch of 500 came
~50 ms after the part (bench/llhls_bench.py). Instead ``_changed`` writes one pre-serialized
response (status line, headers incl. CORS, body; built once per batch) straight to each waiting
request's transport, in one synchronous loop, then wakes the handler, which returns
``_AlreadySent`` (a response aiohttp treats as written: keep-alive, nothing more to send).
Only plain keep-alive HTTP/1.1 GETs without extra query parameters take it; the rest are woken
and answered the ordinary way.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import time
from email.utils import formatdate
from urllib.parse import urlencode

from aiohttp import HttpVersion11, web

from rtmpgop.channels import InvalidPath, normalize_path
from rtmpgop.config import Config
from rtmpgop.io.http_server import CORS_HEADERS, RouteSetup, web_asset
from rtmpgop.media import Statistics
from rtmpgop.segmenter.llhls import PlaylistRequestError, Readiness
from rtmpgop.segmenter.playlist import MEDIA_PLAYLIST, PlaylistLayout
from rtmpgop.subscribers.llhls import ChannelMuxer, LLHLSManager

log = logging.getLogger(__name__)

SWEEP_INTERVAL = 0.1
"""Seconds between expiry sweeps of held requests: the 503 comes at most this late. The sweeper
only ticks while some request is held (a held request wakes it); otherwise it sleeps until the
next reap, so a server without HLS clients does not wake 10 times a second per nothing
(2 ms of CPU per second idle, a fifth of the cost of ingesting one 5 Mbit/s stream)."""

REAP_INTERVAL = 5.0
"""Seconds between checks for muxers whose publisher has gone for good."""

MAX_DIRECTIVE = 2**63
"""Largest _HLS_msn/_HLS_part accepted (MSNs are decimal-integers; bigger is a bad request)."""

PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
MEDIA_TYPE = "video/mp4"
NO_CACHE = {"Cache-Control": "no-cache"}
IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}
MULTIVARIANT_CACHE = {"Cache-Control": "max-age=2"}

TIMEOUT = object()
"""Result of a held request whose deadline passed."""

SENT = object()
"""Result of a held request already answered by the fan-out fast path."""


class _Held:
    """A held request: the future its handler awaits, plus what the fast path needs."""

    __slots__ = ("fut", "transport", "skip", "gz", "part")

    def __init__(self, fut: asyncio.Future, transport=None, skip: bool = False, gz: bool = False,
                 part: tuple[int, int] | None = None) -> None:
        self.fut = fut
        self.transport = transport  # None: no fast path, wake the handler
        self.skip = skip
        self.gz = gz
        self.part = part  # (msn, index) for a held part request


class _AlreadySent(web.StreamResponse):
    """What a handler returns when ``_changed`` already wrote its response to the transport:
    aiohttp's prepare/write_eof see a finished response and keep the connection alive."""

    def __init__(self) -> None:
        super().__init__()
        self._eof_sent = True
        self._keep_alive = True


def _head(status: bytes, content_type: bytes, length: int, extra: list[tuple[str, str]]) -> bytes:
    lines = [b"HTTP/1.1 " + status, b"Content-Type: " + content_type,
             b"Content-Length: %d" % length, b"Date: " + formatdate(usegmt=True).encode()]
    lines += [f"{k}: {v}".encode() for k, v in extra]
    return b"\r\n".join(lines) + b"\r\n\r\n"


_CORS = list(CORS_HEADERS.items())


class LLHLSService:
    """The muxers of all channels plus their HTTP waiting machinery. ``await close()``."""

    def __init__(self, hub, config: Config, packager_factory=None) -> None:
        self.loop = asyncio.get_running_loop()
        self.layout = PlaylistLayout(config.hls_target_duration, config.hls_part_target,
                                     config.hls_window_segments)
        kw = {} if packager_factory is None else {"packager_factory": packager_factory}
        self.manager = LLHLSManager(hub, self.layout, time.time, self.loop.call_soon,
                                    on_change=self._changed, mode=config.hls, **kw)
        self._bodies: dict[tuple[int, int, bool, bool], bytes] = {}
        self._held = asyncio.Event()  # set when a request is held: the sweeper must tick
        self._sweeper = self.loop.create_task(self._sweep())
        self.answered = 0
        self.fast_answers = 0
        self.timeouts = 0
        self.answer_log: list[float] | None = None  # bench: part complete -> written, seconds

    # ---------------------------------------------------------------- waiting
    def _changed(self, cm: ChannelMuxer) -> None:
        ready = cm.waiters.poll()
        if not ready:
            return
        t0 = time.perf_counter()
        log_ = self.answer_log
        raws: dict = {}
        sent: list[asyncio.Future] = []
        for held, state in ready:
            fut, tr = held.fut, held.transport  # type: ignore[attr-defined]
            if fut.done():
                continue
            if tr is None or state is not Readiness.READY or tr.is_closing():
                fut.set_result(state)
                continue
            if held.part is not None:
                raw = raws.get(held.part)
                if raw is None:
                    raw = raws[held.part] = self._raw_part(cm, held.part)
                tr.writelines(raw)
            else:
                key = (held.skip, held.gz)
                raw = raws.get(key)
                if raw is None:
                    body = self.playlist_body(cm, held.skip, held.gz)
                    extra = [*_playlist_headers(held.gz, NO_CACHE).items(), *_CORS]
                    raw = raws[key] = _head(b"200 OK", PLAYLIST_TYPE.encode(), len(body), extra) + body
                tr.write(raw)
            sent.append(fut)
            if log_ is not None:
                log_.append(time.perf_counter() - t0)
        # wake the handlers only after every response is out: set_result allocates a callback
        # handle per future, and a collection triggered mid-batch would delay the last writes
        self.fast_answers += len(sent)
        for fut in sent:
            fut.set_result(SENT)

    def _raw_part(self, cm: ChannelMuxer, key: tuple[int, int]) -> tuple[bytes, bytes | memoryview]:
        _, data = cm.muxer.part(*key)  # READY: Waiters.poll said so
        head = _head(b"200 OK", MEDIA_TYPE.encode(), len(data), [*IMMUTABLE.items(), *_CORS])
        return head, data

    async def _sweep(self) -> None:
        next_reap = self.loop.time() + REAP_INTERVAL
        while True:
            if any(len(cm.waiters) for cm in self.manager.muxers.values()):
                await asyncio.sleep(SWEEP_INTERVAL)
            else:
                self._held.clear()
                try:
                    await asyncio.wait_for(self._held.wait(), max(0.0, next_reap - self.loop.time()))
                except TimeoutError:
                    pass
            now = self.loop.time()
            for cm in list(self.manager.muxers.values()):
                _expire(cm, now)
            if now >= next_reap:
                next_reap = now + REAP_INTERVAL
                for cm in self.manager.reap(time.time()):
                    _expire(cm, float("inf"))
                self._bodies.clear()

    async def wait_playlist(self, cm: ChannelMuxer, msn: int, part: int | None,
                            request: web.Request | None = None, skip: bool = False,
                            gz: bool = False) -> object:
        """Hold until ``playlist_ready(msn, part)``. Returns READY, SENT (the fast path wrote
        the playlist to ``request``'s transport) or TIMEOUT."""
        held = _Held(self.loop.create_future(), _fast_transport(request), skip, gz)
        cm.waiters.hold_playlist(msn, part, held, self.loop.time() + self.layout.block_timeout)
        self._held.set()
        return await self._await(cm, held)

    async def wait_part(self, cm: ChannelMuxer, msn: int, index: int,
                        request: web.Request | None = None) -> object:
        """Hold until part (msn, index) exists. READY, GONE, SENT or TIMEOUT."""
        held = _Held(self.loop.create_future(), _fast_transport(request), part=(msn, index))
        cm.waiters.hold_part(msn, index, held, self.loop.time() + self.layout.block_timeout)
        self._held.set()
        return await self._await(cm, held)

    async def _await(self, cm: ChannelMuxer, held: _Held) -> object:
        try:
            return await held.fut
        except asyncio.CancelledError:
            cm.waiters.cancel(held)
            raise

    def playlist_body(self, cm: ChannelMuxer, skip: bool, gz: bool) -> bytes:
        """The media playlist bytes for the muxer's current version, built once per version."""
        m = cm.muxer
        key = (id(cm), m.version, skip, gz)
        body = self._bodies.get(key)
        if body is None:
            body = m.media_playlist(skip=skip).encode()
            if gz:
                body = gzip.compress(body, compresslevel=6, mtime=0)
            if len(self._bodies) > 64 * max(1, len(self.manager.muxers)):
                self._bodies.clear()
            self._bodies[key] = body
        return body

    def statistics(self) -> Statistics:
        """Muxers, held requests, answers (fast path included) and 503s."""
        base = self.manager.statistics()
        return Statistics(extra=(*base.extra, ("answered", self.answered),
                                 ("fast_answers", self.fast_answers), ("timeouts", self.timeouts)))

    async def close(self) -> None:
        self._sweeper.cancel()
        try:
            await self._sweeper
        except asyncio.CancelledError:
            pass
        for cm in self.manager.muxers.values():
            _expire(cm, float("inf"))
        self.manager.close()


# ---------------------------------------------------------------- request helpers

def _expire(cm: ChannelMuxer, now: float) -> None:
    for held in cm.waiters.expire(now):
        fut = held.fut  # type: ignore[attr-defined]
        if not fut.done():
            fut.set_result(TIMEOUT)


def _fast_transport(request: web.Request | None):
    """The transport the fast path may write to, or None (HEAD, HTTP/1.0, Connection: close,
    extra query parameters that change the body)."""
    if (request is None or request.method != "GET" or request.version != HttpVersion11
            or not request.keep_alive):
        return None
    if any(not k.startswith("_HLS_") for k in request.query):
        return None
    return request.transport


def _muxer(svc: LLHLSService, request: web.Request) -> ChannelMuxer:
    try:
        path = normalize_path(request.match_info["path"])
    except InvalidPath:
        raise web.HTTPNotFound() from None
    cm = svc.manager.request(path)
    if cm is None:
        raise web.HTTPNotFound(text=f"no live stream at {path}\n")
    return cm


def _directive(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    if not raw.isdigit() or int(raw) >= MAX_DIRECTIVE:
        raise web.HTTPBadRequest(text=f"{name} must be a decimal integer\n")
    return int(raw)


def _other_query(request: web.Request) -> str:
    """The request's query minus the ``_HLS_`` directives (tokens to copy onto URIs)."""
    rest = [(k, v) for k, v in request.query.items() if not k.startswith("_HLS_")]
    return urlencode(rest) if rest else ""


def _accepts_gzip(request: web.Request) -> bool:
    return "gzip" in request.headers.get("Accept-Encoding", "")


async def _wait_for_media(svc: LLHLSService, cm: ChannelMuxer) -> None:
    """The first request on a channel whose first part is not cut yet waits for it."""
    m = cm.muxer
    if not m.has_media:
        msn = m.last_msn if m.segments else m.last_msn + 1  # the first segment, open or to be
        if await svc.wait_playlist(cm, msn, 0) is TIMEOUT or not m.has_media:
            raise web.HTTPServiceUnavailable(text="no media yet\n", headers=NO_CACHE)


def _playlist_headers(gz: bool, cache: dict[str, str]) -> dict[str, str]:
    h = {**cache, "Vary": "Accept-Encoding"}
    if gz:
        h["Content-Encoding"] = "gzip"
    return h


def _playlist_response(body: bytes, gz: bool, cache: dict[str, str]) -> web.Response:
    return web.Response(body=body, content_type=PLAYLIST_TYPE, headers=_playlist_headers(gz, cache))


# ---------------------------------------------------------------- handlers

def setup(svc: LLHLSService) -> RouteSetup:
    """Routes of the LL-HLS front end, for ``http_server.start(setups=...)``."""

    async def multivariant(request: web.Request) -> web.Response:
        cm = _muxer(svc, request)
        await _wait_for_media(svc, cm)
        text = cm.muxer.multivariant_playlist(_other_query(request))
        gz = _accepts_gzip(request)
        body = gzip.compress(text.encode(), mtime=0) if gz else text.encode()
        return _playlist_response(body, gz, MULTIVARIANT_CACHE)

    async def media(request: web.Request) -> web.Response:
        cm = _muxer(svc, request)
        m = cm.muxer
        msn = _directive(request, "_HLS_msn")
        part = _directive(request, "_HLS_part")
        skip = request.query.get("_HLS_skip", "").upper() in ("YES", "V2")
        try:
            ready = m.playlist_ready(msn, part)
        except PlaylistRequestError as e:
            raise web.HTTPBadRequest(text=f"{e}\n", headers=NO_CACHE) from None
        gz = _accepts_gzip(request)
        if not ready:
            assert msn is not None  # playlist_ready is True without a directive
            result = await svc.wait_playlist(cm, msn, part, request, skip, gz)
            if result is TIMEOUT:
                svc.timeouts += 1
                raise web.HTTPServiceUnavailable(text="blocking reload timed out\n", headers=NO_CACHE)
            svc.answered += 1
            if result is SENT:
                return _AlreadySent()
        else:
            svc.answered += 1
        await _wait_for_media(svc, cm)
        query = _other_query(request)
        if query:
            body = m.media_playlist(skip=skip, query=query).encode()
            body = gzip.compress(body, mtime=0) if gz else body
        else:
            body = svc.playlist_body(cm, skip, gz)
        return _playlist_response(body, gz, NO_CACHE)

    async def init(request: web.Request) -> web.Response:
        cm = _muxer(svc, request)
        data = cm.muxer.init(int(request.match_info["n"]))
        if data is None:
            raise web.HTTPNotFound()
        return web.Response(body=data, content_type=MEDIA_TYPE, headers=IMMUTABLE)

    async def part(request: web.Request) -> web.Response:
        cm = _muxer(svc, request)
        msn, index = int(request.match_info["msn"]), int(request.match_info["part"])
        state, data = cm.muxer.part(msn, index)
        if state is Readiness.WAIT:  # the preload-hinted part: send it whole once complete
            result = await svc.wait_part(cm, msn, index, request)
            if result is TIMEOUT:
                raise web.HTTPServiceUnavailable(text="part not ready\n", headers=NO_CACHE)
            if result is SENT:
                return _AlreadySent()
            state, data = cm.muxer.part(msn, index)
        if state is not Readiness.READY:
            raise web.HTTPNotFound()
        return web.Response(body=data, content_type=MEDIA_TYPE, headers=IMMUTABLE)

    async def segment(request: web.Request) -> web.StreamResponse:
        cm = _muxer(svc, request)
        msn = int(request.match_info["msn"])
        state, parts = cm.muxer.segment(msn)
        if state is Readiness.WAIT:
            if await svc.wait_playlist(cm, msn, None) is TIMEOUT:
                raise web.HTTPServiceUnavailable(text="segment not ready\n", headers=NO_CACHE)
            state, parts = cm.muxer.segment(msn)
        if state is not Readiness.READY:
            raise web.HTTPNotFound()
        resp = web.StreamResponse(headers={**IMMUTABLE, "Content-Type": MEDIA_TYPE})
        resp.content_length = sum(len(p) for p in parts)
        await resp.prepare(request)
        if request.method != "HEAD":
            for p in parts:  # the parts' bytes as they are: no per-request join
                await resp.write(p)
        await resp.write_eof()
        return resp

    async def page(request: web.Request) -> web.Response:
        try:
            path = normalize_path(request.match_info["path"])
        except InvalidPath:
            raise web.HTTPNotFound() from None
        body = web_asset("hls.html").replace(b"__RTMPGOP_PATH__", path.encode())
        return web.Response(body=body, content_type="text/html", headers=NO_CACHE)

    async def hls_js(request: web.Request) -> web.Response:
        try:
            body = web_asset("vendor/hls.min.js")
        except (FileNotFoundError, OSError):
            raise web.HTTPNotFound(text="hls.js missing: run scripts/setup.sh\n") from None
        return web.Response(body=body, content_type="application/javascript",
                            headers={"Cache-Control": "public, max-age=86400"})

    def add_routes(app: web.Application) -> None:
        r = app.router
        r.add_get("/_static/hls.min.js", hls_js)
        r.add_get("/{path:.+}/index.m3u8", multivariant)
        r.add_get("/{path:.+}/" + MEDIA_PLAYLIST, media)
        r.add_get(r"/{path:.+}/init{n:\d{1,18}}.mp4", init)
        r.add_get(r"/{path:.+}/seg{msn:\d{1,18}}.p{part:\d{1,6}}.m4s", part)
        r.add_get(r"/{path:.+}/seg{msn:\d{1,18}}.m4s", segment)
        r.add_get("/{path:.+}/", page)

    return add_routes


async def start_service(hub, config: Config, packager_factory=None) -> LLHLSService:
    """The LL-HLS service for ``App.start`` (``services["llhls"]``)."""
    return LLHLSService(hub, config, packager_factory)
