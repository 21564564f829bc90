"""The settings of the dynamic CDN (WCS CDN 2.x, issue 12): roles, the Redis registry, pull on demand."""

# ruff: noqa: RUF009  (setting() is dataclasses.field with the declaration in its metadata)

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .keys import UNSET, Key, _bool, _list, _name, _non_negative, _optional, _positive, setting

if TYPE_CHECKING:
    from . import Settings

ROLES = ("origin", "edge")
REGISTRY_SCHEMES = ("redis://", "rediss://", "unix://", "redis+sentinel://", "rediss+sentinel://")


def _role(text: str) -> str:
    value = text.strip().lower()
    if value == "transcoder":
        raise ValueError(
            "transcoder nodes are not supported by rtcdn (it forwards media unchanged); use origin or edge"
        )
    if value not in ROLES:
        raise ValueError(f"expected origin or edge, got {text.strip()!r}")
    return value


def _registry_url(text: str) -> str | None:
    url = text.strip()
    if url and not url.startswith(REGISTRY_SCHEMES):
        raise ValueError(f"expected {', '.join(s + '…' for s in REGISTRY_SCHEMES)}, got {url!r}")
    return url or None


@dataclass(frozen=True)
class CdnKeys:
    cdn_enabled: bool = setting(
        False,
        Key(
            "cdn_enabled",
            _bool,
            "dynamic CDN (WCS CDN 2.x): nodes join by starting, edges pull streams when a player asks",
        ),
    )
    cdn_role: str = setting(
        "edge",
        Key(
            "cdn_role",
            _role,
            "`origin` (publishers' streams are claimed in the registry and served to edges) or `edge` "
            "(plays streams pulled on demand); WCS's `transcoder` is refused",
        ),
    )
    cdn_ip: str | None = setting(
        None,
        Key(
            "cdn_ip",
            _optional,
            "the address other nodes and clients use for this node",
            shown="`ip`, else the bind or media address",
        ),
    )
    cdn_groups: list[str] = setting(
        [],
        Key(
            "cdn_groups",
            _list,
            "groups of this node, comma separated; `/balancer?group=G` picks among edges of G",
            shown=UNSET,
        ),
    )
    cdn_nodes_timeout: int = setting(
        0,
        Key(
            "cdn_nodes_timeout",
            _non_negative,
            "seconds a node that stopped refreshing stays listed as PASSIVE in `/cdn/nodes` (0: it goes "
            "with its TTL)",
        ),
    )
    cdn_registry_url: str | None = setting(
        None,
        Key(
            "cdn_registry_url",
            _registry_url,
            "the shared registry: `redis://[user:pass@]host:port/db`, `rediss://…` (TLS), "
            "`redis+sentinel://host:port,host:port/master`; unset: no registry (see `cdn_point_of_entry`)",
        ),
    )
    cdn_point_of_entry: str | None = setting(
        None,
        Key(
            "cdn_point_of_entry",
            _optional,
            "the origin to pull from without a registry, or while it is down: `host`, `host:ws-port` or "
            "`ws[s]://host:port`",
        ),
    )
    cdn_upstream: str | None = setting(
        None,
        Key(
            "cdn_upstream",
            _optional,
            "an edge pulls from this node instead of the stream's origin (a mid tier): a node id of the "
            "registry or `ws[s]://host:port`",
        ),
    )
    cdn_cluster: str = setting(
        "default", Key("cdn_cluster", _name, "name of the cluster: its registry keys are `rtcdn:{NAME}:…`")
    )
    cdn_heartbeat_interval: int = setting(
        3000, Key("cdn_heartbeat_interval", _positive, "ms between two refreshes of this node's records")
    )
    cdn_node_ttl: int = setting(
        10000,
        Key("cdn_node_ttl", _positive, "ms a node record or stream claim lives without a refresh"),
    )
    cdn_pull_start_timeout: int = setting(
        10000,
        Key("cdn_pull_start_timeout", _positive, "ms players wait for a pull on demand to go live"),
    )
    cdn_pull_close_after: int = setting(
        10000,
        Key("cdn_pull_close_after", _non_negative, "ms a pull on demand lives on after its last player left"),
    )
    cdn_directory_stale_ok: int = setting(
        60000,
        Key(
            "cdn_directory_stale_ok",
            _non_negative,
            "ms a directory entry read before may be used while the registry is unreachable",
        ),
    )


def cdn_problems(s: Settings, fits: Callable[..., bool]) -> list[str]:
    """Dynamic CDN keys that do not fit together."""
    problems: list[str] = []
    if not s.cdn_enabled or not fits("cdn_enabled"):
        return problems
    if fits("cdn_registry_url", "cdn_point_of_entry", "cdn_role", "cdn_upstream"):
        if s.cdn_role == "edge" and not (s.cdn_registry_url or s.cdn_point_of_entry or s.cdn_upstream):
            problems.append(
                "cdn_enabled: an edge needs cdn_registry_url or cdn_point_of_entry (where streams come from)"
            )
    if fits("cdn_heartbeat_interval", "cdn_node_ttl") and s.cdn_node_ttl <= s.cdn_heartbeat_interval:
        problems.append(
            f"cdn_node_ttl: {s.cdn_node_ttl} ms must exceed "
            f"cdn_heartbeat_interval ({s.cdn_heartbeat_interval})"
        )
    if fits("cdn_upstream", "cdn_role") and s.cdn_upstream and s.cdn_role != "edge":
        problems.append("cdn_upstream: only an edge pulls from an upstream node")
    if fits("workers", "cdn_enabled") and s.workers > 1:
        problems.append("workers: more than 1 together with cdn_enabled=true is not supported yet")
    return problems
