"""fMP4 writer: golden boxes, and real demuxers (PyAV, ffprobe) reading what we write.

The decode tests check bit-identity: frames decoded from our fMP4 equal frames decoded directly
from the same access units with the config record as extradata.
"""

from __future__ import annotations

import io
import shutil
import struct
import subprocess

import av
import pytest

from fixtures.media import encode_audio, encode_video
from rtmpgop.codecs import make_config
from rtmpgop.media import Codec, CodecConfig, MediaKind, Track
from rtmpgop.segmenter.fmp4 import (
    Fragment, FragmentWriter, Packager, Sample, build_fragment, init_segment)
from tests.noise_mp4 import noise_mp4


def boxes(data: bytes, start: int = 0, end: int | None = None):
    """Yield (type, body offset, body end) for each box in data[start:end]."""
    end = len(data) if end is None else end
    pos = start
    while pos < end:
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        assert size >= 8 and pos + size <= end, (kind, size)
        yield kind.decode("latin-1"), pos + 8, pos + size
        pos += size


CONTAINERS = {"moov", "trak", "mdia", "minf", "dinf", "stbl", "mvex", "moof", "traf"}
SKIP_INTO = {"stsd": 8, "dref": 8, "avc1": 78, "hvc1": 78, "av01": 78, "mp4a": 28, "Opus": 28}


def tree(data: bytes, start: int = 0, end: int | None = None, prefix: str = "") -> list[str]:
    """Box paths in document order, e.g. 'moov/trak/mdia/minf/stbl/stsd/avc1/avcC'."""
    out = []
    for kind, b0, b1 in boxes(data, start, end):
        path = prefix + kind
        out.append(path)
        if kind in CONTAINERS:
            out += tree(data, b0, b1, path + "/")
        elif kind in SKIP_INTO:
            out += tree(data, b0 + SKIP_INTO[kind], b1, path + "/")
    return out


def find(data: bytes, path: str, start: int = 0, end: int | None = None) -> bytes:
    """Body of the first box at ``path`` ('moov/trak/tkhd')."""
    head, _, rest = path.partition("/")
    for kind, b0, b1 in boxes(data, start, end):
        if kind == head:
            if not rest:
                return data[b0:b1]
            return find(data, rest, b0 + SKIP_INTO.get(kind, 0), b1)
    raise KeyError(path)


# ------------------------------------------------------------------------------ golden bytes

AVCC = bytes.fromhex(
    "0164000dffe100186764000dacd94141fa10000003001000000303c0f142996001000468ef8fcbfdf8f800")
H264 = make_config(Codec.H264, AVCC)
AAC = make_config(Codec.AAC, bytes.fromhex("1190"))
TRACKS = (Track(0, H264, 90000), Track(1, AAC, 48000))


