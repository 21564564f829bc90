"""``relay_allowed_hosts``: where ``/pull/push``, ``/pull/pull`` and ``/push/startup`` (and the
``rtmpUrl`` of a WebSDK ``publishStream``) may make this server connect.

An entry is a host name (``edge1.example.com``), an IP address (``203.0.113.5``, ``::1``), either with a
port (``edge1.example.com:8080``, ``203.0.113.5:1935``, ``[::1]:8080``), or a network in CIDR notation
(``203.0.113.0/24``, ``fd00::/8``). An empty list allows every target (WCS behaviour). Matching is on the
target's text, never on DNS: a name entry matches that name only, an address or a network matches
only targets written as an address (so ``evil.example`` resolving into ``203.0.113.0/24`` is refused,
list it by name to allow it). The nodes of ``loadbalancing.xml`` and the local workers are always
allowed on their ws, wss and RTMP ports (the server passes them as ``always``).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..rtmp.commands import parse_url
from ..rtmp.errors import RtmpError
from ..wcs.client import AgentError, agent_url

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_NAME = re.compile(r"(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*")


class TargetRefused(Exception):
    """A target not in ``relay_allowed_hosts`` (403), or one that cannot be read (400)."""

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.status = status


def _address(host: str) -> Address | None:
    try:
        addr = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _host(text: str) -> str | Address:
    """A normalised target host: an address, or a lower-case name without the final dot."""
    addr = _address(text)
    return addr if addr is not None else text.lower().rstrip(".")


@dataclass(frozen=True)
class Entry:
    host: str | Address | None = None
    port: int | None = None
    network: Network | None = None

    def matches(self, host: str | Address, port: int) -> bool:
        if self.network is not None:
            return not isinstance(host, str) and host.version == self.network.version and host in self.network
        return host == self.host and (self.port is None or self.port == port)


def parse_entry(text: str) -> Entry:
    """One ``relay_allowed_hosts`` entry; ValueError says what is wrong."""
    item = text.strip()
    if "/" in item:
        try:
            return Entry(network=ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not a network (CIDR such as 203.0.113.0/24)") from None
    host, port = item, None
    if item.startswith("["):  # [v6]:port or [v6]
        inside, _, rest = item[1:].partition("]")
        host = inside
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"{item!r}: expected [address]:port")
            port = _port(item, rest[1:])
    elif item.count(":") == 1:
        host, _, text_port = item.partition(":")
        port = _port(item, text_port)
    normal = _host(host)
    if isinstance(normal, str) and not _NAME.fullmatch(normal):
        raise ValueError(f"{item!r} is not a host, host:port, address or CIDR network")
    return Entry(host=normal, port=port)


def _port(item: str, text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"{item!r}: bad port {text!r}")
    return int(text)


def parse_entries(items: Iterable[str]) -> list[Entry]:
    return [parse_entry(item) for item in items if item.strip()]


class TargetPolicy:
    """Whether a relay or push target is allowed. ``entries``: the parsed ``relay_allowed_hosts``
    (empty: everything is); ``always``: ``(host, port)`` of the CDN nodes and local workers."""

    def __init__(self, entries: Iterable[str] = (), always: Iterable[tuple[str, int]] = ()) -> None:
        self.entries = parse_entries(entries)
        self.always = {(_host(host), port) for host, port in always if port}

    @property
    def restricted(self) -> bool:
        return bool(self.entries)

    def allows(self, host: str, port: int) -> bool:
        if not self.entries:
            return True
        normal = _host(host)
        return (normal, port) in self.always or any(e.matches(normal, port) for e in self.entries)

    def _check(self, kind: str, host: str, port: int) -> None:
        if not self.allows(host, port):
            shown = f"[{host}]" if ":" in host else host
            raise TargetRefused(f"{kind} target {shown}:{port} is not allowed (not in relay_allowed_hosts)")

    def check_relay(self, uri: str, use_ssl: bool) -> None:
        """Raise :class:`TargetRefused` unless the relay ``uri`` may be connected to (the URL checked
        is the one the relay will open: :func:`~rtcdn.wcs.client.agent_url`)."""
        if not self.entries:
            return
        try:
            parts = urlsplit(agent_url(uri, use_ssl))
            host, port = parts.hostname, parts.port
        except (AgentError, ValueError) as exc:
            info = exc.info if isinstance(exc, AgentError) else f"Bad URI: {uri!r} ({exc})"
            raise TargetRefused(info, 400) from None
        if host is None or port is None:
            raise TargetRefused(f"Bad URI: {uri!r} (no host or port)", 400)
        self._check("relay", host, port)

    def check_rtmp(self, target: str) -> None:
        """Raise :class:`TargetRefused` unless the RTMP URL ``target`` (the full URL the push opens:
        :func:`~rtcdn.rtmp.push.target_url`) may be pushed to."""
        if not self.entries:
            return
        try:
            parsed = parse_url(target)
        except RtmpError as exc:
            raise TargetRefused(f"bad rtmpUrl {target!r}: {exc}", 400) from None
        self._check("push", parsed.host, parsed.port)
