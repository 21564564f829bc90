"""WebRTC into a stream (mediamtx's ``ToStream``): the one way any protocol publishes a WebRTC peer.

Used by the WCS session (browser publishers), WHIP and pull relays. The caller creates the
stream with the publisher object that should hear about its end; :func:`publish` does the rest.
"""

from __future__ import annotations

import asyncio

from ..stream import EndReason, Stream
from .negotiation import Answer, Negotiation
from .peer import WebRtcPublisher


async def publish(stream: Stream, peer: WebRtcPublisher, negotiation: Negotiation) -> None:
    """Negotiate ``peer``, route its RTP and sender reports into ``stream``, wait for ICE + DTLS,
    make the stream live. Raises :class:`~rtcdn.stream.MediaError` on failure; then (and on
    cancellation) the stream is closed, so the name is free again."""
    try:
        if isinstance(negotiation, Answer):
            sdp = await peer.answer(negotiation.offer, stream.forward, stream.on_sender_report)
            stream.set_tracks(peer.tracks)
            negotiation.on_answer(sdp)
        else:
            answer = await negotiation.exchange(await peer.offer())
            await peer.accept(answer, stream.forward, stream.on_sender_report)
            stream.set_tracks(peer.tracks)
        await peer.wait_connected()
    except (Exception, asyncio.CancelledError):
        stream.close(EndReason.PUBLISHER_STOP)
        raise
    stream.go_live()
