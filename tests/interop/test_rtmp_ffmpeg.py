"""RTMP interop with Debian's ffmpeg/ffprobe 5.1: publish H.264 + AAC (B-frames), play back
frame-exact, probe, join mid-stream, refuse a second publisher, republish with a waiting player."""

from __future__ import annotations

import asyncio
import json
import subprocess

import pytest
import uvloop

from fixtures.media import make_media_file
from rtmpgop.io.rtmp_client import open_url
from rtmpgop.protocol.flv import PacketType as P
from rtmpgop.protocol.rtmp import events as E
from tests.interop.rtmp_tools import (FFMPEG, FFPROBE, channel_stat, framemd5, parse_framemd5, publish,
                                      stop, wait_until)

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """2 s of 320x240 H.264 (B-frames, 1 s GoPs) + AAC 48 kHz stereo."""
    path = tmp_path_factory.mktemp("rtmp") / "clip.mp4"
    return make_media_file(str(path), seconds=2.0, gop=30, bframes=True)


def url(server, path):
    return f"rtmp://127.0.0.1:{server.ports['rtmp']}/{path}"


def test_publish_play_every_frame_decodes_identically(server, clip):
    player = subprocess.Popen([FFMPEG, "-nostdin", "-v", "error", "-rw_timeout", "15000000",
                               "-i", url(server, "live/exact"), "-map", "0:v", "-f", "framemd5", "-"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: channel_stat(server, "live/exact", "subscribers"), what="player subscribed")
        pub = publish(url(server, "live/exact"), clip)
        assert pub.wait(15) == 0, pub.stderr.read()
        out, err = player.communicate(timeout=15)  # ends on NetStream.Play.UnpublishNotify
    finally:
        stop(player)
    got = [h for _, h in parse_framemd5(out.decode())]
    ref = [h for _, h in framemd5(["-i", clip, "-map", "0:v"])]
    assert len(ref) == 60 and got == ref, err.decode()[-500:]


def test_probe_mid_stream_join_and_second_publisher_refused(server, clip):
    pub = publish(url(server, "live/probe"), clip, loop=True)
    try:
        wait_until(lambda: (channel_stat(server, "live/probe", "frames_in") or 0) > 45, what="frames")
        # ffprobe: codecs, size, frame rate
        res = subprocess.run([FFPROBE, "-v", "error", "-show_streams", "-of", "json", url(server, "live/probe")],
                             capture_output=True, timeout=15, check=True)
        listed = json.loads(res.stdout)["streams"]
        assert sorted(s["codec_type"] for s in listed) == ["audio", "video"]  # no stray data streams
        streams = {s["codec_type"]: s for s in listed}
        v, a = streams["video"], streams["audio"]
        assert (v["codec_name"], v["width"], v["height"], v["r_frame_rate"]) == ("h264", 320, 240, "30/1")
        assert v["has_b_frames"] >= 1
        assert (a["codec_name"], int(a["sample_rate"]), a["channels"]) == ("aac", 48000, 2)
        # a player joining mid-stream starts on a keyframe and decodes without an error
        res = subprocess.run([FFPROBE, "-v", "error", "-select_streams", "v", "-read_intervals", "%+#20",
                              "-show_entries", "frame=key_frame,pict_type", "-of", "json",
                              url(server, "live/probe")], capture_output=True, timeout=15, check=True)
        frames = json.loads(res.stdout)["frames"]
        assert len(frames) >= 20 and frames[0]["key_frame"] == 1 and frames[0]["pict_type"] == "I"
        assert res.stderr == b""
        # a second publisher on the same path is refused; the first keeps going
        before = channel_stat(server, "live/probe", "frames_in")
        second = publish(url(server, "live/probe"), clip)
        assert second.wait(10) != 0
        assert pub.poll() is None
        wait_until(lambda: channel_stat(server, "live/probe", "frames_in") > before + 30, what="first continues")
        assert server.call(lambda: server.hub.publishes_refused) == 1
    finally:
        stop(pub)


def test_republish_player_stays_and_resumes(server, clip):
    target = url(server, "live/again")

    async def main():
        player = await open_url(target, "play")
        events = []

        async def read_until(pred):
            async with asyncio.timeout(15):
                while not pred():
                    events.append(await player.next_event(15))

        def count(code):
            return sum(1 for e in events if isinstance(e, E.Status) and e.code == code)

        for round_ in range(2):
            proc = await asyncio.create_subprocess_exec(
                FFMPEG, "-nostdin", "-v", "error", "-re", "-i", clip, "-t", "1", "-c", "copy", "-f", "flv",
                target, stderr=subprocess.DEVNULL)
            assert await asyncio.wait_for(proc.wait(), 15) == 0
            await read_until(lambda: count("NetStream.Play.UnpublishNotify") == round_ + 1)
        player.close()
        return events

    events = uvloop.run(main())
    codes = [e.code for e in events if isinstance(e, E.Status)]
    assert codes == ["NetStream.Play.UnpublishNotify", "NetStream.Play.PublishNotify",
                     "NetStream.Play.UnpublishNotify"]
    i = next(k for k, e in enumerate(events) if isinstance(e, E.Status) and e.code.endswith("PublishNotify")
             and "Un" not in e.code)
    after = events[i + 1:]
    assert isinstance(after[0], E.Metadata)  # then fresh sequence headers
    assert [e.tag.packet for e in after[1:3]] == [P.SEQUENCE_START, P.SEQUENCE_START]
    vids = [e for e in events if isinstance(e, E.VideoData) and e.tag.packet is P.CODED_FRAMES]
    ts = [e.timestamp for e in vids]
    assert len(vids) >= 55 and ts == sorted(ts) and len(set(ts)) == len(ts)
    first_after = next(e for e in after if isinstance(e, E.VideoData) and e.tag.packet is P.CODED_FRAMES)
    assert first_after.tag.keyframe
