"""Sans-IO RTSP/1.0 server connection (RFC 2326 sections 10, 12; flows and quirks from the
digest sections 1-3, 10): players DESCRIBE/SETUP/PLAY, publishers ANNOUNCE/SETUP/RECORD.

Use (the asyncio adapter in ``io/`` does exactly this)::

    conn = ServerConnection(session_id=secrets.token_hex(8), udp_ports=(8000, 8001))
    # on data:   conn.receive_data(data, now); then drain conn.next_event() until None
    # on events: DescribeRequest -> conn.accept_describe(tracks) | conn.reject(404)
    #            AnnounceRequest -> conn.accept_announce() | conn.reject(400)
    #            PlayRequest     -> conn.accept_play({track_id: (seq, rtptime)}); then
    #                               conn.send_rtp(track_id, packet) (TCP) or UDP sendto
    #            RecordRequest   -> conn.accept_record(); MediaReceived/TrackChanged follow
    #            Teardown        -> close
    # always:    transport.writelines(conn.data_to_send())
    # timer:     conn.handle_timer(now) at conn.next_deadline()
    # UDP in:    conn.receive_udp(track_id, is_rtcp, data, now) after demux by source address

OPTIONS, SETUP, GET_PARAMETER, SET_PARAMETER, PAUSE and TEARDOWN are answered here. Requests
that need the application wait for its answer; further requests queue behind (interleaved
frames do not). Session ids come from the caller (no dashes: they confuse some clients, per
gortsplib); the advertised timeout is ``SESSION_GRACE`` seconds below the enforced one. UDP
``destination=`` is ignored (it would make us a reflector). SETUP before DESCRIBE/ANNOUNCE on
the same connection is refused with 455. After TEARDOWN (or a timeout) the connection is
closed and ignores further input: an adapter reading UDP should hand over the datagrams
already queued before the TCP bytes that carry TEARDOWN (FFmpeg sends its last RTP just
before it), and flushed media (reorder buffers, DTS extractors) comes out before Teardown.
"""

from __future__ import annotations

import dataclasses
from collections import deque

from rtmpgop.errors import ProtocolError, RTSPError, Unsupported
from rtmpgop.media import Statistics, Track
from rtmpgop.protocol.rtp.receiver import TrackReceiver, last_sender_report
from rtmpgop.protocol.rtsp import events as ev
from rtmpgop.protocol.rtsp import headers as hdr
from rtmpgop.protocol.rtsp.auth import ServerAuth
from rtmpgop.protocol.rtsp.message import (
    Headers, InterleavedFrame, MessageReader, Request, Response, encode_frame)
from rtmpgop.protocol.rtsp.sdp import SessionDescription, format_sdp, parse_sdp
from rtmpgop.protocol.rtsp.sdp_tracks import depacketizer_for, media_for_track, track_from_media
from rtmpgop.protocol.rtsp.urls import request_path, split_control

PUBLIC = ("OPTIONS", "DESCRIBE", "ANNOUNCE", "SETUP", "PLAY", "RECORD", "PAUSE",
          "GET_PARAMETER", "SET_PARAMETER", "TEARDOWN")
DEFAULT_SESSION_TIMEOUT = 60  # seconds advertised in "Session: id;timeout=N" (RFC 2326 12.37)
SESSION_GRACE = 5
"""Seconds we wait beyond the advertised timeout: Windows Media Foundation pings exactly at
the stated interval, so enforcing the advertised value would drop it."""
MAX_QUEUED_REQUESTS = 8  # pipelined requests held while the app answers one; more is abuse


class _Setup:
    __slots__ = ("index", "transport", "channels")

    def __init__(self, index: int, transport: hdr.Transport) -> None:
        self.index = index
        self.transport = transport
        self.channels = transport.interleaved


