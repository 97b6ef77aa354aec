"""Sans-IO RTMP client role: handshake (C0/C1 with an FP9 digest, like FFmpeg), connect,
createStream, then publish or play (Adobe RTMP 1.0 sections 5.2 and 7.2).

Strategy: the same message layer as the server (``RtmpConnection``); the caller drives the flow
with ``create_stream``/``publish``/``play`` as events arrive: ``HandshakeComplete`` (connect is
already sent), ``Connected``, ``StreamCreated``, ``Status`` (onStatus or ``_error``), then, when
playing, ``Metadata``/``VideoData``/``AudioData``. Used by the camera-sources pull of rtmp://
URLs, the benchmark load generator and the in-memory tests.
"""

from __future__ import annotations

from rtmpgop.protocol import amf0
from rtmpgop.protocol.rtmp import handshake
from rtmpgop.protocol.rtmp import messages as m
from rtmpgop.protocol.rtmp.connection import RtmpConnection
from rtmpgop.protocol.rtmp.events import Connected, HandshakeComplete, StreamCreated, Status
from rtmpgop.protocol.rtmp.messages import MessageType as T


class ClientConnection(RtmpConnection):
    """The client side of one RTMP connection. C0+C1 are queued at construction."""

    def __init__(self, app: str, tc_url: str, *, fourccs: tuple[str, ...] = (), digest: bool = True,
                 chunk_size: int = m.OUT_CHUNK_SIZE, time_ms: int = 0) -> None:
        super().__init__()
        self.app = app
        self.tc_url = tc_url
        self.fourccs = tuple(fourccs)
        self.chunk_size = chunk_size
        hello = handshake.client_hello(time_ms, digest)
        self._c1 = hello[1:]
        self._out.append(hello)
        self._txn = 1
        self._pending: dict[float, str] = {}  # transaction -> method awaiting _result
        self.connected = False

    def _next_txn(self, method: str) -> float:
        self._txn += 1
        t = float(self._txn)
        self._pending[t] = method
        return t

    def _handshake(self) -> None:
        resp = self.reader.read_raw(1 + 2 * handshake.PACKET_SIZE)
        if resp is None:
            return
        self._out.append(handshake.client_finish(self._c1, resp))
        self._handshaking = False
        self.set_chunk_size(self.chunk_size)
        obj: dict = {"app": self.app, "type": "nonprivate", "flashVer": "FMLE/3.0 (compatible; rtmpgop)",
                     "tcUrl": self.tc_url}
        if self.fourccs:
            obj["fourCcList"] = list(self.fourccs)
        self._pending[1.0] = "connect"
        self.send(m.command("connect", 1.0, obj))
        self._events.append(HandshakeComplete(False))

    # ------------------------------------------------------------------ requests
    def create_stream(self) -> None:
        """``createStream``; a ``StreamCreated(msid)`` event follows."""
        self.send(m.command("createStream", self._next_txn("createStream"), None))

    def publish(self, msid: int, name: str, kind: str = "live") -> None:
        """releaseStream, FCPublish, publish (FFmpeg's sequence). ``Status`` events follow."""
        self.send(m.command("releaseStream", self._next_txn("releaseStream"), None, name))
        self.send(m.command("FCPublish", self._next_txn("FCPublish"), None, name))
        self.send(m.command("publish", self._next_txn("publish"), None, name, kind, msid=msid,
                            csid=m.CSID_STREAM_COMMAND))

    def play(self, msid: int, name: str, start: float = -2000.0) -> None:
        """``play`` (FFmpeg's start -2000 = live) then SetBufferLength."""
        self.send(m.command("play", self._next_txn("play"), None, name, float(start), msid=msid,
                            csid=m.CSID_STREAM_COMMAND))
        self.send(m.user_control(m.UserControl.SET_BUFFER_LENGTH, msid, 3000))

    def unpublish(self, msid: int, name: str) -> None:
        """FCUnpublish then deleteStream."""
        self.send(m.command("FCUnpublish", self._next_txn("FCUnpublish"), None, name))
        self.send(m.command("deleteStream", self._next_txn("deleteStream"), None, float(msid)))

    def send_metadata(self, msid: int, values: dict) -> None:
        """``@setDataFrame("onMetaData", ECMA array)``."""
        self.send(m.data("@setDataFrame", "onMetaData", amf0.ECMAArray(values), msid=msid))

    def send_video(self, msid: int, timestamp: int, body) -> None:
        """One video message; ``body`` = FLV header + payload (bytes or a list of buffers)."""
        self.send(m.Message(T.VIDEO, body, msid, timestamp, m.CSID_VIDEO))

    def send_audio(self, msid: int, timestamp: int, body) -> None:
        self.send(m.Message(T.AUDIO, body, msid, timestamp, m.CSID_AUDIO))

    # ------------------------------------------------------------------ replies
    def _accepts_media(self, msid: int) -> bool:
        return True

    def _on_command(self, msid: int, cmd: m.Command) -> None:
        if cmd.name in ("_result", "_error"):
            method = self._pending.pop(cmd.transaction, "")
            info = cmd.args[0] if cmd.args else None
            if cmd.name == "_error":
                d = info if isinstance(info, dict) else {}
                self._events.append(Status(msid, "error", str(d.get("code", method + ".Failed")),
                                           str(d.get("description", ""))))
            elif method == "connect":
                self.connected = True
                self._events.append(Connected(info if isinstance(info, dict) else {}))
            elif method == "createStream" and isinstance(info, float):
                self._events.append(StreamCreated(int(info)))
        elif cmd.name == "onStatus":
            info = cmd.args[0] if cmd.args else None
            d = info if isinstance(info, dict) else {}
            self._events.append(Status(msid, str(d.get("level", "")), str(d.get("code", "")),
                                       str(d.get("description", ""))))
        else:
            self.ignored_messages += 1  # onBWDone, onFCPublish, _checkbw ...
