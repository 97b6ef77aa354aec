"""AV1 RTP payload format (AOM "RTP Payload Format For AV1" v1.0, sections 4.3-4.4, 7):
depacketizer and packetizer; hub payloads are temporal units of OBUs with size fields (the
form MP4 samples and RTMP carry), without temporal delimiters.

Aggregation header (one byte): ``Z`` (first element continues an OBU from the previous
packet), ``Y`` (last element continues in the next packet), ``W`` (element count; 0 = every
element has a leb128 length, else the last of W elements has none), ``N`` (first packet of a
coded video sequence). OBUs travel without ``obu_has_size_field``; receivers accept both.

Strategy mirrors ``nal.py``: OBU parts are held as memoryviews and joined once per temporal
unit (M=1, or a timestamp change). A sequence gap drops the OBU being reassembled; an in-band
sequence header yields a new av1C configuration on the next frame.
"""

from __future__ import annotations

from rtmpgop import codecs
from rtmpgop.codecs import av1 as cav1
from rtmpgop.errors import CodecError, LimitExceeded, RTPError
from rtmpgop.media import Codec, CodecConfig
from rtmpgop.protocol.rtp.base import Depacketizer, Frame, PacketOrder, Packetizer
from rtmpgop.protocol.rtp.nal import MAX_AU_BYTES

MAX_OBUS_PER_TU = 64
"""OBUs per temporal unit: a sequence header, metadata, and one frame or frame header plus
tile groups per layer fit many times over; bounds per-frame bookkeeping."""

_DROP = (cav1.OBU_TEMPORAL_DELIMITER, cav1.OBU_TILE_LIST)  # AV1 RTP 5: SHOULD be removed


def _read_leb(view: memoryview, pos: int) -> tuple[int, int]:
    try:
        return cav1.read_leb128(view, pos)
    except CodecError:
        raise RTPError("truncated OBU element length", offset=pos) from None


class AV1Depacketizer(Depacketizer):
    """RTP packets -> ``Frame`` holding one temporal unit. ``config`` (av1C) or None."""

    def __init__(self, config: CodecConfig | None = None) -> None:
        self.config = config
        self._seq_header = b""
        if config is not None and config.record:
            obu = cav1.find_sequence_header(cav1.parse_av1c(config.record).config_obus)
            self._seq_header = bytes(obu.payload) if obu is not None else b""
        self._announced = False
        self._changed = False
        self._order = PacketOrder()
        self._tu_ts: int | None = None
        self._parts: list[bytes | memoryview] = []
        self._size = 0
        self._obus = 0
        self._frag: list[memoryview] | None = None
        self.dropped_frames = 0

    def receive(self, seq: int, timestamp: int, marker: bool,
                view: memoryview) -> list[Frame]:
        """Add one packet (in sequence order); return the temporal units it completes.

        Raises ``RTPError``/``LimitExceeded``; the unit in progress is then dropped.
        """
        ts, gap = self._order.step(seq, timestamp)
        out: list[Frame] = []
        if self._tu_ts is not None and ts != self._tu_ts:
            self._frag = None
            out += self._emit()
        if gap:
            self._frag = None
        self._tu_ts = ts
        try:
            self._elements(view)
        except (RTPError, LimitExceeded, CodecError):
            self._reset()
            raise
        if marker:
            out += self._emit()
        return out

    def _elements(self, view: memoryview) -> None:
        if not view:
            raise RTPError("empty AV1 payload")
        agg = view[0]
        z, y, w = agg & 0x80, agg & 0x40, (agg >> 4) & 3
        pos, n = 1, len(view)
        elems = []
        while pos < n:
            if w and len(elems) == w - 1:
                size = n - pos
            else:
                size, pos = _read_leb(view, pos)
                if size > n - pos:
                    raise RTPError("OBU element past end", size=size, remaining=n - pos)
            elems.append(view[pos:pos + size])
            pos += size
        for i, e in enumerate(elems):
            first, last = i == 0, i == len(elems) - 1
            if first and z:
                if self._frag is None:
                    continue  # continuation of an OBU we never saw the start of
                self._frag.append(e)
                if last and y:
                    return
                whole = b"".join(self._frag)
                self._frag = None
                self._add(memoryview(whole))
                continue
            if last and y:
                self._frag = [e]
                return
            self._add(e)

    def _add(self, obu: memoryview) -> None:
        if not obu:
            return
        h = obu[0]
        if h & 0x80:
            raise RTPError("OBU forbidden bit set")
        typ, ext, has_size = (h >> 3) & 0xF, h & 4, h & 2
        hlen = 2 if ext else 1
        if len(obu) < hlen:
            raise RTPError("truncated OBU header")
        if typ in _DROP:
            return
        if has_size:
            size, p = _read_leb(obu, hlen)
            payload = obu[p:p + size]
        else:
            payload = obu[hlen:]
        if typ == cav1.OBU_SEQUENCE_HEADER and bytes(payload) != self._seq_header:
            self._seq_header = bytes(payload)
            self._changed = True
        if self._obus + 1 > MAX_OBUS_PER_TU:
            raise LimitExceeded("MAX_OBUS_PER_TU", self._obus + 1, MAX_OBUS_PER_TU)
        head = bytes([h | 2]) + bytes(obu[1:hlen]) + cav1.leb128(len(payload))
        if self._size + len(head) + len(payload) > MAX_AU_BYTES:
            raise LimitExceeded("MAX_AU_BYTES", self._size + len(payload), MAX_AU_BYTES)
        self._parts += (head, payload)
        self._size += len(head) + len(payload)
        self._obus += 1

    def _reset(self) -> None:
        self._parts, self._size, self._obus, self._frag = [], 0, 0, None

    def _emit(self) -> list[Frame]:
        pts, self._tu_ts = self._tu_ts, None
        if not self._parts:
            return []
        payload = b"".join(self._parts)
        self._reset()
        changed = None
        if self._changed:
            self._changed = False
            hdr = bytes([cav1.OBU_SEQUENCE_HEADER << 3 | 2]) + cav1.leb128(
                len(self._seq_header)) + self._seq_header
            try:
                new = codecs.make_config(Codec.AV1, cav1.build_av1c(hdr))
            except CodecError:
                new = None
            if new is not None and (self.config is None or new.record != self.config.record):
                self.config = changed = new
        if self.config is None:
            self.dropped_frames += 1
            return []
        if not self._announced:
            self._announced = True
            changed = self.config
        try:
            key = cav1.is_keyframe(payload)
        except CodecError:
            key = False
        return [Frame(pts, payload, key, changed)]


