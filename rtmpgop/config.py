"""Server configuration: defaults, TOML file, environment overrides.

Precedence (lowest to highest): built-in defaults < ``--config FILE`` (TOML) < environment
variables ``RTMPGOP_<KEY>`` (e.g. ``RTMPGOP_RTMP_PORT=1936``) < command-line flags.
Invalid values fail at start with ``ConfigError`` naming the key.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rtmpgop.errors import ConfigError

ENV_PREFIX = "RTMPGOP_"

MAX_MERGE_MS = 1000
"""Largest merged write/read delay accepted (``play_merge_ms``, ``rtmp_publish_merge_ms``):
past a second it is no longer live (SRS recommends 300-2000 ms for its merged read and uses
350 ms by default for its merged write)."""


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """A path whose media the server pulls from a camera or another server (issue: sources)."""

    path: str
    url: str
    transport: str = "tcp"  # "tcp" | "udp" (RTSP only)
    on_demand: bool = False
    idle_timeout: float = 10.0  # on-demand: disconnect after this long without viewers
    stall_timeout: float = 5.0  # watchdog: restart when no frame arrives for this long
    user: str = ""
    password: str = ""
    tls_verify: bool = True  # rtsps://: check the camera's certificate (self-signed: false)


@dataclass(frozen=True, slots=True)
class Config:
    """Everything the server can be told. Ports 0 pick a free port (tests)."""

    host: str = "0.0.0.0"
    rtmp_port: int = 1935
    rtsp_port: int = 8554
    http_port: int = 8888
    ws_port: int = 8889
    rtsp_udp_rtp_port: int = 8000  # UDP pair for RTSP (RTP, RTP+1 for RTCP); 0 = ephemeral
    log_level: str = "info"
    # LL-HLS
    hls_part_target: float = 0.2  # seconds; frozen for the life of a playlist (RFC 8216 6.2.1)
    hls_target_duration: int = 2  # seconds; GoPs longer than this overrun segments
    hls_window_segments: int = 7  # segments kept in the playlist (Apple 8.11: >= 6)
    hls: str = "always"  # "always" | "on_demand" | "off": when LL-HLS muxers run (README)
    # merged write to RTMP/RTSP-TCP players, merged read from RTMP publishers (SRS's mw_latency
    # and mr_latency): fewer wake-ups and syscalls per message for a bounded delay; 0 = at once
    play_merge_ms: int = 50
    rtmp_publish_merge_ms: int = 0
    # WebP renderer
    webp_quality: int = 70
    webp_method: int = 0
    webp_max_width: int = 1280
    webp_max_fps: float = 30.0
    ws_allowed_origins: tuple[str, ...] = ()  # empty = any origin
    # RTSP authentication (RFC 2617 via RFC 2326 D.1): an empty user leaves that side open
    rtsp_publish_user: str = ""  # ANNOUNCE/SETUP/RECORD need these credentials
    rtsp_publish_password: str = ""
    rtsp_read_user: str = ""  # DESCRIBE/SETUP/PLAY need these credentials
    rtsp_read_password: str = ""
    rtsp_auth_basic: bool = False  # also accept Basic (cleartext; Digest MD5 is always offered)
    sources: tuple[SourceConfig, ...] = field(default=())

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)


_SCALARS = {f.name: f for f in dataclasses.fields(Config) if f.name != "sources"}


_BOOL_WORDS = {"true": True, "1": True, "yes": True, "on": True,
               "false": False, "0": False, "no": False, "off": False}  # environment values


def _coerce(key: str, value: Any, typ: Any) -> Any:
    t = typ if isinstance(typ, str) else getattr(typ, "__name__", str(typ))
    try:
        if t == "int":
            if isinstance(value, bool):
                raise ValueError
            v = int(value)
            if key.endswith("_port") and not 0 <= v <= 65535:
                raise ConfigError(key, f"port {v} outside 0..65535")
            return v
        if t == "float":
            return float(value)
        if t == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().lower() in _BOOL_WORDS:
                return _BOOL_WORDS[value.strip().lower()]
            raise ValueError
        if t == "str":
            if not isinstance(value, str):
                raise ValueError
            return value
        if t.startswith("tuple"):
            if isinstance(value, str):
                return tuple(s.strip() for s in value.split(",") if s.strip())
            return tuple(str(v) for v in value)
    except ConfigError:
        raise
    except (TypeError, ValueError):
        raise ConfigError(key, f"expected {t}, got {value!r}") from None
    raise ConfigError(key, f"unsupported type {t}")


def _source(path: str, raw: Mapping[str, Any]) -> SourceConfig:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"paths.{path}", "expected a table")
    known = ({f.name for f in dataclasses.fields(SourceConfig)} - {"path", "url"}) | {"source"}
    for k in raw:
        if k not in known:
            raise ConfigError(f"paths.{path}.{k}", "unknown key")
    url = raw.get("source")
    if not isinstance(url, str) or not url.split("://")[0] in ("rtsp", "rtsps", "rtmp"):
        raise ConfigError(f"paths.{path}.source", f"expected an rtsp://, rtsps:// or rtmp:// URL, got {url!r}")
    transport = raw.get("transport", "tcp")
    if transport not in ("tcp", "udp"):
        raise ConfigError(f"paths.{path}.transport", f"expected 'tcp' or 'udp', got {transport!r}")
    kw: dict[str, Any] = {"path": path.strip("/"), "url": url, "transport": transport}
    for k in ("on_demand", "tls_verify"):
        if k in raw:
            if not isinstance(raw[k], bool):
                raise ConfigError(f"paths.{path}.{k}", "expected true or false")
            kw[k] = raw[k]
    for k in ("idle_timeout", "stall_timeout"):
        if k in raw:
            kw[k] = _coerce(f"paths.{path}.{k}", raw[k], "float")
            if not kw[k] > 0:
                raise ConfigError(f"paths.{path}.{k}", f"expected seconds > 0, got {raw[k]!r}")
    for k in ("user", "password"):
        if k in raw:
            kw[k] = _coerce(f"paths.{path}.{k}", raw[k], "str")
    return SourceConfig(**kw)


def load(file: str | None = None, env: Mapping[str, str] | None = None,
         overrides: Mapping[str, Any] | None = None) -> Config:
    """Build a Config from defaults, a TOML file, the environment and explicit overrides.

    Raises ``ConfigError`` naming the bad key.
    """
    values: dict[str, Any] = {}
    sources: list[SourceConfig] = []
    if file:
        try:
            with open(file, "rb") as f:
                data = tomllib.load(f)
        except OSError as e:
            raise ConfigError("--config", f"cannot read {file}: {e.strerror}") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError("--config", f"{file} is not valid TOML: {e}") from None
        for k, v in data.items():
            if k == "paths":
                if not isinstance(v, Mapping):
                    raise ConfigError("paths", "expected a table of paths")
                sources.extend(_source(p, raw) for p, raw in v.items())
            elif k in _SCALARS:
                values[k] = _coerce(k, v, _SCALARS[k].type)
            else:
                raise ConfigError(k, "unknown key")
    env = os.environ if env is None else env
    for k, f in _SCALARS.items():
        ev = env.get(ENV_PREFIX + k.upper())
        if ev is not None:
            values[k] = _coerce(ENV_PREFIX + k.upper(), ev, f.type)
    for k, v in (overrides or {}).items():
        if v is not None:
            if k not in _SCALARS:
                raise ConfigError(k, "unknown key")
            values[k] = v
    if sources:
        values["sources"] = tuple(sources)
    if values.get("hls", "always") not in ("always", "on_demand", "off"):
        raise ConfigError("hls", f"expected 'always', 'on_demand' or 'off', got {values['hls']!r}")
    for k in ("play_merge_ms", "rtmp_publish_merge_ms"):
        if not 0 <= values.get(k, 0) <= MAX_MERGE_MS:
            raise ConfigError(k, f"expected milliseconds in 0..{MAX_MERGE_MS}, got {values[k]!r}")
    for side in ("publish", "read"):  # a user without a password (or back) is a typo
        user, pw = values.get(f"rtsp_{side}_user", ""), values.get(f"rtsp_{side}_password", "")
        if bool(user) != bool(pw):
            key = f"rtsp_{side}_password" if user else f"rtsp_{side}_user"
            raise ConfigError(key, "set both the RTSP user and password, or neither")
    return Config(**values)
