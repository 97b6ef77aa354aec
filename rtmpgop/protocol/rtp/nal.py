"""Access-unit assembly and fragmentation shared by the H.264 (RFC 6184) and H.265 (RFC 7798)
payload formats; the codec modules supply header layouts and NAL type numbers.

Depacketizing strategy: NAL units are collected as lists of ``memoryview`` parts (a single-NAL
packet is one view; an FU is the rebuilt header plus one view per fragment) and joined with
their 4-byte length prefixes in ONE ``b"".join`` when the access unit ends. An AU ends on the
marker bit (RFC 6184 5.1) or, as a fallback, when the timestamp changes (the FLIR M400 and
others never set M). Any sequence gap drops the fragmented NAL unit in progress; a fragment
without a start (joining mid-stream) is ignored. Parameter sets seen in-band replace those from
the SDP and produce a new ``CodecConfig`` on the next frame. Frames before any configuration
is known are dropped (``dropped_frames``): no decoder could use them.
"""

from __future__ import annotations

from rtmpgop.errors import CodecError, LimitExceeded, RTPError
from rtmpgop.media import CodecConfig
from rtmpgop.protocol.rtp.base import Depacketizer, Frame, PacketOrder, Packetizer

MAX_AU_BYTES = 8 * 1024 * 1024
"""Largest access unit we assemble (gortsplib's limit): a 4K intra frame at a very high
bitrate stays below it, and it bounds memory per publisher."""

_LEN = [n.to_bytes(4, "big") for n in range(256)]


def _len4(n: int) -> bytes:
    return _LEN[n] if n < 256 else n.to_bytes(4, "big")