class AV1Packetizer(Packetizer):
    """Temporal units -> RTP packets: OBUs without size fields, every element length-prefixed
    (W=0), fragmented with Z/Y across packets; N set on keyframes with a sequence header."""

    def packetize(self, payload: bytes | memoryview, pts: int) -> list[bytes]:
        """Packets for one temporal unit at ``pts``. Raises ``CodecError`` on bad OBUs."""
        elems: list[list[bytes | memoryview]] = []
        new_seq = False
        for obu in cav1.iter_obus(payload):
            if obu.type in _DROP:
                continue
            new_seq |= obu.type == cav1.OBU_SEQUENCE_HEADER
            head = bytes([obu.data[0] & ~2 & 0xFF]) + bytes(obu.data[1:2] if obu.has_extension
                                                             else b"")
            elems.append([head, obu.payload])
        new_seq = new_seq and cav1.is_keyframe(payload)
        room = self.max_payload - 1
        packets: list[list] = []  # per packet: [agg flags, parts, used]
        cur: list = [0, [], 0]
        for head, body in elems:
            data = memoryview(head + bytes(body)) if len(body) < 512 else None
            chunks: list[bytes | memoryview] = [data] if data is not None else [head, body]
            total = len(head) + len(body)
            offset = 0
            while offset < total:
                space = room - cur[2]
                take = min(total - offset, max(0, space - len(cav1.leb128(min(space, total)))))
                if take <= 0:
                    packets.append(cur)
                    cur = [0x80 if offset else 0, [], 0]
                    continue
                piece = _slice(chunks, offset, take)
                prefix = cav1.leb128(take)
                cur[1] += [prefix, *piece]
                cur[2] += len(prefix) + take
                offset += take
                if offset < total:
                    cur[0] |= 0x40
                    packets.append(cur)
                    cur = [0x80, [], 0]
        if cur[1]:
            packets.append(cur)
        if packets and new_seq:
            packets[0][0] |= 0x08
        return [self._packet([bytes([agg]), *parts], pts, i == len(packets) - 1)
                for i, (agg, parts, _) in enumerate(packets)]


def _slice(chunks: list, offset: int, length: int) -> list[bytes | memoryview]:
    """``length`` bytes from ``offset`` of the concatenation of ``chunks``, as views."""
    out = []
    for c in chunks:
        c = c if isinstance(c, memoryview) else memoryview(c)
        if offset >= len(c):
            offset -= len(c)
            continue
        part = c[offset:offset + length]
        out.append(part)
        length -= len(part)
        offset = 0
        if not length:
            break
    return out
