"""Republishing (WCS ``/rest-api/push/*``, ``rtmpUrl`` in ``publishStream``, CDN ``rtmp`` distribution):
a live stream pushed to another RTMP server (YouTube-like services, nginx-rtmp, another rtcdn).

A :class:`Push` is an :class:`~.egress.RtmpEgress` of the local stream whose output is an
:class:`~.client.RtmpClient` publishing on the remote. To a server that announces Enhanced RTMP
FourCCs in its ``connect`` answer (another rtcdn) VP8/VP9/Opus travel as they are; to any other
H.264 + AAC (Opus transcoded), and a VP8/VP9 stream is refused with a clear ``info``.

Lifecycle of a push: NEW → PENDING (connecting) → PUBLISHING → ended: UNPUBLISHED (the local
stream ended, or terminate) or FAILED (with ``info`` saying why). With ``retry`` (REST pushes) a
push whose remote drops or refuses goes back to PENDING and tries again after 1, 2, 4, ... 30 s
while the stream lives; its ``info`` keeps the last failure. Without (CDN pushes) it fails at once
and its owner decides.

A push started with ``sign=True`` (the CDN's, to nodes of the cluster) carries a fresh service token
in its stream key's query (``.../live/NAME?token=JWT``) on every attempt; pushes to third-party
servers never do.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from ..stream import EndReason, MediaError, MediaRecord, MediaState, StreamManager
from ..tasks import TaskSet
from .client import RtmpClient
from .commands import Capabilities, parse_url
from .egress import RtmpEgress
from .errors import RtmpError

logger = logging.getLogger(__name__)

BACKOFF = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
MAX_FINISHED = 200
FOURCCS = ("avc1", "vp08", "vp09", "Opus", "mp4a")
"What a push offers in ``fourCcList``; the remote's answer decides what is sent."
_TERMINAL = ("UNPUBLISHED", "FAILED")


class PushError(Exception):
    """A push refused; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(eq=False)
class Push:
    stream_name: str
    rtmp_url: str
    "As given (WCS: the app URL, the stream name is appended unless ``full_url``)."
    target: str
    "The URL actually published to."
    retry: bool = True
    options: dict[str, Any] = field(default_factory=dict)
    sign: bool = False
    "Carry a service token (pushes to nodes of the cluster)."
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    status: str = "NEW"
    info: str = ""
    created: float = field(default_factory=time.time)
    attempts: int = 0
    task: asyncio.Task[None] | None = None
    egress: RtmpEgress | None = None
    client: RtmpClient | None = None
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def finished(self) -> bool:
        return self.status in _TERMINAL

    @property
    def local_media_session_id(self) -> str:
        return self.id

    def record(self) -> dict[str, Any]:
        """WCS's ``/push/find`` fields (plus ``status``/``info``)."""
        return {
            "mediaSessionId": self.id,
            "streamName": self.stream_name,
            "rtmpUrl": self.rtmp_url,
            "status": self.status,
            "info": self.info,
            "width": 0,
            "height": 0,
            "muted": False,
            "soundEnabled": True,
            "options": self.options,
        }

    # MediaSession
    def describe(self) -> MediaRecord:
        state = {
            "PUBLISHING": MediaState.PLAYING,
            "FAILED": MediaState.FAILED,
            "UNPUBLISHED": MediaState.ENDED,
        }
        return MediaRecord(
            id=self.id,
            name=self.stream_name,
            published=False,
            protocol="rtmp-push",
            state=state.get(self.status, MediaState.PENDING),
            session=f"push:{self.target}",
            app="push",
            created=self.created,
            info=self.info,
            transport="RTMP",
        )

    def terminate(self, reason: EndReason) -> None:
        self._stop.set()


def target_url(rtmp_url: str, stream_name: str, full_url: bool) -> str:
    """The URL to publish to: WCS appends the stream name to ``rtmpUrl`` unless told it is full."""
    url = rtmp_url if full_url else f"{rtmp_url.rstrip('/')}/{stream_name}"
    try:
        target = parse_url(url)
    except RtmpError as exc:
        raise PushError(400, f"bad rtmpUrl: {exc}") from None
    if not target.stream:
        raise PushError(400, f"rtmpUrl {url!r} names no stream")
    return url


