"""Cluster: the dynamic CDN adapter of one node, and what the REST API, ``/balancer`` and the metrics
read of it.

Built by the Server from the settings (:class:`~.directory.ClusterConfig`); it becomes the stream
manager's directory. Edge choice (:meth:`Cluster.pick`): live edges only (refreshed within the
TTL), of the requested group; among them those already carrying the stream, then the less loaded
(players) of two picked at random — the power of two choices, so a burst of players never herds
onto one node that looked idle in a stale table.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from ..cdn.config import Node
from ..relay import RelayManager
from ..stream import StreamManager
from .directory import ClusterConfig, ClusterDirectory
from .records import NodeRecord
from .registry import Registry, RegistryError, connect


class Cluster:
    """Lifecycle: ``start()`` joins (writes the node record), ``close()`` leaves."""

    def __init__(
        self, config: ClusterConfig, streams: StreamManager, relays: RelayManager, registry_url: str | None
    ) -> None:
        self.config = config
        self.registry = Registry(connect(registry_url), config.cluster) if registry_url else None
        self.directory = ClusterDirectory(config, streams, relays, self.registry)
        streams.directory = self.directory
        self._streams = streams

    async def start(self) -> None:
        await self.directory.start()

    async def close(self) -> None:
        await self.directory.close()
        if self.registry is not None:
            await self.registry.close()

    # --- /balancer --------------------------------------------------------------------------------
    def pick(self, stream: str | None = None, group: str | None = None) -> Node | None:
        edges = [n for n in self.directory.live_nodes() if n.role == "edge"]
        if group:
            edges = [n for n in edges if group in n.groups]
        if stream:
            carrying = [n for n in edges if stream in n.carrying]
            edges = carrying or edges
        if not edges:
            return None
        if len(edges) == 1:
            return edges[0].node()
        a, b = random.sample(edges, 2)
        return (a if a.players <= b.players else b).node()

    # --- REST views (/rest-api/cdn/...) -----------------------------------------------------------
    async def streams(self) -> list[dict[str, Any]]:
        """The cluster's stream directory (``/cdn/streams``): every claim, plus this node's pulls."""
        claims = []
        if self.registry is not None:
            try:
                claims = await self.registry.claims()
            except RegistryError as exc:
                raise RuntimeError(f"registry unreachable: {exc}") from None
        else:
            claims = [claim for _, claim in self.directory.claims.values()]
        out = []
        for c in sorted(claims, key=lambda c: c.name):
            out.append(
                {
                    "name": c.name,
                    "node": c.node,
                    "ip": c.address.ip,
                    "uri": c.address.agent_uri(self.config.secure),
                    "serves": c.serves,
                    "since": c.since,
                    "conflict": self.directory.conflicts.get(c.name),
                }
            )
        return out

    def show_routes(self) -> dict[str, str]:
        """WCS's ``/cdn/show_routes``: ``{"<n>-<upstream>-<node>": stream}`` for every pull in the
        cluster (as of the last node read; this node's own pulls are always current)."""
        routes: dict[str, str] = {}
        nodes = {n.id: n for n in self.directory.live_nodes()}
        nodes[self.config.node_id] = self.directory.record()
        n = 0
        for node in sorted(nodes.values(), key=lambda r: r.id):
            for name in node.carrying:
                n += 1
                routes[f"{n}-{node.upstreams.get(name, '?')}-{node.id}"] = name
        return routes

    def nodes(self) -> list[dict[str, Any]]:
        """``/cdn/nodes``: ACTIVE (refreshed within the TTL) or PASSIVE (within ``cdn_nodes_timeout``)."""
        fresh = time.time() - self.config.ttl
        records = {n.id: n for n in self.directory.nodes}
        records[self.config.node_id] = self.directory.record()
        return [
            _node_view(r, "ACTIVE" if r.ts >= fresh else "PASSIVE")
            for r in sorted(records.values(), key=lambda r: r.id)
        ]

    # --- metrics ------------------------------------------------------------------------------------
    def collect(self) -> Iterator[Metric]:
        """A prometheus_client collector: registry health, pulls, routes, nodes."""
        d, pulls = self.directory, self.directory.pulls
        reg = self.registry
        yield GaugeMetricFamily(
            "rtcdn_cdn_registry_up", "1 if the last registry call succeeded", value=int(bool(reg and reg.up))
        )
        if reg is not None:
            age = time.monotonic() - reg.last_ok if reg.last_ok else float("inf")
            yield GaugeMetricFamily(
                "rtcdn_cdn_registry_last_ok_seconds",
                "Seconds since a registry call last succeeded",
                value=age,
            )
            yield CounterMetricFamily(
                "rtcdn_cdn_registry_failures", "Registry calls that failed", value=reg.failures
            )
        yield GaugeMetricFamily(
            "rtcdn_cdn_pulls", "Pulls on demand open on this node (routes)", value=len(pulls.pulls)
        )
        for name, doc, value in (
            ("rtcdn_cdn_pulls_started", "Pulls on demand started", pulls.started),
            ("rtcdn_cdn_pull_failures", "Pulls on demand that did not go live", pulls.failed),
            ("rtcdn_cdn_pulls_closed_idle", "Pulls closed after their last player left", pulls.closed_idle),
            (
                "rtcdn_cdn_pull_joins",
                "Players that joined a pull already starting (single flight)",
                pulls.shared,
            ),
            (
                "rtcdn_cdn_directory_cache_hits",
                "Directory lookups answered from cache (registry down)",
                d.cache_hits,
            ),
        ):
            yield CounterMetricFamily(name, doc, value=value)
        yield GaugeMetricFamily("rtcdn_cdn_claims", "Stream names this node holds", value=len(d.claims))
        yield GaugeMetricFamily(
            "rtcdn_cdn_claim_conflicts", "Local streams whose name another node holds", value=len(d.conflicts)
        )
        nodes = GaugeMetricFamily(
            "rtcdn_cdn_nodes", "Nodes of the cluster, by role and state", labels=["role", "state"]
        )
        counts: dict[tuple[str, str], int] = {}
        for view in self.nodes():
            key = (view["role"], view["state"])
            counts[key] = counts.get(key, 0) + 1
        for (role, state), count in sorted(counts.items()):
            nodes.add_metric([role, state], count)
        yield nodes


def _node_view(r: NodeRecord, state: str) -> dict[str, Any]:
    a = r.address
    return {
        "id": r.id,
        "role": r.role,
        "state": state,
        "ip": a.ip,
        "ws": a.ws,
        "wss": a.wss,
        "http": a.http,
        "flash": a.flash,
        "groups": list(r.groups),
        "players": r.players,
        "streams": r.streams,
        "carrying": list(r.carrying),
        "seenSecondsAgo": round(max(0.0, time.time() - r.ts), 3),
    }
