"""RTMP play: turns a channel ``Subscription`` into RTMP messages for one player
(Adobe RTMP 1.0 section 7.2.2.1; FLV/E-RTMP bodies as ``protocol.flv`` writes them).

Strategy (fan-out, DESIGN.md 4): every access unit is serialized once per (chunk size, msid)
into fmt-0-headed chunks with absolute timestamps, so the buffers do not depend on the player,
and kept in the ``GoP.cache`` of the GoP that holds it; N players with the same chunk size write
the very same buffers (``transport.writelines``), body bytes as ``memoryview`` slices of the hub
payload. Per player remain only the small things: status messages, onMetaData and the
sequence headers sent at each ``TrackSet`` (GoP head for a new player, after a skip, after a
new publisher).

E-RTMP codecs (hvc1, av01, vp09, Opus) go only to players whose connect listed the FourCC;
H.264 and AAC are sent as legacy FLV. A player that cannot take a track gets the others.
After ``Unpublished`` the player gets ``NetStream.Play.UnpublishNotify`` and stays; the next
publisher's ``TrackSet`` brings ``PublishNotify`` and fresh sequence headers.

``pull(max_bytes)`` is sans-IO: the io glue calls it while its transport is not paused.
"""

from __future__ import annotations

from rtmpgop.channels import Subscription
from rtmpgop.media import AccessUnit, Codec, MediaKind, Skipped, Statistics, Track, TrackSet, Unpublished
from rtmpgop.protocol import amf0, flv
from rtmpgop.protocol.flv import PacketType
from rtmpgop.protocol.rtmp import messages as m
from rtmpgop.protocol.rtmp.chunk import chunk_message
from rtmpgop.protocol.rtmp.connection import ServerConnection

JOIN_BELOW_BYTES = 16 * 1024
"""A serialized message (chunk headers + FLV header + payload) up to this size is joined into one
``bytes``, once, and shared by every player through ``GoP.cache``: copying a few KB once for all
players is cheaper than handing uvloop and the kernel 3+ buffers per player per message (uvloop
casts each buffer of a ``writelines`` to a memoryview, each one is an iovec). Audio and the smaller
P-frames are below it. Larger frames stay ``memoryview`` slices of the hub payload (DESIGN.md 2:
media bytes are not copied again after reassembly); at the server's chunk size of 60000 they are
two or three buffers. Measured (bench/rtmp_bench.py fanout-200, two runs each, ms/Mbit; the
machine's noise is about +-10 %): join nothing 0.22-0.24, up to 16 KiB 0.19-0.22, up to 64 KiB
0.19, everything (keyframes too) 0.22-0.23; 16 KiB keeps most of the gain while copying at most
a few KB per message."""

PULL_BATCH_BYTES = 256 * 1024
"""Bytes gathered per ``pull`` call by default: one ``writelines`` per batch, small enough
that a paused transport is noticed within one batch."""

VIDEO_FOURCC = {Codec.H264: "avc1", Codec.H265: "hvc1", Codec.AV1: "av01", Codec.VP9: "vp09"}
AUDIO_FOURCC = {Codec.AAC: "mp4a", Codec.OPUS: "Opus"}
LEGACY = frozenset({"avc1", "mp4a"})
LEGACY_CODEC_ID = {"avc1": 7.0, "mp4a": 10.0}

_CODEC_KEYS = ("videocodecid", "audiocodecid", "width", "height", "framerate", "audiosamplerate",
               "stereo", "audiochannels")


def _fourcc_number(fourcc: str) -> float:
    return float(int.from_bytes(fourcc.encode("latin-1"), "big"))


def _ms(ts: int, clock: int) -> int:
    return ts * 1000 // clock


