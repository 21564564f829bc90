from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from redis_server import RedisServer, free_port

REDIS_HOST = "127.0.0.1"


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(REDIS_HOST, free_port(REDIS_HOST), tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()
