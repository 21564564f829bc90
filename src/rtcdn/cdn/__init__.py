"""Static CDN (WCS CDN 1.0): an origin republishes every stream to its edges and sends players there."""

from .balancer import Balancer
from .config import LOADBALANCING_FILE, LoadBalancerConfig, Node, load_loadbalancing
from .http import BalancerRoutes
from .origin import CdnOrigin
from .stats import CpuMeter, node_stat, parse_stat

__all__ = [
    "LOADBALANCING_FILE",
    "Balancer",
    "BalancerRoutes",
    "CdnOrigin",
    "CpuMeter",
    "LoadBalancerConfig",
    "Node",
    "load_loadbalancing",
    "node_stat",
    "parse_stat",
]