class PushManager:
    """Every push of a node; owned by the Server, closed on shutdown. ``service_token()``: a fresh
    token for the pushes started with ``sign`` (None: none), sent as the query parameter
    ``token_name``."""

    def __init__(
        self,
        streams: StreamManager,
        transcode_video: bool = False,
        service_token: Callable[[], str | None] | None = None,
        token_name: str = "token",
    ) -> None:
        self._streams = streams
        self._transcode_video = transcode_video
        self._service_token = service_token
        self._token_name = token_name
        self._pushes: dict[str, Push] = {}
        self._tasks = TaskSet("rtmp-push")

    def __iter__(self) -> Iterator[Push]:
        return iter(list(self._pushes.values()))

    def startup(
        self,
        stream_name: str,
        rtmp_url: str,
        full_url: bool = False,
        retry: bool = True,
        options: dict[str, Any] | None = None,
        sign: bool = False,
    ) -> Push:
        """Start pushing a live local stream (400 bad URL, 404 not live, 409 already pushed there);
        ``sign``: with a service token (to a node of the cluster only)."""
        target = target_url(rtmp_url, stream_name, full_url)
        try:
            self._streams.get_live(stream_name)
        except MediaError:
            raise PushError(404, f"stream {stream_name!r} is not published") from None
        for other in self._pushes.values():
            if other.stream_name == stream_name and other.target == target and not other.finished:
                raise PushError(409, f"stream {stream_name!r} is already pushed to {target} ({other.id})")
        push = Push(stream_name, rtmp_url, target, retry, options or {}, sign)
        self._pushes[push.id] = push
        self._streams.sessions.add(push)
        push.task = self._tasks.spawn(self._run(push), f"push:{stream_name}")
        logger.info("push %s: %r → %s", push.id, stream_name, target)
        self._trim()
        return push

    def terminate(self, push: Push) -> None:
        if push.finished:
            self._pushes.pop(push.id, None)
        else:
            push.terminate(EndReason.TERMINATED)

    def _trim(self) -> None:
        finished = [p for p in self._pushes.values() if p.finished]
        for push in finished[: max(0, len(finished) - MAX_FINISHED)]:
            del self._pushes[push.id]

    async def _run(self, push: Push) -> None:
        try:
            while not push._stop.is_set():
                failure = await self._attempt(push)
                if failure is None:
                    break
                push.info = failure
                if not push.retry:
                    self._finish(push, "FAILED", failure)
                    return
                delay = BACKOFF[min(push.attempts, len(BACKOFF)) - 1]
                push.status = "PENDING"
                logger.info("push %s: %s; again in %.0f s", push.id, failure, delay)
                try:  # asyncio.timeout: on 3.11 wait_for loses a cancel racing the stop event
                    async with asyncio.timeout(delay):
                        await push._stop.wait()
                except TimeoutError:
                    pass
            if not push.finished:
                self._finish(push, "UNPUBLISHED", push.info or "Stopped by rest /terminate")
        finally:
            self._streams.sessions.discard(push)

    async def _attempt(self, push: Push) -> str | None:
        """One connection: None when the push is over for good, else why this attempt failed."""
        try:
            stream = self._streams.get_live(push.stream_name)
        except MediaError:
            self._finish(push, "UNPUBLISHED", "Stopped by publisher stop")
            return None
        push.attempts += 1
        push.status = "PENDING"
        client = push.client = RtmpClient(fourcc_list=FOURCCS)
        lost: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        def settle(reason: str) -> None:
            if not lost.done():
                lost.set_result(reason)

        client.on_close = settle
        try:
            try:
                await client.connect(self._signed(push))
                await client.publish()
            except RtmpError as exc:
                return f"{type(exc).__name__}: {exc}"
            caps = Capabilities.of(client.server_properties).fourccs
            try:
                egress = push.egress = RtmpEgress(
                    stream,
                    client,
                    caps,
                    push.target,
                    "rtmp-push",
                    on_end=lambda _, r: settle(f"stream: {r.value}"),
                )
            except MediaError as exc:
                self._finish(push, "FAILED", str(exc))
                return None
            try:
                stream.add_player(egress)
            except MediaError as exc:  # the stream filled up (max_players_per_stream) or ended meanwhile
                egress.end(MediaState.FAILED, EndReason.TERMINATED, str(exc))
                await egress.close()
                self._finish(push, "FAILED", f"{type(exc).__name__}: {exc}")
                return None
            push.status, push.attempts = "PUBLISHING", 0
            logger.info("push %s: publishing %r on %s", push.id, push.stream_name, push.target)
            stop = asyncio.ensure_future(push._stop.wait())
            try:
                waiters: set[asyncio.Future[Any]] = {lost, stop}
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stop.cancel()
            reason = lost.result() if lost.done() else "Stopped by rest /terminate"
            egress.end(MediaState.ENDED, EndReason.TERMINATED, reason)
            await egress.close()
            if push._stop.is_set() or reason.startswith("stream:") or stream.closed:
                info = "Stopped by publisher stop" if stream.closed else "Stopped by rest /terminate"
                self._finish(push, "UNPUBLISHED", info)
                return None
            return f"connection lost: {reason}"
        finally:
            await client.close()

    def _signed(self, push: Push) -> str:
        """The URL of an attempt: a signed push's gets a fresh service token in its query."""
        token = self._service_token() if push.sign and self._service_token is not None else None
        if token is None:
            return push.target
        return f"{push.target}{'&' if '?' in push.target else '?'}{urlencode({self._token_name: token})}"

    def _finish(self, push: Push, status: str, info: str) -> None:
        if push.finished:
            return
        push.status, push.info = status, info
        self._streams.sessions.discard(push)
        logger.info("push %s: %s (%s)", push.id, status, info)

    async def close(self) -> None:
        for push in list(self._pushes.values()):
            push.terminate(EndReason.SHUTDOWN)
        await self._tasks.wait_idle(timeout=5.0)
        await self._tasks.close()
