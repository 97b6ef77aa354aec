"""The application: one hub, the protocol servers around it, and the per-channel workers.

``App`` is what tests start in-process (ports 0) and what ``run`` starts from the CLI.
Every listener module in ``rtmpgop.io`` has ``async def start(hub, config, **deps) -> Listener``
(an object with ``port`` and ``async close()``); this module wires them together and is the only
one that knows them all.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from typing import Any

from rtmpgop.channels import Hub
from rtmpgop.config import Config
from rtmpgop.io import (hls_http, http_server, pages, rtmp_server, rtsp_server, sources,
                        webp_worker, ws_server)
from rtmpgop.io import rtmp_pull, rtsp_client  # noqa: F401  (import registers their pullers)

log = logging.getLogger("rtmpgop")


class App:
    """The server. ``await start()``, read ``ports``, ``await stop()``."""

    def __init__(self, config: Config | None = None) -> None:
        self.config = config or Config()
        self.hub = Hub()
        self.listeners: dict[str, Any] = {}
        self.services: dict[str, Any] = {}  # per-channel workers (LL-HLS, WebP, sources ...)

    @property
    def ports(self) -> dict[str, int]:
        return {name: lst.port for name, lst in self.listeners.items()}

    async def start(self) -> None:
        """Start every listener and service. Order matters where noted."""
        cfg, hub = self.config, self.hub
        self.listeners["rtmp"] = await rtmp_server.start(hub, cfg, cfg.host, cfg.rtmp_port)
        self.listeners["rtsp"] = await rtsp_server.start(hub, cfg, cfg.host, cfg.rtsp_port)
        # WebP renderer + /ws/PATH before HTTP: the /view page needs the WebSocket port
        self.services["webp"] = webp_worker.RenderManager(hub, cfg)
        self.listeners["ws"] = await ws_server.start(hub, cfg, cfg.host, cfg.ws_port,
                                                     renders=self.services["webp"])
        if cfg.hls != "off":  # muxers start on publish (before the first request) or on demand
            self.services["llhls"] = await hls_http.start_service(hub, cfg)
        self.services["sources"] = sources.SourceManager(hub, cfg.sources)  # started below
        self.listeners["rtsp"].sources = self.services["sources"]  # DESCRIBE wakes on-demand cams
        self.listeners["http"] = await http_server.start(
            hub, cfg, cfg.host, cfg.http_port, setups=self.http_setups())
        log.info("rtmpgop listening %s", " ".join(f"{k}={v}" for k, v in self.ports.items()))
        self.services["sources"].start()  # camera pulls, once every consumer is listening

    def http_setups(self) -> list[http_server.RouteSetup]:
        """Route setups of the features served over HTTP (viewer pages, LL-HLS, source state)."""
        setups = [pages.setup(self.services["webp"], lambda: self.listeners["ws"].port)]
        if "llhls" in self.services:  # /PATH/index.m3u8, media.m3u8, init/seg/parts, /PATH/
            setups.append(hls_http.setup(self.services["llhls"]))
        setups.append(http_server.sources_setup(self.services["sources"]))
        return setups

    async def stop(self) -> None:
        for name in reversed(list(self.services)):
            svc = self.services.pop(name)
            await svc.close()
        for name in reversed(list(self.listeners)):
            lst = self.listeners.pop(name)
            await lst.close()


async def serve(config: Config, ready: asyncio.Event | None = None) -> None:
    """Start the app and run until SIGINT/SIGTERM."""
    app = App(config)
    await app.start()
    # Move everything built at start-up (modules, codecs tables) out of the collector's sight:
    # full collections then scan only live-stream objects. Without it, gen-2 pauses of 50-120 ms
    # stalled the loop under 500 LL-HLS clients (bench/llhls_bench.py --gc default).
    gc.freeze()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    print("rtmpgop ready " + " ".join(f"{k}={v}" for k, v in app.ports.items()), flush=True)
    if ready is not None:
        ready.set()
    await stop.wait()
    await app.stop()


def run(config: Config) -> int:
    """Run the server on uvloop until interrupted. Returns the process exit code."""
    import uvloop

    try:
        uvloop.run(serve(config))
    except KeyboardInterrupt:
        pass
    return 0
