"""api.rest: real responses validated against openapi.json; every route is documented; CORS."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema
import pytest
from aiohttp import web

from rtcdn.api.rest import OPENAPI, RestApi
from rtcdn.server import Server
from rtcdn.stream import EndReason, MediaRecord, MediaState, StreamManager
from testkit import make_settings
from wcs_client import WcsClient

DOC: dict[str, Any] = json.loads(OPENAPI.read_text())


def check(path: str, status: int, body: Any) -> None:
    """Validate a response body against the documented schema for (path, status)."""
    responses = DOC["paths"][path]["post"]["responses"]
    assert str(status) in responses, f"{path} answered {status}, which is not documented"
    schema = responses[str(status)]["content"]["application/json"]["schema"]
    jsonschema.Draft202012Validator({**schema, "components": DOC["components"]}).validate(body)


class Api:
    def __init__(self, server: Server, http: aiohttp.ClientSession) -> None:
        self.base = f"http://127.0.0.1:{server.settings.http_ports[0]}"
        self.http = http

    async def call(self, method: str, body: Any = None, raw: bytes | None = None) -> tuple[int, Any]:
        path = f"/rest-api/{method}"
        kwargs: dict[str, Any] = {"data": raw} if raw is not None else {"json": body}
        async with self.http.post(self.base + path, **kwargs) as resp:
            assert resp.headers["Access-Control-Allow-Origin"] == "*"
            data = await resp.json()
        check(path, resp.status, data)
        return resp.status, data


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[Api, Server, Server]]:
    a, b = Server(make_settings(), tmp_path / "a"), Server(make_settings(), tmp_path / "b")
    await a.start()
    await b.start()
    async with aiohttp.ClientSession() as http:
        yield Api(a, http), a, b
    await a.close()
    await b.close()


class FakeBackend:
    """The narrow backend the REST API needs: a media core, relays, no CDN."""

    def __init__(self) -> None:
        self.streams = StreamManager()
        self.relays: list[object] = []
        self.pushes: list[object] = []
        self.cdn = None


class FakeSession:
    def __init__(self, media_id: str, name: str) -> None:
        self.id = media_id
        self.name = name
        self.ended: list[EndReason] = []

    def describe(self) -> MediaRecord:
        state = MediaState.ENDED if self.ended else MediaState.PLAYING
        return MediaRecord(self.id, self.name, False, "test", state, "session-1", "app", 1.5)

    def terminate(self, reason: EndReason) -> None:
        self.ended.append(reason)


def test_every_route_is_documented() -> None:
    app = web.Application()
    RestApi(FakeBackend()).add_routes(app)  # type: ignore[arg-type]
    routes = {r.resource.canonical for r in app.router.routes() if r.resource is not None}
    rest = {p for p in routes if p.startswith("/rest-api/") and "{" not in p}
    assert rest == set(DOC["paths"])


async def test_responses_match_openapi(api: tuple[Api, Server, Server]) -> None:
    rest, a, b = api
    uri = f"ws://127.0.0.1:{b.settings.ws_port}"
    assert (await rest.call("pull/find_all"))[0] == 404
    assert (await rest.call("stream/find_all"))[0] == 404
    assert (await rest.call("pull/push", raw=b"{oops"))[0] == 400
    assert (await rest.call("pull/push", {"uri": uri}))[0] == 400
    assert (await rest.call("pull/push", {"uri": uri, "localStreamName": "x", "remoteStreamName": "x"}))[
        0
    ] == 404
    async with WcsClient(f"ws://127.0.0.1:{a.settings.ws_port}") as pub:
        msid, _, _ = await pub.publish("s1")
        code, streams = await rest.call("stream/find_all")
        assert code == 200 and streams[0]["mediaSessionId"] == msid and streams[0]["videoCodec"] == "VP8"
        assert (await rest.call("stream/find", {"name": "s1", "published": True}))[0] == 200
        assert (await rest.call("stream/find", {"name": "zz"}))[0] == 404
        assert (await rest.call("stream/find", {"bogus": 1}))[0] == 400
        code, relay = await rest.call(
            "pull/push", {"uri": uri, "localStreamName": "s1", "remoteStreamName": "s1"}
        )
        assert code == 200 and relay["status"] in ("NEW", "PENDING")
        assert (
            await rest.call("pull/push", {"uri": uri, "localStreamName": "s1", "remoteStreamName": "s1"})
        )[0] == 409
        assert (await rest.call("pull/find", {"localStreamName": "s1"}))[0] == 200
        assert (await rest.call("pull/find", {"uri": "ws://elsewhere:8080"}))[0] == 404
        assert (await rest.call("pull/terminate", {}))[0] == 400
        assert (await rest.call("pull/terminate", {"localMediaSessionId": relay["localMediaSessionId"]}))[
            0
        ] == 200
        assert (await rest.call("stream/terminate", {}))[0] == 400
        code, ended = await rest.call("stream/terminate", {"mediaSessionId": msid})
        assert code == 200 and ended[0]["name"] == "s1"
        status = await pub.wait_status(msid)
        assert (status["status"], status["info"]) == ("UNPUBLISHED", "Stopped by rest /terminate")


async def test_preflight_and_unknown_method(api: tuple[Api, Server, Server]) -> None:
    rest, _, _ = api
    async with rest.http.options(rest.base + "/rest-api/pull/push", headers={"Origin": "http://x"}) as resp:
        assert resp.status == 204 and resp.headers["Access-Control-Allow-Origin"] == "*"
    async with rest.http.post(rest.base + "/rest-api/nope") as resp:
        assert resp.status == 404 and (await resp.json())["error"] == "Not Found"
    async with rest.http.get(rest.base + "/rest-api/openapi.json") as resp:
        assert (await resp.json())["openapi"].startswith("3.1")


async def test_stream_find_and_terminate_against_a_fake_backend() -> None:
    backend = FakeBackend()
    session = FakeSession("m1", "cam")
    backend.streams.sessions.add(session)
    app = web.Application()
    RestApi(backend).add_routes(app)  # type: ignore[arg-type]
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{port}/rest-api"
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(base + "/stream/find", json={"name": "cam"}) as resp:
                assert resp.status == 200
                (record,) = await resp.json()
            assert record["mediaSessionId"] == "m1" and record["status"] == "PLAYING"
            assert record["createDate"] == 1500 and record["hasVideo"] is False
            async with http.post(base + "/stream/terminate", json={"mediaSessionId": "m1"}) as resp:
                assert resp.status == 200
            assert session.ended == [EndReason.TERMINATED]
            async with http.post(base + "/stream/find", json={"name": "cam"}) as resp:
                assert resp.status == 404  # an ended session is not listed
            async with http.post(base + "/cdn/streams") as resp:
                assert resp.status == 404
    finally:
        await runner.cleanup()
