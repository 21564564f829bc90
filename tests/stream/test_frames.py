"""Frames through the core: a WebRTC publisher's stream reaches a frame consumer as whole access
units that PyAV decodes, with presentation times aligned by sender reports; a frame publisher's
H.264 is packetized once and plays to a real WebRTC (aiortc) player."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Mapping

import av

from rtcdn.rtp import RtpSink, TrackInfo
from rtcdn.rtp.frame import Frame, annexb
from rtcdn.rtp.packetize import h264_fmtp
from rtcdn.server import Server
from rtcdn.stream import EndReason, FrameSink
from rtp.rtp_media import x264_access_units
from wcs_client import WcsClient, count_frames


class FramePlayer:
    """A frame consumer of both tracks (what RTMP out or a recorder will be)."""

    def __init__(self) -> None:
        self.frames: dict[str, list[Frame]] = {"audio": [], "video": []}
        self.ended: list[EndReason] = []

    def sinks(self) -> Mapping[str, RtpSink]:
        return {}

    def frame_sinks(self) -> Mapping[str, FrameSink]:
        return {kind: frames.append for kind, frames in self.frames.items()}

    def on_stream_end(self, reason: EndReason) -> None:
        self.ended.append(reason)

    def on_stream_event(self, event: dict[str, object]) -> None:
        pass


async def test_a_webrtc_stream_reaches_a_frame_consumer_as_decodable_frames(
    server: Server, ws_url: str
) -> None:
    async with WcsClient(ws_url) as pub:
        await pub.publish("cam")  # aiortc: VP8 + Opus
        stream = server.streams.get_live("cam")
        assert all(fan.depacketizer is None for fan in stream.tracks.values())  # none until asked
        player = FramePlayer()
        stream.add_player(player)
        await asyncio.sleep(3.0)
        video, audio = player.frames["video"], player.frames["audio"]
        assert video and video[0].keyframe and video[0].codec == "vp8"
        decoder = av.CodecContext.create("vp8", "r")
        pictures = [p for f in video for p in decoder.decode(av.Packet(f.payload[0]))]
        assert len(pictures) == len(video) > 30
        opus = av.CodecContext.create("opus", "r")
        samples = sum(s.samples for f in audio for s in opus.decode(av.Packet(f.payload[0])))
        assert samples > 48000 * 2  # > 2 s of sound
        assert all(b.pts > a.pts - 0.02 for a, b in itertools.pairwise(video))  # SR re-anchoring jitters
        # pts follow RTP time (a new sender report may re-anchor them by the sender's clock jitter)
        assert all(
            abs((b.pts - a.pts) - (b.rtp_time - a.rtp_time) / 90000) < 0.05
            for a, b in itertools.pairwise(video)
        )
        # sender reports put both tracks on the publisher's clock: the last frames are close in time
        assert abs(video[-1].pts - audio[-1].pts) < 0.3, (video[-1].pts, audio[-1].pts)
        stream.remove_player(player)
        assert all(fan.depacketizer is None for fan in stream.tracks.values())  # freed with the last one


class FramePublisher:
    def __init__(self) -> None:
        self.keyframes = 0

    def request_keyframe(self) -> None:
        self.keyframes += 1

    def on_stream_end(self, reason: EndReason) -> None:
        pass


async def test_a_frame_publisher_plays_to_a_webrtc_player(server: Server, ws_url: str) -> None:
    units = x264_access_units(90, keyframes=(0, 30, 60))
    sps = next(nal for nal in units[0][0] if nal[0] & 0x1F == 7)
    track = TrackInfo("video", "video/H264", 90000, 102, parameters=h264_fmtp(sps))
    publisher = FramePublisher()
    stream = server.streams.create("encoder", publisher)
    stream.set_tracks([track], packetize=True)
    stream.go_live()

    async def feed() -> None:
        for i, (nals, key) in enumerate(units * 3):
            stream.forward_frame(Frame("video", "h264", tuple(nals), i * 3000, 90000, key, i / 30))
            await asyncio.sleep(1 / 30)

    feeder = asyncio.ensure_future(feed())
    try:
        async with WcsClient(ws_url) as viewer:
            _, pc, status = await viewer.play("encoder", kinds=("video",))
            assert status is not None and status["status"] == "PLAYING" and status["videoCodec"] == "H264"
            video = next(r.track for r in pc.getReceivers() if r.track.kind == "video")
            assert await count_frames(video, 3.0) > 30
    finally:
        feeder.cancel()
        stream.close(EndReason.PUBLISHER_STOP)
    assert (
        annexb(Frame("video", "h264", (b"\x67", b"\x68"), 0, 90000, True, 0.0)) == b"\0\0\0\1\x67\0\0\0\1\x68"
    )
