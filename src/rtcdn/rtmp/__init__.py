"""RTMP: our own asyncio implementation of the protocol (no rtcdn core in it).

Layers, bottom up: :mod:`.amf0` (values), :mod:`.chunk` (chunk stream, control messages),
:mod:`.handshake`, :mod:`.flv` and :mod:`.codecs` (tag bodies, codec configuration records),
:mod:`.commands` (NetConnection/NetStream commands, URLs, E-RTMP capabilities), :mod:`.sender`
(non-blocking media output), :mod:`.connection` + :mod:`.server` (the server role: publish and
play, decisions delegated to an :class:`RtmpHandler`) and :mod:`.client` (the publishing client).
It imports nothing of rtcdn but :mod:`rtcdn.tasks`; the glue to the media core lives beside it.
"""

from .client import RtmpClient
from .config import RtmpConfig
from .connection import PlayOutput, PublishSink, RtmpHandler, RtmpServerConnection
from .errors import (
    FlvError,
    RtmpClosed,
    RtmpConnectError,
    RtmpError,
    RtmpProtocolError,
    RtmpRefused,
    RtmpTimeout,
)
from .flv import AudioTag, VideoTag
from .server import RtmpServer

__all__ = [
    "AudioTag",
    "FlvError",
    "PlayOutput",
    "PublishSink",
    "RtmpClient",
    "RtmpClosed",
    "RtmpConfig",
    "RtmpConnectError",
    "RtmpError",
    "RtmpHandler",
    "RtmpProtocolError",
    "RtmpRefused",
    "RtmpServer",
    "RtmpServerConnection",
    "RtmpTimeout",
    "VideoTag",
]
