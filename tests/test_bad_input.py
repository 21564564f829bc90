"""Bad input: every case gets a clear error, leaks nothing, and other sessions keep streaming."""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import AsyncIterator

import aiohttp
import psutil
import pytest

from rtcdn.server import Server
from wcs_client import WcsClient, count_frames


def udp_sockets() -> int:
    return len(psutil.Process().net_connections(kind="udp"))


@pytest.fixture
async def live(server: Server, ws_url: str) -> AsyncIterator[WcsClient]:
    """A stream that must keep flowing while bad clients misbehave; yields its viewer."""
    async with WcsClient(ws_url) as pub, WcsClient(ws_url) as viewer:
        _, _, status = await pub.publish("steady")
        assert status is not None and status["status"] == "PUBLISHING"
        _, pc, status = await viewer.play("steady")
        assert status is not None and status["status"] == "PLAYING"
        viewer.video = next(r.track for r in pc.getReceivers() if r.track.kind == "video")  # type: ignore[attr-defined]
        gc.collect()  # what earlier tests left to the collector (their peers' sockets) closes now
        await asyncio.sleep(0.3)
        before = (udp_sockets(), len(server.media.peers), len(asyncio.all_tasks()))
        yield viewer
        # the steady stream still plays after the bad client is gone
        assert await count_frames(viewer.video, 1.0) > 3  # type: ignore[attr-defined]
        await asyncio.sleep(0.3)
        after = (udp_sockets(), len(server.media.peers), len(asyncio.all_tasks()))
        assert after == before, f"leak: (udp, peers, tasks) before={before} after={after}"


async def fail_frame(client: WcsClient) -> dict[str, object]:
    frame = await client.wait_message("fail")
    payload: dict[str, object] = frame["data"][0]
    return payload


@pytest.mark.parametrize(
    ("raw", "info"),
    [
        ("{not json", "malformed JSON"),
        ('["a list"]', "not a JSON object"),
        ('{"data": [{}]}', "no 'message'"),
        ('{"message": "fooBar", "data": [{}]}', "unknown message 'fooBar'"),
        # names of the session's own methods are not messages (getattr dispatch once reached them)
        ('{"message": "text", "data": [{}]}', "unknown message 'text'"),
        ('{"message": "close", "data": [{}]}', "unknown message 'close'"),
        ('{"message": "__init__", "data": [{}]}', "unknown message '__init__'"),
    ],
)
async def test_malformed_frames_get_fail_and_session_survives(
    live: WcsClient, ws_url: str, raw: str, info: str
) -> None:
    async with WcsClient(ws_url) as bad:
        await bad.send_raw(raw)
        assert info in str((await fail_frame(bad))["info"])
        _, _, status = await bad.play("steady")  # the session still works
        assert status is not None and status["status"] == "PLAYING"


async def test_broken_sdp_fails_publish(live: WcsClient, ws_url: str) -> None:
    async with WcsClient(ws_url) as bad:
        for sdp in (
            "garbage",
            "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n",
            None,
        ):
            msid = f"broken-{sdp!r:.8}"
            await bad.send("publishStream", {"mediaSessionId": msid, "name": f"b{len(str(sdp))}", "sdp": sdp})
            status = await bad.wait_status(msid)
            assert status["status"] == "FAILED"
            assert status["info"] in ("Failed by error", "No common codecs"), status


async def test_play_before_connection(live: WcsClient, ws_url: str) -> None:
    bad = WcsClient(ws_url)
    await bad.open_socket()
    try:
        await bad.send("playStream", {"mediaSessionId": "early", "name": "steady", "sdp": "v=0"})
        status = await bad.wait_status("early")
        assert (status["status"], status["info"]) == ("FAILED", "Session not ready")
    finally:
        await bad.close()


async def test_huge_frame_closes_socket_with_reason(live: WcsClient, ws_url: str) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(ws_url, max_msg_size=0) as ws:
        await ws.send_str(json.dumps({"message": "connection", "data": [{}]}))
        sending = asyncio.ensure_future(ws.send_str("x" * (10 * 1024 * 1024)))
        async with asyncio.timeout(10):
            closed = await ws.receive()
            while closed.type not in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                closed = await ws.receive()
        await asyncio.gather(sending, return_exceptions=True)
        assert closed.type == aiohttp.WSMsgType.CLOSE, closed
        assert closed.data == aiohttp.WSCloseCode.MESSAGE_TOO_BIG, closed


async def test_client_vanishes_mid_ice(live: WcsClient, ws_url: str, server: Server) -> None:
    bad = WcsClient(ws_url)
    await bad.connect()
    msid, _, _ = await bad.publish("ghost", wait=False)
    await asyncio.wait_for(bad.sdp.setdefault(msid, asyncio.get_running_loop().create_future()), 10)
    await bad.close()  # never applies the answer: no ICE ever happens
    await asyncio.sleep(0.3)
    assert server.streams.find("ghost") is None


async def test_silent_client_gets_ice_timeout(live: WcsClient, ws_url: str) -> None:
    async with WcsClient(ws_url) as bad:
        msid, _, _ = await bad.publish("silent", wait=False)
        status = await bad.wait_status(msid, timeout=15)
        assert (status["status"], status["info"]) == ("FAILED", "Failed by ICE timeout")
