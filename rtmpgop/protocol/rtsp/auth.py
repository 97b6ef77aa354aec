"""RTSP authentication as cameras and FFmpeg use it: Basic (RFC 7617) and Digest (RFC 2069
form and RFC 2617 ``qop=auth``), for both roles. Digest section 8 of the digest has the quirks.

Server: ``ServerAuth`` issues challenges (MD5 Digest and optionally Basic; SHA-256 is never
offered by default because FFmpeg then fails to authenticate) and verifies ``Authorization``.
The response hash is computed with the ``uri`` the client put in the header (Bosch BVMS sends
a relative path, VLC and HappyTime NVR the base URL on SETUP), which is checked only loosely
against the request line: same path, or one a prefix of the other. The nonce is a parameter:
the caller draws it from its randomness source (no clock or RNG reads here).

Client: ``ClientAuth`` answers a 401: it prefers Digest (SHA-256 when offered, else MD5) over
Basic, and produces the header for every later request with that request's method and URI.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass, field

from rtmpgop.errors import RTSPError

MAX_AUTH_PARAMS = 32  # parameters in one challenge/credentials header; real ones have < 10

_HASHES = {"MD5": hashlib.md5, "MD5-SESS": hashlib.md5, "SHA-256": hashlib.sha256,
           "SHA-256-SESS": hashlib.sha256}


def _h(algorithm: str, s: str) -> str:
    return _HASHES[algorithm.upper()](s.encode("utf-8")).hexdigest()


def parse_auth_params(text: str) -> dict[str, str]:
    """Parse ``k=v, k="quoted, value"`` into a dict with lower-case keys.

    Raises ``RTSPError`` (400) on an unterminated quote or too many parameters.
    """
    out: dict[str, str] = {}
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " ,\t":
            i += 1
        if i >= n:
            break
        eq = text.find("=", i)
        if eq == -1:
            break  # a bare token (e.g. a second scheme name): stop here
        key = text[i:eq].strip().lower()
        i = eq + 1
        while i < n and text[i] == " ":
            i += 1
        if i < n and text[i] == '"':
            j = i + 1
            buf = []
            while j < n and text[j] != '"':
                if text[j] == "\\" and j + 1 < n:
                    j += 1
                buf.append(text[j])
                j += 1
            if j >= n:
                raise RTSPError("unterminated quoted string in auth header", status=400)
            value = "".join(buf)
            i = j + 1
        else:
            j = text.find(",", i)
            j = n if j == -1 else j
            value = text[i:j].strip()
            i = j
        out[key] = value
        if len(out) > MAX_AUTH_PARAMS:
            raise RTSPError("too many auth parameters", status=400)
    return out


@dataclass(frozen=True, slots=True)
class Challenge:
    """One ``WWW-Authenticate`` value."""

    scheme: str  # "basic" or "digest" (lower-case)
    params: dict[str, str] = field(default_factory=dict)


def parse_challenge(value: str) -> Challenge:
    scheme, _, rest = value.strip().partition(" ")
    return Challenge(scheme.lower(), parse_auth_params(rest))


def digest_response(algorithm: str, username: str, realm: str, password: str, method: str,
                    uri: str, nonce: str, qop: str | None = None, nc: str | None = None,
                    cnonce: str | None = None) -> str:
    """The Digest ``response`` value (RFC 2617 3.2.2.1; RFC 2069 form without qop)."""
    ha1 = _h(algorithm, f"{username}:{realm}:{password}")
    if algorithm.upper().endswith("-SESS"):
        ha1 = _h(algorithm, f"{ha1}:{nonce}:{cnonce}")
    ha2 = _h(algorithm, f"{method}:{uri}")
    if qop:
        return _h(algorithm, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return _h(algorithm, f"{ha1}:{nonce}:{ha2}")


def _path(url: str) -> str:
    if "://" in url:
        url = url.split("://", 1)[1].partition("/")[2]
    return "/" + url.strip("/")


def uri_matches(header_uri: str, request_url: str) -> bool:
    """Loose check of a Digest ``uri`` against the request line (see module docstring)."""
    a, b = _path(header_uri), _path(request_url)
    return a == b or b.startswith(a + "/") or a.startswith(b + "/") or b.startswith(a + "?")


class ServerAuth:
    """Server-side challenge and verification for one connection.

    ``users`` maps user name -> password. ``nonce`` should be fresh random text per connection
    (or per challenge: call ``new_nonce``). ``basic`` also offers Basic (only sensible on a
    trusted link). ``sha256`` additionally offers Digest SHA-256 (off: FFmpeg chokes on it).
    """

    def __init__(self, users: dict[str, str], realm: str, nonce: str, basic: bool = False,
                 sha256: bool = False) -> None:
        self.users = users
        self.realm = realm
        self.nonce = nonce
        self.basic = basic
        self.sha256 = sha256

    def new_nonce(self, nonce: str) -> None:
        self.nonce = nonce

    def challenges(self, stale: bool = False) -> list[str]:
        """``WWW-Authenticate`` values for a 401, strongest first."""
        st = ", stale=TRUE" if stale else ""
        out = []
        if self.sha256:
            out.append(f'Digest realm="{self.realm}", nonce="{self.nonce}", '
                       f'algorithm=SHA-256{st}')
        out.append(f'Digest realm="{self.realm}", nonce="{self.nonce}", algorithm=MD5{st}')
        if self.basic:
            out.append(f'Basic realm="{self.realm}"')
        return out

    def verify(self, method: str, url: str, authorization: str | None) -> tuple[bool, bool]:
        """Check an ``Authorization`` header. Returns (ok, stale): ``stale`` is True when the
        credentials were right but for another nonce (re-challenge with stale=TRUE)."""
        if not authorization:
            return False, False
        scheme, _, rest = authorization.strip().partition(" ")
        scheme = scheme.lower()
        if scheme == "basic" and self.basic:
            try:
                user, _, pw = base64.b64decode(rest.strip(), validate=True).decode(
                    "utf-8").partition(":")
            except (binascii.Error, ValueError):
                return False, False
            expect = self.users.get(user)
            return expect is not None and hmac.compare_digest(expect.encode(),
                                                              pw.encode()), False
        if scheme != "digest":
            return False, False
        try:
            p = parse_auth_params(rest)
        except RTSPError:
            return False, False
        user, uri, resp = p.get("username"), p.get("uri"), p.get("response", "")
        algorithm = p.get("algorithm", "MD5")
        password = self.users.get(user or "")
        if (password is None or uri is None or algorithm.upper() not in _HASHES
                or (algorithm.upper().startswith("SHA-256") and not self.sha256)
                or p.get("realm") != self.realm or not uri_matches(uri, url)):
            return False, False
        qop = p.get("qop")
        if qop and qop.lower() != "auth":
            return False, False
        nonce = p.get("nonce", "")
        want = digest_response(algorithm, user, self.realm, password, method, uri, nonce, qop,
                               p.get("nc"), p.get("cnonce"))
        if not hmac.compare_digest(want, resp.lower()):
            return False, False
        if nonce != self.nonce:
            return False, True
        return True, False


class ClientAuth:
    """Client-side credentials; ``on_challenge`` then ``header`` for every request."""

    def __init__(self, username: str, password: str) -> None:
        self.username = username
        self.password = password
        self.challenge: Challenge | None = None
        self._nc = 0
        self._cnonce = ""

    def on_challenge(self, values: list[str], cnonce: str = "") -> bool:
        """Pick the best offered scheme from ``WWW-Authenticate`` values. ``cnonce``: random
        text from the caller, used when the server asks for ``qop=auth``.
        Returns False when nothing usable is offered."""
        best: Challenge | None = None
        rank = -1
        for v in values:
            try:
                c = parse_challenge(v)
            except RTSPError:
                continue
            alg = c.params.get("algorithm", "MD5").upper()
            r = -1
            if c.scheme == "digest" and alg in _HASHES and "nonce" in c.params:
                r = 3 if alg.startswith("SHA-256") else 2
            elif c.scheme == "basic":
                r = 1
            if r > rank:
                best, rank = c, r
        if best is None:
            return False
        self.challenge = best
        self._nc = 0
        self._cnonce = cnonce or "0a4f113b"
        return True

    def header(self, method: str, uri: str) -> str | None:
        """The ``Authorization`` value for a request, or None before any challenge.

        ``uri`` is the request URL without credentials.
        """
        c = self.challenge
        if c is None:
            return None
        if c.scheme == "basic":
            token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            return f"Basic {token}"
        p = c.params
        alg = p.get("algorithm", "MD5")
        realm, nonce = p.get("realm", ""), p.get("nonce", "")
        qops = [q.strip().lower() for q in p.get("qop", "").split(",") if q.strip()]
        qop = "auth" if "auth" in qops else None
        nc = None
        if qop:
            self._nc += 1
            nc = f"{self._nc:08x}"
        resp = digest_response(alg, self.username, realm, self.password, method, uri, nonce,
                               qop, nc, self._cnonce)
        parts = [f'username="{self.username}"', f'realm="{realm}"', f'nonce="{nonce}"',
                 f'uri="{uri}"', f'response="{resp}"']
        if "algorithm" in p:
            parts.append(f"algorithm={alg}")
        if "opaque" in p:
            parts.append(f'opaque="{p["opaque"]}"')
        if qop:
            parts += [f"qop={qop}", f"nc={nc}", f'cnonce="{self._cnonce}"']
        return "Digest " + ", ".join(parts)
