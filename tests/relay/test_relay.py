"""relay: push and pull between two in-process servers, with an aiortc publisher and player."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from rtcdn.server import Server
from testkit import free_port, make_settings
from wcs_client import WcsClient, count_frames


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[tuple[Server, Server]]:
    a = Server(make_settings(), tmp_path / "a")
    b = Server(make_settings(), tmp_path / "b")
    await a.start()
    await b.start()
    yield a, b
    await a.close()
    await b.close()


def ws(server: Server) -> str:
    return f"ws://127.0.0.1:{server.settings.ws_port}"


async def rest(server: Server, method: str, body: dict[str, object] | None = None) -> tuple[int, object]:
    url = f"http://127.0.0.1:{server.settings.http_ports[0]}/rest-api/{method}"
    async with aiohttp.ClientSession() as http, http.post(url, json=body) as resp:
        return resp.status, await resp.json()


async def wait_relay(server: Server, status: str, timeout: float = 15) -> dict[str, object]:
    async with asyncio.timeout(timeout):
        while True:
            code, records = await rest(server, "pull/find_all")
            if code == 200 and isinstance(records, list) and records[0]["status"] == status:
                return records[0]  # type: ignore[no-any-return]
            await asyncio.sleep(0.1)


async def test_push_then_terminate(pair: tuple[Server, Server]) -> None:
    a, b = pair
    async with WcsClient(ws(a)) as pub, WcsClient(ws(b)) as viewer:
        await pub.publish("cam")
        code, record = await rest(
            a, "pull/push", {"uri": ws(b), "localStreamName": "cam", "remoteStreamName": "cam-b"}
        )
        assert code == 200, record
        record = await wait_relay(a, "PUBLISHING")
        assert record["remoteMediaSessionId"] and record["hasVideo"] is True
        pid, pc, status = await viewer.play("cam-b")
        assert status is not None and status["status"] == "PLAYING", status
        video = next(r.track for r in pc.getReceivers() if r.track.kind == "video")
        assert await count_frames(video, 2.0) > 10
        code, conflict = await rest(
            a, "pull/push", {"uri": ws(b), "localStreamName": "cam", "remoteStreamName": "cam-b"}
        )
        assert code == 409, conflict
        code, _ = await rest(a, "pull/terminate", {"localMediaSessionId": record["localMediaSessionId"]})
        assert code == 200
        status = await viewer.wait_status(pid)
        assert (status["status"], status["info"]) == ("STOPPED", "Stopped by publisher stop")


async def test_pull_and_publisher_stop(pair: tuple[Server, Server]) -> None:
    a, b = pair
    async with WcsClient(ws(a)) as pub, WcsClient(ws(b)) as viewer:
        msid, _, _ = await pub.publish("src")
        code, record = await rest(
            b, "pull/pull", {"uri": ws(a), "remoteStreamName": "src", "localStreamName": "copy"}
        )
        assert code == 200, record
        await wait_relay(b, "PLAYING")
        pid, pc, status = await viewer.play("copy")
        assert status is not None and status["status"] == "PLAYING", status
        video = next(r.track for r in pc.getReceivers() if r.track.kind == "video")
        assert await count_frames(video, 2.0) > 10
        await pub.send("unPublishStream", {"mediaSessionId": msid, "name": "src"})
        status = await viewer.wait_status(pid)
        assert status["status"] == "STOPPED"
        record = await wait_relay(b, "STOPPED")
        assert "Remote STOPPED" in str(record["info"])


async def test_error_statuses(pair: tuple[Server, Server]) -> None:
    a, b = pair
    assert (await rest(a, "pull/push", {"uri": ws(b), "localStreamName": "nope", "remoteStreamName": "x"}))[
        0
    ] == 404
    code, err = await rest(a, "pull/push", {"uri": ws(b), "localStreamName": "nope"})
    assert code == 400 and "remoteStreamName" in str(err)
    assert (await rest(a, "pull/find_all"))[0] == 404
    async with WcsClient(ws(a)) as pub:
        await pub.publish("taken")
        code, err = await rest(
            a, "pull/push", {"uri": "http://x", "localStreamName": "taken", "remoteStreamName": "b"}
        )
        assert code == 400 and "Bad URI" in str(err), err
        code, _ = await rest(
            a, "pull/pull", {"uri": ws(b), "remoteStreamName": "x", "localStreamName": "taken"}
        )
        assert code == 409
        # unreachable: nothing listens there; the REST call answers at once, the record fails soon
        code, _ = await rest(
            a, "pull/push", {"uri": "ws://127.0.0.1:9", "localStreamName": "taken", "remoteStreamName": "t"}
        )
        assert code == 200
        record = await wait_relay(a, "FAILED", timeout=12)
        assert "Failed to connect" in str(record["info"])


async def test_wss_relay_with_trusted_self_signed_certificate(tmp_path: Path) -> None:
    b = Server(make_settings(wss_port=free_port()), tmp_path / "b")
    await b.start()
    a = Server(
        make_settings(wcs_agent_ssl=True, wcs_agent_ssl_ca_file=str(tmp_path / "b" / "cert.pem")),
        tmp_path / "a",
    )
    await a.start()
    untrusting = Server(make_settings(wcs_agent_ssl=True), tmp_path / "c")
    await untrusting.start()
    try:
        async with WcsClient(ws(a)) as pub, WcsClient(ws(untrusting)) as pub2, WcsClient(ws(b)) as viewer:
            await pub.publish("secure")
            uri = f"wss://127.0.0.1:{b.settings.wss_port}/websocket"
            code, _ = await rest(
                a, "pull/push", {"uri": uri, "localStreamName": "secure", "remoteStreamName": "secure"}
            )
            assert code == 200
            await wait_relay(a, "PUBLISHING")
            _, pc, status = await viewer.play("secure")
            assert status is not None and status["status"] == "PLAYING"
            video = next(r.track for r in pc.getReceivers() if r.track.kind == "video")
            assert await count_frames(video, 1.5) > 5
            # a server that does not trust B's certificate refuses to relay there
            await pub2.publish("secure2")
            await rest(
                untrusting, "pull/push", {"uri": uri, "localStreamName": "secure2", "remoteStreamName": "x"}
            )
            record = await wait_relay(untrusting, "FAILED")
            assert (
                "CERTIFICATE_VERIFY_FAILED" in str(record["info"])
                or "certificate" in str(record["info"]).lower()
            )
    finally:
        for server in (a, b, untrusting):
            await server.close()


async def test_chain_a_b_c_and_keyframes_travel_back(tmp_path: Path) -> None:
    servers = [Server(make_settings(), tmp_path / n) for n in "abc"]
    for s in servers:
        await s.start()
    a, b, c = servers
    try:
        async with WcsClient(ws(a)) as pub, WcsClient(ws(c)) as viewer:
            await pub.publish("chain")
            assert (
                await rest(
                    a, "pull/push", {"uri": ws(b), "localStreamName": "chain", "remoteStreamName": "chain"}
                )
            )[0] == 200
            await wait_relay(a, "PUBLISHING")
            assert (
                await rest(
                    b, "pull/push", {"uri": ws(c), "localStreamName": "chain", "remoteStreamName": "chain"}
                )
            )[0] == 200
            await wait_relay(b, "PUBLISHING")
            origin = a.streams.find("chain")
            assert origin is not None
            keyframes_before = origin.tracks["video"].keyframes
            _, pc, status = await viewer.play("chain")
            assert status is not None and status["status"] == "PLAYING"
            video = next(r.track for r in pc.getReceivers() if r.track.kind == "video")
            assert await count_frames(video, 2.0) > 10
            # the player's join on C started on C's cached GOP: no keyframe asked of A's publisher
            edge = c.streams.find("chain")
            assert edge is not None and edge.keyframes_spared == 1
            # a keyframe request on C (a player's PLI) reaches A's publisher through B
            edge.request_keyframe()
            async with asyncio.timeout(5):
                while origin.tracks["video"].keyframes == keyframes_before:
                    await asyncio.sleep(0.05)
            code, streams = await rest(b, "stream/find_all")
            assert code == 200 and {(s["published"], s["name"]) for s in streams} >= {
                (True, "chain"),
                (False, "chain"),
            }
    finally:
        for s in servers:
            await s.close()


async def test_remote_going_away_fails_the_relay(tmp_path: Path) -> None:
    a, b = Server(make_settings(), tmp_path / "a"), Server(make_settings(), tmp_path / "b")
    await a.start()
    await b.start()
    try:
        async with WcsClient(ws(a)) as pub:
            await pub.publish("gone")
            await rest(a, "pull/push", {"uri": ws(b), "localStreamName": "gone", "remoteStreamName": "gone"})
            await wait_relay(a, "PUBLISHING")
            await b.close()  # the remote shuts down
            record = await wait_relay(a, "FAILED")
            assert record["info"], record
            stream = a.streams.find("gone")
            assert stream is not None and stream.players == []  # the relay's player left the local stream
            assert len(a.media.peers) == 1  # only the browser-side publisher's peer is left
    finally:
        await a.close()
        await b.close()
