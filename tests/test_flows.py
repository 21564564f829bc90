"""Publish/play flows with an aiortc client speaking the WCS protocol (fast; no browser)."""

from __future__ import annotations

import asyncio

from rtcdn.server import Server
from wcs_client import WcsClient, count_frames


async def test_publish_play_stop_unpublish(server: Server, ws_url: str) -> None:
    async with WcsClient(ws_url) as pub, WcsClient(ws_url) as viewer:
        assert pub.user_data is not None and pub.user_data["status"] == "ESTABLISHED"
        msid, _, status = await pub.publish("cam1")
        assert status is not None and status["status"] == "PUBLISHING", status
        assert status["videoCodec"] == "VP8"

        pid, pc, status = await viewer.play("cam1")
        assert status is not None and status["status"] == "PLAYING", status
        video = next(r.track for r in pc.getReceivers() if r.track.kind == "video")
        frames = await count_frames(video, 2.0)
        assert frames > 10, frames

        await viewer.send("stopStream", {"mediaSessionId": pid, "name": "cam1"})
        status = await viewer.wait_status(pid)
        assert (status["status"], status["info"]) == ("STOPPED", "Stopped by user")

        pid2, _, status = await viewer.play("cam1")
        assert status is not None and status["status"] == "PLAYING"
        await pub.send("unPublishStream", {"mediaSessionId": msid, "name": "cam1"})
        assert (await pub.wait_status(msid))["status"] == "UNPUBLISHED"
        status = await viewer.wait_status(pid2)
        assert (status["status"], status["info"]) == ("STOPPED", "Stopped by publisher stop")
    await asyncio.sleep(0.2)
    assert len(server.streams) == 0
    assert not server.media.peers


async def test_play_unknown_stream(server: Server, ws_url: str) -> None:
    async with WcsClient(ws_url) as viewer:
        _, _, status = await viewer.play("nope")
        assert status is not None
        assert (status["status"], status["info"]) == ("FAILED", "Stream not found")


async def test_duplicate_name_keeps_first(server: Server, ws_url: str) -> None:
    async with WcsClient(ws_url) as a, WcsClient(ws_url) as b, WcsClient(ws_url) as viewer:
        _, _, status = await a.publish("dup")
        assert status is not None and status["status"] == "PUBLISHING"
        _, _, status = await b.publish("dup")
        assert status is not None
        assert (status["status"], status["info"]) == ("FAILED", "Stream name is already in use")
        _, pc, status = await viewer.play("dup")
        assert status is not None and status["status"] == "PLAYING"
        video = next(r.track for r in pc.getReceivers() if r.track.kind == "video")
        assert await count_frames(video, 1.5) > 5


async def test_player_offering_kinds_in_another_order(server: Server, ws_url: str) -> None:
    async with WcsClient(ws_url) as pub, WcsClient(ws_url) as viewer:
        await pub.publish("order")  # audio first
        _, pc, status = await viewer.play("order", kinds=("video", "audio"))
        assert status is not None and status["status"] == "PLAYING", status
        video = next(r.track for r in pc.getReceivers() if r.track.kind == "video")
        assert await count_frames(video, 1.5) > 5
