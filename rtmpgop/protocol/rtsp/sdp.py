"""SDP (RFC 8866, the RTSP subset of RFC 2326 appendix C): parse and format session
descriptions; ``a=rtpmap``/``a=fmtp``/``a=control`` per media; control URL resolution.

Strategy: a line-oriented, tolerant parser (LF or CRLF, unknown lines kept as attributes,
whitespace trimmed around fmtp tokens and after ``=``: ``sprop-parameter-sets= Z0L...`` exists)
building frozen records. fmtp parameter names are lower-cased (live555 writes ``SizeLength``).
Codec mapping to ``rtmpgop.media.Track`` lives in ``sdp_tracks.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rtmpgop.errors import LimitExceeded, SDPError
from rtmpgop.protocol.rtsp.urls import split_origin

MAX_SDP_MEDIA = 16
"""Media sections per description. Cameras announce 1-3 (video, audio, ONVIF metadata);
more is abuse, and every media costs a SETUP and a depacketizer."""

STATIC_PAYLOAD_TYPES = {0: ("PCMU", 8000, 1), 8: ("PCMA", 8000, 1), 14: ("MPA", 90000, None),
                        26: ("JPEG", 90000, None), 32: ("MPV", 90000, None)}


@dataclass(frozen=True, slots=True)
class MediaDescription:
    """One ``m=`` section. ``fmtp`` keys are lower-case; ``encoding`` keeps the SDP's case."""

    kind: str  # video, audio, application
    port: int = 0
    proto: str = "RTP/AVP"
    payload_type: int = 96
    encoding: str = ""
    clock_rate: int = 90000
    channels: int | None = None
    fmtp: tuple[tuple[str, str], ...] = ()
    control: str | None = None
    attributes: tuple[tuple[str, str], ...] = ()  # other a= lines, in order
    bandwidth: tuple[str, ...] = ()  # b= lines

    def param(self, name: str, default: str | None = None) -> str | None:
        """The fmtp parameter ``name`` (case-insensitive), or ``default``."""
        low = name.lower()
        for k, v in self.fmtp:
            if k == low:
                return v
        return default

    def attribute(self, name: str) -> str | None:
        for k, v in self.attributes:
            if k == name:
                return v
        return None


@dataclass(frozen=True, slots=True)
class SessionDescription:
    media: tuple[MediaDescription, ...] = ()
    name: str = "Stream"
    origin: str = "- 0 0 IN IP4 127.0.0.1"
    connection: str | None = "IN IP4 0.0.0.0"
    control: str | None = "*"
    attributes: tuple[tuple[str, str], ...] = field(default=())


def parse_fmtp(value: str) -> tuple[int | None, tuple[tuple[str, str], ...]]:
    """Parse ``<pt> k=v; k=v`` into (payload type, lower-cased pairs)."""
    value = value.strip()
    pt_s, _, rest = value.partition(" ")
    try:
        pt: int | None = int(pt_s)
    except ValueError:
        pt, rest = None, value
    pairs = []
    for tok in rest.split(";"):
        tok = tok.strip()
        if not tok:
            continue
        k, _, v = tok.partition("=")
        pairs.append((k.strip().lower(), v.strip()))
    return pt, tuple(pairs)


def _media(lines: list[tuple[str, str]]) -> MediaDescription:
    kind_line = lines[0][1].split()
    if len(kind_line) < 4:
        raise SDPError("malformed m= line", line=lines[0][1][:80])
    kind, port_s, proto, fmts = kind_line[0], kind_line[1], kind_line[2], kind_line[3:]
    try:
        port = int(port_s.split("/")[0])
        pt = int(fmts[0])
    except ValueError:
        raise SDPError("malformed m= line", line=lines[0][1][:80]) from None
    kw: dict = {"kind": kind.lower(), "port": port, "proto": proto, "payload_type": pt}
    if pt in STATIC_PAYLOAD_TYPES:
        enc, rate, ch = STATIC_PAYLOAD_TYPES[pt]
        kw.update(encoding=enc, clock_rate=rate, channels=ch)
    attrs = []
    bw = []
    for t, v in lines[1:]:
        if t == "b":
            bw.append(v)
        if t != "a":
            continue
        name, _, val = v.partition(":")
        name = name.strip()
        val = val.strip()
        if name == "rtpmap":
            p, _, spec = val.partition(" ")
            if p.strip() != str(pt):
                continue
            parts = spec.strip().split("/")
            kw["encoding"] = parts[0]
            try:
                if len(parts) > 1:
                    kw["clock_rate"] = int(parts[1])
                if len(parts) > 2 and parts[2]:
                    kw["channels"] = int(parts[2])
            except ValueError:
                raise SDPError("malformed rtpmap", value=val[:80]) from None
            if kw["clock_rate"] <= 0:
                raise SDPError("rtpmap clock rate must be positive", value=val[:80])
        elif name == "fmtp":
            fpt, pairs = parse_fmtp(val)
            if fpt is None or fpt == pt:
                kw["fmtp"] = pairs
        elif name == "control":
            kw["control"] = val
        else:
            attrs.append((name, val))
    return MediaDescription(attributes=tuple(attrs), bandwidth=tuple(bw), **kw)


