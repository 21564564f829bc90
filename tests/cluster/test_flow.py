"""cluster: an origin and edges in one process on a real redis-server: pull on demand, single flight,
grace close, name uniqueness across the cluster, Redis going away and coming back."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from redis_server import RedisServer
from rtcdn.cluster import RegistryError
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


async def test_edge_pulls_on_demand_once_and_closes_after_grace(
    tmp_path: Path, redis_server: RedisServer
) -> None:
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
            await asyncio.sleep(0.5)  # within the grace period: a new player keeps the same pull
            async with WcsClient(ws(edge)) as again:
                _, _, status = await again.play("cam")
                assert status is not None and status["status"] == "PLAYING"
                assert pulls_of(edge, "cam") == pulls
            started = asyncio.get_running_loop().time()
            await until(lambda: edge.streams.find("cam") is None, timeout=5)
            assert asyncio.get_running_loop().time() - started > 0.7  # not before the grace period
            assert pulls[0].status == "STOPPED"
            assert edge.cluster is not None and edge.cluster.directory.pulls.closed_idle == 1
            # a player after the close gets a fresh pull
            async with WcsClient(ws(edge)) as late:
                _, _, status = await late.play("cam")
                assert status is not None and status["status"] == "PLAYING"
            assert len([r for r in edge.relays if r.direction == "pull" and not r.finished]) <= 1
    finally:
        await edge.close()
        await origin.close()


def pulls_of(server: Server, name: str) -> list[Any]:
    return [
        r for r in server.relays if r.direction == "pull" and r.local_stream_name == name and not r.finished
    ]


async def test_names_are_unique_across_the_cluster_and_unknown_streams_say_so(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    a = node(tmp_path, "origin-a", "origin", redis_server.url)
    b = node(tmp_path, "origin-b", "origin", redis_server.url)
    edge = node(tmp_path, "edge", "edge", redis_server.url)
    for server in (a, b, edge):
        await server.start()
    try:
        async with WcsClient(ws(a)) as pub_a, WcsClient(ws(b)) as pub_b, WcsClient(ws(edge)) as viewer:
            _, _, status = await pub_a.publish("cam")
            assert status is not None and status["status"] == "PUBLISHING"
            _, _, status = await pub_b.publish("cam")
            assert status is not None and (status["status"], status["info"]) == (
                "FAILED",
                "Stream name is already in use",
            )
            assert b.streams.find("cam") is None
            _, _, status = await viewer.play("nobody-publishes-this")
            assert status is not None and (status["status"], status["info"]) == (
                "FAILED",
                "CDN stream not found",
            )
            assert pulls_of(edge, "nobody-publishes-this") == []
            code, streams = await rest(edge, "cdn/streams")
            assert code == 200 and [(s["name"], s["node"]) for s in streams] == [("cam", "origin-a")]
    finally:
        for server in (edge, b, a):
            await server.close()


async def test_point_of_entry_without_a_registry(tmp_path: Path) -> None:
    origin = Server(make_settings(), tmp_path / "plain-origin")  # any WCS-protocol server
    await origin.start()
    edge = node(tmp_path, "edge", "edge", None, cdn_point_of_entry=ws(origin))
    await edge.start()
    try:
        async with WcsClient(ws(origin)) as pub, WcsClient(ws(edge)) as viewer:
            await pub.publish("cam")
            _, pc, status = await viewer.play("cam")
            assert status is not None and status["status"] == "PLAYING"
            video = next(r.track for r in pc.getReceivers() if r.track.kind == "video")
            assert await count_frames(video, 1.0) > 5
            _, _, status = await viewer.play("missing")  # the origin says it is not there
            assert status is not None and (status["status"], status["info"]) == (
                "FAILED",
                "Failed to connect to origin stream",
            )
    finally:
        await edge.close()
        await origin.close()


async def test_a_mid_tier_costs_the_origin_one_upstream(tmp_path: Path, redis_server: RedisServer) -> None:
    origin = node(tmp_path, "origin", "origin", redis_server.url)
    mid = node(tmp_path, "mid", "edge", redis_server.url)
    leaves = [node(tmp_path, f"leaf{i}", "edge", redis_server.url, cdn_upstream="mid") for i in (1, 2)]
    servers = [origin, mid, *leaves]
    for server in servers:
        await server.start()
    await until(lambda: {n.id for n in leaves[0].cluster.directory.live_nodes()} >= {"mid"}, 5)  # type: ignore[union-attr]
    viewers: list[WcsClient] = []
    try:
        async with WcsClient(ws(origin)) as pub:
            await pub.publish("cam")
            for leaf in leaves:
                for _ in range(2):
                    viewer = WcsClient(ws(leaf))
                    viewers.append(viewer)
                    await viewer.connect()
                    _, _, status = await viewer.play("cam")
                    assert status is not None and status["status"] == "PLAYING"
            stream = origin.streams.find("cam")
            assert stream is not None and len(stream.players) == 1  # the mid tier's pull only
            mid_stream = mid.streams.find("cam")
            assert mid_stream is not None and len(mid_stream.players) == 2  # one per leaf
            assert [p.upstream for p in leaves[0].cluster.directory.pulls.pulls.values()] == ["mid"]  # type: ignore[union-attr]
    finally:
        for viewer in viewers:
            await viewer.close()
        for server in reversed(servers):
            await server.close()


async def test_redis_going_away_stops_nothing_and_its_return_heals(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    origin = node(tmp_path, "origin", "origin", redis_server.url)
    edge1 = node(tmp_path, "edge1", "edge", redis_server.url)
    edge2 = node(tmp_path, "edge2", "edge", redis_server.url, cdn_point_of_entry=ws(origin))
    servers = [origin, edge1, edge2]
    for server in servers:
        await server.start()
    try:
        async with (
            WcsClient(ws(origin)) as pub,
            WcsClient(ws(edge1)) as viewer1,
            WcsClient(ws(edge2)) as viewer2,
        ):
            await pub.publish("cam")
            _, pc, status = await viewer1.play("cam")
            assert status is not None and status["status"] == "PLAYING"
            (pull,) = pulls_of(edge1, "cam")
            assert edge1.cluster is not None and origin.cluster is not None
            directory = edge1.cluster.directory
            assert (await directory.lookup("cam")) is not None  # read once: cached
            redis_server.kill()
            await asyncio.sleep(1.0)  # several heartbeats fail
            assert origin.cluster.registry is not None and not origin.cluster.registry.up
            claim = await directory.lookup("cam")  # the cached entry answers
            assert claim is not None and claim.node == "origin" and directory.cache_hits == 1
            with pytest.raises(RegistryError):
                await directory.lookup("never-seen")
            video = next(r.track for r in pc.getReceivers() if r.track.kind == "video")
            assert await count_frames(video, 1.0) > 5  # live playback goes on
            # a cold edge without the registry falls back to cdn_point_of_entry
            _, _, status = await viewer2.play("cam")
            assert status is not None and status["status"] == "PLAYING"
            # a publish while Redis is away is accepted (local uniqueness), claimed when it returns
            async with WcsClient(ws(origin)) as pub2:
                _, _, status = await pub2.publish("cam2")
                assert status is not None and status["status"] == "PUBLISHING"
                redis_server.start()  # empty: everything must be written again
                await until(lambda: origin.cluster.registry.up, 5)  # type: ignore[union-attr]
                async with asyncio.timeout(5):  # every node's next heartbeat writes it all again
                    while True:
                        code, streams = await rest(edge1, "cdn/streams")
                        _, nodes = await rest(edge1, "cdn/nodes")
                        active = {n["id"] for n in nodes if n["state"] == "ACTIVE"}
                        if code == 200 and {s["name"] for s in streams} == {"cam", "cam2"}:
                            if active == {"origin", "edge1", "edge2"}:
                                break
                        await asyncio.sleep(0.1)
            assert pulls_of(edge1, "cam") == [pull] and pull.status == "PLAYING"  # never interrupted
            assert await count_frames(video, 0.5) > 2
    finally:
        for server in reversed(servers):
            await server.close()


async def test_a_name_taken_while_redis_was_away_is_a_visible_conflict(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    # a's heartbeat is slow, so b claims the name in Redis first, then a's heartbeat meets b's claim
    a = node(
        tmp_path, "origin-a", "origin", redis_server.url, cdn_heartbeat_interval=4000, cdn_node_ttl=12000
    )
    b = node(tmp_path, "origin-b", "origin", redis_server.url)
    for server in (a, b):
        await server.start()
    try:
        async with WcsClient(ws(a)) as pub_a, WcsClient(ws(b)) as pub_b:
            redis_server.kill()
            _, _, status = await pub_a.publish("cam")  # accepted: local uniqueness only
            assert status is not None and status["status"] == "PUBLISHING"
            redis_server.start()
            assert b.cluster is not None and b.cluster.registry is not None
            await until(lambda: b.cluster.registry.up, 5)  # type: ignore[union-attr]
            _, _, status = await pub_b.publish("cam")
            assert status is not None and status["status"] == "PUBLISHING"
            assert a.cluster is not None
            await until(lambda: "cam" in a.cluster.directory.conflicts, 8)  # type: ignore[union-attr]
            assert a.cluster.directory.conflicts["cam"] == "origin-b"
            assert a.streams.find("cam") is not None  # a's own players keep their stream
            code, streams = await rest(a, "cdn/streams")
            assert code == 200 and [(s["node"], s["conflict"]) for s in streams] == [("origin-b", "origin-b")]
    finally:
        for server in (b, a):
            await server.close()


async def test_edge_players_hear_how_their_stream_ended(tmp_path: Path, redis_server: RedisServer) -> None:
    origin = node(tmp_path, "origin", "origin", redis_server.url)
    edge = node(tmp_path, "edge", "edge", redis_server.url)
    await origin.start()
    await edge.start()
    try:
        async with WcsClient(ws(origin)) as pub, WcsClient(ws(edge)) as viewer:
            msid, _, _ = await pub.publish("cam")
            play_id, _, status = await viewer.play("cam")
            assert status is not None and status["status"] == "PLAYING"
            await pub.send("unPublishStream", {"mediaSessionId": msid, "name": "cam"})
            status = await viewer.wait_status(play_id, timeout=10)
            assert (status["status"], status["info"]) == ("STOPPED", "Stopped by publisher stop")

            await pub.publish("cam")
            play_id, _, status = await viewer.play("cam")
            assert status is not None and status["status"] == "PLAYING"
            await origin.close()  # the origin shuts down under the edge's pull
            status = await viewer.wait_status(play_id, timeout=10)
            assert (status["status"], status["info"]) == (
                "FAILED",
                "Agent servicing origin stream is shutting down",
            )
    finally:
        await edge.close()
        await origin.close()


async def test_a_cluster_over_a_tls_registry(tmp_path: Path) -> None:
    """``rediss://`` with the CA in the URL (redis-py's ``ssl_ca_certs``): an origin and an edge on a
    redis-server that speaks only TLS find each other, and the edge pulls."""
    from testkit import free_port

    redis_tls = RedisServer("127.0.0.1", free_port("127.0.0.1"), tmp_path / "redis", tls=True)
    redis_tls.start()
    origin = node(tmp_path, "origin1", "origin", redis_tls.url)
    edge = node(tmp_path, "edge1", "edge", redis_tls.url)
    try:
        await origin.start()
        await edge.start()
        async with WcsClient(ws(origin)) as pub, WcsClient(ws(edge)) as viewer:
            await pub.publish("cam")
            _, pc, status = await viewer.play("cam")
            assert status is not None and status["status"] == "PLAYING", status
            video = next(r.track for r in pc.getReceivers() if r.track.kind == "video")
            assert await count_frames(video, 1.0) > 5
            assert edge.cluster is not None and edge.cluster.registry.up
    finally:
        await edge.close()
        await origin.close()
        redis_tls.stop()
