"""WebP renderer pipeline: generated H.264/HEVC/AV1 (with B-frames) and still frames in, WebP out."""

import io

import numpy as np
import pytest
from PIL import Image

from fixtures.media import encode_video, pattern_frame, solid_frame
from rtmpgop.media import VIDEO_CLOCK, AccessUnit, Codec, CodecConfig, Track, TrackSet
from rtmpgop.subscribers.webp import (RenderedFrame, RenderSettings, StreamInfo, WebpRenderer,
                                      output_size)
from tests.images import solid_image

CODECS = {"h264": Codec.H264, "hevc": Codec.H265, "av1": Codec.AV1}


def trackset(stream, codec):
    cfg = CodecConfig(CODECS.get(stream.codec, codec), stream.config, stream.width, stream.height)
    return TrackSet((Track(0, cfg, VIDEO_CLOCK),), 1)


def aus(stream):
    return [AccessUnit(0, p.dts, p.pts, p.keyframe, p.data) for p in stream.packets]


def run(renderer, stream, flush=True):
    out = renderer.set_tracks(trackset(stream, None))
    for au in aus(stream):
        out += renderer.push(au)
    if flush:
        out += renderer.flush()
    return out


def decode_webp(data):
    img = Image.open(io.BytesIO(data))
    assert img.format == "WEBP"
    return np.asarray(img.convert("RGB"))


@pytest.mark.parametrize("codec", ["h264", "hevc", "av1"])
def test_every_frame_becomes_a_webp_of_the_right_size(codec):
    stream = encode_video(codec, frames=12, width=160, height=96, bframes=True)
    r = WebpRenderer(RenderSettings(change_threshold=-1, max_fps=0))
    out = run(r, stream)
    infos = [o for o in out if isinstance(o, StreamInfo)]
    frames = [o for o in out if isinstance(o, RenderedFrame)]
    assert infos == [StreamInfo(codec, 160, 96, 160, 96, 0.0)]
    assert isinstance(out[0], StreamInfo)
    assert len(frames) == 12
    assert [f.seq for f in frames] == list(range(1, 13))
    # presentation order even with B-frames, 90 kHz steps of 1/30 s
    assert [f.pts for f in frames] == sorted(f.pts for f in frames)
    assert [b - a for a, b in zip([f.pts for f in frames], [f.pts for f in frames][1:])] == [3000] * 11
    for i, f in enumerate(frames):
        assert f.webp[:4] == b"RIFF" and f.webp[8:12] == b"WEBP"
        px = decode_webp(f.webp)
        assert px.shape == (96, 160, 3)
        # the picture is the pattern: compare mean colours away from the counter bar
        ref = pattern_frame(i, 160, 96)[20:, :, :].astype(float)
        assert np.abs(px[20:].astype(float).mean(axis=(0, 1)) - ref.mean(axis=(0, 1))).max() < 12
    st = r.statistics()
    assert st.frames_in == 12 and st.frames_out == 12
    r.close()


def test_downscale_to_max_width_and_fps_cap():
    stream = encode_video("h264", frames=12, width=320, height=180, bframes=True)
    r = WebpRenderer(RenderSettings(max_width=160, max_fps=15, change_threshold=-1))
    out = run(r, stream)
    frames = [o for o in out if isinstance(o, RenderedFrame)]
    assert out[0] == StreamInfo("h264", 160, 90, 320, 180, 0.0)
    assert len(frames) == 6  # 30 fps source, 15 fps cap
    assert all((f.width, f.height) == (160, 90) for f in frames)
    assert all(decode_webp(f.webp).shape == (90, 160, 3) for f in frames)
    p0 = stream.packets[0].pts
    assert [f.pts for f in frames] == [p0 + i * 6000 for i in range(6)]
    assert r.frames_capped == 6


def test_output_size():
    assert output_size(1920, 1080, 1280) == (1280, 720)
    assert output_size(640, 480, 1280) == (640, 480)
    assert output_size(641, 481, 0) == (640, 480)
    assert output_size(1000, 333, 500) == (500, 166)


def still_source(i, w, h):
    return solid_frame((200, 40, 40), w, h) if i < 8 else solid_frame((40, 40, 200), w, h)


