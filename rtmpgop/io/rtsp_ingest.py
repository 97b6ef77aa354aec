"""RTSP ingest glue: a RECORD session's events -> hub tracks and access units (DESIGN.md 1-2).

No I/O (it lives in ``io`` next to ``rtmp_ingest`` because it joins protocol events and the
hub); tested without sockets through the listener tests. Strategy:

- Tracks go to ``channel.set_tracks`` once their configuration is known: an SDP without
  parameter sets leaves a track's record empty, and the core announces the in-band one with
  ``TrackChanged`` before that track's first unit. A ``TrackChanged`` equal to what we have
  (FFmpeg repeats its SPS/PPS in-band) changes nothing.
- Each track's RTP timestamps start at a random value (RFC 3550 5.1): an offset per track puts
  them on one timeline (see ``RtspIngest``), so RTMP, LL-HLS and RTSP players stay in sync.
"""

from __future__ import annotations

from rtmpgop.channels import Channel
from rtmpgop.media import AccessUnit, Track

INGEST_START_SECONDS = 1.0
"""Hub time of a publisher's first unit: room for video DTS before PTS (B-frames) and tracks
that start slightly earlier than the first one to arrive, so no timestamp goes negative."""


class RtspIngest:
    """A publisher: announced tracks -> ``channel.set_tracks`` once configured; units -> push.

    RTP timestamps of the tracks start at unrelated random values (RFC 3550 5.1), so each
    track gets an offset that puts it on one timeline: the track's first unit is placed where
    the publisher's RTCP sender report (NTP <-> RTP) says it belongs relative to the first unit
    of the stream, or by arrival time when that track had no SR yet. The first unit lands at
    ``INGEST_START_SECONDS``.
    """

    def __init__(self, channel: Channel, tracks: tuple[Track, ...], sr_of) -> None:
        self.channel = channel
        self.tracks = {t.id: t for t in tracks}
        self.announced: tuple[Track, ...] = ()
        self.sr_of = sr_of  # track id -> the publisher's last SenderReport or None
        self._offsets: dict[int, int] = {}
        self._origin_ntp: float | None = None
        self._origin_arrival = 0.0
        self.frames_in = 0

    def track_changed(self, track: Track) -> None:
        """A track's configuration is new or changed (``TrackChanged``)."""
        if self.tracks.get(track.id) == track:
            return  # in-band parameter sets equal to the SDP's: nothing new for subscribers
        self.tracks[track.id] = track
        self.announced = ()  # re-announce before the next unit

    def _ntp_seconds(self, track: Track, pts: int) -> float | None:
        sr = self.sr_of(track.id)
        if sr is None:
            return None
        delta = ((pts - sr.rtp_timestamp + 0x80000000) & 0xFFFFFFFF) - 0x80000000
        return sr.ntp / 2**32 + delta / track.clock_rate

    def _offset(self, unit, track: Track, arrival: float) -> int:
        ntp = self._ntp_seconds(track, unit.pts)
        if not self._offsets:
            self._origin_ntp = None if ntp is None else ntp - INGEST_START_SECONDS
            self._origin_arrival = arrival - INGEST_START_SECONDS
        if ntp is not None and self._origin_ntp is not None:
            sec = ntp - self._origin_ntp
        else:
            sec = arrival - self._origin_arrival
        off = self._offsets[unit.track] = round(max(sec, 0.0) * track.clock_rate) - unit.pts
        return off

    def push(self, unit: AccessUnit, arrival: float) -> None:
        """Put ``unit`` (RTP clock) on the stream timeline and push it; ``arrival`` is the
        caller's clock in seconds. Units of a track whose configuration is unknown are dropped
        (nothing could decode them)."""
        if not self.announced:
            known = tuple(t for t in self.tracks.values() if t.config.record)
            if not known or self.tracks.get(unit.track) not in known:
                return  # its configuration comes in-band with a later unit
            self.announced = known
            self.channel.set_tracks(known)
        off = self._offsets.get(unit.track)
        if off is None:
            off = self._offset(unit, self.tracks[unit.track], arrival)
        self.frames_in += 1
        self.channel.push(AccessUnit(unit.track, unit.dts + off, unit.pts + off, unit.keyframe,
                                     unit.payload))
