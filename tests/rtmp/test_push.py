"""rtmp.push: /rest-api/push/* republishing to another RTMP server (a second rtcdn here; nginx-rtmp
in tests/e2e): the stream plays there, terminate ends it, an unreachable target says why."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from rtcdn.server import Server
from testkit import free_port, make_settings
from wcs_client import WcsClient, count_frames


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[tuple[Server, Server]]:
    a = Server(make_settings(codecs=["opus", "h264", "vp8"]), tmp_path / "a")
    b = Server(make_settings(codecs=["opus", "h264", "vp8"]), tmp_path / "b")
    await a.start()
    await b.start()
    yield a, b
    await a.close()
    await b.close()


async def rest(server: Server, method: str, body: dict[str, Any]) -> tuple[int, Any]:
    url = f"http://127.0.0.1:{server.settings.http_ports[0]}/rest-api/push/{method}"
    async with aiohttp.ClientSession() as http, http.post(url, json=body) as resp:
        return resp.status, await resp.json()


async def until(predicate: Any, timeout: float = 15) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.1)


@pytest.mark.parametrize("codecs", [["opus", "h264"], ["opus", "vp8"]], ids=["h264", "vp8"])
async def test_push_to_another_rtcdn_plays_there(tmp_path: Path, codecs: list[str]) -> None:
    a = Server(make_settings(codecs=codecs), tmp_path / "a")
    b = Server(make_settings(), tmp_path / "b")
    await a.start()
    await b.start()
    try:
        async with WcsClient(f"ws://127.0.0.1:{a.settings.ws_port}/") as publisher:
            _, _, status = await publisher.publish("cam")
            assert status is not None and status["status"] == "PUBLISHING"
            url = f"rtmp://127.0.0.1:{b.settings.rtmp_port}/live"
            code, record = await rest(a, "startup", {"streamName": "cam", "rtmpUrl": url})
            assert code == 200 and record["status"] in ("NEW", "PENDING", "PUBLISHING"), record
            await until(lambda: b.streams.find("cam") is not None and b.streams.find("cam").live)  # type: ignore[union-attr]
            # between rtcdn nodes Enhanced RTMP carries VP8 and Opus as they are (no transcode)
            tracks = b.streams.get_live("cam").track_infos()
            assert tracks["video"].mime_type == f"video/{codecs[1].upper()}"
            assert tracks["audio"].mime_type == "audio/opus"
            async with WcsClient(f"ws://127.0.0.1:{b.settings.ws_port}/") as viewer:
                _, pc, status = await viewer.play("cam")
                assert status is not None and status["status"] == "PLAYING", status
                video = next(r.track for r in pc.getReceivers() if r.track.kind == "video")
                assert await count_frames(video, 4.0) > 10  # the edge waits for a keyframe (≤ 2 s)
            code, found = await rest(a, "find", {"streamName": "cam"})
            assert code == 200 and found[0]["status"] == "PUBLISHING"
            code, _ended = await rest(a, "terminate", {"mediaSessionId": record["mediaSessionId"]})
            assert code == 200
            await until(lambda: b.streams.find("cam") is None)
            code, found = await rest(a, "find_all", {})
            assert code == 200 and (found[0]["status"], found[0]["info"]) == (
                "UNPUBLISHED",
                "Stopped by rest /terminate",
            )
    finally:
        await a.close()
        await b.close()


async def test_push_errors_and_retry(pair: tuple[Server, Server]) -> None:
    a, b = pair
    assert (await rest(a, "startup", {"streamName": "cam"}))[0] == 400
    assert (await rest(a, "startup", {"streamName": "cam", "rtmpUrl": "http://x/live"}))[0] == 400
    assert (await rest(a, "startup", {"streamName": "nope", "rtmpUrl": "rtmp://127.0.0.1/live"}))[0] == 404
    assert (await rest(a, "find_all", {}))[0] == 404
    async with WcsClient(f"ws://127.0.0.1:{a.settings.ws_port}/") as publisher:
        await publisher.publish("cam")
        closed = f"rtmp://127.0.0.1:{free_port()}/live"  # nobody listens there
        code, _record = await rest(a, "startup", {"streamName": "cam", "rtmpUrl": closed})
        assert code == 200
        assert (await rest(a, "startup", {"streamName": "cam", "rtmpUrl": closed}))[0] == 409
        await until(lambda: "RtmpConnectError" in next(iter(a.pushes)).info)
        assert next(iter(a.pushes)).status == "PENDING"  # retrying, the reason kept
        # the target comes up (B's RTMP port): the retry gets through
        url = f"rtmp://127.0.0.1:{b.settings.rtmp_port}/live"
        code, second = await rest(a, "startup", {"streamName": "cam", "rtmpUrl": url, "options": {"k": 1}})
        assert code == 200 and second["options"] == {"k": 1}
        await until(lambda: b.streams.find("cam") is not None)
    # the publisher left: every push ends, the remote stream with it
    await until(lambda: all(p.finished for p in a.pushes) and b.streams.find("cam") is None)
    assert {p.info for p in a.pushes if p.target.startswith(url)} == {"Stopped by publisher stop"}


async def test_rtmp_url_in_publish_stream_republishes(pair: tuple[Server, Server]) -> None:
    """The WebSDK's publishStream may carry rtmpUrl: the stream is pushed there once it is live."""
    import uuid

    from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

    from rtcdn.wcs import messages as m

    a, b = pair
    async with WcsClient(f"ws://127.0.0.1:{a.settings.ws_port}/") as publisher:
        pc = publisher.new_pc()
        for track in (AudioStreamTrack(), VideoStreamTrack()):
            pc.addTransceiver(track, direction="sendonly")
        payload = m.stream_payload(str(uuid.uuid4()), "sdk", True, await publisher._offer(pc))
        payload["rtmpUrl"] = f"rtmp://127.0.0.1:{b.settings.rtmp_port}/live"
        status = await publisher._request("publishStream", payload, pc, m.PUBLISHING, True)
        assert status is not None and status["status"] == "PUBLISHING"
        await until(lambda: b.streams.find("sdk") is not None and b.streams.find("sdk").live)  # type: ignore[union-attr]
        code, found = await rest(a, "find", {"streamName": "sdk"})
        assert code == 200 and found[0]["rtmpUrl"] == payload["rtmpUrl"]
