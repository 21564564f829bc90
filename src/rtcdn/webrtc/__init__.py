"""The WebRTC layer: the only package that imports aiortc.

:mod:`.ingest` and :mod:`.egress` are the two adapters between a WebRTC peer and a stream;
:mod:`.peer` wraps aiortc's peer connection; :mod:`._aiortc` holds every private hook, and
:mod:`._aiortc_lean` those that cut aiortc's peer objects down to what a passthrough peer uses.
"""

from ._aiortc import PortRange, host_addresses
from .egress import play
from .ingest import publish
from .negotiation import Answer, Negotiation, Offer
from .peer import KNOWN_CODECS, MediaConfig, WebRtcPlayer, WebRtcPublisher

__all__ = [
    "KNOWN_CODECS",
    "Answer",
    "MediaConfig",
    "Negotiation",
    "Offer",
    "PortRange",
    "WebRtcPlayer",
    "WebRtcPublisher",
    "host_addresses",
    "play",
    "publish",
]
