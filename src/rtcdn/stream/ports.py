"""What plugs into a :class:`~rtcdn.stream.Stream`, declared by the core, implemented by protocols.

* a :class:`Publisher` is the one source of a stream (a WebRTC peer, a pull relay, an RTMP
  encoder): it writes RTP (``Stream.forward``) or frames (``Stream.forward_frame``) into it;
* a :class:`Player` consumes it, as RTP (``sinks()``: the passthrough path, one
  :class:`~rtcdn.rtp.RtpSink` per kind) and/or as whole frames (``frame_sinks()``: access units
  from a depacketizer the stream creates on the first frame consumer of a track);
* a :class:`MediaSession` is one publish or play as the outside sees it (REST, stats, metrics,
  terminate): every front end registers its sessions with the manager's
  :class:`~rtcdn.stream.manager.MediaSessions`, so nothing iterates protocol collections.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from ..rtp import RtpSink
from ..rtp.frame import Frame
from .errors import EndReason

FrameSink = Callable[[Frame], None]
"Receives the whole frames of one track, in decode order, starting with a keyframe."


class Publisher(Protocol):
    """The source of a stream, whatever its protocol."""

    def request_keyframe(self) -> None: ...

    def on_stream_end(self, reason: EndReason) -> None:
        """The stream was ended from outside (terminate, shutdown): stop publishing."""


class Player(Protocol):
    """A consumer of a stream, whatever its protocol."""

    def sinks(self) -> Mapping[str, RtpSink]:
        """RTP consumers by kind (``audio``/``video``); empty for a frame-only player."""

    def frame_sinks(self) -> Mapping[str, FrameSink]:
        """Frame consumers by kind; empty for an RTP-only player."""

    def on_stream_end(self, reason: EndReason) -> None:
        """The stream is gone (publisher left, terminate): tell the client and close."""

    def on_stream_event(self, event: dict[str, object]) -> None:
        """A publisher's stream event (mute, data): pass it on to the client."""


class MediaState(enum.Enum):
    PENDING = "PENDING"
    PUBLISHING = "PUBLISHING"
    PLAYING = "PLAYING"
    ENDED = "ENDED"
    FAILED = "FAILED"


@dataclass(frozen=True, slots=True)
class MediaRecord:
    """One publish or play, described by its owner (the fields REST, stats and metrics need)."""

    id: str
    "The media session id (WCS mediaSessionId, WHIP resource id, relay id)."
    name: str
    "The stream name."
    published: bool
    protocol: str
    "``wcs``, ``whip``, ``whep``, ``relay-pull``, ``relay-push``, ..."
    state: MediaState
    session: str
    "Who owns it: a WCS session id, a WHIP resource URL, a relay's remote URI."
    app: str = ""
    created: float = 0.0
    info: str = ""
    transport: str = "WebRTC"
    "The media transport, as WCS names it (``mediaProvider``)."


class MediaSession(Protocol):
    """One publish or play that the REST API can list and end."""

    @property
    def id(self) -> str: ...

    def describe(self) -> MediaRecord: ...

    def terminate(self, reason: EndReason) -> None:
        """End it from outside (REST ``/stream/terminate``); idempotent."""
