"""WHIP/WHEP under access control: ``Authorization: Bearer`` tokens (201 with a good one, 401 without,
403 with a bad one, after the refusal delay), the REST hooks, the player cap (503)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

from authkit import auth_settings, hook_backend, running, token
from rtcdn.server import Server
from rtcdn.webrtc._aiortc import PortRange, patch_gathering
from testkit import make_settings

PEERS: list[RTCPeerConnection] = []


async def post(
    server: Server, kind: str, name: str, bearer: str | None = None, forwarded_for: str | None = None
) -> tuple[int, dict[str, str]]:
    """POST an aiortc offer to /whip or /whep; the status and headers (the peer stays in PEERS)."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    PEERS.append(pc)
    if kind == "whip":
        pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
        pc.addTransceiver(VideoStreamTrack(), direction="sendonly")
    else:
        pc.addTransceiver("video", direction="recvonly")
    description = await pc.createOffer()
    patch_gathering(pc, ["127.0.0.1"], PortRange(0, 0), None)
    await pc.setLocalDescription(description)
    headers = {"Content-Type": "application/sdp"}
    if bearer is not None:
        headers["Authorization"] = f"Bearer {bearer}"
    if forwarded_for is not None:
        headers["X-Forwarded-For"] = forwarded_for
    url = f"http://127.0.0.1:{server.settings.http_ports[0]}/{kind}/{name}"
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, data=pc.localDescription.sdp, headers=headers) as resp,
    ):
        if resp.status == 201:
            await pc.setRemoteDescription(RTCSessionDescription(await resp.text(), "answer"))
        return resp.status, dict(resp.headers)


async def close_peers() -> None:
    while PEERS:
        await PEERS.pop().close()


async def test_bearer_tokens(tmp_path: Path) -> None:
    try:
        await _bearer_tokens(tmp_path)
    finally:
        await close_peers()


async def _bearer_tokens(tmp_path: Path) -> None:
    async with running(auth_settings(auth_failure_delay_ms=(200, 300)), tmp_path / "s") as server:
        status, _ = await post(server, "whip", "cam", token(["cam"]))
        assert status == 201
        started = time.monotonic()
        status, headers = await post(server, "whep", "cam")
        assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
        assert 0.2 <= time.monotonic() - started < 2.0
        for bad in (
            token(["cam"]),
            token(play=["cam"], ttl=-120),
            token(play=["cam"], key=b"q" * 32),
            "x.y.z",
        ):
            assert (await post(server, "whep", "cam", bad))[0] == 403  # no play grant, expired, wrong key
        assert (await post(server, "whep", "cam", token(play=["c*"])))[0] == 201
        assert (await post(server, "whip", "cam2", token(play=["*"])))[0] == 403
        assert server.streams.find("cam2") is None


async def test_hooks_and_player_cap(tmp_path: Path) -> None:
    try:
        await _hooks_and_player_cap(tmp_path)
    finally:
        await close_peers()


async def _hooks_and_player_cap(tmp_path: Path) -> None:
    async with hook_backend() as backend:
        settings = make_settings(
            rest_hooks_url=backend.url, auth_failure_delay_ms=(0, 0), max_players_per_stream=1
        )
        async with running(settings, tmp_path / "s") as server:
            assert (await post(server, "whip", "cam"))[0] == 201
            publish = backend.of("publishStream")[0].body
            assert (publish["name"], publish["published"], publish["appKey"]) == ("cam", True, "whip")
            assert publish["sessionId"].startswith("whip:127.0.0.1")
            assert (await post(server, "whep", "cam"))[0] == 201
            async with asyncio.timeout(10):  # the player counts once its media is up
                while len(server.streams.get_live("cam").players) < 1:
                    await asyncio.sleep(0.05)
            assert (await post(server, "whep", "cam"))[0] == 503  # one player at most
            backend.status["publishStream"] = 403
            assert (await post(server, "whip", "cam3"))[0] == 401  # refused by the backend, no token given


async def test_behind_a_trusted_proxy_the_hooks_see_the_forwarded_client(tmp_path: Path) -> None:
    try:
        async with hook_backend() as backend:
            settings = make_settings(
                rest_hooks_url=backend.url, auth_failure_delay_ms=(0, 0), trusted_proxies=["127.0.0.0/31"]
            )
            async with running(settings, tmp_path / "s") as server:
                assert (await post(server, "whip", "a", forwarded_for="127.0.0.5, 127.0.0.9"))[0] == 201
                assert (await post(server, "whip", "b"))[0] == 201  # no header: the proxy itself
                sessions = [call.body["sessionId"] for call in backend.of("publishStream")]
                assert sessions == ["whip:127.0.0.9", "whip:127.0.0.1"], sessions
    finally:
        await close_peers()
