"""RTSP play: turns a channel ``Subscription`` into RTP/RTCP for one RTSP session
(RFC 2326 10.5, RFC 3550 5.1 and 6.4.1; payload formats from ``protocol.rtp``).

Strategy (fan-out, DESIGN.md 4), the way mediamtx shares one RTP stream among its readers:
every access unit of a channel is packetized **once**, by one ``RtpSource`` per channel, and
every player of that channel sends the very same packets (same SSRC, sequence numbers and
timestamp offset per track). The source walks the GoP chain in channel order with its own
cursor, so sequence numbers grow in channel order whichever player asks first; a player that
joins late or was skipped sees a jump in sequence numbers (RTP-Info tells where it starts), as a
receiver of a multicast group would. Packets live in ``GoP.cache`` and die with the GoP. For
interleaved TCP the 4-byte ``$`` headers are also built once per (track, channel number) and
kept with the packets, so N players with the usual ``interleaved=0-1``/``2-3`` write the same
buffer list (``transport.writelines``): no per-player packetizing, header rewriting or copying.
UDP players get the same packet objects for ``sendto``. Per player remain only RTCP: a sender
report (SR + CNAME) for each track just before its first packet and every ``SR_INTERVAL``
seconds (packet/octet counts are the player's own), and BYE when the stream ends.

The stream ends for a player (``ended`` is set, BYE queued, the adapter closes the session)
when the publisher leaves (``Unpublished``), or when a new ``TrackSet`` changes the codec of a
described track (the SDP the player holds would lie). A changed configuration of the same codec
is carried in-band (the H.264/H.265 packetizers repeat parameter sets before keyframes).

``pull(wall)`` is sans-IO: the io glue calls it while its transport is not paused.
"""

from __future__ import annotations

import random
import weakref
from collections import deque

from rtmpgop.channels import Channel, Subscription
from rtmpgop.channels.gop import GoP
from rtmpgop.errors import ProtocolError, Unsupported
from rtmpgop.media import AccessUnit, Skipped, Statistics, Track, TrackSet, Unpublished
from rtmpgop.protocol.rtp import rtcp
from rtmpgop.protocol.rtsp.message import frame_header
from rtmpgop.protocol.rtsp.sdp_tracks import DYNAMIC_PT, packetizer_for
from rtmpgop.protocol.rtsp.server import ServerConnection

PULL_BATCH_BYTES = 256 * 1024
"""Bytes gathered per ``pull`` by default: one ``writelines`` per batch, small enough that a
paused transport is noticed within one batch."""

SR_INTERVAL = 5.0
"""Seconds between RTCP sender reports per track (RFC 3550 6.2 suggests ~5 s; FFmpeg and
live555 align tracks with the first one, so one also goes right after the first packet)."""

START_PEEK_ITEMS = 4096
"""Items read ahead at PLAY to find each track's first packet for RTP-Info: more than a GoP of
a 60 fps stream with audio, bounded so a huge backlog cannot stall the loop."""

CACHE_KEY = "rtsp"  # GoP.cache key of the shared packets (id(au) -> _Packets)

_sources: weakref.WeakKeyDictionary[Channel, RtpSource] = weakref.WeakKeyDictionary()


class _Packets:
    """The RTP packets of one access unit, plus their ``$`` headers per channel number."""

    __slots__ = ("packets", "first_seq", "rtptime", "nbytes", "framed")

    def __init__(self, packets: list[bytes], first_seq: int, rtptime: int) -> None:
        self.packets = packets
        self.first_seq = first_seq
        self.rtptime = rtptime
        self.nbytes = sum(len(p) for p in packets)
        self.framed: dict[int, list] = {}

    def interleaved(self, channel: int) -> list:
        """``[$hdr, packet, $hdr, packet, ...]`` for interleaved ``channel`` (built once)."""
        got = self.framed.get(channel)
        if got is None:
            got = []
            for p in self.packets:
                got.append(frame_header(channel, len(p)))
                got.append(p)
            self.framed[channel] = got
        return got


