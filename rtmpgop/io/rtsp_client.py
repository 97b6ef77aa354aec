"""Camera pulls over RTSP: the asyncio adapter around the sans-IO ``ClientConnection``
(protocol/rtsp/client.py) and the ``rtsp://``/``rtsps://`` pullers of ``io/sources.py``.

Strategy: one ``ClientConnection`` per connection attempt, so every reconnect starts with a
fresh OPTIONS + DESCRIBE (Hikvision needs it; the digest section 9.6). ``RtspClientProtocol``
feeds TCP bytes to it (plain ``asyncio.Protocol``: ``data_received`` hands immutable ``bytes``,
which the core may slice without copying), drains its events synchronously into the puller,
writes ``data_to_send()`` and keeps one ``call_at`` timer on ``next_deadline()`` (keepalives,
receiver reports, request and silence timeouts). UDP transport binds an even/odd port pair
per track when the core asks for it at SETUP and reads the sockets with ``add_reader``;
datagrams from other hosts are dropped, and receiver reports go back to the address the
camera's RTCP comes from. ``rtsps://`` wraps the TCP stream in TLS (verification on unless the
source says ``tls_verify = false``). Cancelling the puller sends TEARDOWN and waits for its
answer at most ``TEARDOWN_TIMEOUT``.

Camera tracks become hub tracks through ``rtsp_ingest.RtspIngest``, shared with RTSP publishers
(video first, one timeline aligned by the camera's SRs or else by arrival, in-band
configurations awaited, discontinuities re-anchored).

Camera quirks handled (the digest section 9): a fresh DESCRIBE on every reconnect; Content-Base
naming an internal host (the core keeps ours); parameter sets only in-band (``RtspIngest``
waits for them); missing RTP marker bits (the depacketizer closes an access unit when the
timestamp changes, protocol/rtp/nal.py); timestamps that jump or go backwards after an
encoder restart or SSRC change (``rtsp_ingest.Timeline``); cameras that never answer keepalives or
TEARDOWN (neither is waited for beyond ``TEARDOWN_TIMEOUT``); no RTCP at all (receiver reports
over UDP go out only once the camera's RTCP address is known).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import random
import secrets
import socket
import ssl
import time
import urllib.parse
from dataclasses import replace

from rtmpgop.config import SourceConfig
from rtmpgop.io import sources
from rtmpgop.io.rtsp_ingest import RtspIngest
from rtmpgop.protocol.rtsp import events as ev
from rtmpgop.protocol.rtsp.client import MAX_REDIRECTS, RR_INTERVAL, ClientConnection
from rtmpgop.protocol.rtsp.urls import parse_url

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0
"""Seconds for the TCP (and TLS) connection to a camera: a dead host fails in this time."""

TEARDOWN_TIMEOUT = 1.0
"""Seconds to wait for the TEARDOWN answer when stopping: some cameras never answer, and a
stopping server must not hang on them."""

MEDIA_ERROR_LOG_INTERVAL = 10.0
"""Bad RTP payloads are counted and logged at most once per this many seconds per source."""

UDP_BIND_ATTEMPTS = 32
"""Tries to find a free even port with a free odd neighbour for an RTP/RTCP pair."""

UDP_RECV_BATCH = 64
"""Datagrams read per readiness callback before yielding to the loop."""

UDP_RECV_BUFFER = 4 * 1024 * 1024
"""SO_RCVBUF asked for each RTP socket: a 1080p keyframe arrives as a burst of ~150 datagrams,
and with twenty cameras on one loop the default 208 KiB overflowed (bench/sources_bench.py
--transport udp lost frames). Linux caps it at ``net.core.rmem_max``."""

DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322}


class RtspSourceError(Exception):
    """The camera refused or ended the session (the message is what the status shows)."""


# ------------------------------------------------------------------------- UDP port pairs
def _bind_pair(family: int, host: str) -> tuple[socket.socket, socket.socket]:
    """An RTP socket on an even port and its RTCP socket on the next one (RFC 3550 11)."""
    for _ in range(UDP_BIND_ATTEMPTS):
        rtp = socket.socket(family, socket.SOCK_DGRAM)
        try:
            rtp.bind((host, 0))
            port = rtp.getsockname()[1]
            if port % 2 == 0 and port < 65535:
                rtcp = socket.socket(family, socket.SOCK_DGRAM)
                try:
                    rtcp.bind((host, port + 1))
                    rtp.setblocking(False)
                    rtcp.setblocking(False)
                    try:
                        rtp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECV_BUFFER)
                    except OSError:
                        pass  # keep the default; the kernel refused the size
                    return rtp, rtcp
                except OSError:
                    rtcp.close()
        except OSError:
            pass
        rtp.close()
    raise OSError(errno.EADDRINUSE, "no free RTP/RTCP port pair")


class UdpPorts:
    """The ``udp_client_ports`` sequence of ``ClientConnection``: a pair is bound when the
    core asks for index ``i`` at SETUP (the track count is unknown before DESCRIBE)."""

    def __init__(self) -> None:
        self.family = socket.AF_INET
        self.pairs: list[tuple[socket.socket, socket.socket]] = []

    def __bool__(self) -> bool:
        return True

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> tuple[int, int]:
        host = "::" if self.family == socket.AF_INET6 else "0.0.0.0"
        while len(self.pairs) <= i:
            self.pairs.append(_bind_pair(self.family, host))
        return self.pairs[i][0].getsockname()[1], self.pairs[i][1].getsockname()[1]

    def close(self) -> None:
        for pair in self.pairs:
            for s in pair:
                s.close()
        self.pairs = []


# ------------------------------------------------------------------------- protocol
class RtspClientProtocol(asyncio.Protocol):
    """Drives one ``ClientConnection`` on a TCP/TLS transport (plus UDP sockets if any)."""

    def __init__(self, conn: ClientConnection, on_event, udp: UdpPorts | None = None) -> None:
        self.conn = conn
        self.on_event = on_event
        self.udp = udp
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.done: asyncio.Future = self.loop.create_future()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._peer_host = ""
        self._rtcp_to: dict[int, tuple] = {}  # pair index -> where the camera's RTCP comes from
        self._readers: list[int] = []
        self._rr_timer: asyncio.TimerHandle | None = None

    # -- TCP
    def connection_made(self, transport) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername") or ("",)
        self._peer_host = peer[0]
        sock = transport.get_extra_info("socket")
        if self.udp is not None and sock is not None:
            self.udp.family = sock.family
        self.conn.start(self.loop.time())
        self.process()

    def data_received(self, data: bytes) -> None:
        self.conn.receive_data(data, self.loop.time())
        self.process()

    def connection_lost(self, exc) -> None:
        self.finish(exc or ConnectionError("camera closed the connection"))
        self._stop_timers()

    # -- events, output, timers
    def process(self) -> None:
        """Drain events into ``on_event``, write output, re-arm the timer."""
        try:
            while (e := self.conn.next_event()) is not None:
                self.on_event(e)
        except Exception as e:  # a malformed stream (RTSPError) or the sink refusing (PathBusy)
            self.finish(e)
            if self.transport is not None:
                self.transport.abort()
            return
        out = self.conn.data_to_send()
        if out and self.transport is not None and not self.transport.is_closing():
            self.transport.writelines(out)
        deadline = self.conn.next_deadline()
        if deadline != self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = deadline
            self._timer = None if deadline is None else self.loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = self._timer_at = None
        self.conn.handle_timer(self.loop.time())
        self.process()

    def finish(self, result: BaseException | str | None) -> None:
        """End the session: an exception (failure), a redirect URL, or None (ended)."""
        if self.done.done():
            return
        if isinstance(result, BaseException):
            self.done.set_exception(result)
        else:
            self.done.set_result(result)

    def _stop_timers(self) -> None:
        for t in (self._timer, self._rr_timer):
            if t is not None:
                t.cancel()
        self._timer = self._rr_timer = None
        self._timer_at = None

    # -- UDP
    def start_udp(self) -> None:
        """Read the bound pairs (after PLAY) and send receiver reports every ``RR_INTERVAL``."""
        if self.udp is None:
            return
        for i, (rtp, rtcp) in enumerate(self.udp.pairs):
            for s, is_rtcp in ((rtp, False), (rtcp, True)):
                self.loop.add_reader(s.fileno(), self._on_datagram, s, i, is_rtcp)
                self._readers.append(s.fileno())
        self._rr_timer = self.loop.call_later(RR_INTERVAL, self._send_rrs)

    def _on_datagram(self, sock: socket.socket, index: int, is_rtcp: bool) -> None:
        now = self.loop.time()
        for _ in range(UDP_RECV_BATCH):
            try:
                data, addr = sock.recvfrom(65536)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                return
            if addr[0] != self._peer_host:
                continue  # only the camera may feed this session
            if is_rtcp:
                self._rtcp_to[index] = addr
            if index < len(self.conn.tracks):
                self.conn.receive_udp(self.conn.tracks[index].id, is_rtcp, data, now)
        self.process()

    def _send_rrs(self) -> None:
        ids = {t.id: i for i, t in enumerate(self.conn.tracks)}
        for track_id, data in self.conn.receiver_reports(self.loop.time()):
            i = ids.get(track_id)
            if i is not None and i in self._rtcp_to and self.udp is not None and i < len(self.udp):
                try:
                    self.udp.pairs[i][1].sendto(data, self._rtcp_to[i])
                except OSError:
                    pass
        self._rr_timer = self.loop.call_later(RR_INTERVAL, self._send_rrs)

    def close(self) -> None:
        self._stop_timers()
        if not self.done.done():
            self.done.cancel()  # a late connection_lost finds it settled
        elif not self.done.cancelled():
            self.done.exception()  # retrieved: the caller already acted on the outcome
        for fd in self._readers:
            self.loop.remove_reader(fd)
        self._readers = []
        if self.transport is not None:
            self.transport.close()


# ------------------------------------------------------------------------- the puller
def _split_host(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an rtsp(s) URL. Raises ``RtspSourceError``."""
    u = parse_url(url)
    try:
        parts = urllib.parse.urlsplit("//" + u.host)
        port = parts.port or DEFAULT_PORTS.get(u.scheme, 554)
    except ValueError:
        raise RtspSourceError(f"bad host:port {u.host!r}") from None
    if not parts.hostname:
        raise RtspSourceError("no host in the URL")
    return u.scheme, parts.hostname, port


