"""Fixtures of the REST API tests: the API alone on a fake backend, on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from rtcdn.api.rest import RestApi, RestOptions
from rtcdn.stream import StreamManager


class FakeBackend:
    """The narrow backend the REST API needs: a media core, no relays, no pushes, no CDN."""

    def __init__(self) -> None:
        self.streams = StreamManager()
        self.relays: list[object] = []
        self.pushes: list[object] = []
        self.cdn = None


ServeApi = Callable[..., Awaitable[str]]


@pytest.fixture
async def serve_api() -> AsyncIterator[ServeApi]:
    """``await serve_api(options, extra=...)`` -> the base URL (``http://127.0.0.1:PORT``) of a REST API
    on a :class:`FakeBackend` with ``options``; ``extra`` adds routes (path -> GET handler)."""
    runners: list[web.AppRunner] = []

    async def serve(options: RestOptions | None = None, extra: dict[str, Any] | None = None) -> str:
        app = web.Application()
        RestApi(FakeBackend(), options).add_routes(app)  # type: ignore[arg-type]
        for path, handler in (extra or {}).items():
            app.router.add_get(path, handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return f"http://127.0.0.1:{port}"

    yield serve
    for runner in runners:
        await runner.cleanup()
