"""WcsAgent: the client side of the WCS WebSDK protocol, the one WCS client rtcdn has.

Relays and CDN pushes speak it to another server; the test client (``tests/wcs_client.py``) and the
benchmark clients (``bench/_wcs.py``) put their aiortc peers on top of it. It speaks the protocol
only: offers and answers are strings, peers belong to the caller.

Lifecycle: ``connect()`` (WebSocket + ``connection`` → ``getUserData``; ``open()`` is the socket
alone) → ``publish``/``play``/``negotiate``/``send`` → ``close()`` once. A reader task answers the
server's pings and hands every other frame to :attr:`WcsAgent.on_frame`, then, by mediaSessionId, to
the queue :meth:`WcsAgent.watch` returns; when the socket goes, every queue gets ``("closed", reason)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable, Collection, Coroutine
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from ..tasks import TaskSet
from . import messages as m

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0
NEGOTIATION_TIMEOUT = 15.0
"Default seconds :meth:`WcsAgent.negotiate` waits for the answer and the status."

Watched = tuple[str, Any]
"An item of a :meth:`WcsAgent.watch` queue: ``(message, payload)``, the SDP for ``setRemoteSDP``."


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
    try:
        parts = urlsplit(uri)
        hostname, scheme, port = parts.hostname, parts.scheme, parts.port
    except ValueError as exc:  # a bad IPv6 literal, a port out of range or not a number
        raise AgentError(f"Bad URI: {uri!r} ({exc})") from None
    if scheme not in ("ws", "wss") or not hostname:
        raise AgentError(f"Bad URI: {uri!r} (expected ws://host:port or wss://host:port)")
    if scheme == "ws" and use_ssl and port in (None, 8080):
        scheme, port = "wss", 8443
    if port is None:
        port = 8443 if scheme == "wss" else 8080
    host = f"[{hostname}]" if ":" in hostname else hostname
    return urlunsplit((scheme, f"{host}:{port}", parts.path or "/", parts.query, ""))


def frame_target(message: str, data: list[Any]) -> tuple[str, Any] | None:
    """``(mediaSessionId, payload)`` of a server frame about one stream, or None: ``setRemoteSDP``
    carries ``[msid, sdp]``, the others a payload with ``mediaSessionId`` (or ``id``, availableStream)."""
    if message == "setRemoteSDP" and len(data) >= 2:
        return str(data[0]), data[1]
    if data and isinstance(data[0], dict):
        msid = data[0].get("mediaSessionId") or data[0].get("id")
        if msid:
            return str(msid), data[0]
    return None


class WcsAgent:
    """One WebSocket session to a WCS-protocol server.

    ``ssl_context``: aiohttp's ``ssl`` argument (a context, True for default verification, False for
    none). ``local_address``: where the connection comes from (the agent then owns its client session);
    ``http``: a client session to share instead (left open by :meth:`close`). ``watch_all``: keep the
    frames of every mediaSessionId, watched or not (a client that sends hand-made requests), instead of
    dropping those nobody watches. ``client``: the user agent sent in ``connection``; ``custom``: its
    ``custom`` object (a relay's service token: ``{"token": ...}``); ``headers``: extra headers of the
    WebSocket upgrade (a relay's ``Authorization: Bearer``, which spares it the per-address caps).
    """

    def __init__(
        self,
        url: str,
        ssl_context: ssl.SSLContext | bool = True,
        label: str = "",
        local_address: str | None = None,
        *,
        http: aiohttp.ClientSession | None = None,
        watch_all: bool = False,
        client: str = "rtcdn relay agent",
        custom: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        if http is not None and local_address is not None:
            raise ValueError("local_address binds the agent's own client session: give it or http, not both")
        self.url = url
        self.label = label or url
        self._ssl = ssl_context
        self._local_address = local_address
        self._http = http
        self._owns_http = http is None
        self._watch_all = watch_all
        self._client = client
        self._custom = custom
        self._headers = headers
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._watchers: dict[str, asyncio.Queue[Watched]] = {}
        self._handshake: asyncio.Future[dict[str, Any]] | None = None
        self._tasks = TaskSet(f"agent:{self.label}")
        self.closed = asyncio.Event()
        "Set when the socket is gone (the server closed it, it broke, or :meth:`close`)."
        self.close_reason = ""
        self.user_data: dict[str, Any] = {}
        "The ``getUserData`` payload (sessionId, authToken, status ESTABLISHED, ...)."
        self.pings = 0
        "Server pings answered."
        self.on_frame: Callable[[str, list[Any]], None] | None = None
        "Called with ``(message, data)`` for every frame received but pings, before it is routed."
        self.on_send: Callable[[str, Any], None] | None = None
        "Called with ``(message, payload)`` just before :meth:`send` writes a frame (for timing)."

    # --- connecting -----------------------------------------------------------------------------
    async def connect(self, timeout: float = CONNECT_TIMEOUT) -> dict[str, Any]:
        """Open the socket and establish the session; returns :attr:`user_data`.

        Raises :class:`AgentError` (and closes the agent) if that fails or takes over ``timeout`` s.
        """
        await self._connecting(self._establish(), timeout)
        logger.info("agent %s: connected to %s", self.label, self.url)
        return self.user_data

    async def open(self, timeout: float = CONNECT_TIMEOUT) -> None:
        """Only open the socket and start reading: no ``connection`` (a client that misbehaves)."""
        await self._connecting(self._open(), timeout)

    async def _connecting(self, steps: Coroutine[Any, Any, None], timeout: float) -> None:
        try:
            async with asyncio.timeout(timeout):
                await steps
        except TimeoutError:
            await self.close()
            raise AgentError(f"Failed to connect to {self.url}: no answer within {timeout:.0f} s") from None
        except (aiohttp.ClientError, OSError, m.ProtocolError) as exc:
            await self.close()
            raise AgentError(f"Failed to connect to {self.url}: {exc}") from None
        except AgentError as exc:
            await self.close()
            raise AgentError(f"Failed to connect to {self.url}: {exc.info}") from None

    async def _open(self) -> None:
        if self._http is None:
            local = (self._local_address, 0) if self._local_address else None
            self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=local))
        self._ws = await self._http.ws_connect(
            self.url, ssl=self._ssl, heartbeat=None, max_msg_size=m.MAX_FRAME_BYTES, headers=self._headers
        )
        self._tasks.spawn(self._read(), "read")

    async def _establish(self) -> None:
        await self._open()
        self._handshake = asyncio.get_running_loop().create_future()
        await self.send("connection", m.connection_payload(self._client, custom=self._custom))
        self.user_data = await self._handshake

    # --- receiving ------------------------------------------------------------------------------
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
            self.pings += 1
            await self._ws.send_str(m.frame("pong", None))

    async def _read(self) -> None:
        try:
            while True:
                message, data = await self._receive()
                handshake = self._handshake
                if message == "getUserData" and handshake is not None and not handshake.done():
                    handshake.set_result(data[0] if data and isinstance(data[0], dict) else {})
                if self.on_frame is not None:
                    self.on_frame(message, data)
                target = frame_target(message, data)
                if target is not None:
                    msid, item = target
                    queue = self.watch(msid) if self._watch_all else self._watchers.get(msid)
                    if queue is not None:
                        queue.put_nowait((message, item))
        except (aiohttp.ClientError, OSError, m.ProtocolError) as exc:
            self.close_reason = str(exc)
        finally:
            self.closed.set()
            if self._handshake is not None and not self._handshake.done():
                self._handshake.set_exception(ConnectionError(self.close_reason or "socket closed"))
            for queue in self._watchers.values():
                queue.put_nowait(("closed", self.close_reason))

    def watch(self, msid: str) -> asyncio.Queue[Watched]:
        """Frames for ``msid``: ``("setRemoteSDP", sdp)``, ``("notifyStreamStatusEvent", payload)``,
        ... and ``("closed", reason)`` when the socket goes (at once if it has gone already)."""
        queue = self._watchers.get(msid)
        if queue is None:
            queue = self._watchers[msid] = asyncio.Queue()
            if self.closed.is_set():
                queue.put_nowait(("closed", self.close_reason))
        return queue

    # --- sending --------------------------------------------------------------------------------
    async def send(self, message: str, payload: Any = None) -> None:
        """Send ``{"message": message, "data": [payload]}``; raises :class:`AgentError` if the socket
        is gone."""
        if self.on_send is not None:
            self.on_send(message, payload)
        await self.send_raw(m.frame(message, payload))

    async def send_raw(self, text: str) -> None:
        """Send a text frame as it is (bad-input tests); raises :class:`AgentError` if the socket is gone."""
        if self._ws is None or self._ws.closed:
            raise AgentError(f"Connection to {self.url} is closed")
        try:
            await self._ws.send_str(text)
        except (aiohttp.ClientError, ConnectionError) as exc:
            raise AgentError(f"Connection to {self.url} lost: {exc}") from None

    async def publish(self, msid: str, name: str, sdp: str, tracks: Collection[str]) -> None:
        """Send ``publishStream`` with the offer ``sdp`` for ``tracks`` (kinds); ``msid`` is watched."""
        self.watch(msid)
        payload = m.stream_payload(msid, name, True, sdp, "audio" in tracks, "video" in tracks)
        await self.send("publishStream", payload)

    async def play(self, msid: str, name: str, sdp: str) -> None:
        """Send ``playStream`` with the offer ``sdp``; ``msid`` is watched."""
        self.watch(msid)
        await self.send("playStream", m.stream_payload(msid, name, False, sdp))

    async def negotiate(
        self,
        message: str,
        payload: dict[str, Any],
        wanted: str,
        on_answer: Callable[[str], Awaitable[None]] | None = None,
        timeout: float = NEGOTIATION_TIMEOUT,
    ) -> dict[str, Any]:
        """Send a request with an offer (``publishStream``/``playStream`` ``payload``) and follow it.

        ``on_answer(sdp)`` is awaited with the first ``setRemoteSDP``. Returns the status payload that
        settles the request: ``wanted`` (PUBLISHING, PLAYING) once the answer is in, or a terminal one
        (UNPUBLISHED, STOPPED, FAILED: e.g. "Stream not found" with no answer at all) for the caller to
        judge. Raises :class:`AgentError` if the socket goes, TimeoutError after ``timeout`` seconds.
        Later frames for the stream go on arriving in :meth:`watch`.
        """
        queue = self.watch(str(payload["mediaSessionId"]))
        await self.send(message, payload)
        answered = False
        async with asyncio.timeout(timeout):
            while True:
                kind, item = await queue.get()
                if kind == "setRemoteSDP" and not answered:
                    answered = True
                    if on_answer is not None:
                        await on_answer(str(item))
                elif kind == "notifyStreamStatusEvent" and isinstance(item, dict):
                    status = item.get("status")
                    if status in m.TERMINAL_STATUSES or (status == wanted and answered):
                        return item
                elif kind == "closed":
                    raise AgentError(f"Connection to {self.url} lost: {item or 'closed'}")

    async def close(self) -> None:
        """Close the socket and the client session the agent owns (idempotent)."""
        await self._tasks.close()
        if self._ws is not None and not self._ws.closed:
            with contextlib.suppress(Exception):
                await self._ws.close()
        if self._owns_http and self._http is not None:
            await self._http.close()
            self._http = None
        self.closed.set()
