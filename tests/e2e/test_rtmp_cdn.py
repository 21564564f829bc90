"""Static CDN with ``stream_distribution="rtmp"`` and real ``rtcdn serve`` processes: the origin
pushes every live stream over RTMP to each edge's ``<flash>`` port (rtmp://EDGE:1935/live/NAME),
Enhanced RTMP between rtcdn nodes carrying VP8 and Opus as they are.

Edges A (127.0.0.124) and B (127.0.0.125) run on the defaults, each with its RTMP listener on
1935 of its own address. Two origins list both edges in their loadbalancing.xml: one on the
defaults (127.0.0.123: the Two Way Streaming page publishes VP8) and one with ``codecs=opus,h264``
(127.0.0.126: the page publishes H.264).

* VP8: the stream reaches both edges as VP8 (no transcode), the Player page on each edge decodes
  it; ``/rest-api/cdn/streams`` and ``/rest-api/push/find_all`` on the origin show the two
  deliveries. Edge B is SIGKILLed and restarted on the same address: the origin heals it (the
  stream is back on B and plays there within 15 s) while the player on A never stalls.
* H.264: the same stream path with H.264, which reaches the edges as H.264.
* The publisher leaving ends the stream on every edge and their players.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import BrowserContext

from .conftest import rtcdn_process
from .pages import LiveServer, Player, TwoWayStreaming

pytestmark = pytest.mark.asyncio(loop_scope="session")

EDGES = ("127.0.0.124", "127.0.0.125")
ORIGINS = {"VP8": ("127.0.0.123", ""), "H264": ("127.0.0.126", "codecs=opus,h264\n")}
"publisher codec -> (origin address, flashphoner.properties lines besides load_balancing_enabled)"
LOADBALANCING = f"""<?xml version="1.0" encoding="UTF-8"?>
<loadbalancer mode="roundrobin" stream_distribution="rtmp">
  <node id="A"><ip>{EDGES[0]}</ip></node>
  <node id="B"><ip>{EDGES[1]}</ip></node>
</loadbalancer>
"""
HEAL_S = 15.0
"From the restarted edge being ready to its Player page decoding the stream."
MAX_STALL_S = 1.5
"The longest a player must go without a new decoded frame to count as disturbed."


@dataclass
class Edges:
    servers: dict[str, LiveServer]
    base: Path
    stack: contextlib.ExitStack

    def restart(self, host: str) -> LiveServer:
        server = self.stack.enter_context(rtcdn_process(host, self.base / host, None))
        self.servers[host] = server
        return server


@pytest.fixture(scope="module")
def edges(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edges]:
    base = tmp_path_factory.mktemp("rtmp-cdn")
    with contextlib.ExitStack() as stack:
        servers = {host: stack.enter_context(rtcdn_process(host, base / host, None)) for host in EDGES}
        yield Edges(servers, base, stack)


def origin_process(codec: str, edges: Edges) -> Iterator[LiveServer]:
    host, properties = ORIGINS[codec]
    workdir = edges.base / f"origin-{codec}"
    workdir.mkdir()
    (workdir / "loadbalancing.xml").write_text(LOADBALANCING)
    with rtcdn_process(host, workdir, f"load_balancing_enabled=true\n{properties}", codec) as origin:
        yield origin


@pytest.fixture(scope="module")
def vp8_origin(edges: Edges) -> Iterator[LiveServer]:
    yield from origin_process("VP8", edges)


@pytest.fixture(scope="module")
def h264_origin(edges: Edges) -> Iterator[LiveServer]:
    yield from origin_process("H264", edges)


# --- helpers -------------------------------------------------------------------------------------


async def get_json(url: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return resp.status, await resp.json()


async def routes(origin: LiveServer, name: str) -> dict[str, dict[str, Any]]:
    """``/rest-api/cdn/streams`` of ``name``: edge address -> its delivery ({} once not live)."""
    code, found = await get_json(f"{origin.rest_url}/cdn/streams")
    assert code == 200, found
    return {e["ip"]: e for r in found if r["name"] == name for e in r["edges"]}


async def until_delivered(
    origin: LiveServer, name: str, hosts: tuple[str, ...], timeout: float = 10.0
) -> None:
    got: dict[str, dict[str, Any]] = {}
    try:
        async with asyncio.timeout(timeout):
            while True:
                got = await routes(origin, name)
                if all(got.get(h, {}).get("status") == "PUBLISHING" for h in hosts):
                    return
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"{name} not PUBLISHING to {hosts} after {timeout} s: {got}") from None


async def edge_publish_record(edge: LiveServer, name: str) -> dict[str, Any]:
    """The edge's publish record of ``name`` (the origin's RTMP push), once PUBLISHING."""
    async with asyncio.timeout(10):
        while True:
            code, found = await get_json(f"{edge.rest_url}/stream/find_all")
            mine = [r for r in found if r["name"] == name and r["published"]] if code == 200 else []
            if mine and mine[0]["status"] == "PUBLISHING":
                record: dict[str, Any] = mine[0]
                return record
            await asyncio.sleep(0.1)


async def until_gone(edge: LiveServer, name: str, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while True:
            code, found = await get_json(f"{edge.rest_url}/stream/find_all")
            if code == 404 or not [r for r in found if r["name"] == name]:
                return
            await asyncio.sleep(0.1)


async def publish(context: BrowserContext, origin: LiveServer) -> TwoWayStreaming:
    page = await TwoWayStreaming.connect(context, origin)
    await page.publish()
    await page.expect_publishing()  # the page sends the origin's codec
    return page


async def edge_player(context: BrowserContext, edge: LiveServer, name: str, codec: str) -> Player:
    """The edge's own Player page, playing ``name``: decoded frames rising, in ``codec``."""
    player = await Player.load(context, LiveServer(edge.host, codec), name)
    await player.play()
    await player.expect_playing()
    return player


