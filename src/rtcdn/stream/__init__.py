"""The media core: streams, what plugs into them, and the manager that finds them.

It knows no protocol: WebRTC (:mod:`rtcdn.webrtc`), the WCS front end, WHIP/WHEP, relays and the
CDN are adapters on it. It imports only the RTP layer (:mod:`rtcdn.rtp`).
"""

from .directory import LocalDirectory, StreamDirectory
from .errors import (
    AccessDenied,
    BadDescription,
    ConnectTimeout,
    DtlsFailed,
    EndReason,
    MediaError,
    NameInUse,
    NoCommonCodecs,
    NotInDirectory,
    StreamEnded,
    StreamNotFound,
    TooManyPlayers,
    UpstreamFailed,
)
from .manager import MediaSessions, StreamManager, StreamStats
from .ports import FrameSink, MediaRecord, MediaSession, MediaState, Player, Publisher
from .stream import KEYFRAME_MIN_INTERVAL, KEYFRAME_WAIT, Stream, StreamState

__all__ = [
    "KEYFRAME_MIN_INTERVAL",
    "KEYFRAME_WAIT",
    "AccessDenied",
    "BadDescription",
    "ConnectTimeout",
    "DtlsFailed",
    "EndReason",
    "FrameSink",
    "LocalDirectory",
    "MediaError",
    "MediaRecord",
    "MediaSession",
    "MediaSessions",
    "MediaState",
    "NameInUse",
    "NoCommonCodecs",
    "NotInDirectory",
    "Player",
    "Publisher",
    "Stream",
    "StreamDirectory",
    "StreamEnded",
    "StreamManager",
    "StreamNotFound",
    "StreamState",
    "StreamStats",
    "TooManyPlayers",
    "UpstreamFailed",
]
