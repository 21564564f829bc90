"""CdnOrigin: keeps every live local stream pushed to every edge of loadbalancing.xml.

How a stream reaches an edge is the ``distribution`` (``stream_distribution`` in the XML): WebRTC
relays (:class:`WebRtcDistribution`, ``/pull/push`` to the edge's WebSocket port) or RTMP pushes
(:class:`RtmpDistribution`, ``/push/startup`` to the edge's ``flash`` port).

One supervisor loop, woken when a stream goes live or an edge comes back, and every
:data:`TICK` seconds otherwise. A push that fails is retried with a per-(stream, edge) backoff
(1, 2, 4 s, at most :data:`MAX_BACKOFF`); an edge that comes back up is retried at once.
The pushes are ordinary relays (``/pull/find_all`` lists them too).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Protocol

from ..relay import RelayError, RelayManager
from ..rtmp.push import PushError, PushManager
from ..stream import Stream, StreamManager
from ..tasks import TaskSet
from .balancer import Balancer
from .config import Node

logger = logging.getLogger(__name__)

TICK = 0.5
MAX_BACKOFF = 4.0


class Delivery(Protocol):
    """One stream on its way to one edge: a relay or an RTMP push."""

    @property
    def status(self) -> str: ...

    @property
    def info(self) -> str: ...

    @property
    def finished(self) -> bool: ...

    @property
    def local_media_session_id(self) -> str: ...


class Distribution(Protocol):
    name: str

    def start(self, stream: str, node: Node) -> Delivery:
        """Start delivering ``stream`` to ``node``; raises ValueError-like refusals as ``RuntimeError``."""

    def unreachable(self, info: str) -> bool:
        """Does a delivery's ``info`` say the edge could not be reached (then it is marked down)?"""


class WebRtcDistribution:
    """``stream_distribution="webrtc"``: a WebRTC relay to the edge's WebSocket port."""

    name = "webrtc"

    def __init__(self, relays: RelayManager, secure: bool) -> None:
        self.relays = relays
        self.secure = secure

    def start(self, stream: str, node: Node) -> Delivery:
        try:
            return self.relays.push(node.agent_uri(self.secure), stream, stream)
        except RelayError as exc:
            raise RuntimeError(str(exc)) from None

    def unreachable(self, info: str) -> bool:
        return "Failed to connect" in info


class RtmpDistribution:
    """``stream_distribution="rtmp"``: an RTMP push to ``rtmp://edge:<flash>/live/NAME``. An rtcdn
    edge announces Enhanced RTMP, so VP8/VP9/Opus reach it without a transcode; a third-party edge
    gets H.264 + AAC."""

    name = "rtmp"

    def __init__(self, pushes: PushManager) -> None:
        self.pushes = pushes

    def start(self, stream: str, node: Node) -> Delivery:
        try:
            return self.pushes.startup(stream, f"rtmp://{node.ip}:{node.flash}/live", retry=False, sign=True)
        except PushError as exc:
            raise RuntimeError(str(exc)) from None

    def unreachable(self, info: str) -> bool:
        return "RtmpConnectError" in info or "RtmpTimeout" in info


class CdnOrigin:
    """Lifecycle: ``start()`` runs the supervisor; ``close()`` stops it (the deliveries belong to
    the RelayManager or PushManager, which the Server closes)."""

    def __init__(self, streams: StreamManager, distribution: Distribution, balancer: Balancer) -> None:
        self._streams = streams
        self._distribution = distribution
        self._balancer = balancer
        self._pushes: dict[tuple[str, str], Delivery] = {}
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
            try:  # asyncio.timeout, not wait_for: on 3.11 wait_for loses a cancel racing a wake-up
                async with asyncio.timeout(TICK):
                    await self._wake.wait()
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
            if self._distribution.unreachable(relay.info):
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
            self._pushes[key] = self._distribution.start(name, node)
        except RuntimeError as exc:
            logger.warning("cdn: cannot push %r to edge %s: %s", name, node.id, exc)

    # --- REST views (rtcdn.api.backend.CdnView) ---------------------------------------------------
    async def streams(self) -> list[dict[str, Any]]:
        return self.routes()

    def show_routes(self) -> dict[str, str]:
        """WCS's ``/cdn/show_routes``: ``{"<n>-origin-<edge id>": stream}`` per live delivery."""
        live = sorted((k for k, d in self._pushes.items() if not d.finished), key=lambda k: (k[1], k[0]))
        return {f"{n}-origin-{node}": name for n, (name, node) in enumerate(live, 1)}

    def nodes(self) -> list[dict[str, Any]]:
        """The edges of loadbalancing.xml, ACTIVE when their stat probe answers, else PASSIVE."""
        return [
            {
                "id": h.node.id,
                "role": "edge",
                "state": "ACTIVE" if h.up else "PASSIVE",
                "ip": h.node.ip,
                "ws": h.node.ws,
                "wss": h.node.wss,
                "http": h.node.http,
                "flash": h.node.flash,
                "info": h.error,
            }
            for h in self._balancer.health.values()
            if not h.node.local
        ]

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
