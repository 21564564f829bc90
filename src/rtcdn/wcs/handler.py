"""The WCS front end: the WebSocket endpoint on the ws/wss ports, and the sessions it serves."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

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
    ) -> None:
        self.streams = streams
        self.media = media
        self.signaling = signaling
        self.republish = republish
        self.sessions: dict[str, WcsSession] = {}

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=MAX_FRAME_BYTES, autoping=True)
        if not ws.can_prepare(request).ok:
            return web.Response(status=426, text="rtcdn: this port speaks WebSocket (WCS WebSDK protocol)\n")
        await ws.prepare(request)
        peer = request.transport.get_extra_info("peername") if request.transport else None
        remote = f"{peer[0]}:{peer[1]}" if peer else "unknown"
        await WcsSession(self, ws, remote).run()
        return ws

    async def close(self, info: str) -> None:
        await asyncio.gather(*(s.close(info) for s in list(self.sessions.values())), return_exceptions=True)
