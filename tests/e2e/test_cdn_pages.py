"""Static CDN with three rtcdn processes, configured by real flashphoner.properties and
loadbalancing.xml files: an origin (127.0.0.91) and two edges (127.0.0.92, 127.0.0.93)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import BrowserContext

from .conftest import rtcdn_process
from .pages import LiveServer, Player, TwoWayStreaming

pytestmark = pytest.mark.asyncio(loop_scope="session")

ORIGIN, EDGES = "127.0.0.91", ("127.0.0.92", "127.0.0.93")
LOADBALANCING = """<?xml version="1.0" encoding="UTF-8"?>
<loadbalancer mode="roundrobin" stream_distribution="webrtc">
  <node id="1"><ip>127.0.0.92</ip></node>
  <node id="2"><ip>127.0.0.93</ip></node>
</loadbalancer>
"""


@pytest.fixture(scope="module")
def cdn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("cdn")
    origin_dir = base / "origin"
    origin_dir.mkdir()
    (origin_dir / "loadbalancing.xml").write_text(LOADBALANCING)
    with contextlib.ExitStack() as stack:
        edges = {host: stack.enter_context(rtcdn_process(host, base / host, None)) for host in EDGES}
        origin = stack.enter_context(rtcdn_process(ORIGIN, origin_dir, "load_balancing_enabled=true\n"))
        yield {"origin": origin, "edges": edges, "base": base, "stack": stack}


async def get_json(url: str) -> Any:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def edge_status(origin: LiveServer, name: str, host: str) -> str:
    for route in await get_json(f"{origin.rest_url}/cdn/streams"):
        if route["name"] == name:
            return next(str(e["status"]) for e in route["edges"] if e["ip"] == host)
    return "none"


async def until_pushed(origin: LiveServer, name: str, hosts: tuple[str, ...], timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while [await edge_status(origin, name, h) for h in hosts] != ["PUBLISHING"] * len(hosts):
            await asyncio.sleep(0.2)


async def balanced_player(context: BrowserContext, origin: LiveServer, name: str) -> Player:
    """The Player page reached through the origin's balancer: it lands on an edge's own page."""
    page = await context.new_page()
    await page.goto(f"http://{origin.host}:9091/balancer/player?streamName={name}")
    host = page.url.split("/")[2].split(":")[0]
    assert host in EDGES, page.url
    player = Player(page, LiveServer(host, "VP8"))
    await player.play()
    await player.expect_playing()
    return player


async def test_players_land_on_different_edges_and_unpublish_ends_both(
    context: BrowserContext, cdn: dict[str, Any]
) -> None:
    origin: LiveServer = cdn["origin"]
    publisher = await TwoWayStreaming.connect(context, origin)
    await publisher.publish()
    await publisher.expect_publishing()
    await until_pushed(origin, publisher.name, EDGES, timeout=10)
    first = await balanced_player(context, origin, publisher.name)
    second = await balanced_player(context, origin, publisher.name)
    assert first.server.host != second.server.host  # round robin
    await publisher.unpublish()
    await first.expect_stopped()
    await second.expect_stopped()


async def test_edge_killed_and_restarted(context: BrowserContext, cdn: dict[str, Any]) -> None:
    origin: LiveServer = cdn["origin"]
    victim, survivor = cdn["edges"][EDGES[1]], cdn["edges"][EDGES[0]]
    publisher = await TwoWayStreaming.connect(context, origin)
    await publisher.publish()
    await publisher.expect_publishing()
    await until_pushed(origin, publisher.name, EDGES, timeout=10)
    watcher = await balanced_player(context, origin, publisher.name)

    os.kill(victim.pid, signal.SIGKILL)
    async with asyncio.timeout(10):  # the balancer stops sending players to the dead edge
        while {(await get_json(f"http://{ORIGIN}:8081/balancer"))["server"] for _ in range(4)} != {
            survivor.host
        }:
            await asyncio.sleep(0.2)
    await watcher.expect_video()  # players elsewhere are not disturbed

    restarted = cdn["stack"].enter_context(rtcdn_process(victim.host, Path(cdn["base"]) / victim.host, None))
    await until_pushed(origin, publisher.name, (restarted.host,), timeout=10)
    late = await Player.load(context, restarted, publisher.name)
    await late.play()
    await late.expect_playing()
    await publisher.unpublish()
