"""A stream out to WebRTC (mediamtx's ``FromStream``): the one way any protocol plays a stream to
a WebRTC peer. Used by the WCS session (browser players), WHEP and push relays."""

from __future__ import annotations

from ..stream import Stream, StreamEnded
from .negotiation import Answer, Negotiation
from .peer import WebRtcPlayer


async def play(stream: Stream, peer: WebRtcPlayer, negotiation: Negotiation) -> None:
    """Negotiate ``peer`` against the stream's tracks, wait for ICE + DTLS, attach it (sinks on
    the nominated pair; NACK, PLI and sender reports wired to the stream). Raises
    :class:`~rtcdn.stream.MediaError`; :class:`StreamEnded` if the stream ended meanwhile."""
    tracks = stream.track_infos()
    if isinstance(negotiation, Answer):
        negotiation.on_answer(await peer.answer(negotiation.offer, tracks))
    else:
        await peer.accept(await negotiation.exchange(await peer.offer(tracks)))
    await peer.wait_connected()
    if stream.closed:
        raise StreamEnded(f"stream {stream.name!r} ended while the player connected")
    peer.attach(stream)
