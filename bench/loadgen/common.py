"""What the RTMP and RTSP load-generator connections share, written once.

``ReadBuffer``: the receive side of an ``asyncio.BufferedProtocol`` client: the socket reads
into one preallocated bytearray (``_buf``, read window ``_r:_w``) that is compacted when the
write end nears its end; each read runs the subclass's ``_consume()`` (a parse failure fails
this connection only: the run goes on), then ``_after_read()``.

``PacedPublisher``: the real-time send loop (one wake-up per video frame, the audio frames due
by then sent first, write-buffer stall check); subclasses put one frame on the wire in
``_send_audio``/``_send_video``.

``CheckingPlayer``: the per-frame stamp check (order, gaps, duplicates, latency) both players
run on every stamped video frame of the expected publisher.
"""

from __future__ import annotations

import asyncio
import time

from bench.loadgen.media import AAC_FRAME, AUDIO_RATE, Media

PUBLISHER_MAX_BUFFER = 32 * 1024 * 1024  # bytes queued in our socket before we call it a stall


class ReadBuffer(asyncio.BufferedProtocol):
    """Receive buffer of a client connection. Subclasses set ``READ_BUFFER`` (bytes) and
    ``COMPACT_MARGIN`` (free bytes wanted at the end before a read) and call
    ``_init_read_buffer()`` in their ``__init__``."""

    READ_BUFFER = 256 * 1024
    COMPACT_MARGIN = 65536

    def _init_read_buffer(self) -> None:
        self._buf = bytearray(self.READ_BUFFER)
        self._mv = memoryview(self._buf)
        self._r = self._w = 0
        self.received = 0  # all bytes read from the socket

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._w > self.READ_BUFFER - self.COMPACT_MARGIN:
            n = self._w - self._r
            self._buf[:n] = self._buf[self._r:self._w]
            self._r, self._w = 0, n
        return self._mv[self._w:]

    def buffer_updated(self, nbytes: int) -> None:
        self._w += nbytes
        self.received += nbytes
        try:
            self._consume()
        except Exception as e:  # a broken server reply: fail this connection, keep the run going
            self.error = e
            self.transport.abort()
            return
        if self._r == self._w:
            self._r = self._w = 0
        self._after_read()

    def eof_received(self):
        return False

    def _consume(self) -> None:
        """Parse ``_buf[_r:_w]``, advancing ``_r`` past what was used."""

    def _after_read(self) -> None:
        """Called after each read that did not fail the connection."""


class PacedPublisher:
    """Mixin (before the client class) that sends ``media`` in real time, looping it."""

    def __init__(self, pub_id: int, media: Media) -> None:
        super().__init__()
        self.pub_id = pub_id
        self.media = media
        self.frames_sent = 0
        self.media_bytes_sent = 0
        self.max_lag = 0.0  # seconds behind the real-time schedule (load generator overload)
        self.max_write_buffer = 0
        self._stop = False

    def stop(self) -> None:
        self._stop = True

    def _send_audio(self, aseq: int, frame: bytes) -> int:
        """Send AAC frame number ``aseq``; returns the media bytes sent."""
        raise NotImplementedError

    def _send_video(self, seq: int, key: bool, data: bytes) -> int:
        """Send video frame number ``seq`` (stamped); returns the media bytes sent."""
        raise NotImplementedError

    async def _paced_loop(self) -> None:
        """Send frames on schedule until stop() or the connection drops."""
        m = self.media
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
                self.media_bytes_sent += self._send_audio(aseq, m.audio[aseq % na])
                aseq += 1
            key, data = m.video[seq % nv]
            self.media_bytes_sent += self._send_video(seq, key, data)
            self.frames_sent += 1
            seq += 1
            wb = self.transport.get_write_buffer_size()
            if wb > self.max_write_buffer:
                self.max_write_buffer = wb
                if wb > PUBLISHER_MAX_BUFFER:
                    self.error = RuntimeError("server stopped reading the publisher")
                    self.transport.abort()


class CheckingPlayer:
    """Mixin (before the client class) with the stamped-frame counters and their check.
    ``t_connect`` is set by whoever connects it."""

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
        self.audio_frames = 0
        self.audio_gaps = 0
        self.audio_back = 0
        self.latencies: list[int] | None = None  # us, send -> receive, while recording

    def _check_stamp(self, seq: int, t_us: int) -> None:
        """Count stamped frame ``seq`` of the expected publisher, sent at ``t_us``."""
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
            self.latencies.append(time.monotonic_ns() // 1000 - t_us)

    @property
    def exact(self) -> bool:
        """Every frame since the first keyframe arrived in order exactly once."""
        return (self.t_first_key is not None and self.missing == 0 and self.dups == 0
                and self.foreign == 0 and self.error is None)