class RtmpPlayer:
    """One playing stream (``msid``) of a ``ServerConnection``, fed by ``sub``."""

    def __init__(self, conn: ServerConnection, sub: Subscription, msid: int) -> None:
        self.conn = conn
        self.sub = sub
        self.msid = msid
        self._video: Track | None = None  # tracks this player is sent
        self._audio: Track | None = None
        self._after_unpublish = False
        self._last_ms = 0  # timestamp of the last access unit sent
        self.frames_out = 0
        self.bytes_out = 0
        self.shared_hits = 0  # access units whose buffers another player had serialized
        self.skips = 0
        self.drained = False  # the last pull emptied the subscription
        # the shared serialization cache of the GoP being read (one lookup per GoP, not per unit)
        self._cache: dict = {}
        self._cache_gop: object = None
        self._cache_cs = 0

    def pull(self, max_bytes: int = PULL_BATCH_BYTES) -> list:
        """Buffers for the player, in order, up to about ``max_bytes``; [] when caught up.
        ``drained`` is then True if the subscription has nothing more for now (no need to call
        again before its wake-up).

        Includes whatever the connection had queued (acks, status replies) first."""
        out = self.conn.data_to_send()
        size = sum(len(b) for b in out) if out else 0
        sub = self.sub
        self.drained = False
        while size < max_bytes:
            item = sub.get_nowait()
            if item is None:
                self.drained = True
                break
            if type(item) is AccessUnit:
                got = self._access_unit(item)
                if got is not None:
                    bufs, n = got
                    out.extend(bufs)
                    size += n
                    self.frames_out += 1
                continue
            if type(item) is TrackSet:
                self._trackset(item)
            elif type(item) is Unpublished:
                self.conn.send_unpublish_notify(self.msid)
                self._after_unpublish = True
            elif type(item) is Skipped:
                self.skips += 1
            extra = self.conn.data_to_send()
            out.extend(extra)
            size += sum(len(b) for b in extra)
        self.bytes_out += size
        return out

    # ------------------------------------------------------------------ per-player messages
    def _trackset(self, ts: TrackSet) -> None:
        if not ts.tracks:
            return
        conn = self.conn
        video, audio = ts.video(), ts.audio()
        self._video = video if video is not None and self._accepts(VIDEO_FOURCC.get(video.codec)) else None
        self._audio = audio if audio is not None and self._accepts(AUDIO_FOURCC.get(audio.codec)) else None
        if self._after_unpublish:
            self._after_unpublish = False
            conn.send_publish_notify(self.msid)
        gop = self.sub.gop  # the GoP whose head this TrackSet is
        first = ts.tracks[0]
        start = gop.start_dts if gop is not None else 0
        clock = video.clock_rate if video is not None else first.clock_rate
        t_ms = max(_ms(start, clock), self._last_ms)  # in-line changes must not go back
        # timestamp 0 like nginx-rtmp: FFmpeg's flv demuxer skips onMetaData at dts 0 but turns
        # one at dts > 0 into a subtitle stream
        conn.send(m.data("onMetaData", self._metadata(ts), msid=self.msid, timestamp=0))
        if self._video is not None:
            fc = VIDEO_FOURCC[self._video.codec]
            conn.send(m.Message(m.MessageType.VIDEO, [flv.video_header(fc, PacketType.SEQUENCE_START, True),
                                                     self._video.config.record],
                                self.msid, t_ms, m.CSID_VIDEO))
        if self._audio is not None:
            fc = AUDIO_FOURCC[self._audio.codec]
            conn.send(m.Message(m.MessageType.AUDIO, [flv.audio_header(fc, PacketType.SEQUENCE_START),
                                                     self._audio.config.record],
                                self.msid, t_ms, m.CSID_AUDIO))

    def _accepts(self, fourcc: str | None) -> bool:
        return fourcc is not None and (fourcc in LEGACY or self.conn.accepts_fourcc(fourcc))

    def _metadata(self, ts: TrackSet) -> amf0.ECMAArray:
        meta = amf0.ECMAArray((k, v) for k, v in ts.metadata if k not in _CODEC_KEYS)
        if self._video is not None:
            c = self._video.config
            fc = VIDEO_FOURCC[c.codec]
            meta["videocodecid"] = LEGACY_CODEC_ID.get(fc) or _fourcc_number(fc)
            if c.width:
                meta["width"], meta["height"] = float(c.width), float(c.height)
            if c.frame_rate:
                meta["framerate"] = float(c.frame_rate)
        if self._audio is not None:
            c = self._audio.config
            fc = AUDIO_FOURCC[c.codec]
            meta["audiocodecid"] = LEGACY_CODEC_ID.get(fc) or _fourcc_number(fc)
            if c.sample_rate:
                meta["audiosamplerate"] = float(c.sample_rate)
            meta["stereo"] = c.channels >= 2
        return meta

    # ------------------------------------------------------------------ shared messages
    def _access_unit(self, au: AccessUnit) -> tuple[list, int] | None:
        if self._video is not None and au.track == self._video.id:
            track = self._video
        elif self._audio is not None and au.track == self._audio.id:
            track = self._audio
        else:
            return None
        self._last_ms = au.dts * 1000 // track.clock_rate
        gop = self.sub.gop
        cache = self._cache
        if gop is not self._cache_gop or self._cache_cs != self.conn.out_chunk_size:
            cs = self._cache_cs = self.conn.out_chunk_size
            key = ("rtmp", cs, self.msid)
            cache = gop.cache.get(key) if gop is not None else None
            if cache is None:
                cache = {}
                if gop is not None:
                    gop.cache[key] = cache
            self._cache, self._cache_gop = cache, gop
        got = cache.get(id(au))
        if got is not None:
            self.shared_hits += 1
            return got
        got = serialize(track, au, self.msid, self._cache_cs)
        cache[id(au)] = got
        return got

    def statistics(self) -> Statistics:
        return Statistics(frames_out=self.frames_out, bytes_out=self.bytes_out,
                          skipped_frames=self.sub.skipped_frames, skipped_bytes=self.sub.skipped_bytes,
                          extra=(("shared_hits", self.shared_hits), ("skips", self.skips)))


def serialize(track: Track, au: AccessUnit, msid: int, chunk_size: int) -> tuple[list, int]:
    """The chunked RTMP message of ``au`` (fmt 0, absolute timestamp) and its byte count: one
    ``bytes`` up to ``JOIN_BELOW_BYTES``, else the first chunk header joined with the FLV header
    followed by ``memoryview`` slices of the payload (and continuation headers)."""
    if track.kind is MediaKind.VIDEO:
        dts_ms = _ms(au.dts, track.clock_rate)
        cts = _ms(au.pts, track.clock_rate) - dts_ms
        hdr = flv.video_header(VIDEO_FOURCC[track.codec], PacketType.CODED_FRAMES, au.keyframe, cts)
        bufs = chunk_message(m.CSID_VIDEO, msid, m.MessageType.VIDEO, dts_ms, [hdr, au.payload], chunk_size)
    else:
        hdr = flv.audio_header(AUDIO_FOURCC[track.codec], PacketType.CODED_FRAMES)
        bufs = chunk_message(m.CSID_AUDIO, msid, m.MessageType.AUDIO, _ms(au.dts, track.clock_rate),
                             [hdr, au.payload], chunk_size)
    n = sum(len(b) for b in bufs)
    if n <= JOIN_BELOW_BYTES:
        return [b"".join(bufs)], n
    if len(bufs) > 1 and len(bufs[1]) == len(hdr):  # the FLV header fits the first chunk
        bufs[0:2] = [bufs[0] + bufs[1]]
    return bufs, n
