"""WcsSession: one WebSocket speaking the WCS WebSDK protocol, and the streams it publishes and plays.

Lifecycle: created by the WebSocket handler, :meth:`WcsSession.run` reads frames until the socket
closes or keep-alive gives up, then every stream of the session is ended and every peer closed.
State changes happen in plain methods; negotiation runs in tasks owned by the session's TaskSet.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import WSMsgType, web

from ..access import AccessControl, Grant
from ..stream import (
    AccessDenied,
    EndReason,
    MediaError,
    StreamEnded,
    StreamManager,
)
from ..tasks import TaskSet
from ..webrtc import Answer, MediaConfig, WebRtcPlayer, WebRtcPublisher, egress, ingest
from . import admission
from . import messages as m
from .handle import MediaHandle
from .records import END_INFO, error_info

logger = logging.getLogger(__name__)

CLOSE_TIMEOUT = 1.0
"Seconds a closing handshake may take before the connection is aborted."


@dataclass
class SignalingSettings:
    node_id: str = "rtcdn"
    ping_interval: float = 5.0
    "keep_alive.server_interval (ms in the properties file)."
    ping_probes: int = 10
    "keep_alive.probes: unanswered pings before the session is closed."
    keepalive_enabled: bool = True
    max_streams_per_session: int = 0
    "Publishes + plays a session may have at once (0: no cap)."


Republish = Callable[[str, str], object]
"""``republish(stream_name, rtmp_url)``: push a stream to an RTMP server once it is published (the
``rtmpUrl`` of ``publishStream``); raises when refused."""


class SessionHost(Protocol):
    """What a session needs (declared here, implemented by :class:`.handler.WcsFrontEnd`)."""

    streams: StreamManager
    media: MediaConfig
    signaling: SignalingSettings
    sessions: dict[str, WcsSession]
    republish: Republish | None
    access: AccessControl


class WcsSession:
    """One client connection. ``send`` is synchronous: frames go through an ordered queue.
    ``origin``: the ``Origin`` header of the upgrade (for the ``connect`` hook)."""

    def __init__(
        self,
        host: SessionHost,
        ws: web.WebSocketResponse,
        remote: str,
        origin: str | None = None,
        transport: asyncio.BaseTransport | None = None,
    ) -> None:
        """``transport``: the connection under ``ws``, aborted when a close cannot be delivered."""
        self.host = host
        self.ws = ws
        self.transport = transport
        self.id = f"/{remote}/{uuid.uuid4().hex[:8]}"
        self.remote = remote
        self.origin = origin
        self.app_key = ""
        self.established = False
        self.grant: Grant | None = None
        "The grant of the session's token (``connection`` ``custom``), if it had one."
        self._connecting = False
        self.created = time.time()
        self.handles: dict[str, MediaHandle] = {}
        self.tasks = TaskSet(f"session{self.id}")
        self._out: asyncio.Queue[str | None] = asyncio.Queue()
        self._missed_pongs = 0
        self._closing = False
        self._writer_task: asyncio.Task[None] | None = None
        self._closers: set[asyncio.Task[None]] = set()
        self._log = logging.LoggerAdapter(logger, {"session": self.id})

    # --- I/O ------------------------------------------------------------------------------
    def send(self, message: str, *data: Any) -> None:
        if not self._closing:
            self._out.put_nowait(m.frame(message, *data))

    async def _writer(self) -> None:
        while (text := await self._out.get()) is not None:
            try:
                await self.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return

    async def _keepalive(self) -> None:
        settings = self.host.signaling
        while True:
            await asyncio.sleep(settings.ping_interval)
            if self._missed_pongs >= settings.ping_probes:
                self._log.warning("session %s: %d pings unanswered, closing", self.id, self._missed_pongs)
                await self._close_socket(4000, b"keep-alive: pings unanswered")
                return
            self._missed_pongs += 1
            self.send("ping")

    async def run(self) -> None:
        """Serve the socket until it closes; then tear everything down."""
        self.host.sessions[self.id] = self
        self._log.info("session %s: connected", self.id)
        self._writer_task = self.tasks.spawn(self._writer(), "writer")
        if self.host.signaling.keepalive_enabled:
            self.tasks.spawn(self._keepalive(), "keepalive")
        try:
            async for msg in self.ws:
                if msg.type == WSMsgType.TEXT:
                    self._missed_pongs = 0
                    self._on_text(msg.data)
                elif msg.type == WSMsgType.BINARY:
                    self._fail_frame("binaryData", "binary frames are not supported on the session socket")
                elif msg.type == WSMsgType.ERROR:
                    self._log.warning("session %s: socket error %s", self.id, self.ws.exception())
        finally:
            await self.close(m.STOPPED_BY_SESSION_DISCONNECT)

    async def _close_socket(self, code: int, message: bytes) -> None:
        """A closing handshake, or, when the client does not read (the close frame waits behind a
        full TCP send buffer), an abort after CLOSE_TIMEOUT: a stalled client never keeps its session."""
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await self.ws.close(code=code, message=message)
        except TimeoutError:
            self._log.warning("session %s: the client does not read; connection aborted", self.id)
            if isinstance(self.transport, asyncio.WriteTransport):
                self.transport.abort()

    async def close(self, info: str) -> None:
        """Tell the client every stream ended, close peers and the socket, stop tasks (idempotent)."""
        if self._closing:
            return
        for handle in list(self.handles.values()):
            self._end(handle, m.UNPUBLISHED if handle.published else m.STOPPED, info)
        self._closing = True
        self._out.put_nowait(None)
        if self._writer_task is not None and not self.ws.closed:
            await asyncio.wait({self._writer_task}, timeout=2.0)
        if not self.ws.closed:
            await self._close_socket(1001, info.encode()[:120])
        if self._closers:
            await asyncio.wait(self._closers, timeout=5.0)
        await self.tasks.close()
        self.host.sessions.pop(self.id, None)
        self._log.info("session %s: closed (%s)", self.id, info)

    # --- dispatch -------------------------------------------------------------------------
    def _on_text(self, text: str) -> None:
        try:
            message, payload = m.parse_frame(text)
        except m.ProtocolError as exc:
            self._fail_frame(None, str(exc))
            return
        handler = HANDLERS.get(message)
        if message in m.IGNORED:
            self._log.debug("session %s: %s ignored", self.id, message)
        elif message in m.SIP:
            self._log.info("session %s: SIP message %s ignored (SIP is not supported)", self.id, message)
        elif handler is None:
            self._fail_frame(message, f"unknown message {message!r}")
        elif not self.established and message not in m.BEFORE_CONNECTION:
            self._refuse_before_connection(message, payload)
        else:
            handler(self, payload)

    def _fail_frame(self, method: str | None, info: str) -> None:
        self._log.warning("session %s: bad frame: %s", self.id, info)
        self.send("fail", {"apiMethod": method or "unknown", "info": info})

    def _refuse_before_connection(self, message: str, payload: Any) -> None:
        msid = m.text_field(payload, "mediaSessionId")
        if message in ("publishStream", "playStream") and msid:
            self.send(
                "notifyStreamStatusEvent",
                {
                    "mediaSessionId": msid,
                    "name": m.text_field(payload, "name") or "",
                    "status": m.FAILED,
                    "info": m.SESSION_NOT_READY,
                },
            )
        self._fail_frame(message, f"{message} before 'connection': {m.SESSION_NOT_READY}")

    def _on_connection(self, payload: Any) -> None:
        if self.established or self._connecting:
            self._log.info("session %s: repeated connection ignored", self.id)
            return
        obj = payload if isinstance(payload, dict) else {}
        self.app_key = str(obj.get("appKey") or "defaultApp")
        if self.host.access.active:  # a token or the connect hook to check first
            self._connecting = True
            self.tasks.spawn(self._admit_connection(obj), "connection")
        else:
            self._establish(obj)

    async def _admit_connection(self, obj: dict[str, Any]) -> None:
        """Check the token and the ``connect`` hook; a refusal fails the session and closes it."""
        try:
            self.grant = await admission.connect(self, obj)
        except AccessDenied:
            fail = {"apiMethod": "ConnectionStatusEvent", "status": m.FAILED, "info": m.RESTRICTED_ACCESS}
            self.send("fail", fail)
            await self.close(m.RESTRICTED_ACCESS)
            return
        self._establish(obj)

    def _establish(self, obj: dict[str, Any]) -> None:
        self.established = True
        reply: dict[str, Any] = {
            k: obj[k]
            for k in (
                "appKey",
                "mediaProviders",
                "clientVersion",
                "clientOSVersion",
                "clientBrowserVersion",
                "msePacketizationVersion",
                "custom",
            )
            if k in obj
        }
        reply.update(
            nodeId=self.host.signaling.node_id,
            sessionId=self.id,
            authToken=str(uuid.uuid4()),
            useWsTunnel=False,
            useWsTunnelPacketization2=False,
            useBase64BinaryEncoding=False,
            status="ESTABLISHED",
        )
        self.send("getUserData", reply)

    def _on_pong(self, payload: Any) -> None:
        self._missed_pongs = 0

    def _on_ping(self, payload: Any) -> None:
        self.send("pong")

    # --- publish / play -------------------------------------------------------------------
    def _new_handle(self, payload: Any, published: bool) -> MediaHandle | None:
        msid = m.text_field(payload, "mediaSessionId")
        name = m.text_field(payload, "name") or ""
        if msid is None:
            self._fail_frame("publishStream" if published else "playStream", m.MEDIASESSION_ID_NULL)
            return None
        if msid in self.handles:
            self._status(msid, name, published, m.FAILED, m.MEDIASESSION_ID_IN_USE)
            return None
        if not name:
            self._status(msid, name, published, m.FAILED, "Stream name is empty")
            return None
        cap = self.host.signaling.max_streams_per_session
        if cap and len(self.handles) >= cap:
            self._status(msid, name, published, m.FAILED, m.TOO_MANY_STREAMS)
            return None
        peer_cls = WebRtcPublisher if published else WebRtcPlayer
        peer = peer_cls(self.host.media, f"{'publish' if published else 'play'} {name!r} {msid}")
        handle = MediaHandle(id=msid, name=name, published=published, peer=peer, session=self)
        self.handles[msid] = handle
        self.host.streams.sessions.add(handle)
        return handle

    def _on_publishStream(self, payload: Any) -> None:
        handle = self._new_handle(payload, True)
        if handle is not None:
            rtmp_url = m.text_field(payload, "rtmpUrl")
            task = self._publish(handle, payload, rtmp_url)
            handle.task = self.tasks.spawn(task, f"publish:{handle.id}")

    def _on_playStream(self, payload: Any) -> None:
        handle = self._new_handle(payload, False)
        if handle is not None:
            handle.task = self.tasks.spawn(self._play(handle, payload), f"play:{handle.id}")

    def _answer(self, h: MediaHandle, offer: Any) -> Answer:
        return Answer(
            offer if isinstance(offer, str) else "", lambda sdp: self.send("setRemoteSDP", h.id, sdp)
        )

    async def _admit(self, h: MediaHandle, payload: Any) -> None:
        """Access control of a publish/play (its token, the hook); raises AccessDenied."""
        access = self.host.access
        if access.active:
            h.grant = await admission.admit(self, h, payload)
            access.admitted(h.id, h.grant)

    async def _publish(self, h: MediaHandle, payload: Any, rtmp_url: str | None = None) -> None:
        peer = h.peer
        assert isinstance(peer, WebRtcPublisher)
        peer.on_end = lambda reason: self._end(h, m.UNPUBLISHED, END_INFO[reason])
        peer.on_lost = lambda clean: self._lost(h, clean)
        try:
            await self._admit(h, payload)
            h.stream = stream = await self.host.streams.open(h.name, peer)
            await ingest.publish(stream, peer, self._answer(h, payload.get("sdp")))
        except MediaError as exc:
            self._log.warning("session %s: publish %r failed: %s", self.id, h.name, exc)
            self._end(h, m.FAILED, error_info(exc))
            return
        h.status = m.PUBLISHING
        self._log.info(
            "session %s: publishing %r (%s)", self.id, h.name, ", ".join(t.mime_type for t in peer.tracks)
        )
        self._status_of(h)
        if rtmp_url and self.host.republish is not None:
            try:
                self.host.republish(h.name, rtmp_url)
            except Exception as exc:  # a refusal (bad URL, already pushed) must not end the publish
                self._log.warning("session %s: cannot republish %r to %s: %s", self.id, h.name, rtmp_url, exc)

    async def _play(self, h: MediaHandle, payload: Any) -> None:
        peer = h.peer
        assert isinstance(peer, WebRtcPlayer)
        peer.on_end = lambda reason: self._end(h, _play_status(reason), END_INFO[reason])
        peer.on_lost = lambda clean: self._lost(h, clean)
        peer.on_event = lambda event: self.send("notifyStreamEvent", {**event, "mediaSessionId": h.id})
        try:
            await self._admit(h, payload)
            h.stream = stream = await self.host.streams.acquire(h.name, self.host.media.connect_timeout)
            await egress.play(stream, peer, self._answer(h, payload.get("sdp")))
        except MediaError as exc:
            self._log.warning("session %s: play %r failed: %s", self.id, h.name, exc)
            ended = isinstance(exc, StreamEnded)
            self._end(h, m.STOPPED if ended else m.FAILED, error_info(exc))
            return
        h.status = m.PLAYING
        self._log.info("session %s: playing %r", self.id, h.name)
        self._status_of(h)

    def _lost(self, h: MediaHandle, clean: bool) -> None:
        """The media connection ended by itself: cleanly (the remote closed it) or not."""
        if clean:
            self._end(h, m.UNPUBLISHED if h.published else m.STOPPED, m.STOPPED_BY_USER)
        else:
            self._end(h, m.FAILED, m.FAILED_BY_ICE_KEEP_ALIVE)

    def _end(self, h: MediaHandle, status: str, info: str) -> None:
        """Finish a publish/play: tell the client, detach from the stream, close the peer."""
        if h.ended:
            return
        h.status = status
        self.handles.pop(h.id, None)
        self.host.streams.sessions.discard(h)
        self._status_of(h, info)
        if h.task is not None and h.task is not asyncio.current_task():
            h.task.cancel()
        if h.stream is not None:
            h.stream.leave(h.peer)
        self._log.info(
            "session %s: %s %r %s (%s)", self.id, "publish" if h.published else "play", h.name, status, info
        )
        closer = self.tasks.spawn(h.peer.close(), f"close:{h.id}")
        self._closers.add(closer)
        closer.add_done_callback(self._closers.discard)

    def _status(
        self, msid: str, name: str, published: bool, status: str, info: str = "", **extra: Any
    ) -> None:
        self.send(
            "notifyStreamStatusEvent",
            {
                "mediaSessionId": msid,
                "name": name,
                "published": published,
                "status": status,
                "info": info,
                "sessionId": self.id,
                "mediaProvider": "WebRTC",
                **extra,
            },
        )

    def _status_of(self, h: MediaHandle, info: str = "") -> None:
        event = {**h.fields(), **h.states, "info": info}
        self.send("notifyStreamStatusEvent", event)
        self.host.access.notify_status(event, h.grant or self.grant)

    def _stop(self, payload: Any, published: bool) -> None:
        msid = m.text_field(payload, "mediaSessionId")
        h = self.handles.get(msid) if msid else None
        if h is None or h.published != published:
            return  # unknown or finished: a silent no-op, as the SDK expects
        self._end(h, m.UNPUBLISHED if published else m.STOPPED, m.STOPPED_BY_USER)

    def _on_unPublishStream(self, payload: Any) -> None:
        self._stop(payload, True)

    def _on_stopStream(self, payload: Any) -> None:
        self._stop(payload, False)

    # --- small requests -------------------------------------------------------------------
    def _on_availableStream(self, payload: Any) -> None:
        msid = m.text_field(payload, "mediaSessionId") or ""
        name = m.text_field(payload, "name") or ""
        if not self.host.access.may_query(name, self.grant):  # the same answer, live or not
            self.send("availableStream", {"id": msid, "status": "false", "info": m.RESTRICTED_ACCESS})
            return
        try:
            self.host.streams.get_live(name)
        except MediaError as exc:
            self.send("availableStream", {"id": msid, "status": "false", "info": error_info(exc)})
        else:
            self.send("availableStream", {"id": msid, "status": "true"})

    def _on_sendStreamEvent(self, payload: Any) -> None:
        msid = m.text_field(payload, "mediaSessionId")
        event_type = m.text_field(payload, "type")
        h = self.handles.get(msid) if msid else None
        if h is None or not h.published or h.stream is None or event_type is None:
            self._fail_frame(
                "sendStreamEvent", "sendStreamEvent needs the mediaSessionId of a published stream"
            )
            return
        if event_type in m.MUTE_EVENTS:
            key, muted = m.MUTE_EVENTS[event_type]
            h.states[key] = {"muted": muted}
        event: dict[str, Any] = {"streamName": h.name, "type": event_type}
        if isinstance(payload, dict) and "payload" in payload:
            event["payload"] = payload["payload"]
        h.stream.notify_event(event)

    def _on_snapshot(self, payload: Any) -> None:
        msid = m.text_field(payload, "mediaSessionId") or ""
        self.send(
            "notifyStreamEvent",
            {
                "mediaSessionId": msid,
                "type": "snapshotFailed",
                "payload": {"info": "Snapshots are not supported: rtcdn does not decode media"},
            },
        )

    def _on_sendData(self, payload: Any) -> None:
        op = payload.get("operationId") if isinstance(payload, dict) else None
        self.send(
            "DataStatusEvent",
            {
                "operationId": op,
                "status": "FAILED",
                "info": "sendData is not supported (no REST hook backend)",
            },
        )

    def _on_call(self, payload: Any) -> None:
        call_id = payload.get("callId") if isinstance(payload, dict) else None
        self.send("finish", {"callId": call_id, "status": "FAILED", "info": "SIP calls are not supported"})


def _play_status(reason: EndReason) -> str:
    """A play the stream ended: STOPPED, but FAILED when the publisher went silent (hung) or the
    node the stream came from was lost."""
    return m.FAILED if reason in (EndReason.RTP_INACTIVE, EndReason.UPSTREAM_LOST) else m.STOPPED


HANDLERS: dict[str, Callable[[WcsSession, Any], None]] = {
    "connection": WcsSession._on_connection,
    "ping": WcsSession._on_ping,
    "pong": WcsSession._on_pong,
    "publishStream": WcsSession._on_publishStream,
    "playStream": WcsSession._on_playStream,
    "unPublishStream": WcsSession._on_unPublishStream,
    "stopStream": WcsSession._on_stopStream,
    "availableStream": WcsSession._on_availableStream,
    "sendStreamEvent": WcsSession._on_sendStreamEvent,
    "snapshot": WcsSession._on_snapshot,
    "sendData": WcsSession._on_sendData,
    "call": WcsSession._on_call,
}
"The client messages rtcdn answers (the rest of the table is in :mod:`.messages`)."
