"""Chunk stream reader and writer: golden headers, splits, type-3 ambiguity, limits, copy budget."""

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from rtmpgop.errors import ChunkError, LimitExceeded, ProtocolError
from rtmpgop.protocol.rtmp import chunk
from rtmpgop.protocol.rtmp.chunk import ChunkReader, basic_header, chunk_header, chunk_message
from tests.protocol.pieces import pieces

H = bytes.fromhex

# name, wire, (fmt, csid, timestamp, length, type, msid)
HEADERS = [
    ("fmt0 csid3", "03 000064 00000b 14 01000000", (0, 3, 100, 11, 20, 1)),
    ("fmt0 extended ts", "06 ffffff 000010 09 01000000 01000000", (0, 6, 0x1000000, 16, 9, 1)),
    ("fmt0 ts just below ext", "04 fffffe 000001 08 00000000", (0, 4, 0xFFFFFE, 1, 8, 0)),
    ("fmt1", "46 000021 000200 09", (1, 6, 33, 512, 9, 0)),
    ("fmt2", "84 000017", (2, 4, 23, 0, 0, 0)),
    ("fmt2 extended delta", "84 ffffff 01000000", (2, 4, 0x1000000, 0, 0, 0)),
    ("fmt3", "c6", (3, 6, 0, 0, 0, 0)),
    ("fmt3 extended", "c6 01000000", (3, 6, 0x1000000, 0, 0, 0)),
    ("2-byte csid 64", "00 00 000000 000001 08 00000000", (0, 64, 0, 1, 8, 0)),
    ("2-byte csid 319", "00 ff 000000 000001 08 00000000", (0, 319, 0, 1, 8, 0)),
    ("3-byte csid 320", "01 0001 000000 000001 08 00000000", (0, 320, 0, 1, 8, 0)),
    ("3-byte csid 65599", "c1 ffff", (3, 65599, 0, 0, 0, 0)),
]


@pytest.mark.parametrize("name,wire,f", HEADERS, ids=[h[0] for h in HEADERS])
def test_golden_header_write(name, wire, f):
    fmt, csid, ts, length, type_id, msid = f
    assert chunk_header(fmt, csid, ts, length, type_id, msid) == H(wire.replace(" ", ""))


@pytest.mark.parametrize("name,wire,f", HEADERS, ids=[h[0] for h in HEADERS])
def test_golden_header_read(name, wire, f):
    """Each header row parsed in context: fmt 1/2/3 rows follow a fmt 0 header of their csid
    (ts 1000, length 3, type 8, msid 1) and its 3-byte message."""
    fmt, csid, ts, length, type_id, msid = f
    hdr = H(wire.replace(" ", ""))
    if fmt == 0:
        data = hdr + bytes(length)
        want = (csid, msid, type_id, ts, length)
    else:
        prev_len = 3
        t0 = ts if (fmt == 3 and ts >= 0xFFFFFF) else 1000  # extended fmt 3 needs an extended fmt 0
        prefix = chunk_header(0, csid, t0, prev_len, 8, 1) + bytes(prev_len)
        new_len = length if fmt == 1 else prev_len
        data = prefix + hdr + bytes(new_len)
        delta = ts if fmt < 3 else t0  # fmt 3 new message: the fmt-0 timestamp is the delta
        want = (csid, 1, type_id if fmt == 1 else 8, t0 + delta, new_len)
    r = ChunkReader()
    r.chunk_size = 65536  # whole messages in one chunk
    r.feed(data)
    m = msgs_of(r)[-1]
    assert (m[0], m[1], m[2], m[3], len(m[4])) == want and r.available() == 0


def test_feed_large_input_copies_leftover_once():
    body = bytes(3_000_000)
    data = b"".join(bytes(b) for b in chunk_message(6, 1, 9, 0, body, 4096 * 16))
    r = ChunkReader()
    r.chunk_size = 4096 * 16
    r.feed(data)
    m = r.next_message()
    assert m.body.to_bytes() == body and r.bytes_copied == len(body)


