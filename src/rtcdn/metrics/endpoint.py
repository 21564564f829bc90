"""MetricsEndpoint: ``GET /metrics`` on the HTTP(S) ports, in the Prometheus text format.

Text format 0.0.4 by default; OpenMetrics 1.0 when the ``Accept`` header asks for it (as
Prometheus does). With ``--workers N``, worker 0 also fetches each child's ``/metrics`` over
loopback HTTP and sums their samples into its own (same name and labels: one value), so one
scrape target gives the node's totals; a child that does not answer within
:data:`WORKER_TIMEOUT` is reported as ``rtcdn_worker_up{worker="k"} 0`` and left out. Children
(``worker_index > 0``) are given no workers, so they answer for themselves only.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Iterator, Sequence, Sized
from typing import Protocol

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from ..stream import StreamManager
from ..webrtc.peer import WebRtcCounters
from .collector import BalancerView, Collector, RelayView
from .merge import merge_families

logger = logging.getLogger(__name__)

WORKER_TIMEOUT = 0.5
"Seconds worker 0 waits for a child's ``/metrics``; well under Prometheus' shortest scrape timeout."


class WorkerView(Protocol):
    """A child worker as :func:`rtcdn.cdn.workers.worker_nodes` describes it."""

    @property
    def id(self) -> str: ...

    @property
    def ip(self) -> str: ...

    @property
    def http(self) -> int: ...


class _Families:
    """Already collected families, in the shape the prometheus_client encoders take."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


class MetricsEndpoint:
    """The ``/metrics`` front end of one server.

    Lifecycle: built by the Server with its components (``workers``: the children of
    ``--workers``, none on a child or a single-process node); :meth:`add_routes` mounts the route;
    the first scrape with workers opens an HTTP client session; :meth:`close` closes it.
    """

    def __init__(
        self,
        streams: StreamManager,
        counters: WebRtcCounters,
        relays: Iterable[RelayView] = (),
        balancer: BalancerView | None = None,
        wcs_sessions: Sized = (),
        workers: Sequence[WorkerView] = (),
        worker_timeout: float = WORKER_TIMEOUT,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.collector = Collector(streams, counters, relays, balancer, wcs_sessions)
        self.registry.register(self.collector)
        self.workers = tuple(workers)
        self.worker_timeout = worker_timeout
        self._http: aiohttp.ClientSession | None = None

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/metrics", self.handle)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def handle(self, request: web.Request) -> web.Response:
        families = list(self.registry.collect())
        if self.workers:
            await self._add_workers(families)
        encode, content_type = choose_encoder(",".join(request.headers.getall("Accept", [])))
        return web.Response(body=encode(_Families(families)), headers={"Content-Type": content_type})

    async def _add_workers(self, families: list[Metric]) -> None:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.worker_timeout))
        answers = await asyncio.gather(*(self._fetch(self._http, w) for w in self.workers))
        up = GaugeMetricFamily("rtcdn_worker_up", "1 if the worker answered this scrape", labels=["worker"])
        up.add_metric(["0"], 1)
        for worker, answer in zip(self.workers, answers, strict=True):
            up.add_metric([worker.id], int(answer is not None))
            if answer is not None:
                merge_families(families, answer)
        families.append(up)

    async def _fetch(self, http: aiohttp.ClientSession, worker: WorkerView) -> list[Metric] | None:
        """A child's families, or None when it does not answer (in time, or sensibly)."""
        url = f"http://{worker.ip}:{worker.http}/metrics"
        try:
            async with http.get(url, headers={"Accept": CONTENT_TYPE_PLAIN_0_0_4}) as resp:
                if resp.status != 200:
                    raise ValueError(f"HTTP {resp.status}")
                text = await resp.text()
            return list(text_string_to_metric_families(text))
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
            logger.debug("metrics: worker %s (%s) did not answer: %r", worker.id, url, exc)
            return None
