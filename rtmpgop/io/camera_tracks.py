"""Camera tracks onto the hub, for pulled RTSP sources (io/rtsp_client.py).

Strategy: ``TrackMapper`` takes the client core's events (``Playing``, ``TrackChanged``,
``MediaReceived``) and calls ``sink.set_tracks`` / ``sink.push``:

- tracks are renumbered video first (hub ids from 0, as RTMP ingest numbers them, so the
  source watchdog's frozen-timestamp check sees the video on track 0);
- media waits until every track's configuration is known (cameras that send parameter sets
  only in-band), at most ``ANNOUNCE_GRACE`` seconds, then the configured tracks are published
  alone; a later or changed configuration is announced again, an identical repeat is not;
- ``Timeline`` puts all tracks on one timeline starting at 0, each track anchored at its
  first unit's arrival time. A timestamp that goes backwards or differs by more than
  ``MAX_TIMESTAMP_JUMP`` from what the wall clock since the track's previous unit predicts
  (encoder restart, SSRC change: the digest section 9.7) is re-anchored there instead of
  reaching subscribers. Equal timestamps pass (a frozen camera clock is the watchdog's call).

Differs from ``rtsp_ingest.RtspIngest`` (publishers): that one anchors by the publisher's
RTCP sender reports, which FFmpeg sends before its first packet, and trusts the publisher's
clock; cameras often send their first SR seconds late and restart encoders mid-session.
No I/O: time is a parameter.
"""

from __future__ import annotations

from rtmpgop.media import AccessUnit, MediaKind, Track

ANNOUNCE_GRACE = 3.0
"""Seconds after PLAY to wait for the in-band configuration of every track (cameras that put
parameter sets only in the stream); after that the tracks that have one are published alone."""

MAX_TIMESTAMP_JUMP = 5.0
"""A track's timestamp that differs this many seconds from what the wall clock since its
previous unit predicts is a discontinuity (encoder restart, new SSRC) and is re-anchored."""


class Timeline:
    """Maps per-track camera timestamps (RTP clock, arbitrary origin) onto one timeline that
    starts at 0, aligned by arrival time; see the module docstring for discontinuities."""

    def __init__(self) -> None:
        self._t0: float | None = None
        self._state: dict[int, tuple[int, int, float]] = {}  # track -> (offset, last dts, at)
        self.discontinuities = 0

    def map(self, au: AccessUnit, track: int, clock: int, now: float) -> AccessUnit:
        """``au`` moved to the common timeline (and renumbered to ``track``)."""
        st = self._state.get(track)
        if st is None:
            if self._t0 is None:
                self._t0 = now
            off = round((now - self._t0) * clock) - au.dts
        else:
            off, last, at = st
            dts = au.dts + off
            expected = last + round((now - at) * clock)
            if dts < last or abs(dts - expected) > MAX_TIMESTAMP_JUMP * clock:
                self.discontinuities += 1
                off = max(expected, last + 1) - au.dts
        self._state[track] = (off, au.dts + off, now)
        return AccessUnit(track, au.dts + off, au.pts + off, au.keyframe, au.payload)


class TrackMapper:
    """Camera events -> ``sink.set_tracks`` / ``sink.push`` (see the module docstring)."""

    def __init__(self, sink) -> None:
        self.sink = sink
        self.timeline = Timeline()
        self._tracks: dict[int, Track] = {}  # camera id -> latest camera track
        self._ids: dict[int, int] = {}  # camera id -> hub id
        self._announced: dict[int, Track] = {}  # hub id -> track as announced
        self._playing_at: float | None = None
        self.units_held = 0  # dropped while waiting for configurations

    def playing(self, tracks: tuple[Track, ...], now: float) -> None:
        """PLAY was accepted: number the tracks (video first) and announce what is known."""
        order = sorted(tracks, key=lambda t: (t.kind is not MediaKind.VIDEO, t.id))
        self._ids = {t.id: i for i, t in enumerate(order)}
        self._tracks = {t.id: t for t in tracks}
        self._playing_at = now
        self._maybe_announce(now)

    def changed(self, track: Track, now: float) -> None:
        """A configuration arrived in-band or changed: announce again if it differs."""
        self._tracks[track.id] = track
        self._maybe_announce(now)

    def _known(self) -> dict[int, Track]:
        return {self._ids[cid]: Track(self._ids[cid], t.config, t.clock_rate)
                for cid, t in self._tracks.items() if t.config.record and cid in self._ids}

    def _maybe_announce(self, now: float) -> None:
        known = self._known()
        if not known or known == self._announced:
            return
        since = now if self._playing_at is None else self._playing_at
        if not self._announced and len(known) < len(self._tracks) and \
                now - since < ANNOUNCE_GRACE:
            return  # wait a little for the other tracks' in-band configurations
        self._announced = known
        self.sink.set_tracks([known[i] for i in sorted(known)])

    def unit(self, au: AccessUnit, now: float) -> None:
        hub_id = self._ids.get(au.track)
        if hub_id is None:
            return
        if not self._announced:
            self._maybe_announce(now)
        track = self._announced.get(hub_id)
        if track is None:
            self.units_held += 1
            return
        self.sink.push(self.timeline.map(au, hub_id, track.clock_rate, now))
