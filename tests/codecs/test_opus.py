"""Opus: OpusHead parse/build (golden + libopus), dOps, TOC-based packet durations."""

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from rtmpgop.codecs import opus
from rtmpgop.errors import CodecError

# Golden: libopus via FFmpeg's MP4 muxer/demuxer (OpusHead as extradata)
STEREO = bytes.fromhex("4f707573486561640102380180bb0000000000")
MONO = bytes.fromhex("4f707573486561640101380180bb0000000000")
SURROUND51 = bytes.fromhex("4f707573486561640106380180bb00000000010402000401020305")


def test_golden_heads_both_directions():
    h = opus.parse_opus_head(STEREO)
    assert (h.channels, h.pre_skip, h.input_rate, h.output_gain, h.mapping_family) == \
        (2, 312, 48000, 0, 0)
    assert opus.build_opus_head(2) == STEREO
    assert opus.build_opus_head(1) == MONO
    s = opus.parse_opus_head(SURROUND51)
    assert (s.channels, s.mapping_family, s.stream_count, s.coupled_count, s.mapping) == \
        (6, 1, 4, 2, bytes((0, 4, 1, 2, 3, 5)))
    assert opus.build_opus_head(6) == SURROUND51


def test_dops_golden():
    assert opus.dops_from_opus_head(STEREO).hex() == "00020138" "0000bb80" "0000" "00"
    assert opus.dops_from_opus_head(opus.parse_opus_head(SURROUND51)).hex() == \
        "00060138" "0000bb80" "0000" "01" "0402" "000401020305"


@pytest.mark.parametrize("layout,ch", [("mono", 1), ("stereo", 2), ("5.1", 6)])
def test_libopus(encode_audio, layout, ch):
    e = encode_audio("libopus", 48000, layout)
    h = opus.parse_opus_head(e.extradata)
    assert h.channels == e.channels == ch
    assert e.extradata == opus.build_opus_head(ch, pre_skip=h.pre_skip)
    assert all(opus.packet_samples(p) == 960 for _, p in e.packets)  # libopus default 20 ms


@given(st.integers(1, 8), st.integers(0, 65535), st.integers(8000, 192000))
def test_build_parse_round_trip(ch, pre_skip, rate):
    h = opus.parse_opus_head(opus.build_opus_head(ch, pre_skip, rate))
    assert (h.channels, h.pre_skip, h.input_rate) == (ch, pre_skip, rate)
    assert h.mapping_family == (0 if ch <= 2 else 1)
    assert h.stream_count + h.coupled_count == ch


def test_parse_trailing_bytes_ignored():
    assert opus.parse_opus_head(STEREO + b"junk").channels == 2


@pytest.mark.parametrize("bad", [
    b"", STEREO[:18], b"OpusTags" + STEREO[8:], STEREO[:8] + b"\x10" + STEREO[9:],
    STEREO[:9] + b"\x00" + STEREO[10:], SURROUND51[:-1], MONO[:9] + b"\x03" + MONO[10:]])
def test_parse_bad(bad):
    with pytest.raises(CodecError):
        opus.parse_opus_head(bad)


TOC = [  # (name, packet, samples at 48 kHz) RFC 6716 table 2
    ("SILK NB 10ms", b"\x00", 480), ("SILK NB 20ms", b"\x08", 960),
    ("SILK NB 40ms", b"\x10", 1920), ("SILK WB 60ms", b"\x58", 2880),
    ("hybrid SWB 10ms", b"\x60", 480), ("hybrid FB 20ms", b"\x78", 960),
    ("CELT NB 2.5ms", b"\x80", 120), ("CELT FB 2.5ms", b"\xe0", 120),
    ("CELT FB 5ms", b"\xe8", 240), ("CELT FB 10ms", b"\xf0", 480),
    ("CELT FB 20ms", b"\xf8", 960),
    ("code 1: two frames", b"\xf9\x00", 1920), ("code 2: two frames", b"\xfa\x01\x00", 1920),
    ("code 3: 3 frames", b"\xfb\x03", 2880), ("code 3: 6x20ms", b"\xfb\x06", 5760),
]


@pytest.mark.parametrize("name,pkt,samples", TOC)
def test_packet_samples_golden(name, pkt, samples):
    assert opus.packet_samples(pkt) == samples


@pytest.mark.parametrize("bad", [b"", b"\xfb", b"\xfb\x00", b"\xfb\x07", b"\x1b\x04"])
def test_packet_samples_bad(bad):
    with pytest.raises(CodecError):
        opus.packet_samples(bad)


@given(st.binary(max_size=40))
@example(b"OpusHead\x01\x03\x00\x00\x00\x00\x00\x00\x00\x00\x01")
def test_fuzz_contract(data):
    for fn in (opus.parse_opus_head, opus.packet_samples, opus.dops_from_opus_head):
        try:
            fn(data)
        except CodecError:
            pass
