"""Relays (``/rest-api/pull/*``): push a local stream to another server, or pull one in.

A push relay is a *player* of the local :class:`~rtcdn.stream.Stream` whose peer publishes on the
remote server; a pull relay is the *publisher* of a local Stream whose peer plays on the remote.
Both reuse the WebRTC peers of the browser path, so media takes the same passthrough path.

Lifecycle of a :class:`Relay`: NEW → PENDING (connecting, negotiating) → PUBLISHING (push) /
PLAYING (pull) → a terminal status (UNPUBLISHED, STOPPED, FAILED) with ``info``. A finished
relay keeps its record (so ``find_all`` shows why it ended) until it is terminated or replaced.

With token auth on, every relay's ``connection`` carries a fresh service token in its ``custom``
(``{"token": JWT}``): a remote node with the same keys admits it. The token also goes in the
upgrade's ``Authorization: Bearer``, which spares relays the remote's per-address caps.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..stream import EndReason, MediaError, MediaRecord, MediaState, Stream, StreamManager
from ..tasks import TaskSet
from ..wcs import messages as m
from ..wcs.client import AgentError, WcsAgent, agent_url
from ..wcs.records import END_INFO, error_info
from ..webrtc import MediaConfig, Offer, WebRtcPlayer, WebRtcPublisher, egress, ingest

logger = logging.getLogger(__name__)

NEGOTIATION_TIMEOUT = 15.0
"Seconds for the remote's answer and status, on top of the agent's connect timeout."
MAX_FINISHED = 200
"Finished relay records kept for inspection; the oldest go first."

_TERMINAL = m.TERMINAL_STATUSES


class RelayError(Exception):
    """A relay request refused: ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(eq=False)
class Relay:
    """One relay and its record (the fields of WCS's ``/pull/find_all``)."""

    direction: str
    "``push`` or ``pull``."
    uri: str
    local_stream_name: str
    remote_stream_name: str
    local_media_session_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    remote_media_session_id: str | None = None
    status: str = "NEW"
    info: str = ""
    has_audio: bool = False
    has_video: bool = False
    created: float = field(default_factory=time.time)
    task: asyncio.Task[None] | None = None
    peer: WebRtcPlayer | WebRtcPublisher | None = None
    agent: WcsAgent | None = None
    stream: Stream | None = None
    on_end: Callable[[EndReason], None] | None = None
    on_terminate: Callable[[], None] | None = None

    @property
    def finished(self) -> bool:
        return self.status in _TERMINAL

    def record(self) -> dict[str, Any]:
        return {
            "localMediaSessionId": self.local_media_session_id,
            "remoteMediaSessionId": self.remote_media_session_id,
            "localStreamName": self.local_stream_name,
            "remoteStreamName": self.remote_stream_name,
            "uri": self.uri,
            "status": self.status,
            "info": self.info,
            "hasAudio": self.has_audio,
            "hasVideo": self.has_video,
            "direction": self.direction,
        }

    # the MediaSession protocol of rtcdn.stream: a pull publishes a local stream, a push plays one
    @property
    def id(self) -> str:
        return self.local_media_session_id

    def describe(self) -> MediaRecord:
        state = _STATES.get(self.status, MediaState.PENDING)
        return MediaRecord(
            id=self.local_media_session_id,
            name=self.local_stream_name,
            published=self.direction == "pull",
            protocol=f"relay-{self.direction}",
            state=state,
            session=f"relay:{self.direction}:{self.uri}",
            app="relay",
            created=self.created,
            info=self.info,
        )

    def terminate(self, reason: EndReason) -> None:
        if self.on_terminate is not None:
            self.on_terminate()

    # the Publisher protocol of rtcdn.stream, for pull relays
    def request_keyframe(self) -> None:
        if isinstance(self.peer, WebRtcPublisher):
            self.peer.request_keyframe()

    def on_stream_end(self, reason: EndReason) -> None:
        if self.on_end is not None:
            self.on_end(reason)