def test_basic_header_range():
    with pytest.raises(ValueError):
        basic_header(0, 1)
    with pytest.raises(ValueError):
        basic_header(0, 65600)


def msgs_of(reader):
    out = []
    while (m := reader.next_message()) is not None:
        out.append((m.csid, m.msid, m.type_id, m.timestamp, m.body.to_bytes()))
    return out


def read_all(data, splits=()):
    r = ChunkReader()
    out = []
    for piece in pieces(data, splits):
        r.feed(piece)
        out += msgs_of(r)
    return out, r


# A hand-built stream exercising every header form (golden, read direction)
STREAM = (
    H("03 000064 000005 14 00000000") + b"hello"                  # fmt0 csid 3 ts 100
    + H("43 00000a 000003 14") + b"abc"                             # fmt1 delta 10 -> 110
    + H("83 000005") + b"xyz"                                       # fmt2 delta 5 -> 115
    + H("c3") + b"123"                                              # fmt3 new msg, delta 5 -> 120
    + H("04 000000 000100 08 01000000") + b"A" * 128 + H("c4") + b"B" * 128  # 2 chunks
    + H("00 06 00000a 000002 09 01000000") + b"zz"                  # 2-byte csid 70
)
STREAM_MSGS = [
    (3, 0, 20, 100, b"hello"), (3, 0, 20, 110, b"abc"), (3, 0, 20, 115, b"xyz"),
    (3, 0, 20, 120, b"123"), (4, 1, 8, 0, b"A" * 128 + b"B" * 128), (70, 1, 9, 10, b"zz"),
]


def test_golden_stream_whole():
    assert read_all(STREAM)[0] == STREAM_MSGS


@given(st.lists(st.integers(0, len(STREAM)), max_size=12))
def test_golden_stream_split_anywhere(cuts):
    assert read_all(STREAM, cuts)[0] == STREAM_MSGS


def test_trailing_partial_header_untouched():
    out, r = read_all(STREAM + H("03 0000"))
    assert out == STREAM_MSGS and r.available() == 3


def test_type0_then_type3_new_message_adds_type0_timestamp():
    # spec and FFmpeg: after a type-0 at T, a type-3 new message has delta T
    data = H("05 0003e8 000001 12 00000000") + b"a" + H("c5") + b"b"
    assert [m[3] for m in read_all(data)[0]] == [1000, 2000]


@pytest.mark.parametrize("repeat", [True, False], ids=["ffmpeg-repeats", "librtmp-omits"])
def test_type3_extended_timestamp_ambiguity(repeat):
    ts = 0x1234567
    ext = ts.to_bytes(4, "big")
    body = bytes(range(200))
    data = H("06 ffffff 0000c8 09 01000000") + ext + body[:128] + H("c6") + (ext if repeat else b"") + body[128:]
    out, r = read_all(data)
    assert out == [(6, 1, 9, ts, body)] and r.available() == 0


def test_type3_continuation_whose_data_differs_from_ext_is_data():
    ts = 0x1000000
    body = b"\x00" * 128 + b"\x02\x00\x00\x00tail"
    data = H("06 ffffff 000088 09 01000000") + ts.to_bytes(4, "big") + body[:128] + H("c6") + body[128:]
    assert read_all(data)[0] == [(6, 1, 9, ts, body)]


def test_writer_reader_roundtrip_with_extended_and_big_csid():
    body = bytes(range(256)) * 40
    out = b"".join(bytes(b) for b in chunk_message(400, 1, 9, 0x1ABCDEF0, body, 128))
    assert read_all(out)[0] == [(400, 1, 9, 0x1ABCDEF0, body)]


def test_writer_slices_body_without_copy():
    body = b"x" * 300
    bufs = chunk_message(6, 1, 9, 0, [b"\x17\x01\x00\x00\x00", body], 128)
    assert [len(b) for b in bufs] == [12, 5, 123, 1, 128, 1, 49]
    assert all(isinstance(b, memoryview) for b in bufs[1:] if len(b) > 1)
    assert bufs[2].obj is body