async def expect_on_edges(
    context: BrowserContext, origin: LiveServer, edges: Edges, name: str, codec: str
) -> list[Player]:
    """The stream reached every edge in the publisher's codec, with Opus; each edge's Player page
    plays it; the origin lists the deliveries."""
    await until_delivered(origin, name, EDGES)
    for host in EDGES:
        record = await edge_publish_record(edges.servers[host], name)
        assert (record["mediaProvider"], record["videoCodec"], record["audioCodec"]) == (
            "RTMP",
            codec,
            "opus",
        ), record
    players = [await edge_player(context, edges.servers[host], name, codec) for host in EDGES]
    code, pushes = await get_json(f"{origin.rest_url}/push/find_all")
    assert code == 200, pushes
    live = {p["rtmpUrl"]: p for p in pushes if p["streamName"] == name and p["status"] == "PUBLISHING"}
    assert sorted(live) == [f"rtmp://{h}:1935/live" for h in EDGES], pushes
    delivered = await routes(origin, name)
    for host in EDGES:
        assert delivered[host]["edgeUp"] is True, delivered
        assert delivered[host]["localMediaSessionId"] == live[f"rtmp://{host}:1935/live"]["mediaSessionId"]
    return players


async def end_everywhere(
    origin: LiveServer, edges: Edges, page: TwoWayStreaming, players: list[Player]
) -> None:
    """The publisher leaves: the stream ends on every edge, their players stop, the pushes end."""
    await page.unpublish()
    await asyncio.gather(*(player.expect_stopped() for player in players))
    for host in EDGES:
        await until_gone(edges.servers[host], page.name)
    code, pushes = await get_json(f"{origin.rest_url}/push/find_all")
    assert code == 200, pushes
    mine = [p for p in pushes if p["streamName"] == page.name]
    assert {p["status"] for p in mine} <= {"UNPUBLISHED", "FAILED"}, mine  # every push ended
    last = {p["rtmpUrl"]: (p["status"], p["info"]) for p in mine}  # find_all lists them oldest first
    ended = ("UNPUBLISHED", "Stopped by publisher stop")
    assert last == {f"rtmp://{h}:1935/live": ended for h in EDGES}, mine


class FrameWatch:
    """Samples a page's decoded frames every 0.2 s in the background; ``stall`` is the longest
    stretch during which they did not rise."""

    def __init__(self, player: Player) -> None:
        self.player = player
        self.samples: list[tuple[float, int]] = []
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            stats = await self.player.video_stats()
            self.samples.append((time.monotonic(), stats.frames))
            await asyncio.sleep(0.2)

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    @property
    def stall(self) -> float:
        longest, since, last = 0.0, self.samples[0][0], self.samples[0][1]
        for at, frames in self.samples[1:]:
            if frames > last:
                since, last = at, frames
            longest = max(longest, at - since)
        return longest


# --- tests ---------------------------------------------------------------------------------------


async def test_vp8_reaches_both_edges_as_vp8_and_a_killed_edge_heals(
    context: BrowserContext, vp8_origin: LiveServer, edges: Edges
) -> None:
    origin, victim = vp8_origin, EDGES[1]
    page = await publish(context, origin)
    players = await expect_on_edges(context, origin, edges, page.name, "VP8")
    watch = FrameWatch(players[0])

    os.kill(edges.servers[victim].pid, signal.SIGKILL)
    try:
        async with asyncio.timeout(10):  # the origin notices: the delivery to B is no longer up
            while (await routes(origin, page.name))[victim]["status"] == "PUBLISHING":
                await asyncio.sleep(0.1)
        await asyncio.sleep(2)  # B stays down a while: the origin's pushes to it fail meanwhile
        restarted = edges.restart(victim)
        healing = time.monotonic()
        await until_delivered(origin, page.name, (victim,), timeout=HEAL_S)
        record = await edge_publish_record(restarted, page.name)
        assert (record["mediaProvider"], record["videoCodec"]) == ("RTMP", "VP8"), record
        late = await edge_player(context, restarted, page.name, "VP8")
        healed = time.monotonic() - healing
        assert healed < HEAL_S, f"the restarted edge played the stream {healed:.1f} s after it was up"
        await players[0].expect_video()  # A's player: frames still rising
    finally:
        await watch.stop()
    assert watch.stall < MAX_STALL_S, f"A's player stalled {watch.stall:.1f} s: {watch.samples}"
    assert watch.samples[-1][1] > watch.samples[0][1], watch.samples
    await players[1].page.close()  # its edge was killed under it
    await end_everywhere(origin, edges, page, [players[0], late])


async def test_h264_reaches_both_edges_as_h264(
    context: BrowserContext, h264_origin: LiveServer, edges: Edges
) -> None:
    page = await publish(context, h264_origin)
    players = await expect_on_edges(context, h264_origin, edges, page.name, "H264")
    await end_everywhere(h264_origin, edges, page, players)
