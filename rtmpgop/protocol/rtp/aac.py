"""AAC over RTP, RFC 3640 ``mpeg4-generic`` (AAC-hbr / AAC-lbr): depacketizer and packetizer.

Packet layout (RFC 3640 3.2): ``AU-headers-length (u16, bits) | AU-headers | pad to byte |
[auxiliary section] | AUs``. Each AU header holds AU-size (``sizelength`` bits), AU-Index or
AU-Index-delta, and the optional CTS/DTS/RAP/stream-state fields the fmtp declares. AU *i* of a
packet has timestamp ``ts + i * frame_length`` (1024, or 960 per the AudioSpecificConfig).

Fragmented AUs (3.2.3.2): one AU header per packet, M=0 until the last fragment, same
timestamp. The RFC says AU-size is the size of the *whole* AU (FFmpeg ``rtpenc_aac``), while
gortsplib writes the fragment length; we accept both: an AU-size larger than the data in a
packet with M=0 starts a fragment, which completes on M=1 or when the declared size is reached.
AUs wrapped in ADTS (some cameras) are unwrapped. Interleaving (non-zero index deltas) is
refused with ``Unsupported``. The packetizer writes AAC-hbr, one AU per packet, fragmenting
above the MTU with the RFC convention. ``LATMDepacketizer`` reads MP4A-LATM (RFC 6416).
"""

from __future__ import annotations

from dataclasses import dataclass

from rtmpgop import codecs
from rtmpgop.codecs import aac as caac
from rtmpgop.codecs.bits import BitReader
from rtmpgop.errors import CodecError, LimitExceeded, RTPError, Unsupported
from rtmpgop.media import Codec, CodecConfig
from rtmpgop.protocol.rtp.base import Depacketizer, Frame, PacketOrder, Packetizer

MAX_AAC_AU_BYTES = 64 * 1024
"""Largest AAC access unit: 6144 bits per channel (ISO 14496-3 4.5.3.1) times 48 channels
is 36 KiB; anything larger is garbage."""

MAX_AUS_PER_PACKET = 64  # far above FFmpeg's aggregation (it fills one MTU, ~ 5-8 AUs)


@dataclass(frozen=True, slots=True)
class AUHeaderFormat:
    """The RFC 3640 fmtp fields that shape AU headers (3.3). Defaults are AAC-hbr."""

    size_length: int = 13
    index_length: int = 3
    index_delta_length: int = 3
    cts_delta_length: int = 0
    dts_delta_length: int = 0
    random_access_indication: bool = False
    stream_state_indication: int = 0
    auxiliary_data_size_length: int = 0


AAC_HBR = AUHeaderFormat()
AAC_LBR = AUHeaderFormat(6, 2, 2)


def _is_adts(data: memoryview) -> bool:
    return len(data) >= 7 and data[0] == 0xFF and data[1] & 0xF6 == 0xF0


