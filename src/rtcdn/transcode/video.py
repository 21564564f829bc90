"""VP8 / VP9 → H.264 for one stream, decoded and encoded with PyAV on a worker thread (opt-in).

RTMP players (ffmpeg, VLC, OBS) take H.264 only, so a WebRTC publisher's VP8 or VP9 reaches them
only through a :class:`VideoTranscoder`, one per publisher track that has such players, living as
long as the track. It is costly (``bench/transcode.py``, VP8 at 30 fps: ~6 % of a core per 480p
stream, ~14 % per 720p stream, ~40 ms for the first frame, which opens the encoder), which is why it
is off unless the server's setting asks for it.
:meth:`~VideoTranscoder.convert` is the synchronous core (FFmpeg's ``vp8`` / ``vp9`` decoder →
``libx264``); :meth:`~VideoTranscoder.push` runs it on the transcoder's own single worker thread, so
frames are converted in the order pushed and the event loop never waits on a codec (PyAV releases
the GIL inside them). :meth:`~VideoTranscoder.close` ends the thread.

Output: one H.264 access unit per decoded input frame, stamped with the input's ``rtp_time``,
``clock_rate`` and ``pts``; the payload is its NAL units without start codes. The encoder is
``libx264`` with ``tune=zerolatency`` (no lookahead, no frame threads: an access unit comes out for
each picture that goes in, in the same call) and ``profile=baseline``, which x264 writes as
Constrained Baseline (``profile_idc`` 66, ``constraint_set0/1``): no B-frames, so decode order is
presentation order, and every H.264 decoder takes it (Chromium, ffmpeg, VLC, hardware). IDRs carry
SPS and PPS in-band (``repeat-headers``: a player that joins at any IDR, or an RTMP sender that
builds its sequence header from them, needs nothing else). There is an IDR on the first picture,
after a resolution change (the encoder is reopened at the new size), after a decoder reset, and
then every ``gop_seconds`` of input time (x264's own keyframe placement and scene cuts are off, so
the GOP is predictable for players joining and for the RTMP GOP cache).

Rate control: ABR with a VBV as large as one second of the rate (maxrate = bufsize = bit rate):
near-constant bit rate, as OBS sends to RTMP, so the bandwidth towards players is known in
advance (CRF with a maxrate would save bits on still pictures, at the price of a rate that follows
the content). The default rate is :func:`default_bit_rate`: 2 Mbit/s at 1280x720, scaled by
the pixel count, at least 150 kbit/s.

Input: frames as :class:`~rtcdn.rtp.depacketize.Depacketizer` emits them (one complete VP8 frame or
VP9 superframe each, ``keyframe`` set on key frames). Inter frames before the first keyframe are
skipped (:attr:`~VideoTranscoder.skipped_frames`). A frame the decoder rejects is counted in
:attr:`~VideoTranscoder.errors` and skipped, and the decoder restarts: its references may be gone,
so inter frames are skipped up to the next keyframe and :attr:`~VideoTranscoder.needs_keyframe`
says so (the caller sends a PLI). Decoded pictures other than 8-bit 4:2:0 (VP9 profiles 1-3) are
converted to it; an odd width or height is scaled to the even size below (x264 needs even sizes).
Both codecs run single-threaded, on the worker thread only: one stream costs at most one core, and
:attr:`~VideoTranscoder.seconds_busy` (thread CPU time) is the whole cost.
"""

from __future__ import annotations

import math
import time
from fractions import Fraction
from typing import Literal

import av
from av.packet import Packet
from av.video.codeccontext import VideoCodecContext
from av.video.frame import PictureType, VideoFrame

from ..rtp.frame import Frame, split_annexb
from .worker import Worker, usable

PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
"x264's speed presets, fastest first."
REFERENCE_BIT_RATE = 2_000_000
"The default bit rate at 1280x720 (:func:`default_bit_rate`)."
MIN_BIT_RATE = 150_000
TIME_BASE = Fraction(1, 90000)
"The encoder's time base (its pictures' timestamps are only used by x264's rate control)."
NOMINAL_RATE = 30
"Frames per second assumed for an input pts step that is unusable (not positive, or over a second)."

