"""RtspPlayer and RtpSource without sockets: a hub channel fed with synthetic H.264 + AAC
access units, players on a stand-in for the RTSP connection (the tracks it described and the
transports it set up). Packets are made once per channel and shared; sequence numbers follow
channel order for every player; RTP-Info names each player's first packet; SR precedes the
first packet of a track; BYE and the end of the session follow Unpublished or a codec change."""

from __future__ import annotations

import struct

import pytest

from fixtures.media import encode_audio, encode_video
from rtmpgop.channels import Hub
from rtmpgop.media import AccessUnit, Codec, CodecConfig, Track
from rtmpgop.protocol.rtp import rtcp
from rtmpgop.protocol.rtp.packet import parse_rtp
from rtmpgop.protocol.rtsp.headers import Transport
from rtmpgop.subscribers.rtsp_play import RtspPlayer
from tests.protocol.rtp.media_cache import h264_aac_units

WALL = 1_700_000_000.0


class FakeConn:
    """What RtspPlayer reads of a ServerConnection after DESCRIBE/SETUP."""

    def __init__(self, tracks, transports) -> None:
        self.tracks = list(tracks)
        self.transports = transports  # track id -> Transport

    def setup_of(self, track_id):
        return self.transports.get(track_id)

    def data_to_send(self):
        return []


@pytest.fixture(scope="module")
def av():
    v = encode_video("h264", frames=60, width=160, height=96, fps=30, bframes=True, gop=30)
    a = encode_audio("aac", seconds=2.0)
    return h264_aac_units(v, a)


def tcp_player(hub, tracks, path="live/x"):
    sub = hub.subscribe(path, "t")
    conn = FakeConn(tracks, {0: Transport("TCP", interleaved=(0, 1)),
                             1: Transport("TCP", interleaved=(2, 3))})
    return RtspPlayer(conn, sub)


def started_tcp_player(hub, tracks, path="live/x"):
    """``tcp_player`` after DESCRIBE and PLAY (``start``)."""
    p = tcp_player(hub, tracks, path)
    p.describe()
    p.start()
    return p


def frames(bufs):
    """(channel, payload bytes) of each interleaved frame in ``bufs`` (header + payload pairs)."""
    data = b"".join(bytes(b) for b in bufs)
    out, pos = [], 0
    while pos < len(data):
        assert data[pos] == 0x24
        ch, n = data[pos + 1], struct.unpack_from(">H", data, pos + 2)[0]
        out.append((ch, data[pos + 4:pos + 4 + n]))
        pos += 4 + n
    return out


def publish(hub, tracks, units, path="live/x"):
    owner = object()
    ch = hub.publish(path, owner)
    ch.set_tracks(tracks)
    for u in units:
        ch.push(u)
    return ch, owner


def test_players_share_packets_and_rtp_info_names_their_first_packet(av):
    tracks, units = av
    hub = Hub()
    ch, _ = publish(hub, tracks, units[:40])
    a = tcp_player(hub, tracks)
    assert [t.codec for t in a.describe().tracks] == [Codec.H264, Codec.AAC]
    info_a = a.start()
    tcp_a, udp_a = a.pull(WALL)
    assert udp_a == []
    got = frames(tcp_a)
    # SR + CNAME before the first RTP packet of each track
    first = {}
    for i, (c, payload) in enumerate(got):
        first.setdefault(c, i)
    assert first[1] < first[0] and first[3] < first[2]
    sr = rtcp.parse_rtcp(got[first[1]][1])[0]
    assert isinstance(sr, rtcp.SenderReport) and sr.ntp == rtcp.unix_to_ntp(WALL)
    for c, tid in ((0, 0), (2, 1)):
        pkt = parse_rtp(got[first[c]][1])
        assert (pkt.sequence, pkt.timestamp) == info_a[tid]
    # a second player gets the very same packet objects: nothing is packetized again
    b = tcp_player(hub, tracks)
    b.describe()
    info_b = b.start()
    assert info_b == info_a
    packetized = a.source.packetized
    tcp_b, _ = b.pull(WALL)
    assert a.source is b.source and a.source.packetized == packetized
    rtp_a = [x for x in tcp_a if len(x) > 4 and x[0] == 0x80 and (x[1] & 0x7F) in (96, 97)]
    rtp_b = [x for x in tcp_b if len(x) > 4 and x[0] == 0x80 and (x[1] & 0x7F) in (96, 97)]
    assert len(rtp_a) == len(rtp_b) > 40 and all(x is y for x, y in zip(rtp_a, rtp_b))
    # the rest of the stream: contiguous sequence numbers per track, timestamps follow pts
    for u in units[40:]:
        ch.push(u)
    got_a = got + frames(a.pull(WALL)[0])
    for c, tid, clock in ((0, 0, 90000), (2, 1, 48000)):
        pkts = [parse_rtp(p) for cc, p in got_a if cc == c]
        assert all((y.sequence - x.sequence) & 0xFFFF == 1 for x, y in zip(pkts, pkts[1:]))
        sent = [u for u in units if u.track == tid]
        marks = [p.timestamp for p in pkts if p.marker]
        assert len(marks) == len(sent)
        assert [(m - marks[0]) & 0xFFFFFFFF for m in marks] == [u.pts - sent[0].pts for u in sent]


