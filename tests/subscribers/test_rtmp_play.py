"""RtmpPlayer: the play sequence, shared per-GoP serialization, E-RTMP gating, republish
notifications, skips, batch bounds. In memory: Hub + ServerConnection <-> ClientConnection."""

import functools

from fixtures.media import encode_audio, encode_video
from rtmpgop.channels import Hub
from rtmpgop.codecs import make_config
from rtmpgop.media import VIDEO_CLOCK, AccessUnit, Codec, Track
from rtmpgop.protocol import amf0
from rtmpgop.protocol.flv import PacketType as P
from rtmpgop.protocol.rtmp import events as E
from rtmpgop.protocol.rtmp.client import ClientConnection
from rtmpgop.protocol.rtmp.connection import ServerConnection
from rtmpgop.subscribers.rtmp_play import RtmpPlayer


def flat(bufs):
    return b"".join(bytes(b) for b in bufs)


@functools.cache
def streams(vcodec="h264"):
    v = encode_video(vcodec, frames=20, gop=10, bframes=(vcodec == "h264"))
    a = encode_audio("aac", seconds=0.5)
    return v, a


def tracks(vcodec="h264"):
    v, a = streams(vcodec)
    codec = {"h264": Codec.H264, "hevc": Codec.H265}[vcodec]
    return [Track(0, make_config(codec, v.config), VIDEO_CLOCK),
            Track(1, make_config(Codec.AAC, a.config), 48000)]


def push_clip(ch, vcodec="h264", start=0, n=20):
    v, a = streams(vcodec)
    tb = v.time_base
    for i, p in enumerate(v.packets[start:start + n]):
        dts, pts = int(p.dts * tb * VIDEO_CLOCK), int(p.pts * tb * VIDEO_CLOCK)
        ch.push(AccessUnit(0, dts, pts, p.keyframe, p.data))
        if i < len(a.packets):
            ch.push(AccessUnit(1, (start + i) * 1024, (start + i) * 1024, True, a.packets[i].data))


class Viewer:
    def __init__(self, hub, path="live/p", fourccs=(), **kw):
        self.s = ServerConnection()
        self.c = ClientConnection("live", "rtmp://h/live", fourccs=fourccs)
        self.events = []
        self._pump()
        self.c.create_stream()
        self._pump()
        self.c.play(1, path.split("/", 1)[1])
        self._pump()
        play = [e for e in self.server_events if isinstance(e, E.Play)][0]
        self.s.accept_play(play)
        self.player = RtmpPlayer(self.s, hub.subscribe(path, **kw), 1)

    def _pump(self):
        self.server_events = getattr(self, "server_events", [])
        for _ in range(10):
            a = flat(self.c.data_to_send())
            if a:
                self.s.receive_data(a)
            while (ev := self.s.next_event()) is not None:
                self.server_events.append(ev)
                if isinstance(ev, E.Connect):
                    self.s.accept_connect(ev)
            b = flat(self.s.data_to_send())
            if b:
                self.c.receive_data(b)
                while (ev := self.c.next_event()) is not None:
                    self.events.append(ev)
            if not a and not b:
                return

    def pull(self, max_bytes=1 << 30):
        bufs = self.player.pull(max_bytes)
        self.c.receive_data(flat(bufs))
        while (ev := self.c.next_event()) is not None:
            self.events.append(ev)
        return bufs

    def media(self, cls=E.VideoData, packet=P.CODED_FRAMES):
        return [e for e in self.events if isinstance(e, cls) and e.tag.packet is packet]


def publish(hub, vcodec="h264"):
    ch = hub.publish("live/p", "pub")
    ch.set_tracks(tracks(vcodec), (("encoder", "test"),))
    return ch


def test_play_sequence_and_keyframe_first():
    hub = Hub()
    ch = publish(hub)
    push_clip(ch)
    view = Viewer(hub)
    view.pull()
    kinds = []
    for e in view.events:
        if isinstance(e, E.Status):
            kinds.append(e.code)
        elif isinstance(e, (E.VideoData, E.AudioData)):
            kinds.append((type(e).__name__, e.tag.packet.name))
        elif isinstance(e, E.Metadata):
            kinds.append("onMetaData")
    assert kinds[:7] == ["NetStream.Play.Reset", "NetStream.Play.Start", "onMetaData",
                         ("VideoData", "SEQUENCE_START"), ("AudioData", "SEQUENCE_START"),
                         ("VideoData", "CODED_FRAMES"), ("AudioData", "CODED_FRAMES")]
    v, a = streams()
    vids = view.media()
    assert vids[0].tag.keyframe and [x.payload for x in vids] == [p.data for p in v.packets[10:20]]
    meta = dict(next(e for e in view.events if isinstance(e, E.Metadata)).values)
    assert meta["videocodecid"] == 7.0 and meta["audiocodecid"] == 10.0 and meta["width"] == 320.0
    assert meta["encoder"] == "test"
    assert view.media(E.VideoData, P.SEQUENCE_START)[0].payload == v.config
    tb = v.time_base
    assert [(x.timestamp, x.tag.cts) for x in vids] == [
        (int(p.dts * tb * 1000), int(p.pts * tb * 1000) - int(p.dts * tb * 1000)) for p in v.packets[10:20]]