class RtpSource:
    """The channel's shared packetizers and its packetizing cursor (see module docstring)."""

    def __init__(self, channel: Channel | None = None, rng: random.Random | None = None) -> None:
        self.channel = channel
        self._rng = rng or random.Random()
        self._pk: dict[int, object] = {}  # track id -> packetizer
        self._tracks: dict[int, Track] = {}  # track id -> track the packetizer was made for
        self._gop: GoP | None = None
        self._index = 0  # next item of ``_gop`` to packetize
        self.packetized = 0  # access units packetized (once for every player)
        self.bad_units = 0  # access units the packetizer refused (CodecError): not sent

    @staticmethod
    def of(channel: Channel) -> RtpSource:
        """The source shared by every RTSP player of ``channel``."""
        src = _sources.get(channel)
        if src is None:
            src = _sources[channel] = RtpSource(channel)
        return src

    def packetizer(self, track: Track):
        """The packetizer of ``track`` (made or remade when its configuration changed; SSRC,
        sequence and timestamp offset carry over). Raises ``Unsupported``."""
        pk = self._pk.get(track.id)
        old = self._tracks.get(track.id)
        if pk is not None and old is not None and old.config == track.config:
            return pk
        if pk is None:
            ssrc, seq, ts = (self._rng.getrandbits(32), self._rng.getrandbits(16),
                             self._rng.getrandbits(32))
        else:
            ssrc, seq, ts = pk.ssrc, pk.seq, pk.timestamp_offset
        pk = packetizer_for(track, DYNAMIC_PT.get(track.codec, 96), ssrc, initial_seq=seq,
                            initial_timestamp=ts)
        self._pk[track.id] = pk
        self._tracks[track.id] = track
        return pk

    def packetizer_of(self, track_id: int):
        """The packetizer made for ``track_id`` so far (SSRC, RTP clock for SRs), or None."""
        return self._pk.get(track_id)

    def _apply(self, ts: TrackSet) -> None:
        for t in ts.tracks:
            if t.id in self._pk:
                self.packetizer(t)
            else:
                self._tracks[t.id] = t

    def packets(self, gop: GoP, index: int, au: AccessUnit) -> _Packets | None:
        """The shared packets of ``au``, item ``index`` of ``gop``; None if its track cannot
        be packetized (a unit the packetizer refuses gets an empty list, once)."""
        cache = gop.cache.get(CACHE_KEY)
        if cache is not None:
            got = cache.get(id(au))
            if got is not None:
                return got
        wg = self._gop
        if wg is None or wg.evicted:
            # first use, or our GoP left the ring: restart at the oldest GoP still readable
            ring = self.channel.ring if self.channel is not None else ()
            start = ring[0] if ring and ring[0].seq <= gop.seq else gop
            self._gop, self._index = start, 0
            self._apply(start.head)
        elif wg.seq > gop.seq or (wg is gop and self._index > index):
            return self._packetize(gop, au)  # behind the cursor yet not cached: a lone packet
        self._walk_to(gop, index)
        cache = gop.cache.get(CACHE_KEY)
        got = cache.get(id(au)) if cache is not None else None
        return got if got is not None else self._packetize(gop, au)

    def _walk_to(self, gop: GoP, index: int) -> None:
        """Packetize, in channel order, every item from the cursor up to ``gop[index]``."""
        g, i = self._gop, self._index
        while True:
            items = g.items
            stop = index + 1 if g is gop else len(items)
            while i < stop:
                item = items[i]
                i += 1
                if type(item) is AccessUnit:
                    self._packetize(g, item)
                elif type(item) is TrackSet:
                    self._apply(item)
            if g is gop:
                break
            nxt = g.next
            if nxt is None:  # chain broken (cannot happen while gop is readable): jump
                nxt = gop
            g, i = nxt, 0
            self._apply(g.head)
        self._gop, self._index = g, i

    def _packetize(self, gop: GoP, au: AccessUnit) -> _Packets | None:
        cache = gop.cache.get(CACHE_KEY)
        if cache is None:
            cache = gop.cache[CACHE_KEY] = {}
        got = cache.get(id(au))
        if got is not None:
            return got
        track = self._tracks.get(au.track)
        if track is None:
            return None
        try:
            pk = self.packetizer(track)
        except Unsupported:  # a codec RTSP cannot carry: DESCRIBE left it out
            self._tracks.pop(au.track, None)
            return None
        first = pk.seq
        try:
            packets = pk.packetize(au.payload, au.pts)
        except ProtocolError:  # a malformed unit from the publisher: skip it for everyone
            packets = []
            self.bad_units += 1
        got = _Packets(packets, first, pk.rtp_timestamp(au.pts))
        cache[id(au)] = got
        self.packetized += 1
        return got


