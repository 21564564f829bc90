"""rtmp.frontend: real ffmpeg (Debian 5.1) publishing and playing RTMP against an in-process server,
meeting WebRTC players and publishers in one stream namespace; refusals as RTMP status codes."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from rtcdn.server import Server
from testkit import make_settings
from wcs_client import WcsClient, count_frames

FFMPEG = shutil.which("ffmpeg") or "/usr/bin/ffmpeg"
pytestmark = pytest.mark.skipif(not Path(FFMPEG).exists(), reason="Debian's ffmpeg is installed by make test")


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Server]:
    server = Server(make_settings(codecs=["opus", "h264", "vp8"]), tmp_path / "state")
    await server.start()
    yield server
    await server.close()


def rtmp_url(server: Server, name: str) -> str:
    return f"rtmp://127.0.0.1:{server.settings.rtmp_port}/live/{name}"


@contextlib.asynccontextmanager
async def ffmpeg_publish(
    url: str, log: Path, seconds: float = 30
) -> AsyncIterator[asyncio.subprocess.Process]:
    """Debian ffmpeg publishing H.264 (baseline, no B-frames) + AAC from lavfi test sources."""
    proc = await asyncio.create_subprocess_exec(
        FFMPEG, "-hide_banner", "-loglevel", "warning", "-re",
        "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
        "-t", str(seconds), "-c:v", "libx264", "-profile:v", "baseline", "-tune", "zerolatency", "-bf", "0",
        "-g", "25", "-c:a", "aac", "-f", "flv", url,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=log.open("wb"),
    )  # fmt: skip
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def ffmpeg_play(url: str, frames: int, timeout: float = 20) -> tuple[int, str]:
    """Decode ``frames`` video frames from ``url`` with ffmpeg; returns (exit code, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        FFMPEG, "-hide_banner", "-nostats", "-i", url, "-frames:v", str(frames), "-f", "null", "-",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        _, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        _, err = await proc.communicate()
    return proc.returncode if proc.returncode is not None else -1, err.decode(errors="replace")


async def wait_live(server: Server, name: str, timeout: float = 15) -> None:
    async with asyncio.timeout(timeout):
        while (stream := server.streams.find(name)) is None or not stream.live:
            await asyncio.sleep(0.1)


async def test_rtmp_publisher_plays_over_webrtc_and_rtmp(node: Server, tmp_path: Path) -> None:
    ws_url = f"ws://127.0.0.1:{node.settings.ws_port}/"
    async with ffmpeg_publish(rtmp_url(node, "cam"), tmp_path / "pub.log"):
        await wait_live(node, "cam")
        tracks = node.streams.get_live("cam").track_infos()
        assert (tracks["video"].mime_type, tracks["audio"].mime_type) == ("video/H264", "audio/opus")
        async with WcsClient(ws_url) as viewer:
            _, pc, status = await viewer.play("cam")
            assert status is not None and status["status"] == "PLAYING", status
            assert (status["videoCodec"], status["audioCodec"]) == ("H264", "opus")
            video = next(r.track for r in pc.getReceivers() if r.track.kind == "video")
            audio = next(r.track for r in pc.getReceivers() if r.track.kind == "audio")
            assert await count_frames(video, 2.0) > 20
            assert await count_frames(audio, 1.0) > 30  # AAC became Opus
        code, err = await ffmpeg_play(rtmp_url(node, "cam"), 50)
        assert code == 0, err[-2000:]
        assert "Video: h264" in err and "Audio: aac" in err
        records = [r.describe() for r in node.streams.sessions]
        assert [(r.protocol, r.published, r.transport) for r in records] == [("rtmp", True, "RTMP")]
        assert _transcoder_threads()  # AAC → Opus runs on its own thread
    async with asyncio.timeout(10):
        while node.streams.find("cam") is not None or len(node.streams.sessions) or _transcoder_threads():
            await asyncio.sleep(0.1)  # the stream, its sessions and the transcoders' threads are gone


def _transcoder_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("transcode-")]


async def test_webrtc_h264_publisher_plays_over_rtmp(node: Server) -> None:
    async with WcsClient(f"ws://127.0.0.1:{node.settings.ws_port}/") as publisher:
        _, _, status = await publisher.publish("web")  # aiortc, H.264 first in this server's codecs
        assert status is not None and status["videoCodec"] == "H264", status
        code, err = await ffmpeg_play(rtmp_url(node, "web"), 30)
        assert code == 0, err[-2000:]
        assert "Video: h264" in err and "Audio: aac" in err  # Opus became AAC