class AACDepacketizer(Depacketizer):
    """RTP packets -> ``Frame`` per raw AAC frame. ``config`` from the SDP ``config=``."""

    def __init__(self, config: CodecConfig | None, fmt: AUHeaderFormat = AAC_HBR) -> None:
        if fmt.size_length == 0:
            raise Unsupported("RFC 3640 constant-size AUs (sizelength=0) are not supported")
        self.config = config
        self.fmt = fmt
        # AAC-hbr without optional fields: each AU header is 16 bits (13-bit size, 3-bit index)
        self._two_byte_headers = fmt == AAC_HBR
        self.frame_length = 1024
        if config is not None:
            self.frame_length = caac.parse_asc(config.record).frame_length
        self._announced = False
        self._order = PacketOrder()
        self._frag: list[memoryview] | None = None
        self._frag_size = 0
        self._frag_total = 0
        self._frag_ts = 0
        self._resync = False
        self.dropped_frames = 0

    def _headers(self, payload: memoryview) -> tuple[list[int], int]:
        if len(payload) < 2:
            raise RTPError("AAC payload too short", length=len(payload))
        bits = payload[0] << 8 | payload[1]
        hbytes = (bits + 7) // 8
        if 2 + hbytes > len(payload):
            raise RTPError("AU headers past end", bits=bits, length=len(payload))
        f = self.fmt
        if self._two_byte_headers and bits == 16:  # AAC-hbr, one AU: the common packet
            word = payload[2] << 8 | payload[3]
            if word & 7:
                raise Unsupported("RFC 3640 interleaving (AU index != 0) is not supported",
                                  index=word & 7)
            return [word >> 3], 4
        r = BitReader(payload[2:2 + hbytes])
        sizes = []
        try:
            while r.position < bits:
                sizes.append(r.u(f.size_length))
                idx = r.u(f.index_length if len(sizes) == 1 else f.index_delta_length)
                if idx:
                    raise Unsupported("RFC 3640 interleaving (AU index != 0) is not supported",
                                      index=idx)
                if f.cts_delta_length and len(sizes) > 1 and r.flag():
                    r.skip(f.cts_delta_length)
                if f.dts_delta_length and r.flag():
                    r.skip(f.dts_delta_length)
                if f.random_access_indication:
                    r.skip(1)
                if f.stream_state_indication:
                    r.skip(f.stream_state_indication)
                if len(sizes) > MAX_AUS_PER_PACKET:
                    raise LimitExceeded("MAX_AUS_PER_PACKET", len(sizes), MAX_AUS_PER_PACKET)
        except CodecError:
            raise RTPError("AU headers truncated", bits=bits) from None
        pos = 2 + hbytes
        if f.auxiliary_data_size_length:
            if pos + (f.auxiliary_data_size_length + 7) // 8 > len(payload):
                raise RTPError("auxiliary section truncated")
            ar = BitReader(payload[pos:])
            aux = ar.u(f.auxiliary_data_size_length)
            pos += (f.auxiliary_data_size_length + aux + 7) // 8
        return sizes, pos

    def receive(self, seq: int, timestamp: int, marker: bool,
                payload: memoryview) -> list[Frame]:
        """Add one packet (in sequence order); return the AAC frames it completes.

        Raises ``RTPError``/``Unsupported``/``LimitExceeded``; the fragment in progress is then
        dropped and the depacketizer stays usable.
        """
        ts, gap = self._order.step(seq, timestamp)
        if self._frag is not None and (gap or ts != self._frag_ts):
            self._frag = None
            self.dropped_frames += 1
        if gap:
            self._resync = True  # a lost packet may have been the start of a fragmented AU
        try:
            sizes, pos = self._headers(payload)
        except (RTPError, LimitExceeded):
            self._frag = None
            raise
        data = payload[pos:]
        if self._frag is not None:
            if len(sizes) != 1:
                self._frag = None
                raise RTPError("AAC fragment with several AU headers", count=len(sizes))
            self._frag.append(data)
            self._frag_size += len(data)
            if self._frag_size > MAX_AAC_AU_BYTES:
                self._frag = None
                raise LimitExceeded("MAX_AAC_AU_BYTES", self._frag_size, MAX_AAC_AU_BYTES)
            if marker or self._frag_size >= self._frag_total:
                au = b"".join(self._frag)
                self._frag = None
                return self._frames([au], self._frag_ts)
            return []
        if len(sizes) == 1 and sizes[0] > len(data) and (self._resync or marker):
            # The middle or tail of a fragmented AU whose start we did not see: skip to M=1.
            self._resync = not marker
            return []
        self._resync = False
        if len(sizes) == 1 and sizes[0] > len(data):
            if sizes[0] > MAX_AAC_AU_BYTES:
                raise LimitExceeded("MAX_AAC_AU_BYTES", sizes[0], MAX_AAC_AU_BYTES)
            self._frag = [data]
            self._frag_size = len(data)
            self._frag_total = sizes[0]
            self._frag_ts = ts
            return []
        aus = []
        p = 0
        for size in sizes:
            if p + size > len(data):
                raise RTPError("AU past end of packet", size=size, remaining=len(data) - p)
            aus.append(data[p:p + size])
            p += size
        return self._frames(aus, ts)

    def _frames(self, aus: list, ts: int) -> list[Frame]:
        out = []
        i = 0
        for au in aus:
            au = au if isinstance(au, memoryview) else memoryview(au)
            for raw in (caac.strip_adts(au) if _is_adts(au) else [au]):
                if self.config is None and _is_adts(au):
                    asc, _, _ = caac.parse_adts(au)
                    self.config = codecs.make_config(Codec.AAC, caac.build_asc(
                        asc.object_type, asc.sample_rate, asc.channels))
                if self.config is None:
                    self.dropped_frames += 1
                    i += 1
                    continue
                changed = None
                if not self._announced:
                    self._announced = True
                    changed = self.config
                out.append(Frame(ts + i * self.frame_length, bytes(raw), True, changed))
                i += 1
        return out


