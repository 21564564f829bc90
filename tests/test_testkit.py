"""testkit.free_port: ports outside the kernel's ephemeral range, each handed out once."""

from __future__ import annotations

import socket

from testkit import _ephemeral_low, free_port


def test_free_ports_are_below_the_ephemeral_range_distinct_and_bindable() -> None:
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == 50
    assert all(1024 <= p < _ephemeral_low() for p in ports)
    with socket.socket() as s:
        s.bind(("127.0.0.1", ports[0]))  # still free: nothing kept it


def test_free_port_on_another_loopback_address() -> None:
    port = free_port("127.0.0.3")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.3", port))
