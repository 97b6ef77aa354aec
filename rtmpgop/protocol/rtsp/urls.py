"""RTSP URL handling: stream path and query, credentials, and the SETUP URL forms of real
clients (the digest section 2, after gortsplib):

- FFmpeg puts the control after the query: ``rtsp://h/path?q/trackID=0``;
- GStreamer puts it in the path: ``rtsp://h/path/trackID=0?q``;
- VLC SETUPs the base URL with a trailing slash, HappyTime NVR without one (single media);
- FFmpeg and GStreamer PLAY the aggregate URL with a trailing slash (``/path/``, ``?q/``).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

from rtmpgop.errors import RTSPError


@dataclass(frozen=True, slots=True)
class RTSPURL:
    scheme: str
    host: str  # host[:port], no credentials
    path: str  # without leading/trailing "/"
    query: str  # without "?"
    username: str | None = None
    password: str | None = None

    def base(self) -> str:
        """The URL without credentials (what goes in request lines)."""
        q = f"?{self.query}" if self.query else ""
        return f"{self.scheme}://{self.host}/{self.path}{q}"


def parse_url(url: str) -> RTSPURL:
    """Split an absolute ``rtsp://`` URL. Raises ``RTSPError`` (400) otherwise."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in ("rtsp", "rtsps", "rtspt"):
        raise RTSPError("not an rtsp:// URL", status=400, url=url[:80])
    authority, _, tail = rest.partition("/")
    if "?" in authority:
        authority, _, q = authority.partition("?")
        tail = "?" + q
    userinfo, at, host = authority.rpartition("@")
    user = pw = None
    if at:
        u, _, p = userinfo.partition(":")
        user, pw = unquote(u), unquote(p)
    path, _, query = tail.partition("?")
    return RTSPURL(scheme.lower(), host, path.strip("/"), query, user, pw)


def split_origin(url: str) -> tuple[str, str]:
    """(``scheme://host[:port]``, rest of the URL) of an absolute URL, credentials dropped;
    ("", url) for a relative one. The rest keeps its slashes and query as written."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "", url
    host, slash, path = rest.partition("/")
    host = host.rpartition("@")[2]
    return f"{scheme}://{host}", slash + path


def request_path(url: str) -> tuple[str, str]:
    """(path, query) of a request URL; ``*`` and relative forms give ("", "")."""
    if url == "*" or "://" not in url:
        p, _, q = url.lstrip("/").partition("?")
        return ("" if url == "*" else p.strip("/")), q
    u = parse_url(url)
    return u.path, u.query


def split_control(url: str, controls: list[str]) -> tuple[str, str, int | None]:
    """Split a SETUP URL into (path, query, index of the matching control or None).

    ``controls`` are the media controls as written in the SDP (relative, or absolute URLs,
    whose path part is then used). No match means the base-URL form (VLC, HappyTime).
    """
    if "://" in url:
        u = parse_url(url)
        path, query = u.path, u.query
    else:
        path, _, query = url.strip("/").partition("?")
    for i, c in enumerate(controls):
        if "://" in c:
            cu = parse_url(c)
            c = cu.path.rpartition("/")[2] if not cu.query else cu.query.rpartition("/")[2]
        c = c.strip("/")
        if not c:
            continue
        if query.endswith("/" + c):  # FFmpeg: control after the query
            return path, query[: -len(c) - 1], i
        if path.endswith("/" + c):  # GStreamer and everyone else
            return path[: -len(c) - 1], query, i
        if path == c:
            return "", query, i
    return path, query.rstrip("/"), None
