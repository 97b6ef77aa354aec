"""RTSP Basic/Digest authentication (rtmpgop.protocol.rtsp.auth)."""

import pathlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtmpgop.errors import ProtocolError
from rtmpgop.protocol.rtsp import auth as A
from rtmpgop.protocol.rtsp.message import MessageReader, Request

CAPTURES = pathlib.Path(__file__).resolve().parents[3] / "fixtures" / "captures"


def _ffmpeg_requests():
    r = MessageReader()
    r.receive_data((CAPTURES / "ffmpeg_publish_h264_aac_tcp.bin").read_bytes())
    out = []
    while (m := r.next_message()) is not None:
        if isinstance(m, Request) and m.headers.get("Authorization"):
            out.append(m)
    return out


def test_verifies_every_ffmpeg_digest_header():
    reqs = _ffmpeg_requests()
    assert [r.method for r in reqs] == ["ANNOUNCE", "SETUP", "SETUP", "RECORD", "TEARDOWN"]
    srv = A.ServerAuth({"user": "pass"}, "rtmpgop", "0123456789abcdef")
    for r in reqs:
        assert srv.verify(r.method, r.url, r.headers.get("Authorization")) == (True, False)
    bad = A.ServerAuth({"user": "wrong"}, "rtmpgop", "0123456789abcdef")
    assert bad.verify(reqs[0].method, reqs[0].url, reqs[0].headers.get("Authorization")) == (
        False, False)
    # Same credentials, older nonce: stale.
    new = A.ServerAuth({"user": "pass"}, "rtmpgop", "fresh")
    assert new.verify(reqs[0].method, reqs[0].url, reqs[0].headers.get("Authorization")) == (
        False, True)


def test_client_reproduces_ffmpeg_header():
    (ann, *_) = _ffmpeg_requests()
    c = A.ClientAuth("user", "pass")
    assert c.on_challenge(['Digest realm="rtmpgop", nonce="0123456789abcdef"'])
    assert c.header("ANNOUNCE", ann.url) == ann.headers.get("Authorization")


def test_challenges_never_offer_sha256_by_default():
    srv = A.ServerAuth({"u": "p"}, "R", "N", basic=True)
    assert srv.challenges() == ['Digest realm="R", nonce="N", algorithm=MD5',
                                'Basic realm="R"']
    assert "SHA-256" in A.ServerAuth({}, "R", "N", sha256=True).challenges()[0]


def test_client_prefers_digest_over_basic_and_sha256_when_offered():
    c = A.ClientAuth("u", "p")
    c.on_challenge(['Basic realm="R"', 'Digest realm="R", nonce="N"'])
    assert c.header("OPTIONS", "rtsp://h/x").startswith("Digest ")
    c.on_challenge(['Digest realm="R", nonce="N", algorithm=MD5',
                    'Digest realm="R", nonce="N", algorithm=SHA-256'])
    assert "algorithm=SHA-256" in c.header("OPTIONS", "rtsp://h/x")
    c.on_challenge(['Basic realm="R"'])
    assert c.header("OPTIONS", "rtsp://h/x") == "Basic dTpw"
    assert not c.on_challenge(['Bearer realm="x"'])


@pytest.mark.parametrize("server_kw", [{}, {"sha256": True}, {"basic": True}])
def test_client_server_roundtrip_with_qop(server_kw):
    srv = A.ServerAuth({"alice": "s3cret"}, "cam", "abc123", **server_kw)
    ch = srv.challenges()
    if not server_kw:
        ch = [ch[0] + ', qop="auth,auth-int", opaque="xyz"']
    c = A.ClientAuth("alice", "s3cret")
    assert c.on_challenge(ch, cnonce="c0ffee")
    for method, url in (("DESCRIBE", "rtsp://h/cam"), ("SETUP", "rtsp://h/cam/trackID=0")):
        h = c.header(method, url)
        assert srv.verify(method, url, h) == (True, False)
    if not server_kw:
        assert "nc=00000002" in h and 'cnonce="c0ffee"' in h and 'opaque="xyz"' in h


@pytest.mark.parametrize("hdr_uri,req,ok", [
    ("/live/x", "rtsp://h/live/x", True),  # Bosch BVMS: relative path
    ("rtsp://h/live/x/", "rtsp://h/live/x/trackID=0", True),  # VLC: base URL on SETUP
    ("rtsp://h/live/x", "rtsp://h/live/x?token=1", True),
    ("rtsp://h/other", "rtsp://h/live/x", False),
])
def test_loose_uri_check(hdr_uri, req, ok):
    srv = A.ServerAuth({"u": "p"}, "R", "N")
    resp = A.digest_response("MD5", "u", "R", "p", "SETUP", hdr_uri, "N")
    h = f'Digest username="u", realm="R", nonce="N", uri="{hdr_uri}", response="{resp}"'
    assert srv.verify("SETUP", req, h)[0] is ok


def test_rejects_garbage():
    srv = A.ServerAuth({"u": "p"}, "R", "N", basic=True)
    for h in (None, "", "Basic !!!", "Digest username=\"u", "Bearer x", "Basic " + "dTpx"):
        assert srv.verify("OPTIONS", "rtsp://h/", h) == (False, False)
    assert srv.verify("OPTIONS", "rtsp://h/", "Basic dTpw") == (True, False)


def test_auth_params_quoting():
    assert A.parse_auth_params('a="x, y", b=2 ,c="q\\"q"') == {"a": "x, y", "b": "2",
                                                               "c": 'q"q'}


@given(st.text(max_size=100))
def test_fuzz_contract(s):
    try:
        A.parse_auth_params(s)
    except ProtocolError:
        pass
    assert A.ServerAuth({"u": "p"}, "R", "N", basic=True).verify("X", "rtsp://h/", s)[0] in (
        True, False)
