"""RtmpEgress: a Stream played to an RTMP peer (a player like ffmpeg/VLC, or a republishing target).

A frame consumer of the stream (:meth:`frame_sinks`): H.264 access units become AVCC video tags
(an AVC sequence header first, and again whenever the SPS/PPS change); Opus is transcoded to AAC
(the one transcode, on the transcoder's worker thread) unless the peer takes Enhanced RTMP Opus;
VP8/VP9 go out as Enhanced RTMP only to a peer that announced ``vp08``/``vp09`` (another rtcdn),
and are refused otherwise (:func:`check_playable`). Timestamps are milliseconds from the first
frame sent, taken from the frames' presentation times, so audio and video stay in sync.

Lifecycle: built by the RTMP front end (play) or a push (republish) once the stream is live,
attached with ``stream.add_player``, ended once by :meth:`end` (peer gone, stream gone,
terminate); :meth:`close` then stops the transcoder's thread.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, Protocol

from ..rtp import RtpSink
from ..rtp.frame import Frame
from ..stream import EndReason, FrameSink, MediaRecord, MediaState, NoCommonCodecs, Stream
from ..transcode.audio import AudioTranscoder
from .codecs import AvcConfig, OpusHead, join_avcc
from .flv import AudioPacketType, AudioTag, FrameType, PacketType, VideoTag, build_audio, build_video

if TYPE_CHECKING:
    from ..transcode.video import VideoTranscoder

logger = logging.getLogger(__name__)

_FOURCC = {"vp8": "vp08", "vp9": "vp09", "h264": "avc1"}
KEYFRAME_INTERVAL = 2.0
"""Seconds between the keyframes an RTMP peer gets: its own players (and an rtcdn edge's) can only
start on one, and RTMP has no way to ask for one, so the egress asks the stream's publisher."""


class RtmpOutput(Protocol):
    """Where tags go: the server's play output or a republishing client. Sends never block."""

    def send_video(self, timestamp_ms: int, body: bytes) -> object: ...

    def send_audio(self, timestamp_ms: int, body: bytes) -> object: ...

    def send_metadata(self, meta: Mapping[str, object]) -> object: ...


def check_playable(stream: Stream, fourccs: Collection[str], transcode_video: bool = False) -> bool:
    """Can the peer take the stream's video? False: as it is; True: only transcoded to H.264
    (``transcode_video``); :class:`NoCommonCodecs` when it cannot take it at all."""
    video = stream.track_infos().get("video")
    if video is None:
        return False
    codec = video.codec_name.lower()
    if codec == "h264":
        return False
    fourcc = _FOURCC.get(codec)
    if fourcc is not None and fourcc in fourccs:
        return False
    if transcode_video and codec in ("vp8", "vp9"):
        return True
    raise NoCommonCodecs(
        f"{video.mime_type} cannot be sent over RTMP to this peer (it announced no Enhanced RTMP "
        f"{fourcc or codec}); publish H.264 for RTMP players, or set rtmp_transcode_video=true"
    )


class RtmpEgress:
    """A ``Player`` of frames writing FLV tags to an :class:`RtmpOutput`; a ``MediaSession``."""

    def __init__(
        self,
        stream: Stream,
        output: RtmpOutput,
        fourccs: Collection[str],
        remote: str,
        protocol: str = "rtmp",
        on_end: Callable[[RtmpEgress, EndReason], None] | None = None,
        transcode_video: bool = False,
    ) -> None:
        transcode = check_playable(stream, fourccs, transcode_video)
        self.id = uuid.uuid4().hex
        self.stream = stream
        self.name = stream.name
        self.output = output
        self.remote = remote
        self.protocol = protocol
        self.created = time.time()
        self.state = MediaState.PLAYING
        self.info = ""
        self.on_end = on_end
        self.tags = 0
        tracks = stream.track_infos()
        self._opus_passthrough = "Opus" in fourccs
        self._transcoder: AudioTranscoder | None = None
        self._video_transcoder: VideoTranscoder | None = None
        self._sinks: dict[str, FrameSink] = {}
        if "video" in tracks:
            self._sinks["video"] = self._on_video
            if transcode:
                from ..transcode.video import VideoTranscoder  # only when a VP8/VP9 stream needs it

                self._video_transcoder = VideoTranscoder(tracks["video"].codec_name.lower(), "h264")
        audio = tracks.get("audio")
        if audio is not None and audio.codec_name.lower() == "opus":
            if not self._opus_passthrough:
                self._transcoder = AudioTranscoder("opus", "aac", sample_rate=48000, channels=2)
            self._sinks["audio"] = self._on_audio
        elif audio is not None and audio.codec_name.lower() in ("pcma", "pcmu"):
            self._sinks["audio"] = self._on_audio
        self._base: float | None = None
        self._avc: tuple[bytes, bytes] | None = None
        self._audio_header_sent = False
        self._keyframe_timer: asyncio.TimerHandle | None = None
        output.send_metadata(self._metadata(tracks))
        if "video" in tracks:
            self._schedule_keyframe()

    def _schedule_keyframe(self) -> None:
        loop = asyncio.get_running_loop()
        self._keyframe_timer = loop.call_later(KEYFRAME_INTERVAL, self._ask_keyframe)

    def _ask_keyframe(self) -> None:
        if self.state is MediaState.PLAYING:
            self.stream.request_keyframe()
            self._schedule_keyframe()

    # --- Player -------------------------------------------------------------------------------
    def sinks(self) -> Mapping[str, RtpSink]:
        return {}

    def frame_sinks(self) -> Mapping[str, FrameSink]:
        return self._sinks

    def on_stream_end(self, reason: EndReason) -> None:
        self.end(MediaState.ENDED, reason)

    def on_stream_event(self, event: dict[str, object]) -> None:
        pass

    # --- MediaSession ---------------------------------------------------------------------------
    def describe(self) -> MediaRecord:
        return MediaRecord(
            id=self.id,
            name=self.name,
            published=False,
            protocol=self.protocol,
            state=self.state,
            session=f"rtmp:{self.remote}",
            app="rtmp",
            created=self.created,
            info=self.info,
            transport="RTMP",
        )

    def terminate(self, reason: EndReason) -> None:
        self.end(MediaState.ENDED, reason)

    def end(self, state: MediaState, reason: EndReason, info: str = "") -> None:
        if self.state in (MediaState.ENDED, MediaState.FAILED):
            return
        self.state, self.info = state, info or reason.value
        if self._keyframe_timer is not None:
            self._keyframe_timer.cancel()
        self.stream.leave(self)
        if self.on_end is not None:
            self.on_end(self, reason)

    async def close(self) -> None:
        if self._transcoder is not None:
            await self._transcoder.close()
        if self._video_transcoder is not None:
            await self._video_transcoder.close()

    # --- frames → tags ------------------------------------------------------------------------
    def _ms(self, pts: float) -> int:
        if self._base is None:
            self._base = pts
        return max(0, round((pts - self._base) * 1000))

    def _on_video(self, frame: Frame) -> None:
        if self.state is not MediaState.PLAYING:
            return
        if self._video_transcoder is not None and frame.codec != "h264":
            self._video_transcoder.push(frame).add_done_callback(self._transcoded_video)
            return
        ts = self._ms(frame.pts)
        frame_type = FrameType.KEY if frame.keyframe else FrameType.INTER
        if frame.codec != "h264":
            fourcc = _FOURCC[frame.codec]
            if frame.keyframe and self._avc is None:
                self._avc = (b"", b"")
                start = VideoTag(fourcc, FrameType.KEY, PacketType.SEQUENCE_START, enhanced=True)
                self.output.send_video(ts, build_video(start))
            body = build_video(
                VideoTag(fourcc, frame_type, PacketType.CODED_FRAMES, 0, frame.payload[0], True)
            )
            self._send_video(ts, body)
            return
        nalus = frame.payload
        sps = next((n for n in nalus if n[0] & 0x1F == 7), None)
        pps = next((n for n in nalus if n[0] & 0x1F == 8), None)
        if sps is not None and pps is not None and (sps, pps) != self._avc:
            self._avc = (sps, pps)
            config = AvcConfig.from_parameter_sets([sps], [pps]).build()
            header = VideoTag("avc1", FrameType.KEY, PacketType.SEQUENCE_START, 0, config)
            self.output.send_video(ts, build_video(header))
        if self._avc is None:
            return  # no decoder configuration yet: wait for a keyframe that carries it
        data = join_avcc(n for n in nalus if n[0] & 0x1F not in (7, 8))
        self._send_video(ts, build_video(VideoTag("avc1", frame_type, PacketType.CODED_FRAMES, 0, data)))

    def _transcoded_video(self, future: asyncio.Future[list[Frame]]) -> None:
        if not future.cancelled() and future.exception() is None:
            for frame in future.result():
                self._on_video(frame)

    def _send_video(self, ts: int, body: bytes) -> None:
        self.tags += 1
        self.output.send_video(ts, body)

    def _on_audio(self, frame: Frame) -> None:
        if self.state is not MediaState.PLAYING or self._base is None:
            return  # audio waits for the first video frame (or stays unsent without video)
        if self._transcoder is not None:
            self._transcoder.push(frame).add_done_callback(self._transcoded_audio)
            return
        ts = self._ms(frame.pts)
        if frame.codec == "opus":
            if not self._audio_header_sent:
                self._audio_header_sent = True
                head = OpusHead(channels=2).build()
                start_tag = AudioTag("Opus", AudioPacketType.SEQUENCE_START, head, enhanced=True)
                self.output.send_audio(ts, build_audio(start_tag))
            self.output.send_audio(
                ts,
                build_audio(AudioTag("Opus", AudioPacketType.CODED_FRAMES, frame.payload[0], enhanced=True)),
            )
        else:
            tag = AudioTag(frame.codec, AudioPacketType.CODED_FRAMES, frame.payload[0], 8000, 1)
            self.output.send_audio(ts, build_audio(tag))

    def _transcoded_audio(self, future: asyncio.Future[list[Frame]]) -> None:
        if self.state is not MediaState.PLAYING or self._transcoder is None:
            return
        if future.cancelled() or future.exception() is not None:
            return
        for frame in future.result():
            ts = self._ms(frame.pts)
            if not self._audio_header_sent:
                self._audio_header_sent = True
                config = self._transcoder.extradata
                self.output.send_audio(
                    ts, build_audio(AudioTag("mp4a", AudioPacketType.SEQUENCE_START, config))
                )
            self.output.send_audio(
                ts, build_audio(AudioTag("mp4a", AudioPacketType.CODED_FRAMES, frame.payload[0]))
            )
            self.tags += 1

    def _metadata(self, tracks: Mapping[str, object]) -> dict[str, object]:
        meta: dict[str, object] = {"encoder": "rtcdn"}
        if "video" in tracks:
            meta["videocodecid"] = 7.0
        if "audio" in tracks:
            meta["audiocodecid"] = 10.0 if self._transcoder is not None else 9.0
        return meta