async def test_refusals_are_rtmp_status_codes(tmp_path: Path) -> None:
    node = Server(make_settings(codecs=["opus", "vp8"]), tmp_path / "state")
    await node.start()
    try:
        await _refusals(node, tmp_path)
    finally:
        await node.close()


async def _refusals(node: Server, tmp_path: Path) -> None:
    ws_url = f"ws://127.0.0.1:{node.settings.ws_port}/"
    code, err = await ffmpeg_play(rtmp_url(node, "nobody"), 5, timeout=30)
    assert code != 0 and "Stream not found: nobody" in err, err[-1500:]
    async with WcsClient(ws_url) as publisher:
        _, _, status = await publisher.publish("vp8cam")  # aiortc: VP8
        assert status is not None and status["videoCodec"] == "VP8"
        code, err = await ffmpeg_play(rtmp_url(node, "vp8cam"), 5)
        assert code != 0 and "cannot be sent over RTMP" in err, err[-1500:]
        # a taken name: the RTMP publisher is refused, the WebRTC publisher keeps its stream
        async with ffmpeg_publish(rtmp_url(node, "vp8cam"), tmp_path / "taken.log", seconds=5) as proc:
            assert await asyncio.wait_for(proc.wait(), 15) != 0
        assert "Stream name is already in use" in (tmp_path / "taken.log").read_text(errors="replace")
        assert node.streams.get_live("vp8cam").track_infos()["video"].mime_type == "video/VP8"


async def test_rtmp_stream_relays_and_plays_over_whep(node: Server, tmp_path: Path) -> None:
    """An RTMP stream is a stream like any other: /pull/push relays it, WHEP plays it there."""
    import aiohttp
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

    from rtcdn.webrtc._aiortc import PortRange, patch_gathering

    other = Server(make_settings(codecs=["opus", "h264"]), tmp_path / "other")
    await other.start()
    try:
        async with ffmpeg_publish(rtmp_url(node, "relayed"), tmp_path / "pub.log"):
            await wait_live(node, "relayed")
            base = f"http://127.0.0.1:{node.settings.http_ports[0]}/rest-api"
            body = {"uri": f"ws://127.0.0.1:{other.settings.ws_port}", "localStreamName": "relayed",
                    "remoteStreamName": "relayed"}  # fmt: skip
            async with aiohttp.ClientSession() as http:
                async with http.post(base + "/pull/push", json=body) as resp:
                    assert resp.status == 200
                await wait_live(other, "relayed")
                pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
                pc.addTransceiver("video", direction="recvonly")
                offer = await pc.createOffer()
                patch_gathering(pc, ["127.0.0.1"], PortRange(0, 0), None)
                await pc.setLocalDescription(offer)
                whep = f"http://127.0.0.1:{other.settings.http_ports[0]}/whep/relayed"
                headers = {"Content-Type": "application/sdp"}
                async with http.post(whep, data=pc.localDescription.sdp, headers=headers) as resp:
                    assert resp.status == 201, await resp.text()
                    await pc.setRemoteDescription(RTCSessionDescription(await resp.text(), "answer"))
                video = next(r.track for r in pc.getReceivers() if r.track.kind == "video")
                assert await count_frames(video, 3.0) > 20
                await pc.close()
    finally:
        await other.close()


async def test_vp8_stream_plays_over_rtmp_when_video_transcoding_is_on(tmp_path: Path) -> None:
    node = Server(make_settings(codecs=["opus", "vp8"], rtmp_transcode_video=True), tmp_path / "state")
    await node.start()
    try:
        async with WcsClient(f"ws://127.0.0.1:{node.settings.ws_port}/") as publisher:
            _, _, status = await publisher.publish("vp8cam")
            assert status is not None and status["videoCodec"] == "VP8"
            code, err = await ffmpeg_play(rtmp_url(node, "vp8cam"), 30)
            assert code == 0, err[-2000:]
            assert "Video: h264" in err and "Audio: aac" in err  # VP8 became H.264 for this player only
            assert node.streams.get_live("vp8cam").track_infos()["video"].mime_type == "video/VP8"
    finally:
        await node.close()
    async with asyncio.timeout(5):
        while _transcoder_threads():
            await asyncio.sleep(0.1)
