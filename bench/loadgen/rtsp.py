"""RTSP load-generator connections with the same interface as ``clients.Publisher``/``Player``,
so ``run.run_load`` drives them unchanged (``publisher_cls``/``player_cls``).

``RtspPublisher``: ANNOUNCE (H.264 + AAC SDP), SETUP both tracks TCP interleaved (0-1, 2-3),
RECORD, then the cached media loop at real-time pace, each video access unit led by the same
SEI stamp NAL the RTMP publisher sends (bench/loadgen/media.py), packetized with rtmpgop's RTP
packetizers (MTU 1200), audio as RFC 3640 AAC-hbr. ``media_bytes_sent`` counts access-unit
payload bytes (the RTMP publisher counts FLV tag bodies: 5 or 2 bytes more per frame).

``RtspPlayer``: DESCRIBE, SETUP both tracks (interleaved), PLAY, then scans ``$`` frames in a
receive buffer without copying: RTP payload bytes are counted (``media_bytes``), the SEI stamp
of each video access unit is checked exactly as the RTMP player checks it (order, gaps,
duplicates, latency), and RTP sequence gaps per channel count as ``rtp_gaps`` (not exact).
The join time ends at the first packet of a keyframe (SPS, IDR or an FU-A of an IDR).
"""

from __future__ import annotations

import asyncio
import re
import time

from bench.loadgen.common import CheckingPlayer, PacedPublisher, ReadBuffer
from bench.loadgen.media import (AAC_FRAME, AUDIO_RATE, BENCH_UUID, Media, _unseven,
                                 video_tag_head)

READ_BUFFER = 1024 * 1024
_SEI_AT = 12  # RTP header; the stamp NAL is a single-NAL packet of its own


class RtspError(Exception):
    pass


class RtspClient(ReadBuffer):
    """Requests/responses plus a ``$``-frame scanner (``on_packet``)."""

    READ_BUFFER = READ_BUFFER
    COMPACT_MARGIN = 131072

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self._init_read_buffer()
        self._cseq = 0
        self._waiter: asyncio.Future | None = None
        self.session = ""
        self.media_bytes = 0
        self.closed = self.loop.create_future()
        self.error: BaseException | None = None
        self._closing = False

    def connection_made(self, transport) -> None:
        self.transport = transport

    def connection_lost(self, exc) -> None:
        err = exc or ConnectionError("connection closed by server")
        if self.error is None and not self._closing:
            self.error = err
        if not self.closed.done():
            self.closed.set_result(None)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(err)

    def _consume(self) -> None:
        buf = self._buf
        pos, end = self._r, self._w
        while pos < end:
            if buf[pos] == 0x24:
                if end - pos < 4:
                    break
                n = (buf[pos + 2] << 8) | buf[pos + 3]
                if end - pos < 4 + n:
                    break
                self.on_packet(buf[pos + 1], buf, pos + 4, n)
                pos += 4 + n
                continue
            head_end = buf.find(b"\r\n\r\n", pos, end)
            if head_end < 0:
                break
            head = bytes(buf[pos:head_end]).decode("latin-1")
            m = re.search(r"(?im)^content-length:\s*(\d+)", head)
            blen = int(m.group(1)) if m else 0
            if end - (head_end + 4) < blen:
                break
            body = bytes(buf[head_end + 4:head_end + 4 + blen])
            pos = head_end + 4 + blen
            self._on_response(head, body)
        self._r = pos

    def _on_response(self, head: str, body: bytes) -> None:
        status = int(head.split(" ", 2)[1])
        m = re.search(r"(?im)^session:\s*([^;\r\n]+)", head)
        if m:
            self.session = m.group(1).strip()
        w, self._waiter = self._waiter, None
        if w is not None and not w.done():
            w.set_result((status, head, body))

    def on_packet(self, channel: int, buf: bytearray, off: int, n: int) -> None:
        pass

    async def request(self, method: str, url: str, headers: str = "", body: bytes = b""):
        """Send a request and wait for its answer; raises ``RtspError`` on a non-200."""
        self._cseq += 1
        h = f"{method} {url} RTSP/1.0\r\nCSeq: {self._cseq}\r\n{headers}"
        if self.session:
            h += f"Session: {self.session}\r\n"
        if body:
            h += f"Content-Length: {len(body)}\r\n"
        self._waiter = self.loop.create_future()
        self.transport.write(h.encode() + b"\r\n" + body)
        status, head, rbody = await self._waiter
        if status != 200:
            raise RtspError(f"{method} {url}: {status}")
        return head, rbody

    def close(self) -> None:
        self._closing = True
        if self.transport is not None:
            self.transport.abort()


