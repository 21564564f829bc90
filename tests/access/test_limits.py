"""access.limits: WCS's allow_domains syntax, sessions and the connection token bucket per address."""

from __future__ import annotations

import pytest

from rtcdn.access import ConnectionLimits, OriginPolicy
from rtcdn.access import limits as limits_module


def test_allow_domains_syntax() -> None:
    assert OriginPolicy().allows("https://anything.example") and OriginPolicy([]).allows(None)
    policy = OriginPolicy(["wcs.mydomain.com", "*.other.com"])
    assert policy.allows("https://wcs.mydomain.com") and policy.allows("http://WCS.MyDomain.com:8888")
    assert policy.allows("https://a.b.other.com") and not policy.allows("https://other.com")
    assert not policy.allows("https://mydomain.com") and not policy.allows("null")
    assert policy.allows(None)  # not a browser page: not checked
    deny_one = OriginPolicy(["!*.evildomain.com", "*"])  # WCS's example: all but one domain
    assert not deny_one.allows("https://www.evildomain.com") and deny_one.allows("https://good.com")
    assert OriginPolicy(["198.51.100.101"]).allows("https://198.51.100.101:8443")  # a CDN node's cdn_ip


def test_sessions_per_address() -> None:
    limits = ConnectionLimits(max_sessions=2, rate=0, exempt=())
    assert limits.admit("203.0.113.1") is None and limits.admit("203.0.113.1") is None
    assert "2 sessions open from 203.0.113.1" in (limits.admit("203.0.113.1") or "")
    assert limits.admit("203.0.113.2") is None  # another address has its own count
    limits.release("203.0.113.1")
    assert limits.admit("203.0.113.1") is None
    for _ in range(2):
        limits.release("203.0.113.1")
    limits.release("203.0.113.2")
    assert limits.sessions == {}


def test_connection_rate_and_exempt_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(limits_module.time, "monotonic", lambda: now[0])
    limits = ConnectionLimits(max_sessions=0, rate=2, burst=3, exempt=("127.0.0.0/8", "fd00::/8"))
    assert [limits.admit("203.0.113.1") for _ in range(4)][:3] == [None] * 3
    assert "more than 2 new connections a second" in (limits.admit("203.0.113.1") or "")
    now[0] += 0.5  # one token back
    assert limits.admit("203.0.113.1") is None and limits.admit("203.0.113.1") is not None
    assert all(limits.admit(a) is None for a in ["127.0.0.9"] * 10 + ["fd00::1"] * 10)


def test_buckets_are_lru_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits_module, "MAX_TRACKED", 3)
    limits = ConnectionLimits(max_sessions=0, rate=1, burst=1, exempt=())
    for n in range(5):
        assert limits.admit(f"203.0.113.{n}") is None
    assert list(limits._buckets) == ["203.0.113.2", "203.0.113.3", "203.0.113.4"]
    assert limits.admit("203.0.113.0") is None  # forgotten: a fresh bucket
