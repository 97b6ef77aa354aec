"""RTSP header values (RFC 2326 section 12): Transport (12.39), Session (12.37), RTP-Info
(12.33), Range (12.29, npt only), Public (12.28), parsed tolerantly and formatted canonically.

Tolerance follows what real peers send (see the digest section 3): ``mode=record``,
``mode="RECORD"`` and ``mode=receive`` all mean record; the profile may be ``RTP/AVP``,
``RTP/AVP/UDP`` or ``RTP/AVP/TCP``; several comma-separated alternatives may be offered.
``destination=`` is parsed but the server must ignore it (it would make us a reflector).
"""

from __future__ import annotations

from dataclasses import dataclass

from rtmpgop.errors import RTSPError


def _unquote(v: str) -> str:
    v = v.strip()
    if len(v) >= 2 and v[0] == v[-1] == '"':
        v = v[1:-1]
    return v


def _pair(v: str, key: str) -> tuple[int, int]:
    a, _, b = v.partition("-")
    try:
        lo = int(a)
        hi = int(b) if b else lo + 1
    except ValueError:
        raise RTSPError(f"bad {key} in Transport", status=400, value=v[:40]) from None
    if not (0 <= lo <= 65535 and 0 <= hi <= 65535):
        raise RTSPError(f"{key} out of range", status=400, value=v[:40])
    return lo, hi


@dataclass(frozen=True, slots=True)
class Transport:
    """One Transport alternative. ``protocol`` is "TCP" or "UDP"."""

    protocol: str = "UDP"
    profile: str = "RTP/AVP"  # RTP/AVP or RTP/SAVP etc.; we only serve RTP/AVP
    unicast: bool = True
    interleaved: tuple[int, int] | None = None
    client_port: tuple[int, int] | None = None
    server_port: tuple[int, int] | None = None
    ssrc: int | None = None
    mode: str | None = None  # "play" or "record" (normalised), None when absent
    destination: str | None = None  # parsed for completeness; never honoured by the server
    ttl: int | None = None

    @property
    def record(self) -> bool:
        return self.mode == "record"

    def format(self) -> str:
        """Canonical header value, e.g. ``RTP/AVP/TCP;unicast;interleaved=0-1``."""
        spec = self.profile + ("/TCP" if self.protocol == "TCP" else "")
        parts = [spec, "unicast" if self.unicast else "multicast"]
        if self.destination is not None:
            parts.append(f"destination={self.destination}")
        if self.interleaved is not None:
            parts.append("interleaved=%d-%d" % self.interleaved)
        if self.client_port is not None:
            parts.append("client_port=%d-%d" % self.client_port)
        if self.server_port is not None:
            parts.append("server_port=%d-%d" % self.server_port)
        if self.ssrc is not None:
            parts.append(f"ssrc={self.ssrc:08X}")
        if self.ttl is not None:
            parts.append(f"ttl={self.ttl}")
        if self.mode is not None:
            parts.append(f"mode={self.mode}")
        return ";".join(parts)


def _parse_one(spec: str) -> Transport:
    tokens = [t.strip() for t in spec.split(";") if t.strip()]
    if not tokens:
        raise RTSPError("empty Transport", status=400)
    proto_parts = tokens[0].upper().split("/")
    if len(proto_parts) < 2 or proto_parts[0] != "RTP":
        raise RTSPError("unsupported transport spec", status=461, spec=tokens[0][:40])
    profile = "/".join(proto_parts[:2])
    lower = proto_parts[2] if len(proto_parts) > 2 else "UDP"
    if lower not in ("UDP", "TCP"):
        raise RTSPError("unsupported lower transport", status=461, spec=tokens[0][:40])
    kw: dict = {"protocol": lower, "profile": profile}
    for tok in tokens[1:]:
        key, _, val = tok.partition("=")
        key = key.strip().lower()
        val = _unquote(val)
        if key == "unicast":
            kw["unicast"] = True
        elif key == "multicast":
            kw["unicast"] = False
        elif key == "interleaved":
            kw["interleaved"] = _pair(val, key)
        elif key == "client_port":
            kw["client_port"] = _pair(val, key)
        elif key == "server_port":
            kw["server_port"] = _pair(val, key)
        elif key == "ssrc":
            try:
                kw["ssrc"] = int(val, 16) & 0xFFFFFFFF
            except ValueError:
                pass  # some servers write decimal or garbage; the SSRC is informative only
        elif key == "mode":
            m = val.lower()
            kw["mode"] = "record" if m in ("record", "receive") else m
        elif key == "destination":
            kw["destination"] = val
        elif key == "ttl" and val.isdigit():
            kw["ttl"] = int(val)
    return Transport(**kw)


