"""CdnOrigin: keeps every live local stream pushed to every edge of loadbalancing.xml.

One supervisor loop, woken when a stream goes live or an edge comes back, and every
:data:`TICK` seconds otherwise. A push that fails is retried with a per-(stream, edge) backoff
(1, 2, 4 s, at most :data:`MAX_BACKOFF`); an edge that comes back up is retried at once.
The pushes are ordinary relays (``/pull/find_all`` lists them too).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from ..relay import Relay, RelayError, RelayManager
from ..stream import Stream, StreamManager
from ..tasks import TaskSet
from .balancer import Balancer
from .config import Node

logger = logging.getLogger(__name__)

TICK = 0.5
MAX_BACKOFF = 4.0


class CdnOrigin:
    """Lifecycle: ``start()`` runs the supervisor; ``close()`` stops it (relays belong to the
    RelayManager, which the Server closes)."""

    def __init__(
        self, streams: StreamManager, relays: RelayManager, balancer: Balancer, secure: bool
    ) -> None:
        self._streams = streams
        self._relays = relays
        self._balancer = balancer
        self._secure = secure
        self._pushes: dict[tuple[str, str], Relay] = {}
        self._retry: dict[tuple[str, str], tuple[float, float]] = {}
        "(stream, node id) → (next attempt, current backoff)"
        self._wake = asyncio.Event()
        self._tasks = TaskSet("cdn-origin")
        streams.listeners.append(self._on_stream)
        balancer.on_up = self._on_edge_up

    def start(self) -> None:
        self._tasks.spawn(self._supervise(), "supervise")

    async def close(self) -> None:
        await self._tasks.close()

    def _on_stream(self, event: str, stream: Stream) -> None:
        self._wake.set()

    def _on_edge_up(self, node: Node) -> None:
        for key in [k for k in self._retry if k[1] == node.id]:
            del self._retry[key]
        self._wake.set()

    async def _supervise(self) -> None:
        while True:
            self._sync()
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), TICK)
            except TimeoutError:
                pass

    def _sync(self) -> None:
        live = {s.name for s in self._streams if s.live}
        now = time.monotonic()
        for key in [k for k in self._pushes if k[0] not in live]:
            del self._pushes[key]
            self._retry.pop(key, None)
        for name in live:
            for node in self._balancer.config.nodes:
                if not node.local:
                    self._ensure(name, node, now)

    def _ensure(self, name: str, node: Node, now: float) -> None:
        key = (name, node.id)
        relay = self._pushes.get(key)
        if relay is not None:
            if not relay.finished:
                if relay.status == "PUBLISHING":
                    self._retry.pop(key, None)  # a success resets the backoff
                return
            del self._pushes[key]
            _, backoff = self._retry.get(key, (0.0, 0.5))
            backoff = min(MAX_BACKOFF, backoff * 2)
            self._retry[key] = (now + backoff, backoff)
            if "Failed to connect" in relay.info:
                self._balancer.mark_down(node, relay.info)
            logger.info(
                "cdn: push of %r to edge %s ended: %s %s; again in %.0f s",
                name,
                node.id,
                relay.status,
                relay.info,
                backoff,
            )
        if now < self._retry.get(key, (0.0, 0.0))[0]:
            return
        try:
            self._pushes[key] = self._relays.push(node.agent_uri(self._secure), name, name)
        except RelayError as exc:
            logger.warning("cdn: cannot push %r to edge %s: %s", name, node.id, exc)

    def routes(self) -> list[dict[str, Any]]:
        """Per live stream, which edges it reached and how (``/rest-api/cdn/streams``)."""
        out = []
        for stream in self._streams:
            if not stream.live:
                continue
            edges = []
            for node in self._balancer.config.nodes:
                relay = self._pushes.get((stream.name, node.id))
                edges.append(
                    {
                        "node": node.id,
                        "ip": node.ip,
                        "edgeUp": self._balancer.is_up(node),
                        "status": relay.status if relay is not None else "NEW",
                        "info": relay.info if relay is not None else "",
                        "localMediaSessionId": relay.local_media_session_id if relay is not None else None,
                    }
                )
            out.append({"name": stream.name, "edges": edges})
        return out
