"""The benchmark's load generator: its frame checker catches every defect it claims to, its chunk
reader copes with any split of the byte stream, and it runs against real nginx-rtmp."""

from __future__ import annotations

import asyncio
import random

import pytest

from bench.loadgen.clients import Player
from bench.loadgen.media import STAMP_PREFIX, read_stamp, video_tag_head
from bench.loadgen.rtmp import RtmpClient


class _Sink:
    """A transport that keeps what is written."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, b) -> None:
        self.data += b

    def writelines(self, parts) -> None:
        for p in parts:
            self.data += p

    def get_write_buffer_size(self) -> int:
        return 0

    def abort(self) -> None:
        pass

    close = abort


def _server_bytes(frames: list[tuple[int, int, bool]], chunk_size: int, audio: list[int] = ()) -> bytes:
    """Wire bytes a server would send a player: Set Chunk Size, then one video message per
    (publisher, seq, keyframe) with a 300-byte body, and audio messages at the given ms."""
    w = RtmpClient()
    w.transport = _Sink()
    w.set_chunk_size(chunk_size)
    w.send_message(6, 9, 1, b"\x17\x00\x00\x00\x00" + bytes(40), 0)  # sequence header
    for i, (pub, seq, key) in enumerate(frames):
        w.send_message(6, 9, 1, video_tag_head(key, pub, seq, 1000 + i) + bytes(range(256)) + bytes(44),
                       i * 33)
    for ts in audio:
        w.send_message(4, 8, 1, b"\xaf\x01" + bytes(200), ts)
    return bytes(w.transport.data)


def _feed(player: Player, data: bytes, rng: random.Random | None) -> None:
    """Hand ``data`` to the player in pieces of random size (or whole), as a socket would."""
    player._handshaking = False
    player.transport = _Sink()
    i = 0
    while i < len(data):
        buf = player.get_buffer(-1)
        n = min(len(buf), len(data) - i, rng.randint(1, 700) if rng else len(data))
        buf[:n] = data[i:i + n]
        player.buffer_updated(n)
        i += n
    assert player.error is None, player.error


def _play(frames, chunk_size=4096, rng=None, audio=(), expect_pub=0) -> Player:
    async def go():
        p = Player(expect_pub)
        _feed(p, _server_bytes(frames, chunk_size, audio), rng)
        return p
    return asyncio.run(go())


def test_stamp_roundtrip():
    head = video_tag_head(True, 7, 2**40 + 5, 123456789)
    assert len(head) == STAMP_PREFIX
    assert read_stamp(head) == (7, 2**40 + 5, 123456789)
    assert b"\x00\x00" not in head[9:]  # no emulation prevention needed inside the NAL
    assert read_stamp(b"\x17\x00" + bytes(60)) is None


@pytest.mark.parametrize("chunk_size", [128, 4096])
@pytest.mark.parametrize("seed", [None, 1, 2, 3])
def test_in_order_stream_is_exact(chunk_size, seed):
    frames = [(0, s, s % 30 == 0) for s in range(100)]
    p = _play(frames, chunk_size, random.Random(seed) if seed else None, audio=[0, 21, 43, 64])
    assert (p.frames, p.missing, p.gaps, p.dups, p.foreign) == (100, 0, 0, 0, 0)
    assert p.exact
    assert p.media_bytes == 40 + 5 + 100 * (STAMP_PREFIX + 300) + 4 * 202
    assert (p.audio_frames, p.audio_gaps, p.audio_back) == (4, 0, 0)


def test_frames_before_first_keyframe_are_not_counted():
    frames = [(0, s, s == 5) for s in range(3, 10)]
    p = _play(frames)
    assert (p.before_key, p.frames, p.exact) == (2, 5, True)


@pytest.mark.parametrize("seed", [None, 9])
def test_missing_duplicated_reordered_frames_are_caught(seed):
    seqs = [0, 1, 2, 4, 4, 3, 5, 9]
    p = _play([(0, s, s == 0) for s in seqs], 128, random.Random(seed) if seed else None)
    assert p.frames == 8
    assert p.missing == 1 + 3  # 3 skipped, then 6..8 skipped
    assert p.gaps == 2
    assert p.dups == 2  # the second 4, and 3 after 4
    assert not p.exact


def test_single_duplicate_is_caught():
    p = _play([(0, s, s == 0) for s in (0, 1, 1, 2)])
    assert (p.dups, p.missing, p.exact) == (1, 0, False)


def test_frames_of_another_publisher_are_caught():
    p = _play([(0, 0, True), (1, 1, False), (0, 1, False)])
    assert (p.foreign, p.missing, p.exact) == (1, 0, False)


def test_audio_gap_and_step_back_are_counted():
    p = _play([(0, 0, True)], audio=[0, 21, 43, 128, 100])
    assert (p.audio_frames, p.audio_gaps, p.audio_back) == (5, 1, 1)


@pytest.mark.interop
def test_one_publisher_two_players_against_nginx_rtmp():
    from bench import nginx_rtmp
    from bench.loadgen.media import load_media
    from bench.loadgen.run import LoadSpec, run_load

    if not nginx_rtmp.available():
        pytest.skip("nginx with libnginx-mod-rtmp is not installed")
    media = load_media()
    with nginx_rtmp.NginxRtmp() as srv:
        res = asyncio.run(asyncio.wait_for(
            run_load(LoadSpec("127.0.0.1", srv.port, publishers=1, players=2, window=2.0,
                              warmup=1.2), media), 30))
    assert res.errors == []
    assert (res.publishers_ok, res.players_ok, res.players_exact) == (1, 2, 2)
    assert res.frames_checked >= 2 * 50  # 2 s at 30 fps, each player
    assert res.missing == res.dups == res.foreign == 0
    # both players got what the publisher sent (within one frame at the window edges)
    assert abs(res.delivered_bytes - 2 * res.ingest_bytes) < 0.05 * res.delivered_bytes
    assert 3.5e6 < res.ingest_bytes * 8 / res.window_s < 6.5e6  # ~5 Mbit/s
    assert len(res.join_ms) == 2 and all(0 < j < 3000 for j in res.join_ms)


def _audio_msgs_wire() -> bytes:
    """Hand-built chunks: fmt 0 with an extended timestamp, fmt 3 continuation carrying it again,
    fmt 2 (delta only), fmt 3 opening a new message (reuses the delta), a 2-byte csid (csid 70)
    and a 3-byte csid (csid 400) header, chunk size 128."""
    body = b"\xaf\x01" + bytes(198)  # 200 bytes: two chunks at chunk size 128
    ext = 0x01000000
    out = bytearray()
    # csid 4, fmt 0, ts field 0xFFFFFF, length 200, type 8, msid 1, ext ts
    out += bytes((0x04,)) + b"\xff\xff\xff" + (200).to_bytes(3, "big") + b"\x08" + (1).to_bytes(4, "little")
    out += ext.to_bytes(4, "big") + body[:128]
    out += bytes((0xC4,)) + ext.to_bytes(4, "big") + body[128:]
    # fmt 2: delta 21 (no extended timestamp any more)
    out += bytes((0x84,)) + (21).to_bytes(3, "big") + body[:128] + bytes((0xC4,)) + body[128:]
    # fmt 3 opening a new message: same length/type, delta 21 again
    out += bytes((0xC4,)) + body[:128] + bytes((0xC4,)) + body[128:]
    # 2-byte basic header (csid 70 = 64 + 6), fmt 0, ts 84
    out += bytes((0x00, 6)) + (84).to_bytes(3, "big") + (200).to_bytes(3, "big") + b"\x08" + (1).to_bytes(4, "little")
    return bytes(out)


@pytest.mark.parametrize("seed", [None, 4, 5])
def test_chunk_header_forms(seed):
    async def go():
        p = Player(0)
        p.t_first_key = 1.0  # count audio without video
        seen = []
        orig = p.on_media

        def spy(mtype, ts, prefix, length):
            seen.append((mtype, ts, length))
            orig(mtype, ts, prefix, length)
        p.on_media = spy
        wire = _audio_msgs_wire()
        body = b"\xaf\x01" + bytes(198)
        # finish the csid-70 message, then a 3-byte basic header (csid 400 = 64 + 336 = 0x50 + 1*256)
        wire += body[:128] + bytes((0xC0 | 0, 6)) + body[128:]
        wire += bytes((0x01, 0x50, 0x01)) + (5).to_bytes(3, "big") + (200).to_bytes(3, "big") + b"\x08" \
            + (1).to_bytes(4, "little") + body[:128] + bytes((0xC1, 0x50, 0x01)) + body[128:]
        _feed(p, wire, random.Random(seed) if seed else None)
        return p, seen
    p, seen = asyncio.run(go())
    ext = 0x01000000
    assert seen == [(8, ext, 200), (8, ext + 21, 200), (8, ext + 42, 200), (8, 84, 200),
                    (8, 5, 200)]
    assert p.media_bytes == 5 * 200
