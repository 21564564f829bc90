"""Who offers: the two ways a WebRTC peer meets the other side's SDP.

* :class:`Answer`: the remote offered (a browser on the WCS WebSocket, a WHIP/WHEP client); we
  answer and hand the answer to ``on_answer`` (a WCS ``setRemoteSDP``, an HTTP 201 body).
* :class:`Offer`: we offer (a relay to another server); ``exchange`` delivers our offer and
  returns the remote's answer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Answer:
    offer: str
    on_answer: Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Offer:
    exchange: Callable[[str], Awaitable[str]]


Negotiation = Answer | Offer
