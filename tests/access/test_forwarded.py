"""The client's address behind trusted reverse proxies (``X-Forwarded-For``, read from the right)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rtcdn.access.forwarded import MAX_HOPS, ClientAddress

PROXIES = ClientAddress(["127.0.0.1", "127.0.1.0/24", "::1"])


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    assert ClientAddress().of("127.0.0.1", ["127.0.0.9"]) == "127.0.0.1"


def test_a_peer_that_is_not_a_trusted_proxy_is_the_client_whatever_it_sends() -> None:
    assert PROXIES.of("127.0.0.9", ["127.0.0.7"]) == "127.0.0.9"
    assert PROXIES.of("unknown", ["127.0.0.7"]) == "unknown"


def test_the_rightmost_address_that_is_not_a_trusted_proxy_is_the_client() -> None:
    assert PROXIES.of("127.0.0.1", ["127.0.0.9"]) == "127.0.0.9"
    # a client's own X-Forwarded-For (spoofed 127.0.0.5) is left of what the proxies appended
    assert PROXIES.of("127.0.0.1", ["127.0.0.5, 127.0.0.9, 127.0.1.4"]) == "127.0.0.9"
    assert PROXIES.of("127.0.0.1", ["127.0.0.5", "127.0.0.9", "127.0.1.4"]) == "127.0.0.9"  # several headers
    assert PROXIES.of("::1", ["[::ffff:127.0.0.9]:5000"]) == "127.0.0.9"
    assert PROXIES.of("127.0.0.1", ["127.0.0.9:443"]) == "127.0.0.9"


def test_no_header_or_only_proxies_or_garbage_stop_at_the_last_address_believed() -> None:
    assert PROXIES.of("127.0.0.1", []) == "127.0.0.1"
    assert PROXIES.of("127.0.0.1", ["127.0.1.7, 127.0.1.8"]) == "127.0.1.7"
    assert PROXIES.of("127.0.0.1", ["127.0.0.5, nonsense, 127.0.1.8"]) == "127.0.1.8"
    assert PROXIES.of("127.0.0.1", ["unknown"]) == "127.0.0.1"


@given(st.lists(st.text(max_size=20), max_size=3))
def test_any_header_gives_an_address_the_proxies_or_the_header_named(headers: list[str]) -> None:
    client = PROXIES.of("127.0.0.1", headers)
    hops = [h.strip() for header in headers for h in header.split(",")][-MAX_HOPS:]
    assert client == "127.0.0.1" or any(client in hop for hop in hops)
