"""RestHooks: the WCS REST hooks, POSTs of JSON to the application backend (``rest_hooks_url``).

* Blocking methods (:meth:`RestHooks.ask`): ``connect``, ``publishStream``, ``playStream``. A 2xx
  answer allows. Any other answer of the backend (4xx, 3xx: redirects are not followed) refuses.
  A backend that cannot answer (a timeout after ``rest_request_timeout``, a connection error, a 5xx,
  a body over :data:`MAX_BODY_BYTES`) is handled by ``rest_on_error``: ``LOG`` allows and logs,
  ``FAIL`` refuses.
* Notifications (:meth:`RestHooks.notify`): ``StreamStatusEvent``. Queued (at most
  :data:`QUEUE_SIZE`, then dropped and counted) and posted by :data:`WORKERS` worker tasks, so
  signaling never waits on the backend.
* ``StreamKeepAliveEvent``: every ``streaming_sessions_keep_alive_interval`` ms for each publish and
  play of a client (WCS, WHIP/WHEP, RTMP) that is live; an answer that refuses (as above) stops it
  (``Terminated by keep-alive``). Media sessions admitted with a service token are not asked.
* Every POST carries ``Authorization: WCS <hex HMAC-MD5 of the body>`` with ``rest_hook_send_hash``
  (WCS's header and hash); at most :data:`CONCURRENCY` POSTs are in flight, the rest wait (their
  wait counts toward the timeout).

Lifecycle: :meth:`start` opens the HTTP session and starts the workers and the keep-alive loop;
:meth:`close` gives queued notifications up to a second, then stops everything.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from typing import Any

import aiohttp

from ..stream import EndReason, MediaSession, MediaSessions, MediaState
from ..tasks import TaskSet

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 128 * 1024
"Largest backend answer read; a bigger one is a backend error."
CONCURRENCY = 16
QUEUE_SIZE = 1024
WORKERS = 4
CLIENT_PROTOCOLS = frozenset({"wcs", "whip", "whep", "rtmp"})
"The media sessions keep-alive asks about (relays and pushes out of this node are not clients)."


@dataclass(frozen=True)
class HookConfig:
    url: str
    "The backend's base URL; a method is POSTed to ``{url}/{method}``."
    node_id: str = "rtcdn"
    timeout: float = 15.0
    "Seconds (``rest_request_timeout``)."
    fail_on_error: bool = False
    "``rest_on_error=FAIL``: a backend that cannot answer refuses (LOG: allows)."
    secret: bytes | None = None
    "``rest_hook_secret_key`` when ``rest_hook_send_hash=true``."
    keepalive_interval: float | None = None
    "Seconds between StreamKeepAliveEvent rounds; None: off."


@dataclass
class HookStats:
    posts: int = 0
    refused: int = 0
    errors: int = 0
    dropped: int = 0
    "Notifications dropped on a full queue."


async def read_capped(content: aiohttp.StreamReader, cap: int) -> bytes:
    """The body, or its first ``cap + 1`` bytes when it is longer (``read(n)`` returns what is
    buffered, so it is called until the cap or the end)."""
    data = bytearray()
    while len(data) <= cap:
        chunk = await content.read(cap + 1 - len(data))
        if not chunk:
            break
        data += chunk
    return bytes(data)


def sign(secret: bytes, body: bytes) -> str:
    """The ``Authorization`` header value WCS sends: ``WCS <hex HMAC-MD5 of the body>``."""
    return "WCS " + hmac.new(secret, body, hashlib.md5).hexdigest()


class RestHooks:
    """The hooks of one node (see the module docstring)."""

    def __init__(
        self, config: HookConfig, sessions: MediaSessions | None = None, local_address: str | None = None
    ) -> None:
        self.config = config
        self.sessions = sessions
        self.stats = HookStats()
        self.exempt: set[str] = set()
        "Media session ids keep-alive does not ask about (admitted with a service token)."
        self._local_address = local_address
        self._http: aiohttp.ClientSession | None = None
        self._limit = asyncio.Semaphore(CONCURRENCY)
        self._queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(QUEUE_SIZE)
        self._tasks = TaskSet("rest-hooks")

    def start(self) -> None:
        local = (self._local_address, 0) if self._local_address else None
        self._http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(local_addr=local, limit=CONCURRENCY)
        )
        for n in range(WORKERS):
            self._tasks.spawn(self._worker(), f"notify{n}")
        if self.config.keepalive_interval and self.sessions is not None:
            self._tasks.spawn(self._keepalive(), "keepalive")

    async def close(self) -> None:
        if not self._queue.empty():
            try:
                await asyncio.wait_for(self._queue.join(), 1.0)
            except TimeoutError:
                logger.warning("hooks: %d notification(s) not sent at shutdown", self._queue.qsize())
        await self._tasks.close()
        if self._http is not None:
            await self._http.close()
            self._http = None

    # --- posting --------------------------------------------------------------------------------
    async def ask(self, method: str, payload: dict[str, Any]) -> bool:
        """POST ``payload`` to ``method`` and judge the answer: True allows (never raises)."""
        problem = await self._post(method, payload)
        if problem is None:
            return True
        refused, why = problem
        if refused:
            self.stats.refused += 1
            logger.info("hook %s %r: refused by the backend (%s)", method, payload.get("name", ""), why)
            return False
        self.stats.errors += 1
        verdict = (
            "refused (rest_on_error=FAIL)" if self.config.fail_on_error else "allowed (rest_on_error=LOG)"
        )
        logger.warning("hook %s %r: backend error: %s; %s", method, payload.get("name", ""), why, verdict)
        return not self.config.fail_on_error

    async def _post(self, method: str, payload: dict[str, Any]) -> tuple[bool, str] | None:
        """None for a 2xx answer; else (the backend refused?, why)."""
        body = json.dumps(payload, separators=(",", ":"), default=str).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.config.secret is not None:
            headers["Authorization"] = sign(self.config.secret, body)
        url = f"{self.config.url.rstrip('/')}/{method}"
        if self._http is None:
            return False, "hooks are not started"
        self.stats.posts += 1
        try:
            async with asyncio.timeout(self.config.timeout), self._limit:
                async with self._http.post(url, data=body, headers=headers, allow_redirects=False) as resp:
                    answer = await read_capped(resp.content, MAX_BODY_BYTES)
                    status = resp.status
        except TimeoutError:
            return False, f"no answer within {self.config.timeout:g} s"
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            return False, f"{type(exc).__name__}: {exc}"
        if len(answer) > MAX_BODY_BYTES:
            return False, f"answer larger than {MAX_BODY_BYTES} bytes"
        if 200 <= status < 300:
            return None
        return status < 500, f"HTTP {status}"

    def notify(self, method: str, payload: dict[str, Any]) -> None:
        """Queue a notification (never blocks; dropped when the queue is full)."""
        try:
            self._queue.put_nowait((method, payload))
        except asyncio.QueueFull:
            self.stats.dropped += 1
            if self.stats.dropped in (1, 10) or self.stats.dropped % 1000 == 0:
                logger.warning("hooks: queue full, %d notification(s) dropped so far", self.stats.dropped)

    async def _worker(self) -> None:
        while True:
            method, payload = await self._queue.get()
            try:
                await self.ask(method, payload)
            finally:
                self._queue.task_done()

    # --- keep-alive -----------------------------------------------------------------------------
    def keepalive_payload(self, session: MediaSession) -> dict[str, Any] | None:
        """The StreamKeepAliveEvent of a live client publish/play, or None."""
        rec = session.describe()
        if rec.protocol not in CLIENT_PROTOCOLS or rec.state not in (
            MediaState.PUBLISHING,
            MediaState.PLAYING,
        ):
            return None
        return {
            "nodeId": self.config.node_id,
            "appKey": rec.app,
            "sessionId": rec.session,
            "mediaSessionId": rec.id,
            "name": rec.name,
            "published": rec.published,
            "status": rec.state.value,
            "info": rec.info,
            "mediaProvider": rec.transport,
            "createDate": int(rec.created * 1000),
        }

    async def _keepalive(self) -> None:
        assert self.sessions is not None and self.config.keepalive_interval
        while True:
            await asyncio.sleep(self.config.keepalive_interval)
            current = list(self.sessions)
            self.exempt &= {s.id for s in current}
            asked = [s for s in current if s.id not in self.exempt]
            await asyncio.gather(*(self._keep_alive_one(s) for s in asked))

    async def _keep_alive_one(self, session: MediaSession) -> None:
        payload = self.keepalive_payload(session)
        if payload is None or await self.ask("StreamKeepAliveEvent", payload):
            return
        logger.info("hook StreamKeepAliveEvent: stopping %s %r", payload["mediaSessionId"], payload["name"])
        try:
            session.terminate(EndReason.REVOKED)
        except Exception:  # a front end's bug must not end the keep-alive loop
            logger.exception("hook StreamKeepAliveEvent: terminating %s failed", payload["mediaSessionId"])
