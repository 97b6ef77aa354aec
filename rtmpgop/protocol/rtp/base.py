"""Shared pieces of the RTP payload formats: the ``Frame`` a depacketizer returns and the
``Packetizer`` base that numbers and stamps outgoing packets (RFC 3550 5.1).

Depacketizer contract (``rtp/h264.py``, ``h265.py``, ``aac.py``, ``opus.py``, ``av1.py``):
``receive(seq, timestamp, marker, payload) -> list[Frame]`` takes the fields of packets in
sequence order (put a ``ReorderBuffer`` in front for UDP; ``payload`` a ``memoryview``) and
returns the access units they complete, with
``pts`` = the RTP timestamp unwrapped to 64 bits, payload in hub form (``rtmpgop.media``), and
``config`` set when the decoder configuration is new or changed (in-band parameter sets).
Payload views of the packets may be held until the access unit is complete, then joined with
one copy, so packet buffers must not be mutated while a depacketizer holds them (asyncio gives
immutable ``bytes``). After a peer fault (``RTPError``/``LimitExceeded``) the depacketizer has
dropped the unit in progress and stays usable: the caller may log and continue.
``push(packet: RTPPacket)`` (the ``Depacketizer`` base) does the same from a parsed packet; the
receive path (``receiver.py``) calls ``receive`` with fields read straight off the wire, so the
common packet costs no ``RTPPacket`` object.

Packetizer contract: ``packetize(payload, pts) -> list[bytes]``, whole RTP packets no larger
than ``mtu``, marker set on the last packet of the access unit.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from rtmpgop.media import CodecConfig
from rtmpgop.protocol.rtp import rtcp
from rtmpgop.protocol.rtp.packet import Unwrapper

DEFAULT_MTU = 1200
"""Largest RTP packet we send (header included). 1200 leaves room for IP/UDP plus VPN and
tunnel overhead under a 1500-byte path MTU (the value WebRTC stacks use), so nothing fragments."""

MIN_MTU = 64  # smaller values cannot carry the FU and AU headers plus useful data

_HDR = struct.Struct(">BBHII")


@dataclass(frozen=True, slots=True)
class Frame:
    """One depacketized access unit. ``config`` is not None when the configuration changed."""

    pts: int
    payload: bytes
    keyframe: bool
    config: CodecConfig | None = None


class PacketOrder:
    """What every depacketizer does first with a packet: ``step(seq, timestamp)`` returns (RTP
    timestamp unwrapped to 64 bits, whether sequence numbers were skipped since the previous
    packet: a loss, drop the unit in progress). ``last_seq``, ``raw`` and ``ts`` are the
    previous packet's sequence number, raw and unwrapped timestamps (``nal.py`` reads them to
    take a middle fragment without a call)."""

    __slots__ = ("_unwrap", "last_seq", "raw", "ts")

    def __init__(self) -> None:
        self._unwrap = Unwrapper(32).unwrap
        self.last_seq = -2  # no packet yet: -1 is never a sequence number
        self.raw = -1
        self.ts = 0

    def step(self, seq: int, timestamp: int) -> tuple[int, bool]:
        last = self.last_seq
        self.last_seq = seq
        if timestamp != self.raw:  # the packets of one frame share their timestamp
            self.raw = timestamp
            self.ts = self._unwrap(timestamp)
        return self.ts, last >= 0 and seq != (last + 1) & 0xFFFF


class Depacketizer:
    """Base of the depacketizers: ``push`` feeds a parsed ``RTPPacket`` to ``receive``."""

    def push(self, packet) -> list[Frame]:
        """Add one packet (in sequence order); return the frames it completes."""
        payload = packet.payload
        return self.receive(packet.sequence, packet.timestamp, packet.marker,
                            payload if type(payload) is memoryview else memoryview(payload))

    def receive(self, seq: int, timestamp: int, marker: bool,
                payload: memoryview) -> list[Frame]:
        """Add one packet's fields; return the frames it completes (module docstring)."""
        raise NotImplementedError


class Packetizer:
    """Sequence numbering and timestamping shared by every payload format.

    ``initial_seq``/``initial_timestamp``/``ssrc`` should be random (RFC 3550 5.1); they are
    parameters so the caller owns the randomness and tests are reproducible. ``pts`` passed to
    ``packetize`` is in the track clock, which is the RTP clock for every codec we carry.
    """

    def __init__(self, payload_type: int, ssrc: int, mtu: int = DEFAULT_MTU,
                 initial_seq: int = 0, initial_timestamp: int = 0) -> None:
        if mtu < MIN_MTU:
            raise ValueError(f"mtu must be at least {MIN_MTU}")
        self.payload_type = payload_type
        self.ssrc = ssrc & 0xFFFFFFFF
        self.mtu = mtu
        self.seq = initial_seq & 0xFFFF  # sequence number of the next packet
        self.timestamp_offset = initial_timestamp & 0xFFFFFFFF
        self.packets_sent = 0
        self.octets_sent = 0  # payload octets, for the SR (RFC 3550 6.4.1)

    @property
    def max_payload(self) -> int:
        return self.mtu - 12

    def rtp_timestamp(self, pts: int) -> int:
        """The 32-bit RTP timestamp of ``pts`` (for RTP-Info rtptime and SR)."""
        return (pts + self.timestamp_offset) & 0xFFFFFFFF

    def sender_report(self, ntp: int, pts: int) -> bytes:
        """An RTCP SR (plus SDES CNAME) for this stream: ``ntp`` is the 64-bit NTP wall clock
        (``rtcp.unix_to_ntp(time.time())`` read by the caller) matching track time ``pts``.
        Send one right after PLAY and then every ~5-10 s (players align tracks with it)."""
        sr = rtcp.SenderReport(self.ssrc, ntp, self.rtp_timestamp(pts), self.packets_sent,
                               self.octets_sent)
        return rtcp.build_sr(sr) + rtcp.build_cname(self.ssrc, b"rtmpgop")

    def _packet(self, parts: list[bytes | memoryview], pts: int, marker: bool) -> bytes:
        hdr = _HDR.pack(0x80, (0x80 if marker else 0) | self.payload_type, self.seq,
                        self.rtp_timestamp(pts), self.ssrc)
        self.seq = (self.seq + 1) & 0xFFFF
        pkt = b"".join([hdr, *parts])
        self.packets_sent += 1
        self.octets_sent += len(pkt) - 12
        return pkt