_STATES = {
    m.PUBLISHING: MediaState.PUBLISHING,
    m.PLAYING: MediaState.PLAYING,
    m.UNPUBLISHED: MediaState.ENDED,
    m.STOPPED: MediaState.ENDED,
    m.FAILED: MediaState.FAILED,
}


class RelayManager:
    """Every relay of a server; owned by the Server, which closes it on shutdown."""

    def __init__(
        self,
        streams: StreamManager,
        media: MediaConfig,
        use_ssl: bool,
        ssl_context: ssl.SSLContext | bool,
        local_address: str | None = None,
        service_token: Callable[[], str | None] | None = None,
        token_name: str = "token",
    ) -> None:
        """``local_address``: where outgoing agent connections come from (the server's bind address);
        ``service_token()``: a fresh token for the remote (None: none), sent as ``custom[token_name]``."""
        self._streams = streams
        self._service_token = service_token
        self._token_name = token_name
        self._media = media
        self._use_ssl = use_ssl
        self._ssl = ssl_context
        self._local_address = local_address
        self._relays: dict[str, Relay] = {}
        self._tasks = TaskSet("relays")
        self._releases: set[asyncio.Task[None]] = set()

    def __iter__(self) -> Iterator[Relay]:
        return iter(list(self._relays.values()))

    def get(self, local_media_session_id: str) -> Relay | None:
        return self._relays.get(local_media_session_id)

    def _check_duplicate(self, relay: Relay) -> None:
        for other in self._relays.values():
            same = (other.direction, other.uri, other.local_stream_name, other.remote_stream_name) == (
                relay.direction,
                relay.uri,
                relay.local_stream_name,
                relay.remote_stream_name,
            )
            if same and not other.finished:
                raise RelayError(
                    409, f"relay already exists: {other.local_media_session_id} ({other.status})"
                )
            if same:
                del self._relays[other.local_media_session_id]
                break

    def _start(self, relay: Relay) -> Relay:
        try:  # validate early: a bad URI is a 400, not a FAILED relay
            agent_url(relay.uri, self._use_ssl)
        except AgentError as exc:
            raise RelayError(400, exc.info) from None
        self._relays[relay.local_media_session_id] = relay
        relay.on_terminate = lambda: self.terminate(relay)
        self._streams.sessions.add(relay)
        run = self._run_push if relay.direction == "push" else self._run_pull
        relay.task = self._tasks.spawn(run(relay), f"{relay.direction}:{relay.local_stream_name}")
        logger.info(
            "relay %s %s: %r → %s as %r",
            relay.direction,
            relay.local_media_session_id,
            relay.local_stream_name,
            relay.uri,
            relay.remote_stream_name,
        )
        self._trim()
        return relay

    def _trim(self) -> None:
        finished = [r for r in self._relays.values() if r.finished]
        for relay in finished[: max(0, len(finished) - MAX_FINISHED)]:
            del self._relays[relay.local_media_session_id]

    def push(self, uri: str, local_name: str, remote_name: str) -> Relay:
        """Start relaying a local live stream to ``uri`` (404 if it is not live, 409 if running)."""
        try:
            self._streams.get_live(local_name)
        except MediaError:
            raise RelayError(404, f"local stream {local_name!r} is not published") from None
        relay = Relay("push", uri, local_name, remote_name)
        self._check_duplicate(relay)
        return self._start(relay)

    def pull(self, uri: str, remote_name: str, local_name: str) -> Relay:
        """Bring ``remote_name`` from ``uri`` in as the local stream ``local_name`` (409 if taken)."""
        relay = Relay("pull", uri, local_name, remote_name)
        self._check_duplicate(relay)
        try:
            agent_url(uri, self._use_ssl)
        except AgentError as exc:
            raise RelayError(400, exc.info) from None
        if self._streams.find(local_name) is not None:
            raise RelayError(409, f"local stream name {local_name!r} is already in use")
        peer = WebRtcPublisher(
            self._media, f"pull {remote_name!r} from {uri} as {local_name!r}", offerer=True
        )
        relay.peer = peer
        relay.stream = self._streams.create(local_name, relay)
        relay.on_end = lambda reason: self._finish(relay, m.STOPPED, END_INFO[reason])
        peer.on_lost = lambda clean: self._lost(relay, clean)
        return self._start(relay)

    def terminate(self, relay: Relay) -> None:
        """End a relay on both sides (``Stopped by rest /terminate``); a finished one is removed."""
        if relay.finished:
            self._relays.pop(relay.local_media_session_id, None)
            return
        status = m.UNPUBLISHED if relay.direction == "push" else m.STOPPED
        self._finish(relay, status, m.STOPPED_BY_REST_TERMINATE)

    def _lost(self, relay: Relay, clean: bool) -> None:
        self._finish(relay, m.FAILED, "Remote closed the connection" if clean else m.FAILED_BY_ICE_KEEP_ALIVE)

    # --- running a relay ------------------------------------------------------------------
    async def _connect(self, relay: Relay) -> WcsAgent:
        relay.status = m.PENDING
        url = agent_url(relay.uri, self._use_ssl)
        ssl_arg: ssl.SSLContext | bool = self._ssl if url.startswith("wss:") else False
        token = self._service_token() if self._service_token is not None else None
        relay.agent = WcsAgent(
            url,
            ssl_arg,
            f"{relay.direction} {relay.local_stream_name!r}",
            self._local_address,
            custom={self._token_name: token} if token else None,
            headers={"Authorization": f"Bearer {token}"} if token else None,
        )
        await relay.agent.connect()
        return relay.agent

    def _exchange(self, relay: Relay, agent: WcsAgent, msid: str) -> Offer:
        """Our offer goes out in publishStream (push) or playStream (pull); the remote's
        setRemoteSDP is the answer."""

        async def exchange(offer: str) -> str:
            if relay.direction == "push":
                await agent.publish(
                    msid,
                    relay.remote_stream_name,
                    offer,
                    {"audio", "video"} & set(relay.stream.track_infos() if relay.stream is not None else ()),
                )
            else:
                await agent.play(msid, relay.remote_stream_name, offer)
            async with asyncio.timeout(NEGOTIATION_TIMEOUT):
                sdp = await self._next(agent, msid, "setRemoteSDP")
            relay.remote_media_session_id = msid
            return sdp

        return Offer(exchange)

    async def _next(self, agent: WcsAgent, msid: str, wanted: str) -> str:
        """Wait for the remote's ``setRemoteSDP`` (returns the SDP) or status ``wanted``."""
        queue = agent.watch(msid)
        while True:
            message, item = await queue.get()
            if message == "setRemoteSDP" and wanted == "setRemoteSDP":
                return str(item)
            if message == "notifyStreamStatusEvent":
                status = item.get("status")
                if status == wanted:
                    return str(status)
                if status in _TERMINAL:
                    raise AgentError(f"Remote {status}: {item.get('info') or 'no info'}")
            elif message == "closed":
                raise AgentError(f"Connection to {agent.url} lost: {item}")

    async def _watch_remote(self, relay: Relay, agent: WcsAgent, msid: str) -> None:
        """Until the relay ends: follow the remote's statuses for our stream."""
        queue = agent.watch(msid)
        while True:
            message, item = await queue.get()
            if message == "closed":
                self._finish(relay, m.FAILED, f"Connection to {agent.url} lost")
                return
            if message == "notifyStreamStatusEvent" and item.get("status") in _TERMINAL:
                remote = str(item.get("status"))
                # a pull ends normally when the remote's publisher stops; anything else the
                # remote ends (a push unpublished there, a shutdown) is a failure of the relay
                info = item.get("info")
                stopped = relay.direction == "pull" and remote == m.STOPPED and info != m.SERVER_SHUTDOWN
                status = m.STOPPED if stopped else m.FAILED
                self._finish(relay, status, f"Remote {remote}: {info or 'no info'}")
                return

    async def _run(
        self, relay: Relay, connect: Callable[[WcsAgent, str], Awaitable[None]], live: str
    ) -> None:
        """Connect to the remote, run ``connect`` (the adapter), wait for the remote's status
        ``live``, then follow the remote until the relay ends."""
        msid = str(uuid.uuid4())
        try:
            agent = await self._connect(relay)
            await connect(agent, msid)
            async with asyncio.timeout(NEGOTIATION_TIMEOUT):
                await self._next(agent, msid, live)
        except (AgentError, MediaError) as exc:
            self._finish(relay, m.FAILED, _info(exc))
            return
        except TimeoutError:
            self._finish(relay, m.FAILED, "Remote did not answer in time")
            return
        tracks = relay.stream.track_infos() if relay.stream is not None else {}
        relay.has_audio, relay.has_video = "audio" in tracks, "video" in tracks
        relay.status = live
        logger.info(
            "relay %s %s: %r %s %s as %r",
            relay.direction,
            relay.local_media_session_id,
            relay.local_stream_name,
            "live on" if relay.direction == "push" else "live from",
            relay.uri,
            relay.remote_stream_name,
        )
        await self._watch_remote(relay, agent, msid)

    async def _run_push(self, relay: Relay) -> None:
        async def connect(agent: WcsAgent, msid: str) -> None:
            stream = relay.stream = self._streams.get_live(relay.local_stream_name)
            peer = WebRtcPlayer(self._media, f"push {relay.local_stream_name!r} to {relay.uri}", offerer=True)
            relay.peer = peer
            peer.on_end = lambda reason: self._finish(relay, m.UNPUBLISHED, END_INFO[reason])
            peer.on_lost = lambda clean: self._lost(relay, clean)
            await egress.play(stream, peer, self._exchange(relay, agent, msid))

        await self._run(relay, connect, m.PUBLISHING)

    async def _run_pull(self, relay: Relay) -> None:
        assert relay.stream is not None
        try:  # a pulled-in stream is this node's to serve: its name is claimed like a publisher's
            await self._streams.claim(relay.stream)
        except MediaError as exc:
            self._finish(relay, m.FAILED, _info(exc))
            return

        async def connect(agent: WcsAgent, msid: str) -> None:
            assert isinstance(relay.peer, WebRtcPublisher) and relay.stream is not None
            await ingest.publish(relay.stream, relay.peer, self._exchange(relay, agent, msid))

        await self._run(relay, connect, m.PLAYING)

    def _finish(self, relay: Relay, status: str, info: str) -> None:
        """End a relay (idempotent): detach from the local stream, tell the remote, free everything."""
        if relay.finished:
            return
        relay.status, relay.info = status, info
        self._streams.sessions.discard(relay)
        logger.info("relay %s %s: %s (%s)", relay.direction, relay.local_media_session_id, status, info)
        if relay.stream is not None and relay.direction == "pull":
            # the players of a pulled stream hear whether its source ended it or the link failed
            relay.stream.close(EndReason.UPSTREAM_LOST if status == m.FAILED else EndReason.PUBLISHER_STOP)
        elif relay.stream is not None:
            relay.stream.leave(relay.peer)
        if relay.task is not None and relay.task is not asyncio.current_task():
            relay.task.cancel()
        release = self._tasks.spawn(self._release(relay), f"release:{relay.local_media_session_id}")
        self._releases.add(release)
        release.add_done_callback(self._releases.discard)

    async def _release(self, relay: Relay) -> None:
        agent, peer = relay.agent, relay.peer
        if agent is not None and relay.remote_media_session_id and not agent.closed.is_set():
            stop = "unPublishStream" if relay.direction == "push" else "stopStream"
            try:
                await agent.send(
                    stop, {"mediaSessionId": relay.remote_media_session_id, "name": relay.remote_stream_name}
                )
            except AgentError:
                pass
        if peer is not None:
            await peer.close()
        if agent is not None:
            await agent.close()

    async def close(self) -> None:
        """Terminate every relay (the remotes are told), wait for their release, stop tasks."""
        for relay in list(self._relays.values()):
            if not relay.finished:
                self.terminate(relay)
        if self._releases:
            await asyncio.wait(self._releases, timeout=5.0)
        await self._tasks.close()


def _info(exc: AgentError | MediaError) -> str:
    return exc.info if isinstance(exc, AgentError) else error_info(exc)
