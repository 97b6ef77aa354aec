"""RTSP listener: asyncio adapter around ``protocol.rtsp.server.ServerConnection`` (RFC 2326),
publish (ANNOUNCE/SETUP/RECORD) into the hub and play (DESCRIBE/SETUP/PLAY) out of it.

TCP: ``asyncio.Protocol``, not ``BufferedProtocol``: ``data_received`` hands over a fresh
immutable ``bytes`` per read, and the core keeps ``$``-frame payloads as views of it until the
access unit completes, so nothing is copied here (the depacketizer joins a unit once).
UDP: one RTP/RTCP port pair for the whole server (``rtsp_udp_rtp_port``, RTCP = RTP + 1; port
0 picks an even free pair), read with ``loop.add_reader`` + ``recvfrom`` (the datagram bytes go
to the core as they are), demultiplexed by source address to the session that SETUP
registered it for. The TCP handler first drains the UDP sockets, so datagrams that arrived
before a TEARDOWN are handed over before it (FFmpeg sends its last RTP just before).

Publishing: ANNOUNCE claims the path (``PathBusy`` -> 455, an invalid path -> 400); events go
to ``io.rtsp_ingest.RtspIngest`` (video first, tracks announced once configured, one timeline
for all tracks aligned by the publisher's SRs), as for pulled cameras. Playing:
``subscribers.rtsp_play.RtspPlayer`` is made at DESCRIBE (so the player starts at the GoP head
current then) and drained from the subscription's wake-up callback while the
transport is not paused; a transport paused for longer than ``WRITE_STALL_TIMEOUT`` (a client
that never reads) is closed, the hub skipping it meanwhile. UDP players get their packets with
``sendto`` on the shared RTP/RTCP sockets (a full socket buffer drops, as the network would).

On-demand cameras: a DESCRIBE of an idle on-demand source's path (``listener.sources``, the
App's ``SourceManager``) starts it and is answered once it is live, at most ``ON_DEMAND_WAIT``.

Authentication: ``rtsp_publish_user``/``_password`` and ``rtsp_read_user``/``_password`` give
each connection a ``ServerAuth`` (Digest MD5 with a fresh nonce, Basic only with
``rtsp_auth_basic``); the core answers 401 itself. Empty users leave that side open.

Bad media (``MediaError``): over TCP it closes the session (the transport is reliable, so the
sender is broken); over UDP the packet is dropped and logged at a limited rate (noise happens).
Publishers get RTCP receiver reports every ``RR_INTERVAL``. Session timeouts: the core's
``next_deadline``/``handle_timer`` on ``loop.call_at``. Peer faults (``ProtocolError``) close
only that session with one log line: peer, error class, fields.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import time

from rtmpgop.channels import Channel, Hub
from rtmpgop.config import Config
from rtmpgop.errors import PathBusy, ProtocolError, RTSPError
from rtmpgop.io.listener import TcpListener
from rtmpgop.io.pump import PumpScheduler
from rtmpgop.io.rtsp_ingest import RtspIngest
from rtmpgop.media import Statistics
from rtmpgop.protocol.rtsp import events as E
from rtmpgop.protocol.rtsp.auth import ServerAuth
from rtmpgop.protocol.rtsp.message import Headers, Response, frame_header
from rtmpgop.protocol.rtsp.server import ServerConnection
from rtmpgop.subscribers.rtsp_play import RtspPlayer

log = logging.getLogger(__name__)

WRITE_HIGH_WATER = 1024 * 1024
"""Bytes queued in a transport before ``pause_writing`` (players then stop draining and the hub
skips them when they fall GoPs behind). Bounds memory per player, as for RTMP."""

WRITE_STALL_TIMEOUT = 10.0
"""Seconds a transport may stay paused before the session is closed: a live client that does
not read for that long is gone or stuck (the hub has skipped it several GoPs by then)."""

UDP_RCVBUF = 4 * 1024 * 1024
"""SO_RCVBUF of the shared UDP sockets: every UDP publisher lands on one socket, and a burst
of a 20 Mbit/s keyframe must not overflow the default ~200 KiB buffer."""

UDP_BATCH = 256
"""Datagrams read per readiness callback before yielding to other sockets (fairness)."""

UDP_PAIR_ATTEMPTS = 64
"""Tries to find an even free port with a free successor when the RTP port is 0."""

RR_INTERVAL = 5.0
"""Seconds between RTCP receiver reports to a publisher (RFC 3550 6.2; gortsplib's servers
send them too, and some encoders watch them to detect a dead server)."""

AUTH_REALM = "rtmpgop"  # realm of the RTSP Digest/Basic challenges (config rtsp_*_user)

ON_DEMAND_WAIT = 10.0
"""Seconds a DESCRIBE of an idle on-demand camera waits for it to go live (connect, DESCRIBE,
first keyframe) before it is answered 404, as the HTTP side waits (``http_server``)."""

MEDIA_ERROR_LOG_EVERY = 100
"""Log bad RTP payloads at most once per this many, per session (they are dropped, not fatal)."""


class _UdpPair:
    """The server's shared RTP/RTCP sockets and the (ip, port) -> session demux table."""

    def __init__(self, loop: asyncio.AbstractEventLoop, host: str, rtp_port: int) -> None:
        self.loop = loop
        self.routes: dict[tuple[str, int], tuple[RtspServerProtocol, int, bool]] = {}
        self.socks = self._bind(host, rtp_port)
        self.ports = (self.socks[0].getsockname()[1], self.socks[1].getsockname()[1])
        self.datagrams = 0
        self.unrouted = 0
        for i, s in enumerate(self.socks):
            loop.add_reader(s.fileno(), self._readable, s, i == 1)

    @staticmethod
    def _bind(host: str, port: int) -> tuple[socket.socket, socket.socket]:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        for _ in range(UDP_PAIR_ATTEMPTS if port == 0 else 1):
            a, b = socket.socket(family, socket.SOCK_DGRAM), None
            try:
                a.bind((host, port))
                p = a.getsockname()[1]
                if p % 2:
                    raise OSError("odd port")
                b = socket.socket(family, socket.SOCK_DGRAM)
                b.bind((host, p + 1))
            except OSError:
                a.close()
                if b is not None:
                    b.close()
                if port:
                    raise
                continue
            for s in (a, b):
                s.setblocking(False)
                try:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RCVBUF)
                except OSError:
                    pass
            return a, b
        raise OSError(f"no free even UDP port pair after {UDP_PAIR_ATTEMPTS} tries")

    def _readable(self, sock: socket.socket, is_rtcp: bool) -> None:
        self._drain(sock, UDP_BATCH)

    def _drain(self, sock: socket.socket, limit: int) -> None:
        routes = self.routes
        for _ in range(limit):
            try:
                data, addr = sock.recvfrom(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # ICMP port unreachable from a player that left, ...
                continue
            self.datagrams += 1
            r = routes.get(addr[:2])
            if r is None:
                self.unrouted += 1
                continue
            r[0].udp_received(r[1], r[2], data)

    def drain(self) -> None:
        """Hand over everything queued on both sockets (before a TCP request is handled)."""
        for s in self.socks:
            self._drain(s, 1 << 30)

    def sendto(self, data: bytes, addr: tuple[str, int], is_rtcp: bool) -> bool:
        try:
            self.socks[1 if is_rtcp else 0].sendto(data, addr)
            return True
        except (BlockingIOError, InterruptedError, OSError):
            return False  # UDP: a full buffer drops, as the network would

    def close(self) -> None:
        for s in self.socks:
            self.loop.remove_reader(s.fileno())
            s.close()


class RtspServerProtocol(asyncio.Protocol):
    """One RTSP control connection (and the UDP flows its SETUPs registered)."""

    def __init__(self, listener: RtspListener) -> None:
        self.listener = listener
        self.hub = listener.hub
        self.loop = asyncio.get_running_loop()
        udp = listener.udp
        self.conn = ServerConnection(secrets.token_hex(8), udp_ports=udp.ports if udp else None,
                                     session_timeout=listener.session_timeout,
                                     read_auth=listener.auth("read"),
                                     publish_auth=listener.auth("publish"))
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self.peer_ip = ""
        self.channel: Channel | None = None
        self.ingest: RtspIngest | None = None
        self.player: RtspPlayer | None = None
        self.playing = False
        self.routes: list[tuple[str, int]] = []
        self.udp_dest: dict[tuple[int, bool], tuple[str, int]] = {}
        self._paused_at: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._stall: asyncio.TimerHandle | None = None
        self._rr_timer: asyncio.TimerHandle | None = None
        self._waiting: asyncio.Task | None = None  # DESCRIBE waiting for an on-demand source
        self.media_errors = 0
        self._udp_input = False  # processing a datagram (bad media is dropped, not fatal)
        self._end_reason = "connection closed"
        self.closed = False

    # ------------------------------------------------------------------ asyncio callbacks
    def connection_made(self, transport) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        self.peer_ip = peer[0] if peer else ""
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER, low=WRITE_HIGH_WATER // 4)
        self.listener.connections.add(self)
        self.conn.handle_timer(self.loop.time())  # starts the session clock
        self._arm_timer()

    def data_received(self, data: bytes) -> None:
        if self.routes and self.listener.udp is not None:
            self.listener.udp.drain()
        self.conn.receive_data(data, self.loop.time())
        self._process()

    def udp_received(self, track_id: int, is_rtcp: bool, data: bytes) -> None:
        self.conn.receive_udp(track_id, is_rtcp, data, self.loop.time())
        self._udp_input = True
        try:
            self._process()
        finally:
            self._udp_input = False

    def pause_writing(self) -> None:
        self._paused_at = self.loop.time()
        self._stall = self.loop.call_later(WRITE_STALL_TIMEOUT, self._stalled)

    def resume_writing(self) -> None:
        self._paused_at = None
        if self._stall is not None:
            self._stall.cancel()
            self._stall = None
        self.pump()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.listener.connections.discard(self)
        for h in (self._timer, self._stall, self._rr_timer, self._waiting):
            if h is not None:
                h.cancel()
        udp = self.listener.udp
        for addr in self.routes:
            if udp is not None and udp.routes.get(addr, (None,))[0] is self:
                del udp.routes[addr]
        self.routes.clear()
        if self.channel is not None:
            self.hub.unpublish(self.channel, self, self._end_reason)
            self.channel = self.ingest = None
        if self.player is not None:
            self.player.sub.close()
            self.player = None

    # ------------------------------------------------------------------ events
    def _process(self) -> None:
        try:
            while (ev := self.conn.next_event()) is not None:
                self._on_event(ev)
        except ProtocolError as e:
            self._fail(e)
            return
        self._flush()

    def _fail(self, e: Exception) -> None:
        self.listener.errors += 1
        log.warning("rtsp %s closed: %s %s", self.peer, type(e).__name__, e)
        if isinstance(e, RTSPError) and self.transport is not None:
            self.transport.write(Response(e.status, Headers((("Connection", "close"),))).to_bytes())
        self.close()

    def _on_event(self, ev) -> None:
        t = type(ev)
        if t is E.MediaReceived:
            if self.ingest is not None:
                self.ingest.push(ev.unit, self.loop.time())
        elif t is E.TrackChanged:
            if self.ingest is not None:
                self.ingest.track_changed(ev.track, self.loop.time())
        elif t is E.MediaError:
            if not self._udp_input:  # TCP is reliable: a bad packet means a broken sender
                raise ev.error if isinstance(ev.error, ProtocolError) else RTSPError(str(ev.error))
            self.media_errors += 1
            if self.media_errors % MEDIA_ERROR_LOG_EVERY == 1:
                log.warning("rtsp %s: track %d: dropped bad media (%d so far): %s %s", self.peer,
                            ev.track_id, self.media_errors, type(ev.error).__name__, ev.error)
        elif t is E.DescribeRequest:
            self._describe(ev)
        elif t is E.AnnounceRequest:
            self._announce(ev)
        elif t is E.SetupDone:
            self._setup(ev)
        elif t is E.PlayRequest:
            self._play()
        elif t is E.RecordRequest:
            self.conn.accept_record()
            self._rr_timer = self.loop.call_later(RR_INTERVAL, self._receiver_reports)
            log.info("rtsp %s publishing %s", self.peer, ev.path)
        elif t is E.Paused:
            self.playing = False
        elif t is E.Teardown:
            self._end_reason = ev.reason  # "teardown" or "session timeout"
            if ev.reason != "teardown":
                log.info("rtsp %s closed: %s", self.peer, ev.reason)
            self._flush()
            self.close(graceful=True)

    def _describe(self, ev: E.DescribeRequest) -> None:
        ch = self.hub.get(ev.path)
        sources = self.listener.sources
        if (ch is None or not ch.trackset.tracks) and sources is not None and \
                sources.touch(ev.path):
            # An idle on-demand camera: start it and answer once it is live (or give up).
            # The core holds requests pipelined behind this DESCRIBE until it is answered.
            self._waiting = self.loop.create_task(self._describe_when_live(ev, sources))
            return
        self._describe_now(ev)

    async def _describe_when_live(self, ev: E.DescribeRequest, sources) -> None:
        live = await sources.wait_live(ev.path, ON_DEMAND_WAIT)
        self._waiting = None
        if self.closed:
            return
        if not live:
            log.info("rtsp %s: on-demand source %s did not go live within %.0f s", self.peer,
                     ev.path, ON_DEMAND_WAIT)
        self._describe_now(ev)
        self._process()  # requests queued behind the DESCRIBE, and the answer

    def _describe_now(self, ev: E.DescribeRequest) -> None:
        ch = self.hub.get(ev.path)
        if ch is None or not ch.trackset.tracks:
            self.conn.reject(404)
            return
        if self.player is not None:
            self.player.sub.close()
        sub = self.hub.subscribe(ch.path, f"rtsp {self.peer}")
        self.player = RtspPlayer(self.conn, sub)
        self.conn.accept_describe(self.player.describe(), session_name=ch.path)
        if self.conn.mode != "play":  # nothing RTSP can carry: 404 sent
            sub.close()
            self.player = None

    def _announce(self, ev: E.AnnounceRequest) -> None:
        try:
            ch = self.hub.publish(ev.path, self)
        except PathBusy:
            log.info("rtsp %s: publish %s refused: path busy", self.peer, ev.path)
            self.conn.reject(455, "Path Busy")  # Method Not Valid in This State (mediamtx: 400)
            return
        except ProtocolError as e:  # InvalidPath
            log.info("rtsp %s: publish %r refused: %s", self.peer, ev.path, e)
            self.conn.reject(400, "Invalid Path")
            return
        self.channel = ch
        self.ingest = RtspIngest(ch, self.conn.sender_report)
        self.ingest.start(ev.tracks, self.loop.time())
        self.conn.accept_announce()

    def _setup(self, ev: E.SetupDone) -> None:
        tr, udp = ev.transport, self.listener.udp
        if tr.protocol != "UDP" or not tr.client_port or udp is None:
            return
        for port, is_rtcp in ((tr.client_port[0], False), (tr.client_port[1], True)):
            addr = (self.peer_ip, port)
            udp.routes[addr] = (self, ev.track_id, is_rtcp)
            self.routes.append(addr)
            self.udp_dest[(ev.track_id, is_rtcp)] = addr

    def _play(self) -> None:
        if self.player is None:
            self.conn.reject(455)
            return
        self.conn.accept_play(self.player.start())
        self.playing = True
        self.player.sub.set_wakeup(self._wake)
        log.info("rtsp %s playing %s", self.peer, self.player.sub.channel.path)

    # ------------------------------------------------------------------ output
    def _flush(self) -> None:
        if self.playing:
            self.pump()
            return
        out = self.conn.data_to_send()
        if out and self.transport is not None and not self.transport.is_closing():
            self.transport.writelines(out)

    def _wake(self) -> None:
        """Subscription wake-up: the listener pumps this session in its next pass (io/pump.py;
        TCP players with the merged-write delay, UDP players at the next loop turn)."""
        # UDP players are not merged: a window's packets sent at once could overrun the shared
        # socket's send buffer, and UDP drops what does not fit
        (self.listener.pumps_udp if self.udp_dest else self.listener.pumps).schedule(self)

    def pump(self) -> None:
        """Write the player's pending packets while the transport accepts more."""
        t, player = self.transport, self.player
        if t is None or t.is_closing() or player is None:
            return
        if not self.playing:
            out = self.conn.data_to_send()
            if out:
                t.writelines(out)
            return
        udp = self.listener.udp
        while self._paused_at is None:
            tcp, dgrams = player.pull(time.time())
            if tcp:
                t.writelines(tcp)
            for track_id, is_rtcp, data in dgrams:
                addr = self.udp_dest.get((track_id, is_rtcp))
                if addr is not None and udp is not None:
                    udp.sendto(data, addr, is_rtcp)
            if player.ended is not None:
                log.info("rtsp %s: stream %s ended: %s", self.peer, player.sub.channel.path,
                         player.ended)
                self.close(graceful=True)
                return
            if not tcp and not dgrams:
                return

    # ------------------------------------------------------------------ timers
    def _arm_timer(self) -> None:
        deadline = self.conn.next_deadline()
        if deadline is not None and not self.closed:
            self._timer = self.loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self.conn.handle_timer(self.loop.time())
        self._process()
        if not self.closed:
            self._arm_timer()

    def _receiver_reports(self) -> None:
        """RR + CNAME per recorded track, on its RTCP channel or to its RTCP port."""
        self._rr_timer = None
        t, udp = self.transport, self.listener.udp
        if self.closed or t is None or t.is_closing():
            return
        for track_id, data in self.conn.receiver_reports(self.loop.time()):
            tr = self.conn.setup_of(track_id)
            if tr is None:
                continue
            if tr.interleaved is not None:
                t.writelines([frame_header(tr.interleaved[1], len(data)), data])
            elif tr.client_port and udp is not None:
                udp.sendto(data, (self.peer_ip, tr.client_port[1]), True)
        self._rr_timer = self.loop.call_later(RR_INTERVAL, self._receiver_reports)

    def _stalled(self) -> None:
        self._stall = None
        if self._paused_at is not None:
            self.listener.errors += 1
            skipped = self.player.sub.skipped_frames if self.player is not None else 0
            log.warning("rtsp %s closed: WriteStalled client read nothing for %.1f s "
                        "(skipped_frames=%d)", self.peer, WRITE_STALL_TIMEOUT, skipped)
            self.close()

    def close(self, graceful: bool = False) -> None:
        """Close the session: ``graceful`` flushes queued bytes first (a stalled reader is
        still aborted by the stall timer), else abort."""
        if self.transport is None:
            return
        if graceful:
            if not self.closed:
                self.transport.close()
        else:
            self.transport.abort()
        self.closed = True

    def statistics(self) -> Statistics:
        return self.conn.statistics()


class RtspListener(TcpListener):
    """The running RTSP server: ``port``, ``udp_ports``, ``statistics()``, ``close()``.
    ``errors`` also counts sessions closed for a stalled reader."""

    connections: set[RtspServerProtocol]

    def __init__(self, hub: Hub, config: Config) -> None:
        super().__init__(hub, config)
        self.session_timeout = 60
        self.udp: _UdpPair | None = None
        self.pumps_udp = PumpScheduler(0)  # UDP players: not merged (see ``_wake``)
        self.sources = None  # io.sources.SourceManager (set by the App): on-demand cameras

    def auth(self, side: str) -> ServerAuth | None:
        """A fresh ``ServerAuth`` (own nonce) for one connection's ``side`` ("read" or
        "publish"), or None when the config leaves that side open."""
        cfg = self.config
        user = getattr(cfg, f"rtsp_{side}_user")
        if not user:
            return None
        return ServerAuth({user: getattr(cfg, f"rtsp_{side}_password")}, AUTH_REALM,
                          secrets.token_hex(16), basic=cfg.rtsp_auth_basic)

    @property
    def udp_ports(self) -> tuple[int, int] | None:
        return self.udp.ports if self.udp is not None else None

    def statistics(self) -> Statistics:
        stats = [c.conn.statistics() for c in self.connections]
        udp = self.udp
        return Statistics(
            frames_in=sum(s.frames_in for s in stats), bytes_in=sum(s.bytes_in for s in stats),
            bytes_out=sum(s.bytes_out for s in stats),
            extra=(("connections", len(stats)), ("protocol_errors", self.errors),
                   ("udp_datagrams", udp.datagrams if udp else 0),
                   ("udp_unrouted", udp.unrouted if udp else 0)))

    async def close(self) -> None:
        if self.udp is not None:
            self.udp.close()
            self.udp = None
        await super().close()


async def start(hub: Hub, config: Config, host: str, port: int) -> RtspListener:
    """Listen for RTSP on ``host:port`` (0 = any free port) plus the UDP pair
    ``config.rtsp_udp_rtp_port`` (0 = any even free pair). Returns the listener.
    Raises ``OSError`` when a port is taken."""
    lst = RtspListener(hub, config)
    lst.udp = _UdpPair(asyncio.get_running_loop(), host, config.rtsp_udp_rtp_port)
    try:
        await lst.listen(lambda: RtspServerProtocol(lst), host, port)
    except OSError:
        lst.udp.close()
        raise
    return lst
