"""The WHIP and WHEP endpoints (``/whip/{name}``, ``/whep/{name}``) and their resources.

* ``POST`` an SDP offer (``application/sdp``) → ``201 Created``, ``Location`` (the resource),
  ``ETag``, the SDP answer. Candidates are all in the answer (no server-side trickle).
* ``PATCH`` the resource with ``application/trickle-ice-sdpfrag``: trickled candidates → ``204``;
  an ICE restart (``If-Match: *`` or a new ufrag) → ``422``, aiortc cannot restart ICE.
* ``DELETE`` the resource → ``200`` (an explicit ``Content-Length: 0``; ffmpeg reads the body).
* ``OPTIONS`` → ``204`` with ``Accept-Post``; CORS on every answer; ``GET`` → ``204``.
* Errors: a status code and a one-line text reason (404 unknown stream, 409 name taken, 400 bad
  SDP, 422 no common codec, 415 wrong content type, 401/403 refused by the authorization hook: no
  ``Authorization: Bearer`` token / a token that does not do, 503 the stream has all the players
  ``max_players_per_stream`` allows).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from ..stream import EndReason, MediaError, MediaState, StreamManager
from ..tasks import TaskSet
from ..webrtc import Answer, MediaConfig, WebRtcPlayer, WebRtcPublisher, egress, ingest
from .resource import WhipResource

logger = logging.getLogger(__name__)

MAX_SDP_BYTES = 64 * 1024
MAX_GONE = 1024
"Ended resources remembered so that a late DELETE is still a success."
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, PATCH, DELETE, GET, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, Authorization, If-Match",
    "Access-Control-Expose-Headers": "Location, ETag, Link, Accept-Post, Accept-Patch",
    "Access-Control-Max-Age": "86400",
}

Authorize = Callable[[str | None, str, str, str], Awaitable[bool]]
"""``authorize(bearer_token, action, stream_name, remote_address)`` with action ``publish`` or
``play``: may the request go on? (The Server gives :meth:`rtcdn.access.AccessControl.bearer`: the
JWT and the REST hooks; the default allows everyone.)"""


ClientOf = Callable[[str, Sequence[str]], str]
"``client_of(peer, x_forwarded_for_headers)``: the client's address (:mod:`rtcdn.access.forwarded`)."


def peer_is_client(peer: str, forwarded_for: Sequence[str]) -> str:
    return peer


async def allow_all(token: str | None, action: str, name: str, remote: str) -> bool:
    return True


def _error(status: int, reason: str) -> web.Response:
    return web.Response(status=status, text=reason + "\n", headers=CORS)


class WhipFrontEnd:
    """Every WHIP/WHEP resource of a node. Lifecycle: ``add_routes`` mounts the endpoints,
    ``close`` ends every resource and waits for their peers to close."""

    def __init__(
        self,
        streams: StreamManager,
        media: MediaConfig,
        authorize: Authorize = allow_all,
        ice_servers: Sequence[str] = (),
        client_of: ClientOf = peer_is_client,
    ) -> None:
        """``ice_servers``: ``URL`` or ``URL|username|credential`` entries (the ``ice_servers`` key),
        sent to clients as ``Link: <URL>; rel="ice-server"`` headers on the 201 and on OPTIONS."""
        self.streams = streams
        self.media = media
        self.authorize = authorize
        self.client_of = client_of
        self.links = [_link(entry) for entry in ice_servers]
        self.resources: dict[str, WhipResource] = {}
        self._gone: OrderedDict[str, str] = OrderedDict()
        """Paths of recently ended resources: a DELETE that comes after the end (whip-whep closes its
        peer connection before it DELETEs) still gets 200."""
        self._tasks = TaskSet("whip")
        self._closers: set[asyncio.Task[None]] = set()

    def add_routes(self, app: web.Application) -> None:
        for kind in ("whip", "whep"):
            app.router.add_route("OPTIONS", f"/{kind}/{{name}}", self.options)
            app.router.add_get(f"/{kind}/{{name}}", self.get)
            app.router.add_post(f"/{kind}/{{name}}", self.post)
            resource = f"/{kind}/{{name}}/{{id}}"
            app.router.add_route("OPTIONS", resource, self.options)
            app.router.add_get(resource, self.get)
            app.router.add_delete(resource, self.delete)
            app.router.add_patch(resource, self.patch)

    # --- endpoints ----------------------------------------------------------------------------
    async def options(self, request: web.Request) -> web.Response:
        headers = CIMultiDict({**CORS, "Accept-Post": "application/sdp"})
        if "Access-Control-Request-Method" not in request.headers:  # not on CORS preflights (§4.6)
            for link in self.links:
                headers.add("Link", link)
        return web.Response(status=204, headers=headers)

    async def get(self, request: web.Request) -> web.Response:
        return web.Response(status=204, headers=CORS)

    async def post(self, request: web.Request) -> web.Response:
        kind, name = request.path.split("/")[1], request.match_info["name"]
        if request.content_type != "application/sdp":
            return _error(415, f"expected Content-Type: application/sdp, got {request.content_type}")
        if (request.content_length or 0) > MAX_SDP_BYTES:
            return _error(413, f"SDP offer larger than {MAX_SDP_BYTES} bytes")
        raw = await _read_capped(request, MAX_SDP_BYTES)
        if raw is None:
            return _error(413, f"SDP offer larger than {MAX_SDP_BYTES} bytes")
        try:
            offer = raw.decode("utf-8")
        except UnicodeDecodeError:
            return _error(400, "SDP offer is not UTF-8")
        token = _bearer(request)
        remote = self.client_of(request.remote or "unknown", request.headers.getall("X-Forwarded-For", []))
        if not await self.authorize(token, "publish" if kind == "whip" else "play", name, remote):
            if token is None:  # RFC 6750 §3: say which scheme
                challenge = {**CORS, "WWW-Authenticate": 'Bearer realm="rtcdn"'}
                return web.Response(status=401, text="a Bearer token is needed\n", headers=challenge)
            return _error(403, "not authorized")
        peer_cls = WebRtcPublisher if kind == "whip" else WebRtcPlayer
        peer = peer_cls(self.media, f"{kind} {name!r} from {remote}")
        res = WhipResource(kind=kind, name=name, peer=peer, remote=remote, on_end=self._forget)
        answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        negotiation = Answer(offer, answer.set_result)
        run = self._publish if kind == "whip" else self._play
        res.task = self._tasks.spawn(run(res, negotiation), f"{kind}:{name}:{res.id}")
        self.resources[res.id] = res
        self.streams.sessions.add(res)
        waiters: set[asyncio.Future[Any]] = {answer, res.task}
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        if not answer.done():  # refused or failed before there was an answer
            answer.cancel()
            return _error(*_status_of(res))
        headers = CIMultiDict(
            {**CORS, "Location": res.path, "ETag": res.etag, "Content-Type": "application/sdp"}
        )
        for link in self.links:
            headers.add("Link", link)
        return web.Response(status=201, text=answer.result(), headers=headers)

    async def delete(self, request: web.Request) -> web.Response:
        res = self._resource(request)
        if res is not None:
            res.end(MediaState.ENDED, "DELETE by the client")
        elif self._gone.get(request.match_info["id"]) != request.path:
            return _error(404, "no such WHIP/WHEP resource")
        return web.Response(status=200, headers={**CORS, "Content-Length": "0"})

    async def patch(self, request: web.Request) -> web.Response:
        res = self._resource(request)
        if res is None:
            return _error(404, "no such WHIP/WHEP resource")
        if request.content_type != "application/trickle-ice-sdpfrag":
            return _error(415, "expected Content-Type: application/trickle-ice-sdpfrag")
        if_match = request.headers.get("If-Match")
        if if_match == "*":
            return _error(422, "ICE restart is not supported (aiortc cannot restart ICE)")
        if if_match is not None and if_match != res.etag:
            return _error(412, f"If-Match {if_match} does not match the resource's ETag {res.etag}")
        raw = await _read_capped(request, MAX_SDP_BYTES)
        if raw is None:
            return _error(413, f"SDP fragment larger than {MAX_SDP_BYTES} bytes")
        fragment = raw.decode("utf-8", "replace")
        ufrag = next(
            (ln.split(":", 1)[1].strip() for ln in fragment.splitlines() if ln.startswith("a=ice-ufrag:")),
            None,
        )
        if ufrag is not None and ufrag != res.peer.remote_ice_ufrag():
            return _error(422, "ICE restart is not supported (aiortc cannot restart ICE)")
        await res.peer.add_remote_candidates(fragment)
        return web.Response(status=204, headers=CORS)

    def _resource(self, request: web.Request) -> WhipResource | None:
        res = self.resources.get(request.match_info["id"])
        if res is None or res.name != request.match_info["name"] or res.kind != request.path.split("/")[1]:
            return None
        return res

    # --- media ------------------------------------------------------------------------------
    async def _publish(self, res: WhipResource, negotiation: Answer) -> None:
        peer = res.peer
        assert isinstance(peer, WebRtcPublisher)
        try:
            res.stream = stream = await self.streams.open(res.name, peer)
            await ingest.publish(stream, peer, negotiation)
        except MediaError as exc:
            res.fail(exc)
            return
        res.went_live(MediaState.PUBLISHING, ", ".join(t.mime_type for t in peer.tracks))

    async def _play(self, res: WhipResource, negotiation: Answer) -> None:
        peer = res.peer
        assert isinstance(peer, WebRtcPlayer)
        try:
            res.stream = stream = await self.streams.acquire(res.name, self.media.connect_timeout)
            await egress.play(stream, peer, negotiation)
        except MediaError as exc:
            res.fail(exc)
            return
        res.went_live(MediaState.PLAYING, "")

    def _forget(self, res: WhipResource, info: str) -> None:
        self.resources.pop(res.id, None)
        self._gone[res.id] = res.path
        while len(self._gone) > MAX_GONE:
            self._gone.popitem(last=False)
        self.streams.sessions.discard(res)
        closer = self._tasks.spawn(res.peer.close(), f"close:{res.id}")
        self._closers.add(closer)
        closer.add_done_callback(self._closers.discard)

    async def close(self) -> None:
        for res in list(self.resources.values()):
            res.terminate(EndReason.SHUTDOWN)
        if self._closers:
            await asyncio.wait(self._closers, timeout=5.0)
        await self._tasks.close()


async def _read_capped(request: web.Request, limit: int) -> bytes | None:
    """The whole body (a single ``read(n)`` may return only part of it), or None past ``limit``."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(limit + 1 - size):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return None
    return b"".join(chunks)


def _link(entry: str) -> str:
    """An ``ice_servers`` entry as an RFC 9725 §4.6 ``Link`` header value."""
    url, *creds = entry.split("|")
    link = f'<{url}>; rel="ice-server"'
    if len(creds) == 2:
        link += f'; username="{creds[0]}"; credential="{creds[1]}"; credential-type="password"'
    return link


def _bearer(request: web.Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    scheme, _, token = auth.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _status_of(res: WhipResource) -> tuple[int, str]:
    """The HTTP answer for a resource that failed before its SDP answer."""
    if res.error is not None:
        return res.error.http_status, f"{type(res.error).__name__}: {res.error}"
    task = res.task
    if task is not None and task.done() and not task.cancelled() and task.exception() is not None:
        logger.error("%s %r: crashed", res.kind, res.name, exc_info=task.exception())
    return 500, res.info or "internal error"
