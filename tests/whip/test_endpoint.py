"""whip.endpoint: WHIP/WHEP resource semantics with an aiortc client (fast, no browser); one stream
namespace with the WCS front end; nothing leaks when a client vanishes after its POST."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

from rtcdn.server import Server
from rtcdn.webrtc._aiortc import PortRange, patch_gathering
from testkit import make_settings
from wcs_client import WcsClient, count_frames

SDP = {"Content-Type": "application/sdp"}


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[tuple[Server, str, aiohttp.ClientSession]]:
    server = Server(make_settings(webrtc_connect_timeout_ms=2000), tmp_path / "state")
    await server.start()
    async with aiohttp.ClientSession() as http:
        yield server, f"http://127.0.0.1:{server.settings.http_ports[0]}", http
    await server.close()


async def offer(pc: RTCPeerConnection) -> str:
    description = await pc.createOffer()
    patch_gathering(pc, ["127.0.0.1"], PortRange(0, 0), None)
    await pc.setLocalDescription(description)
    return str(pc.localDescription.sdp)


async def whip_publish(http: aiohttp.ClientSession, base: str, name: str) -> tuple[RTCPeerConnection, str]:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
    pc.addTransceiver(VideoStreamTrack(), direction="sendonly")
    async with http.post(f"{base}/whip/{name}", data=await offer(pc), headers=SDP) as resp:
        assert resp.status == 201, await resp.text()
        assert resp.content_type == "application/sdp"
        assert resp.headers["ETag"].startswith('"')
        location = resp.headers["Location"]
        assert location.startswith(f"/whip/{name}/")
        await pc.setRemoteDescription(RTCSessionDescription(await resp.text(), "answer"))
    return pc, location


async def whep_play(http: aiohttp.ClientSession, base: str, name: str) -> tuple[RTCPeerConnection, str]:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("audio", direction="recvonly")
    pc.addTransceiver("video", direction="recvonly")
    async with http.post(f"{base}/whep/{name}", data=await offer(pc), headers=SDP) as resp:
        assert resp.status == 201, await resp.text()
        location = resp.headers["Location"]
        await pc.setRemoteDescription(RTCSessionDescription(await resp.text(), "answer"))
    return pc, location


def video_of(pc: RTCPeerConnection):  # type: ignore[no-untyped-def]
    return next(r.track for r in pc.getReceivers() if r.track.kind == "video")


async def wait_for(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


async def test_whip_stream_plays_over_whep_and_wcs_then_delete_ends_both(
    node: tuple[Server, str, aiohttp.ClientSession],
) -> None:
    server, base, http = node
    ws_url = f"ws://127.0.0.1:{server.settings.ws_port}/"
    pub, location = await whip_publish(http, base, "cam")
    await wait_for(lambda: server.streams.find("cam") is not None and server.streams.find("cam").live)  # type: ignore[union-attr]
    player, player_location = await whep_play(http, base, "cam")
    assert await count_frames(video_of(player), 2.0) > 10
    async with WcsClient(ws_url) as viewer:
        pid, pc, status = await viewer.play("cam")
        assert status is not None and status["status"] == "PLAYING" and status["videoCodec"] == "VP8"
        assert await count_frames(video_of(pc), 1.5) > 5
        async with http.post(f"{base}/rest-api/stream/find_all") as resp:
            records = {(r["name"], r["published"], r["mediaSessionId"]) for r in await resp.json()}
        assert ("cam", True, location.rsplit("/", 1)[1]) in records
        assert ("cam", False, player_location.rsplit("/", 1)[1]) in records
        assert ("cam", False, pid) in records
        async with http.delete(base + location) as resp:
            assert resp.status == 200 and resp.headers["Content-Length"] == "0"
        status = await viewer.wait_status(pid)
        assert (status["status"], status["info"]) == ("STOPPED", "Stopped by publisher stop")
    await wait_for(lambda: not server.media.peers and not len(server.streams.sessions))
    for ended in (location, player_location):  # a DELETE after the end (or a second one) is a success
        async with http.delete(base + ended) as resp:
            assert resp.status == 200
    async with http.delete(base + location.replace("/whip/", "/whep/")) as resp:
        assert resp.status == 404  # the id of another kind of resource
    await pub.close()
    await player.close()


async def test_wcs_stream_plays_over_whep(node: tuple[Server, str, aiohttp.ClientSession]) -> None:
    server, base, http = node
    async with WcsClient(f"ws://127.0.0.1:{server.settings.ws_port}/") as publisher:
        await publisher.publish("wcs-cam")
        player, location = await whep_play(http, base, "wcs-cam")
        assert await count_frames(video_of(player), 2.0) > 10
        async with http.delete(base + location) as resp:
            assert resp.status == 200
        await player.close()
    await wait_for(lambda: not server.media.peers)


async def test_errors_are_status_codes(node: tuple[Server, str, aiohttp.ClientSession]) -> None:
    _, base, http = node
    async with http.post(f"{base}/whip/x", data="v=0", headers={"Content-Type": "text/plain"}) as resp:
        assert resp.status == 415
    async with http.post(f"{base}/whip/x", data="not an sdp", headers=SDP) as resp:
        assert resp.status == 400, await resp.text()
    async with http.post(f"{base}/whep/nobody", data="v=0\r\nm=video 9 UDP 0\r\n", headers=SDP) as resp:
        assert resp.status == 404
    pc, location = await whip_publish(http, base, "taken")
    other = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    other.addTransceiver(VideoStreamTrack(), direction="sendonly")
    async with http.post(f"{base}/whip/taken", data=await offer(other), headers=SDP) as resp:
        assert resp.status == 409, await resp.text()
    await other.close()
    audio_only = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    audio_only.addTransceiver("audio", direction="recvonly")
    async with http.post(
        f"{base}/whep/taken", data=(await offer(audio_only)).replace("opus", "nope"), headers=SDP
    ) as resp:
        assert resp.status == 422, await resp.text()  # nothing the stream sends can be played
    await audio_only.close()
    async with http.options(f"{base}/whip/taken") as resp:
        assert resp.status == 204 and resp.headers["Accept-Post"] == "application/sdp"
        assert "Location" in resp.headers["Access-Control-Expose-Headers"]
    frag = {"Content-Type": "application/trickle-ice-sdpfrag"}
    async with http.patch(
        base + location, data="a=candidate:1 1 udp 1 127.0.0.1 9 typ host", headers=frag
    ) as resp:
        assert resp.status == 204
    async with http.patch(base + location, data="a=ice-ufrag:x", headers={**frag, "If-Match": "*"}) as resp:
        assert resp.status == 422
    async with http.patch(base + location, data="", headers={**frag, "If-Match": '"stale"'}) as resp:
        assert resp.status == 412
    async with http.patch(base + location, data="", headers=SDP) as resp:
        assert resp.status == 415
    async with http.delete(f"{base}/whip/taken/nope") as resp:
        assert resp.status == 404
    async with http.get(f"{base}/whip/taken") as resp:
        assert resp.status == 204
    async with http.delete(base + location) as resp:
        assert resp.status == 200
    await pc.close()


async def test_a_client_that_vanishes_after_post_leaks_nothing(
    node: tuple[Server, str, aiohttp.ClientSession],
) -> None:
    server, base, http = node
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver(VideoStreamTrack(), direction="sendonly")
    async with http.post(f"{base}/whip/ghost", data=await offer(pc), headers=SDP) as resp:
        assert resp.status == 201
    await pc.close()  # never connects, never DELETEs
    assert server.streams.find("ghost") is not None
    await wait_for(lambda: server.streams.find("ghost") is None and not server.media.peers, timeout=8)
    assert not len(server.streams.sessions)


async def test_configured_ice_servers_are_link_headers(tmp_path: Path) -> None:
    servers = ["stun:stun.invalid:3478", "turn:turn.invalid:3478?transport=udp|user|secret"]
    server = Server(make_settings(ice_servers=servers), tmp_path / "state")
    await server.start()
    base = f"http://127.0.0.1:{server.settings.http_ports[0]}"
    try:
        async with aiohttp.ClientSession() as http:
            async with http.options(f"{base}/whip/cam") as resp:
                assert resp.headers.getall("Link") == [
                    '<stun:stun.invalid:3478>; rel="ice-server"',
                    '<turn:turn.invalid:3478?transport=udp>; rel="ice-server"; username="user"; '
                    'credential="secret"; credential-type="password"',
                ]
            preflight = {"Access-Control-Request-Method": "POST", "Origin": "http://127.0.0.1"}
            async with http.options(f"{base}/whip/cam", headers=preflight) as resp:
                assert "Link" not in resp.headers  # never on CORS preflights (RFC 9725 §4.6)
            pc, location = await whip_publish(http, base, "cam")
            async with http.delete(base + location) as resp:
                assert resp.status == 200
            await pc.close()
    finally:
        await server.close()