class _Out:
    """Where one described track goes for this player, and its RTCP counters."""

    __slots__ = ("track", "channel", "udp", "packets", "octets", "next_sr", "last_pts")

    def __init__(self, track: Track, channel: int | None, udp: bool) -> None:
        self.track = track
        self.channel = channel  # interleaved RTP channel (RTCP = +1), None for UDP
        self.udp = udp
        self.packets = 0
        self.octets = 0
        self.next_sr = 0.0  # 0 = after the first packet
        self.last_pts: int | None = None


class RtspPlayer:
    """One playing RTSP session fed by ``sub`` (created at DESCRIBE, started at PLAY)."""

    def __init__(self, conn: ServerConnection, sub: Subscription,
                 source: RtpSource | None = None) -> None:
        self.conn = conn
        self.sub = sub
        self.source = source or RtpSource.of(sub.channel)
        self._pending: deque = deque()  # items read ahead (DESCRIBE, PLAY); delivered first
        self._outs: dict[int, _Out] = {}
        self._anchor: tuple[float, float] | None = None  # (wall, stream seconds) for SRs
        self._stream_sec = 0.0
        self.ended: str | None = None  # why the stream ended for this player
        self.frames_out = 0
        self.bytes_out = 0
        self.skips = 0

    # ------------------------------------------------------------------ DESCRIBE / PLAY
    def describe(self) -> TrackSet:
        """The tracks to announce: the TrackSet at the subscription's start (or the channel's
        current one when the channel has no GoP yet)."""
        entry = self._next()
        if entry is not None and type(entry[0]) is TrackSet:
            return entry[0]
        if entry is not None:
            self._pending.appendleft(entry)
        return self.sub.channel.trackset

    def start(self) -> dict[int, tuple[int, int]]:
        """Prepare sending the tracks the connection set up; returns RTP-Info for
        ``conn.accept_play``: track id -> (first sequence number, its RTP timestamp)."""
        conn = self.conn
        for t in conn.tracks:
            if t is None or t.id in self._outs:
                continue
            tr = conn.setup_of(t.id)
            if tr is None:
                continue
            ch = tr.interleaved[0] if tr.interleaved else None
            self._outs[t.id] = _Out(t, ch, ch is None)
        # read ahead until each track's first access unit is known (or we are caught up)
        first: dict[int, _Packets] = {}
        ref_sec = None
        for i in range(START_PEEK_ITEMS):
            if i < len(self._pending):
                entry = self._pending[i]
            else:
                entry = self._read()
                if entry is None:
                    break
                self._pending.append(entry)
            item, gop, index = entry
            if type(item) is AccessUnit and item.track in self._outs and item.track not in first:
                got = self.source.packets(gop, index, item)
                if got is not None:
                    first[item.track] = got
                    if ref_sec is None:
                        ref_sec = item.pts / self._outs[item.track].track.clock_rate
                if len(first) == len(self._outs):
                    break
        info = {}
        for tid, out in self._outs.items():
            p = first.get(tid)
            if p is not None:
                info[tid] = (p.first_seq, p.rtptime)
                continue
            try:
                pk = self.source.packetizer(out.track)
            except Unsupported:  # accept_describe already left such tracks out
                continue
            info[tid] = (pk.seq, pk.rtp_timestamp(round((ref_sec or 0) * out.track.clock_rate)))
        return info

    # ------------------------------------------------------------------ output
    def _read(self):
        item = self.sub.get_nowait()
        if item is None:
            return None
        return item, self.sub.gop, self.sub.index - 1

    def _next(self):
        """(item, its GoP, its index there), read-ahead first; None when caught up."""
        if self._pending:
            return self._pending.popleft()
        return self._read()

    def pull(self, wall: float, max_bytes: int = PULL_BATCH_BYTES) -> tuple[list, list]:
        """``(tcp_buffers, udp_datagrams)`` to send now, up to about ``max_bytes``.

        ``tcp_buffers`` go to ``transport.writelines`` (the connection's own queued responses
        first); ``udp_datagrams`` are ``(track_id, is_rtcp, bytes)``. ``wall`` is
        ``time.time()`` (SR timing and NTP). Both lists empty when caught up."""
        tcp = self.conn.data_to_send()
        udp: list = []
        size = 0
        while size < max_bytes and self.ended is None:
            entry = self._next()
            if entry is None:
                break
            item, gop, index = entry
            if type(item) is AccessUnit:
                out = self._outs.get(item.track)
                if out is None or gop is None:
                    continue
                p = self.source.packets(gop, index, item)
                if p is None:
                    continue
                self._stream_sec = item.dts / out.track.clock_rate
                if out.next_sr <= wall:  # before the track's first packet too (FFmpeg maps
                    self._sender_report(out, wall, tcp, udp)  # packets before any SR alone)
                if out.udp:
                    udp.extend((out.track.id, False, pkt) for pkt in p.packets)
                    size += p.nbytes
                else:
                    tcp.extend(p.interleaved(out.channel))
                    size += p.nbytes + 4 * len(p.packets)
                out.packets += len(p.packets)
                out.octets += p.nbytes - 12 * len(p.packets)
                out.last_pts = item.pts
                self.frames_out += 1
            elif type(item) is TrackSet:
                self._trackset(item)
            elif type(item) is Unpublished:
                self._end(f"publisher left ({item.reason})" if item.reason else "publisher left",
                          tcp, udp)
            elif type(item) is Skipped:
                self.skips += 1
                self._anchor = None
        self.bytes_out += size
        return tcp, udp

    def _trackset(self, ts: TrackSet) -> None:
        if not ts.tracks:
            return
        for tid, out in self._outs.items():
            t = ts.by_id(tid)
            if t is not None and t.codec is not out.track.codec:
                self.ended = f"track {tid} changed codec to {t.codec.value}"
                return
            if t is not None:
                out.track = t

    def _end(self, reason: str, tcp: list, udp: list) -> None:
        self.ended = reason
        for out in self._outs.values():
            pk = self.source.packetizer_of(out.track.id)
            if pk is None:
                continue
            bye = rtcp.build_bye(rtcp.Goodbye((pk.ssrc,), b"end of stream"))
            self._rtcp(out, bye, tcp, udp)

    def _rtcp(self, out: _Out, data: bytes, tcp: list, udp: list) -> None:
        if out.udp:
            udp.append((out.track.id, True, data))
        else:
            tcp.append(frame_header(out.channel + 1, len(data)))
            tcp.append(data)

    def _sender_report(self, out: _Out, wall: float, tcp: list, udp: list) -> None:
        """SR + CNAME mapping ``wall`` to the RTP clock: one anchor (wall, stream time) for
        every track, so players can align audio and video."""
        pk = self.source.packetizer_of(out.track.id)
        if pk is None:
            return
        if self._anchor is None:
            self._anchor = (wall, self._stream_sec)
        w0, s0 = self._anchor
        pts = round((s0 + wall - w0) * out.track.clock_rate)
        sr = rtcp.SenderReport(pk.ssrc, rtcp.unix_to_ntp(wall), pk.rtp_timestamp(pts),
                               out.packets, out.octets)
        self._rtcp(out, rtcp.build_sr(sr) + rtcp.build_cname(pk.ssrc, b"rtmpgop"), tcp, udp)
        out.next_sr = wall + SR_INTERVAL

    def statistics(self) -> Statistics:
        return Statistics(frames_out=self.frames_out, bytes_out=self.bytes_out,
                          skipped_frames=self.sub.skipped_frames,
                          skipped_bytes=self.sub.skipped_bytes,
                          extra=(("skips", self.skips), ("ended", self.ended)))