def source_url(cfg: SourceConfig) -> str:
    """``cfg.url`` with ``cfg.user``/``cfg.password`` filled in (they win over the URL's)."""
    if not cfg.user:
        return cfg.url
    scheme, _, rest = cfg.url.partition("://")
    authority, slash, tail = rest.partition("/")
    host = authority.rpartition("@")[2]
    cred = urllib.parse.quote(cfg.user, safe="") + ":" + urllib.parse.quote(cfg.password, safe="")
    return f"{scheme}://{cred}@{host}{slash}{tail}"


def ssl_context(cfg: SourceConfig) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    if not cfg.tls_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


class RtspPull:
    """One connection attempt: connect, play, push into the sink until it fails or ends."""

    def __init__(self, url: str, cfg: SourceConfig, sink) -> None:
        self.url = url
        self.cfg = cfg
        self.mapper = RtspIngest(sink, self._sender_report)
        sink.details = self.details
        self.udp = UdpPorts() if cfg.transport == "udp" else None
        self.conn = ClientConnection(url, transport=cfg.transport, udp_client_ports=self.udp,
                                     cnonce=secrets.token_hex(8),
                                     receiver_ssrc=random.getrandbits(32))
        self.proto: RtspClientProtocol | None = None
        self.media_errors = 0
        self._error_logged = 0.0

    def _sender_report(self, track_id: int):
        return self.conn.sender_report(track_id)

    def details(self) -> tuple[tuple[str, object], ...]:
        """RTSP counters of this connection for ``Source.statistics``."""
        st = self.conn.statistics()
        extra = dict(st.extra)
        return (("rtsp_state", extra.get("state", "")), ("bytes_in", st.bytes_in),
                ("packets_lost", extra.get("packets_lost", 0)),
                ("rtp_errors", extra.get("rtp_errors", 0)), ("media_errors", self.media_errors),
                ("discontinuities", self.mapper.timeline.discontinuities),
                ("units_held", self.mapper.units_held))

    def on_event(self, e) -> None:
        now = self.proto.loop.time() if self.proto else 0.0
        if isinstance(e, ev.MediaReceived):
            self.mapper.push(e.unit, now)
        elif isinstance(e, ev.TrackChanged):
            self.mapper.track_changed(e.track, now)
        elif isinstance(e, ev.Playing):
            self.mapper.start(e.tracks, now)
            self.proto.start_udp()
        elif isinstance(e, ev.MediaError):
            self.media_errors += 1
            if time.monotonic() - self._error_logged >= MEDIA_ERROR_LOG_INTERVAL:
                self._error_logged = time.monotonic()
                log.warning("source %s: bad RTP on track %d (%d so far): %s", self.cfg.path,
                            e.track_id, self.media_errors, e.error)
        elif isinstance(e, ev.Described):
            if e.skipped:
                log.info("source %s: %d media of the camera not supported, skipped",
                         self.cfg.path, e.skipped)
        elif isinstance(e, ev.RequestFailed):
            self.proto.finish(RtspSourceError(f"{e.method} failed: {e.status} {e.reason}"))
        elif isinstance(e, ev.Redirect):
            self.proto.finish(e.location)
        elif isinstance(e, ev.Teardown):
            self.proto.finish(None if e.reason == "closed" else RtspSourceError(e.reason))

    async def run(self) -> str | None:
        """Returns a redirect location, or None when the session ended. Raises on failure."""
        scheme, host, port = _split_host(self.url)
        loop = asyncio.get_running_loop()
        self.proto = RtspClientProtocol(self.conn, self.on_event, self.udp)
        tls = ssl_context(self.cfg) if scheme == "rtsps" else None
        try:
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT):
                    await loop.create_connection(lambda: self.proto, host, port, ssl=tls,
                                                 server_hostname=host if tls else None)
            except TimeoutError:
                raise RtspSourceError(
                    f"no connection to {host}:{port} within {CONNECT_TIMEOUT:g} s") from None
            try:
                return await asyncio.shield(self.proto.done)
            except asyncio.CancelledError:
                await self._teardown()
                raise
        finally:
            self.proto.close()
            if self.udp is not None:
                self.udp.close()

    async def _teardown(self) -> None:
        if self.proto.done.done() or self.conn.closed:
            return
        self.conn.close()
        self.proto.process()
        try:
            async with asyncio.timeout(TEARDOWN_TIMEOUT):
                await asyncio.shield(self.proto.done)
        except (TimeoutError, Exception):
            pass


async def pull(cfg: SourceConfig, sink) -> None:
    """The ``rtsp://``/``rtsps://`` puller (see ``sources.Puller``): follows redirects.
    Raises ``RtspSourceError``, ``ProtocolError`` or ``OSError`` when the camera fails."""
    url = source_url(cfg)
    for _ in range(MAX_REDIRECTS + 1):
        location = await RtspPull(url, cfg, sink).run()
        if location is None:
            return
        log.info("source %s: redirected to %s", cfg.path, sources.redact(location))
        old, new = parse_url(url), parse_url(location)
        if old.username and new.username is None and \
                _split_host(location)[1] == _split_host(url)[1]:
            # Same camera (any port): keep the credentials, never hand them to another host.
            location = source_url(replace(cfg, url=location, user=old.username,
                                          password=old.password or ""))
        url = location
    raise RtspSourceError(f"more than {MAX_REDIRECTS} redirects")


sources.PULLERS["rtsp"] = pull
sources.PULLERS["rtsps"] = pull