def test_players_share_the_same_buffers():
    hub = Hub()
    ch = publish(hub)
    one, two = Viewer(hub), Viewer(hub)
    push_clip(ch, n=10)
    big = bytes(range(256)) * 160  # 40 KB: above JOIN_BELOW_BYTES, stays a view
    last = ch.last_gop.items[-1]
    ch.push(AccessUnit(0, last.dts + 3000, last.dts + 3000, False, big))
    b1, b2 = one.pull(), two.pull()
    shared = {id(b) for b in b1} & {id(b) for b in b2}
    assert len(shared) >= 21  # every access unit's buffers are the same objects
    assert two.player.shared_hits == one.player.frames_out == 21
    assert [x.payload for x in one.media()] == [x.payload for x in two.media()]
    assert one.media()[-1].payload == big
    # small messages are one joined buffer each; a large payload is not copied: its chunk
    # bodies are views of the hub's payload
    au = {id(i.payload): i for g in ch.ring for i in g.items if isinstance(i, AccessUnit)}
    views = [b for b in b1 if isinstance(b, memoryview) and b.obj is not None and id(b.obj) in au]
    assert views and all(b.obj is big for b in views) and sum(map(len, views)) == len(big)


def test_hevc_only_for_players_listing_hvc1():
    hub = Hub()
    ch = publish(hub, "hevc")
    legacy, enhanced = Viewer(hub), Viewer(hub, fourccs=("hvc1",))
    push_clip(ch, "hevc", n=10)
    legacy.pull()
    enhanced.pull()
    assert legacy.media() == [] and len(legacy.media(E.AudioData)) == 10
    assert [x.tag.fourcc for x in enhanced.media()] == ["hvc1"] * 10
    meta = dict(next(e for e in enhanced.events if isinstance(e, E.Metadata)).values)
    assert meta["videocodecid"] == float(int.from_bytes(b"hvc1", "big"))
    assert "videocodecid" not in dict(next(e for e in legacy.events if isinstance(e, E.Metadata)).values)


def test_unpublish_then_new_publisher_notifies_and_resends_headers():
    hub = Hub()
    ch = publish(hub)
    view = Viewer(hub)
    push_clip(ch, n=10)
    view.pull()
    hub.unpublish(ch, "pub")
    view.pull()
    ch = publish(hub)
    push_clip(ch, n=10)
    view.pull()
    codes = [e.code for e in view.events if isinstance(e, E.Status)]
    assert codes[2:] == ["NetStream.Play.UnpublishNotify", "NetStream.Play.PublishNotify"]
    assert len(view.media(E.VideoData, P.SEQUENCE_START)) == 2
    ts = [x.timestamp for x in view.media()]
    assert len(ts) == 20 and ts == sorted(ts)


def test_pull_respects_the_batch_bound_and_resumes():
    hub = Hub()
    ch = publish(hub)
    view = Viewer(hub)
    push_clip(ch, n=10)
    first = view.pull(2000)
    assert 2000 <= sum(len(b) for b in first) < 2000 + 20_000
    while view.pull(2000):
        pass
    assert len(view.media()) == 10


def test_skipped_player_gets_headers_again_at_the_new_head():
    hub = Hub()
    ch = publish(hub)
    view = Viewer(hub, max_backlog_bytes=5_000)
    push_clip(ch, n=20)  # far more than 5 kB behind
    view.pull()
    assert view.player.skips == 1
    assert len(view.media(E.VideoData, P.SEQUENCE_START)) == 1
    vids = view.media()
    assert vids[0].tag.keyframe


def test_metadata_amf_is_ecma_array():
    hub = Hub()
    publish(hub)
    view = Viewer(hub)
    assert isinstance(view.player._metadata(hub.get("live/p").trackset), amf0.ECMAArray)