def parse_transport(value: str) -> list[Transport]:
    """Parse a Transport header into its alternatives, in the client's order of preference.

    Raises ``RTSPError`` (status 461) when no alternative is an RTP transport we know, or
    (status 400) on malformed port pairs.
    """
    out = []
    err: RTSPError | None = None
    for spec in value.split(","):
        if not spec.strip():
            continue
        try:
            out.append(_parse_one(spec))
        except RTSPError as e:
            err = e
    if not out:
        raise err or RTSPError("empty Transport", status=400)
    return out


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    timeout: int | None = None

    def format(self) -> str:
        return self.id if self.timeout is None else f"{self.id};timeout={self.timeout}"


def parse_session(value: str) -> Session:
    """Parse ``id[;timeout=N]``. The id is the text up to the first ``;``."""
    sid, _, rest = value.partition(";")
    sid = sid.strip()
    if not sid:
        raise RTSPError("empty Session", status=400)
    timeout = None
    for tok in rest.split(";"):
        k, _, v = tok.partition("=")
        if k.strip().lower() == "timeout" and v.strip().isdigit():
            timeout = int(v.strip())
    return Session(sid, timeout)


@dataclass(frozen=True, slots=True)
class RTPInfo:
    url: str
    seq: int | None = None
    rtptime: int | None = None

    def format(self) -> str:
        s = f"url={self.url}"
        if self.seq is not None:
            s += f";seq={self.seq}"
        if self.rtptime is not None:
            s += f";rtptime={self.rtptime}"
        return s


def format_rtp_info(infos: list[RTPInfo]) -> str:
    return ",".join(i.format() for i in infos)


def parse_rtp_info(value: str) -> list[RTPInfo]:
    """Parse RTP-Info. URLs may contain commas, so split on ``,url=``; bad numbers are dropped."""
    out = []
    chunks: list[str] = []
    for piece in value.split(","):
        if piece.strip().lower().startswith("url=") or not chunks:
            chunks.append(piece)
        else:
            chunks[-1] += "," + piece
    for chunk in chunks:
        url = ""
        seq = rtptime = None
        for tok in chunk.split(";"):
            k, _, v = tok.partition("=")
            k = k.strip().lower()
            v = _unquote(v)
            if k == "url":
                url = v
            elif k == "seq" and v.isdigit():
                seq = int(v) & 0xFFFF
            elif k == "rtptime" and v.isdigit():
                rtptime = int(v) & 0xFFFFFFFF
        if url or seq is not None or rtptime is not None:
            out.append(RTPInfo(url, seq, rtptime))
    return out


@dataclass(frozen=True, slots=True)
class Range:
    """An ``npt`` range; ``end`` None means open-ended (live)."""

    start: float = 0.0
    end: float | None = None

    def format(self) -> str:
        end = "" if self.end is None else f"{self.end:.3f}"
        return f"npt={self.start:.3f}-{end}"


def parse_range(value: str) -> Range | None:
    """Parse ``npt=a-[b]``; ``now`` counts as 0. Returns None for other units (smpte, clock)."""
    unit, _, spec = value.strip().partition("=")
    if unit.strip().lower() != "npt":
        return None
    spec = spec.split(";")[0]
    a, _, b = spec.partition("-")

    def num(x: str) -> float | None:
        x = x.strip()
        if not x or x == "now":
            return None
        try:
            return float(x)
        except ValueError:
            raise RTSPError("bad npt range", status=400, value=value[:40]) from None

    return Range(num(a) or 0.0, num(b))


def parse_public(value: str) -> list[str]:
    """Parse a Public (or Allow) method list, upper-cased."""
    return [m.strip().upper() for m in value.split(",") if m.strip()]


def format_public(methods: list[str] | tuple[str, ...]) -> str:
    return ", ".join(methods)
