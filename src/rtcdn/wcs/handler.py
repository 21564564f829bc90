"""The WCS front end: the WebSocket endpoint on the ws/wss ports, and the sessions it serves.

Before the upgrade: an ``Origin`` that ``allow_domains`` forbids gets 403, an address over its caps
(sessions open, connection rate) 429, unless the upgrade carries a node's service token
(``Authorization: Bearer``: relays and CDN pushes come many from one address); frames over
:data:`~.messages.MAX_FRAME_BYTES` close the socket with 1009.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from ..access import AccessControl
from ..stream import StreamManager
from ..webrtc import MediaConfig
from .messages import MAX_FRAME_BYTES
from .session import Republish, SignalingSettings, WcsSession

logger = logging.getLogger(__name__)


class WcsFrontEnd:
    """Owns every :class:`WcsSession`; satisfies the session's ``SessionHost``.

    Lifecycle: :meth:`app` is served on the ws/wss ports; :meth:`close` tells every client why
    (e.g. ``Server shutdown``) and waits for their sessions to end."""

    def __init__(
        self,
        streams: StreamManager,
        media: MediaConfig,
        signaling: SignalingSettings,
        republish: Republish | None = None,
        access: AccessControl | None = None,
    ) -> None:
        self.streams = streams
        self.media = media
        self.signaling = signaling
        self.republish = republish
        self.access = access if access is not None else AccessControl()
        self.sessions: dict[str, WcsSession] = {}

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=MAX_FRAME_BYTES, autoping=True)
        if not ws.can_prepare(request).ok:
            return web.Response(status=426, text="rtcdn: this port speaks WebSocket (WCS WebSDK protocol)\n")
        origin = request.headers.get("Origin")
        peer = request.transport.get_extra_info("peername") if request.transport else None
        address = str(peer[0]) if peer else "unknown"
        forwarded = self.access.clients.of(address, request.headers.getall("X-Forwarded-For", []))
        remote = f"{address}:{peer[1]}" if peer and forwarded == address else forwarded
        address = forwarded  # the client behind a trusted proxy: the caps count it, the logs name it
        if not self.access.origins.allows(origin):
            logger.info("ws: %s: Origin %r is not in allow_domains", address, origin)
            return web.Response(status=403, text="rtcdn: Origin not allowed (allow_domains)\n")
        counted = not await self.access.is_service(request.headers.get("Authorization"))
        refusal = self.access.connections.admit(address) if counted else None
        if refusal is not None:
            logger.info("ws: refused: %s", refusal)
            return web.Response(status=429, text=f"rtcdn: too many connections: {refusal}\n")
        try:
            await ws.prepare(request)
            await WcsSession(self, ws, remote, origin, request.transport).run()
        finally:
            if counted:
                self.access.connections.release(address)
        return ws

    async def close(self, info: str) -> None:
        await asyncio.gather(*(s.close(info) for s in list(self.sessions.values())), return_exceptions=True)