def _tracks(media: Media):
    from rtmpgop import codecs
    from rtmpgop.media import Codec, Track
    return [Track(0, codecs.make_config(Codec.H264, media.avcc), 90000),
            Track(1, codecs.make_config(Codec.AAC, media.asc), AUDIO_RATE)]


class RtspPublisher(PacedPublisher, RtspClient):
    """Publishes ``media`` over RTSP (TCP interleaved), looping it, until ``stop()``:
    ``RtspPublisher(pub_id, media)``."""

    async def publish(self, app: str, tc_url: str, name: str) -> None:
        from rtmpgop.protocol.rtsp.sdp import SessionDescription, format_sdp
        from rtmpgop.protocol.rtsp.sdp_tracks import media_for_track, packetizer_for
        url = f"{tc_url}/{name}"
        tracks = _tracks(self.media)
        sdp = format_sdp(SessionDescription(media=tuple(
            media_for_track(t, f"trackID={t.id}") for t in tracks), name=name))
        await self.request("ANNOUNCE", url, "Content-Type: application/sdp\r\n", sdp)
        for t in tracks:
            await self.request("SETUP", f"{url}/trackID={t.id}",
                               f"Transport: RTP/AVP/TCP;unicast;interleaved={2 * t.id}-"
                               f"{2 * t.id + 1};mode=record\r\n")
        await self.request("RECORD", url)
        self._pk = [packetizer_for(tracks[0], 96, 0x1000 + self.pub_id),
                    packetizer_for(tracks[1], 97, 0x2000 + self.pub_id)]

    def _send(self, channel: int, packets: list[bytes]) -> None:
        out = []
        for p in packets:
            out.append(bytes((0x24, channel)) + len(p).to_bytes(2, "big"))
            out.append(p)
        self.transport.writelines(out)

    async def stream(self) -> None:
        """Send media in real time until stop() or the connection drops."""
        await self._paced_loop()

    def _send_audio(self, aseq: int, frame: bytes) -> int:
        self._send(2, self._pk[1].packetize(frame, aseq * AAC_FRAME))
        return len(frame)

    def _send_video(self, seq: int, key: bool, data: bytes) -> int:
        payload = video_tag_head(key, self.pub_id, seq, time.monotonic_ns() // 1000)[5:] + data
        self._send(0, self._pk[0].packetize(payload, seq * 90000 // self.media.fps))
        return len(payload)


class RtspPlayer(CheckingPlayer, RtspClient):
    """Plays one stream over RTSP (TCP interleaved) and checks its frames:
    ``RtspPlayer(expect_pub)``."""

    def __init__(self, expect_pub: int) -> None:
        super().__init__(expect_pub)
        self.rtp_gaps = 0
        self._rtp_seq = {0: -1, 2: -1}

    async def play(self, app: str, tc_url: str, name: str) -> None:
        url = f"{tc_url}/{name}"
        await self.request("DESCRIBE", url, "Accept: application/sdp\r\n")
        for i in (0, 1):
            await self.request("SETUP", f"{url}/trackID={i}",
                               f"Transport: RTP/AVP/TCP;unicast;interleaved={2 * i}-{2 * i + 1}\r\n")
        await self.request("PLAY", url)

    def on_packet(self, channel: int, buf: bytearray, off: int, n: int) -> None:
        if channel & 1 or n < 13:
            return  # RTCP
        self.media_bytes += n - 12
        seq = (buf[off + 2] << 8) | buf[off + 3]
        last = self._rtp_seq.get(channel, -1)
        if last >= 0 and seq != (last + 1) & 0xFFFF:
            self.rtp_gaps += 1
        self._rtp_seq[channel] = seq
        if channel == 2:
            if self.t_first_key is not None:
                self.audio_frames += 1
            return
        nal = buf[off + 12] & 0x1F
        if self.t_first_key is None:
            if nal in (5, 7) or (nal == 28 and buf[off + 13] & 0x1F == 5):
                self.t_first_key = time.monotonic()
            else:
                return
        if nal != 6 or n < _SEI_AT + 39 or buf[off + 15:off + 31] != BENCH_UUID:
            return
        s = off + 31
        pub, fseq, t_us = (_unseven(buf[s:s + 3]), _unseven(buf[s + 3:s + 11]),
                           _unseven(buf[s + 11:s + 19]))
        if pub != self.expect_pub:
            self.foreign += 1
            return
        self._check_stamp(fseq, t_us)

    @property
    def exact(self) -> bool:
        """Every frame since the first keyframe arrived in order exactly once, no RTP gap."""
        return super().exact and self.rtp_gaps == 0
