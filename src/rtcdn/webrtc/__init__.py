"""The WebRTC layer: the only package that imports aiortc."""

from ._aiortc import PortRange, host_addresses
from .peer import KNOWN_CODECS, MediaConfig, PeerError, WebRtcPlayer, WebRtcPublisher

__all__ = [
    "KNOWN_CODECS",
    "MediaConfig",
    "PeerError",
    "PortRange",
    "WebRtcPlayer",
    "WebRtcPublisher",
    "host_addresses",
]
