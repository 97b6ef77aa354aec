"""AAC: AudioSpecificConfig parse/build (golden + FFmpeg's aac encoder), ADTS, CODECS string."""

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from rtmpgop.codecs import aac
from rtmpgop.errors import CodecError

ASC_GOLDEN = [  # (name, bytes, object_type, rate, channels, frame_length, sbr, ps)
    ("LC 48k stereo", "1190", 2, 48000, 2, 1024, False, False),
    ("LC 44.1k stereo", "1210", 2, 44100, 2, 1024, False, False),
    ("LC 44.1k mono", "1208", 2, 44100, 1, 1024, False, False),
    ("LC 48k 5.1", "11b0", 2, 48000, 6, 1024, False, False),
    ("LC 48k 960", "1194", 2, 48000, 2, 960, False, False),
    ("LC 8k mono", "1588", 2, 8000, 1, 1024, False, False),
    ("HE-AAC 24k->48k", "2b118800", 5, 24000, 2, 1024, True, False),
    ("HE-AACv2", "eb098800", 29, 24000, 1, 1024, True, True),
    ("explicit rate", "17805dc010", 2, 48000, 2, 1024, False, False),
]


@pytest.mark.parametrize("name,hexs,aot,rate,ch,fl,sbr,ps", ASC_GOLDEN)
def test_asc_golden(name, hexs, aot, rate, ch, fl, sbr, ps):
    a = aac.parse_asc(bytes.fromhex(hexs))
    assert (a.object_type, a.sample_rate, a.channels, a.frame_length, a.sbr, a.ps) == \
        (aot, rate, ch, fl, sbr, ps)
    assert aac.codec_string(a) == f"mp4a.40.{aot}"


@pytest.mark.parametrize("aot,rate,ch,hexs", [
    (2, 48000, 2, "1190"), (2, 44100, 2, "1210"), (2, 44100, 1, "1208"), (2, 48000, 6, "11b0"),
    (2, 8000, 1, "1588"), (2, 48000, 8, "11b8")])
def test_build_asc_golden(aot, rate, ch, hexs):
    assert aac.build_asc(aot, rate, ch).hex() == hexs
    a = aac.parse_asc(bytes.fromhex(hexs))
    assert (a.object_type, a.sample_rate, a.channels) == (aot, rate, ch)


@given(st.sampled_from([2, 1, 4, 42]), st.sampled_from(aac.SAMPLE_RATES + (37800, 50000)),
       st.sampled_from([1, 2, 3, 4, 5, 6, 7, 8]))
def test_build_parse_round_trip(aot, rate, ch):
    a = aac.parse_asc(aac.build_asc(aot, rate, ch))
    assert (a.object_type, a.sample_rate, a.channels) == (aot, rate, ch)


def test_build_asc_bad_channels():
    with pytest.raises(ValueError):
        aac.build_asc(2, 48000, 9)


