"""Node-to-node service tokens: a relay from an auth-on origin reaches an auth-on edge (whose REST
hooks are not asked about it, keep-alive included), a node without the keys is refused, and the CDN's
RTMP distribution carries the token in the stream key."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from authkit import auth_settings, hook_backend, running, token, ws_url
from rtcdn.server import Server
from rtcdn.wcs.client import AgentError
from testkit import make_settings
from wcs_client import WcsClient, count_frames


async def rest(server: Server, method: str, body: dict[str, Any]) -> tuple[int, Any]:
    url = f"http://127.0.0.1:{server.settings.http_ports[0]}/rest-api/{method}"
    async with aiohttp.ClientSession() as http, http.post(url, json=body) as resp:
        return resp.status, await resp.json()


async def relay_status(server: Server, until: tuple[str, ...], timeout: float = 15) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            _, records = await rest(server, "pull/find_all", {})
            if records and records[0]["status"] in until:
                return records[0]  # type: ignore[no-any-return]
            await asyncio.sleep(0.1)


async def test_a_relay_carries_a_service_token_past_the_edges_hooks(tmp_path: Path) -> None:
    async with hook_backend(
        connect=403, publishStream=403, playStream=403, StreamKeepAliveEvent=403
    ) as backend:
        edge_settings = auth_settings(
            rest_hooks_url=backend.url,
            keep_alive_streaming_sessions_enabled=True,
            streaming_sessions_keep_alive_interval=200,
        )
        async with (
            running(auth_settings(), tmp_path / "origin") as origin,
            running(edge_settings, tmp_path / "edge") as edge,
        ):
            async with WcsClient(ws_url(origin), custom={"token": token(["cam"])}) as publisher:
                _, _, status = await publisher.publish("cam")
                assert status is not None and status["status"] == "PUBLISHING"
                code, record = await rest(
                    origin,
                    "pull/push",
                    {"uri": ws_url(edge), "localStreamName": "cam", "remoteStreamName": "cam"},
                )
                assert code == 200, record
                record = await relay_status(origin, ("PUBLISHING", "FAILED"))
                assert record["status"] == "PUBLISHING", record
                await asyncio.sleep(0.6)  # a few keep-alive rounds: the relayed stream is not asked about
                assert edge.streams.get_live("cam").live
                assert (
                    backend.of("connect")
                    == backend.of("publishStream")
                    == backend.of("StreamKeepAliveEvent")
                    == []
                )
                # the edge's own clients still meet its hooks
                viewer = WcsClient(ws_url(edge), custom={"token": token(play=["cam"])})
                with pytest.raises(AgentError):
                    await viewer.connect()
                await viewer.close()
                assert len(backend.of("connect")) == 1


async def test_a_node_without_the_keys_is_refused(tmp_path: Path) -> None:
    async with (
        running(make_settings(), tmp_path / "origin") as origin,
        running(auth_settings(), tmp_path / "edge") as edge,
    ):
        async with WcsClient(ws_url(origin)) as publisher:
            await publisher.publish("cam")
            body = {"uri": ws_url(edge), "localStreamName": "cam", "remoteStreamName": "cam"}
            assert (await rest(origin, "pull/push", body))[0] == 200
            record = await relay_status(origin, ("PUBLISHING", "FAILED"))
            assert (record["status"], record["info"]) == ("FAILED", "Remote FAILED: Restricted access"), (
                record
            )
    other_keys = auth_settings(auth_jwt_keys=(("k1", b"another-cluster-key-0123456789ab"),))
    async with (
        running(other_keys, tmp_path / "o2") as origin,
        running(auth_settings(), tmp_path / "e2") as edge,
    ):
        assert origin.access.service_token() is not None
        async with WcsClient(
            ws_url(origin), custom={"token": token(["cam"], key=b"another-cluster-key-0123456789ab")}
        ) as publisher:
            _, _, status = await publisher.publish("cam")
            assert status is not None and status["status"] == "PUBLISHING"
            body = {"uri": ws_url(edge), "localStreamName": "cam", "remoteStreamName": "cam"}
            assert (await rest(origin, "pull/push", body))[0] == 200
            record = await relay_status(origin, ("PUBLISHING", "FAILED"))
            assert record["status"] == "FAILED" and "Failed to connect" in record["info"], (
                record
            )  # connection refused


async def test_cdn_rtmp_distribution_carries_the_token(tmp_path: Path) -> None:
    async with running(auth_settings(codecs=["opus", "vp8"]), tmp_path / "edge") as edge:
        s = edge.settings
        config = tmp_path / "origin-conf"
        config.mkdir()
        (config / "loadbalancing.xml").write_text(
            '<loadbalancer stream_distribution="rtmp"><node id="1"><ip>127.0.0.1</ip>'
            f"<ws>{s.ws_port}</ws><http>{s.http_ports[0]}</http><flash>{s.rtmp_port}</flash></node></loadbalancer>"
        )
        settings = auth_settings(load_balancing_enabled=True, config_dir=config, codecs=["opus", "vp8"])
        async with running(settings, tmp_path / "origin") as origin:
            async with WcsClient(ws_url(origin), custom={"token": token(["live"])}) as publisher:
                await publisher.publish("live")
                async with asyncio.timeout(15):
                    while (stream := edge.streams.find("live")) is None or not stream.live:
                        await asyncio.sleep(0.1)
                async with WcsClient(ws_url(edge), custom={"token": token(play=["live"])}) as viewer:
                    _, pc, status = await viewer.play("live")
                    assert status is not None and status["status"] == "PLAYING", status
                    video = next(r.track for r in pc.getReceivers() if r.track.kind == "video")
                    assert await count_frames(video, 4.0) > 5


async def test_relays_are_spared_the_per_address_caps(tmp_path: Path) -> None:
    edge_settings = auth_settings(
        limits_exempt_ips=[], max_sessions_per_ip=1, connection_rate_per_ip=0.01, connection_burst_per_ip=1
    )
    async with (
        running(auth_settings(), tmp_path / "origin") as origin,
        running(edge_settings, tmp_path / "edge") as edge,
    ):
        async with WcsClient(ws_url(origin), custom={"token": token(["a", "b", "c"])}) as publisher:
            for name in ("a", "b", "c"):
                _, _, status = await publisher.publish(name)
                assert status is not None and status["status"] == "PUBLISHING"
                body = {"uri": ws_url(edge), "localStreamName": name, "remoteStreamName": name}
                assert (await rest(origin, "pull/push", body))[0] == 200
            async with asyncio.timeout(15):
                while not all((s := edge.streams.find(n)) is not None and s.live for n in ("a", "b", "c")):
                    await asyncio.sleep(0.1)
            assert edge.access.connections.sessions == {}  # three sessions from 127.0.0.1, none counted
