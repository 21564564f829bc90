"""Dynamic CDN (WCS CDN 2.x): nodes join by starting, edges pull streams on demand; the node registry
and the stream directory are soft state in Redis (:mod:`.registry`), never on the media path."""

from .directory import ClusterConfig, ClusterDirectory
from .node import Cluster
from .pulls import PullSupervisor
from .records import Address, Claim, NodeRecord
from .registry import Registry, RegistryError, connect

__all__ = [
    "Address",
    "Claim",
    "Cluster",
    "ClusterConfig",
    "ClusterDirectory",
    "NodeRecord",
    "PullSupervisor",
    "Registry",
    "RegistryError",
    "connect",
]
