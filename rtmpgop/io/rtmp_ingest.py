"""RTMP ingest glue: publisher events -> hub tracks and access units (DESIGN.md 1-2).

No I/O here (it lives in ``io`` only because it joins protocol events, codecs and the hub);
tested without sockets. Strategy:

- FLV sequence headers become ``CodecConfig`` via ``codecs.make_config``. Tracks (video id 0,
  audio id 1) are announced with ``channel.set_tracks`` just before the first coded frame after a
  change, so one ``TrackSet`` carries both configs and the onMetaData. A repeated identical
  sequence header changes nothing.
- Video: dts = ms * 90, pts = (ms + cts) * 90. The payload is the message's AVCC bytes as they
  are (copied once from the chunks) when the NAL length size is 4; other sizes are re-packed.
  The FLV key flag is confirmed with ``codecs.is_keyframe`` so a GoP never opens on a frame a
  decoder cannot start on.
- AAC: dts counts frames of 1024 (or 960) samples from an anchor at ms * rate // 1000 and
  re-anchors only when the ms clock drifts more than one frame away (RTMP ms timestamps
  jitter by up to 1 ms per frame). Opus: the same with each packet's own duration.
- Legacy codec id 7 carrying an hvcC (OBS < 29.1 HEVC) is recognized by trying the record.
"""

from __future__ import annotations

import logging

from rtmpgop import codecs
from rtmpgop.channels import Channel
from rtmpgop.errors import CodecError
from rtmpgop.media import VIDEO_CLOCK, AccessUnit, Codec, CodecConfig, Track
from rtmpgop.protocol.flv import PacketType
from rtmpgop.protocol.rtmp.events import AudioData, Metadata, VideoData

log = logging.getLogger(__name__)

VIDEO_TRACK = 0
AUDIO_TRACK = 1

VIDEO_FOURCCS = {"avc1": Codec.H264, "hvc1": Codec.H265, "av01": Codec.AV1, "vp09": Codec.VP9}
AUDIO_FOURCCS = {"mp4a": Codec.AAC, "Opus": Codec.OPUS}


