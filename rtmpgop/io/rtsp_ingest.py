"""RTP tracks onto the hub, for both RTSP roles: publishers (``rtsp_server``, ANNOUNCE/RECORD)
and pulled cameras (``rtsp_client``, DESCRIBE/PLAY) (DESIGN.md 1-2).

No I/O, time is a parameter (it lives in ``io`` because it joins protocol events and the
hub). ``RtspIngest`` takes the core's track list and events and calls ``sink.set_tracks`` /
``sink.push`` (a hub ``Channel`` or a source's ``Sink``). Strategy:

- tracks are renumbered video first (hub ids from 0, as RTMP ingest numbers them, so the
  source watchdog's frozen-timestamp check sees the video on track 0);
- media waits until every track's configuration is known (an SDP without parameter sets;
  cameras that send them only in-band), at most ``ANNOUNCE_GRACE`` seconds, then the
  configured tracks are published alone; a later or changed configuration is announced again,
  an identical repeat (FFmpeg repeats its SPS/PPS in-band) is not;
- ``Timeline`` puts all tracks on one timeline starting at ``START_SECONDS``. RTP timestamps of
  the tracks start at unrelated random values (RFC 3550 5.1), so each track's first unit is
  placed where the sender's RTCP sender report (NTP <-> RTP) says it belongs relative to the
  stream's first unit (FFmpeg sends SRs before its first packet), or by arrival time when
  there is no SR yet (cameras often send their first SR seconds late). After that a track
  follows its own clock; a timestamp that goes backwards or differs by more than
  ``MAX_TIMESTAMP_JUMP`` from what the wall clock since the track's previous unit predicts
  (encoder restart, SSRC change: the digest section 9.7) is re-anchored there instead of
  reaching subscribers. Equal timestamps pass (a frozen camera clock is the watchdog's call).
"""

from __future__ import annotations

from rtmpgop.media import AccessUnit, MediaKind, Track

START_SECONDS = 1.0
"""Hub time of a stream's first unit (its pts): room for video DTS before PTS (B-frames) and
for tracks whose SR places them slightly before the first unit to arrive, so no timestamp
goes negative."""

ANNOUNCE_GRACE = 3.0
"""Seconds after the track list is known to wait for the in-band configuration of every track
(cameras that put parameter sets only in the stream); after that the tracks that have one are
published alone."""

MAX_TIMESTAMP_JUMP = 5.0
"""A track's timestamp that differs this many seconds from what the wall clock since its
previous unit predicts is a discontinuity (encoder restart, new SSRC) and is re-anchored."""


def sr_seconds(sr, rtp_timestamp: int, clock_rate: int) -> float:
    """Sender's wall clock (NTP seconds) of ``rtp_timestamp`` by the ``SenderReport`` ``sr``
    (the 32-bit difference taken modulo, so unwrapped timestamps work)."""
    delta = ((rtp_timestamp - sr.rtp_timestamp + 0x80000000) & 0xFFFFFFFF) - 0x80000000
    return sr.ntp / 2**32 + delta / clock_rate


class Timeline:
    """Maps per-track RTP timestamps (arbitrary origins) onto one timeline that starts at
    ``START_SECONDS``, aligned by SR or arrival; see the module docstring."""

    def __init__(self) -> None:
        self._t0: float | None = None  # arrival of the stream's first unit
        self._ntp0: float | None = None  # sender's NTP time of it, when an SR told us
        self._state: dict[int, tuple[int, int, float]] = {}  # track -> (offset, last dts, at)
        self.discontinuities = 0

    def anchored(self, track: int) -> bool:
        """Whether ``track`` has its offset (only a track's first unit uses an SR)."""
        return track in self._state

    def map(self, au: AccessUnit, track: int, clock: int, now: float,
            ntp: float | None = None) -> AccessUnit:
        """``au`` moved to the common timeline (and renumbered to ``track``). ``ntp``: the
        sender's NTP seconds of ``au.pts`` from its SR, or None."""
        st = self._state.get(track)
        if st is None:
            if self._t0 is None:
                self._t0, self._ntp0 = now, ntp
            if ntp is not None and self._ntp0 is not None:
                sec = ntp - self._ntp0
            else:
                sec = now - self._t0
            off = round(max(START_SECONDS + sec, 0.0) * clock) - au.pts
        else:
            off, last, at = st
            dts = au.dts + off
            expected = last + round((now - at) * clock)
            if dts < last or abs(dts - expected) > MAX_TIMESTAMP_JUMP * clock:
                self.discontinuities += 1
                off = max(expected, last + 1) - au.dts
        self._state[track] = (off, au.dts + off, now)
        return AccessUnit(track, au.dts + off, au.pts + off, au.keyframe, au.payload)


class RtspIngest:
    """RTP tracks of one session -> ``sink.set_tracks`` / ``sink.push`` (module docstring).

    ``sender_report(track_id)`` returns the sender's last RTCP ``SenderReport`` of a track (the
    core's ``sender_report``), or None; without it, arrival time aligns the tracks.
    """

    def __init__(self, sink, sender_report=None) -> None:
        self.sink = sink
        self.sender_report = sender_report
        self.timeline = Timeline()
        self._tracks: dict[int, Track] = {}  # core id -> latest track
        self._ids: dict[int, int] = {}  # core id -> hub id
        self._announced: dict[int, Track] = {}  # hub id -> track as announced
        self._started_at: float | None = None
        self.units_held = 0  # dropped while waiting for configurations
        self.frames_in = 0

    def start(self, tracks: tuple[Track, ...], now: float) -> None:
        """The track list is known (ANNOUNCE, or PLAY accepted): number the tracks (video
        first) and announce what is configured."""
        order = sorted(tracks, key=lambda t: (t.kind is not MediaKind.VIDEO, t.id))
        self._ids = {t.id: i for i, t in enumerate(order)}
        self._tracks = {t.id: t for t in tracks}
        self._started_at = now
        self._maybe_announce(now)

    def track_changed(self, track: Track, now: float) -> None:
        """A configuration arrived in-band or changed (``TrackChanged``): announce again if
        it differs from what subscribers have."""
        self._tracks[track.id] = track
        self._maybe_announce(now)

    def _known(self) -> dict[int, Track]:
        return {self._ids[cid]: Track(self._ids[cid], t.config, t.clock_rate)
                for cid, t in self._tracks.items() if t.config.record and cid in self._ids}

    def _maybe_announce(self, now: float) -> None:
        known = self._known()
        if not known or known == self._announced:
            return
        since = now if self._started_at is None else self._started_at
        if not self._announced and len(known) < len(self._tracks) and \
                now - since < ANNOUNCE_GRACE:
            return  # wait a little for the other tracks' in-band configurations
        self._announced = known
        self.sink.set_tracks([known[i] for i in sorted(known)])

    def push(self, au: AccessUnit, now: float) -> None:
        """Put ``au`` (RTP clock, core track id) on the stream timeline and push it; ``now``
        is the caller's clock in seconds (arrival). Units of a track whose configuration is
        not announced yet are dropped (nothing could decode them)."""
        hub_id = self._ids.get(au.track)
        if hub_id is None:
            return
        if not self._announced:
            self._maybe_announce(now)
        track = self._announced.get(hub_id)
        if track is None:
            self.units_held += 1
            return
        ntp = None
        if self.sender_report is not None and not self.timeline.anchored(hub_id):
            sr = self.sender_report(au.track)
            if sr is not None:
                ntp = sr_seconds(sr, au.pts, track.clock_rate)
        self.frames_in += 1
        self.sink.push(self.timeline.map(au, hub_id, track.clock_rate, now, ntp))
