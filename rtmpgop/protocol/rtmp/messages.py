"""RTMP message types, protocol control and user control messages, AMF0 commands
(Adobe RTMP 1.0 sections 5.4, 6.2 and 7.1-7.2; status codes as FMS, nginx-rtmp and FFmpeg use).

Strategy: small pure functions. Encoders return the message body ``bytes``; decoders take a body
(``bytes`` or ``chunk.Pieces``) and raise ``ChunkError``/``AMFError`` on malformed input. A
``Message`` is what connections queue for sending (body serialized later by the chunk writer).
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from rtmpgop.errors import AMFError, ChunkError
from rtmpgop.protocol import amf0

# chunk stream ids we send on (FFmpeg's choice; never map csid to meaning on input)
CSID_CONTROL = 2
CSID_COMMAND = 3
CSID_AUDIO = 4
CSID_VIDEO = 6
CSID_STREAM_COMMAND = 5
CSID_DATA = 5

DEFAULT_WINDOW = 2_500_000
"""Window Ack Size and Set Peer Bandwidth we announce (FFmpeg, gortmplib: 2.5 MB)."""

OUT_CHUNK_SIZE = 4096
"""Chunk size we send with (OBS and nginx: 4096). An FFmpeg publisher echoes it back."""


class MessageType(enum.IntEnum):
    SET_CHUNK_SIZE = 1
    ABORT = 2
    ACK = 3
    USER_CONTROL = 4
    WINDOW_ACK_SIZE = 5
    SET_PEER_BANDWIDTH = 6
    AUDIO = 8
    VIDEO = 9
    DATA_AMF3 = 15
    SHARED_OBJECT_AMF3 = 16
    COMMAND_AMF3 = 17
    DATA_AMF0 = 18
    SHARED_OBJECT_AMF0 = 19
    COMMAND_AMF0 = 20
    AGGREGATE = 22


class UserControl(enum.IntEnum):
    STREAM_BEGIN = 0
    STREAM_EOF = 1
    STREAM_DRY = 2
    SET_BUFFER_LENGTH = 3
    STREAM_IS_RECORDED = 4
    PING_REQUEST = 6
    PING_RESPONSE = 7


@dataclass(frozen=True, slots=True)
class Message:
    """An outgoing message: chunked on send (fmt 0 + fmt 3) on ``csid``."""

    type_id: int
    body: bytes | list
    msid: int = 0
    timestamp: int = 0
    csid: int = CSID_CONTROL


@dataclass(frozen=True, slots=True)
class Command:
    """An AMF0 command: name, transaction id, command object and further arguments."""

    name: str
    transaction: float
    obj: object = None
    args: tuple = ()


_U32 = struct.Struct(">I")


# ---------------------------------------------------------------------------- control
def set_chunk_size(size: int) -> Message:
    return Message(MessageType.SET_CHUNK_SIZE, _U32.pack(size & 0x7FFFFFFF))


def abort(csid: int) -> Message:
    return Message(MessageType.ABORT, _U32.pack(csid))


def ack(sequence: int) -> Message:
    return Message(MessageType.ACK, _U32.pack(sequence & 0xFFFFFFFF))


def window_ack_size(size: int) -> Message:
    return Message(MessageType.WINDOW_ACK_SIZE, _U32.pack(size))


def set_peer_bandwidth(size: int, limit: int = 2) -> Message:
    return Message(MessageType.SET_PEER_BANDWIDTH, _U32.pack(size) + bytes([limit]))


def user_control(event: int, *values: int) -> Message:
    """A User Control message: event type then u32 values (stream id, buffer length, ping time)."""
    body = struct.pack(">H", event) + b"".join(_U32.pack(v & 0xFFFFFFFF) for v in values)
    return Message(MessageType.USER_CONTROL, body)


def parse_u32(body) -> int:
    """The u32 of Set Chunk Size / Abort / Ack / Window Ack Size. Raises ``ChunkError``."""
    if len(body) < 4:
        raise ChunkError("short control message", length=len(body))
    return int.from_bytes(body[0:4], "big")


def parse_user_control(body) -> tuple[int, tuple[int, ...]]:
    """Returns ``(event, values)`` of a User Control message. Raises ``ChunkError``."""
    if len(body) < 2:
        raise ChunkError("short user control message", length=len(body))
    raw = bytes(body[0:min(len(body), 10)])
    event = int.from_bytes(raw[0:2], "big")
    values = tuple(int.from_bytes(raw[i:i + 4], "big") for i in range(2, len(raw) - 3, 4))
    return event, values


# ---------------------------------------------------------------------------- commands
def command(name: str, transaction: float, obj: object = None, *args: object, msid: int = 0,
            csid: int = CSID_COMMAND) -> Message:
    """An AMF0 command message (type 20)."""
    return Message(MessageType.COMMAND_AMF0, amf0.encode(name, float(transaction), obj, *args),
                   msid=msid, csid=csid)


def data(*values: object, msid: int = 0, timestamp: int = 0, csid: int = CSID_DATA) -> Message:
    """An AMF0 data message (type 18), e.g. ``onMetaData`` or ``|RtmpSampleAccess``."""
    return Message(MessageType.DATA_AMF0, amf0.encode(*values), msid=msid, timestamp=timestamp, csid=csid)


def parse_command(body, amf3: bool = False) -> Command:
    """Decode a command message body (type 20, or 17 with its leading 0x00). Raises ``AMFError``."""
    raw = body[0:len(body)] if not isinstance(body, bytes) else body
    if amf3:
        raw = raw[1:]  # AMF3 command: a format byte, then AMF0 (that may switch to AMF3: refused)
    values = amf0.decode_all(raw)
    if len(values) < 2 or not isinstance(values[0], str) or not isinstance(values[1], (int, float)):
        raise AMFError("command without name and transaction id", values=len(values))
    return Command(values[0], values[1], values[2] if len(values) > 2 else None, tuple(values[3:]))


def parse_data(body, amf3: bool = False) -> list:
    """Decode a data message body (type 18, or 15 with its leading 0x00). Raises ``AMFError``."""
    raw = body[0:len(body)] if not isinstance(body, bytes) else body
    if amf3:
        raw = raw[1:]
    return amf0.decode_all(raw)


def status(level: str, code: str, description: str = "", **extra: object) -> dict:
    """The info object of ``onStatus``/``_result``: level, code, description (+ extra)."""
    d = {"level": level, "code": code, "description": description}
    d.update(extra)
    return d


def on_status(msid: int, level: str, code: str, description: str = "", **extra: object) -> Message:
    """``onStatus(0, null, {level, code, description})`` on ``msid`` (GStreamer matches by msid)."""
    return command("onStatus", 0, None, status(level, code, description, **extra), msid=msid,
                   csid=CSID_STREAM_COMMAND)
