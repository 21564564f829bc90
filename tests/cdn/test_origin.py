"""cdn.origin: an origin and two edges in one process: push to every edge, balancer, edge restart."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp

from rtcdn.config import Settings
from rtcdn.server import Server
from testkit import make_settings
from wcs_client import WcsClient, count_frames


def edge_settings() -> Settings:
    return make_settings()


async def get(url: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.get(url, allow_redirects=False) as resp:
        body = await resp.json() if resp.content_type == "application/json" else await resp.text()
        return resp.status, body if resp.status != 302 else resp.headers["Location"]


async def until(predicate: Any, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not await predicate():
            await asyncio.sleep(0.1)


async def test_origin_pushes_to_edges_and_survives_an_edge_restart(tmp_path: Path) -> None:
    edges = [Server(edge_settings(), tmp_path / f"edge{i}") for i in (1, 2)]
    for edge in edges:
        await edge.start()
    nodes = "".join(
        f'<node id="{i}"><ip>127.0.0.1</ip><ws>{e.settings.ws_port}</ws><http>{e.settings.http_ports[0]}</http></node>'
        for i, e in enumerate(edges, 1)
    )
    config = tmp_path / "origin-conf"
    config.mkdir()
    (config / "loadbalancing.xml").write_text(
        f'<loadbalancer mode="roundrobin" stream_distribution="webrtc">{nodes}</loadbalancer>'
    )
    origin = Server(make_settings(load_balancing_enabled=True, config_dir=config), tmp_path / "origin")
    await origin.start()
    base = f"http://127.0.0.1:{origin.settings.http_ports[0]}"
    try:
        async with WcsClient(f"ws://127.0.0.1:{origin.settings.ws_port}") as pub:
            msid, _, _ = await pub.publish("live")

            async def on_every_edge() -> bool:
                return all(e.streams.find("live") is not None and e.streams.find("live").live for e in edges)  # type: ignore[union-attr]

            await until(on_every_edge)
            await until(lambda: _all_up(origin))
            picks = [(await get(f"{base}/balancer"))[1]["ws"] for _ in range(4)]
            ports = [e.settings.ws_port for e in edges]
            assert picks == ports + ports  # round robin
            code, routes = await get(f"{base}/rest-api/cdn/streams")
            assert code == 200 and [e["status"] for e in routes[0]["edges"]] == ["PUBLISHING", "PUBLISHING"]
            code, location = await get(f"{base}/balancer/embed_player?streamName=live")
            assert code == 302 and f"urlServer=ws://127.0.0.1:{edges[0].settings.ws_port}" in location

            # edge 2 goes away: the balancer stops sending players there
            await edges[1].close()
            await until(lambda: _up(origin, "2", False))
            assert {(await get(f"{base}/balancer"))[1]["ws"] for _ in range(3)} == {ports[0]}
            # it comes back on the same ports: the stream is pushed to it again within seconds
            edges[1] = Server(edges[1].settings, tmp_path / "edge2")
            await edges[1].start()
            await until(on_every_edge, timeout=10)
            async with WcsClient(f"ws://127.0.0.1:{ports[1]}") as viewer:
                _, pc, status = await viewer.play("live")
                assert status is not None and status["status"] == "PLAYING"
                video = next(r.track for r in pc.getReceivers() if r.track.kind == "video")
                assert await count_frames(video, 1.5) > 5

            await pub.send("unPublishStream", {"mediaSessionId": msid, "name": "live"})

            async def gone() -> bool:
                return all(e.streams.find("live") is None for e in edges)

            await until(gone)
        code, stat = await get(f"{base}/?action=stat")
        assert code == 200 and "calls=" in stat and "systemCpuLoad=" in stat
    finally:
        await origin.close()
        for edge in edges:
            await edge.close()


async def _up(origin: Server, node: str, state: bool) -> bool:
    assert origin.balancer is not None
    return origin.balancer.health[node].up is state


async def _all_up(origin: Server) -> bool:
    assert origin.balancer is not None
    return all(h.up for h in origin.balancer.health.values())


async def test_no_live_edge_answers_the_origin(tmp_path: Path) -> None:
    config = tmp_path / "conf"
    config.mkdir()
    (config / "loadbalancing.xml").write_text(
        '<loadbalancer><node id="1"><ip>127.0.0.1</ip><ws>9</ws><http>9</http></node></loadbalancer>'
    )
    origin = Server(make_settings(load_balancing_enabled=True, config_dir=config), tmp_path / "o")
    await origin.start()
    try:
        code, reply = await get(f"http://127.0.0.1:{origin.settings.http_ports[0]}/balancer")
        assert code == 200 and reply["node"] == "origin" and reply["ws"] == origin.settings.ws_port
    finally:
        await origin.close()


async def test_rtmp_distribution_reaches_edges_and_heals(tmp_path: Path) -> None:
    """stream_distribution="rtmp": the origin pushes over RTMP to each edge's flash port; VP8 and
    Opus travel as Enhanced RTMP between rtcdn nodes; an edge restarted gets the stream again."""
    edge = Server(make_settings(codecs=["opus", "vp8", "h264"]), tmp_path / "edge")
    await edge.start()
    s = edge.settings
    config = tmp_path / "origin-conf"
    config.mkdir()
    (config / "loadbalancing.xml").write_text(
        '<loadbalancer stream_distribution="rtmp"><node id="1"><ip>127.0.0.1</ip>'
        f"<ws>{s.ws_port}</ws><http>{s.http_ports[0]}</http><flash>{s.rtmp_port}</flash></node></loadbalancer>"
    )
    settings = make_settings(load_balancing_enabled=True, config_dir=config, codecs=["opus", "vp8"])
    origin = Server(settings, tmp_path / "origin")
    await origin.start()
    base = f"http://127.0.0.1:{origin.settings.http_ports[0]}"

    async def on_edge() -> bool:
        stream = edge.streams.find("live")
        return stream is not None and stream.live

    try:
        async with WcsClient(f"ws://127.0.0.1:{origin.settings.ws_port}") as pub:
            await pub.publish("live")
            await until(on_edge)
            tracks = edge.streams.get_live("live").track_infos()
            assert (tracks["video"].mime_type, tracks["audio"].mime_type) == ("video/VP8", "audio/opus")
            code, routes = await get(f"{base}/rest-api/cdn/streams")
            assert code == 200 and routes[0]["edges"][0]["status"] == "PUBLISHING"
            async with WcsClient(f"ws://127.0.0.1:{s.ws_port}") as viewer:
                _, pc, status = await viewer.play("live")
                assert status is not None and status["status"] == "PLAYING"
                video = next(r.track for r in pc.getReceivers() if r.track.kind == "video")
                assert await count_frames(video, 4.0) > 10
            await edge.close()
            await until(lambda: _up(origin, "1", False))
            edge = Server(s, tmp_path / "edge")
            await edge.start()
            await until(on_edge, timeout=15)
    finally:
        await origin.close()
        await edge.close()
