"""Sans-IO RTSP/1.0 client connection: pull from a camera (OPTIONS, DESCRIBE, SETUP per
track, PLAY, keepalives, TEARDOWN) or push to a server (OPTIONS, ANNOUNCE, SETUP with
mode=record, RECORD). Checklist and quirks: the digest sections 8 and 9.

Use::

    c = ClientConnection("rtsp://user:pass@cam/stream1", cnonce=secrets.token_hex(8))
    c.start(now)                       # queues OPTIONS
    # on data: c.receive_data(data, now); drain c.next_event():
    #   Described(tracks) -> Playing(tracks) -> TrackChanged / MediaReceived ...
    #   Redirect(location) -> reconnect there;  RequestFailed / Teardown -> close
    # always: transport.writelines(c.data_to_send()); timer: c.handle_timer(now) at
    #   c.next_deadline() (keepalives, receiver reports, silence and request timeouts)
    # push mode: ClientConnection(url, mode="record", tracks=[...]); after Playing, call
    #   c.send_access_unit(unit) for each hub access unit
    # c.close() queues TEARDOWN.

Rules followed: 401 -> answer the challenge (Digest preferred) and resend with CSeq+1, then
send Authorization on every request with its own method and URI; credentials never appear in
request lines. Base URL = Content-Base, else Content-Location, else the request URL, with our
host kept (cameras name internal IPs). TCP interleaved by default; the channels the server
names are used. Keepalive at ``timeout - 5`` s (``timeout / 2`` for short timeouts) with
GET_PARAMETER when OPTIONS listed it, else OPTIONS, on the base URL, without waiting for the
answer (some cameras never answer). Receiver reports every ``RR_INTERVAL``.
"""

from __future__ import annotations

from collections import deque

from rtmpgop.errors import ProtocolError, RTSPError, Unsupported
from rtmpgop.media import AccessUnit, Statistics, Track
from rtmpgop.protocol.rtp.receiver import TrackReceiver, last_sender_report
from rtmpgop.protocol.rtsp import events as ev
from rtmpgop.protocol.rtsp import headers as hdr
from rtmpgop.protocol.rtsp.auth import ClientAuth
from rtmpgop.protocol.rtsp.message import (
    Headers, InterleavedFrame, MessageReader, Request, Response, encode_frame)
from rtmpgop.protocol.rtsp.sdp import SessionDescription, format_sdp, parse_sdp, resolve_control
from rtmpgop.protocol.rtsp.sdp_tracks import (
    DYNAMIC_PT, depacketizer_for, media_for_track, packetizer_for, track_from_media)
from rtmpgop.protocol.rtsp.urls import parse_url, split_origin

RR_INTERVAL = 5.0
"""Seconds between RTCP receiver reports: some cameras drop sessions that send none for
longer (gortsplib's default for this reason)."""
REQUEST_TIMEOUT = 10.0  # seconds to wait for an answer to a state-changing request
MEDIA_TIMEOUT = 10.0  # seconds without RTP after PLAY before we give up on the camera
MAX_REDIRECTS = 5