def test_pce_channels():
    # channelConfiguration 0 + PCE with 1 front SCE, 1 front CPE, 1 back CPE, 1 LFE = 6 ch
    bits = "00010" "0011" "0000"  # AOT 2, 48 kHz, config 0
    bits += "000"  # GASpecificConfig
    bits += "0000" "01" "0011" "0010" "0000" "0001" "01" "000" "0000" "0" "0" "0"
    bits += "0" "0000" "1" "0001" "1" "0010" "0000"  # front SCE, front CPE, back CPE, LFE
    bits += "0" * (-len(bits) % 8)
    a = aac.parse_asc(int(bits, 2).to_bytes(len(bits) // 8, "big"))
    assert (a.channel_config, a.channels) == (0, 6)


@pytest.mark.parametrize("rate,layout,ch", [(48000, "stereo", 2), (44100, "mono", 1),
                                            (22050, "stereo", 2), (48000, "5.1", 6)])
def test_ffmpeg_aac(encode_audio, rate, layout, ch):
    e = encode_audio("aac", rate, layout)
    a = aac.parse_asc(e.extradata)
    assert (a.object_type, a.sample_rate, a.channels, a.frame_length) == (2, rate, ch, 1024)
    assert (e.sample_rate, e.channels, e.frame_size) == (rate, ch, 1024)


def adts(payload: bytes, profile=1, idx=3, ch=2, crc=False) -> bytes:
    n = len(payload) + (9 if crc else 7)
    h = bytes((0xFF, 0xF0 | (0 if crc else 1), (profile << 6) | (idx << 2) | (ch >> 2),
               ((ch & 3) << 6) | (n >> 11), (n >> 3) & 0xFF, ((n & 7) << 5) | 0x1F, 0xFC))
    return h + (b"\x00\x00" if crc else b"") + payload


def test_parse_adts_golden():
    frame = adts(b"\x21\x10\x05")
    asc, hl, fl = aac.parse_adts(frame)
    assert (asc.object_type, asc.sample_rate, asc.channels, hl, fl) == (2, 48000, 2, 7, 10)
    asc, hl, fl = aac.parse_adts(adts(b"\x01", idx=4, ch=1, crc=True))
    assert (asc.sample_rate, asc.channels, hl, fl) == (44100, 1, 9, 10)


def test_strip_adts_with_trailing_frames():
    data = adts(b"abc") + adts(b"de", crc=True) + adts(b"")
    assert [bytes(f) for f in aac.strip_adts(data)] == [b"abc", b"de", b""]
    with pytest.raises(CodecError):
        aac.strip_adts(data + adts(b"xyz")[:-1])


@pytest.mark.parametrize("bad", [b"", b"\xff\xf1", b"\x00" * 7, adts(b"a")[:6] + b"\xfd"])
def test_parse_adts_bad(bad):
    with pytest.raises(CodecError):
        aac.parse_adts(bad)


@given(st.binary(max_size=40))
@example(b"\x0f\xff\xff")
@example(b"\x10\x00")
def test_fuzz_contract(data):
    for fn in (aac.parse_asc, aac.parse_adts, aac.strip_adts):
        try:
            fn(data)
        except CodecError:
            pass


@given(st.lists(st.binary(max_size=30), max_size=5), st.data())
def test_strip_adts_split_anywhere(payloads, data):
    stream = b"".join(adts(p) for p in payloads)
    assert [bytes(f) for f in aac.strip_adts(stream)] == payloads
    cut = data.draw(st.integers(0, len(stream)))
    boundaries = {sum(len(p) + 7 for p in payloads[:i]) for i in range(len(payloads) + 1)}
    if cut in boundaries:
        assert len(aac.strip_adts(stream[:cut])) + len(aac.strip_adts(stream[cut:])) == len(payloads)
    else:
        with pytest.raises(CodecError):
            aac.strip_adts(stream[:cut])


def test_codec_string_from_bytes():
    assert aac.codec_string(bytes.fromhex("2b118800")) == "mp4a.40.5"
    with pytest.raises(CodecError):
        aac.codec_string(b"")


def test_asc_trailing_bytes_ignored():
    assert aac.parse_asc(bytes.fromhex("1190") + b"\x56\xe5\x00").sample_rate == 48000


def test_backward_compatible_sbr_signalling():
    # FFmpeg's aac encoder: AAC-LC 48k stereo + sync extension 2b7, AOT 5, sbrPresentFlag 0
    a = aac.parse_asc(bytes.fromhex("119056e500"))
    assert (a.object_type, a.sbr, a.sample_rate, a.channels) == (2, False, 48000, 2)
    # AAC-LC 24k + 2b7, AOT 5, sbrPresentFlag 1, extension rate 48k (idx 3), then 548 + PS 1
    bits = "00010" "0110" "0010" "000" + "01010110111" + "00101" + "1" + "0011" + \
        "10101001000" + "1"
    bits += "0" * (-len(bits) % 8)
    a = aac.parse_asc(int(bits, 2).to_bytes(len(bits) // 8, "big"))
    assert (a.object_type, a.sbr, a.ps, a.sample_rate, a.extension_sample_rate) == \
        (2, True, True, 24000, 48000)
