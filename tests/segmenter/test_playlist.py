"""Playlist text against golden playlists (rfc8216bis 4.4, delta updates 6.2.5.1)."""

import pytest

from rtmpgop.media import VIDEO_CLOCK, Codec, CodecConfig, Track
from rtmpgop.segmenter.playlist import (
    Part, PlaylistLayout, Segment, Variant, codec_string, format_pdt, render_media,
    render_multivariant, skipped_count)

T0 = 1_790_000_000.0  # 2026-09-21T14:13:20Z


def seg(msn, start, nparts, complete=True, init=0, disc=False, part=0.2):
    s = Segment(msn, start, T0 + start, init, discontinuity=disc)
    for i in range(nparts):
        s.parts.append(Part(i, part, i == 0))
        s.duration += part
    s.complete = complete
    return s


LAYOUT = PlaylistLayout(target_duration=1, part_target=0.2, window=7)

GOLDEN_MEDIA = """#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:1
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.600,CAN-SKIP-UNTIL=6.0
#EXT-X-PART-INF:PART-TARGET=0.200
#EXT-X-MEDIA-SEQUENCE:9
#EXT-X-DISCONTINUITY-SEQUENCE:2
#EXT-X-MAP:URI="init0.mp4"
#EXT-X-PROGRAM-DATE-TIME:2026-09-21T14:13:19.000Z
#EXTINF:1.00000,
seg9.m4s
#EXT-X-PROGRAM-DATE-TIME:2026-09-21T14:13:20.000Z
#EXT-X-PART:DURATION=0.20000,URI="seg10.p0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.20000,URI="seg10.p1.m4s"
#EXT-X-PART:DURATION=0.20000,URI="seg10.p2.m4s"
#EXT-X-PART:DURATION=0.20000,URI="seg10.p3.m4s"
#EXT-X-PART:DURATION=0.20000,URI="seg10.p4.m4s"
#EXTINF:1.00000,
seg10.m4s
#EXT-X-PROGRAM-DATE-TIME:2026-09-21T14:13:21.000Z
#EXT-X-PART:DURATION=0.20000,URI="seg11.p0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.20000,URI="seg11.p1.m4s"
#EXT-X-PART:DURATION=0.20000,URI="seg11.p2.m4s"
#EXT-X-PART:DURATION=0.20000,URI="seg11.p3.m4s"
#EXT-X-PART:DURATION=0.20000,URI="seg11.p4.m4s"
#EXTINF:1.00000,
seg11.m4s
#EXT-X-PROGRAM-DATE-TIME:2026-09-21T14:13:22.000Z
#EXT-X-PART:DURATION=0.20000,URI="seg12.p0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.20000,URI="seg12.p1.m4s"
#EXT-X-PART:DURATION=0.20000,URI="seg12.p2.m4s"
#EXT-X-PART:DURATION=0.20000,URI="seg12.p3.m4s"
#EXT-X-PART:DURATION=0.20000,URI="seg12.p4.m4s"
#EXTINF:1.00000,
seg12.m4s
#EXT-X-DISCONTINUITY
#EXT-X-MAP:URI="init1.mp4"
#EXT-X-PROGRAM-DATE-TIME:2026-09-21T14:13:23.000Z
#EXT-X-PART:DURATION=0.20000,URI="seg13.p0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.20000,URI="seg13.p1.m4s"
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="seg13.p2.m4s"
"""


def window():
    # edge = 3.4 s: parts of seg10 (ending 2.4 s before it) are listed, those of seg9 are not
    return [seg(9, -1.0, 5), seg(10, 0.0, 5), seg(11, 1.0, 5), seg(12, 2.0, 5),
            seg(13, 3.0, 2, complete=False, init=1, disc=True)]


def test_media_playlist_golden():
    text = render_media(window(), LAYOUT, discontinuity_sequence=2, preload=(13, 2))
    assert text == GOLDEN_MEDIA


def test_parts_listed_only_within_three_target_durations_of_the_edge():
    segs = [seg(i, float(i), 5) for i in range(8)]
    text = render_media(segs, LAYOUT)
    # edge = 8.0; parts kept for segments ending less than 3 s before it: 5, 6, 7
    assert "seg4.p0" not in text and "seg5.p0.m4s" in text and "seg7.p4.m4s" in text
    assert text.count("#EXT-X-PART:") == 15
    assert text.count("#EXTINF:") == 8


def test_open_segment_without_parts_is_only_a_preload_hint():
    segs = [seg(0, 0.0, 5), seg(1, 1.0, 0, complete=False, disc=True)]
    text = render_media(segs, LAYOUT, preload=(1, 0))
    assert text.endswith('seg0.m4s\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI="seg1.p0.m4s"\n')
    assert "DISCONTINUITY\n" not in text  # comes with the segment's first part


def test_query_is_copied_onto_every_uri():
    text = render_media(window(), LAYOUT, preload=(13, 2), query="token=abc")
    uris = [line for line in text.splitlines() if "seg" in line or "init" in line]
    assert uris and all("?token=abc" in u for u in uris)
    assert 'URI="seg13.p2.m4s?token=abc"' in text and "\nseg9.m4s?token=abc\n" in text


