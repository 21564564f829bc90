"""Helpers every test may import (``from testkit import make_settings``): also re-exported by the
root conftest, which test folders with a conftest of their own cannot import by name."""

from __future__ import annotations

import socket
from dataclasses import replace

from rtcdn.config import Settings


def free_port(address: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


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
