"""RTMP under access control: the token in the stream key's or the connect URL's query; refusals are
``NetStream.Publish.Unauthorized`` / ``NetStream.Play.Failed`` "Restricted access" after the delay;
the publishStream hook sees RTMP publishes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from rtmp_media import RawPeer, commands_of

from authkit import auth_settings, hook_backend, running, token, ws_url
from rtcdn.rtmp.chunk import Message
from rtcdn.rtmp.client import RtmpClient
from rtcdn.rtmp.commands import command
from rtcdn.rtmp.errors import RtmpRefused
from rtcdn.server import Server
from testkit import make_settings
from wcs_client import WcsClient


def url(server: Server, path: str) -> str:
    return f"rtmp://127.0.0.1:{server.settings.rtmp_port}/{path}"


async def publish(target: str) -> RtmpClient:
    client = RtmpClient()
    try:
        await client.connect(target)
        await client.publish()
    except BaseException:
        await client.close()
        raise
    return client


def play_status(msgs: list[Message]) -> tuple[str, str]:
    """(code, description) of the last status of a play."""
    found = [
        (str(v["code"]), str(v.get("description", "")))
        for name, values in commands_of(msgs)
        if name == "onStatus"
        for v in values
        if isinstance(v, dict) and "code" in v
    ]
    return found[-1]


async def play(server: Server, name: str) -> tuple[str, str]:
    peer = await RawPeer.open(server.settings.rtmp_port)
    try:
        app = {"app": "live", "tcUrl": url(server, "live"), "flashVer": "test"}
        peer.send(command("connect", 1, app), command("createStream", 2, None))
        peer.send(command("play", 0, None, name, stream_id=1))
        msg = await peer.wait_for(lambda m: b"NetStream.Play." in m.payload, timeout=10)
        return play_status([msg])
    finally:
        await peer.close()


async def test_publish_tokens(tmp_path: Path) -> None:
    async with running(auth_settings(auth_failure_delay_ms=(200, 300)), tmp_path / "s") as server:
        client = await publish(url(server, f"live/cam?token={token(['cam'])}"))
        assert server.streams.find("cam") is not None
        await client.close()
        client = await publish(url(server, f"live?token={token(['cam2'])}/cam2"))  # the connect URL's query
        assert server.streams.find("cam2") is not None
        await client.close()
        for bad in ("", f"?token={token(['other'])}", f"?token={token(['cam3'], ttl=-120)}", "?token=junk"):
            started = time.monotonic()
            with pytest.raises(RtmpRefused) as caught:
                await publish(url(server, f"live/cam3{bad}"))
            assert (caught.value.code, caught.value.description) == (
                "NetStream.Publish.Unauthorized",
                "Restricted access",
            )
            assert 0.2 <= time.monotonic() - started < 3.0
        assert server.streams.find("cam3") is None


async def test_play_tokens(tmp_path: Path) -> None:
    settings = auth_settings(codecs=["opus", "h264"])
    async with running(settings, tmp_path / "s") as server:
        async with WcsClient(ws_url(server), custom={"token": token(["cam"])}) as publisher:
            _, _, status = await publisher.publish("cam")
            assert status is not None and status["status"] == "PUBLISHING"
            assert await play(server, "cam") == ("NetStream.Play.Failed", "Restricted access")
            assert await play(server, f"cam?token={token(['cam'])}") == (
                "NetStream.Play.Failed",
                "Restricted access",
            )
            code, _ = await play(server, f"cam?token={token(play=['cam'])}")
            assert code in ("NetStream.Play.Reset", "NetStream.Play.Start")  # Reset comes first


async def test_rtmp_publishes_reach_the_hooks(tmp_path: Path) -> None:
    async with hook_backend() as backend:
        settings = make_settings(rest_hooks_url=backend.url, auth_failure_delay_ms=(0, 0))
        async with running(settings, tmp_path / "s") as server:
            client = await publish(url(server, "live/cam?room=7"))
            await client.close()
            call = backend.of("publishStream")[0].body
            assert (call["name"], call["appKey"], call["mediaProvider"], call["published"]) == (
                "cam",
                "live",
                "RTMP",
                True,
            )
            assert call["custom"] == {"room": "7"} and call["sessionId"].startswith("rtmp:127.0.0.1:")
            backend.status["publishStream"] = 403
            with pytest.raises(RtmpRefused, match="Unauthorized"):
                await publish(url(server, "live/cam4"))