class ClientConnection:
    """One RTSP client session (see module docstring)."""

    def __init__(self, url: str, *, mode: str = "play", tracks: list[Track] | None = None,
                 transport: str = "tcp", udp_client_ports: list[tuple[int, int]] | None = None,
                 user_agent: str = "rtmpgop", cnonce: str = "", receiver_ssrc: int = 0,
                 ssrc_base: int = 0x52544D47, mtu: int = 1200,
                 media_timeout: float = MEDIA_TIMEOUT) -> None:
        if mode not in ("play", "record") or transport not in ("tcp", "udp"):
            raise ValueError("mode play|record, transport tcp|udp")
        if mode == "record" and not tracks:
            raise ValueError("record mode needs tracks")
        if transport == "udp" and not udp_client_ports:
            raise ValueError("udp transport needs client ports per track")
        u = parse_url(url)
        self.url = u.base()
        self.mode = mode
        self.transport = transport
        self.udp_client_ports = udp_client_ports or []
        self.user_agent = user_agent
        self.auth = ClientAuth(u.username, u.password or "") if u.username else None
        self._cnonce = cnonce
        self.receiver_ssrc = receiver_ssrc
        self.ssrc_base = ssrc_base
        self.mtu = mtu
        self.media_timeout = media_timeout
        self._reader = MessageReader()
        self._out: list[bytes | memoryview] = []
        self._events: deque = deque()
        self._cseq = 0
        self._sent: dict[str, Request] = {}
        self._awaiting: tuple[str, float] | None = None  # (cseq, since) of the main request
        self._auth_retried = False
        self.state = "init"
        self.base_url = self.url
        self.session: str | None = None
        self.session_timeout = 60
        self.public: list[str] = []
        self.tracks: list[Track] = list(tracks or [])
        self._media: list = []
        self._setup_index = 0
        self._channels: dict[int, tuple[int, bool]] = {}  # channel -> (track index, is_rtcp)
        self._track_channels: dict[int, tuple[int, int]] = {}
        self._receivers: dict[int, TrackReceiver] = {}
        self._packetizers: dict[int, object] = {}
        self._now = 0.0
        self._next_keepalive: float | None = None
        self._next_rr: float | None = None
        self._last_media: float | None = None
        self.closed = False

    # -- I/O ------------------------------------------------------------------------
    def start(self, now: float) -> None:
        """Queue the first request (OPTIONS)."""
        self._now = now
        self.state = "options"
        self._request("OPTIONS", self.url, main=True)

    def receive_data(self, data: bytes | memoryview, now: float) -> None:
        self._now = now
        if not self.closed:
            self._reader.receive_data(data)

    def data_to_send(self) -> list[bytes | memoryview]:
        out, self._out = self._out, []
        return out

    def next_event(self):
        """The next event, or None. Raises ``RTSPError`` on a malformed stream."""
        while not self._events:
            if self.closed:
                return None
            msg = self._reader.next_message()
            if msg is None:
                return None
            if isinstance(msg, InterleavedFrame):
                self._frame(msg.channel, msg.payload, self._now)
            elif isinstance(msg, Response):
                self._response(msg)
            elif isinstance(msg, Request):
                # Server-to-client requests (ANNOUNCE/GET_PARAMETER from some servers): 501.
                self._out.append(Response(501, Headers.of(
                    [("CSeq", msg.cseq or "0")])).to_bytes())
        return self._events.popleft()

    def receive_udp(self, track_id: int, is_rtcp: bool, data: bytes | memoryview,
                    now: float) -> None:
        """Feed a datagram received on the UDP ports of ``track_id``."""
        for i, t in enumerate(self.tracks):
            if t.id == track_id:
                self._now = now
                self._media_packet(i, is_rtcp, data, now)
                return

    def next_deadline(self) -> float | None:
        """When ``handle_timer`` must run next, or None."""
        if self.closed:
            return None
        times = [t for t in (self._next_keepalive, self._next_rr) if t is not None]
        if self._awaiting is not None:
            times.append(self._awaiting[1] + REQUEST_TIMEOUT)
        if self._last_media is not None and self.mode == "play":
            times.append(self._last_media + self.media_timeout)
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        """Keepalives, receiver reports (TCP), request and media-silence timeouts."""
        self._now = now
        if self.closed:
            return
        if self._awaiting is not None and now >= self._awaiting[1] + REQUEST_TIMEOUT:
            self._fail(ev.Teardown(f"no answer to {self._sent[self._awaiting[0]].method}"))
            return
        if (self.mode == "play" and self._last_media is not None
                and now >= self._last_media + self.media_timeout):
            self._fail(ev.Teardown("no media"))
            return
        if self._next_keepalive is not None and now >= self._next_keepalive:
            method = "GET_PARAMETER" if "GET_PARAMETER" in self.public else "OPTIONS"
            self._request(method, self.base_url)
            self._next_keepalive = now + self._keepalive_period()
        if self._next_rr is not None and now >= self._next_rr:
            if self.transport == "tcp":
                for track_id, data in self.receiver_reports(now):
                    i = next(k for k, t in enumerate(self.tracks) if t.id == track_id)
                    self._out += encode_frame(self._track_channels[i][1], data)
            self._next_rr = now + RR_INTERVAL

    def receiver_reports(self, now: float) -> list[tuple[int, bytes]]:
        """(track id, RTCP RR+SDES) per receiving track; send them yourself over UDP.
        Before any RTP arrived the RR has no report block: it still keeps cameras happy."""
        return [(self.tracks[i].id, rx.receiver_report(now))
                for i, rx in self._receivers.items()]

    def sender_report(self, track_id: int):
        """The camera's last RTCP ``SenderReport`` for ``track_id`` (NTP <-> RTP timestamp),
        or None before one arrived."""
        return last_sender_report(self._receivers.values(), track_id)

    def close(self) -> None:
        """Queue TEARDOWN (if a session exists); a Teardown event follows its answer."""
        if self.closed or self.state == "teardown":
            return
        if self.session is None:
            self._fail(ev.Teardown("closed"))
            return
        self.state = "teardown"
        self._request("TEARDOWN", self.base_url, main=True)

    def send_access_unit(self, unit: AccessUnit) -> None:
        """Record mode: packetize one hub access unit and queue it (TCP interleaved).

        Raises ``RuntimeError`` before RECORD was accepted or for an unknown track.
        """
        if self.state != "streaming" or self.mode != "record":
            raise RuntimeError("send_access_unit before RECORD was accepted")
        for i, t in enumerate(self.tracks):
            if t.id == unit.track:
                ch = self._track_channels[i][0]
                for pkt in self._packetizers[i].packetize(unit.payload, unit.pts):
                    self._out += encode_frame(ch, pkt)
                return
        raise RuntimeError(f"unknown track {unit.track}")

    def statistics(self) -> Statistics:
        """Frames and payload bytes received (pull) plus per-track RTP errors and losses."""
        rx = list(self._receivers.values())
        return Statistics(frames_in=sum(r.frames for r in rx), bytes_in=sum(r.bytes for r in rx),
                          extra=(("rtp_errors", sum(r.errors for r in rx)),
                                 ("packets_lost", sum(r.reorder.lost for r in rx if r.reorder)),
                                 ("state", self.state)))

    # -- requests -------------------------------------------------------------------
    def _request(self, method: str, url: str, extra: list | None = None, body: bytes = b"",
                 main: bool = False) -> None:
        self._cseq += 1
        h = [("CSeq", str(self._cseq)), ("User-Agent", self.user_agent)]
        if self.session is not None and method not in ("OPTIONS", "ANNOUNCE", "DESCRIBE"):
            h.append(("Session", self.session))
        h += extra or []
        if self.auth is not None and self.auth.challenge is not None:
            h.append(("Authorization", self.auth.header(method, url)))
        req = Request(method, url, Headers(tuple(h)), body)
        self._sent[str(self._cseq)] = req
        if main:
            self._awaiting = (str(self._cseq), self._now)
        self._out.append(req.to_bytes())

    def _resend(self, req: Request) -> None:
        keep = [(k, v) for k, v in req.headers.items
                if k.lower() not in ("cseq", "user-agent", "session", "authorization")]
        self._request(req.method, req.url, keep, req.body, main=True)

    def _fail(self, event) -> None:
        self.closed = True
        self._events.append(event)

    def _response(self, resp: Response) -> None:
        req = self._sent.pop(resp.cseq or "", None)
        if req is None:
            return
        main = self._awaiting is not None and self._awaiting[0] == resp.cseq
        if not main:
            return  # keepalive answers (or late ones) need no action
        self._awaiting = None
        if resp.status == 401 and self.auth is not None and not self._auth_retried:
            # First 401 for this request (or a new/stale nonce later on): answer it once.
            if self.auth.on_challenge(resp.headers.get_all("WWW-Authenticate"), self._cnonce):
                self._auth_retried = True
                self._resend(req)
                return
        self._auth_retried = False
        if resp.status in (301, 302) and resp.headers.get("Location"):
            self._fail(ev.Redirect(resp.headers.get("Location")))
            return
        getattr(self, "_after_" + req.method.lower())(req, resp)

    def _error(self, req: Request, resp: Response) -> None:
        self._fail(ev.RequestFailed(req.method, resp.status, resp.reason))

    def _after_options(self, req: Request, resp: Response) -> None:
        # Some cameras refuse OPTIONS: go on with DESCRIBE unless it is an auth failure.
        if resp.status == 401:
            return self._error(req, resp)
        self.public = hdr.parse_public(resp.headers.get("Public", ""))
        if self.mode == "play":
            self.state = "describe"
            self._request("DESCRIBE", self.url, [("Accept", "application/sdp")], main=True)
        else:
            self.state = "announce"
            media = [media_for_track(t, f"trackID={i}") for i, t in enumerate(self.tracks)]
            self._media = media
            sdp = format_sdp(SessionDescription(media=tuple(media), control=None))
            self._request("ANNOUNCE", self.url, [("Content-Type", "application/sdp")], sdp,
                          main=True)

    def _after_describe(self, req: Request, resp: Response) -> None:
        if resp.status != 200:
            return self._error(req, resp)
        try:
            sd = parse_sdp(resp.body)
        except ProtocolError:
            return self._fail(ev.RequestFailed("DESCRIBE", 400, "bad SDP"))
        base = resp.headers.get("Content-Base") or resp.headers.get("Content-Location") \
            or self.url
        if "://" not in base:  # relative Content-Base ("/path/")
            base = split_origin(self.url)[0] + "/" + base.lstrip("/")
        self.base_url = resolve_control(self.url, base)  # keeps our host (NAT)
        kept, media = [], []
        for m in sd.media:
            try:
                t = track_from_media(m, len(kept))
                depacketizer_for(m, t)
            except (Unsupported, ProtocolError):
                continue
            kept.append(t)
            media.append(m)
        if not kept:
            return self._fail(ev.RequestFailed("DESCRIBE", 415, "no supported media"))
        self.tracks, self._media = kept, media
        self._events.append(ev.Described(tuple(kept), self.base_url, len(sd.media) - len(kept)))
        self.state = "setup"
        self._setup_index = 0
        self._setup_next()

    def _after_announce(self, req: Request, resp: Response) -> None:
        if resp.status != 200:
            return self._error(req, resp)
        self.base_url = self.url
        self.state = "setup"
        self._setup_index = 0
        self._setup_next()

    def _setup_next(self) -> None:
        i = self._setup_index
        url = resolve_control(self.base_url, self._media[i].control)
        if self.transport == "tcp":
            t = hdr.Transport("TCP", interleaved=(2 * i, 2 * i + 1))
        else:
            t = hdr.Transport("UDP", client_port=self.udp_client_ports[i])
        value = t.format() + (";mode=record" if self.mode == "record" else "")
        self._request("SETUP", url, [("Transport", value)], main=True)

    def _after_setup(self, req: Request, resp: Response) -> None:
        if resp.status != 200:
            return self._error(req, resp)
        i = self._setup_index
        sess = resp.headers.get("Session")
        if sess:
            s = hdr.parse_session(sess)
            self.session = s.id
            self.session_timeout = s.timeout or 60
        try:
            (t,) = hdr.parse_transport(resp.headers.get("Transport", ""))[:1]
        except RTSPError:
            t = None
        if self.transport == "tcp":
            ch = t.interleaved if t is not None and t.interleaved else (2 * i, 2 * i + 1)
            self._track_channels[i] = ch
            self._channels[ch[0]] = (i, False)
            self._channels[ch[1]] = (i, True)
        if self.mode == "play":
            self._receivers[i] = TrackReceiver(
                self.tracks[i], depacketizer_for(self._media[i], self.tracks[i]),
                reorder=self.transport == "udp", receiver_ssrc=self.receiver_ssrc)
        self._setup_index += 1
        if self._setup_index < len(self.tracks):
            return self._setup_next()
        self.state = "play" if self.mode == "play" else "record"
        self._request("PLAY" if self.mode == "play" else "RECORD", self.base_url,
                      [("Range", hdr.Range().format())], main=True)

    def _start_streaming(self) -> None:
        self.state = "streaming"
        self._next_keepalive = self._now + self._keepalive_period()
        self._events.append(ev.Playing(tuple(self.tracks)))

    def _after_play(self, req: Request, resp: Response) -> None:
        if resp.status != 200:
            return self._error(req, resp)
        self._next_rr = self._now + RR_INTERVAL
        self._last_media = self._now
        self._start_streaming()

    def _after_record(self, req: Request, resp: Response) -> None:
        if resp.status != 200:
            return self._error(req, resp)
        for i, t in enumerate(self.tracks):
            pt = self._media[i].payload_type if self._media else DYNAMIC_PT[t.codec]
            self._packetizers[i] = packetizer_for(t, pt, self.ssrc_base + i, mtu=self.mtu)
        self._start_streaming()

    def _after_teardown(self, req: Request, resp: Response) -> None:
        self._fail(ev.Teardown("closed"))

    def _keepalive_period(self) -> float:
        t = self.session_timeout
        return t - 5 if t > 10 else max(1.0, t / 2)

    # -- media in -------------------------------------------------------------------
    def _frame(self, channel: int, payload, now: float) -> None:
        hit = self._channels.get(channel)
        if hit is not None:
            self._media_packet(hit[0], hit[1], payload, now)

    def _media_packet(self, index: int, is_rtcp: bool, data, now: float) -> None:
        rx = self._receivers.get(index)
        if rx is None or self.state != "streaming":
            return
        try:
            if is_rtcp:
                rx.receive_rtcp(data, now)
                return
            self._last_media = now
            items = rx.receive_rtp(data, now)
        except ProtocolError as e:
            self._events.append(ev.MediaError(rx.track.id, e))
            return
        for it in items:
            if isinstance(it, Track):
                self.tracks[index] = it
                self._events.append(ev.TrackChanged(it))
            else:
                self._events.append(ev.MediaReceived(it))
