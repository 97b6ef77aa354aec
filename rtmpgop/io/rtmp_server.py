"""RTMP listener: asyncio adapter around ``ServerConnection`` (publish ingest and play).

``asyncio.BufferedProtocol``: the socket ``recv_into``s the connection's own receive blocks
(``get_buffer``/``buffer_updated``), so chunk bodies are copied once, at message reassembly.
Events go to ``RtmpIngest`` (publishers) or open an ``RtmpPlayer`` (players). A player's
subscription wake-up (called on the publisher's stack) only asks the listener's
``PumpScheduler`` (io/pump.py) to pump the connection; one pass then drains every pending item
of every woken player into one ``transport.writelines`` per batch, while the transport is not
paused (``pause_writing``/``resume_writing``), at the next loop turn or ``play_merge_ms`` after
the first wake-up (merged write). Writing per message cost one ``writev`` per message per player
(py-spy: 80 % of fan-out samples in ``writelines``). With ``rtmp_publish_merge_ms`` a publisher's
socket rests that long after each read (merged read), so one read takes several messages. The
transport never holds more than about ``WRITE_HIGH_WATER`` + one batch.
A player that falls behind is skipped by the hub.

Peer faults (``ProtocolError``) close only that connection with one log line: peer, error
class, message with its fields. No protocol logic lives here.
"""

from __future__ import annotations

import asyncio
import logging

from rtmpgop.channels import Channel, Hub, Subscription
from rtmpgop.config import Config
from rtmpgop.errors import PathBusy, ProtocolError
from rtmpgop.io.listener import TcpListener
from rtmpgop.io.rtmp_ingest import RtmpIngest
from rtmpgop.media import Statistics
from rtmpgop.protocol.rtmp import events as E
from rtmpgop.protocol.rtmp.connection import ServerConnection
from rtmpgop.subscribers.rtmp_play import RtmpPlayer

log = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT = 10.0
"""Seconds from accept to a finished handshake (GStreamer/FFmpeg finish in milliseconds)."""

IDLE_TIMEOUT = 60.0
"""Seconds without a byte from the peer before the connection is closed (nginx: 60 s)."""

PING_INTERVAL = 20.0
"""Seconds between PingRequests: players that only receive still answer, so idle stays live."""

WRITE_HIGH_WATER = 1024 * 1024
"""Bytes queued in a transport before ``pause_writing`` (then players stop draining and the hub
skips them when they fall GoPs behind). Bounds memory per player."""

OUT_CHUNK_SIZE = 60000
"""Chunk size the server sends with (announced at connect). Large like SRS's default (60000) so
that a typical frame leaves in one chunk: fewer headers and buffers per message per player
(fan-out). Every player we know reads any Set Chunk Size (FFmpeg, librtmp, GStreamer, hls.js
has no RTMP); publishers only receive our small command replies with it."""

TIMER_TICK = 1.0
"""Seconds between timeout checks."""


def _path(app: str, name: str) -> str:
    app, name = app.strip("/"), name.strip("/")
    return f"{app}/{name}" if app and name else (app or name)


