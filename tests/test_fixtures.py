"""The generated test media is what the other tests assume it is."""

import struct

from fixtures.media import encode_audio, encode_video


def test_h264_stream_is_avcc_with_bframes():
    s = encode_video("h264", frames=30, bframes=True)
    assert s.config[0] == 1 and s.config[1] == 0x64  # avcC, High profile
    assert len(s.packets) == 30 and s.packets[0].keyframe and s.packets[0].dts == 0
    assert any(p.pts < q.pts for p, q in zip(s.packets[1:], s.packets[2:]) if p.pts > q.pts) or \
        any(p.pts > q.pts for p, q in zip(s.packets, s.packets[1:]))  # reordered: B-frames
    n = struct.unpack(">I", s.packets[0].data[:4])[0]
    assert n < len(s.packets[0].data)  # length-prefixed NAL units, not Annex-B


def test_audio_streams():
    a = encode_audio("aac", seconds=1.0, rate=48000)
    assert a.config[:2] == bytes([0x11, 0x90])  # AAC-LC 48 kHz stereo
    assert [p.dts for p in a.packets[:3]] == [0, 1024, 2048]
    o = encode_audio("opus", seconds=1.0)
    assert o.config.startswith(b"OpusHead") and o.packets[1].dts - o.packets[0].dts == 960