_DECODERS = {"vp8": "vp8", "vp9": "vp9"}
"FFmpeg's own decoders: faster than libvpx, and the same ones the research measured."
_NAL_IDR = 5


def default_bit_rate(width: int, height: int) -> int:
    """2 Mbit/s at 1280x720, proportional to the pixel count, at least 150 kbit/s (bit/s)."""
    return max(MIN_BIT_RATE, 1000 * round(REFERENCE_BIT_RATE * width * height / (1280 * 720) / 1000))


def _context(name: str, mode: Literal["r", "w"]) -> VideoCodecContext:
    context = VideoCodecContext.create(name, mode)
    if not isinstance(context, VideoCodecContext):
        raise TypeError(f"{name} is no video codec")
    context.thread_count = 1  # the worker thread is the only one: one core per stream at most
    return context


class VideoTranscoder(Worker):
    """Converts one stream's video frames from ``source`` (``vp8`` / ``vp9``) to ``target`` (``h264``).

    ``bit_rate`` (bit/s) fixes the output's rate; ``None`` follows the picture size
    (:func:`default_bit_rate`). ``gop_seconds``: input time from one IDR to the next. ``preset``: one
    of x264's :data:`PRESETS`. Raises ValueError on a bad argument, or when PyAV has no libx264.

    The decoder opens in the constructor, the encoder at the first decoded picture (its size is the
    input's, known only then). Counters (read them from any thread): :attr:`frames_in`,
    :attr:`frames_out`, :attr:`skipped_frames` (inter frames while waiting for a keyframe),
    :attr:`errors` (input frames skipped: wrong codec, empty, undecodable, and codec failures) and
    :attr:`seconds_busy` (thread CPU time spent in :meth:`convert`); :attr:`width` and
    :attr:`height` are the output's (0 before the first picture).

    Lifecycle: construct when the track is announced and an RTMP player needs H.264; :meth:`push`
    each frame (or :meth:`convert` on a thread of the caller's); ``push(None)`` at the end of the
    stream (the next frame starts afresh, waiting for a keyframe); ``await close()`` when the track
    or its last such player goes (the worker thread starts with the first push).
    """

    def __init__(
        self,
        source: str,
        target: str = "h264",
        *,
        bit_rate: int | None = None,
        gop_seconds: float = 2.0,
        preset: str = "ultrafast",
    ) -> None:
        if source not in _DECODERS or target != "h264":
            raise ValueError(f"no transcode from {source!r} to {target!r}")
        if bit_rate is not None and bit_rate <= 0:
            raise ValueError("the bit rate must be positive")
        if not (math.isfinite(gop_seconds) and gop_seconds > 0):
            raise ValueError("gop_seconds must be positive")
        if preset not in PRESETS:
            raise ValueError(f"unknown x264 preset {preset!r}")
        try:
            av.Codec("libx264", "w")
        except av.FFmpegError as error:
            raise ValueError("this PyAV has no libx264 encoder") from error
        self.source, self.target = source, target
        self.bit_rate, self.gop_seconds, self.preset = bit_rate, gop_seconds, preset
        self.frames_in = self.frames_out = self.skipped_frames = self.errors = 0
        self.seconds_busy = 0.0
        self.width = self.height = 0
        self.needs_keyframe = True
        "Inter frames are being skipped until the next keyframe (at the start, after a decoder reset)."
        super().__init__(f"transcode-{source}-{target}")
        self._decoder = _context(_DECODERS[source], "r")
        self._encoder: VideoCodecContext | None = None
        self._force_idr = True
        self._ticks = 0  # the encoder's timeline (TIME_BASE), strictly increasing
        self._last_pts: float | None = None
        self._idr_ticks = 0
        self._gop_ticks = round(gop_seconds / TIME_BASE) - 45  # half a millisecond of slack

    # --- the synchronous core ---------------------------------------------------------------------

    def convert(self, frame: Frame | None) -> list[Frame]:
        """The H.264 frames of ``frame`` (one, or none while skipping); ``None`` ends the stream.

        After the end the transcoder starts afresh (new decoder and encoder, waiting for a keyframe);
        nothing is buffered, so nothing comes out of it. Broken frames are counted in :attr:`errors`
        and skipped; nothing raises. Call it from one thread at a time (:meth:`push` does so from the
        worker).
        """
        start = time.thread_time()
        try:
            if frame is None:
                self._reset(encoder=True)
                return []
            self.frames_in += 1
            return self._convert(frame)
        except (av.FFmpegError, ValueError):  # the encoder or the pixel conversion gave up
            self.errors += 1
            self._encoder = None  # reopened, with an IDR, at the next picture
            return []
        finally:
            self.seconds_busy += time.thread_time() - start

    def _convert(self, frame: Frame) -> list[Frame]:
        if not usable(frame, "video", self.source):
            self.errors += 1
            return []
        if self.needs_keyframe and not frame.keyframe:
            self.skipped_frames += 1
            return []
        try:
            pictures = self._decoder.decode(Packet(frame.payload[0]))
        except av.FFmpegError:
            self.errors += 1
            self._reset(encoder=False)
            return []
        self.needs_keyframe = False
        out = [self._encode(picture, frame) for picture in pictures]
        return [f for f in out if f is not None]

    def _encode(self, picture: VideoFrame, frame: Frame) -> Frame | None:
        width, height = picture.width & ~1, picture.height & ~1
        if width < 2 or height < 2:
            raise ValueError(f"a {picture.width}x{picture.height} picture is too small")
        if self._encoder is None or (width, height) != (self.width, self.height):
            self._open_encoder(width, height)
        encoder = self._encoder
        assert encoder is not None
        if picture.format.name != "yuv420p" or (width, height) != (picture.width, picture.height):
            picture = picture.reformat(width=width, height=height, format="yuv420p")
        self._advance(frame.pts)
        if self._ticks - self._idr_ticks >= self._gop_ticks:
            self._force_idr = True
        # A decoded VP8/VP9 key frame is marked I, which libx264 would obey: only our choice counts.
        picture.pict_type = PictureType.I if self._force_idr else PictureType.NONE
        picture.pts, picture.time_base = self._ticks, TIME_BASE
        nals = [nal for packet in encoder.encode(picture) for nal in split_annexb(bytes(packet))]
        if not nals:
            return None
        keyframe = any(nal[0] & 0x1F == _NAL_IDR for nal in nals)
        if keyframe:
            self._force_idr, self._idr_ticks = False, self._ticks
        self.frames_out += 1
        return Frame("video", "h264", tuple(nals), frame.rtp_time, frame.clock_rate, keyframe, frame.pts)

    def _advance(self, pts: float) -> None:
        """Moves the encoder's timeline by the input's pts step (a nominal one across jumps)."""
        step = 1 / NOMINAL_RATE if self._last_pts is None else pts - self._last_pts
        if not 0 < step <= 1:  # the first frame, reordering, or a jump (an RTCP SR moved the clock)
            step = 1 / NOMINAL_RATE
        self._last_pts = pts
        self._ticks += max(1, round(step / TIME_BASE))

    def _open_encoder(self, width: int, height: int) -> None:
        encoder = _context("libx264", "w")
        encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
        encoder.time_base = TIME_BASE
        encoder.framerate = Fraction(NOMINAL_RATE)  # for x264's level and VBV set-up; timing is the pts'
        rate = str(self.bit_rate or default_bit_rate(width, height))
        encoder.options = {
            "preset": self.preset,
            "tune": "zerolatency",
            "profile": "baseline",
            "forced-idr": "1",  # an I picture we ask for is an IDR
            "b": rate,
            "maxrate": rate,
            "bufsize": rate,
            "x264-params": "repeat-headers=1:keyint=infinite:scenecut=0:bframes=0:threads=1",
        }
        encoder.open()
        self._encoder, self.width, self.height = encoder, width, height
        self._force_idr = True

    def _reset(self, *, encoder: bool) -> None:
        """A fresh decoder waiting for a keyframe (and a fresh encoder when ``encoder``); an IDR next."""
        self._decoder = _context(_DECODERS[self.source], "r")
        self.needs_keyframe = self._force_idr = True
        if encoder:
            self._encoder, self._last_pts = None, None
