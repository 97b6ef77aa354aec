"""Publisher and Player: the two kinds of load-generator connections.

``Publisher`` sends the cached media loop at real-time pace (one wake-up per video frame; the
audio frames due by then go out with it), stamping every video frame with (publisher id,
sequence number, send time). ``Player`` checks what it receives: from its first keyframe on,
every stamped frame must carry the next sequence number of the expected publisher. A larger
number is a gap (frames missing), an equal or smaller one a duplicate or reordering. Audio is
checked by its timestamps: a step of more than two AAC frames is a gap, a step back a reorder.
"""

from __future__ import annotations

import asyncio
import time

from bench.loadgen import amf0
from bench.loadgen.media import (AAC_FRAME, AUDIO_RATE, Media, audio_sequence_header,
                                 read_stamp, video_sequence_header, video_tag_head)
from bench.loadgen.rtmp import CSID_AUDIO, CSID_DATA, CSID_VIDEO, RtmpClient

PUBLISHER_MAX_BUFFER = 32 * 1024 * 1024  # bytes queued in our socket before we call it a stall
AUDIO_GAP_MS = 2 * AAC_FRAME * 1000 // AUDIO_RATE + 1  # > 2 frames between audio timestamps


class Publisher(RtmpClient):
    """Publishes ``media`` on one stream, looping it, until ``stop()``."""

    def __init__(self, pub_id: int, media: Media) -> None:
        super().__init__()
        self.pub_id = pub_id
        self.media = media
        self.frames_sent = 0
        self.media_bytes_sent = 0
        self.max_lag = 0.0  # seconds behind the real-time schedule (load generator overload)
        self.max_write_buffer = 0
        self._stop = False

    async def publish(self, app: str, tc_url: str, name: str) -> None:
        """Connect and publish; returns once the server said NetStream.Publish.Start."""
        msid = await self.setup(app, tc_url)
        self.msid = msid
        await self.command("releaseStream", None, name, wait=False)
        await self.command("FCPublish", None, name, wait=False)
        await self.command("publish", None, name, "live", msid=msid, wait=False)
        await self.wait_status("NetStream.Publish.Start")

    def stop(self) -> None:
        self._stop = True

    async def stream(self) -> None:
        """Send media in real time until stop() or the connection drops."""
        m = self.media
        meta = amf0.EcmaArray(width=m.width, height=m.height, framerate=m.fps, videocodecid=7,
                              audiocodecid=10, audiosamplerate=AUDIO_RATE, audiochannels=2,
                              videodatarate=m.video_bitrate / 1000, encoder="rtmpgop-bench")
        self.send_message(CSID_DATA, 18, self.msid, amf0.encode("@setDataFrame", "onMetaData", meta))
        self.send_message(CSID_VIDEO, 9, self.msid, video_sequence_header(m.avcc), 0)
        self.send_message(CSID_AUDIO, 8, self.msid, audio_sequence_header(m.asc), 0)
        nv, na = len(m.video), len(m.audio)
        t0 = self.loop.time()
        seq = aseq = 0
        while not self._stop and not self.closed.done():
            due = t0 + seq / m.fps
            now = self.loop.time()
            if due > now:
                await asyncio.sleep(due - now)
                if self._stop or self.closed.done():
                    break
            else:
                self.max_lag = max(self.max_lag, now - due)
            while aseq * AAC_FRAME * m.fps <= seq * AUDIO_RATE:  # audio up to this frame's time
                payload = b"\xaf\x01" + m.audio[aseq % na]
                self.send_message(CSID_AUDIO, 8, self.msid, payload,
                                  aseq * AAC_FRAME * 1000 // AUDIO_RATE)
                self.media_bytes_sent += len(payload)
                aseq += 1
            key, data = m.video[seq % nv]
            payload = video_tag_head(key, self.pub_id, seq, time.monotonic_ns() // 1000) + data
            self.send_message(CSID_VIDEO, 9, self.msid, payload, seq * 1000 // m.fps)
            self.media_bytes_sent += len(payload)
            self.frames_sent += 1
            seq += 1
            wb = self.transport.get_write_buffer_size()
            if wb > self.max_write_buffer:
                self.max_write_buffer = wb
                if wb > PUBLISHER_MAX_BUFFER:
                    self.error = RuntimeError("server stopped reading the publisher")
                    self.transport.abort()


class Player(RtmpClient):
    """Plays one stream and checks its frames. ``t_connect`` is set by whoever connects it."""

    def __init__(self, expect_pub: int) -> None:
        super().__init__()
        self.expect_pub = expect_pub
        self.t_connect = 0.0
        self.t_first_key: float | None = None
        self.last_seq = -1
        self.frames = 0  # stamped frames from the first keyframe on
        self.missing = 0  # frames skipped over (sum of gap sizes)
        self.gaps = 0  # gap events
        self.dups = 0  # frames whose number was not larger than the last one
        self.foreign = 0  # frames of another publisher or unstamped frames
        self.before_key = 0  # video frames before the first keyframe (nginx without a GoP cache)
        self.audio_frames = 0
        self.audio_gaps = 0
        self.audio_back = 0
        self._last_ats = -1
        self.latencies: list[int] | None = None  # us, send -> receive, while recording

    async def play(self, app: str, tc_url: str, name: str) -> None:
        msid = await self.setup(app, tc_url)
        await self.command("play", None, name, -2000, msid=msid, wait=False)
        self.send_message(2, 4, 0, b"\x00\x03" + msid.to_bytes(4, "big") + (1000).to_bytes(4, "big"))

    def on_media(self, mtype: int, ts: int, prefix: memoryview, length: int) -> None:
        if mtype == 9:
            if len(prefix) < 2 or prefix[1] != 1:
                return  # sequence header / end of sequence
            if self.t_first_key is None:
                if prefix[0] >> 4 != 1:
                    self.before_key += 1
                    return
                self.t_first_key = time.monotonic()
            stamp = read_stamp(prefix)
            if stamp is None or stamp[0] != self.expect_pub:
                self.foreign += 1
                return
            seq = stamp[1]
            last = self.last_seq
            self.frames += 1
            if last < 0 or seq == last + 1:
                self.last_seq = seq
            elif seq > last:
                self.missing += seq - last - 1
                self.gaps += 1
                self.last_seq = seq
            else:
                self.dups += 1
            if self.latencies is not None:
                self.latencies.append(time.monotonic_ns() // 1000 - stamp[2])
        elif mtype == 8:
            if self.t_first_key is None or len(prefix) < 2 or prefix[1] != 1:
                return
            self.audio_frames += 1
            last = self._last_ats
            if last >= 0:
                d = (ts - last) & 0xFFFFFFFF
                if d >= 0x80000000:
                    self.audio_back += 1
                elif d > AUDIO_GAP_MS:
                    self.audio_gaps += 1
            self._last_ats = ts

    @property
    def exact(self) -> bool:
        """Every frame since the first keyframe arrived in order exactly once."""
        return (self.t_first_key is not None and self.missing == 0 and self.dups == 0
                and self.foreign == 0 and self.error is None)
