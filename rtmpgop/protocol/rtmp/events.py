"""Events a sans-IO RTMP connection emits from ``next_event()`` (server and client roles).

All are frozen, slotted records; the per-message media events (``VideoData``, ``AudioData``)
are NamedTuples, as immutable but about 2.5x cheaper to build than a frozen dataclass on
CPython 3.11 (one per media message). Media events carry their payload as ``bytes`` copied once from
the chunk pieces (the FLV header already skipped), and ``timestamp`` in unwrapped milliseconds
(32-bit RTMP timestamps are unwrapped per message stream and media type).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from rtmpgop.protocol.flv import AudioTag, VideoTag


@dataclass(frozen=True, slots=True)
class HandshakeComplete:
    digest: bool  # the peer used the FP9 digest handshake


@dataclass(frozen=True, slots=True)
class Connect:
    """``connect``: answer with ``accept_connect`` or ``reject_connect``."""

    transaction: float
    app: str
    tc_url: str
    fourccs: tuple[str, ...] = ()  # E-RTMP fourCcList ("*" = any)
    object_encoding: float = 0.0
    params: dict = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CreateStream:
    """``createStream`` (already answered with ``msid``)."""

    transaction: float
    msid: int


@dataclass(frozen=True, slots=True)
class Publish:
    """``publish``: answer with ``accept_publish`` or ``reject_publish``. ``name`` has no query."""

    msid: int
    name: str
    kind: str = "live"
    query: str = ""
    transaction: float = 0.0


@dataclass(frozen=True, slots=True)
class Play:
    """``play``: answer with ``accept_play`` or ``reject_play``. ``start`` < 0 means live."""

    msid: int
    name: str
    start: float = -2.0
    query: str = ""
    transaction: float = 0.0


@dataclass(frozen=True, slots=True)
class Metadata:
    """``@setDataFrame("onMetaData", ...)`` or ``onMetaData``: ordered (key, value) pairs."""

    msid: int
    values: tuple[tuple[str, object], ...]
    timestamp: int = 0


class VideoData(NamedTuple):
    msid: int
    timestamp: int
    tag: VideoTag
    payload: bytes


class AudioData(NamedTuple):
    msid: int
    timestamp: int
    tag: AudioTag
    payload: bytes


@dataclass(frozen=True, slots=True)
class Unpublish:
    """``FCUnpublish`` (or ``closeStream``): the publisher says it is done."""

    msid: int
    name: str = ""


@dataclass(frozen=True, slots=True)
class DeleteStream:
    msid: int


# ---------------------------------------------------------------------------- client role
@dataclass(frozen=True, slots=True)
class Connected:
    """The server accepted ``connect`` (``info`` is its status object)."""

    info: dict


@dataclass(frozen=True, slots=True)
class StreamCreated:
    msid: int


@dataclass(frozen=True, slots=True)
class Status:
    """An ``onStatus`` (or a ``_error`` reply): level "status"/"error" and a code."""

    msid: int
    level: str
    code: str
    description: str = ""


Event = (HandshakeComplete | Connect | CreateStream | Publish | Play | Metadata | VideoData
         | AudioData | Unpublish | DeleteStream | Connected | StreamCreated | Status)
