"""NetStream: one message stream of a server connection (``createStream`` → ``deleteStream``).

It is idle, publishing (a :class:`~rtcdn.rtmp.handler.PublishSink` gets every tag) or playing (a
:class:`~rtcdn.rtmp.handler.PlayOutput` sends to the client). :meth:`NetStream.deliver` parses a
publisher's audio/video/data message and hands it to the sink, with the 32-bit RTMP timestamp
extended to 64 bits; a tag that does not parse is dropped and counted. :meth:`NetStream.end` ends
the publish or play once (``on_end`` / ``on_close``), whatever ended it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from . import amf0, chunk
from .chunk import Message
from .commands import on_status
from .errors import FlvError
from .flv import parse_audio, parse_metadata, parse_video
from .handler import PlayOutput, PublishSink

logger = logging.getLogger(__name__)


@dataclass
class ConnectionStats:
    bytes_in: int = 0
    bytes_out: int = 0
    messages_in: int = 0
    video_in: int = 0
    audio_in: int = 0
    bad_tags: int = 0
    "Video/audio/data messages of a publisher that did not parse: dropped."


@dataclass
class NetStream:
    id: int
    stats: ConnectionStats = field(default_factory=ConnectionStats)
    mode: str = ""  # "", "publish", "play"
    name: str = ""
    published: bool = False  # was publishing once: late media after an unpublish is dropped quietly
    sink: PublishSink | None = None
    output: PlayOutput | None = None
    clock: int | None = None  # the extended (64-bit) timestamp of the last media message
    raw: int = 0

    def timestamp(self, raw: int) -> int:
        """The 32-bit RTMP timestamp extended to 64 bits (it wraps after 49.7 days; steps are signed,
        so audio slightly behind video stays behind)."""
        if self.clock is None:
            self.clock = raw
        else:
            step = (raw - self.raw) & 0xFFFFFFFF
            self.clock += step - (1 << 32) if step >= 1 << 31 else step
        self.raw = raw
        return self.clock

    def deliver(self, msg: Message, where: str) -> None:
        """A publisher's audio (8), video (9) or data (18/15) message → the sink."""
        sink = self.sink
        if sink is None or not msg.payload:
            return
        try:
            if msg.type_id == chunk.VIDEO:
                tag = parse_video(msg.payload)
                self.stats.video_in += 1
                sink.on_video(self.timestamp(msg.timestamp), tag)
            elif msg.type_id == chunk.AUDIO:
                atag = parse_audio(msg.payload)
                self.stats.audio_in += 1
                sink.on_audio(self.timestamp(msg.timestamp), atag)
            else:
                payload = msg.payload[1:] if msg.type_id == chunk.DATA_AMF3 else msg.payload
                meta = parse_metadata(payload)
                if meta is not None:
                    sink.on_metadata(meta)
        except (FlvError, amf0.AmfError) as exc:
            self.stats.bad_tags += 1
            log = logger.warning if self.stats.bad_tags == 1 else logger.debug
            log("rtmp %s/%s: dropped a bad message (type %d): %s", where, self.name, msg.type_id, exc)

    def end(
        self, reason: str, send: Callable[[Message], None] | None, code: str = "NetStream.Play.Stop"
    ) -> None:
        """End the publish or play (once). A player gets the status ``code``; a publisher
        NetStream.Unpublish.Success through ``send``, if given (when the client asked for the end)."""
        sink, out = self.sink, self.output
        self.mode, self.sink, self.output = "", None, None
        if sink is not None:
            if send is not None:
                send(
                    on_status(
                        self.id, "status", "NetStream.Unpublish.Success", f"{self.name} is now unpublished."
                    )
                )
            try:
                sink.on_end(reason)
            except Exception:
                logger.exception("rtmp: on_end of %s failed", self.name)
        if out is not None:
            out.finish(code, reason)
            out.ended(reason)
