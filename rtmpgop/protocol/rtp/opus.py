"""Opus over RTP (RFC 7587): one Opus packet per RTP packet, 48 kHz clock, no payload header.

The SDP always says ``opus/48000/2`` (RFC 7587 7); the real channel count comes from
``sprop-stereo``/``stereo`` and is carried in the ``OpusHead`` of the track's CodecConfig.
An Opus packet larger than the MTU is sent whole (RFC 7587 has no fragmentation; Opus packets
are at most 1275 bytes per frame, so this does not happen with sane encoders).
"""

from __future__ import annotations

from rtmpgop.errors import LimitExceeded
from rtmpgop.media import CodecConfig
from rtmpgop.protocol.rtp.base import Depacketizer, Frame, Packetizer
from rtmpgop.protocol.rtp.packet import Unwrapper

MAX_OPUS_PACKET = 120 * 1275 // 20 + 64
"""6 frames of 20 ms at the 1275-byte maximum (RFC 6716 3.4) plus headroom: larger payloads
cannot be Opus."""


class OpusDepacketizer(Depacketizer):
    """RTP packets -> one ``Frame`` each; ``config`` (OpusHead) from the SDP."""

    def __init__(self, config: CodecConfig) -> None:
        self.config = config
        self._announced = False
        self._ts = Unwrapper(32)

    def receive(self, seq: int, timestamp: int, marker: bool,
                payload: memoryview) -> list[Frame]:
        """Return the Opus packet as a frame. Raises ``LimitExceeded`` on an oversized one;
        empty payloads (DTX gaps) produce nothing."""
        ts = self._ts.unwrap(timestamp)
        n = len(payload)
        if n == 0:
            return []
        if n > MAX_OPUS_PACKET:
            raise LimitExceeded("MAX_OPUS_PACKET", n, MAX_OPUS_PACKET)
        changed = None
        if not self._announced:
            self._announced = True
            changed = self.config
        return [Frame(ts, bytes(payload), True, changed)]


class OpusPacketizer(Packetizer):
    """Opus packets -> RTP packets (marker set on each, as gortsplib does)."""

    def packetize(self, payload: bytes | memoryview, pts: int) -> list[bytes]:
        """One RTP packet carrying ``payload`` at ``pts`` (48 kHz)."""
        return [self._packet([payload], pts, True)]