def test_unchanged_frames_are_skipped_with_keepalive():
    # 8 identical red frames, then 8 identical blue ones, 2 s keep-alive at 30 fps
    stream = encode_video("h264", frames=16, width=128, height=96, bframes=True,
                          frame_source=still_source)
    r = WebpRenderer(RenderSettings(keepalive_seconds=0.2))  # a keep-alive every 6 frames
    out = run(r, stream)
    frames = [o for o in out if isinstance(o, RenderedFrame)]
    colours = [tuple(int(c) for c in decode_webp(f.webp).mean(axis=(0, 1))) for f in frames]
    # first red frame, a keep-alive 6 frames later, first blue frame, a keep-alive 6 frames later
    p0 = stream.packets[0].pts
    assert [(f.pts - p0) // 3000 for f in frames] == [0, 6, 8, 14]
    assert [f.keepalive for f in frames] == [False, True, False, True]
    assert colours[0][0] > 150 and colours[2][2] > 150
    assert r.frames_unchanged == 12


def test_render_false_decodes_without_encoding_and_jump_waits_for_keyframe():
    stream = encode_video("h264", frames=20, width=96, height=64, bframes=True, gop=10)
    r = WebpRenderer(RenderSettings(change_threshold=-1))
    r.set_tracks(trackset(stream, None))
    units = aus(stream)
    out = []
    for au in units[:5]:
        out += r.push(au, render=False)
    assert out == [] and r.frames_decoded >= 1 and r.frames_encoded == 0
    r.jump()
    for au in units[5:10]:  # mid-GoP: ignored until the next keyframe
        assert r.push(au) == []
    assert units[10].keyframe
    for au in units[10:]:
        out += r.push(au)
    out += r.flush()
    frames = [o for o in out if isinstance(o, RenderedFrame)]
    p0 = stream.packets[0].pts
    assert [(f.pts - p0) // 3000 for f in frames] == list(range(10, 20))


def jpeg_bytes(rgb, w=64, h=48):
    return solid_image("JPEG", rgb, w, h, quality=90)


def webp_bytes(rgb, w=64, h=48):
    return solid_image("WEBP", rgb, w, h, quality=90)


def test_still_jpeg_and_webp_frames():
    r = WebpRenderer(RenderSettings(jpeg=True))
    r.set_tracks(TrackSet((Track(0, CodecConfig(Codec.JPEG), VIDEO_CLOCK),), 1))
    j = jpeg_bytes((10, 200, 10))
    out = r.push(AccessUnit(0, 0, 0, True, j))
    assert out[0] == StreamInfo("mjpeg", 64, 48, 64, 48, 0.0)
    f = out[1]
    assert f.jpeg == j  # passed through
    assert decode_webp(f.webp).mean(axis=(0, 1))[1] > 150
    r.set_tracks(TrackSet((Track(0, CodecConfig(Codec.WEBP), VIDEO_CLOCK),), 2))
    w = webp_bytes((10, 10, 200))
    out = r.push(AccessUnit(0, 9000, 9000, True, w))
    (f,) = [o for o in out if isinstance(o, RenderedFrame)]
    assert f.webp == w  # passed through
    assert Image.open(io.BytesIO(f.jpeg)).format == "JPEG"


def test_bad_bitstream_is_counted_not_raised():
    stream = encode_video("h264", frames=4, width=64, height=48, bframes=False)
    r = WebpRenderer()
    r.set_tracks(trackset(stream, None))
    assert r.push(AccessUnit(0, 0, 0, True, b"\x00\x00\x00\x05\x65garbage-garbage")) == []
    out = []
    for au in aus(stream):
        out += r.push(au)
    assert any(isinstance(o, RenderedFrame) for o in out)


def test_luma_signature_sees_a_small_change_on_8_and_10_bit():
    import av

    from rtmpgop.subscribers.webp import luma_signature

    base = solid_frame((60, 60, 60), 128, 96)
    moved = base.copy()
    moved[40:48, 64:72] = 255  # one 8x8 block turns white
    for fmt in ("yuv420p", "yuv420p10le"):
        a = luma_signature(av.VideoFrame.from_ndarray(base, format="rgb24").reformat(format=fmt))
        b = luma_signature(av.VideoFrame.from_ndarray(moved, format="rgb24").reformat(format=fmt))
        assert a.shape == (12, 16)
        diff = np.abs(a - b)
        assert diff[5, 8] > 100 and np.count_nonzero(diff > 3) == 1
        assert 40 < a.mean() < 80  # 8-bit scale for both formats
