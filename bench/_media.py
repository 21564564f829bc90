"""A pre-encoded looping source for the fan-out benchmark: VP8 video and Opus audio.

The clip is encoded once with PyAV (libvpx CBR, libopus) from FFmpeg's synthetic sources, then
replayed in real time through ordinary aiortc senders: ``RTCRtpSender`` packetizes an ``av.Packet``
returned by a track's ``recv()`` without encoding it. Timestamps stay continuous across loops, and
a keyframe request (PLI/FIR) restarts the clip at its first frame, a keyframe, as a browser would
answer it with a fresh keyframe.
"""

from __future__ import annotations

import asyncio
import fractions
import time
from dataclasses import dataclass
from typing import Any

import av
from aiortc.mediastreams import MediaStreamTrack
from av.filter import Graph

VIDEO_CLOCK = 90000
AUDIO_CLOCK = 48000
AUDIO_FRAME = 960  # 20 ms at 48 kHz


@dataclass(frozen=True)
class Clip:
    """Encoded frames of one kind, played at ``clock / step`` frames per second."""

    frames: list[bytes]
    keyframes: list[bool]
    clock: int
    step: int
    "RTP clock ticks per frame."

    @property
    def seconds(self) -> float:
        return len(self.frames) * self.step / self.clock

    @property
    def bitrate(self) -> float:
        return sum(len(f) for f in self.frames) * 8 / self.seconds


def _vp8_is_keyframe(frame: bytes) -> bool:
    return bool(frame) and not frame[0] & 0x01  # RFC 6386 9.1: P bit 0 = key frame


def encode_video(width: int, height: int, fps: int, seconds: float, bitrate: int, gop_seconds: float) -> Clip:
    """VP8 of FFmpeg's ``testsrc2`` (moving shapes, counters), constant bitrate, periodic keyframes."""
    graph = Graph()
    src = graph.add("testsrc2", f"size={width}x{height}:rate={fps}")
    fmt = graph.add("format", "yuv420p")
    sink = graph.add("buffersink")
    src.link_to(fmt)
    fmt.link_to(sink)
    graph.configure()

    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height = width, height
    codec.pix_fmt = "yuv420p"
    codec.time_base = fractions.Fraction(1, fps)
    codec.framerate = fractions.Fraction(fps, 1)
    codec.bit_rate = bitrate
    codec.gop_size = max(1, round(gop_seconds * fps))
    codec.qmin, codec.qmax = 2, 56
    rate = str(bitrate)  # minrate = maxrate = bit_rate selects CBR in FFmpeg's libvpx wrapper
    codec.options = {
        "deadline": "realtime",
        "cpu-used": "8",
        "lag-in-frames": "0",
        "bufsize": rate,
        "minrate": rate,
        "maxrate": rate,
        "undershoot-pct": "100",
        "overshoot-pct": "15",
    }
    frames: list[bytes] = []
    for i in range(round(seconds * fps)):
        frame = sink.pull()
        assert isinstance(frame, av.VideoFrame)
        frame.pts, frame.time_base = i, codec.time_base
        frame.pict_type = av.video.frame.PictureType.NONE  # testsrc2 marks every frame I: let the GOP decide
        frames += [bytes(p) for p in codec.encode(frame)]
    frames += [bytes(p) for p in codec.encode(None)]
    return Clip(frames, [_vp8_is_keyframe(f) for f in frames], VIDEO_CLOCK, VIDEO_CLOCK // fps)


def encode_audio(seconds: float, bitrate: int = 48000) -> Clip:
    """Opus, stereo 48 kHz, 20 ms frames, of a 440 Hz tone."""
    graph = Graph()
    src = graph.add("sine", f"frequency=440:sample_rate={AUDIO_CLOCK}:samples_per_frame={AUDIO_FRAME}")
    fmt = graph.add("aformat", "sample_fmts=s16:channel_layouts=stereo")
    sink = graph.add("abuffersink")
    src.link_to(fmt)
    fmt.link_to(sink)
    graph.configure()

    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate, codec.layout, codec.format = AUDIO_CLOCK, "stereo", "s16"
    codec.bit_rate = bitrate
    codec.time_base = fractions.Fraction(1, AUDIO_CLOCK)
    frames: list[bytes] = []
    for i in range(round(seconds * AUDIO_CLOCK / AUDIO_FRAME)):
        frame = sink.pull()
        assert isinstance(frame, av.AudioFrame)
        frame.pts, frame.time_base = i * AUDIO_FRAME, codec.time_base
        frames += [bytes(p) for p in codec.encode(frame)]
    return Clip(frames, [True] * len(frames), AUDIO_CLOCK, AUDIO_FRAME)


class ClipTrack(MediaStreamTrack):
    """Plays a :class:`Clip` in a loop in real time, as ``av.Packet``s for aiortc to packetize."""

    def __init__(self, kind: str, clip: Clip) -> None:
        super().__init__()
        self.kind = kind
        self._clip = clip
        self._time_base = fractions.Fraction(1, clip.clock)
        self._index = 0  # position in the clip
        self._count = 0  # frames sent, for the timestamps
        self._start: float | None = None
        self.keyframe_requests = 0
        self.restarts = 0

    def request_keyframe(self) -> None:
        """Jump back to the clip's first frame, a keyframe (what a PLI or FIR asks for)."""
        self.keyframe_requests += 1
        if self._index != 0:
            self._index = 0
            self.restarts += 1

    async def recv(self) -> av.Packet[Any]:
        clip = self._clip
        if self._start is None:
            self._start = time.monotonic()
        else:
            delay = self._start + self._count * clip.step / clip.clock - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        packet = av.Packet(clip.frames[self._index])
        packet.pts = self._count * clip.step
        packet.time_base = self._time_base
        self._index = (self._index + 1) % len(clip.frames)
        self._count += 1
        return packet