def test_late_joiner_first_keeps_channel_order(av):
    """A player that starts on a newer GoP before the older one was packetized: the source
    walks the older GoP first, so every player still sees growing sequence numbers."""
    tracks, units = av
    hub = Hub()
    early = tcp_player(hub, tracks)  # waits for the first GoP
    ch, _ = publish(hub, tracks, units)  # two GoPs, nothing packetized yet
    late = started_tcp_player(hub, tracks)  # starts at the newest GoP head
    late_pkts = [parse_rtp(p) for c, p in frames(late.pull(WALL)[0]) if c == 0]
    early.describe()
    early.start()
    early_pkts = [parse_rtp(p) for c, p in frames(early.pull(WALL)[0]) if c == 0]
    seqs = [p.sequence for p in early_pkts]
    assert all((b - a) & 0xFFFF == 1 for a, b in zip(seqs, seqs[1:]))
    # the late joiner's packets are the tail of the early one's
    tail = [(p.sequence, p.timestamp) for p in early_pkts[-len(late_pkts):]]
    assert tail == [(p.sequence, p.timestamp) for p in late_pkts]


def test_unpublish_sends_bye_and_ends(av):
    tracks, units = av
    hub = Hub()
    ch, owner = publish(hub, tracks, units[:10])
    p = started_tcp_player(hub, tracks)
    p.pull(WALL)
    hub.unpublish(ch, owner, "gone")
    tcp, _ = p.pull(WALL)
    byes = [rtcp.parse_rtcp(pl)[0] for c, pl in frames(tcp) if c in (1, 3)]
    assert len(byes) == 2 and all(isinstance(b, rtcp.Goodbye) for b in byes)
    assert p.ended == "publisher left (gone)"


def test_codec_change_ends_the_session(av):
    tracks, units = av
    hub = Hub()
    ch, _ = publish(hub, tracks, units[:10])
    p = started_tcp_player(hub, tracks)
    p.pull(WALL)
    hevc = Track(0, CodecConfig(Codec.H265), 90000)
    ch.set_tracks([hevc, tracks[1]])
    p.pull(WALL)
    assert p.ended == "track 0 changed codec to hevc"


def test_udp_tracks_come_out_as_datagrams(av):
    tracks, units = av
    hub = Hub()
    publish(hub, tracks, units[:20])
    sub = hub.subscribe("live/x")
    conn = FakeConn(tracks, {0: Transport("UDP", client_port=(5000, 5001)),
                             1: Transport("UDP", client_port=(5002, 5003))})
    p = RtspPlayer(conn, sub)
    p.describe()
    info = p.start()
    tcp, udp = p.pull(WALL)
    assert tcp == []
    rtp = [(tid, parse_rtp(d)) for tid, is_rtcp, d in udp if not is_rtcp]
    assert {tid for tid, _ in rtp} == {0, 1}
    assert (rtp[0][1].sequence, rtp[0][1].timestamp) == info[rtp[0][0]]
    assert [is_rtcp for _, is_rtcp, _ in udp[:1]] == [True]  # SR first


def test_a_malformed_unit_is_skipped_for_everyone(av):
    tracks, units = av
    hub = Hub()
    bad = AccessUnit(0, units[5].dts, units[5].pts, False, b"\x00\x00\x10\x00\x41")  # length > data
    ch, _ = publish(hub, tracks, units[:5] + [bad] + units[5:12])
    p = started_tcp_player(hub, tracks)
    video = [parse_rtp(pl) for c, pl in frames(p.pull(WALL)[0]) if c == 0]
    assert p.source.bad_units == 1 and p.ended is None
    want = [u for u in units[:12] if u.track == 0]
    assert sum(pk.marker for pk in video) == len(want)  # every good unit, none for the bad one
