"""Publisher and Player: the two kinds of load-generator connections.

``Publisher`` sends the cached media loop at real-time pace (one wake-up per video frame; the
audio frames due by then go out with it), stamping every video frame with (publisher id,
sequence number, send time). ``Player`` checks what it receives: from its first keyframe on,
every stamped frame must carry the next sequence number of the expected publisher. A larger
number is a gap (frames missing), an equal or smaller one a duplicate or reordering. Audio is
checked by its timestamps: a step of more than two AAC frames is a gap, a step back a reorder.
"""

from __future__ import annotations

import time

from bench.loadgen import amf0
from bench.loadgen.common import CheckingPlayer, PacedPublisher
from bench.loadgen.media import (AAC_FRAME, AUDIO_RATE, audio_sequence_header, read_stamp,
                                 video_sequence_header, video_tag_head)
from bench.loadgen.rtmp import CSID_AUDIO, CSID_DATA, CSID_VIDEO, RtmpClient

AUDIO_GAP_MS = 2 * AAC_FRAME * 1000 // AUDIO_RATE + 1  # > 2 frames between audio timestamps


class Publisher(PacedPublisher, RtmpClient):
    """Publishes ``media`` on one stream, looping it, until ``stop()``: ``Publisher(pub_id, media)``."""

    async def publish(self, app: str, tc_url: str, name: str) -> None:
        """Connect and publish; returns once the server said NetStream.Publish.Start."""
        msid = await self.setup(app, tc_url)
        self.msid = msid
        await self.command("releaseStream", None, name, wait=False)
        await self.command("FCPublish", None, name, wait=False)
        await self.command("publish", None, name, "live", msid=msid, wait=False)
        await self.wait_status("NetStream.Publish.Start")

    async def stream(self) -> None:
        """Send media in real time until stop() or the connection drops."""
        m = self.media
        meta = amf0.EcmaArray(width=m.width, height=m.height, framerate=m.fps, videocodecid=7,
                              audiocodecid=10, audiosamplerate=AUDIO_RATE, audiochannels=2,
                              videodatarate=m.video_bitrate / 1000, encoder="rtmpgop-bench")
        self.send_message(CSID_DATA, 18, self.msid, amf0.encode("@setDataFrame", "onMetaData", meta))
        self.send_message(CSID_VIDEO, 9, self.msid, video_sequence_header(m.avcc), 0)
        self.send_message(CSID_AUDIO, 8, self.msid, audio_sequence_header(m.asc), 0)
        await self._paced_loop()

    def _send_audio(self, aseq: int, frame: bytes) -> int:
        payload = b"\xaf\x01" + frame
        self.send_message(CSID_AUDIO, 8, self.msid, payload, aseq * AAC_FRAME * 1000 // AUDIO_RATE)
        return len(payload)

    def _send_video(self, seq: int, key: bool, data: bytes) -> int:
        payload = video_tag_head(key, self.pub_id, seq, time.monotonic_ns() // 1000) + data
        self.send_message(CSID_VIDEO, 9, self.msid, payload, seq * 1000 // self.media.fps)
        return len(payload)


class Player(CheckingPlayer, RtmpClient):
    """Plays one stream and checks its frames: ``Player(expect_pub)``."""

    def __init__(self, expect_pub: int) -> None:
        super().__init__(expect_pub)
        self.before_key = 0  # video frames before the first keyframe (nginx without a GoP cache)
        self._last_ats = -1

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
            self._check_stamp(stamp[1], stamp[2])
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
