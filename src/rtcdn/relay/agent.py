"""WcsAgent: the client side of the WCS WebSDK protocol, spoken by rtcdn to another server.

Lifecycle: ``connect()`` (WebSocket + ``connection`` → ``getUserData``) → ``publish``/``play`` →
``close()`` once. Server pings are answered; frames for a mediaSessionId are delivered to the
queue returned by :meth:`WcsAgent.watch`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from ..signaling import messages as m
from ..tasks import TaskSet

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0


class AgentError(Exception):
    """The remote server could not be reached or broke the protocol; ``info`` says how."""

    def __init__(self, info: str) -> None:
        super().__init__(info)
        self.info = info


def agent_url(uri: str, use_ssl: bool) -> str:
    """The WebSocket URL for a relay ``uri`` (WCS forms: ``host``, ``ws://host:8080``,
    ``wss://host:8443/websocket``). ``wcs_agent_ssl=true`` turns ``ws://`` on the default port,
    or a bare host, into ``wss://host:8443``; an explicit ``wss://`` is always honoured."""
    if "://" not in uri:
        uri = f"ws://{uri}"
    parts = urlsplit(uri)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise AgentError(f"Bad URI: {uri!r} (expected ws://host:port or wss://host:port)")
    scheme, port = parts.scheme, parts.port
    if scheme == "ws" and use_ssl and port in (None, 8080):
        scheme, port = "wss", 8443
    if port is None:
        port = 8443 if scheme == "wss" else 8080
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return urlunsplit((scheme, f"{host}:{port}", parts.path or "/", parts.query, ""))


class WcsAgent:
    """One WebSocket session to a remote WCS-protocol server."""

    def __init__(
        self, url: str, ssl_context: ssl.SSLContext | bool, label: str, local_address: str | None = None
    ) -> None:
        self.url = url
        self.label = label
        self._ssl = ssl_context
        self._local_address = local_address
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._watchers: dict[str, asyncio.Queue[tuple[str, Any]]] = {}
        self._tasks = TaskSet(f"agent:{label}")
        self.closed = asyncio.Event()
        self.close_reason = ""
        self.user_data: dict[str, Any] = {}

    async def connect(self, timeout: float = CONNECT_TIMEOUT) -> None:
        """Open the socket and establish the session; raises :class:`AgentError`."""
        connector = aiohttp.TCPConnector(local_addr=(self._local_address, 0) if self._local_address else None)
        self._http = aiohttp.ClientSession(connector=connector)
        try:
            async with asyncio.timeout(timeout):
                self._ws = await self._http.ws_connect(
                    self.url, ssl=self._ssl, heartbeat=None, max_msg_size=m.MAX_FRAME_BYTES
                )
                await self._ws.send_str(
                    m.frame(
                        "connection",
                        {
                            "appKey": "defaultApp",
                            "mediaProviders": ["WebRTC"],
                            "clientVersion": "2.0",
                            "clientBrowserVersion": "rtcdn relay agent",
                            "msePacketizationVersion": 2,
                        },
                    )
                )
                while True:
                    message, data = await self._receive()
                    if message == "getUserData":
                        self.user_data = data[0] if data and isinstance(data[0], dict) else {}
                        break
        except TimeoutError:
            await self.close()
            raise AgentError(f"Failed to connect to {self.url}: no answer within {timeout:.0f} s") from None
        except (aiohttp.ClientError, OSError, m.ProtocolError) as exc:
            await self.close()
            raise AgentError(f"Failed to connect to {self.url}: {exc}") from None
        self._tasks.spawn(self._read(), "read")
        logger.info("agent %s: connected to %s", self.label, self.url)

    async def _receive(self) -> tuple[str, list[Any]]:
        """The next frame as ``(message, data)``; pings are answered on the way."""
        assert self._ws is not None
        while True:
            msg = await self._ws.receive()
            if msg.type != aiohttp.WSMsgType.TEXT:
                raise aiohttp.ClientConnectionError(
                    f"socket closed ({self._ws.close_code} {msg.extra or ''})"
                )
            message, data = m.parse_frame_data(msg.data)
            if message != "ping":
                return message, data
            await self._ws.send_str(m.frame("pong", None))

    async def _read(self) -> None:
        try:
            while True:
                message, data = await self._receive()
                if message == "setRemoteSDP" and len(data) >= 2:  # data: [mediaSessionId, sdp]
                    msid, item = data[0], data[1]
                elif data and isinstance(data[0], dict):
                    item = data[0]
                    msid = item.get("mediaSessionId") or item.get("id")
                else:
                    continue
                queue = self._watchers.get(str(msid))
                if queue is not None:
                    queue.put_nowait((message, item))
        except (aiohttp.ClientError, OSError, m.ProtocolError) as exc:
            self.close_reason = str(exc)
        finally:
            self.closed.set()
            for queue in self._watchers.values():
                queue.put_nowait(("closed", self.close_reason))

    def watch(self, msid: str) -> asyncio.Queue[tuple[str, Any]]:
        """Frames for ``msid``: ``("setRemoteSDP", sdp)``, ``("notifyStreamStatusEvent", payload)``,
        ... and ``("closed", reason)`` when the socket goes."""
        return self._watchers.setdefault(msid, asyncio.Queue())

    async def send(self, message: str, payload: dict[str, Any]) -> None:
        if self._ws is None or self._ws.closed:
            raise AgentError(f"Connection to {self.url} is closed")
        try:
            await self._ws.send_str(m.frame(message, payload))
        except (aiohttp.ClientError, ConnectionError) as exc:
            raise AgentError(f"Connection to {self.url} lost: {exc}") from None

    async def publish(self, msid: str, name: str, sdp: str, tracks: set[str]) -> None:
        await self.send(
            "publishStream",
            {
                "mediaSessionId": msid,
                "name": name,
                "published": True,
                "hasVideo": "video" in tracks,
                "hasAudio": "audio" in tracks,
                "status": m.PENDING,
                "record": False,
                "mediaProvider": "WebRTC",
                "sdp": sdp,
                "bitrate": 0,
                "minBitrate": 0,
                "maxBitrate": 0,
            },
        )

    async def play(self, msid: str, name: str, sdp: str) -> None:
        await self.send(
            "playStream",
            {
                "mediaSessionId": msid,
                "name": name,
                "published": False,
                "hasVideo": True,
                "hasAudio": True,
                "status": m.PENDING,
                "record": False,
                "width": 0,
                "height": 0,
                "mediaProvider": "WebRTC",
                "sdp": sdp,
                "bitrate": 0,
                "minBitrate": 0,
                "maxBitrate": 0,
                "quality": 0,
            },
        )

    async def close(self) -> None:
        """Close the socket and the client session (idempotent)."""
        await self._tasks.close()
        if self._ws is not None and not self._ws.closed:
            with contextlib.suppress(Exception):
                await self._ws.close()
        if self._http is not None:
            await self._http.close()
            self._http = None
        self.closed.set()