def test_init_segment_tree_and_fields():
    init = init_segment(TRACKS)
    assert tree(init) == [
        "ftyp", "moov", "moov/mvhd",
        *[f"moov/trak{s}" for s in (
            "", "/tkhd", "/mdia", "/mdia/mdhd", "/mdia/hdlr", "/mdia/minf", "/mdia/minf/vmhd",
            "/mdia/minf/dinf", "/mdia/minf/dinf/dref", "/mdia/minf/dinf/dref/url ",
            "/mdia/minf/stbl", "/mdia/minf/stbl/stsd", "/mdia/minf/stbl/stsd/avc1",
            "/mdia/minf/stbl/stsd/avc1/avcC", "/mdia/minf/stbl/stts", "/mdia/minf/stbl/stsc",
            "/mdia/minf/stbl/stsz", "/mdia/minf/stbl/stco")],
        *[f"moov/trak{s}" for s in (
            "", "/tkhd", "/mdia", "/mdia/mdhd", "/mdia/hdlr", "/mdia/minf", "/mdia/minf/smhd",
            "/mdia/minf/dinf", "/mdia/minf/dinf/dref", "/mdia/minf/dinf/dref/url ",
            "/mdia/minf/stbl", "/mdia/minf/stbl/stsd", "/mdia/minf/stbl/stsd/mp4a",
            "/mdia/minf/stbl/stsd/mp4a/esds", "/mdia/minf/stbl/stts", "/mdia/minf/stbl/stsc",
            "/mdia/minf/stbl/stsz", "/mdia/minf/stbl/stco")],
        "moov/mvex", "moov/mvex/trex", "moov/mvex/trex"]
    assert find(init, "ftyp") == b"iso6\x00\x00\x00\x00iso6cmfcisommp41mp42hlsf"
    mvhd = find(init, "moov/mvhd")
    assert len(mvhd) == 100 and mvhd[12:16] == struct.pack(">I", 1000) and mvhd[-4:] == b"\0\0\0\3"
    tkhd = find(init, "moov/trak/tkhd")
    assert tkhd[:4] == b"\x00\x00\x00\x03" and tkhd[12:16] == b"\0\0\0\1"
    assert tkhd[-8:] == struct.pack(">II", 320 << 16, 240 << 16)
    assert find(init, "moov/trak/mdia/mdhd")[12:16] == struct.pack(">I", 90000)
    assert find(init, "moov/trak/mdia/mdhd")[20:22] == b"\x55\xc4"  # 'und'
    assert find(init, "moov/trak/mdia/hdlr")[8:12] == b"vide"
    assert find(init, "moov/trak/mdia/minf/stbl/stsd/avc1/avcC") == AVCC
    avc1 = find(init, "moov/trak/mdia/minf/stbl/stsd")[8:]
    assert avc1[4:8] == b"avc1" and avc1[8 + 24:8 + 28] == struct.pack(">HH", 320, 240)
    assert find(init, "moov/mvex/trex") == bytes.fromhex("00000000" "00000001" "00000001") + bytes(12)


def test_init_segment_audio_golden():
    init = init_segment((Track(0, AAC, 48000),))
    mp4a = find(init, "moov/trak/mdia/minf/stbl/stsd")[8:]
    assert mp4a[:36].hex() == ("0000004b" "6d703461" "000000000000" "0001" "0000000000000000"
                               "0002" "0010" "0000" "0000" "bb800000")
    assert find(init, "moov/trak/mdia/minf/stbl/stsd/mp4a/esds").hex() == (
        "00000000"  # version, flags
        "03" "19" "0001" "00"  # ES_Descriptor (25 bytes), ES_ID 1
        "04" "11" "40" "15" "000000" "00000000" "00000000"  # DecoderConfigDescriptor
        "05" "02" "1190"  # DecoderSpecificInfo = AudioSpecificConfig
        "06" "01" "02")  # SLConfigDescriptor
    assert find(init, "moov/trak/mdia/mdhd")[12:16] == struct.pack(">I", 48000)
    tkhd = find(init, "moov/trak/tkhd")
    assert tkhd[34:38] == b"\x00\x01\x01\x00"  # alternate_group 1, volume 1.0


def test_init_segment_opus_dops():
    cfg = make_config(Codec.OPUS, b"")
    init = init_segment((Track(0, cfg, 48000),))
    assert find(init, "moov/trak/mdia/minf/stbl/stsd/Opus/dOps").hex() == \
        "00" "02" "0138" "0000bb80" "0000" "00"


def test_init_segment_refuses_unpackable():
    with pytest.raises(ValueError):
        init_segment((Track(0, CodecConfig(Codec.JPEG), 90000),))
    with pytest.raises(ValueError):
        init_segment(())


GOLDEN_FRAGMENT = bytes.fromhex(
    "000000c8" "6d6f6f66"  # moof, 200 bytes
    "00000010" "6d666864" "00000000" "00000001"  # mfhd seq 1
    "00000060" "74726166"  # traf (video)
    "00000010" "74666864" "00020000" "00000001"  # tfhd default-base-is-moof, track 1
    "00000014" "74666474" "01000000" "0000000000000000"  # tfdt v1 0
    "00000034" "7472756e" "01000f01" "00000002" "000000d0"  # trun v1, 2 samples, offset 208
    "00000bb8" "00000004" "02000000" "00000bb8"  # 3000, 4 bytes, sync, cts +3000
    "00000bb8" "00000002" "01010000" "fffff448"  # 3000, 2 bytes, non-sync, cts -3000
    "00000050" "74726166"  # traf (audio)
    "00000010" "74666864" "00020000" "00000002"
    "00000014" "74666474" "01000000" "0000000000000400"  # tfdt 1024
    "00000024" "7472756e" "01000f01" "00000001" "000000d6"  # offset 214
    "00000400" "00000001" "02000000" "00000000"
    "0000000f" "6d646174") + b"AAAABBC"

