"""One received RTP track turned into hub ``AccessUnit``s: reorder (UDP), depacketize, DTS
(``dts.py``), plus RTCP bookkeeping (SR for LSR/DLSR, receiver reports, RFC 3550 6.4.2).

Used by both RTSP roles (``rtsp/server.py`` for RECORD, ``rtsp/client.py`` for camera pulls),
over TCP interleaved frames or UDP datagrams alike. ``receive_rtp`` returns items in order:
a ``Track`` whenever the configuration is new or changed (announce it to the hub before the
access units that follow), then ``AccessUnit``s with ``dts <= pts`` and monotonic ``dts``.
"""

from __future__ import annotations

import struct

from rtmpgop.errors import ProtocolError
from rtmpgop.media import AccessUnit, MediaKind, Statistics, Track
from rtmpgop.protocol.rtp import rtcp
from rtmpgop.protocol.rtp.base import Frame
from rtmpgop.protocol.rtp.dts import DTSExtractor, reorder_depth
from rtmpgop.protocol.rtp.packet import RTP_HEADER_SIZE, ReorderBuffer, RTPPacket, parse_rtp

_FIXED = struct.Struct(">BHII").unpack_from  # the fixed header after its first byte


class TrackReceiver:
    """Reception pipeline of one track. ``depacketizer`` comes from ``sdp_tracks``."""

    def __init__(self, track: Track, depacketizer, reorder: bool = False,
                 receiver_ssrc: int = 0) -> None:
        self.track = track
        self.depacketizer = depacketizer
        self.reorder = ReorderBuffer() if reorder else None
        self.receiver_ssrc = receiver_ssrc
        self.ssrc: int | None = None
        self._receive = depacketizer.receive
        self.stats: rtcp.ReceptionStats | None = None
        video = track.kind is MediaKind.VIDEO
        self._dts = DTSExtractor(reorder_depth(track.config) if video and track.config.record
                                 else 0)
        self._video = video
        self.frames = 0
        self.bytes = 0
        self.errors = 0
        self.last_sr: rtcp.SenderReport | None = None

    def receive_rtp(self, data: bytes | memoryview, arrival: float | None = None
                    ) -> list[AccessUnit | Track]:
        """Feed one RTP packet. ``arrival`` (seconds, caller's clock) feeds jitter stats.

        Raises ``RTPError``/``LimitExceeded``/``Unsupported`` on a bad packet or payload; the
        receiver stays usable (count it and go on, or close, as the caller prefers).
        """
        view = data if type(data) is memoryview else memoryview(data)
        if len(view) >= RTP_HEADER_SIZE and view[0] == 0x80:
            # The common packet (version 2; no padding, extension or CSRC): its fields go
            # straight to the depacketizer, no RTPPacket (this runs ~17 times a video frame).
            b1, seq, ts, ssrc = _FIXED(view, 1)
            marker, payload, pkt = b1 > 0x7F, view[RTP_HEADER_SIZE:], None
        else:
            pkt = parse_rtp(view)
            seq, ts, ssrc, marker, payload = (pkt.sequence, pkt.timestamp, pkt.ssrc, pkt.marker,
                                              pkt.payload)
        if ssrc != self.ssrc:
            self._new_source(ssrc)
        if arrival is not None:
            self.stats.on_packet(seq, ts, arrival)
        if self.reorder is not None:
            if pkt is None:
                pkt = RTPPacket(b1 & 0x7F, seq, ts, ssrc, payload, marker)
            out: list[AccessUnit | Track] = []
            for p in self.reorder.push(pkt):
                out += self._depacketize(p)
            return out
        try:
            frames = self._receive(seq, ts, marker, payload)
        except ProtocolError:
            self.errors += 1
            raise
        return self._items(frames) if frames else []  # most packets complete no unit

    def _new_source(self, ssrc: int) -> None:
        # New source (first packet, or encoder restart): sequence origin starts over.
        self.ssrc = ssrc
        self.stats = rtcp.ReceptionStats(ssrc, self.track.clock_rate)
        if self.reorder is not None:
            self.reorder = ReorderBuffer(self.reorder.window)

    def _depacketize(self, pkt: RTPPacket) -> list[AccessUnit | Track]:
        try:
            frames = self.depacketizer.push(pkt)
        except ProtocolError:
            self.errors += 1
            raise
        return self._items(frames) if frames else []  # most packets complete no unit

    def _items(self, frames: list[Frame]) -> list[AccessUnit | Track]:
        out: list[AccessUnit | Track] = []
        for f in frames:
            if f.config is not None:
                self.track = Track(self.track.id, f.config, self.track.clock_rate)
                out.append(self.track)
                if self._video:
                    for dts, held in self._dts.set_depth(reorder_depth(f.config)):
                        out.append(self._unit(dts, held))
            for dts, g in self._dts.push(f):
                out.append(self._unit(dts, g))
        return out

    def _unit(self, dts: int, f: Frame) -> AccessUnit:
        self.frames += 1
        self.bytes += len(f.payload)
        return AccessUnit(self.track.id, dts, max(f.pts, dts), f.keyframe, f.payload)

    def receive_rtcp(self, data: bytes | memoryview, now: float) -> list[rtcp.RTCPPacket]:
        """Feed a compound RTCP packet; remembers the sender's SR. Raises ``RTPError``."""
        pkts = rtcp.parse_rtcp(data)
        for p in pkts:
            if isinstance(p, rtcp.SenderReport) and (self.ssrc is None or p.ssrc == self.ssrc):
                self.last_sr = p
                if self.stats is not None:
                    self.stats.on_sr(p, now)
        return pkts

    def receiver_report(self, now: float, cname: bytes = b"rtmpgop") -> bytes:
        """A compound RR + SDES CNAME to send back (every ~5 s; some cameras need it)."""
        blocks = (self.stats.report_block(now),) if self.stats is not None else ()
        return rtcp.build_rr(rtcp.ReceiverReport(self.receiver_ssrc, blocks)) + \
            rtcp.build_cname(self.receiver_ssrc, cname)

    def flush(self) -> list[AccessUnit | Track]:
        """Release packets and frames still held (end of stream)."""
        out: list[AccessUnit | Track] = []
        if self.reorder is not None:
            for p in self.reorder.flush():
                out += self._depacketize(p)
        for dts, f in self._dts.flush():
            out.append(self._unit(dts, f))
        return out

    def statistics(self) -> Statistics:
        lost = self.reorder.lost if self.reorder is not None else 0
        return Statistics(frames_in=self.frames, bytes_in=self.bytes,
                          extra=(("rtp_errors", self.errors), ("packets_lost", lost)))


def last_sender_report(receivers, track_id: int) -> rtcp.SenderReport | None:
    """The last SR the sender sent for ``track_id`` among ``receivers`` (TrackReceivers), or
    None (no SR yet, or no such track)."""
    for rx in receivers:
        if rx.track.id == track_id:
            return rx.last_sr
    return None
