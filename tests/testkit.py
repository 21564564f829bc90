"""Helpers every test may import (``from testkit import make_settings``): also re-exported by the
root conftest, which test folders with a conftest of their own cannot import by name."""

from __future__ import annotations

import random
import socket
from dataclasses import replace

from rtcdn.config import Settings


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_HANDED_OUT: set[int] = set()


def free_port(address: str = "127.0.0.1") -> int:
    """A port free on ``address`` for TCP and UDP, below the kernel's ephemeral range and never handed
    out twice by this process. A port from ``bind(0)`` lies inside that range, so between the probe
    and the server's own bind an outgoing connection may take it as its source port (EADDRINUSE);
    outgoing connections never take a port below the range."""
    high = _ephemeral_low()
    low = max(1024, high - 12000)
    for _ in range(1000):
        port = random.randrange(low, high)
        if port in _HANDED_OUT:
            continue
        try:
            with socket.socket() as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                tcp.bind((address, port))
                udp.bind((address, port))
        except OSError:
            continue
        _HANDED_OUT.add(port)
        return port
    raise RuntimeError(f"no free port below {high} on {address}")


def make_settings(**overrides: object) -> Settings:
    """Settings for an in-process test server (loopback, free ports, quick timers), then ``overrides``."""
    settings = Settings(
        bind="127.0.0.1",
        ws_port=free_port(),
        wss_port=0,
        rtmp_port=free_port(),
        http_ports=[free_port()],
        https_ports=[],
        media_port_from=0,
        media_port_to=0,
        keep_alive_interval_ms=1000,
        keep_alive_probes=3,
        webrtc_connect_timeout_ms=5000,
    )
    return replace(settings, **overrides)  # type: ignore[arg-type]  # any field=value


def drain_datagrams(sock: socket.socket) -> int:
    """Read every datagram queued on ``sock`` without waiting; how many there were."""
    sock.setblocking(False)
    count = 0
    while True:
        try:
            sock.recv(65536)
        except BlockingIOError:
            return count
        count += 1
