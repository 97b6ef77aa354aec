"""Events returned by ``ServerConnection.next_event()`` and ``ClientConnection.next_event()``.

Server events that are requests (``DescribeRequest``, ``AnnounceRequest``, ``PlayRequest``,
``RecordRequest``) wait for the application's answer (``accept_*`` or ``reject``); no other
request is processed meanwhile (interleaved frames still are). The rest are notifications.
"""

from __future__ import annotations

from dataclasses import dataclass

from rtmpgop.media import AccessUnit, Track
from rtmpgop.protocol.rtsp.headers import Transport


@dataclass(frozen=True, slots=True)
class DescribeRequest:
    """A player asks for ``path``: answer ``accept_describe(tracks)`` or ``reject(404)``."""

    path: str
    query: str
    url: str


@dataclass(frozen=True, slots=True)
class AnnounceRequest:
    """A publisher announces ``tracks`` on ``path``: ``accept_announce()`` or ``reject(s)``.
    Tracks whose codec we cannot carry are left out (``skipped`` counts them)."""

    path: str
    query: str
    url: str
    tracks: tuple[Track, ...]
    skipped: int = 0


@dataclass(frozen=True, slots=True)
class SetupDone:
    """A track was set up (notification). For UDP, ``transport.client_port`` is where the
    peer receives (play) or sends from (record): register it for demultiplexing."""

    track_id: int
    transport: Transport


@dataclass(frozen=True, slots=True)
class PlayRequest:
    """``accept_play({track_id: (next_seq, next_rtptime)})`` then send RTP, or ``reject``."""

    path: str
    query: str
    track_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class RecordRequest:
    """Every announced track is set up: ``accept_record()`` (media events follow)."""

    path: str
    query: str
    tracks: tuple[Track, ...]


@dataclass(frozen=True, slots=True)
class Paused:
    """The player sent PAUSE: stop sending until the next PlayRequest."""


@dataclass(frozen=True, slots=True)
class TrackChanged:
    """A received track's configuration is new or changed (announce before its units)."""

    track: Track


@dataclass(frozen=True, slots=True)
class MediaReceived:
    unit: AccessUnit


@dataclass(frozen=True, slots=True)
class MediaError:
    """A bad RTP/RTCP packet or payload was dropped (log at a limited rate, keep going)."""

    track_id: int
    error: Exception


@dataclass(frozen=True, slots=True)
class Teardown:
    """The session ended: TEARDOWN, timeout, or (client) a failure. The caller closes."""

    reason: str


# -- client-only events ------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Described:
    """DESCRIBE succeeded: the tracks about to be set up (unsupported media left out)."""

    tracks: tuple[Track, ...]
    base_url: str
    skipped: int = 0


@dataclass(frozen=True, slots=True)
class Playing:
    """PLAY (pull) or RECORD (push) was accepted: media flows from now on."""

    tracks: tuple[Track, ...]


@dataclass(frozen=True, slots=True)
class Redirect:
    """301/302: reconnect to ``location`` (it may be another host)."""

    location: str


@dataclass(frozen=True, slots=True)
class RequestFailed:
    """A request got an error status the client cannot recover from; close the connection."""

    method: str
    status: int
    reason: str


ServerEvent = (DescribeRequest | AnnounceRequest | SetupDone | PlayRequest | RecordRequest
               | Paused | TrackChanged | MediaReceived | MediaError | Teardown)
ClientEvent = (Described | Playing | Redirect | RequestFailed | TrackChanged | MediaReceived
               | MediaError | Teardown)
