"""Balancer: which edge a player should use, from edge health and load (``mode`` of loadbalancing.xml).

Health comes from a periodic ``GET http://<edge>:<http>/?action=stat`` and from relay failures.
Lifecycle: ``start()`` begins probing, ``close()`` stops it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from ..tasks import TaskSet
from .config import LoadBalancerConfig, Node
from .stats import parse_stat

logger = logging.getLogger(__name__)

PROBE_INTERVAL = 1.0
PROBE_TIMEOUT = 1.0
DEFAULT_CALL_COST = 0.001
"A player's share of the machine's CPU assumed before a node has measured one (LEAST_LOADED_PROCESS)."


@dataclass
class NodeHealth:
    node: Node
    up: bool = False
    calls: int = 0
    cpu: float = 0.0
    "``systemCpuLoad`` (the machine's)."
    process_cpu: float = 0.0
    "``processCpuLoad`` (the node's own process)."
    picked: int = 0
    "Players sent there since the last probe (its figures do not count them yet)."
    checked: float = 0.0
    error: str = "not probed yet"

    def predicted_load(self) -> float:
        """``processCpuLoad`` with the players picked since the probe added at the node's measured
        cost per call (:data:`DEFAULT_CALL_COST` before it has any)."""
        per_call = self.process_cpu / self.calls if self.calls else DEFAULT_CALL_COST
        return self.process_cpu + self.picked * max(per_call, DEFAULT_CALL_COST / 4)


class Balancer:
    """Picks a live edge by ``mode``; ``on_up(node)`` is called when an edge comes (back) up."""

    def __init__(
        self,
        config: LoadBalancerConfig,
        on_up: Callable[[Node], None] | None = None,
        local_address: str | None = None,
        local_stat: Callable[[], tuple[int, float]] | None = None,
    ) -> None:
        """``local_stat()``: (calls, processCpuLoad) of this very process, for its ``local`` node."""
        self.config = config
        self._local_stat = local_stat
        self.health = {node.id: NodeHealth(node, up=node.local, error="") for node in config.nodes}
        self.on_up = on_up
        self._cursor = 0
        self._local_address = local_address
        self._tasks = TaskSet("balancer")
        self._http: aiohttp.ClientSession | None = None

    def start(self) -> None:
        connector = aiohttp.TCPConnector(local_addr=(self._local_address, 0) if self._local_address else None)
        self._http = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=PROBE_TIMEOUT)
        )
        self._tasks.spawn(self._probe_loop(), "probe")

    async def close(self) -> None:
        await self._tasks.close()
        if self._http is not None:
            await self._http.close()

    def is_up(self, node: Node) -> bool:
        return self.health[node.id].up

    def mark_down(self, node: Node, reason: str) -> None:
        health = self.health[node.id]
        if health.up:
            logger.warning("edge %s (%s) is down: %s", node.id, node.ip, reason)
        health.up, health.error = False, reason

    def _mark_up(self, node: Node, calls: int, cpu: float, process_cpu: float = 0.0) -> None:
        health = self.health[node.id]
        was_up = health.up
        health.up, health.calls, health.cpu, health.error = True, calls, cpu, ""
        health.process_cpu, health.picked = process_cpu, 0
        health.checked = time.monotonic()
        if not was_up:
            logger.info("edge %s (%s) is up", node.id, node.ip)
            if self.on_up is not None:
                self.on_up(node)

    async def probe(self, node: Node) -> None:
        assert self._http is not None
        try:
            async with self._http.get(f"http://{node.ip}:{node.http}/?action=stat") as resp:
                if resp.status != 200:
                    raise ValueError(f"HTTP {resp.status}")
                stat = parse_stat(await resp.text())
            self._mark_up(
                node,
                int(stat.get("calls", "0")),
                float(stat.get("systemCpuLoad", "0")),
                float(stat.get("processCpuLoad", "0")),
            )
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
            self.mark_down(node, f"stat probe failed: {exc or type(exc).__name__}")

    async def _probe_loop(self) -> None:
        while True:
            await asyncio.gather(*(self.probe(node) for node in self.config.nodes if not node.local))
            if self._local_stat is not None:
                calls, process_cpu = self._local_stat()
                for node in self.config.nodes:
                    if node.local:
                        self._mark_up(node, calls, 0.0, process_cpu)
            await asyncio.sleep(PROBE_INTERVAL)

    def pick(self, stream: str | None = None, group: str | None = None) -> Node | None:
        """The edge for the next player, or None when no edge is up (every edge of
        loadbalancing.xml gets every stream, so ``stream`` and ``group`` change nothing)."""
        live = [h for h in self.health.values() if h.up]
        if not live:
            return None
        mode = self.config.mode
        if mode == "RANDOM":
            return random.choice(live).node
        if mode == "FEWESTCALLS":
            fewest = min(h.calls for h in live)
            tied = [h for h in live if h.calls == fewest]
            return (random.choice(tied) if self.config.randomize else tied[0]).node
        if mode == "LEAST_LOADED_NODE":
            return min(live, key=lambda h: h.cpu).node
        if mode == "LEAST_LOADED_PROCESS":  # --workers: processes sharing one machine
            best = min(live, key=lambda h: (h.predicted_load(), h.calls + h.picked))
            best.picked += 1
            return best.node
        nodes = self.config.nodes  # ROUNDROBIN: the next live node after the last one picked
        for step in range(len(nodes)):
            node = nodes[(self._cursor + step) % len(nodes)]
            if self.health[node.id].up:
                self._cursor = (self._cursor + step + 1) % len(nodes)
                return node
        return None
