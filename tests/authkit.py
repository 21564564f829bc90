"""Helpers of the access-control tests (``from authkit import ...``): tokens, an auth-on test node,
and a real aiohttp REST-hook backend on 127.0.0.1 that records every call and answers per method."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from aiohttp import web

from rtcdn.config import Settings
from rtcdn.server import Server
from testkit import make_settings

SECRET = b"rtcdn-test-secret-0123456789abcdef"
"32+ bytes: the HMAC key ``k1`` of the test nodes."
KEYS = (("k1", SECRET),)


def token(
    publish: list[str] | None = None,
    play: list[str] | None = None,
    *,
    key: Any = SECRET,
    kid: str | None = "k1",
    alg: str = "HS256",
    ttl: float = 300,
    **claims: Any,
) -> str:
    """A signed client token granting ``publish``/``play`` globs; ``claims`` add or override."""
    now = int(time.time())
    body: dict[str, Any] = {"sub": "user-1", "iat": now, "exp": now + ttl, "rtcdn": {}}
    if publish is not None:
        body["rtcdn"]["publish"] = publish
    if play is not None:
        body["rtcdn"]["play"] = play
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    headers = {"kid": kid} if kid is not None else None
    return jwt.encode(body, key, algorithm=alg, headers=headers)


def auth_settings(**overrides: Any) -> Settings:
    """A test node with token auth on (key ``k1``) and no refusal delay, then ``overrides``."""
    base: dict[str, Any] = {"auth_jwt_keys": KEYS, "auth_failure_delay_ms": (0, 0)}
    return make_settings(**{**base, **overrides})


@contextlib.asynccontextmanager
async def running(settings: Settings, state: Path) -> AsyncIterator[Server]:
    server = Server(settings, state)
    await server.start()
    try:
        yield server
    finally:
        await server.close()


def ws_url(server: Server) -> str:
    return f"ws://127.0.0.1:{server.settings.ws_port}/"


Answer = Callable[[dict[str, Any]], Awaitable[int]]


@dataclass
class Call:
    method: str
    body: dict[str, Any]
    raw: bytes
    headers: dict[str, str]


@dataclass
class HookBackend:
    """A WCS REST-hook backend: ``POST /hooks/{method}``; ``status[method]`` (default 200) or
    ``answers[method]`` (an async function of the body returning the status: slow ones time out)."""

    status: dict[str, int] = field(default_factory=dict)
    answers: dict[str, Answer] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None
    _seen: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> HookBackend:
        app = web.Application()
        app.router.add_post("/hooks/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/hooks"
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        raw = await request.read()
        body = json.loads(raw)
        self.calls.append(Call(method, body, raw, dict(request.headers)))
        self._seen.set()
        answer = self.answers.get(method)
        status = await answer(body) if answer is not None else self.status.get(method, 200)
        return web.json_response(body, status=status)

    def of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    async def wait_call(self, method: str, predicate: Callable[[Call], bool] = lambda c: True,
                        timeout: float = 10) -> Call:  # fmt: skip
        async with asyncio.timeout(timeout):
            while True:
                self._seen.clear()
                for call in self.of(method):
                    if predicate(call):
                        return call
                await self._seen.wait()


@contextlib.asynccontextmanager
async def hook_backend(**status: int) -> AsyncIterator[HookBackend]:
    backend = await HookBackend(status=dict(status)).start()
    try:
        yield backend
    finally:
        await backend.close()
