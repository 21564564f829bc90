"""cluster: an origin and edges in one process on a real redis-server: pull on demand, single flight,
grace close, name uniqueness across the cluster, Redis going away and coming back."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp

from redis_server import RedisServer
from rtcdn.server import Server
from testkit import make_settings
from wcs_client import WcsClient, count_frames

FAST = {"cdn_heartbeat_interval": 300, "cdn_node_ttl": 1500, "cdn_pull_close_after": 1000}


def node(tmp_path: Path, name: str, role: str, registry: str | None, **extra: Any) -> Server:
    settings = make_settings(
        cdn_enabled=True, cdn_role=role, cdn_registry_url=registry, node_id=name, **{**FAST, **extra}
    )
    return Server(settings, tmp_path / name)


async def rest(server: Server, method: str) -> Any:
    url = f"http://127.0.0.1:{server.settings.http_ports[0]}/rest-api/{method}"
    async with aiohttp.ClientSession() as http, http.post(url, json={}) as resp:
        return resp.status, await resp.json()


async def until(predicate: Any, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


def ws(server: Server) -> str:
    return f"ws://127.0.0.1:{server.settings.ws_port}"


async def test_edge_pulls_on_demand_once_and_closes_after_grace(tmp_path: Path, redis_server: RedisServer) -> None:
    origin = node(tmp_path, "origin1", "origin", redis_server.url)
    edge = node(tmp_path, "edge1", "edge", redis_server.url)
    await origin.start()
    await edge.start()
    try:
        async with WcsClient(ws(origin)) as pub:
            await pub.publish("cam")
            viewers = [WcsClient(ws(edge)) for _ in range(5)]
            for v in viewers:
                await v.connect()
            plays = await asyncio.gather(*(v.play("cam") for v in viewers))
            assert [status and status["status"] for _, _, status in plays] == ["PLAYING"] * 5
            pulls = [r for r in edge.relays if r.direction == "pull"]
            assert len(pulls) == 1 and pulls[0].status == "PLAYING"
            video = next(r.track for r in plays[0][1].getReceivers() if r.track.kind == "video")
            assert await count_frames(video, 1.0) > 5
            code, routes = await rest(edge, "cdn/show_routes")
            assert code == 200 and list(routes.values()) == ["cam"]
            for v in viewers:
                await v.close()
            await until(lambda: edge.streams.find("cam") is None, timeout=5)
            assert pulls[0].status == "STOPPED"
            # a player after the close gets a fresh pull
            async with WcsClient(ws(edge)) as late:
                _, _, status = await late.play("cam")
                assert status is not None and status["status"] == "PLAYING"
            assert len([r for r in edge.relays if r.direction == "pull" and not r.finished]) <= 1
    finally:
        await edge.close()
        await origin.close()
