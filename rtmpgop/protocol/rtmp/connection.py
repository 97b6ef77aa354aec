"""Sans-IO RTMP connections: the shared message layer and the server role (Adobe RTMP 1.0
sections 5-7; command flows and status codes as nginx-rtmp, FFmpeg and MediaMTX use them,
see shared/reference/rtmp.md sections 3 and 5).

Strategy (h11 style): bytes in through ``get_buffer``/``buffer_updated`` (or ``receive_data``),
events out through ``next_event()``, bytes to the peer through ``data_to_send()``. Protocol
control is handled inside: Set Chunk Size/Abort (by the chunk reader), Window Ack Size (we send
an Ack every window), ping requests (answered). Media messages become ``VideoData``/``AudioData``
events whose payload is copied once from the chunk pieces. Timestamps are unwrapped per
(message stream, media type). Peer faults raise ``ProtocolError`` subclasses from
``buffer_updated``; the caller closes the connection.

``ServerConnection`` answers ``createStream`` itself and leaves the decisions (connect, publish,
play) to the caller via ``accept_*``/``reject_*``. The client role lives in ``client.py``.
"""

from __future__ import annotations

from collections import deque

from rtmpgop.errors import ChunkError, LimitExceeded
from rtmpgop.media import Statistics
from rtmpgop.protocol import amf0, flv
from rtmpgop.protocol.rtmp import handshake
from rtmpgop.protocol.rtmp import messages as m
from rtmpgop.protocol.rtmp.chunk import ChunkReader, Pieces, RawMessage, chunk_message
from rtmpgop.protocol.rtmp.events import (
    AudioData, Connect, CreateStream, DeleteStream, Event, HandshakeComplete, Metadata, Play,
    Publish, Unpublish, VideoData)
from rtmpgop.protocol.rtmp.messages import MessageType as T

MAX_STREAMS_PER_CONNECTION = 8
"""``createStream`` calls honoured per connection (a publisher or player needs one)."""

MAX_AGGREGATE_TAGS = 1024
"""Sub-messages walked in one aggregate message (FMS relays pack a few dozen)."""

_U32 = 1 << 32


