"""RTCP (RFC 3550 section 6): SR, RR, SDES, BYE parse and build; NTP time conversions;
receiver statistics for RR generation (appendix A.3, A.8).

Strategy: ``parse_rtcp`` walks a compound packet and returns one record per sub-packet
(unknown types such as APP come back as ``RTCPUnknown``; the caller ignores them). Builders
return bytes. Time is a parameter everywhere: callers pass the wall clock they read.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from rtmpgop.errors import RTPError

SR, RR, SDES, BYE, APP = 200, 201, 202, 203, 204
NTP_UNIX_OFFSET = 2_208_988_800
"""Seconds from the NTP epoch (1900) to the Unix epoch (1970)."""

MAX_REPORT_BLOCKS = 31  # 5-bit RC field

_BLOCK = struct.Struct(">IB3sIIII")


@dataclass(frozen=True, slots=True)
class ReportBlock:
    """One reception report (RFC 3550 6.4.1)."""

    ssrc: int
    fraction_lost: int  # 8-bit fixed point: lost/expected * 256
    cumulative_lost: int  # signed 24 bits
    highest_seq: int  # extended highest sequence number received
    jitter: int
    lsr: int  # middle 32 bits of the last SR's NTP time
    dlsr: int  # delay since that SR, 1/65536 s


@dataclass(frozen=True, slots=True)
class SenderReport:
    ssrc: int
    ntp: int  # 64-bit NTP timestamp (32.32 fixed point seconds since 1900)
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[ReportBlock, ...] = ()


@dataclass(frozen=True, slots=True)
class ReceiverReport:
    ssrc: int
    reports: tuple[ReportBlock, ...] = ()


@dataclass(frozen=True, slots=True)
class SourceDescription:
    chunks: tuple[tuple[int, tuple[tuple[int, bytes], ...]], ...]  # (ssrc, ((item type, text),))


@dataclass(frozen=True, slots=True)
class Goodbye:
    ssrcs: tuple[int, ...]
    reason: bytes = b""


@dataclass(frozen=True, slots=True)
class RTCPUnknown:
    packet_type: int
    body: bytes


RTCPPacket = SenderReport | ReceiverReport | SourceDescription | Goodbye | RTCPUnknown


def unix_to_ntp(seconds: float) -> int:
    """Unix time (float seconds) to a 64-bit NTP timestamp."""
    return int(round((seconds + NTP_UNIX_OFFSET) * (1 << 32)))


def ntp_to_unix(ntp: int) -> float:
    """64-bit NTP timestamp to Unix time in float seconds."""
    return ntp / (1 << 32) - NTP_UNIX_OFFSET


def ntp_middle(ntp: int) -> int:
    """The middle 32 bits of an NTP timestamp (the LSR field of a report block)."""
    return (ntp >> 16) & 0xFFFFFFFF


def _parse_blocks(view: memoryview, pos: int, count: int, end: int) -> tuple[ReportBlock, ...]:
    if pos + 24 * count > end:
        raise RTPError("RTCP report blocks truncated", count=count)
    out = []
    for i in range(count):
        ssrc, frac, lost, hi, jit, lsr, dlsr = _BLOCK.unpack_from(view, pos + 24 * i)
        cum = int.from_bytes(lost, "big", signed=True)
        out.append(ReportBlock(ssrc, frac, cum, hi, jit, lsr, dlsr))
    return tuple(out)


def parse_rtcp(data: bytes | bytearray | memoryview) -> list[RTCPPacket]:
    """Parse a compound RTCP packet into its sub-packets.

    Raises ``RTPError`` on a bad version, a length running past the data, or truncated fields.
    """
    view = data if isinstance(data, memoryview) else memoryview(data)
    out: list[RTCPPacket] = []
    pos = 0
    n = len(view)
    if n < 4:
        raise RTPError("RTCP packet too short", length=n)
    while pos < n:
        if pos + 4 > n:
            raise RTPError("RTCP header truncated", offset=pos)
        b0, pt, words = struct.unpack_from(">BBH", view, pos)
        if b0 >> 6 != 2:
            raise RTPError("RTCP version is not 2", version=b0 >> 6)
        end = pos + 4 * (words + 1)
        if end > n:
            raise RTPError("RTCP length past end of data", length=words, available=n - pos)
        body_end = end
        if b0 & 0x20:
            pad = view[end - 1]
            if pad == 0 or pad > end - pos - 4:
                raise RTPError("RTCP padding invalid", padding=pad)
            body_end = end - pad
        count = b0 & 0x1F
        body = pos + 4
        if pt == SR:
            if body + 24 > body_end:
                raise RTPError("RTCP SR truncated")
            ssrc, ntp_hi, ntp_lo, rtp_ts, pc, oc = struct.unpack_from(">IIIIII", view, body)
            out.append(SenderReport(ssrc, ntp_hi << 32 | ntp_lo, rtp_ts, pc, oc,
                                    _parse_blocks(view, body + 24, count, body_end)))
        elif pt == RR:
            if body + 4 > body_end:
                raise RTPError("RTCP RR truncated")
            (ssrc,) = struct.unpack_from(">I", view, body)
            out.append(ReceiverReport(ssrc, _parse_blocks(view, body + 4, count, body_end)))
        elif pt == SDES:
            out.append(_parse_sdes(view, body, body_end, count))
        elif pt == BYE:
            if body + 4 * count > body_end:
                raise RTPError("RTCP BYE truncated", count=count)
            ssrcs = struct.unpack_from(f">{count}I", view, body)
            p = body + 4 * count
            reason = b""
            if p < body_end:
                ln = view[p]
                if p + 1 + ln > body_end:
                    raise RTPError("RTCP BYE reason truncated")
                reason = bytes(view[p + 1:p + 1 + ln])
            out.append(Goodbye(tuple(ssrcs), reason))
        else:
            out.append(RTCPUnknown(pt, bytes(view[body:body_end])))
        pos = end
    return out


def _parse_sdes(view: memoryview, pos: int, end: int, count: int) -> SourceDescription:
    chunks = []
    for _ in range(count):
        if pos + 4 > end:
            raise RTPError("RTCP SDES chunk truncated")
        (ssrc,) = struct.unpack_from(">I", view, pos)
        pos += 4
        items = []
        while True:
            if pos >= end:
                raise RTPError("RTCP SDES items truncated")
            kind = view[pos]
            if kind == 0:
                pos = (pos + 4) & ~3  # the null item, then pad to a 32-bit boundary
                break
            if pos + 2 > end or pos + 2 + view[pos + 1] > end:
                raise RTPError("RTCP SDES item truncated", item=kind)
            ln = view[pos + 1]
            items.append((kind, bytes(view[pos + 2:pos + 2 + ln])))
            pos += 2 + ln
        chunks.append((ssrc, tuple(items)))
    return SourceDescription(tuple(chunks))


def _header(pt: int, count: int, body_len: int) -> bytes:
    return struct.pack(">BBH", 0x80 | count, pt, body_len // 4)


def _blocks(reports: tuple[ReportBlock, ...]) -> bytes:
    if len(reports) > MAX_REPORT_BLOCKS:
        raise ValueError("too many report blocks")
    return b"".join(
        _BLOCK.pack(r.ssrc, r.fraction_lost, (r.cumulative_lost & 0xFFFFFF).to_bytes(3, "big"),
                    r.highest_seq, r.jitter, r.lsr, r.dlsr) for r in reports)


def build_sr(sr: SenderReport) -> bytes:
    """Serialize a sender report."""
    body = struct.pack(">IIIIII", sr.ssrc, sr.ntp >> 32, sr.ntp & 0xFFFFFFFF,
                       sr.rtp_timestamp & 0xFFFFFFFF, sr.packet_count & 0xFFFFFFFF,
                       sr.octet_count & 0xFFFFFFFF) + _blocks(sr.reports)
    return _header(SR, len(sr.reports), len(body)) + body


def build_rr(rr: ReceiverReport) -> bytes:
    """Serialize a receiver report."""
    body = struct.pack(">I", rr.ssrc) + _blocks(rr.reports)
    return _header(RR, len(rr.reports), len(body)) + body


def build_sdes(sd: SourceDescription) -> bytes:
    """Serialize an SDES packet (each chunk null-terminated and padded to 32 bits)."""
    parts = []
    for ssrc, items in sd.chunks:
        chunk = struct.pack(">I", ssrc) + b"".join(
            bytes([k, len(v)]) + v for k, v in items) + b"\0"
        chunk += bytes(-len(chunk) % 4)
        parts.append(chunk)
    body = b"".join(parts)
    return _header(SDES, len(sd.chunks), len(body)) + body


def build_cname(ssrc: int, cname: bytes) -> bytes:
    """An SDES packet with one CNAME item (RFC 3550 6.5.1), for compound reports."""
    return build_sdes(SourceDescription(((ssrc, ((1, cname),)),)))


def build_bye(bye: Goodbye) -> bytes:
    """Serialize a BYE packet."""
    body = b"".join(struct.pack(">I", s) for s in bye.ssrcs)
    if bye.reason:
        body += bytes([len(bye.reason)]) + bye.reason
        body += bytes(-len(body) % 4)
    return _header(BYE, len(bye.ssrcs), len(body)) + body


class ReceptionStats:
    """Receiver-side counters of one source, producing RR report blocks (RFC 3550 A.3, A.8).

    Feed every received packet with ``on_packet(seq, rtp_ts, arrival)`` (``arrival`` in
    seconds on the caller's clock) and every SR with ``on_sr(sr, now)``.
    """

    __slots__ = ("ssrc", "clock_rate", "base_seq", "max_seq", "received", "jitter",
                 "_transit", "_expected_prior", "_received_prior", "_lsr", "_sr_at", "_last_ext",
                 "_last_ts")

    def __init__(self, ssrc: int, clock_rate: int) -> None:
        self.ssrc = ssrc
        self.clock_rate = clock_rate
        self.base_seq: int | None = None
        self.max_seq = 0
        self.received = 0
        self.jitter = 0.0
        self._transit: int | None = None
        self._expected_prior = 0
        self._received_prior = 0
        self._lsr = 0
        self._sr_at: float | None = None
        self._last_ext: int | None = None  # on_packet's unwrapping reference
        self._last_ts = -1  # RTP timestamp of the previous packet

    def on_packet(self, seq: int, rtp_ts: int, arrival: float) -> None:
        """Count one received packet: ``seq`` its 16-bit sequence number (unwrapped here, as
        ``packet.Unwrapper`` does), ``arrival`` in seconds on the caller's clock."""
        last = self._last_ext
        if last is None:
            ext = self.base_seq = self.max_seq = seq
        else:
            diff = (seq - last) & 0xFFFF
            ext = last + diff - 0x10000 if diff >= 0x8000 else last + diff
            if ext > self.max_seq:
                self.max_seq = ext
        self._last_ext = ext
        self.received += 1
        if rtp_ts != self._last_ts:
            # Jitter from the first packet of each timestamp, as libwebrtc does: the packets
            # of one frame share it and leave together, so the rest add only the send spread.
            self._last_ts = rtp_ts
            transit = int(arrival * self.clock_rate) - rtp_ts
            if self._transit is not None:
                d = abs(transit - self._transit)
                self.jitter += (d - self.jitter) / 16
            self._transit = transit

    def on_sr(self, sr: SenderReport, now: float) -> None:
        """Remember the last SR (for LSR/DLSR); ``now`` in seconds on the caller's clock."""
        self._lsr = ntp_middle(sr.ntp)
        self._sr_at = now

    def report_block(self, now: float) -> ReportBlock:
        """The report block to send now; resets the interval counters."""
        if self.base_seq is None:
            return ReportBlock(self.ssrc, 0, 0, 0, 0, 0, 0)
        expected = self.max_seq - self.base_seq + 1
        lost = max(-(1 << 23), min((1 << 23) - 1, expected - self.received))
        exp_int = expected - self._expected_prior
        rec_int = self.received - self._received_prior
        self._expected_prior, self._received_prior = expected, self.received
        lost_int = exp_int - rec_int
        frac = 0 if exp_int <= 0 or lost_int <= 0 else min(255, (lost_int << 8) // exp_int)
        dlsr = 0 if self._sr_at is None else int((now - self._sr_at) * 65536) & 0xFFFFFFFF
        return ReportBlock(self.ssrc, frac, lost, self.max_seq & 0xFFFFFFFF,
                           int(self.jitter) & 0xFFFFFFFF, self._lsr, dlsr)