GOLDEN_RUNS = [(0, [Sample(0, 3000, 3000, True, b"AAAA"), Sample(3000, 0, 3000, False, b"BB")]),
               (1, [Sample(1024, 1024, 1024, False, b"C")])]


def test_fragment_golden():
    frag = build_fragment(1, GOLDEN_RUNS, (MediaKind.VIDEO, MediaKind.AUDIO))
    assert frag.to_bytes() == GOLDEN_FRAGMENT
    assert frag.size() == len(GOLDEN_FRAGMENT)
    assert frag.independent and frag.base_times == ((0, 0, 6000), (1, 1024, 1024))
    buf = bytearray(frag.size() + 3)
    assert frag.write_into(buf, 3) == len(buf) and buf[3:] == GOLDEN_FRAGMENT


def test_fragment_payloads_are_not_copied():
    payload = bytes(range(200)) * 5
    frag = build_fragment(7, [(0, [Sample(0, 0, 3000, True, payload)])])
    assert frag.buffers[1] is payload and len(frag.buffers) == 2
    view = memoryview(payload)[10:20]
    frag = build_fragment(7, [(0, [Sample(0, 0, 3000, True, view)])])
    assert frag.buffers[1] is view and frag.to_bytes().endswith(payload[10:20])


def test_fragment_without_kinds_uses_keyframe_flag():
    data = build_fragment(1, [(1, [Sample(0, 0, 1024, False, b"C")])]).to_bytes()
    assert data[-8 - 1 - 8:-8 - 1 - 4] == b"\x01\x01\x00\x00"


@pytest.mark.parametrize("runs", [
    [], [(0, [])], [(0, [Sample(-1, 0, 1, True, b"x")])],
    [(0, [Sample(0, 2**31, 1, True, b"x")])], [(0, [Sample(0, 0, -1, True, b"x")])]])
def test_fragment_misuse(runs):
    with pytest.raises(ValueError):
        build_fragment(1, runs)


def test_writer_numbers_and_packager():
    w = FragmentWriter(TRACKS)
    assert w.init_segment() == init_segment(TRACKS)
    a = w.fragment({0: GOLDEN_RUNS[0][1], 1: GOLDEN_RUNS[1][1]})
    b = w.fragment(GOLDEN_RUNS)
    assert (a.sequence_number, b.sequence_number) == (1, 2)
    assert a.to_bytes() == GOLDEN_FRAGMENT
    p = Packager()
    assert p.init(TRACKS) == init_segment(TRACKS)
    assert p.fragment(1, GOLDEN_RUNS) == GOLDEN_FRAGMENT


# ------------------------------------------------------------------- real demuxers read it

def video_samples(stream, zero_first_cts=False):
    pk = stream.packets
    shift = pk[0].pts - pk[0].dts if zero_first_cts else 0
    out = []
    for i, p in enumerate(pk):
        dur = pk[i + 1].dts - p.dts if i + 1 < len(pk) else pk[i].dts - pk[i - 1].dts
        out.append(Sample(p.dts, p.pts - shift, dur, p.keyframe, p.data))
    return out


def audio_samples(stream, frame):
    return [Sample(p.dts, p.pts, frame, True, p.data) for p in stream.packets]


def mux(tracks, per_track, chunk):
    """init + fragments of ``chunk`` samples of each track (muxed in the same fragments)."""
    w = FragmentWriter(tracks)
    out = [w.init_segment()]
    n = max(len(s) for s in per_track)
    for i in range(0, n, chunk):
        out.append(w.fragment([(pos, s[i:i + chunk]) for pos, s in enumerate(per_track)])
                   .to_bytes())
    return b"".join(out)