class RtmpIngest:
    """One publisher session feeding ``channel``."""

    def __init__(self, channel: Channel, name: str = "") -> None:
        self.channel = channel
        self.name = name or channel.path
        self.video: CodecConfig | None = None
        self.audio: CodecConfig | None = None
        self.metadata: tuple[tuple[str, object], ...] = ()
        self._dirty = False
        self._length_size = 4
        self._audio_frame = 1024
        self._audio_next: int | None = None  # expected dts of the next audio frame
        self.frames_in = 0
        self.frames_dropped = 0  # before a sequence header, unsupported codec, ...
        self.repacked = 0
        self._warned: set[str] = set()

    # ------------------------------------------------------------------ config
    def on_metadata(self, ev: Metadata) -> None:
        self.metadata = ev.values
        self._dirty = True

    def _frame_rate(self) -> float:
        for k, v in self.metadata:
            if k in ("framerate", "videoframerate") and isinstance(v, float) and 0 < v < 1000:
                return v
        return 0.0

    def _warn_once(self, what: str) -> None:
        if what not in self._warned:
            self._warned.add(what)
            log.warning("rtmp ingest %s: %s; ignoring it", self.name, what)

    def _video_config(self, fourcc: str, record: bytes) -> None:
        codec = VIDEO_FOURCCS.get(fourcc)
        if codec is None:
            self._warn_once(f"unsupported video codec {fourcc!r}")
            return
        try:
            cfg = codecs.make_config(codec, record, frame_rate=self._frame_rate())
        except CodecError:
            if codec is not Codec.H264:
                raise
            cfg = codecs.make_config(Codec.H265, record, frame_rate=self._frame_rate())
        if self.video is not None and self.video.record == cfg.record:
            return
        self.video = cfg
        self._dirty = True
        if cfg.codec is Codec.H264:
            self._length_size = codecs.h264.parse_avcc(record).length_size
        elif cfg.codec is Codec.H265:
            self._length_size = codecs.h265.parse_hvcc(record).length_size
        else:
            self._length_size = 4

    def _audio_config(self, fourcc: str, record: bytes) -> None:
        codec = AUDIO_FOURCCS.get(fourcc)
        if codec is None:
            self._warn_once(f"unsupported audio codec {fourcc!r}")
            return
        cfg = codecs.make_config(codec, record)
        if self.audio is not None and self.audio.record == cfg.record:
            return
        if codec is Codec.AAC:
            self._audio_frame = codecs.aac.parse_asc(record).frame_length
        self.audio = cfg
        self._audio_next = None
        self._dirty = True

    def tracks(self) -> list[Track]:
        out = []
        if self.video is not None:
            out.append(Track(VIDEO_TRACK, self.video, VIDEO_CLOCK))
        if self.audio is not None:
            out.append(Track(AUDIO_TRACK, self.audio, self.audio.sample_rate or 48_000))
        return out

    def _announce(self) -> None:
        if self._dirty:
            self._dirty = False
            self.channel.set_tracks(self.tracks(), self.metadata)

    # ------------------------------------------------------------------ media
    def on_video(self, ev: VideoData) -> None:
        """Handle one video message. Raises ``CodecError`` on a malformed config or frame."""
        tag = ev.tag
        if tag.packet is PacketType.SEQUENCE_START:
            self._video_config(tag.fourcc, ev.payload)
            return
        if tag.packet is not PacketType.CODED_FRAMES or not ev.payload:
            return  # sequence end, metadata, command frames
        cfg = self.video
        codec = VIDEO_FOURCCS.get(tag.fourcc)
        if cfg is None or not (codec is cfg.codec or (codec is Codec.H264 and cfg.codec is Codec.H265)):
            self.frames_dropped += 1
            return
        payload = ev.payload
        if self._length_size != 4 and cfg.codec in (Codec.H264, Codec.H265):
            payload = _repack(payload, self._length_size)
            self.repacked += 1
        key = tag.keyframe and codecs.is_keyframe(cfg.codec, payload)
        self._announce()
        dts = ev.timestamp * 90
        self.frames_in += 1
        self.channel.push(AccessUnit(VIDEO_TRACK, dts, dts + tag.cts * 90, key, payload))

    def on_audio(self, ev: AudioData) -> None:
        """Handle one audio message. Raises ``CodecError`` on a malformed config or packet."""
        tag = ev.tag
        if tag.packet is PacketType.SEQUENCE_START:
            self._audio_config(tag.fourcc, ev.payload)
            return
        if tag.packet is not PacketType.CODED_FRAMES or not ev.payload:
            return
        cfg = self.audio
        if cfg is None or AUDIO_FOURCCS.get(tag.fourcc) is not cfg.codec:
            self.frames_dropped += 1
            return
        rate = cfg.sample_rate or 48_000
        duration = codecs.opus.packet_samples(ev.payload) if cfg.codec is Codec.OPUS else self._audio_frame
        ms_dts = ev.timestamp * rate // 1000
        expected = self._audio_next
        if expected is None or abs(ms_dts - expected) > max(duration, rate // 1000 + 1):
            expected = ms_dts  # first frame, or the publisher's clock jumped: re-anchor
        self._audio_next = expected + duration
        self._announce()
        self.frames_in += 1
        self.channel.push(AccessUnit(AUDIO_TRACK, expected, expected, True, ev.payload))


def _repack(payload: bytes, length_size: int) -> bytes:
    """AVCC with 1/2-byte NAL lengths -> 4-byte lengths. Raises ``CodecError``."""
    out = bytearray()
    for nal in codecs.h264.iter_avcc(payload, length_size):
        out += len(nal).to_bytes(4, "big")
        out += nal
    return bytes(out)