class RtmpConnection:
    """Shared machinery of both roles: buffers, chunking, control, media parsing."""

    def __init__(self) -> None:
        self.reader = ChunkReader()
        self.out_chunk_size = 128
        self._out: list = []
        self._events: deque[Event] = deque()
        self._handshaking = True
        self._paused = False  # a decision event is waiting to be taken
        self._ack_window = 0
        self._acked = 0
        self._ts: dict[tuple[int, int], tuple[int, int]] = {}
        self.bytes_sent = 0
        self.media_messages = 0
        self.ignored_messages = 0  # unknown types, media on a stream not publishing, ...
        self.ignored_tracks = 0  # E-RTMP multitrack entries other than track 0
        self.closed = False

    # ------------------------------------------------------------------ bytes in / out
    def get_buffer(self, sizehint: int = -1) -> memoryview:
        """A view to ``recv_into`` (``asyncio.BufferedProtocol``)."""
        return self.reader.get_buffer(sizehint)

    def buffer_updated(self, nbytes: int) -> None:
        """Parse ``nbytes`` newly received bytes. Raises ``ProtocolError`` on bad input."""
        self.reader.buffer_updated(nbytes)
        self._process()

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Copy ``data`` in and parse it (tests, non-buffered transports)."""
        self.reader.feed(data)
        self._process()

    def next_event(self) -> Event | None:
        """The next event, or None when more input is needed.

        Parsing stops after an event that needs a decision (``Connect``, ``Publish``, ``Play``)
        and resumes here once that event was taken, so the decision (``accept_*``) is made
        before later commands of a pipelining peer are answered."""
        if not self._events and self._paused:
            self._paused = False
            self._process()
        return self._events.popleft() if self._events else None

    def data_to_send(self) -> list:
        """Buffers queued for the peer, for one ``transport.writelines`` call (then cleared)."""
        out = self._out
        if not out:
            return []
        self._out = []
        self.bytes_sent += sum(len(b) for b in out)
        return out

    def send(self, msg: m.Message) -> None:
        """Queue one message (chunked with the current outgoing chunk size)."""
        self._out.extend(chunk_message(msg.csid, msg.msid, msg.type_id, msg.timestamp, msg.body,
                                       self.out_chunk_size))
        if msg.type_id == T.SET_CHUNK_SIZE:
            self.out_chunk_size = int.from_bytes(msg.body[0:4], "big")

    def set_chunk_size(self, size: int) -> None:
        """Announce and adopt an outgoing chunk size."""
        self.send(m.set_chunk_size(size))

    def send_ping(self, now_ms: int) -> None:
        """A PingRequest for liveness; the peer answers with a PingResponse."""
        self.send(m.user_control(m.UserControl.PING_REQUEST, now_ms))

    @property
    def handshaking(self) -> bool:
        """True until the handshake is complete."""
        return self._handshaking

    @property
    def bytes_received(self) -> int:
        return self.reader.bytes_received

    def statistics(self) -> Statistics:
        """Bytes received/sent and copied, message counters (``extra``)."""
        r = self.reader
        return Statistics(
            frames_in=self.media_messages, bytes_in=r.bytes_received, bytes_out=self.bytes_sent,
            extra=(("bytes_copied", r.bytes_copied), ("messages", r.messages),
                   ("ignored_messages", self.ignored_messages), ("ignored_tracks", self.ignored_tracks),
                   ("in_chunk_size", r.chunk_size), ("out_chunk_size", self.out_chunk_size)))

    # ------------------------------------------------------------------ parsing
    def _process(self) -> None:
        if self._handshaking:
            self._handshake()
            if self._handshaking:
                return
        if self._ack_window and self.reader.bytes_received - self._acked >= self._ack_window:
            self._acked = self.reader.bytes_received
            self.send(m.ack(self._acked))
        while not self._paused and (msg := self.reader.next_message()) is not None:
            self._on_message(msg)

    def _decision(self, ev: Event) -> None:
        self._events.append(ev)
        self._paused = True

    def _handshake(self) -> None:  # role-specific
        raise NotImplementedError

    def _unwrap(self, msid: int, type_id: int, ts: int) -> int:
        key = (msid, type_id)
        prev = self._ts.get(key)
        if prev is None:
            val = ts
        else:
            diff = (ts - prev[0]) % _U32
            if diff >= _U32 // 2:
                diff -= _U32
            val = prev[1] + diff
        self._ts[key] = (ts, val)
        return val

    def _on_message(self, msg: RawMessage) -> None:
        t, body = msg.type_id, msg.body
        if t in (T.SET_CHUNK_SIZE, T.ABORT, T.ACK):
            return  # chunk size / abort applied by the reader; acks need nothing
        if t == T.USER_CONTROL:
            event, values = m.parse_user_control(body)
            if event == m.UserControl.PING_REQUEST and values:
                self.send(m.user_control(m.UserControl.PING_RESPONSE, values[0]))
            return
        if t == T.WINDOW_ACK_SIZE:
            self._ack_window = m.parse_u32(body)
            return
        if t == T.SET_PEER_BANDWIDTH:
            return
        if t in (T.VIDEO, T.AUDIO):
            self._on_media(msg.msid, t, msg.timestamp, body)
        elif t in (T.DATA_AMF0, T.DATA_AMF3):
            self._on_data(msg.msid, msg.timestamp, m.parse_data(body, t == T.DATA_AMF3))
        elif t in (T.COMMAND_AMF0, T.COMMAND_AMF3):
            self._on_command(msg.msid, m.parse_command(body, t == T.COMMAND_AMF3))
        elif t == T.AGGREGATE:
            self._on_aggregate(msg)
        else:
            self.ignored_messages += 1  # shared objects, unknown types

    def _on_aggregate(self, msg: RawMessage) -> None:
        """FLV tags packed in one message; timestamps relative to the first tag (spec 7.1.6)."""
        body, pos, first, n = msg.body, 0, None, 0
        while pos + 11 <= len(body):
            n += 1
            if n > MAX_AGGREGATE_TAGS:
                raise LimitExceeded("MAX_AGGREGATE_TAGS", n, MAX_AGGREGATE_TAGS)
            h = body[pos:pos + 11]
            t, size = h[0], int.from_bytes(h[1:4], "big")
            ts = int.from_bytes(h[4:7], "big") | (h[7] << 24)
            if pos + 11 + size > len(body):
                raise ChunkError("aggregate sub-message overruns its message", size=size, offset=pos)
            first = ts if first is None else first
            sub = RawMessage(msg.csid, msg.msid, t, (msg.timestamp + ts - first) % _U32,
                             _slice(body, pos + 11, pos + 11 + size))
            if t in (T.AUDIO, T.VIDEO, T.DATA_AMF0):
                self._on_message(sub)
            pos += 11 + size + 4

    def _on_media(self, msid: int, t: int, ts32: int, body: Pieces) -> None:
        if not self._accepts_media(msid):
            self.ignored_messages += 1
            return
        head = body.head
        tag = flv.parse_video(body, head) if t == T.VIDEO else flv.parse_audio(body, head)
        if tag.extra_tracks:
            self.ignored_tracks += tag.extra_tracks
        if tag.track != 0:
            self.ignored_tracks += 1
            return
        ts = self._unwrap(msid, t, ts32)
        self.media_messages += 1
        payload = body.to_bytes(tag.offset, tag.offset + tag.length)
        ev = VideoData(msid, ts, tag, payload) if t == T.VIDEO else AudioData(msid, ts, tag, payload)
        self._events.append(ev)

    def _accepts_media(self, msid: int) -> bool:
        return True

    def _on_data(self, msid: int, ts32: int, values: list) -> None:
        if values and values[0] == "@setDataFrame":
            values = values[1:]
        if len(values) >= 2 and values[0] == "onMetaData" and isinstance(values[1], dict):
            pairs = tuple((str(k), v) for k, v in values[1].items())
            self._events.append(Metadata(msid, pairs, ts32))
        else:
            self.ignored_messages += 1  # |RtmpSampleAccess, onTextData, onCuePoint ...

    def _on_command(self, msid: int, cmd: m.Command) -> None:  # role-specific
        raise NotImplementedError


def _slice(body: Pieces, start: int, stop: int) -> Pieces:
    """A zero-copy sub-range of ``body``."""
    views, pos = [], 0
    for v in body.views:
        n = len(v)
        a, b = max(start - pos, 0), min(stop - pos, n)
        if a < b:
            views.append(v[a:b])
        pos += n
    return Pieces(views, body._counter)


def split_name(raw: object) -> tuple[str, str]:
    """``"key?token=x"`` -> ``("key", "token=x")``; non-strings -> ``("", "")``."""
    if not isinstance(raw, str):
        return "", ""
    name, _, query = raw.partition("?")
    return name, query


class ServerConnection(RtmpConnection):
    """The server side of one RTMP connection (a publisher or a player)."""

    def __init__(self) -> None:
        super().__init__()
        self.digest_handshake = False
        self.connected = False
        self.app = ""
        self.fourccs: frozenset[str] = frozenset()
        self.object_encoding = 0.0
        self._next_msid = 1
        self._streams: set[int] = set()
        self.publishing: dict[int, str] = {}  # msid -> name, from the publish command on
        self.playing: dict[int, str] = {}  # msid -> name, after accept_play
        self.c2_mismatch = False

    # ------------------------------------------------------------------ handshake
    def _handshake(self) -> None:
        r = self.reader
        if not hasattr(self, "_c1"):
            if r.available() < 1:
                return
            head = r.read_raw(1)
            handshake.check_c0(head[0])
            self._c1 = None
        if self._c1 is None:
            c1 = r.read_raw(handshake.PACKET_SIZE)
            if c1 is None:
                return
            self._c1 = c1
            resp, self.digest_handshake = handshake.server_response(c1)
            self._s1 = resp[1:1 + handshake.PACKET_SIZE]
            self._out.append(resp)
        c2 = r.read_raw(handshake.PACKET_SIZE)
        if c2 is None:
            return
        self.c2_mismatch = c2[8:] != self._s1[8:]  # only logged: FFmpeg signs C2 differently
        self._handshaking = False
        del self._c1, self._s1
        self._events.append(HandshakeComplete(self.digest_handshake))

    # ------------------------------------------------------------------ commands in
    def _on_command(self, msid: int, cmd: m.Command) -> None:
        name, args = cmd.name, cmd.args
        if name == "connect":
            obj = cmd.obj if isinstance(cmd.obj, dict) else {}
            fourccs = obj.get("fourCcList")
            fourccs = tuple(f for f in fourccs if isinstance(f, str)) if isinstance(fourccs, list) else ()
            tc = obj.get("tcUrl", obj.get("tcurl", ""))
            enc = obj.get("objectEncoding", 0.0)
            self._decision(Connect(
                cmd.transaction, str(obj.get("app", "")), tc if isinstance(tc, str) else "",
                fourccs, enc if isinstance(enc, float) else 0.0, dict(obj)))
            return
        if not self.connected:
            self.ignored_messages += 1  # nothing but connect before connect
            return
        if name == "createStream":
            if len(self._streams) >= MAX_STREAMS_PER_CONNECTION:
                self.send(m.command("_error", cmd.transaction, None,
                                    m.status("error", "NetConnection.Call.Failed", "too many streams")))
                return
            sid = self._next_msid
            self._next_msid += 1
            self._streams.add(sid)
            self.send(m.command("_result", cmd.transaction, None, float(sid)))
            self._events.append(CreateStream(cmd.transaction, sid))
        elif name == "publish":
            key, query = split_name(args[0] if args else None)
            kind = args[1] if len(args) > 1 and isinstance(args[1], str) else "live"
            self.publishing[msid] = key
            self._decision(Publish(msid, key, kind, query, cmd.transaction))
        elif name == "play":
            key, query = split_name(args[0] if args else None)
            start = args[1] if len(args) > 1 and isinstance(args[1], float) else -2.0
            self._decision(Play(msid, key, start, query, cmd.transaction))
        elif name == "releaseStream":
            self.send(m.command("_result", cmd.transaction, None, amf0.UNDEFINED))
        elif name == "getStreamLength":
            self.send(m.command("_result", cmd.transaction, None, 0.0))
        elif name == "FCUnpublish":
            key, _ = split_name(args[0] if args else None)
            sid = next((s for s, n in self.publishing.items() if n == key), 0)
            self._events.append(Unpublish(sid, key))
        elif name in ("deleteStream", "closeStream"):
            sid = msid
            if name == "deleteStream" and args and isinstance(args[0], float):
                sid = int(args[0])
            self._streams.discard(sid)
            self.publishing.pop(sid, None)
            self.playing.pop(sid, None)
            self._events.append(DeleteStream(sid))
        else:
            self.ignored_messages += 1  # FCPublish, FCSubscribe, _checkbw, receiveAudio ...

    def _accepts_media(self, msid: int) -> bool:
        return msid in self.publishing

    # ------------------------------------------------------------------ decisions
    def accept_connect(self, ev: Connect, window: int = m.DEFAULT_WINDOW,
                       chunk_size: int = m.OUT_CHUNK_SIZE) -> None:
        """Window Ack Size, Set Peer Bandwidth, Set Chunk Size, then ``_result`` (the order
        nginx, FFmpeg and gortmplib use)."""
        self.connected = True
        self.app = ev.app
        self.fourccs = frozenset(ev.fourccs)
        self.object_encoding = ev.object_encoding
        self.send(m.window_ack_size(window))
        self.send(m.set_peer_bandwidth(window, 2))
        self.set_chunk_size(chunk_size)
        self.send(m.command("_result", ev.transaction,
                            {"fmsVer": "FMS/3,0,1,123", "capabilities": 31.0},
                            m.status("status", "NetConnection.Connect.Success", "Connection succeeded.",
                                     objectEncoding=ev.object_encoding)))

    def reject_connect(self, ev: Connect, description: str = "rejected") -> None:
        self.send(m.command("_error", ev.transaction, None,
                            m.status("error", "NetConnection.Connect.Rejected", description)))

    def accepts_fourcc(self, fourcc: str) -> bool:
        """Whether the player's connect listed ``fourcc`` (or "*") in its fourCcList."""
        return fourcc in self.fourccs or "*" in self.fourccs

    def accept_publish(self, ev: Publish) -> None:
        """StreamBegin then ``NetStream.Publish.Start`` on the publish msid."""
        self.send(m.user_control(m.UserControl.STREAM_BEGIN, ev.msid))
        self.send(m.on_status(ev.msid, "status", "NetStream.Publish.Start", f"{ev.name} is now published."))

    def reject_publish(self, ev: Publish, code: str = "NetStream.Publish.BadName",
                       description: str = "") -> None:
        """An error ``onStatus`` (``BadName`` when the path is busy); media is ignored after it."""
        self.publishing.pop(ev.msid, None)
        self.send(m.on_status(ev.msid, "error", code, description or f"{ev.name} is already published."))

    def accept_play(self, ev: Play) -> None:
        """StreamBegin, ``Play.Reset``, ``Play.Start``, ``|RtmpSampleAccess`` on the play msid."""
        self.playing[ev.msid] = ev.name
        self.send(m.user_control(m.UserControl.STREAM_BEGIN, ev.msid))
        self.send(m.on_status(ev.msid, "status", "NetStream.Play.Reset", f"Playing and resetting {ev.name}."))
        self.send(m.on_status(ev.msid, "status", "NetStream.Play.Start", f"Started playing {ev.name}."))
        self.send(m.data("|RtmpSampleAccess", True, True, msid=ev.msid))

    def reject_play(self, ev: Play, code: str = "NetStream.Play.StreamNotFound", description: str = "") -> None:
        self.send(m.on_status(ev.msid, "error", code, description or f"{ev.name} not found."))

    def send_unpublish_notify(self, msid: int) -> None:
        """The publisher left: ``NetStream.Play.UnpublishNotify`` (the player stays connected)."""
        self.send(m.on_status(msid, "status", "NetStream.Play.UnpublishNotify", "stream is now unpublished."))

    def send_publish_notify(self, msid: int) -> None:
        """A new publisher came: StreamBegin and ``NetStream.Play.PublishNotify``."""
        self.send(m.user_control(m.UserControl.STREAM_BEGIN, msid))
        self.send(m.on_status(msid, "status", "NetStream.Play.PublishNotify", "stream is now published."))
