"""H.264 RTP payload format (RFC 6184): depacketizer (single NAL, STAP-A, FU-A) and packetizer
(single NAL, FU-A), AVCC access units in and out. Shared assembly rules: ``rtp/nal.py``.

Packetization mode 1 only (what FFmpeg, GStreamer and cameras use); STAP-B, MTAP and FU-B
belong to the interleaved mode 2 and are refused with ``Unsupported``.

Camera quirks handled (digest section 6): FU-A with S and E both set (CostarHD) is a whole
NAL unit; Annex-B start codes inside a single-NAL packet (one or several NAL units) are split;
zero-size padding at the end of a STAP-A is skipped.
"""

from __future__ import annotations

from rtmpgop import codecs
from rtmpgop.codecs import h264 as c264
from rtmpgop.errors import CodecError, RTPError, Unsupported
from rtmpgop.media import Codec, CodecConfig
from rtmpgop.protocol.rtp.nal import NALDepacketizer, NALPacketizer

STAP_A, STAP_B, MTAP16, MTAP24, FU_A, FU_B = 24, 25, 26, 27, 28, 29
IDR, SPS, PPS, AUD = 5, 7, 8, 9

MAX_NALUS_PER_AU = 50
"""NAL units per H.264 access unit (gortsplib's limit): slices of a multi-slice camera frame
plus SPS/PPS/SEI/AUD stay well below it."""

_BYTE = [bytes((i,)) for i in range(256)]


def _is_annexb(payload: memoryview) -> bool:
    # NAL type 0 is unspecified, so a leading zero byte can only be a start code.
    return len(payload) >= 4 and payload[0] == 0 and payload[1] == 0 and (
        payload[2] == 1 or (payload[2] == 0 and payload[3] == 1))


class H264Depacketizer(NALDepacketizer):
    """RTP packets -> ``Frame`` with an AVCC payload. ``config`` from the SDP, or None."""

    MAX_NALUS_PER_AU = MAX_NALUS_PER_AU
    FU_FIRST_BYTES = frozenset(b for b in range(256) if b & 0x1F == FU_A)

    def __init__(self, config: CodecConfig | None = None) -> None:
        super().__init__(config)
        self._sps: bytes | None = None
        self._pps: bytes | None = None
        if config is not None:
            rec = c264.parse_avcc(config.record)
            self._sps = rec.sps[0] if rec.sps else None
            self._pps = rec.pps[0] if rec.pps else None

    def _split(self, payload: memoryview) -> list[tuple[list, int]]:
        if not payload:
            raise RTPError("empty H.264 payload")
        t = payload[0] & 0x1F
        if t == STAP_A:
            out = []
            pos, n = 1, len(payload)
            while pos + 2 <= n:
                size = payload[pos] << 8 | payload[pos + 1]
                pos += 2
                if size == 0:  # trailing zero-size padding (seen in the wild)
                    break
                if pos + size > n:
                    raise RTPError("STAP-A NAL size past end", size=size, remaining=n - pos)
                out.append(([payload[pos:pos + size]], size))
                pos += size
            return out
        if t == FU_A:  # the hot path: most packets of a frame are FU-A fragments
            if len(payload) < 3:
                raise RTPError("FU-A too short", length=len(payload))
            fu = payload[1]
            end = fu & 0x40
            if fu & 0x80:
                self._drop_fu()
                self._fu = [_BYTE[(payload[0] & 0xE0) | (fu & 0x1F)]]
                self._fu_size = 1
            self._fu_append(payload[2:])
            if end and self._fu is not None:
                parts, size = self._fu, self._fu_size
                self._fu, self._fu_size = None, 0
                return [(parts, size)]
            return []
        if t in (STAP_B, MTAP16, MTAP24, FU_B):
            raise Unsupported("H.264 interleaved packetization (mode 2) is not supported",
                              nal_type=t)
        if t == 0 and _is_annexb(payload):
            return [([nal], len(nal)) for nal in c264.split_annexb(payload)]
        if t == 0 or t > 29:
            raise RTPError("invalid H.264 NAL type", nal_type=t)
        return [([payload], len(payload))]

    def _on_nal(self, first: bytes | memoryview, parts: list, length: int) -> None:
        t = first[0] & 0x1F
        if t == IDR:
            self._key = True
        elif t in (SPS, PPS):
            nal = b"".join(parts)
            if t == SPS and nal != self._sps:
                self._sps = nal
                self._params_changed = True
            elif t == PPS and nal != self._pps:
                self._pps = nal
                self._params_changed = True

    def _build_config(self) -> CodecConfig | None:
        if self._sps is None or self._pps is None:
            return None
        try:
            return codecs.make_config(Codec.H264, c264.build_avcc([self._sps], [self._pps]))
        except CodecError:
            return None  # a broken in-band SPS: keep the configuration we have


class H264Packetizer(NALPacketizer):
    """AVCC access units -> RTP packets (single NAL or FU-A).

    With ``config`` given, SPS/PPS are sent in-band before every keyframe that lacks them
    (RTMP publishers keep them only in the avcC), so players joining late can start.
    """

    HEADER = 1
    FU_OVERHEAD = 2

    def __init__(self, payload_type: int, ssrc: int, config: CodecConfig | None = None,
                 **kw) -> None:
        super().__init__(payload_type, ssrc, **kw)
        self._params: list[bytes] = []
        if config is not None and config.record:
            rec = c264.parse_avcc(config.record)
            self._params = [*rec.sps[:1], *rec.pps[:1]]

    def _fu_headers(self, nal: memoryview) -> tuple[bytes, int]:
        return bytes([(nal[0] & 0xE0) | FU_A]), nal[0] & 0x1F

    def packetize(self, payload: bytes | memoryview, pts: int) -> list[bytes]:
        """Packets for one AVCC access unit at ``pts``. Raises ``CodecError`` on bad framing."""
        nalus = list(c264.iter_avcc(payload))
        if self._params and any(n[0] & 0x1F == IDR for n in nalus) and not any(
                n[0] & 0x1F == SPS for n in nalus):
            nalus = [memoryview(p) for p in self._params] + nalus
        return self.packetize_nalus(nalus, pts)
