"""The exception hierarchy of rtmpgop.

::

    RtmpgopError                      base of everything we raise on purpose
    ├── ProtocolError(ValueError)     the PEER broke a rule: close that one connection, log one line
    │   ├── HandshakeError            RTMP handshake (bad version, short packet)
    │   ├── ChunkError                RTMP chunk stream (csid, fmt, bad continuation)
    │   ├── AMFError                  AMF0 value (bad marker, depth, truncated)
    │   ├── FLVError                  FLV / E-RTMP tag body
    │   ├── RTSPError                 RTSP message (status to answer with in .status)
    │   ├── SDPError                  SDP body
    │   ├── RTPError                  RTP/RTCP packet or depacketization
    │   ├── CodecError                codec bitstream (SPS, config record, ADTS, OBU)
    │   └── LimitExceeded             a named limit was crossed (.limit, .value, .maximum)
    ├── Unsupported(ProtocolError)    a legal feature we refuse on purpose (RTMPE, AMF3 ...)
    ├── PathBusy                      a second publisher on a busy path
    └── ConfigError                   invalid configuration (names the key)

Our own misuse raises the built-in errors (TypeError, RuntimeError, ...), never these.
Errors carry fields so logs and tests can check them without parsing text.
"""

from __future__ import annotations


class RtmpgopError(Exception):
    """Base class of every error rtmpgop raises on purpose."""


class ProtocolError(RtmpgopError, ValueError):
    """The peer sent something that breaks the protocol. Close only that connection.

    ``fields`` holds structured context (csid, message type, length ...) for the log line.
    """

    def __init__(self, message: str, **fields: object) -> None:
        super().__init__(message)
        self.fields = fields

    def __str__(self) -> str:
        base = super().__str__()
        if not self.fields:
            return base
        extra = " ".join(f"{k}={v!r}" for k, v in self.fields.items())
        return f"{base} ({extra})"


class HandshakeError(ProtocolError):
    """RTMP handshake failure."""


class ChunkError(ProtocolError):
    """RTMP chunk stream violation."""


class AMFError(ProtocolError):
    """Malformed AMF0 data."""


class FLVError(ProtocolError):
    """Malformed FLV / Enhanced-RTMP audio or video body."""


class RTSPError(ProtocolError):
    """Malformed or out-of-state RTSP message. ``status`` is the code to answer with."""

    def __init__(self, message: str, status: int = 400, **fields: object) -> None:
        super().__init__(message, **fields)
        self.status = status


class SDPError(ProtocolError):
    """Malformed SDP body."""


class RTPError(ProtocolError):
    """Malformed RTP/RTCP packet or payload."""


class CodecError(ProtocolError):
    """Malformed codec bitstream or configuration record."""


class LimitExceeded(ProtocolError):
    """A named safety limit was crossed. ``limit`` names the constant."""

    def __init__(self, limit: str, value: int, maximum: int, **fields: object) -> None:
        super().__init__(f"{limit} exceeded: {value} > {maximum}", **fields)
        self.limit = limit
        self.value = value
        self.maximum = maximum


class Unsupported(ProtocolError):
    """A legal protocol feature that rtmpgop refuses on purpose (named in the message)."""


class PathBusy(RtmpgopError):
    """Somebody already publishes on this path."""

    def __init__(self, path: str) -> None:
        super().__init__(f"path {path!r} already has a publisher")
        self.path = path


class ConfigError(RtmpgopError):
    """Invalid configuration. ``key`` names the offending setting."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"config {key}: {message}")
        self.key = key
