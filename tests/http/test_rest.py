"""http.rest: real responses validated against openapi.json; every route is documented; CORS."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema
import pytest

from conftest import make_settings
from rtcdn.http.rest import OPENAPI
from rtcdn.server import Server
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


def test_every_route_is_documented(tmp_path: Path) -> None:
    from rtcdn.http.app import create_http_app

    app = create_http_app(Server(make_settings(), tmp_path))
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