class NALDepacketizer(Depacketizer):
    """Base class; subclasses implement ``_split`` (packet -> NAL part lists) and the hooks."""

    MAX_NALUS_PER_AU = 50  # overridden per codec
    FU_FIRST_BYTES: frozenset[int] = frozenset()  # payload first bytes that make an FU
    FU_HEADER_AT = 1  # offset of the FU header: after the 1- or 2-byte payload header

    def __init__(self, config: CodecConfig | None) -> None:
        self.config = config
        self._announced = False  # config returned with a frame yet
        self._order = PacketOrder()
        self._au_ts: int | None = None
        self._parts: list[bytes | memoryview] = []
        self._nalus = 0
        self._size = 0
        self._key = False
        self._fu: list[bytes | memoryview] | None = None  # parts of the fragmented NAL
        self._fu_size = 0
        self._params_changed = False
        self.dropped_frames = 0
        self.dropped_nalus = 0

    # -- subclass hooks ----------------------------------------------------------------
    def _split(self, payload: memoryview) -> list[tuple[list[bytes | memoryview], int]]:
        """NAL units completed by this payload: (parts, total length). May start/extend FU."""
        raise NotImplementedError

    def _on_nal(self, first_bytes: bytes | memoryview, parts: list, length: int) -> None:
        """Inspect a complete NAL unit: keyframe flag, parameter sets."""
        raise NotImplementedError

    def _build_config(self) -> CodecConfig | None:
        """A new configuration from the in-band parameter sets, or None if incomplete."""
        raise NotImplementedError

    # -- driver ------------------------------------------------------------------------
    def receive(self, seq: int, timestamp: int, marker: bool,
                payload: memoryview) -> list[Frame]:
        """Add one packet (in sequence order); return the access units it completes.

        Raises ``RTPError`` on a malformed or refused payload and ``LimitExceeded`` on an
        oversized access unit; either way the unit in progress is dropped.
        """
        order = self._order
        if (self._fu is not None and timestamp == order.raw and not marker
                and seq == (order.last_seq + 1) & 0xFFFF):
            # A middle fragment of the NAL unit in progress (most packets of a frame): taken
            # here, without the calls of the general path below.
            h = self.FU_HEADER_AT
            if (len(payload) > h + 1 and not payload[h] & 0xC0
                    and payload[0] in self.FU_FIRST_BYTES):
                size = self._fu_size + len(payload) - h - 1
                if self._size + size <= MAX_AU_BYTES:
                    order.last_seq = seq
                    self._fu.append(payload[h + 1:])
                    self._fu_size = size
                    return []
        ts, gap = order.step(seq, timestamp)
        out = None
        if ts != self._au_ts and self._au_ts is not None:
            self._drop_fu()
            out = self._emit()
        if gap:
            self._drop_fu()
        self._au_ts = ts
        try:
            nals = self._split(payload)
            if nals:
                for parts, length in nals:
                    self._add(parts, length)
        except (RTPError, CodecError, LimitExceeded):
            self._reset_au()
            raise
        if marker:
            return out + self._emit() if out else self._emit()
        return out or []

    def _drop_fu(self) -> None:
        if self._fu is not None:
            self.dropped_nalus += 1
        self._fu = None
        self._fu_size = 0

    def _reset_au(self) -> None:
        self._parts = []
        self._nalus = self._size = 0
        self._key = False
        self._drop_fu()

    def _add(self, parts: list[bytes | memoryview], length: int) -> None:
        if length == 0:
            return
        if self._nalus + 1 > self.MAX_NALUS_PER_AU:
            raise LimitExceeded("MAX_NALUS_PER_AU", self._nalus + 1, self.MAX_NALUS_PER_AU)
        if self._size + length + 4 > MAX_AU_BYTES:
            raise LimitExceeded("MAX_AU_BYTES", self._size + length + 4, MAX_AU_BYTES)
        self._on_nal(parts[0], parts, length)
        self._parts.append(_len4(length))
        self._parts.extend(parts)
        self._nalus += 1
        self._size += length + 4

    def _fu_append(self, data: memoryview) -> None:
        if self._fu is None:
            return  # no start fragment seen (joined mid-NAL, or after a gap)
        if self._size + self._fu_size + len(data) > MAX_AU_BYTES:
            self._drop_fu()
            raise LimitExceeded("MAX_AU_BYTES", self._size + self._fu_size + len(data),
                                MAX_AU_BYTES)
        self._fu.append(data)
        self._fu_size += len(data)

    def _emit(self) -> list[Frame]:
        if not self._nalus:
            self._au_ts = None
            return []
        payload = b"".join(self._parts)
        key = self._key
        pts = self._au_ts
        self._reset_au()
        self._au_ts = None
        changed = None
        if self._params_changed:
            self._params_changed = False
            new = self._build_config()
            if new is not None and (self.config is None or new.record != self.config.record):
                self.config = new
                changed = new
        if self.config is None:
            self.dropped_frames += 1
            return []
        if not self._announced:
            self._announced = True
            changed = self.config
        return [Frame(pts, payload, key, changed)]


class NALPacketizer(Packetizer):
    """Single NAL unit packets, and FU fragmentation above the MTU (shared H.264/H.265)."""

    HEADER = 1  # NAL header bytes: 1 for H.264, 2 for H.265
    FU_OVERHEAD = 2  # FU indicator + header (H.264) or payload header + FU header (H.265)

    def _fu_headers(self, nal: memoryview) -> tuple[bytes, int]:
        """(payload header bytes before the FU header, NAL type for the FU header)."""
        raise NotImplementedError

    def packetize_nalus(self, nalus: list[memoryview], pts: int) -> list[bytes]:
        """Packets for one access unit given as NAL units; marker on the last packet."""
        out: list[bytes] = []
        room = self.max_payload
        for i, nal in enumerate(nalus):
            last_nal = i == len(nalus) - 1
            if len(nal) <= room:
                out.append(self._packet([nal], pts, last_nal))
                continue
            prefix, ntype = self._fu_headers(nal)
            data = nal[self.HEADER:]
            step = room - self.FU_OVERHEAD
            for pos in range(0, len(data), step):
                start = pos == 0
                end = pos + step >= len(data)
                fu = bytes([(0x80 if start else 0) | (0x40 if end else 0) | ntype])
                out.append(self._packet([prefix, fu, data[pos:pos + step]], pts,
                                        end and last_nal))
        return out