def test_set_chunk_size_applies_to_next_chunk():
    data = bytes(b"".join(bytes(x) for x in chunk_message(2, 0, 1, 0, (4096).to_bytes(4, "big"), 128)))
    body = b"v" * 5000
    data += b"".join(bytes(x) for x in chunk_message(6, 1, 9, 0, body, 4096))
    out, r = read_all(data)
    assert out[1][4] == body and r.chunk_size == 4096


def test_abort_drops_partial_message():
    data = H("06 000000 000100 09 01000000") + b"p" * 128            # half a message
    data += H("02 000000 000004 02 00000000") + (6).to_bytes(4, "big")  # Abort csid 6
    data += H("06 000000 000002 09 01000000") + b"ok"
    out, r = read_all(data)
    assert [m[4] for m in out] == [(6).to_bytes(4, "big"), b"ok"] and r.messages_dropped == 1


def test_chunk_size_above_limit_raises():
    data = H("02 000000 000004 01 00000000") + (chunk.MAX_CHUNK_SIZE + 1).to_bytes(4, "big")
    with pytest.raises(LimitExceeded) as e:
        read_all(data)
    assert e.value.limit == "MAX_CHUNK_SIZE"


def test_oversized_message_refused_before_reading_body():
    r = ChunkReader(max_message_size=1000)
    r.feed(H("06 000000 0003e9 09 01000000"))
    with pytest.raises(LimitExceeded) as e:
        r.next_message()
    assert e.value.limit == "MAX_MESSAGE_SIZE" and e.value.fields["csid"] == 6


def test_first_chunk_must_be_type0():
    with pytest.raises(ChunkError):
        read_all(H("46 000000 000001 09") + b"x")


def test_too_many_chunk_streams():
    data = b"".join(bytes(b) for csid in range(3, 3 + chunk.MAX_CHUNK_STREAMS + 1)
                    for b in chunk_message(csid, 0, 20, 0, b"\x05", 128))
    with pytest.raises(LimitExceeded):
        read_all(data)


def test_zero_length_message():
    assert read_all(H("04 000005 000000 08 01000000"))[0] == [(4, 1, 8, 5, b"")]


def test_copy_budget_one_copy_per_payload_byte():
    body = bytes(200_000)
    data = b"".join(bytes(b) for b in chunk_message(6, 1, 9, 0, body, 128))
    r = ChunkReader()
    view = memoryview(data)
    got = None
    while len(view):  # recv_into in 1400-byte segments, as a socket would
        buf = r.get_buffer(-1)
        n = min(len(buf), len(view), 1400)
        buf[:n] = view[:n]
        view = view[n:]
        r.buffer_updated(n)
        m = r.next_message()
        if m is not None:
            got = m.body.to_bytes()
    assert got == body
    assert r.bytes_copied <= len(body) + 64 * 200  # payload once + small header leftovers


def test_hostile_interleaving_cannot_pin_unbounded_blocks():
    # one huge message stays partial, each of its chunks in another receive block
    r = ChunkReader()
    r.feed(H("07 000000 9fffff 09 01000000") + b"p" * 128)
    filler = b"".join(bytes(b) for b in chunk_message(6, 1, 9, 0, b"f" * chunk.BLOCK_SIZE, 128))
    for _ in range(chunk.MAX_HELD_BLOCKS + 6):
        r.feed(filler)
        while r.next_message() is not None:
            pass
        r.feed(H("c7") + b"q" * 128)
        assert r.next_message() is None
        assert len(r._held) <= chunk.MAX_HELD_BLOCKS
    assert r.bytes_copied > 0  # the partial message was consolidated


@settings(max_examples=300)
@given(st.binary(max_size=300))
@example(H("c3"))
@example(H("02 000000 000004 01 00000000 00000000"))
@example(H("03 ffffff 000001 14 00000000"))
def test_fuzz_contract(data):
    r = ChunkReader()
    r.feed(data)
    try:
        while r.next_message() is not None:
            pass
    except ProtocolError:
        pass