def parse_sdp(body: bytes | str) -> SessionDescription:
    """Parse an SDP body. Only the first format of each ``m=`` line is used.

    Raises ``SDPError`` on non-text input, a missing ``v=0`` or a malformed ``m=`` line, and
    ``LimitExceeded`` above ``MAX_SDP_MEDIA`` media sections.
    """
    if isinstance(body, (bytes, bytearray, memoryview)):
        try:
            text = bytes(body).decode("utf-8")
        except UnicodeDecodeError:
            text = bytes(body).decode("latin-1")
    else:
        text = body
    lines = []
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        raw = raw.strip()
        if not raw:
            continue
        if len(raw) < 2 or raw[1] != "=":
            raise SDPError("malformed SDP line", line=raw[:80])
        lines.append((raw[0], raw[2:]))
    if not lines or lines[0] != ("v", "0"):
        raise SDPError("SDP must start with v=0")
    session: dict = {"connection": None, "control": None}
    attrs = []
    sections: list[list[tuple[str, str]]] = []
    for t, v in lines:
        if t == "m":
            if len(sections) >= MAX_SDP_MEDIA:
                raise LimitExceeded("MAX_SDP_MEDIA", len(sections) + 1, MAX_SDP_MEDIA)
            sections.append([(t, v)])
        elif sections:
            sections[-1].append((t, v))
        elif t == "s":
            session["name"] = v
        elif t == "o":
            session["origin"] = v
        elif t == "c":
            session["connection"] = v
        elif t == "a":
            name, _, val = v.partition(":")
            if name.strip() == "control":
                session["control"] = val.strip()
            else:
                attrs.append((name.strip(), val.strip()))
    media = tuple(_media(s) for s in sections)
    return SessionDescription(media=media, attributes=tuple(attrs), **session)


def format_media(m: MediaDescription) -> list[str]:
    lines = [f"m={m.kind} {m.port} {m.proto} {m.payload_type}"]
    lines += [f"b={b}" for b in m.bandwidth]
    if m.encoding:
        rtpmap = f"{m.encoding}/{m.clock_rate}"
        if m.channels:
            rtpmap += f"/{m.channels}"
        lines.append(f"a=rtpmap:{m.payload_type} {rtpmap}")
    if m.fmtp:
        params = "; ".join(f"{k}={v}" if v else k for k, v in m.fmtp)
        lines.append(f"a=fmtp:{m.payload_type} {params}")
    for k, v in m.attributes:
        lines.append(f"a={k}:{v}" if v else f"a={k}")
    if m.control is not None:
        lines.append(f"a=control:{m.control}")
    return lines


def format_sdp(s: SessionDescription) -> bytes:
    """Serialize with CRLF line ends (what FFmpeg, GStreamer and VLC all accept)."""
    lines = ["v=0", f"o={s.origin}", f"s={s.name}"]
    if s.connection:
        lines.append(f"c={s.connection}")
    lines.append("t=0 0")
    for k, v in s.attributes:
        lines.append(f"a={k}:{v}" if v else f"a={k}")
    if s.control is not None:
        lines.append(f"a=control:{s.control}")
    for m in s.media:
        lines += format_media(m)
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def resolve_control(base: str, control: str | None) -> str:
    """The URL of a media (or the session) from the base URL and its ``a=control``.

    ``*`` or absent: the base. Absolute ``rtsp://`` controls keep their path but take the
    base's host (cameras behind NAT announce internal addresses). Relative controls are
    appended with a ``/`` unless the base ends with one or the control starts with ``?``.
    """
    if control is None or control == "*" or control == "":
        return base
    if "://" in control:
        origin, _ = split_origin(base)
        _, rest = split_origin(control)
        return origin + rest if origin else control
    if control.startswith("/"):
        origin, _ = split_origin(base)
        return origin + control
    if control.startswith("?") or base.endswith("/"):
        return base + control
    return base + "/" + control