def direct_decode(codec: Codec, record: bytes, samples):
    # FFmpeg's native "av1" decoder needs a hardware device; libdav1d is the software one
    cc = av.CodecContext.create("libdav1d" if codec is Codec.AV1 else codec.value, "r")
    cc.extradata = record
    frames = []
    for s in samples:
        pkt = av.Packet(s.payload)
        pkt.pts, pkt.dts = s.pts, s.dts
        frames += cc.decode(pkt)
    frames += cc.decode(None)
    return [f.to_ndarray() for f in frames]


def demux_decode(data: bytes, index: int):
    with av.open(io.BytesIO(data)) as c:
        st = c.streams[index]
        pkts = [(p.dts, p.pts, bytes(p)) for p in c.demux(st) if p.size]
    with av.open(io.BytesIO(data)) as c:
        frames = [f.to_ndarray() for f in c.decode(c.streams[index])]
    return pkts, frames


def same_frames(a, b):
    assert len(a) == len(b) and len(a) > 0
    for x, y in zip(a, b):
        assert x.shape == y.shape and (x == y).all()


VIDEO = [("h264", Codec.H264, True, False), ("h264", Codec.H264, True, True),
         ("h264", Codec.H264, False, False), ("hevc", Codec.H265, True, False),
         ("av1", Codec.AV1, False, False)]


@pytest.mark.parametrize("name,codec,bframes,zero_cts", VIDEO)
def test_video_round_trip_bit_identical(name, codec, bframes, zero_cts):
    s = encode_video(name, frames=24, width=160, height=120, bframes=bframes, gop=12)
    track = Track(0, make_config(codec, s.config), 90000)
    samples = video_samples(s, zero_first_cts=zero_cts)
    if zero_cts and bframes:
        assert any(x.pts < x.dts for x in samples)  # negative composition offsets in use
    data = mux([track], [samples], chunk=5)
    pkts, frames = demux_decode(data, 0)
    assert [p[2] for p in pkts] == [x.payload for x in samples]
    # FFmpeg's mov demuxer offsets a track with negative CTS as a whole (its dts_shift); the
    # timestamps otherwise come back exactly
    assert len({p[0] - x.dts for p, x in zip(pkts, samples)}) == 1
    assert len({p[1] - x.pts for p, x in zip(pkts, samples)}) == 1
    if not zero_cts:
        assert [(p[0], p[1]) for p in pkts] == [(x.dts, x.pts) for x in samples]
    same_frames(frames, direct_decode(codec, s.config, samples))


@pytest.mark.parametrize("name,codec,frame", [("aac", Codec.AAC, 1024), ("opus", Codec.OPUS, 960)])
@pytest.mark.parametrize("channels", [1, 2])
def test_audio_round_trip_bit_identical(name, codec, frame, channels):
    s = encode_audio(name, seconds=0.3, rate=48000, channels=channels)
    cfg = make_config(codec, s.config)
    assert cfg.channels == channels
    samples = audio_samples(s, frame)
    data = mux([Track(0, cfg, 48000)], [samples], chunk=4)
    pkts, frames = demux_decode(data, 0)
    assert [p[2] for p in pkts] == [x.payload for x in samples]
    same_frames(frames, direct_decode(codec, s.config, samples))


def test_audio_and_video_in_the_same_fragments():
    v = encode_video("h264", frames=30, width=160, height=120, gop=15)
    a = encode_audio("aac", seconds=1.0)
    tracks = [Track(0, make_config(Codec.H264, v.config), 90000),
              Track(1, make_config(Codec.AAC, a.config), 48000)]
    vs, as_ = video_samples(v), audio_samples(a, 1024)
    data = mux(tracks, [vs, as_], chunk=6)
    for index, samples, codec, cfg in ((0, vs, Codec.H264, v.config), (1, as_, Codec.AAC, a.config)):
        pkts, frames = demux_decode(data, index)
        assert [p[2] for p in pkts] == [x.payload for x in samples]
        same_frames(frames, direct_decode(codec, cfg, samples))


FFPROBE = shutil.which("ffprobe")


