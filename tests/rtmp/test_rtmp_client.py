"""rtmp.client: publishing to a real FFmpeg 9 ``-listen 1`` server, URL rules, and the error paths."""

from __future__ import annotations

import asyncio
import time

import pytest
from rtmp_media import FFMPEG9, run
from test_rtmp_connection import Handler, flv_stream

from rtcdn.rtmp import RtmpClient, RtmpConfig, RtmpServer
from rtcdn.rtmp.commands import Capabilities, parse_url, split_name
from rtcdn.rtmp.errors import RtmpClosed, RtmpConnectError, RtmpError, RtmpTimeout
from testkit import free_port


@pytest.mark.parametrize(
    ("url", "host", "port", "app", "stream", "tc_url"),
    [
        ("rtmp://h/live/x", "h", 1935, "live", "x", "rtmp://h/live"),
        ("rtmp://h:1936/live/x?token=1", "h", 1936, "live", "x?token=1", "rtmp://h:1936/live"),
        ("rtmp://h/app/inst/x", "h", 1935, "app/inst", "x", "rtmp://h/app/inst"),
        ("rtmp://h/app/inst/a/b", "h", 1935, "app/inst", "a/b", "rtmp://h/app/inst"),
        ("rtmp://h/live", "h", 1935, "live", "", "rtmp://h/live"),
        ("rtmp://edge:1935/live?aclAuth=key1/test", "edge", 1935, "live?aclAuth=key1", "test",
         "rtmp://edge:1935/live?aclAuth=key1"),  # WCS: the query belongs to the app
        ("rtmp://[::1]:19350/live/x", "::1", 19350, "live", "x", "rtmp://[::1]:19350/live"),
    ],
)  # fmt: skip
def test_parse_url(url: str, host: str, port: int, app: str, stream: str, tc_url: str) -> None:
    parsed = parse_url(url)
    assert (parsed.host, parsed.port, parsed.app, parsed.stream, parsed.tc_url) == (
        host,
        port,
        app,
        stream,
        tc_url,
    )


@pytest.mark.parametrize("url", ["http://h/live/x", "rtmp:///live/x", "rtmp://h/", "rtmp://h:99999/live/x"])
def test_bad_urls(url: str) -> None:
    with pytest.raises(RtmpError):
        parse_url(url)


def test_names_and_capabilities() -> None:
    assert split_name("key?token=a&token=b&x") == ("key", {"token": "b", "x": ""})
    assert split_name("plain") == ("plain", {})
    caps = Capabilities.of({"videoFourCcInfoMap": {"hvc1": 1.0, "vp09": 0.0, "*": 4.0}, "capsEx": 3.0})
    assert caps.enhanced and caps.fourccs == {"hvc1", "*"} and caps.caps_ex == 3 and caps.accepts("av01")
    assert not Capabilities.of({"app": "live"}).enhanced and not Capabilities.of(None).accepts("avc1")


async def test_publish_to_ffmpeg_listen() -> None:
    """FFmpeg 9 as a one-shot RTMP server (``-listen 1``) decodes what our client publishes."""
    port = free_port("127.0.0.1")
    player = asyncio.ensure_future(run(
        FFMPEG9, "-hide_banner", "-nostats", "-listen", "1", "-timeout", "10",
        "-i", f"rtmp://127.0.0.1:{port}/live/x", "-frames:v", "30", "-f", "null", "-",
        timeout=15,
    ))  # fmt: skip
    client = RtmpClient(timeout=3)
    deadline = time.monotonic() + 5
    while True:
        try:
            await client.connect(f"rtmp://127.0.0.1:{port}/live/x")
            break
        except RtmpConnectError:
            assert time.monotonic() < deadline, "ffmpeg -listen did not start"
            await asyncio.sleep(0.05)
    await client.publish()
    client.send_metadata({"width": 160.0, "height": 120.0, "videocodecid": 7.0, "audiocodecid": 10.0})
    for kind, ts, body in flv_stream("aac"):
        (client.send_video if kind == "v" else client.send_audio)(ts, body)
        await asyncio.sleep(0.001)
    await client.drain()
    rc, log = await player
    await client.close()
    assert rc == 0, log
    assert "Video: h264" in log and "Audio: aac" in log and "frame=   30" in log


async def test_connection_refused_on_a_closed_port() -> None:
    port = free_port("127.0.0.3")
    client = RtmpClient(timeout=2)
    with pytest.raises(
        RtmpConnectError, match=rf"cannot connect to 127\.0\.0\.3:{port}: Connect call failed|refused"
    ):
        await client.connect(f"rtmp://127.0.0.3:{port}/live/x")
    await client.close()


async def test_timeouts() -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)
        await reader.read()

    server = await asyncio.start_server(silent, "127.0.0.2", 0)
    port = server.sockets[0].getsockname()[1]
    client = RtmpClient(timeout=0.3)
    start = time.monotonic()
    with pytest.raises(RtmpTimeout, match=r"did not complete the handshake within 0\.3 s"):
        await client.connect(f"rtmp://127.0.0.2:{port}/live/x")
    assert time.monotonic() - start < 1
    await client.close()
    for writer in accepted:
        writer.close()
    server.close()
    await server.wait_closed()


async def test_server_goes_away_while_publishing() -> None:
    handler = Handler()
    server = RtmpServer(handler, RtmpConfig(close_timeout=0.5))
    await server.start("127.0.0.1", 0)
    client = RtmpClient(timeout=3)
    lost: list[str] = []
    client.on_close = lost.append
    await client.connect(f"rtmp://127.0.0.1:{server.port}/live/gone")
    await client.publish()
    for kind, ts, body in flv_stream()[:10]:
        (client.send_video if kind == "v" else client.send_audio)(ts, body)
    handler.conns[0].close("kicked by the test", code="NetStream.Publish.Failed")
    async with asyncio.timeout(3):
        while not lost:
            await asyncio.sleep(0.01)
    assert lost == ["the server sent NetStream.Publish.Failed: kicked by the test"] and client.closed
    assert not client.send_video(0, flv_stream()[0][2])
    with pytest.raises(RtmpClosed):
        await client.publish("again")
    await client.close()
    await server.close()
    assert handler.sinks[0].ended == ["kicked by the test"]
    assert asyncio.all_tasks() == {asyncio.current_task()}
