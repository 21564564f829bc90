"""Static CDN (WCS CDN 1.0): an origin republishes every stream to its edges and sends players there."""

from .balancer import Balancer
from .config import LOADBALANCING_FILE, LoadBalancerConfig, Node, load_loadbalancing
from .origin import CdnOrigin
from .stats import CpuMeter, parse_stat

__all__ = [
    "LOADBALANCING_FILE",
    "Balancer",
    "CdnOrigin",
    "CpuMeter",
    "LoadBalancerConfig",
    "Node",
    "load_loadbalancing",
    "parse_stat",
]
