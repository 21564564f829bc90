"""Admission of WebSocket connections: the Origin check and the caps per client address.

* :class:`OriginPolicy` is WCS's ``allow_domains``: a comma-separated list of domain patterns
  (``*`` wildcards, case-insensitive) checked in order against the host of the ``Origin`` header;
  the first match decides, a pattern starting with ``!`` forbids. No match forbids; an empty list
  allows every Origin. A request without an ``Origin`` (a relay, a non-browser client: nothing a web
  page can do) is not checked.
* :class:`ConnectionLimits`: at most ``max_sessions_per_ip`` sessions open per address and a
  token bucket of new connections per address (``connection_rate_per_ip`` a second, bursts of
  ``connection_burst_per_ip``). The buckets live in an LRU-bounded dict; addresses in
  ``limits_exempt_ips`` (loopback by default: local tools, benchmarks) are not counted.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import time
from collections import OrderedDict
from collections.abc import Iterable
from urllib.parse import urlsplit

MAX_TRACKED = 10_000
"Addresses whose token bucket is remembered; the least recently seen go first."


class OriginPolicy:
    """``allow_domains`` (see the module docstring)."""

    def __init__(self, patterns: Iterable[str] = ()) -> None:
        self.rules = [(p.startswith("!"), p.lstrip("!").strip().lower()) for p in patterns if p.strip("! ")]

    def allows(self, origin: str | None) -> bool:
        if not self.rules or origin is None:
            return True
        try:
            host = urlsplit(origin.strip()).hostname or origin.strip().lower()
        except ValueError:
            return False
        for negated, pattern in self.rules:
            if fnmatch.fnmatchcase(host, pattern):
                return not negated
        return False


class ConnectionLimits:
    """Caps per client address (see the module docstring); not thread-safe, used from the loop."""

    def __init__(
        self,
        max_sessions: int = 50,
        rate: float = 10.0,
        burst: int = 20,
        exempt: Iterable[str] = ("127.0.0.0/8", "::1"),
    ) -> None:
        self.max_sessions = max_sessions
        self.rate = rate
        self.burst = burst
        self.exempt = [ipaddress.ip_network(n, strict=False) for n in exempt]
        self.sessions: dict[str, int] = {}
        "Open sessions by address."
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        "Address → (tokens, when they were counted)."

    def _exempt(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.exempt)

    def admit(self, address: str) -> str | None:
        """Count a new session of ``address``: None, or why it is refused (nothing is counted then).
        An admitted session must be :meth:`release`\\ d."""
        if self._exempt(address):
            self.sessions[address] = self.sessions.get(address, 0) + 1
            return None
        if self.rate > 0 and not self._take(address):
            return f"more than {self.rate:g} new connections a second from {address}"
        open_now = self.sessions.get(address, 0)
        if self.max_sessions and open_now >= self.max_sessions:
            return f"{open_now} sessions open from {address} (max {self.max_sessions})"
        self.sessions[address] = open_now + 1
        return None

    def release(self, address: str) -> None:
        left = self.sessions.get(address, 0) - 1
        if left > 0:
            self.sessions[address] = left
        else:
            self.sessions.pop(address, None)

    def _take(self, address: str) -> bool:
        now = time.monotonic()
        tokens, then = self._buckets.pop(address, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - then) * self.rate)
        allowed = tokens >= 1.0
        self._buckets[address] = (tokens - 1.0 if allowed else tokens, now)
        while len(self._buckets) > MAX_TRACKED:
            self._buckets.popitem(last=False)
        return allowed