class RtmpServerProtocol(asyncio.BufferedProtocol):
    """One TCP connection."""

    def __init__(self, listener: RtmpListener) -> None:
        self.listener = listener
        self.hub = listener.hub
        self.conn = ServerConnection()
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self.ingest: RtmpIngest | None = None
        self.channel: Channel | None = None
        self._publish_msid = 0
        self.players: dict[int, RtmpPlayer] = {}
        self._paused = False
        self._read_paused = False
        self.reads = 0  # socket reads (merged read makes them fewer than messages)
        self._timer: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()
        self._started = self._last_rx = self._last_ping = self._loop.time()

    # ------------------------------------------------------------------ asyncio callbacks
    def connection_made(self, transport) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER, low=WRITE_HIGH_WATER // 4)
        self.listener.connections.add(self)
        self._timer = self._loop.call_later(TIMER_TICK, self._tick)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.conn.get_buffer(sizehint)

    def buffer_updated(self, nbytes: int) -> None:
        self._last_rx = self._loop.time()
        self.reads += 1
        try:
            self.conn.buffer_updated(nbytes)
            while (ev := self.conn.next_event()) is not None:
                self._on_event(ev)
        except ProtocolError as e:
            self.listener.errors += 1
            log.warning("rtmp %s closed: %s %s", self.peer, type(e).__name__, e)
            self.close()
            return
        self._flush()
        if (self.channel is not None and self.listener.read_merge_s and not self._read_paused
                and not self.transport.is_closing()):
            # merged read: let the kernel gather the next messages, then take them in one read
            self._read_paused = True
            self.transport.pause_reading()
            self._loop.call_later(self.listener.read_merge_s, self._resume_read)

    def _resume_read(self) -> None:
        self._read_paused = False
        t = self.transport
        if t is not None and not t.is_closing():
            t.resume_reading()

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self.pump()

    def connection_lost(self, exc: Exception | None) -> None:
        self.listener.connections.discard(self)
        if self._timer is not None:
            self._timer.cancel()
        self._end_publish("connection closed")
        for player in self.players.values():
            player.sub.close()
        self.players.clear()

    # ------------------------------------------------------------------ events
    def _on_event(self, ev) -> None:
        c = self.conn
        if isinstance(ev, E.VideoData):
            if self.ingest is not None:
                self.ingest.on_video(ev)
        elif isinstance(ev, E.AudioData):
            if self.ingest is not None:
                self.ingest.on_audio(ev)
        elif isinstance(ev, E.Metadata):
            if self.ingest is not None:
                self.ingest.on_metadata(ev)
        elif isinstance(ev, E.Connect):
            c.accept_connect(ev, chunk_size=OUT_CHUNK_SIZE)
        elif isinstance(ev, E.Publish):
            self._publish(ev)
        elif isinstance(ev, E.Play):
            self._play(ev)
        elif isinstance(ev, (E.Unpublish, E.DeleteStream)):
            if ev.msid in self.players:
                self.players.pop(ev.msid).sub.close()
            elif self.channel is not None and ev.msid == self._publish_msid:
                self._end_publish("unpublished")

    def _publish(self, ev: E.Publish) -> None:
        path = _path(self.conn.app, ev.name)
        if self.channel is not None:
            self.conn.reject_publish(ev, "NetStream.Publish.BadConnection", "already publishing")
            return
        try:
            ch = self.hub.publish(path, self)
        except PathBusy:
            log.info("rtmp %s: publish %s refused: path busy", self.peer, path)
            self.conn.reject_publish(ev)
            return
        except ProtocolError as e:  # InvalidPath
            log.info("rtmp %s: publish %r refused: %s", self.peer, path, e)
            self.conn.reject_publish(ev, description=str(e))
            return
        self.channel = ch
        self._publish_msid = ev.msid
        self.ingest = RtmpIngest(ch, f"{ch.path} from {self.peer}")
        self.conn.accept_publish(ev)
        log.info("rtmp %s publishing %s", self.peer, ch.path)

    def _end_publish(self, reason: str) -> None:
        if self.channel is not None:
            self.hub.unpublish(self.channel, self, reason)
            self.channel = None
            self.ingest = None

    def _play(self, ev: E.Play) -> None:
        path = _path(self.conn.app, ev.name)
        try:
            sub: Subscription = self.hub.subscribe(path, f"rtmp {self.peer}")
        except ProtocolError as e:
            self.conn.reject_play(ev, description=str(e))
            return
        self.conn.accept_play(ev)
        old = self.players.pop(ev.msid, None)
        if old is not None:
            old.sub.close()
        self.players[ev.msid] = RtmpPlayer(self.conn, sub, ev.msid)
        sub.set_wakeup(self._wake)
        log.info("rtmp %s playing %s", self.peer, path)

    # ------------------------------------------------------------------ output
    def _flush(self) -> None:
        if self.players:
            self.pump()
            return
        out = self.conn.data_to_send()
        if out and self.transport is not None and not self.transport.is_closing():
            self.transport.writelines(out)

    def _wake(self) -> None:
        """Subscription wake-up: have the listener pump this connection once, with every other
        woken connection (coalesces the wake-ups of every message the publisher's current
        receive completes, and of every player)."""
        self.listener.pumps.schedule(self)

    def pump(self) -> None:
        """Write players' pending items, one ``writelines`` per batch, while the transport
        accepts more."""
        t = self.transport
        if t is None or t.is_closing():
            return
        players = self.players
        while not self._paused:
            if len(players) == 1:
                for player in players.values():
                    out = player.pull()
                    drained = player.drained
            else:
                out = []
                drained = True
                for player in list(players.values()):
                    out += player.pull()
                    drained = drained and player.drained
            if out:
                t.writelines(out)
            if drained:
                return

    def _tick(self) -> None:
        now = self._loop.time()
        if self.conn.handshaking and now - self._started > HANDSHAKE_TIMEOUT:
            log.warning("rtmp %s closed: handshake timeout (%.0f s)", self.peer, HANDSHAKE_TIMEOUT)
            self.close()
            return
        if now - self._last_rx > IDLE_TIMEOUT:
            log.warning("rtmp %s closed: idle for %.0f s", self.peer, IDLE_TIMEOUT)
            self.close()
            return
        if not self.conn.handshaking and now - self._last_ping >= PING_INTERVAL:
            self._last_ping = now
            self.conn.send_ping(int(now * 1000))
            self._flush()
        self._timer = self._loop.call_later(TIMER_TICK, self._tick)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def statistics(self) -> Statistics:
        return self.conn.statistics()


class RtmpListener(TcpListener):
    """The running RTMP server: ``port``, ``statistics()``, ``close()``."""

    connections: set[RtmpServerProtocol]

    def __init__(self, hub: Hub, config: Config) -> None:
        super().__init__(hub, config)
        self.read_merge_s = config.rtmp_publish_merge_ms / 1000

    def statistics(self) -> Statistics:
        """Totals over open connections: bytes in/out and copied, media messages in, frames
        out and skipped for players; connection, publisher, player and error counts."""
        stats = [c.conn.statistics() for c in self.connections]
        players = [p for c in self.connections for p in c.players.values()]
        return Statistics(
            frames_in=sum(s.frames_in for s in stats), bytes_in=sum(s.bytes_in for s in stats),
            bytes_out=sum(s.bytes_out for s in stats),
            frames_out=sum(p.frames_out for p in players),
            skipped_frames=sum(p.sub.skipped_frames for p in players),
            skipped_bytes=sum(p.sub.skipped_bytes for p in players),
            extra=(("connections", len(stats)), ("protocol_errors", self.errors),
                   ("bytes_copied", sum(dict(s.extra)["bytes_copied"] for s in stats)),
                   ("publishers", sum(c.channel is not None for c in self.connections)),
                   ("players", len(players))))



async def start(hub: Hub, config: Config, host: str, port: int) -> RtmpListener:
    """Listen for RTMP on ``host:port`` (0 = any free port). Returns the listener."""
    lst = RtmpListener(hub, config)
    await lst.listen(lambda: RtmpServerProtocol(lst), host, port)
    return lst
