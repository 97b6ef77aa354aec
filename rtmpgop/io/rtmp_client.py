"""A small asyncio RTMP client around ``ClientConnection`` (publish or play an rtmp:// URL).

Used by tests, the benchmark load generator and the rtmp:// camera sources. Strategy: a
``BufferedProtocol`` feeds the sans-IO core; events go to an ``asyncio.Queue`` that
``next_event`` reads with a deadline. ``open_url`` does connect + createStream + publish/play.
"""

from __future__ import annotations

import asyncio
import urllib.parse

from rtmpgop.errors import ProtocolError
from rtmpgop.protocol.rtmp import events as E
from rtmpgop.protocol.rtmp.client import ClientConnection

MAX_QUEUED_EVENTS = 10_000
"""Events buffered for a slow reader before the connection is closed (bounds memory)."""


class RtmpClientError(Exception):
    """The server refused (``status`` holds its Status event) or the connection failed."""

    def __init__(self, message: str, status: E.Status | None = None) -> None:
        super().__init__(message)
        self.status = status


class RtmpClient(asyncio.BufferedProtocol):
    def __init__(self, conn: ClientConnection) -> None:
        self.conn = conn
        self.events: asyncio.Queue = asyncio.Queue()
        self.transport: asyncio.Transport | None = None
        self.closed = asyncio.get_running_loop().create_future()
        self.msid = 0

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.flush()

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.conn.get_buffer(sizehint)

    def buffer_updated(self, nbytes: int) -> None:
        try:
            self.conn.buffer_updated(nbytes)
            while (ev := self.conn.next_event()) is not None:
                if self.events.qsize() >= MAX_QUEUED_EVENTS:
                    raise ProtocolError("client event queue full", limit=MAX_QUEUED_EVENTS)
                self.events.put_nowait(ev)
        except ProtocolError as e:
            self.events.put_nowait(e)
            self.transport.abort()
            return
        self.flush()

    def connection_lost(self, exc) -> None:
        self.events.put_nowait(ConnectionError(f"connection lost: {exc}"))
        if not self.closed.done():
            self.closed.set_result(None)

    def flush(self) -> None:
        out = self.conn.data_to_send()
        if out and self.transport is not None and not self.transport.is_closing():
            self.transport.writelines(out)

    async def next_event(self, timeout: float = 10.0):
        """The next event; raises the connection's error, or ``TimeoutError``."""
        ev = await asyncio.wait_for(self.events.get(), timeout)
        if isinstance(ev, BaseException):
            raise ev
        return ev

    async def wait_for(self, cls, timeout: float = 10.0):
        """Skip events until one of type ``cls``; an error ``Status`` raises ``RtmpClientError``."""
        async with asyncio.timeout(timeout):
            while True:
                ev = await self.next_event(timeout)
                if isinstance(ev, E.Status) and ev.level == "error":
                    raise RtmpClientError(f"server said {ev.code}: {ev.description}", ev)
                if isinstance(ev, cls):
                    return ev

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def open_url(url: str, mode: str = "play", *, fourccs: tuple[str, ...] = (),
                   timeout: float = 10.0) -> RtmpClient:
    """Connect to ``rtmp://host[:port]/app/name``, create a stream and publish or play it.

    Returns the client once ``Publish.Start``/``Play.Start`` arrived (``client.msid`` set).
    Raises ``RtmpClientError``, ``OSError`` or ``TimeoutError``."""
    u = urllib.parse.urlsplit(url)
    app, _, name = u.path.lstrip("/").partition("/")
    if u.query:
        name += "?" + u.query
    loop = asyncio.get_running_loop()
    conn = ClientConnection(app, f"rtmp://{u.hostname}:{u.port or 1935}/{app}", fourccs=fourccs)
    async with asyncio.timeout(timeout):
        _, client = await loop.create_connection(lambda: RtmpClient(conn), u.hostname, u.port or 1935)
        await client.wait_for(E.Connected)
        conn.create_stream()
        client.flush()
        client.msid = (await client.wait_for(E.StreamCreated)).msid
        if mode == "publish":
            conn.publish(client.msid, name)
            want = "NetStream.Publish.Start"
        else:
            conn.play(client.msid, name)
            want = "NetStream.Play.Start"
        client.flush()
        while (await client.wait_for(E.Status)).code != want:
            pass
    return client
