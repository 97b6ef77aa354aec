"""H.265 RTP payload format (RFC 7798): depacketizer (single NAL, AP, FU) and packetizer
(single NAL, FU), AVCC-style (4-byte length) access units in and out. Shared rules: ``nal.py``.

DONL/DOND fields (``sprop-max-don-diff`` > 0) are refused when the SDP is read
(``rtsp/sdp.py``), as gortsplib does; PACI packets (type 50) are refused here.
"""

from __future__ import annotations

from rtmpgop import codecs
from rtmpgop.codecs import h264 as c264
from rtmpgop.codecs import h265 as c265
from rtmpgop.errors import CodecError, RTPError, Unsupported
from rtmpgop.media import Codec, CodecConfig
from rtmpgop.protocol.rtp.nal import NALDepacketizer, NALPacketizer

AP, FU, PACI = 48, 49, 50
VPS, SPS, PPS = 32, 33, 34
IRAP = range(16, 24)  # BLA, IDR, CRA and the reserved IRAP types 22-23

MAX_NALUS_PER_AU = 21
"""NAL units per H.265 access unit (gortsplib's limit); slices + VPS/SPS/PPS/SEI fit."""


class H265Depacketizer(NALDepacketizer):
    """RTP packets -> ``Frame`` with a length-prefixed payload. ``config`` from the SDP."""

    MAX_NALUS_PER_AU = MAX_NALUS_PER_AU
    FU_FIRST_BYTES = frozenset(b for b in range(256) if (b >> 1) & 0x3F == FU)
    FU_HEADER_AT = 2

    def __init__(self, config: CodecConfig | None = None) -> None:
        super().__init__(config)
        self._ps: dict[int, bytes | None] = {VPS: None, SPS: None, PPS: None}
        if config is not None:
            rec = c265.parse_hvcc(config.record)
            for t, arr in ((VPS, rec.vps), (SPS, rec.sps), (PPS, rec.pps)):
                self._ps[t] = arr[0] if arr else None

    def _split(self, payload: memoryview) -> list[tuple[list, int]]:
        if len(payload) < 3:
            raise RTPError("H.265 payload too short", length=len(payload))
        t = (payload[0] >> 1) & 0x3F
        if t == AP:
            out = []
            pos, n = 2, len(payload)
            while pos + 2 <= n:
                size = payload[pos] << 8 | payload[pos + 1]
                pos += 2
                if size == 0:
                    break
                if pos + size > n:
                    raise RTPError("AP NAL size past end", size=size, remaining=n - pos)
                out.append(([payload[pos:pos + size]], size))
                pos += size
            return out
        if t == FU:
            fu = payload[2]
            start, end, ntype = fu & 0x80, fu & 0x40, fu & 0x3F
            if start:
                self._drop_fu()
                self._fu = [bytes([(payload[0] & 0x81) | (ntype << 1), payload[1]])]
                self._fu_size = 2
            self._fu_append(payload[3:])
            if end and self._fu is not None:
                parts, size = self._fu, self._fu_size
                self._fu, self._fu_size = None, 0
                return [(parts, size)]
            return []
        if t == PACI:
            raise Unsupported("H.265 PACI packets are not supported", nal_type=t)
        if t > PACI:
            raise RTPError("invalid H.265 NAL type", nal_type=t)
        return [([payload], len(payload))]

    def _on_nal(self, first: bytes | memoryview, parts: list, length: int) -> None:
        t = (first[0] >> 1) & 0x3F
        if t in IRAP:
            self._key = True
        elif t in self._ps:
            nal = b"".join(parts)
            if nal != self._ps[t]:
                self._ps[t] = nal
                self._params_changed = True

    def _build_config(self) -> CodecConfig | None:
        if any(v is None for v in self._ps.values()):
            return None
        try:
            rec = c265.build_hvcc([self._ps[VPS]], [self._ps[SPS]], [self._ps[PPS]])
            return codecs.make_config(Codec.H265, rec)
        except CodecError:
            return None


class H265Packetizer(NALPacketizer):
    """Length-prefixed access units -> RTP packets (single NAL or FU); VPS/SPS/PPS from
    ``config`` go in-band before IRAP access units that lack them."""

    HEADER = 2
    FU_OVERHEAD = 3

    def __init__(self, payload_type: int, ssrc: int, config: CodecConfig | None = None,
                 **kw) -> None:
        super().__init__(payload_type, ssrc, **kw)
        self._params: list[bytes] = []
        if config is not None and config.record:
            rec = c265.parse_hvcc(config.record)
            self._params = [*rec.vps[:1], *rec.sps[:1], *rec.pps[:1]]

    def _fu_headers(self, nal: memoryview) -> tuple[bytes, int]:
        return bytes([(nal[0] & 0x81) | (FU << 1), nal[1]]), (nal[0] >> 1) & 0x3F

    def packetize(self, payload: bytes | memoryview, pts: int) -> list[bytes]:
        """Packets for one access unit at ``pts``. Raises ``CodecError`` on bad framing."""
        nalus = list(c264.iter_avcc(payload))
        types = [(n[0] >> 1) & 0x3F for n in nalus]
        if self._params and any(t in IRAP for t in types) and SPS not in types:
            nalus = [memoryview(p) for p in self._params] + nalus
        return self.packetize_nalus(nalus, pts)
