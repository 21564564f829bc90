"""REST API CORS (rest_cors_origins) and the request body cap (rest_max_body_bytes)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp

from rtcdn.api.rest import RestOptions
from rtcdn.server import Server
from testkit import make_settings

ALLOWED = "https://console.example"
ServeApi = Callable[..., Awaitable[str]]
"The ``serve_api`` fixture of this folder's conftest."


async def test_listed_origins_are_echoed_others_get_none(serve_api: ServeApi) -> None:
    base = await serve_api(RestOptions(cors_origins=(ALLOWED, "http://127.0.0.1:3000")))
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/rest-api/stream/find_all", headers={"Origin": ALLOWED}) as resp:
            assert resp.status == 404
            assert resp.headers["Access-Control-Allow-Origin"] == ALLOWED
            assert resp.headers["Vary"] == "Origin"
            assert "Access-Control-Allow-Credentials" not in resp.headers
        async with http.post(
            f"{base}/rest-api/stream/find_all", headers={"Origin": "https://evil.example"}
        ) as resp:
            assert resp.status == 404 and "Access-Control-Allow-Origin" not in resp.headers
        async with http.post(f"{base}/rest-api/stream/find_all") as resp:  # not a browser
            assert resp.status == 404 and "Access-Control-Allow-Origin" not in resp.headers
        preflight = {
            "Origin": ALLOWED,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        }
        async with http.options(f"{base}/rest-api/pull/push", headers=preflight) as resp:
            assert resp.status == 204
            assert resp.headers["Access-Control-Allow-Origin"] == ALLOWED
            assert "Authorization" in resp.headers["Access-Control-Allow-Headers"]
            assert "POST" in resp.headers["Access-Control-Allow-Methods"]
        async with http.options(
            f"{base}/rest-api/pull/push", headers={**preflight, "Origin": "https://evil.example"}
        ) as resp:
            assert resp.status == 204
            assert "Access-Control-Allow-Origin" not in resp.headers
            assert "Access-Control-Allow-Headers" not in resp.headers


async def test_star_and_none(serve_api: ServeApi) -> None:
    star, none = await serve_api(RestOptions()), await serve_api(RestOptions(cors_origins=()))
    async with aiohttp.ClientSession() as http:
        async with http.options(
            f"{star}/rest-api/stream/find", headers={"Origin": "https://any.example"}
        ) as resp:
            assert resp.headers["Access-Control-Allow-Origin"] == "*"
            assert "Authorization" in resp.headers["Access-Control-Allow-Headers"]
        async with http.get(f"{star}/rest-api/openapi.json") as resp:
            assert resp.headers["Access-Control-Allow-Origin"] == "*"
        for method in ("OPTIONS", "POST"):
            async with http.request(
                method, f"{none}/rest-api/stream/find", headers={"Origin": "https://a"}
            ) as resp:
                assert not [h for h in resp.headers if h.lower().startswith("access-control-")], method


async def test_cors_origins_from_the_settings(tmp_path: Path) -> None:
    server = Server(make_settings(rest_cors_origins=[ALLOWED]), tmp_path / "state")
    await server.start()
    try:
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{server.settings.http_ports[0]}/rest-api/stream/find_all"
            async with http.get(url, headers={"Origin": ALLOWED}) as resp:
                assert resp.headers["Access-Control-Allow-Origin"] == ALLOWED
    finally:
        await server.close()


async def _chunks(data: bytes, size: int = 512) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def test_body_cap(serve_api: ServeApi) -> None:
    small, default = await serve_api(RestOptions(max_body=1024)), await serve_api(RestOptions())
    body = b'{"name": "' + b"x" * 2000 + b'"}'
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{small}/rest-api/stream/find", data=body) as resp:  # Content-Length
            data = await resp.json()
            assert (resp.status, data["error"]) == (413, "Payload Too Large")
            assert "1024 bytes" in data["message"] and resp.headers["Access-Control-Allow-Origin"] == "*"
        async with http.post(f"{small}/rest-api/stream/find", data=_chunks(body)) as resp:  # chunked
            assert resp.status == 413
        async with http.post(f"{small}/rest-api/stream/find", json={"name": "x" * 900}) as resp:
            assert resp.status == 404  # under the cap: a real answer
        async with http.post(f"{default}/rest-api/stream/find", data=b" " * (64 * 1024 + 1)) as resp:
            assert resp.status == 413  # 64 KiB by default
        async with http.post(f"{default}/rest-api/stream/find", data=b" " * (64 * 1024)) as resp:
            assert resp.status == 404


async def test_body_cap_from_the_settings(tmp_path: Path) -> None:
    server = Server(make_settings(rest_max_body_bytes=100), tmp_path / "state")
    await server.start()
    try:
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{server.settings.http_ports[0]}/rest-api/pull/push"
            async with http.post(url, json={"uri": "ws://127.0.0.1:1", "localStreamName": "a" * 100}) as resp:
                assert resp.status == 413
    finally:
        await server.close()