class ServerConnection:
    """One RTSP control connection (see module docstring)."""

    def __init__(self, session_id: str, *, read_auth: ServerAuth | None = None,
                 publish_auth: ServerAuth | None = None,
                 udp_ports: tuple[int, int] | None = None,
                 session_timeout: int = DEFAULT_SESSION_TIMEOUT, server_name: str = "rtmpgop",
                 receiver_ssrc: int = 0) -> None:
        if "-" in session_id or not session_id:
            raise ValueError("session id must be non-empty and without dashes")
        self.session_id = session_id
        self.read_auth = read_auth
        self.publish_auth = publish_auth
        self.udp_ports = udp_ports
        self.session_timeout = session_timeout
        self.server_name = server_name
        self.receiver_ssrc = receiver_ssrc
        self._reader = MessageReader()
        self._out: list[bytes | memoryview] = []
        self._events: deque = deque()
        self._queued: deque[Request] = deque()
        self._pending: Request | None = None
        self.mode: str | None = None  # "play" or "record"
        self.path = ""
        self.query = ""
        self.base_url = ""
        self.tracks: list[Track | None] = []  # per SDP media; None = carried but unsupported
        self._controls: list[str] = []
        self._media: list = []
        self.setups: dict[int, _Setup] = {}
        self._by_channel: dict[int, tuple[int, bool]] = {}
        self._receivers: dict[int, TrackReceiver] = {}
        self._rtp_rx: dict[int, TrackReceiver] = {}  # RTP channel -> receiver, while recording
        self.session_started = False
        self.playing = False
        self.recording = False
        self.closed = False
        self.last_activity: float | None = None
        self.requests = 0
        self.bytes_in = 0
        self.bytes_out = 0

    # -- I/O ------------------------------------------------------------------------
    def receive_data(self, data: bytes | memoryview, now: float | None = None) -> None:
        """Feed bytes from the TCP connection; ``now`` (seconds) refreshes the session."""
        if self.closed:
            return
        self.bytes_in += len(data)
        if now is not None:
            self.last_activity = now
        self._reader.receive_data(data)

    def data_to_send(self) -> list[bytes | memoryview]:
        """Buffers for one ``transport.writelines`` call (empties the queue)."""
        out, self._out = self._out, []
        return out

    def next_event(self):
        """The next event, or None when more input (or an answer) is needed.

        Raises ``RTSPError`` on a malformed stream (answer ``.status`` and close).
        """
        events, next_message, rtp_rx = self._events, self._reader.next_message, self._rtp_rx
        while not events:
            if self.closed:
                return None
            if self._pending is None and self._queued:
                self._handle(self._queued.popleft())
                continue
            msg = next_message()
            if msg is None:
                return None
            if type(msg) is InterleavedFrame:
                rx = rtp_rx.get(msg.channel)
                if rx is not None:  # RTP of a recorded track: once per packet
                    self._rtp_in(rx, msg.payload, self.last_activity)
                    continue
                hit = self._by_channel.get(msg.channel)
                if hit is not None:  # else a channel nobody set up (FFmpeg's early RTCP)
                    self._media_packet(hit[0], hit[1], msg.payload, self.last_activity)
            elif isinstance(msg, Request):
                if self._pending is not None:
                    if len(self._queued) >= MAX_QUEUED_REQUESTS:
                        raise RTSPError("too many pipelined requests", status=503)
                    self._queued.append(msg)
                else:
                    self._handle(msg)
            # Responses from a client are ignored (we send no requests).
        return events.popleft()

    def receive_udp(self, track_id: int, is_rtcp: bool, data: bytes | memoryview,
                    now: float) -> None:
        """Feed a datagram the adapter demultiplexed to this session (by source address)."""
        if self.closed:
            return
        self.last_activity = now
        for index, s in self.setups.items():
            t = self.tracks[index]
            if t is not None and t.id == track_id:
                self._media_packet(index, is_rtcp, data, now)
                return

    def next_deadline(self) -> float | None:
        """When ``handle_timer`` must run next (seconds on the caller's clock), or None."""
        if self.closed or self.last_activity is None:
            return None
        return self.last_activity + self.session_timeout + SESSION_GRACE

    def handle_timer(self, now: float) -> None:
        """Expire the session after ``session_timeout + SESSION_GRACE`` s of silence."""
        if self.closed:
            return
        if self.last_activity is None:
            self.last_activity = now
        elif now >= self.last_activity + self.session_timeout + SESSION_GRACE:
            self.closed = True
            self._events.append(ev.Teardown("session timeout"))

    # -- answers --------------------------------------------------------------------
    def _take_pending(self, method: str) -> Request:
        req = self._pending
        if req is None or req.method != method:
            raise RuntimeError(f"no pending {method} request")
        self._pending = None
        return req

    def reject(self, status: int, reason: str = "") -> None:
        """Answer the pending request with an error status."""
        req = self._pending
        if req is None:
            raise RuntimeError("no pending request")
        self._pending = None
        self._respond(req, status, reason=reason)

    def accept_describe(self, tracks, session_name: str = "Stream") -> None:
        """Answer DESCRIBE with an SDP of ``tracks`` (list of Track or a TrackSet). Tracks
        RTSP cannot carry are left out; none left means 404."""
        req = self._take_pending("DESCRIBE")
        tracks = list(getattr(tracks, "tracks", tracks))
        media, kept = [], []
        for t in tracks:
            try:
                media.append(media_for_track(t, f"trackID={len(kept)}"))
                kept.append(t)
            except Unsupported:
                continue
        if not kept:
            self._respond(req, 404, reason="Not Found")
            return
        self.mode = "play"
        self.tracks = kept
        self._controls = [m.control for m in media]
        self._media = media
        self.base_url = req.url.rstrip("/") + "/"
        body = format_sdp(SessionDescription(media=tuple(media), name=session_name))
        self._respond(req, 200, [("Content-Type", "application/sdp"),
                                 ("Content-Base", self.base_url)], body)

    def accept_announce(self) -> None:
        """Accept the pending ANNOUNCE (the publisher will SETUP each media next)."""
        req = self._take_pending("ANNOUNCE")
        self.mode = "record"
        self._respond(req, 200)

    def accept_play(self, rtp_info: dict[int, tuple[int, int]] | None = None) -> None:
        """Answer PLAY. ``rtp_info``: track id -> (next sequence number, next RTP timestamp)
        of its packetizer. Send RTP only after this (the response is queued first)."""
        req = self._take_pending("PLAY")
        infos = []
        for index in sorted(self.setups):
            t = self.tracks[index]
            if t is not None and rtp_info and t.id in rtp_info:
                seq, ts = rtp_info[t.id]
                infos.append(hdr.RTPInfo(self.base_url + self._controls[index], seq, ts))
        extra = [("Range", hdr.Range().format())]
        if infos:
            extra.append(("RTP-Info", hdr.format_rtp_info(infos)))
        self._respond(req, 200, extra)
        self.playing = True

    def accept_record(self) -> None:
        """Answer RECORD; incoming media is turned into MediaReceived events from now on."""
        req = self._take_pending("RECORD")
        self._respond(req, 200)
        self.recording = True
        self._route_rtp()

    def _route_rtp(self) -> None:
        """Map the interleaved RTP channels of recorded tracks to their receivers (in place:
        ``next_event`` holds the dict while it runs)."""
        self._rtp_rx.clear()
        self._rtp_rx.update((s.channels[0], self._receivers[i]) for i, s in self.setups.items()
                            if self.recording and s.channels and i in self._receivers)

    # -- play output ----------------------------------------------------------------
    def send_rtp(self, track_id: int, packet: bytes | memoryview, rtcp: bool = False) -> None:
        """Queue an RTP (or RTCP) packet of ``track_id`` as an interleaved frame.

        Raises ``RuntimeError`` before PLAY was accepted or for a UDP/absent track (send
        UDP yourself to ``peer_ip:transport.client_port``).
        """
        if not self.playing:
            raise RuntimeError("send_rtp before PLAY was answered")
        for s in self.setups.values():
            t = self.tracks[s.index]
            if t is not None and t.id == track_id and s.channels is not None:
                ch = s.channels[1] if rtcp else s.channels[0]
                self._out += encode_frame(ch, packet)
                self.bytes_out += 4 + len(packet)
                return
        raise RuntimeError(f"track {track_id} is not set up over TCP")

    def setup_of(self, track_id: int) -> hdr.Transport | None:
        """The negotiated transport of a track, or None when it is not set up."""
        for s in self.setups.values():
            t = self.tracks[s.index]
            if t is not None and t.id == track_id:
                return s.transport
        return None

    def receiver_reports(self, now: float) -> list[tuple[int, bytes]]:
        """Record mode: (track id, RTCP RR + SDES CNAME) per set-up track, to send on its RTCP
        channel (``setup_of(track_id).interleaved[1]``) or to its client RTCP port. Before any
        RTP arrived an RR has no report block."""
        return [(rx.track.id, rx.receiver_report(now)) for index, rx in self._receivers.items()
                if index in self.setups]

    def sender_report(self, track_id: int):
        """Record mode: the publisher's last RTCP ``SenderReport`` for ``track_id`` (NTP <->
        RTP timestamp), or None before one arrived."""
        return last_sender_report(self._receivers.values(), track_id)

    def statistics(self) -> Statistics:
        frames = sum(r.frames for r in self._receivers.values())
        nbytes = sum(r.bytes for r in self._receivers.values())
        return Statistics(frames_in=frames, bytes_in=self.bytes_in, bytes_out=self.bytes_out,
                          extra=(("requests", self.requests), ("media_bytes_in", nbytes),
                                 ("mode", self.mode)))

    # -- internals ------------------------------------------------------------------
    def _respond(self, req: Request, status: int, extra: list | None = None, body: bytes = b"",
                 reason: str = "") -> None:
        h: list[tuple[str, str]] = []
        if req.cseq is not None:
            h.append(("CSeq", req.cseq))
        h.append(("Server", self.server_name))
        if self.session_started and req.method not in ("ANNOUNCE", "TEARDOWN", "SETUP"):
            h.append(("Session", self.session_id))
        h += extra or []
        data = Response(status, Headers(tuple(h)), body, reason).to_bytes()
        self.bytes_out += len(data)
        self._out.append(data)

    def _auth(self, req: Request, auth: ServerAuth | None) -> bool:
        if auth is None:
            return True
        ok, stale = auth.verify(req.method, req.url, req.headers.get("Authorization"))
        if not ok:
            self._respond(req, 401, [("WWW-Authenticate", c) for c in auth.challenges(stale)])
        return ok

    def _mode_auth(self) -> ServerAuth | None:
        return self.publish_auth if self.mode == "record" else self.read_auth

    def _handle(self, req: Request) -> None:
        self.requests += 1
        if req.cseq is None:
            self._respond(req, 400, reason="Missing CSeq")
            return
        if req.version != "RTSP/1.0":
            self._respond(req, 505)
            return
        sess = req.headers.get("Session")
        if sess is not None and self.session_started and req.method != "SETUP":
            try:
                sid = hdr.parse_session(sess).id
            except RTSPError:
                sid = ""
            if sid != self.session_id:
                self._respond(req, 454)
                return
        handler = getattr(self, "_on_" + req.method.lower(), None)
        if req.method not in PUBLIC or handler is None:
            self._respond(req, 501)
            return
        try:
            handler(req)
        except RTSPError as e:
            self._pending = None
            self._respond(req, e.status, reason=str(e)[:60])

    def _on_options(self, req: Request) -> None:
        self._respond(req, 200, [("Public", hdr.format_public(PUBLIC))])

    def _on_describe(self, req: Request) -> None:
        if not self._auth(req, self.read_auth):
            return
        path, query = request_path(req.url)
        self.path, self.query = path, query
        self._pending = req
        self._events.append(ev.DescribeRequest(path, query, req.url))

    def _on_announce(self, req: Request) -> None:
        if not self._auth(req, self.publish_auth):
            return
        if self.mode is not None:
            raise RTSPError("ANNOUNCE after DESCRIBE/ANNOUNCE", status=455)
        ctype = (req.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/sdp":
            raise RTSPError("ANNOUNCE needs Content-Type: application/sdp", status=400)
        try:
            sd = parse_sdp(req.body)
        except ProtocolError as e:
            raise RTSPError(f"bad SDP: {e}", status=400) from None
        path, query = request_path(req.url)
        tracks: list[Track | None] = []
        kept = []
        for m in sd.media:
            try:
                t = track_from_media(m, len(kept))
                depacketizer_for(m, t)  # refuse here what we could not receive later
            except Unsupported:
                tracks.append(None)
                continue
            except ProtocolError as e:
                raise RTSPError(f"bad SDP media: {e}", status=400) from None
            tracks.append(t)
            kept.append(t)
        if not kept:
            raise RTSPError("no supported media in ANNOUNCE", status=415)
        self.path, self.query = path, query
        self.tracks = tracks
        self._media = list(sd.media)
        self._controls = [m.control or "" for m in sd.media]
        self.base_url = req.url.rstrip("/") + "/"
        self._pending = req
        self._events.append(ev.AnnounceRequest(path, query, req.url, tuple(kept),
                                               len(tracks) - len(kept)))

    def _choose_transport(self, value: str | None) -> hdr.Transport:
        if not value:
            raise RTSPError("SETUP without Transport", status=461)
        for t in hdr.parse_transport(value):
            if t.profile != "RTP/AVP" or not t.unicast:
                continue
            if t.protocol == "TCP" or (self.udp_ports is not None and t.client_port):
                return t
        raise RTSPError("no supported transport", status=461)

    def _on_setup(self, req: Request) -> None:
        if self.mode is None:
            raise RTSPError("SETUP before DESCRIBE or ANNOUNCE", status=455)
        if self.playing or self.recording:
            raise RTSPError("SETUP while playing/recording", status=455)
        if not self._auth(req, self._mode_auth()):
            return
        path, _, index = split_control(req.url, self._controls)
        if path.strip("/") != self.path:
            raise RTSPError("SETUP for another path", status=400, path=path)
        if index is None:  # base-URL form (VLC, HappyTime): the next media not set up
            free = [i for i in range(len(self.tracks)) if i not in self.setups]
            if not free:
                raise RTSPError("SETUP: every media is already set up", status=455)
            index = free[0]
        t = self._choose_transport(req.headers.get("Transport"))
        if t.protocol == "TCP":
            used = {c for i, s in self.setups.items() if s.channels and i != index
                    for c in s.channels}
            ch = t.interleaved
            if ch is None or ch[0] in used or ch[1] in used:
                first = 0
                while first in used or first + 1 in used:
                    first += 2
                ch = (first, first + 1)
            reply = hdr.Transport("TCP", interleaved=ch)
        else:
            reply = hdr.Transport("UDP", client_port=t.client_port, server_port=self.udp_ports)
        if self.mode == "record":
            reply = dataclasses.replace(reply, mode="record")
        old = self.setups.pop(index, None)
        if old is not None and old.channels:
            for c in old.channels:
                self._by_channel.pop(c, None)
        s = _Setup(index, reply)
        self.setups[index] = s
        if s.channels is not None:
            self._by_channel[s.channels[0]] = (index, False)
            self._by_channel[s.channels[1]] = (index, True)
        self.session_started = True
        self._respond(req, 200, [
            ("Transport", reply.format()),
            ("Session", hdr.Session(self.session_id, self.session_timeout).format())])
        track = self.tracks[index]
        if track is not None:
            if self.mode == "record":
                self._receivers[index] = TrackReceiver(
                    track, depacketizer_for(self._media[index], track),
                    reorder=reply.protocol == "UDP", receiver_ssrc=self.receiver_ssrc)
            self._events.append(ev.SetupDone(track.id, reply))
        self._route_rtp()  # a SETUP during RECORD may move or add channels

    def _on_play(self, req: Request) -> None:
        if not self._auth(req, self.read_auth):
            return
        if self.mode != "play" or not self.setups:
            raise RTSPError("PLAY before SETUP", status=455)
        if req.headers.get("Session") is None:
            raise RTSPError("PLAY without Session", status=454)
        ids = tuple(t.id for i in sorted(self.setups) if (t := self.tracks[i]) is not None)
        self._pending = req
        self._events.append(ev.PlayRequest(self.path, self.query, ids))

    def _on_record(self, req: Request) -> None:
        if not self._auth(req, self.publish_auth):
            return
        if self.mode != "record" or req.headers.get("Session") is None:
            raise RTSPError("RECORD before ANNOUNCE/SETUP", status=455)
        missing = [i for i, t in enumerate(self.tracks) if t is not None and i not in
                   self.setups]
        if missing:
            raise RTSPError("RECORD before every media was set up", status=455,
                            missing=missing)
        self._pending = req
        self._events.append(ev.RecordRequest(
            self.path, self.query, tuple(t for t in self.tracks if t is not None)))

    def _on_pause(self, req: Request) -> None:
        if not self._auth(req, self._mode_auth()):
            return
        if not self.session_started:
            raise RTSPError("PAUSE without a session", status=455)
        self.playing = False
        self._respond(req, 200)
        self._events.append(ev.Paused())

    def _on_get_parameter(self, req: Request) -> None:
        if self._auth(req, self._mode_auth() if self.mode else None):
            self._respond(req, 200)

    _on_set_parameter = _on_get_parameter

    def _on_teardown(self, req: Request) -> None:
        if not self._auth(req, self._mode_auth()):
            return
        self._respond(req, 200)
        if self.recording:  # hand over what the reorder buffers and DTS extractors hold
            for rx in self._receivers.values():
                self._emit_items(rx, rx.flush)
        self.closed = True
        self.playing = self.recording = False
        self._events.append(ev.Teardown("teardown"))

    # -- media in -------------------------------------------------------------------
    def _media_packet(self, index: int, is_rtcp: bool, data, now: float | None) -> None:
        # RTCP, and RTP over UDP (TCP RTP goes from ``next_event`` to ``_rtp_in``)
        rx = self._receivers.get(index)
        if rx is None or not self.recording:
            return  # play mode: RTCP receiver reports only refresh the session
        if not is_rtcp:
            self._rtp_in(rx, data, now)
            return
        try:
            rx.receive_rtcp(data, now or 0.0)
        except ProtocolError as e:
            self._events.append(ev.MediaError(rx.track.id, e))

    def _rtp_in(self, rx: TrackReceiver, data, now: float | None) -> None:
        # Runs once per received RTP packet (TCP and UDP): kept flat, no helper calls.
        if len(data) <= 12:  # FFmpeg's "punch" packet, a bare RTP header
            return
        try:
            items = rx.receive_rtp(data, now)
        except ProtocolError as e:
            self._events.append(ev.MediaError(rx.track.id, e))
            return
        if items:
            self._queue_items(items)

    def _queue_items(self, items) -> None:
        append = self._events.append
        for it in items:
            append(ev.TrackChanged(it) if isinstance(it, Track) else ev.MediaReceived(it))

    def _emit_items(self, rx: TrackReceiver, produce) -> None:
        """Run ``produce()`` (a receiver call) and queue its tracks/units as events."""
        try:
            items = produce()
        except ProtocolError as e:
            self._events.append(ev.MediaError(rx.track.id, e))
            return
        self._queue_items(items)
