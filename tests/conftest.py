"""Shared fixtures: an in-process Server on 127.0.0.1 with free ports."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from rtcdn.server import Server
from testkit import free_port, make_settings

__all__ = ["free_port", "make_settings"]


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    srv = Server(make_settings(), tmp_path / "state")
    await srv.start()
    yield srv
    await srv.close()


@pytest.fixture
def ws_url(server: Server) -> str:
    return f"ws://127.0.0.1:{server.settings.ws_port}/"
