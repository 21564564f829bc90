"""MediaSender: audio/video/metadata out on one RTMP message stream, never blocking the caller.

The queue is the socket's transport buffer (``transport.get_write_buffer_size()``): nothing is
awaited, so a media callback can call ``send_*`` directly. When the buffer is over
``video_queue_bytes`` video is dropped up to the next keyframe (a decoder cannot use the frames
in between); audio is dropped only over the larger ``audio_queue_bytes``; sequence headers,
metadata and command frames always go out. Drops are counted. If the buffer stays over the video
bound (no frame fits) for ``stall_timeout`` seconds the link is aborted (the peer reads slower
than the stream).

Used by the server's play outputs and by :class:`~rtcdn.rtmp.client.RtmpClient`; lives as long as
its link (connection), which it reaches through the :class:`Link` protocol.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from .chunk import AUDIO, DATA_AMF0, VIDEO, Message
from .flv import audio_is_config, build_metadata, classify_video

VIDEO_QUEUE_BYTES = 1 << 20
AUDIO_QUEUE_BYTES = 2 << 20
STALL_TIMEOUT = 30.0


class Link(Protocol):
    """What a sender needs from its connection."""

    def send_message(self, msg: Message) -> None:
        """Encode and write (or do nothing once the connection is closing)."""

    def write_buffer_size(self) -> int:
        """Bytes written and not yet taken by the socket."""

    def abort(self, reason: str) -> None:
        """Close the connection now (the peer is too slow)."""


@dataclass
class SenderStats:
    video_sent: int = 0
    audio_sent: int = 0
    video_dropped: int = 0
    audio_dropped: int = 0


class MediaSender:
    """The drop policy and counters of one outgoing media stream (see the module docstring)."""

    def __init__(
        self,
        link: Link,
        stream_id: int,
        *,
        video_queue_bytes: int = VIDEO_QUEUE_BYTES,
        audio_queue_bytes: int = AUDIO_QUEUE_BYTES,
        stall_timeout: float = STALL_TIMEOUT,
    ) -> None:
        self.link = link
        self.stream_id = stream_id
        self.video_queue_bytes = video_queue_bytes
        self.audio_queue_bytes = audio_queue_bytes
        self.stall_timeout = stall_timeout
        self.stats = SenderStats()
        self.video_enabled = True
        self.audio_enabled = True
        self.closed = False
        self._want_keyframe = False
        self._congested_since: float | None = None

    def _send(self, type_id: int, timestamp_ms: int, payload: bytes) -> None:
        self.link.send_message(Message(type_id, self.stream_id, timestamp_ms & 0xFFFFFFFF, payload))

    def _congested(self) -> None:
        """A frame did not fit in the backlog: abort once that has lasted ``stall_timeout``."""
        now = time.monotonic()
        if self._congested_since is None:
            self._congested_since = now
        elif now - self._congested_since > self.stall_timeout:
            self.closed = True
            self.link.abort(f"the peer has not read its data for {self.stall_timeout:g} s")

    def send_video(self, timestamp_ms: int, body: bytes) -> bool:
        """Queue a video message payload (an FLV video tag body); False if it was dropped."""
        if self.closed or not self.video_enabled:
            return False
        keyframe, config = classify_video(body)
        if not config:
            fits = self.link.write_buffer_size() + len(body) <= self.video_queue_bytes
            if fits:
                self._congested_since = None
            else:
                self._congested()
            if not fits or (self._want_keyframe and not keyframe):
                self._want_keyframe = True
                self.stats.video_dropped += 1
                return False
            self._want_keyframe = False
        self._send(VIDEO, timestamp_ms, body)
        self.stats.video_sent += 1
        return True

    def send_audio(self, timestamp_ms: int, body: bytes) -> bool:
        """Queue an audio message payload (an FLV audio tag body); False if it was dropped."""
        if self.closed or not self.audio_enabled:
            return False
        if not audio_is_config(body) and self.link.write_buffer_size() + len(body) > self.audio_queue_bytes:
            self.stats.audio_dropped += 1
            self._congested()
            return False
        self._send(AUDIO, timestamp_ms, body)
        self.stats.audio_sent += 1
        return True

    def send_metadata(self, meta: Mapping[str, object], timestamp_ms: int = 0) -> None:
        """Send ``onMetaData`` (an ECMA array of ``meta``)."""
        if not self.closed:
            self._send(DATA_AMF0, timestamp_ms, build_metadata(meta))

    def send_data(self, payload: bytes, timestamp_ms: int = 0) -> None:
        """Send a ready-made AMF0 data message payload (e.g. ``@setDataFrame onMetaData ...``)."""
        if not self.closed:
            self._send(DATA_AMF0, timestamp_ms, payload)
