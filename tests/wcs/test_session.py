"""wcs.session: the WCS conversation details the SDK and demo pages rely on."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
from aiortc.rtcrtpsender import RTCRtpSender

from rtcdn.server import Server
from testkit import make_settings
from wcs_client import WcsClient, count_frames


async def test_get_user_data_and_server_pings(server: Server, ws_url: str) -> None:
    async with WcsClient(ws_url) as client:
        data = client.user_data
        assert data is not None
        assert data["status"] == "ESTABLISHED" and data["sessionId"] and data["authToken"]
        assert "webRTCMetricsServerDescription" not in data
        # interval 1 s, 3 probes: a client answering with pong outlives the probe limit
        await asyncio.sleep(4.5)
        assert client.pings >= 4 and not client.closed.is_set()


async def test_silent_client_is_dropped_by_keepalive(server: Server, ws_url: str) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(ws_url) as ws:
        await ws.send_str(json.dumps({"message": "connection", "data": [{}]}))
        pings = 0
        async with asyncio.timeout(10):
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT and json.loads(msg.data)["message"] == "ping":
                    pings += 1
        # interval 1 s, 3 probes: three unanswered pings, then the server closes
        assert pings == 3 and ws.close_code == 4000


async def test_available_stream_replies_with_string_status(server: Server, ws_url: str) -> None:
    async with WcsClient(ws_url) as pub, WcsClient(ws_url) as client:
        await pub.publish("here")
        for name, status in (("here", "true"), ("gone", "false")):
            await client.send("availableStream", {"mediaSessionId": f"a-{name}", "name": name})
            reply = (await client.wait_message("availableStream"))["data"][0]
            assert reply["id"] == f"a-{name}" and reply["status"] == status
        assert reply["info"] == "Stream not found"


async def test_stream_events_reach_players_with_their_own_id(server: Server, ws_url: str) -> None:
    async with WcsClient(ws_url) as pub, WcsClient(ws_url) as viewer:
        msid, _, _ = await pub.publish("ev")
        pid, _, _ = await viewer.play("ev")
        await pub.send("sendStreamEvent", {"mediaSessionId": msid, "type": "data", "payload": {"count": 23}})
        event = (await viewer.wait_message("notifyStreamEvent"))["data"][0]
        assert event == {"mediaSessionId": pid, "streamName": "ev", "type": "data", "payload": {"count": 23}}
        await pub.send("sendStreamEvent", {"mediaSessionId": msid, "type": "audioMuted"})
        assert (await viewer.wait_message("notifyStreamEvent"))["data"][0]["type"] == "audioMuted"


async def test_publisher_disconnect_stops_players(server: Server, ws_url: str) -> None:
    async with WcsClient(ws_url) as viewer:
        pub = WcsClient(ws_url)
        await pub.connect()
        await pub.publish("leaving")
        pid, _, _ = await viewer.play("leaving")
        await pub.close()  # the SDK never says goodbye: only the socket closes
        status = await viewer.wait_status(pid)
        assert (status["status"], status["info"]) == ("STOPPED", "Stopped by publisher stop")
    await asyncio.sleep(0.2)
    assert not server.media.peers and not server.sessions


async def test_player_disconnect_keeps_stream(server: Server, ws_url: str) -> None:
    async with WcsClient(ws_url) as pub, WcsClient(ws_url) as viewer2:
        await pub.publish("stays")
        viewer = WcsClient(ws_url)
        await viewer.connect()
        await viewer.play("stays")
        await viewer.close()
        _, pc, status = await viewer2.play("stays")
        assert status is not None and status["status"] == "PLAYING"
        video = next(r.track for r in pc.getReceivers() if r.track.kind == "video")
        assert await count_frames(video, 1.0) > 3


async def test_h264_publisher_and_codec_mismatch(tmp_path: Path) -> None:
    server = Server(make_settings(codecs=["opus", "h264"]), tmp_path)
    await server.start()
    url = f"ws://127.0.0.1:{server.settings.ws_port}/"
    try:
        async with WcsClient(url) as pub, WcsClient(url) as viewer, WcsClient(url) as vp8_only:
            _, _, status = await pub.publish("h")
            assert status is not None and status["videoCodec"] == "H264"
            _, pc, status = await viewer.play("h")
            assert status is not None and status["status"] == "PLAYING"
            video = next(r.track for r in pc.getReceivers() if r.track.kind == "video")
            assert await count_frames(video, 2.0) > 5

            pc = vp8_only.new_pc()
            t = pc.addTransceiver("video", direction="recvonly")
            t.setCodecPreferences(
                [c for c in RTCRtpSender.getCapabilities("video").codecs if c.name == "VP8"]
            )
            msid = "vp8only"
            sdp = await vp8_only._offer(pc)
            await vp8_only.send("playStream", {"mediaSessionId": msid, "name": "h", "sdp": sdp})
            status = await vp8_only.wait_status(msid)
            assert (status["status"], status["info"]) == ("FAILED", "No common codecs")
    finally:
        await server.close()


async def test_peer_closed_by_client_is_a_clean_stop(server: Server, ws_url: str) -> None:
    async with WcsClient(ws_url) as pub, WcsClient(ws_url) as viewer:
        msid, pub_pc, _ = await pub.publish("closing")
        pid, pc, _ = await viewer.play("closing")
        await pc.close()  # DTLS close_notify, socket stays open
        status = await viewer.wait_status(pid)
        assert (status["status"], status["info"]) == ("STOPPED", "Stopped by user")
        await pub_pc.close()
        status = await pub.wait_status(msid)
        assert (status["status"], status["info"]) == ("UNPUBLISHED", "Stopped by user")
