"""The client's address behind a reverse proxy: ``trusted_proxies`` and ``X-Forwarded-For``.

Behind nginx, HAProxy, Caddy or a cloud load balancer every connection comes from the proxy, so
the caps per client address would count the proxy and logs would name it. A peer listed in
``trusted_proxies`` is believed about who it forwards for: ``X-Forwarded-For`` is read from the
right (each proxy appends the address it got the request from), trusted proxies are skipped, and
the first address that is not one is the client, as nginx's ``real_ip_recursive on``. Anything
else is never believed: a peer that is not a trusted proxy is the client whatever it sends, and an
entry that is not an IP address ends the walk at the last hop that was (a client can write any
``X-Forwarded-For`` it likes; only what trusted proxies appended to it counts).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_HOPS = 32
"Entries of ``X-Forwarded-For`` looked at, from the right; a longer header is cut there."


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6] or [v6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


class ClientAddress:
    """Who a request comes from (see the module docstring)."""

    def __init__(self, trusted: Iterable[str] = ()) -> None:
        self.trusted: list[Network] = [
            ipaddress.ip_network(n.strip(), strict=False) for n in trusted if n.strip()
        ]

    def _trusted(self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return any(ip.version == net.version and ip in net for net in self.trusted)

    def of(self, peer: str, forwarded_for: Sequence[str] = ()) -> str:
        """The client's address: ``peer`` (the socket's), or, when ``peer`` is a trusted proxy, the
        one its ``X-Forwarded-For`` headers (``forwarded_for``, in the order received) name."""
        if not self.trusted:
            return peer
        current = _ip(peer)
        if current is None or not self._trusted(current):
            return peer
        hops = [hop for header in forwarded_for for hop in header.split(",")][-MAX_HOPS:]
        for hop in reversed(hops):
            ip = _ip(hop)
            if ip is None:
                break  # not an address: whatever is left of it is not to be believed
            current = ip
            if not self._trusted(ip):
                break
        return str(current)
