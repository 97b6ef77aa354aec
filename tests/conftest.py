"""Shared fixtures.

``server``: a whole ``rtmpgop.app.App`` on 127.0.0.1 with every port 0, running on a uvloop
event loop in a background thread. Exposes ``.app``, ``.ports`` (name -> port), ``.hub``,
``.loop`` and ``.call(fn, *args)`` (run ``fn`` on the loop thread and return its result; a
coroutine function is awaited there). Start and stop have deadlines. Reused by the RTMP, RTSP,
HLS and WebSocket tests.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import threading

import pytest

START_DEADLINE = 20.0
"""Seconds for the app to bind its listeners."""

STOP_DEADLINE = 10.0
"""Seconds for the app to close at teardown."""

CALL_DEADLINE = 10.0
"""Default seconds for one ``call``."""


def pytest_configure(config) -> None:
    from tests import rt_guard

    rt_guard.start()  # see tests/rt_guard.py: libsvtav1 as root leaves threads on SCHED_FIFO 99


class ServerThread:
    """An App on its own uvloop thread."""

    def __init__(self, config=None) -> None:
        from rtmpgop.config import Config

        self.config = config or Config(host="127.0.0.1", rtmp_port=0, rtsp_port=0, http_port=0, ws_port=0,
                                       rtsp_udp_rtp_port=0)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.app = None
        self._thread = threading.Thread(target=self._run, name="rtmpgop-test-server", daemon=True)
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def _run(self) -> None:
        import uvloop

        from rtmpgop.app import App

        self.loop = uvloop.new_event_loop()
        asyncio.set_event_loop(self.loop)
        try:
            self.app = App(self.config)
            self.loop.run_until_complete(self.app.start())
        except BaseException as e:  # reported by start()
            self._error = e
            self._ready.set()
            self.loop.close()
            return
        self._ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    def start(self) -> ServerThread:
        self._thread.start()
        if not self._ready.wait(START_DEADLINE):
            raise TimeoutError(f"rtmpgop did not start within {START_DEADLINE} s")
        if self._error is not None:
            raise self._error
        return self

    def call(self, fn, *args, timeout: float = CALL_DEADLINE):
        """Run ``fn(*args)`` on the server's loop; return its result (awaited if a coroutine)."""
        async def run():
            res = fn(*args)
            if inspect.isawaitable(res):
                res = await res
            return res

        fut = asyncio.run_coroutine_threadsafe(run(), self.loop)
        try:
            return fut.result(timeout)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise TimeoutError(f"call {fn!r} took longer than {timeout} s") from None

    @property
    def ports(self) -> dict[str, int]:
        return self.call(lambda: dict(self.app.ports))

    @property
    def hub(self):
        return self.app.hub

    def stop(self) -> None:
        if self.loop is None or self.loop.is_closed():
            return
        try:
            self.call(self.app.stop, timeout=STOP_DEADLINE)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(STOP_DEADLINE)


@pytest.fixture
def server():
    """A running App (all ports 0) on a uvloop thread; stopped at teardown."""
    srv = ServerThread().start()
    try:
        yield srv
    finally:
        srv.stop()
