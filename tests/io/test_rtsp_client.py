"""The RTSP camera puller: URL helpers, UDP port pairs, and the asyncio adapter against a
scripted camera built on our own sans-IO ``ServerConnection`` on loopback (Digest auth, TCP
and UDP with receiver reports, wrong password, 404, refused, redirect, TLS with and without
verification, TEARDOWN on cancel, a camera that never answers TEARDOWN). Track mapping:
test_rtsp_ingest.py. Real cameras: tests/interop/test_sources.py.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess

import pytest

from fixtures.media import encode_video
from rtmpgop import codecs
from rtmpgop.channels import Hub
from rtmpgop.config import SourceConfig
from rtmpgop.io import rtsp_client, sources
from rtmpgop.io.rtsp_client import RtspSourceError, UdpPorts, _split_host, source_url
from rtmpgop.media import VIDEO_CLOCK, AccessUnit, Codec, Track, TrackSet
from rtmpgop.protocol.rtp import rtcp
from rtmpgop.protocol.rtsp import events as ev
from rtmpgop.protocol.rtsp.auth import ServerAuth
from rtmpgop.protocol.rtsp.sdp_tracks import packetizer_for
from rtmpgop.protocol.rtsp.server import ServerConnection
from tests.io.test_rtsp_ingest import FakeSink  # the sink of a source, recording its calls

DEADLINE = 10.0


def test_source_url_fills_credentials():
    cfg = SourceConfig("c", "rtsp://old:x@cam:554/s?a=1", user="ad min", password="p@ss:/")
    assert source_url(cfg) == "rtsp://ad%20min:p%40ss%3A%2F@cam:554/s?a=1"
    assert source_url(SourceConfig("c", "rtsp://cam/s")) == "rtsp://cam/s"


@pytest.mark.parametrize("url, want", [
    ("rtsp://cam/s", ("rtsp", "cam", 554)),
    ("rtsps://u:p@cam/s", ("rtsps", "cam", 322)),
    ("rtsp://[::1]:8554/s", ("rtsp", "::1", 8554)),
])
def test_split_host(url, want):
    assert _split_host(url) == want


def test_split_host_bad_port():
    with pytest.raises(RtspSourceError, match="bad host:port"):
        _split_host("rtsp://cam:99999/s")


def test_udp_ports_bind_even_odd_pairs_on_demand():
    ports = UdpPorts()
    assert ports and len(ports) == 0  # truthy before anything is bound (the core checks it)
    try:
        rtp, rtcp_port = ports[1]
        assert len(ports) == 2 and rtp % 2 == 0 and rtcp_port == rtp + 1
        assert ports.pairs[1][1].getsockname()[1] == rtcp_port
        with open("/proc/sys/net/core/rmem_max") as f:  # Linux doubles and caps SO_RCVBUF
            cap = int(f.read())
        got = ports.pairs[1][0].getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        assert got == 2 * min(rtsp_client.UDP_RECV_BUFFER, cap)
    finally:
        ports.close()


# ------------------------------------------------------------------------- scripted camera
VIDEO = encode_video("h264", frames=30, width=160, height=120, fps=30, bframes=False, gop=10)
VTRACK = Track(0, codecs.make_config(Codec.H264, VIDEO.config), VIDEO_CLOCK)


class Camera:
    """A loopback RTSP camera on ``ServerConnection``: Digest auth for user ``u``/``p``;
    ``/s`` plays the encoded clip in a loop at ``fps`` over TCP or UDP."""

    def __init__(self, answer_teardown=True, fps=60, redirect_to=None, tls=None):
        self.tls = tls
        self.answer_teardown = answer_teardown
        self.fps = fps
        self.redirect_to = redirect_to
        self.events = []
        self.rr = []  # receiver reports that reached our RTCP port
        self.server = None
        self.port = 0

    async def start(self):
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self.server.sockets[0].getsockname()[1]
        self.udp = []
        for _ in range(2):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", 0))
            s.setblocking(False)
            self.udp.append(s)
        asyncio.get_running_loop().add_reader(self.udp[1].fileno(), self._rtcp_in)
        return self

    def _rtcp_in(self):
        try:
            data = self.udp[1].recv(2048)
        except BlockingIOError:
            return
        self.rr += [p for p in rtcp.parse_rtcp(data) if isinstance(p, rtcp.ReceiverReport)]

    async def close(self):
        asyncio.get_running_loop().remove_reader(self.udp[1].fileno())
        for s in self.udp:
            s.close()
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader, writer):
        try:
            await self._session(reader, writer)
        except asyncio.CancelledError:
            writer.close()  # the test is closing the camera: end quietly

    async def _session(self, reader, writer):
        if self.redirect_to:
            data = await reader.readuntil(b"\r\n\r\n")
            cseq = next(ln.split(b":")[1].strip() for ln in data.split(b"\r\n")
                        if ln.lower().startswith(b"cseq"))
            writer.write(b"RTSP/1.0 302 Moved\r\nCSeq: " + cseq + b"\r\nLocation: "
                         + self.redirect_to.encode() + b"\r\n\r\n")
            await writer.drain()
            await reader.read()
            writer.close()
            return
        ports = tuple(s.getsockname()[1] for s in self.udp)
        conn = ServerConnection("c4m", read_auth=ServerAuth({"u": "p"}, "cam", "n0nce"),
                                udp_ports=ports)
        loop = asyncio.get_running_loop()
        sender = None
        udp_to = {}
        pk = packetizer_for(VTRACK, 96, 0x1234, initial_seq=65000, initial_timestamp=2**32 - 9000)

        async def send_media():
            i = 0
            while True:
                p = VIDEO.packets[i % len(VIDEO.packets)]
                pts = (i // len(VIDEO.packets)) * len(VIDEO.packets) * 3000 + p.pts
                for pkt in pk.packetize(p.data, pts):
                    if 0 in udp_to:
                        self.udp[0].sendto(pkt, udp_to[0])
                    else:
                        conn.send_rtp(0, pkt)
                if i % 30 == 0 and 0 in udp_to:  # an SR, so the client learns our RTCP port
                    self.udp[1].sendto(pk.sender_report(rtcp.unix_to_ntp(1.7e9), pts), udp_to[1])
                writer.writelines(conn.data_to_send())
                i += 1
                await asyncio.sleep(1 / self.fps)

        try:
            while not conn.closed:
                data = await reader.read(65536)
                if not data:
                    break
                if b"TEARDOWN" in data and not self.answer_teardown:
                    self.events.append(ev.Teardown("ignored"))
                    continue
                conn.receive_data(data, loop.time())
                while (e := conn.next_event()) is not None:
                    self.events.append(e)
                    if isinstance(e, ev.DescribeRequest):
                        if e.path == "s":
                            conn.accept_describe([VTRACK])
                        else:
                            conn.reject(404)
                    elif isinstance(e, ev.SetupDone) and e.transport.client_port:
                        udp_to[0] = ("127.0.0.1", e.transport.client_port[0])
                        udp_to[1] = ("127.0.0.1", e.transport.client_port[1])
                    elif isinstance(e, ev.PlayRequest):
                        conn.accept_play({0: (pk.seq, pk.rtp_timestamp(0))})
                        sender = loop.create_task(send_media())
                writer.writelines(conn.data_to_send())
        finally:
            if sender is not None:
                sender.cancel()
            writer.close()


async def until(cond, timeout=DEADLINE):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        assert loop.time() < end, "deadline passed"
        await asyncio.sleep(0.01)


def slices(avcc):
    """The NAL units of an access unit without parameter sets (the packetizer repeats SPS/PPS
    before keyframes, as cameras do)."""
    return [bytes(n) for n in codecs.h264.iter_avcc(avcc) if n[0] & 0x1F not in (7, 8)]


def drain(sub):
    out = []
    while (it := sub.get_nowait()) is not None:
        out.append(it)
    return out


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_pull_from_scripted_camera_then_teardown(transport, monkeypatch):
    monkeypatch.setattr(rtsp_client, "RR_INTERVAL", 0.2)

    async def main():
        cam = await Camera().start()
        hub = Hub()
        sub = hub.subscribe("cam")
        items = []
        sub.set_wakeup(lambda: items.extend(drain(sub)))
        drain(sub)
        cfg = SourceConfig("cam", f"rtsp://127.0.0.1:{cam.port}/s", transport=transport,
                           user="u", password="p")
        src = sources.Source(hub, cfg, rtsp_client.pull)
        src.start()
        await until(lambda: sum(isinstance(i, AccessUnit) for i in items) >= 40)
        if transport == "udp":
            await until(lambda: cam.rr)
        stats = dict(src.statistics().extra)
        assert stats["rtsp_state"] == "streaming" and stats["bytes_in"] > 10_000
        assert stats["packets_lost"] == stats["rtp_errors"] == stats["discontinuities"] == 0
        await src.close()
        await until(lambda: any(isinstance(e, ev.Teardown) for e in cam.events))
        await cam.close()
        return src, items, cam

    src, items, cam = asyncio.run(main())
    assert src.state is sources.SourceState.STOPPED and src.reconnects == 0
    assert cam.events[-1] == ev.Teardown("teardown")  # we said goodbye
    setup = next(e for e in cam.events if isinstance(e, ev.SetupDone))
    assert setup.transport.protocol == transport.upper()
    (ts,) = [i for i in items if isinstance(i, TrackSet)]
    assert ts.tracks[0].config.record == VTRACK.config.record
    units = [i for i in items if isinstance(i, AccessUnit)]
    # The clip loops: payloads come back in order, first one a keyframe, timeline from START
    # across the RTP timestamp and sequence wraps, 3000 ticks per frame.
    want = [slices(p.data) for p in VIDEO.packets] * 3
    assert units[0].keyframe and units[0].dts < 2 * 90000
    start = want.index(slices(units[0].payload))
    assert [slices(u.payload) for u in units] == want[start:start + len(units)]
    assert all(b.dts - a.dts == 3000 for a, b in zip(units, units[1:]))
    if transport == "udp":
        assert cam.rr[0].ssrc != 0 and cam.rr[-1].reports[0].ssrc == 0x1234


def test_wrong_password_404_and_refused_give_clear_errors():
    async def main():
        cam = await Camera().start()
        out = {}
        for name, url in [("auth", f"rtsp://u:bad@127.0.0.1:{cam.port}/s"),
                          ("404", f"rtsp://u:p@127.0.0.1:{cam.port}/nope")]:
            with pytest.raises(RtspSourceError) as e:
                await rtsp_client.pull(SourceConfig("c", url), FakeSink())
            out[name] = str(e.value)
        await cam.close()
        with pytest.raises(OSError) as e:  # nobody listens there any more
            await rtsp_client.pull(SourceConfig("c", f"rtsp://127.0.0.1:{cam.port}/s"), FakeSink())
        out["refused"] = str(e.value)
        return out

    out = asyncio.run(main())
    assert out["auth"] == "DESCRIBE failed: 401 Unauthorized"
    assert out["404"] == "DESCRIBE failed: 404 Not Found"
    assert "Connect call failed" in out["refused"] or "refused" in out["refused"].lower()


def test_redirect_keeps_credentials_for_the_same_host():
    async def main():
        cam = await Camera().start()
        hop = await Camera(redirect_to=f"rtsp://127.0.0.1:{cam.port}/s").start()
        sink = FakeSink()
        task = asyncio.get_running_loop().create_task(rtsp_client.pull(
            SourceConfig("c", f"rtsp://u:p@127.0.0.1:{hop.port}/old"), sink))
        await until(lambda: len(sink.units) >= 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await hop.close()
        await cam.close()
        return sink

    sink = asyncio.run(main())
    assert sink.tracksets and sink.units[0].keyframe


def test_teardown_is_not_waited_for_forever():
    async def main():
        cam = await Camera(answer_teardown=False).start()
        sink = FakeSink()
        task = asyncio.get_running_loop().create_task(rtsp_client.pull(
            SourceConfig("c", f"rtsp://u:p@127.0.0.1:{cam.port}/s"), sink))
        await until(lambda: len(sink.units) >= 3)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        took = loop.time() - t0
        await cam.close()
        return took, cam

    took, cam = asyncio.run(main())
    assert ev.Teardown("ignored") in cam.events
    assert rtsp_client.TEARDOWN_TIMEOUT - 0.1 <= took < rtsp_client.TEARDOWN_TIMEOUT + 1.0


@pytest.fixture(scope="module")
def tls_camera_context(tmp_path_factory):
    """A server TLS context with a fresh self-signed certificate (openssl CLI)."""
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=camera.local", "-keyout", str(d / "k.pem"),
                    "-out", str(d / "c.pem")], check=True, capture_output=True, timeout=30)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(d / "c.pem", d / "k.pem")
    return ctx


def test_rtsps_with_and_without_certificate_verification(tls_camera_context):
    async def main():
        cam = await Camera(tls=tls_camera_context).start()
        url = f"rtsps://u:p@127.0.0.1:{cam.port}/s"
        with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
            await rtsp_client.pull(SourceConfig("c", url), FakeSink())
        sink = FakeSink()
        task = asyncio.get_running_loop().create_task(
            rtsp_client.pull(SourceConfig("c", url, tls_verify=False), sink))
        await until(lambda: len(sink.units) >= 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await until(lambda: any(isinstance(e, ev.Teardown) for e in cam.events))
        await cam.close()
        return sink, cam

    sink, cam = asyncio.run(main())
    assert sink.units[0].keyframe and sink.tracksets[0][0].config.width == 160
    assert cam.events[-1] == ev.Teardown("teardown")
