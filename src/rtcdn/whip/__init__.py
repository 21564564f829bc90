"""WHIP (RFC 9725) and WHEP (draft-ietf-wish-whep) on the HTTP(S) ports: publish and play a
stream with one HTTP POST of an SDP offer. A front end on the media core: it uses only
:mod:`rtcdn.webrtc`'s ingest/egress adapters and the stream manager."""

from .endpoint import Authorize, WhipFrontEnd, allow_all
from .resource import WhipResource

__all__ = ["Authorize", "WhipFrontEnd", "WhipResource", "allow_all"]