MAX_LATM_ELEMENT_BYTES = 64 * 1024  # an AudioMuxElement holds a few AAC frames at most


class LATMDepacketizer(Depacketizer):
    """MP4A-LATM (RFC 6416 6.1) with the StreamMuxConfig out of band (``cpresent=0``, read
    from the SDP): each AudioMuxElement (possibly fragmented, M=1 on its last packet) holds
    ``subframes`` payloads, each ``PayloadLengthInfo`` (bytes of 255, then the rest) plus the
    raw AAC frame. Assumes frameLengthType 0, the only type cameras use."""

    def __init__(self, config: CodecConfig, subframes: int = 1) -> None:
        self.config = config
        self.subframes = subframes
        self.frame_length = caac.parse_asc(config.record).frame_length
        self._announced = False
        self._order = PacketOrder()
        self._parts: list[memoryview] = []
        self._size = 0
        self.dropped_frames = 0

    def receive(self, seq: int, timestamp: int, marker: bool,
                view: memoryview) -> list[Frame]:
        """Add one packet; return the AAC frames of a completed AudioMuxElement.
        Raises ``RTPError``/``LimitExceeded`` (the element is dropped)."""
        ts, gap = self._order.step(seq, timestamp)
        if gap:
            if self._parts:
                self.dropped_frames += 1
            self._parts, self._size = [], 0
        self._parts.append(view)
        self._size += len(view)
        if self._size > MAX_LATM_ELEMENT_BYTES:
            size, self._parts, self._size = self._size, [], 0
            raise LimitExceeded("MAX_LATM_ELEMENT_BYTES", size, MAX_LATM_ELEMENT_BYTES)
        if not marker:
            return []
        data = self._parts[0] if len(self._parts) == 1 else memoryview(b"".join(self._parts))
        self._parts, self._size = [], 0
        out = []
        pos = 0
        for i in range(self.subframes):
            length = 0
            while True:
                if pos >= len(data):
                    raise RTPError("LATM PayloadLengthInfo truncated", subframe=i)
                b = data[pos]
                pos += 1
                length += b
                if b != 255:
                    break
            if pos + length > len(data):
                raise RTPError("LATM payload past end", length=length, remaining=len(data) - pos)
            changed = None
            if not self._announced:
                self._announced = True
                changed = self.config
            out.append(Frame(ts + i * self.frame_length, bytes(data[pos:pos + length]), True,
                             changed))
            pos += length
        return out


class AACPacketizer(Packetizer):
    """Raw AAC frames -> RFC 3640 AAC-hbr packets, one AU per packet, fragmented above MTU."""

    def packetize(self, payload: bytes | memoryview, pts: int) -> list[bytes]:
        """Packets for one AAC frame at ``pts``. Raises ``ValueError`` above 8191 bytes
        (the 13-bit AU-size field)."""
        n = len(payload)
        if n >= 1 << 13:
            raise ValueError("AAC frame too large for AAC-hbr")
        hdr = bytes((0, 16, n >> 5, (n & 0x1F) << 3))
        room = self.max_payload - 4
        view = memoryview(payload)
        if n <= room:
            return [self._packet([hdr, view], pts, True)]
        return [self._packet([hdr, view[p:p + room]], pts, p + room >= n)
                for p in range(0, n, room)]
