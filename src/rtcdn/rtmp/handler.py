"""The handler side of the RTMP server: what rtcdn's glue implements and what it is given.

* :class:`RtmpHandler` — the decisions: ``on_connect`` (the app), ``on_publish`` (returns a
  :class:`PublishSink`), ``on_play`` (gets a :class:`PlayOutput`); raise
  :class:`~rtcdn.rtmp.errors.RtmpRefused` to refuse with a status code the client sees.
* :class:`PublishSink` — receives a publisher's tags, in the connection's task, until ``on_end``.
* :class:`PlayOutput` — a player: send FLV tag bodies without blocking (drop policy of
  :class:`~rtcdn.rtmp.sender.MediaSender`), learn its E-RTMP capabilities, ``close`` it, and be
  told by ``on_close`` (once) when it goes away. Created by the connection at ``play``; the
  status preamble (StreamBegin, NetStream.Play.Reset/Start, ``|RtmpSampleAccess``) goes out before
  the first media message or when ``on_play`` returns, whichever comes first.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from . import amf0, chunk
from .commands import on_status
from .flv import AudioTag, VideoTag
from .sender import MediaSender

if TYPE_CHECKING:
    from .connection import RtmpServerConnection

logger = logging.getLogger(__name__)


class PublishSink(Protocol):
    """Where a publisher's media goes (the handler's object); called in the connection's task.

    ``timestamp_ms`` is the message timestamp extended past the 32-bit wrap (audio and video share
    it and interleave, so it may step back a little). Every parsed tag arrives, including those a
    consumer ignores: command frames (``codec == ""``), video Metadata (colorInfo, FFmpeg 9 sends it
    with HEVC/VP9/AV1), audio MultichannelConfig (FFmpeg 9 sends it after the Opus OpusHead), end
    of sequence; an unknown codec arrives as ``"unknown:<id>"`` for the sink to refuse."""

    def on_video(self, timestamp_ms: int, tag: VideoTag) -> None: ...
    def on_audio(self, timestamp_ms: int, tag: AudioTag) -> None: ...
    def on_metadata(self, meta: dict[str, object]) -> None: ...
    def on_end(self, reason: str) -> None:
        """Called once: deleteStream / FCUnpublish / closeStream / socket closed / error / close()."""


class RtmpHandler(Protocol):
    """The decisions; raise :class:`RtmpRefused` to refuse (its code and description reach the client)."""

    async def on_connect(self, conn: RtmpServerConnection, app: str, query: dict[str, str]) -> None: ...
    async def on_publish(
        self, conn: RtmpServerConnection, app: str, name: str, query: dict[str, str]
    ) -> PublishSink: ...
    async def on_play(
        self, conn: RtmpServerConnection, app: str, name: str, query: dict[str, str], out: PlayOutput
    ) -> None: ...


class PlayOutput(MediaSender):
    """What a player receives: ``send_video`` / ``send_audio`` (FLV tag bodies) / ``send_metadata``,
    never blocking (drops counted in ``stats``). ``fourccs`` / ``accepts()``: the E-RTMP codecs the
    player announced in connect (empty for a legacy player; FFmpeg 9 announces nothing as a player
    yet decodes enhanced HEVC/Opus tags: what to send is the handler's choice). ``on_close(reason)``
    fires once when the player goes away, whoever closed it; :meth:`close` ends the play."""

    def __init__(self, conn: RtmpServerConnection, stream_id: int, name: str, query: dict[str, str]) -> None:
        cfg = conn.config
        super().__init__(
            conn,
            stream_id,
            video_queue_bytes=cfg.video_queue_bytes,
            audio_queue_bytes=cfg.audio_queue_bytes,
            stall_timeout=cfg.stall_timeout,
        )
        self.conn = conn
        self.name = name
        self.query = query
        self.capabilities = conn.capabilities
        self.on_close: Callable[[str], None] | None = None
        self._started = False

    @property
    def fourccs(self) -> frozenset[str]:
        return self.capabilities.fourccs

    def accepts(self, fourcc: str) -> bool:
        return self.capabilities.accepts(fourcc)

    def start(self) -> None:
        """StreamBegin, NetStream.Play.Reset/Start, ``|RtmpSampleAccess`` (once, before any media)."""
        if self._started or self.closed:
            return
        self._started = True
        sid, conn = self.stream_id, self.conn
        conn.send_message(chunk.user_control(chunk.STREAM_BEGIN, sid))
        conn.send_message(
            on_status(sid, "status", "NetStream.Play.Reset", f"Playing and resetting {self.name}.")
        )
        conn.send_message(on_status(sid, "status", "NetStream.Play.Start", f"Started playing {self.name}."))
        self.send_data(amf0.encode("|RtmpSampleAccess", True, True))

    def _send(self, type_id: int, timestamp_ms: int, payload: bytes) -> None:
        if not self._started:
            self.start()
        super()._send(type_id, timestamp_ms, payload)

    def close(self, code: str = "NetStream.Play.Stop", description: str = "") -> None:
        """Tell the player (onStatus ``code``, StreamEOF) and close its connection."""
        if self.closed:
            return
        self.finish(code, description)
        self.conn.close(description or code)

    def finish(self, code: str, description: str) -> None:
        """The last status (once; StreamEOF too if the play had started)."""
        if self.closed:
            return
        self.closed = True
        self.conn.send_message(on_status(self.stream_id, "status", code, description or code))
        if self._started:
            self.conn.send_message(chunk.user_control(chunk.STREAM_EOF, self.stream_id))

    def ended(self, reason: str) -> None:
        self.closed = True
        callback, self.on_close = self.on_close, None
        if callback is not None:
            try:
                callback(reason)
            except Exception:
                logger.exception("rtmp %s: on_close of %s failed", self.conn.peer, self.name)
