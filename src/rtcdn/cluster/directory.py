"""ClusterDirectory: the :class:`~rtcdn.stream.StreamDirectory` of a dynamic CDN node.

* **claim** — a name published here is claimed in the registry (``SET``-if-free-or-mine, in Lua):
  the second publisher of a name anywhere in the cluster gets :class:`~rtcdn.stream.NameInUse`.
  Registry down: the publish is accepted (local uniqueness only) and the claim is taken by the next
  heartbeat that reaches it; a name another node took meanwhile is reported as a conflict, and the
  local stream keeps serving its players.
* **fetch** — a player asks for a stream this node does not have: the :class:`PullSupervisor`
  pulls it from the upstream :meth:`resolve` names.
* **heartbeat** — every ``heartbeat`` seconds (±10 %) the node record and every claim are written
  again, from the live local streams (never from a cache), and the node list is read back for the
  balancer. A registry that lost everything (restart, flush, failover) is whole again after one
  heartbeat.

Redis is never on the media path: nothing here runs per packet, and a player of a stream this
node already has never waits for the registry.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from dataclasses import dataclass

from ..relay import RelayManager
from ..stream import NameInUse, NotInDirectory, Stream, StreamManager
from ..tasks import TaskSet
from .pulls import PullSupervisor
from .records import Address, Claim, NodeRecord
from .registry import Registry, RegistryError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClusterConfig:
    node_id: str
    role: str
    address: Address
    cluster: str = "default"
    groups: tuple[str, ...] = ()
    secure: bool = False
    "Pull over wss (``wcs_agent_ssl``)."
    point_of_entry: str | None = None
    "Agent URI of the static origin (no registry, or while it is down)."
    upstream: str | None = None
    "Node id or agent URI an edge pulls from instead of the origin (a mid tier)."
    heartbeat: float = 3.0
    ttl: float = 10.0
    nodes_timeout: float = 0.0
    pull_start_timeout: float = 10.0
    pull_close_after: float = 10.0
    stale_ok: float = 60.0


@dataclass
class Cached:
    claim: Claim | None
    at: float


class ClusterDirectory:
    """Lifecycle: :meth:`start` writes the node record and runs the heartbeat; :meth:`close` stops
    it and removes the node's records (a clean leave)."""

    def __init__(
        self, config: ClusterConfig, streams: StreamManager, relays: RelayManager, registry: Registry | None
    ) -> None:
        self.config = config
        self.boot = uuid.uuid4().hex
        self.registry = registry
        self._streams = streams
        self.pulls = PullSupervisor(
            streams, relays, self.resolve, config.pull_start_timeout, config.pull_close_after, self.kick
        )
        self.claims: dict[str, tuple[Stream, Claim]] = {}
        "Names this node holds (or will claim when the registry is back), with their streams."
        self.conflicts: dict[str, str] = {}
        "Name → the other node that holds it, for local streams the registry refused on a heartbeat."
        self.nodes: list[NodeRecord] = []
        "The cluster's nodes as last read (the balancer's view)."
        self.cache: dict[str, Cached] = {}
        self.cache_hits = 0
        self.last_beat = 0.0
        self._wake = asyncio.Event()
        self._tasks = TaskSet("cluster")

    # --- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        if self.registry is not None:
            await self.beat()
            self._tasks.spawn(self._heartbeat(), "heartbeat")
        self.pulls.start()

    async def close(self) -> None:
        await self._tasks.close()
        await self.pulls.close()
        if self.registry is not None:
            try:
                await self.registry.leave(self.config.node_id, list(self.claims))
            except RegistryError as exc:
                logger.warning("cluster: could not remove this node's records: %s", exc)

    def kick(self) -> None:
        """Write the node record now (a pull opened or closed), not at the next heartbeat."""
        self._wake.set()

    async def _heartbeat(self) -> None:
        while True:
            self._wake.clear()
            try:  # asyncio.timeout, not wait_for: on 3.11 wait_for loses a cancel racing a kick()
                async with asyncio.timeout(self.config.heartbeat * random.uniform(0.9, 1.1)):
                    await self._wake.wait()
            except TimeoutError:
                pass
            await self.beat()

    def live_nodes(self) -> list[NodeRecord]:
        """The nodes whose record was refreshed within the TTL (as of the last read)."""
        fresh = time.time() - self.config.ttl
        return [n for n in self.nodes if n.ts >= fresh]

    def record(self) -> NodeRecord:
        streams = list(self._streams)
        return NodeRecord(
            id=self.config.node_id,
            boot=self.boot,
            role=self.config.role,
            address=self.config.address,
            groups=self.config.groups,
            players=sum(len(s.players) for s in streams),
            streams=len(streams),
            carrying=tuple(sorted(self.pulls.pulls)),
            upstreams={name: pull.upstream for name, pull in self.pulls.pulls.items()},
            ts=time.time(),
        )

    async def beat(self) -> None:
        """One heartbeat: node record + claims out, node list in; a failure waits for the next."""
        assert self.registry is not None
        for name, (stream, _) in list(self.claims.items()):
            if stream.closed:  # withdrawn already; a leftover is never written again
                del self.claims[name]
        claims = [claim for _, claim in self.claims.values()]
        ttl_ms, keep_ms = int(self.config.ttl * 1000), int(self.config.nodes_timeout * 1000)
        try:
            held = await self.registry.heartbeat(self.record(), claims, ttl_ms, keep_ms)
            self.nodes = await self.registry.nodes(max(ttl_ms, keep_ms))
        except RegistryError:
            return
        self.last_beat = time.monotonic()
        for name, holder in held.items():
            if holder is not None and holder.node != self.config.node_id:
                if self.conflicts.get(name) != holder.node:
                    logger.warning(
                        "cluster: stream %r is published here and on node %s, which holds the name; "
                        "serving local players only",
                        name,
                        holder.node,
                    )
                self.conflicts[name] = holder.node
            else:
                self.conflicts.pop(name, None)

    # --- StreamDirectory ------------------------------------------------------------------------
    async def claim(self, stream: Stream) -> None:
        if self.pulls.owns(stream):
            return  # a stream pulled in from another node: that node holds the name
        cfg = self.config
        claim = Claim(
            stream.name, cfg.node_id, self.boot, cfg.address, time.time(), serves=cfg.role == "origin"
        )
        if self.registry is not None:
            try:
                holder = await self.registry.claim(claim, int(cfg.ttl * 1000))
            except RegistryError as exc:
                logger.warning("cluster: %r accepted without a cluster-wide claim (%s)", stream.name, exc)
            else:
                if holder is not None and holder.node != cfg.node_id:
                    raise NameInUse(f"stream name {stream.name!r} is already in use on node {holder.node}")
        if stream.closed:
            return
        self.claims[stream.name] = (stream, claim)

    def announce(self, stream: Stream) -> None:
        pass  # the claim was made by claim(); live streams are counted by the next heartbeat

    def withdraw(self, stream: Stream) -> None:
        held = self.claims.get(stream.name)
        if held is None or held[0] is not stream:
            if self.pulls.owns(stream):
                self.kick()
            return
        del self.claims[stream.name]
        self.conflicts.pop(stream.name, None)
        if self.registry is not None and not self._tasks.closed:
            self._tasks.spawn(self._release(stream.name), f"release:{stream.name}")

    async def _release(self, name: str) -> None:
        assert self.registry is not None
        try:
            await self.registry.release(name, self.config.node_id)
        except RegistryError:
            pass  # its TTL ends it

    async def fetch(self, name: str) -> bool:
        return await self.pulls.fetch(name)

    # --- where a stream comes from --------------------------------------------------------------
    async def lookup(self, name: str) -> Claim | None:
        """The claim of ``name``: from the registry, or (while it is unreachable) as read within
        ``stale_ok`` seconds. Raises RegistryError when neither can say."""
        assert self.registry is not None
        try:
            claim = await self.registry.lookup(name)
        except RegistryError:
            cached = self.cache.get(name)
            if cached is None or time.monotonic() - cached.at > self.config.stale_ok:
                raise
            self.cache_hits += 1
            return cached.claim
        self.cache[name] = Cached(claim, time.monotonic())
        if len(self.cache) > 10000:
            self.cache.pop(next(iter(self.cache)))
        return claim

    async def resolve(self, name: str) -> tuple[str, str]:
        """(upstream, agent URI) for a pull of ``name``; NotInDirectory when no node serves it."""
        cfg = self.config
        claim: Claim | None = None
        if self.registry is not None:
            try:
                claim = await self.lookup(name)
            except RegistryError:
                if cfg.point_of_entry:
                    return "point_of_entry", cfg.point_of_entry
                raise NotInDirectory(f"registry unreachable and no cdn_point_of_entry for {name!r}") from None
            if claim is None or not claim.serves or claim.node == cfg.node_id:
                raise NotInDirectory(f"no origin publishes {name!r}")
        if cfg.upstream:
            return cfg.upstream, self._upstream_uri(cfg.upstream)
        if claim is not None:
            return claim.node, claim.address.agent_uri(cfg.secure)
        if cfg.point_of_entry:
            return "point_of_entry", cfg.point_of_entry
        raise NotInDirectory(f"no registry and no cdn_point_of_entry to find {name!r}")

    def _upstream_uri(self, upstream: str) -> str:
        if "://" in upstream:
            return upstream
        for node in self.live_nodes():
            if node.id == upstream:
                return node.address.agent_uri(self.config.secure)
        raise NotInDirectory(f"upstream node {upstream!r} is not in the registry")
