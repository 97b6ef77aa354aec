"""What the TCP listeners (``rtmp_server``, ``rtsp_server``) share: the hub and config, the
open connections, the asyncio server and the port it got, the count of connections closed for
a protocol error, the players' pump scheduler (``io/pump.py``), and listen / close."""

from __future__ import annotations

import asyncio
from typing import Callable

from rtmpgop.channels import Hub
from rtmpgop.config import Config
from rtmpgop.io.pump import PumpScheduler


class TcpListener:
    """Base of the running RTMP and RTSP servers: ``port``, ``connections``, ``close()``.
    Connections are protocols with a ``close()`` that add and discard themselves."""

    def __init__(self, hub: Hub, config: Config) -> None:
        self.hub = hub
        self.config = config
        self.connections: set = set()
        self.server: asyncio.Server | None = None
        self.port = 0
        self.errors = 0  # connections closed for a protocol error
        self.pumps = PumpScheduler(config.play_merge_ms)  # players writing over TCP

    async def listen(self, protocol: Callable[[], asyncio.BaseProtocol], host: str,
                     port: int) -> None:
        """Serve ``protocol()`` per connection on ``host:port`` (0 = any free port); sets
        ``port``. Raises ``OSError`` when the port is taken."""
        self.server = await asyncio.get_running_loop().create_server(protocol, host, port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening and close every connection."""
        if self.server is not None:
            self.server.close()
        for c in list(self.connections):
            c.close()
        if self.server is not None:
            await self.server.wait_closed()
