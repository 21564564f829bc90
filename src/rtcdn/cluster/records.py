"""What nodes write to the registry: a record per node and a claim per published stream name.

Both are JSON, soft state owned by the node that wrote them (refreshed every heartbeat, gone with
their TTL). Reading is defensive: a value another node (or anyone with access to Redis) wrote that
does not parse is skipped, never an exception in a handler.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from ..cdn.config import Node


@dataclass(frozen=True)
class Address:
    """Where a node is reached: the ``cdn_ip`` and the ports of its listeners (0: none)."""

    ip: str
    ws: int = 0
    wss: int = 0
    http: int = 0
    flash: int = 0

    def agent_uri(self, secure: bool) -> str:
        """The WebSocket URI a relay connects to (wss when ``wcs_agent_ssl`` and the node has it)."""
        if secure and self.wss:
            return f"wss://{self.ip}:{self.wss}"
        return f"ws://{self.ip}:{self.ws or self.wss}"


@dataclass(frozen=True)
class NodeRecord:
    """``node:{id}``: a node's role, addresses and load, rewritten every heartbeat."""

    id: str
    boot: str
    "A fresh id per start: a restarted node is told apart from its former self."
    role: str
    address: Address
    groups: tuple[str, ...] = ()
    players: int = 0
    streams: int = 0
    carrying: tuple[str, ...] = ()
    "Streams this node pulls in and serves to players (the routes of ``/cdn/show_routes``)."
    upstreams: dict[str, str] = field(default_factory=dict)
    "Stream → the node id (or URI) it is pulled from."
    ts: float = 0.0
    "Wall-clock seconds of the write."

    def node(self) -> Node:
        """As a balancer node (what ``/balancer`` answers)."""
        a = self.address
        return Node(self.id, a.ip, ws=a.ws, wss=a.wss, http=a.http or 8081, flash=a.flash or 1935)

    def encode(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))


@dataclass(frozen=True)
class Claim:
    """``stream:{name}``: the node that publishes ``name``; only that node refreshes or deletes it."""

    name: str
    node: str
    boot: str
    address: Address
    since: float
    serves: bool = True
    "False for a stream published on an edge: the name is taken, but other nodes do not pull it."

    def encode(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))


def _address(raw: Any) -> Address:
    if not isinstance(raw, dict) or not isinstance(raw.get("ip"), str) or not raw["ip"]:
        raise ValueError("no address")
    ports = {k: raw.get(k, 0) for k in ("ws", "wss", "http", "flash")}
    if not all(isinstance(v, int) and 0 <= v < 65536 for v in ports.values()):
        raise ValueError("bad ports")
    return Address(raw["ip"], **ports)


def _strings(raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise ValueError("expected a list of strings")
    return tuple(raw)


def _json(text: object) -> Any:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return json.loads(text) if isinstance(text, str) and text else None


def decode_node(text: object) -> NodeRecord | None:
    """A node record, or None when ``text`` is missing or malformed."""
    try:
        raw = _json(text)
        if not isinstance(raw, dict):
            return None
        upstreams = raw.get("upstreams", {})
        if not isinstance(upstreams, dict) or not all(isinstance(v, str) for v in upstreams.values()):
            return None
        fields = (raw["id"], raw["boot"], raw["role"])
        if not all(isinstance(x, str) for x in fields):
            return None
        numbers = (raw.get("players", 0), raw.get("streams", 0), raw.get("ts", 0.0))
        if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in numbers):
            return None
        return NodeRecord(
            *fields,
            address=_address(raw.get("address")),
            groups=_strings(raw.get("groups", [])),
            players=int(numbers[0]),
            streams=int(numbers[1]),
            carrying=_strings(raw.get("carrying", [])),
            upstreams={str(k): v for k, v in upstreams.items()},
            ts=float(numbers[2]),
        )
    except (ValueError, KeyError, TypeError, RecursionError):
        return None


def decode_claim(text: object) -> Claim | None:
    """A stream claim, or None when ``text`` is missing or malformed."""
    try:
        raw = _json(text)
        if not isinstance(raw, dict):
            return None
        name, node, boot, since = raw["name"], raw["node"], raw["boot"], raw.get("since", 0.0)
        if not all(isinstance(x, str) for x in (name, node, boot)) or not isinstance(since, int | float):
            return None
        return Claim(
            name, node, boot, _address(raw.get("address")), float(since), bool(raw.get("serves", True))
        )
    except (ValueError, KeyError, TypeError, RecursionError):
        return None