def test_delta_update_skips_segments_beyond_the_skip_boundary_from_the_end():
    segs = [seg(i, float(i - 20), 5) for i in range(20, 30)] + [seg(30, 10.0, 3, complete=False)]
    # edge = 10.6; boundary 6 s: segments ending before 4.6 (20..23) are skipped
    assert skipped_count(segs, LAYOUT) == 4
    text = render_media(segs, LAYOUT, skip=True, preload=(30, 3))
    lines = text.splitlines()
    assert lines[5:8] == ["#EXT-X-MEDIA-SEQUENCE:20", "#EXT-X-DISCONTINUITY-SEQUENCE:0",
                          "#EXT-X-SKIP:SKIPPED-SEGMENTS=4"]
    assert "seg23.m4s" not in text and "seg24.m4s" in text
    assert "#EXT-X-MAP" not in text  # the skipped segments carried it; the client has it
    full = render_media(segs, LAYOUT, preload=(30, 3))
    assert full.count("#EXTINF") == text.count("#EXTINF") + 4
    # the tail after the skipped segments is identical
    assert full.split("seg23.m4s\n")[1] == text.split("SKIPPED-SEGMENTS=4\n")[1]


def test_delta_update_repeats_map_when_init_changes_after_the_skip():
    segs = [seg(i, float(i), 5) for i in range(10)]
    segs[5] = seg(5, 5.0, 5, init=1, disc=True)
    for s in segs[6:]:
        s.init = 1
    text = render_media(segs, LAYOUT, skip=True)
    assert "SKIPPED-SEGMENTS=3" in text
    assert text.count("#EXT-X-MAP") == 1 and "#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init1.mp4\"" in text


def test_no_skip_when_nothing_is_far_enough():
    segs = [seg(i, float(i), 5) for i in range(6)]
    assert skipped_count(segs, LAYOUT) == 0
    assert render_media(segs, LAYOUT, skip=True) == render_media(segs, LAYOUT)


@pytest.mark.parametrize("epoch,text", [
    (0.0, "1970-01-01T00:00:00.000Z"),
    (T0 + 0.0006, "2026-09-21T14:13:20.001Z"),  # rounds to the nearest millisecond
    (T0 + 59.9996, "2026-09-21T14:14:20.000Z"),
    (1_700_000_000.123, "2023-11-14T22:13:20.123Z"),
])
def test_program_date_time(epoch, text):
    assert format_pdt(epoch) == text


def test_layout_numbers():
    lay = PlaylistLayout(target_duration=2, part_target=0.2)
    assert lay.part_hold_back == pytest.approx(0.6)
    assert lay.can_skip_until == 12.0
    assert lay.block_timeout == 6.0
    assert lay.advance_part_limit == 15
    assert PlaylistLayout(part_target=1.0).advance_part_limit == 3


V = Track(1, CodecConfig(Codec.H264, bytes.fromhex("0164001fffe1"), 1280, 720,
                         codec_string="avc1.64001f", frame_rate=30.0), VIDEO_CLOCK)
A = Track(2, CodecConfig(Codec.AAC, b"\x12\x10", sample_rate=48000, channels=2,
                         codec_string="mp4a.40.2"), 48000)

GOLDEN_MULTIVARIANT = """#EXTM3U
#EXT-X-VERSION:9
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-STREAM-INF:BANDWIDTH=3000000,AVERAGE-BANDWIDTH=2500000,CODECS="avc1.64001f,mp4a.40.2",RESOLUTION=1280x720,FRAME-RATE=30.000
media.m3u8
"""


def test_multivariant_golden():
    text = render_multivariant([Variant("media.m3u8", (V, A), 3_000_000, 2_500_000)])
    assert text == GOLDEN_MULTIVARIANT


def test_multivariant_audio_only_and_query():
    text = render_multivariant([Variant("media.m3u8", (A,), 128_000)], query="t=1")
    assert text.splitlines()[3:] == [
        '#EXT-X-STREAM-INF:BANDWIDTH=128000,AVERAGE-BANDWIDTH=128000,CODECS="mp4a.40.2"',
        "media.m3u8?t=1"]


@pytest.mark.parametrize("config,expected", [
    (CodecConfig(Codec.H264, bytes.fromhex("01640028ffe1")), "avc1.640028"),
    (CodecConfig(Codec.H264, bytes.fromhex("0142e01fffe1")), "avc1.42e01f"),
    (CodecConfig(Codec.AAC, bytes.fromhex("1210")), "mp4a.40.2"),
    (CodecConfig(Codec.AAC, bytes.fromhex("2b92")), "mp4a.40.5"),
    (CodecConfig(Codec.OPUS, b"OpusHead"), "opus"),
    (CodecConfig(Codec.H265, b"", codec_string="hvc1.1.6.L120.90"), "hvc1.1.6.L120.90"),
])
def test_codec_string_fallbacks(config, expected):
    assert codec_string(config) == expected


@pytest.mark.parametrize("kw,key", [
    ({"target_duration": 0}, "hls_target_duration"),
    ({"target_duration": 1.5}, "hls_target_duration"),
    ({"part_target": 0.0}, "hls_part_target"),
    ({"part_target": 3.0}, "hls_part_target"),
    ({"window": 0}, "hls_window_segments"),
])
def test_layout_refuses_bad_configuration(kw, key):
    from rtmpgop.errors import ConfigError

    with pytest.raises(ConfigError) as e:
        PlaylistLayout(**kw)
    assert e.value.key == key
