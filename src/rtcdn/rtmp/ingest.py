"""RtmpIngest: an RTMP publisher (OBS, ffmpeg, an rtcdn origin) as the publisher of a Stream.

FLV tags become frames: H.264 access units pass through (AVCC NAL units, SPS/PPS from the
sequence header put in front of every IDR so WebRTC players can start there); AAC is the one
transcode, to Opus, on the transcoder's worker thread; Enhanced RTMP VP8/VP9/Opus (what an rtcdn
origin sends its edges) and G.711 pass through. The stream goes live when the sequence headers the
publisher's metadata announced have arrived (or at the first frame without them); its frames are
packetized once per track (``Stream.set_tracks(..., packetize=True)``).

Lifecycle: made by the RTMP front end on ``publish`` (the stream name is claimed then: a taken
name is refused with ``NetStream.Publish.BadName``), fed by the connection, ended once
(:meth:`on_end` from the connection, or :meth:`terminate` / the stream's end from the server).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable

from ..rtp import TrackInfo
from ..rtp.frame import Frame
from ..rtp.packetize import h264_fmtp
from ..stream import EndReason, MediaError, MediaRecord, MediaState, Stream, StreamManager
from ..transcode.audio import AudioTranscoder
from .codecs import AvcConfig, split_avcc
from .flv import AudioTag, PacketType, VideoTag

logger = logging.getLogger(__name__)

VIDEO_PT, AUDIO_PT = 102, 111
"Payload types of the stream's tracks (players get their own by rewriting)."
LIVE_WAIT = 2.0
"Seconds of media after which the stream goes live even if an announced track never started."
_VIDEO_CODECS = {"avc1": ("h264", "video/H264"), "vp08": ("vp8", "video/VP8"), "vp09": ("vp9", "video/VP9")}
_PASS_AUDIO = {
    "Opus": ("opus", "audio/opus", 48000, 2),
    "pcma": ("pcma", "audio/PCMA", 8000, 1),
    "pcmu": ("pcmu", "audio/PCMU", 8000, 1),
}


class RtmpIngest:
    """FLV tags in (the connection's ``PublishSink``), frames out to the stream (its ``Publisher``),
    described to REST/metrics (a ``MediaSession``)."""

    def __init__(
        self,
        streams: StreamManager,
        name: str,
        app: str,
        remote: str,
        close_connection: Callable[[str], None],
        on_ended: Callable[[RtmpIngest], None] | None = None,
    ) -> None:
        self.id = uuid.uuid4().hex
        self.name = name
        self.app = app
        self.remote = remote
        self.created = time.time()
        self.state = MediaState.PENDING
        self.info = ""
        self._close_connection = close_connection
        self._on_ended = on_ended
        self._streams = streams
        self.stream: Stream = streams.create(name, self)  # NameInUse: the front end refuses
        self._avc: AvcConfig | None = None
        self._video: tuple[str, str] | None = None
        self._audio: TrackInfo | None = None
        self._transcoder: AudioTranscoder | None = None
        self._expect_video = self._expect_audio = False
        self._t0: float | None = None
        self._first_media = 0.0
        self._b_frames_warned = False
        self.frames = 0
        self.dropped = 0

    # --- MediaSession ---------------------------------------------------------------------------
    def describe(self) -> MediaRecord:
        return MediaRecord(
            id=self.id,
            name=self.name,
            published=True,
            protocol="rtmp",
            state=self.state,
            session=f"rtmp:{self.remote}",
            app=self.app,
            created=self.created,
            info=self.info,
            transport="RTMP",
        )

    def terminate(self, reason: EndReason) -> None:
        self._end(reason.value)
        self._close_connection(reason.value)

    # --- Publisher ------------------------------------------------------------------------------
    def request_keyframe(self) -> None:
        """RTMP has no way to ask an encoder for a keyframe: players wait for the next one."""

    def on_stream_end(self, reason: EndReason) -> None:
        self.terminate(reason)

    # --- PublishSink ------------------------------------------------------------------------------
    def on_metadata(self, meta: dict[str, object]) -> None:
        self._expect_video = meta.get("videocodecid") not in (None, 0, 0.0, "")
        self._expect_audio = meta.get("audiocodecid") not in (None, 0, 0.0, "")

    def on_video(self, timestamp_ms: int, tag: VideoTag) -> None:
        if self.state is not MediaState.PENDING and self.state is not MediaState.PUBLISHING:
            return
        codec = _VIDEO_CODECS.get(tag.codec)
        if codec is None:
            if tag.codec:  # command frames have no codec
                self._refuse(f"video codec {tag.codec} cannot be forwarded (publish H.264)")
            return
        self._video = codec
        if tag.sequence_header:
            if codec[0] == "h264":
                try:
                    self._avc = AvcConfig.parse(tag.data)
                except ValueError as exc:
                    self._refuse(f"bad AVC sequence header: {exc}")
                    return
            self._maybe_live()
            return
        if tag.packet_type not in (PacketType.CODED_FRAMES, PacketType.CODED_FRAMES_X):
            return
        if tag.composition_time and not self._b_frames_warned:
            self._b_frames_warned = True
            logger.warning(
                "rtmp %r: B-frames (composition time %d ms): browsers cannot play them; encode with "
                "-bf 0 / OBS 'zerolatency'",
                self.name,
                tag.composition_time,
            )
        if codec[0] == "h264":
            if self._avc is None:
                return  # no SPS/PPS yet: nothing a player could decode
            try:
                nalus = [n for n in split_avcc(tag.data, self._avc.length_size) if n and n[0] & 0x1F != 9]
            except ValueError:
                self.dropped += 1
                return
            if tag.keyframe and not any(n[0] & 0x1F == 7 for n in nalus):
                nalus = [*self._avc.sps, *self._avc.pps, *nalus]
            payload = tuple(nalus)
        else:
            payload = (tag.data,)
        ts = timestamp_ms + tag.composition_time
        self._emit(
            Frame("video", codec[0], payload, (ts * 90) & 0xFFFFFFFF, 90000, tag.keyframe, self._pts(ts))
        )

    def on_audio(self, timestamp_ms: int, tag: AudioTag) -> None:
        if self.state is not MediaState.PENDING and self.state is not MediaState.PUBLISHING:
            return
        if tag.codec == "mp4a":
            if tag.sequence_header:
                self._start_aac(tag.data)
                return
            if self._transcoder is None or not tag.data:
                return
            rate = self._transcoder.source_config.sample_rate if self._transcoder.source_config else 48000
            future = self._transcoder.push(self._audio_frame("aac", tag.data, timestamp_ms, rate))
            future.add_done_callback(self._transcoded)
            return
        passthrough = _PASS_AUDIO.get(tag.codec)
        if passthrough is None:
            self._refuse(f"audio codec {tag.codec} cannot be forwarded (publish AAC or Opus)")
            return
        codec, mime, rate, channels = passthrough
        if self._audio is None:
            self._audio = TrackInfo(
                "audio", mime, rate, AUDIO_PT, channels=channels if channels > 1 else None
            )
            self._maybe_live()
        if tag.sequence_header:
            return
        self._emit(self._audio_frame(codec, tag.data, timestamp_ms, rate))

    def on_end(self, reason: str) -> None:
        self._end(reason)

    # --- internals ----------------------------------------------------------------------------------
    def _start_aac(self, config: bytes) -> None:
        if self._transcoder is not None:
            return  # a repeated sequence header (some encoders send one per keyframe)
        try:
            self._transcoder = AudioTranscoder("aac", "opus", extradata=config)
        except ValueError as exc:
            self._refuse(f"bad AAC AudioSpecificConfig: {exc}")
            return
        self._audio = TrackInfo(
            "audio", "audio/opus", 48000, AUDIO_PT, channels=2, parameters={"minptime": 10, "useinbandfec": 1}
        )
        self._maybe_live()

    def _transcoded(self, future: asyncio.Future[list[Frame]]) -> None:
        if future.cancelled() or future.exception() is not None or self.state is not MediaState.PUBLISHING:
            return
        for frame in future.result():
            self._emit(frame)

    def _audio_frame(self, codec: str, data: bytes, timestamp_ms: int, rate: int) -> Frame:
        rtp_time = (timestamp_ms * rate // 1000) & 0xFFFFFFFF
        return Frame("audio", codec, (data,), rtp_time, rate, True, self._pts(timestamp_ms))

    def _pts(self, timestamp_ms: int) -> float:
        if self._t0 is None:
            self._t0 = time.time() - timestamp_ms / 1000
        return self._t0 + timestamp_ms / 1000

    def _emit(self, frame: Frame) -> None:
        if self.state is MediaState.PENDING:
            if not self._first_media:
                self._first_media = time.monotonic()
            self._maybe_live()
        if self.state is MediaState.PUBLISHING:
            self.frames += 1
            self.stream.forward_frame(frame)

    def _maybe_live(self) -> None:
        """Live once every announced track has started (or LIVE_WAIT after the first frame)."""
        if self.state is not MediaState.PENDING:
            return
        have_video = self._video is not None and (self._video[0] != "h264" or self._avc is not None)
        have_audio = self._audio is not None
        waited = self._first_media and time.monotonic() - self._first_media > LIVE_WAIT
        if not (have_video or have_audio):
            return
        if not waited and (
            (self._expect_video and not have_video) or (self._expect_audio and not have_audio)
        ):
            return
        tracks = []
        if have_video and self._video is not None:
            params: dict[str, str | int] = (
                dict(h264_fmtp(self._avc.sps[0])) if self._avc is not None and self._avc.sps else {}
            )
            tracks.append(TrackInfo("video", self._video[1], 90000, VIDEO_PT, parameters=params))
        if self._audio is not None:
            tracks.append(self._audio)
        try:
            self.stream.set_tracks(tracks, packetize=True)
        except MediaError as exc:
            self._refuse(str(exc))
            return
        self.state = MediaState.PUBLISHING
        self.stream.go_live()
        logger.info(
            "rtmp %r from %s: publishing (%s)", self.name, self.remote, ", ".join(t.mime_type for t in tracks)
        )

    def _refuse(self, why: str) -> None:
        logger.warning("rtmp %r from %s: %s", self.name, self.remote, why)
        self._end(why, MediaState.FAILED)
        self._close_connection(why)

    def _end(self, info: str, state: MediaState = MediaState.ENDED) -> None:
        if self.state in (MediaState.ENDED, MediaState.FAILED):
            return
        self.state, self.info = state, info
        self._streams.sessions.discard(self)
        self.stream.leave(self)
        logger.info("rtmp %r from %s: %s (%s)", self.name, self.remote, state.value, info)
        if self._on_ended is not None:
            self._on_ended(self)

    async def close(self) -> None:
        """After the connection is gone: end (if not yet) and stop the transcoder's thread."""
        self._end("connection closed")
        if self._transcoder is not None:
            await self._transcoder.close()