@pytest.mark.interop
@pytest.mark.skipif(FFPROBE is None, reason="ffprobe not installed")
@pytest.mark.parametrize("vname,vcodec,aname,acodec,aframe", [
    ("h264", Codec.H264, "aac", Codec.AAC, 1024), ("hevc", Codec.H265, "opus", Codec.OPUS, 960),
    ("av1", Codec.AV1, "aac", Codec.AAC, 1024)])
def test_ffprobe_reads_frames(tmp_path, vname, vcodec, aname, acodec, aframe):
    v = encode_video(vname, frames=20, width=160, height=120, gop=10)
    a = encode_audio(aname, seconds=0.5)
    tracks = [Track(0, make_config(vcodec, v.config), 90000),
              Track(1, make_config(acodec, a.config), 48000)]
    vs, as_ = video_samples(v, zero_first_cts=True), audio_samples(a, aframe)
    path = tmp_path / "out.mp4"
    path.write_bytes(mux(tracks, [vs, as_], chunk=5))
    res = subprocess.run([FFPROBE, "-v", "error", "-show_frames", "-show_entries",
                          "frame=media_type,key_frame", "-of", "csv=p=0", str(path)],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stderr == ""
    lines = res.stdout.split()
    assert sum(1 for x in lines if x.startswith("video")) == len(vs)
    assert sum(1 for x in lines if x.startswith("audio")) == len(as_)
    assert lines[0].startswith("video,1") or lines[0].startswith("audio")


def test_fragment_type():
    assert isinstance(build_fragment(1, GOLDEN_RUNS), Fragment)


# -------------------------------------------------------------------------------- edge cases

def encode_mp4(encoder: str, pix_fmt: str, options: dict, frames: int = 8, w=96, h=64):
    """Encode noise frames through FFmpeg's MP4 muxer; returns (record, Samples in 90 kHz)."""
    buf = noise_mp4(encoder, w, h, pix_fmt, options, frames, 25, seed=2)
    buf.seek(0)
    with av.open(buf) as inp:
        st = inp.streams.video[0]
        tb = st.time_base
        record = bytes(st.codec_context.extradata)
        raw = [(p.dts, p.pts, bool(p.is_keyframe), bytes(p)) for p in inp.demux(st) if p.size]
    d0 = raw[0][0]
    ticks = [(int((d - d0) * tb * 90000), int((p - d0) * tb * 90000), k, b) for d, p, k, b in raw]
    return record, [Sample(d, p, 3600, k, b) for d, p, k, b in ticks]


@pytest.mark.parametrize("encoder,codec,pix,options,depth", [
    ("libx264", Codec.H264, "yuv420p10le", {"profile": "high10"}, 10),
    ("libx264", Codec.H264, "yuv422p", {"profile": "high422"}, 8),
    ("libx265", Codec.H265, "yuv420p10le", {"x265-params": "log-level=error"}, 10),
    ("libsvtav1", Codec.AV1, "yuv420p10le", {}, 10)])
def test_high_bit_depth_and_422_round_trip(encoder, codec, pix, options, depth):
    record, samples = encode_mp4(encoder, pix, options)
    cfg = make_config(codec, record)
    assert (cfg.width, cfg.height, cfg.bit_depth) == (96, 64, depth)
    init = init_segment((Track(0, cfg, 90000),))
    entry = {Codec.H264: "avc1/avcC", Codec.H265: "hvc1/hvcC", Codec.AV1: "av01/av1C"}[codec]
    stored = find(init, "moov/trak/mdia/minf/stbl/stsd/" + entry)
    if codec is not Codec.H265:
        assert stored == record  # verbatim, including avcC's chroma/bit-depth extension
    data = mux([Track(0, cfg, 90000)], [samples], chunk=3)
    pkts, frames = demux_decode(data, 0)
    assert [p[2] for p in pkts] == [x.payload for x in samples]
    same_frames(frames, direct_decode(codec, record, samples))


def test_hvcc_arrays_marked_complete():
    from rtmpgop.codecs import h265
    record, _ = encode_mp4("libx265", "yuv420p", {"x265-params": "log-level=error"}, frames=4)
    incomplete = bytearray(record)
    pos = 23
    for _ in range(record[22]):  # clear array_completeness, as OBS sends it
        incomplete[pos] &= 0x7F
        count = int.from_bytes(record[pos + 1:pos + 3], "big")
        pos += 3
        for _ in range(count):
            pos += 2 + int.from_bytes(record[pos:pos + 2], "big")
    cfg = make_config(Codec.H265, bytes(incomplete))
    stored = find(init_segment((Track(0, cfg, 90000),)), "moov/trak/mdia/minf/stbl/stsd/hvc1/hvcC")
    assert stored[:23] == record[:23] and len(stored) == len(record)
    parsed = h265.parse_hvcc(stored)
    assert parsed.vps and parsed.sps and parsed.pps
    pos = 23
    for _ in range(stored[22]):
        assert bool(stored[pos] & 0x80) == (stored[pos] & 0x3F in (32, 33, 34))
        count = int.from_bytes(stored[pos + 1:pos + 3], "big")
        pos += 3
        for _ in range(count):
            pos += 2 + int.from_bytes(stored[pos:pos + 2], "big")


def test_opus_surround_round_trip():
    import fractions

    import numpy as np
    cc = av.CodecContext.create("libopus", "w")
    cc.sample_rate, cc.layout, cc.format = 48000, "5.1", "s16"
    cc.time_base = fractions.Fraction(1, 48000)
    cc.flags |= av.codec.context.Flags.global_header
    cc.open()
    pkts = []
    for i in range(8):
        t = np.arange(i * 960, (i + 1) * 960)
        tone = (np.sin(t / 9.0) * 8000).astype(np.int16)
        f = av.AudioFrame.from_ndarray(np.repeat(tone[None, :], 6, axis=0).T.reshape(1, -1).copy(),
                                       format="s16", layout="5.1")
        f.sample_rate, f.pts = 48000, i * 960
        pkts += cc.encode(f)
    pkts += cc.encode(None)
    record = bytes(cc.extradata)
    cfg = make_config(Codec.OPUS, record)
    assert cfg.channels == 6
    init = init_segment((Track(0, cfg, 48000),))
    dops = find(init, "moov/trak/mdia/minf/stbl/stsd/Opus/dOps")
    assert dops[1] == 6 and dops[10] == 1 and dops[11:13] == b"\x04\x02"  # family 1, 4 streams
    d0 = pkts[0].dts
    samples = [Sample(p.dts - d0, p.pts - d0, 960, True, bytes(p)) for p in pkts if p.size]
    data = mux([Track(0, cfg, 48000)], [samples], chunk=3)
    got, frames = demux_decode(data, 0)
    assert [p[2] for p in got] == [x.payload for x in samples]
    same_frames(frames, direct_decode(Codec.OPUS, record, samples))


def test_aac_44100_mono_timescale():
    a = encode_audio("aac", seconds=0.2, rate=44100, channels=1)
    cfg = make_config(Codec.AAC, a.config)
    init = init_segment((Track(0, cfg, 44100),))
    assert find(init, "moov/trak/mdia/mdhd")[12:16] == struct.pack(">I", 44100)
    mp4a = find(init, "moov/trak/mdia/minf/stbl/stsd")[8:]
    assert mp4a[24:26] == b"\x00\x01" and mp4a[32:36] == struct.pack(">I", 44100 << 16)
    samples = audio_samples(a, 1024)
    pkts, frames = demux_decode(mux([Track(0, cfg, 44100)], [samples], chunk=4), 0)
    assert [p[0] for p in pkts] == [x.dts for x in samples]
    same_frames(frames, direct_decode(Codec.AAC, a.config, samples))


def test_many_fragments_keep_continuous_tfdt():
    v = encode_video("h264", frames=12, width=160, height=120, gop=6)
    samples = video_samples(v)
    w = FragmentWriter([Track(0, make_config(Codec.H264, v.config), 90000)])
    frags = [w.fragment([(0, samples[i:i + 4])]) for i in range(0, 12, 4)]
    for a, b in zip(frags, frags[1:]):
        (_, base_a, dur_a), = a.base_times
        (_, base_b, _), = b.base_times
        assert base_a + dur_a == base_b
    assert [f.independent for f in frags] == [True, False, False]
