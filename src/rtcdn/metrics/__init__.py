"""Prometheus metrics: ``GET /metrics`` (:class:`MetricsEndpoint`) over a :class:`Collector` that
reads the node's live figures at scrape time. Imports only the core and the WebRTC layer; relays,
the balancer and the workers are seen through read-only protocols."""

from .collector import Collector
from .endpoint import MetricsEndpoint
from .merge import merge_families

__all__ = ["Collector", "MetricsEndpoint", "merge_families"]
