"""wcs.client: the WCS client against a tiny WebSocket server on 127.0.0.1 that the test speaks for."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from rtcdn.wcs import messages as m
from rtcdn.wcs.client import AgentError, WcsAgent, agent_url, frame_target
from testkit import free_port

USER_DATA = {"sessionId": "s1", "authToken": "t1", "status": "ESTABLISHED"}


class FakeServer:
    """Accepts WebSockets on 127.0.0.1, answers ``connection`` with ``getUserData`` (if ``greet``)
    and queues every client frame; ``ws`` is the latest socket, for the test to send on."""

    def __init__(self, greet: bool = True) -> None:
        self.greet = greet
        self.received: asyncio.Queue[tuple[str, list[Any]]] = asyncio.Queue()
        self.peers: list[str | None] = []
        self.connected = asyncio.Event()
        self.ws: web.WebSocketResponse | None = None
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"ws://127.0.0.1:{port}/"

    async def _handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.ws = ws
        self.peers.append(request.remote)
        self.connected.set()
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            try:
                message, data = m.parse_frame_data(msg.data)
            except m.ProtocolError:
                message, data = "<not a frame>", [msg.data]
            self.received.put_nowait((message, data))
            if message == "connection" and self.greet:
                await ws.send_str(m.frame("getUserData", USER_DATA))
        return ws

    async def send(self, message: str, *data: Any) -> None:
        assert self.ws is not None
        await self.ws.send_str(m.frame(message, *data))

    async def next(self, skip: tuple[str, ...] = ()) -> tuple[str, list[Any]]:
        async with asyncio.timeout(5):
            while True:
                message, data = await self.received.get()
                if message not in skip:
                    return message, data

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def remote() -> AsyncIterator[FakeServer]:
    srv = FakeServer()
    await srv.start()
    yield srv
    await srv.close()


@pytest.fixture
async def agent(remote: FakeServer) -> AsyncIterator[WcsAgent]:
    client = WcsAgent(remote.url, False, "test")
    await client.connect()
    yield client
    await client.close()


async def next_item(queue: asyncio.Queue[tuple[str, Any]]) -> tuple[str, Any]:
    async with asyncio.timeout(5):
        return await queue.get()


def test_agent_url() -> None:
    assert agent_url("host", False) == "ws://host:8080/"
    assert agent_url("host", True) == "wss://host:8443/"
    assert agent_url("ws://host:9000/ws", True) == "ws://host:9000/ws"
    assert agent_url("wss://[::1]/x", False) == "wss://[::1]:8443/x"
    with pytest.raises(AgentError, match="Bad URI"):
        agent_url("http://host", False)


def test_payloads_match_the_sdk() -> None:
    assert m.connection_payload("ua") == {
        "appKey": "defaultApp",
        "mediaProviders": ["WebRTC"],
        "clientVersion": "2.0",
        "clientBrowserVersion": "ua",
        "msePacketizationVersion": 2,
    }
    publish = m.stream_payload("id", "cam", True, "v=0", has_audio=False)
    assert list(publish) == [
        "mediaSessionId", "name", "published", "hasVideo", "hasAudio", "status", "record",
        "mediaProvider", "sdp", "bitrate", "minBitrate", "maxBitrate",
    ]  # fmt: skip
    assert (publish["published"], publish["hasAudio"], publish["hasVideo"]) == (True, False, True)
    play = m.stream_payload("id", "cam", False, "v=0")
    assert list(play) == [
        "mediaSessionId", "name", "published", "hasVideo", "hasAudio", "status", "record", "width",
        "height", "mediaProvider", "sdp", "bitrate", "minBitrate", "maxBitrate", "quality",
    ]  # fmt: skip
    assert (play["published"], play["status"], play["width"], play["quality"]) == (False, "PENDING", 0, 0)


def test_frame_target() -> None:
    assert frame_target("setRemoteSDP", ["id", "v=0"]) == ("id", "v=0")
    status, available = {"mediaSessionId": "id"}, {"id": "a", "status": "true"}
    assert frame_target("notifyStreamStatusEvent", [status]) == ("id", status)
    assert frame_target("availableStream", [available]) == ("a", available)
    assert frame_target("fail", [{"info": "x"}]) is None
    assert frame_target("getUserData", []) is None


async def test_connect_sends_connection_and_keeps_user_data(remote: FakeServer) -> None:
    agent = WcsAgent(remote.url, False, "test", client="unit test")
    try:
        assert await agent.connect() == USER_DATA
        assert agent.user_data == USER_DATA
        assert await remote.next() == ("connection", [m.connection_payload("unit test")])
    finally:
        await agent.close()
    assert agent.closed.is_set()
    await agent.close()  # idempotent


async def test_pings_are_answered_and_not_delivered(remote: FakeServer, agent: WcsAgent) -> None:
    seen: list[str] = []
    agent.on_frame = lambda message, data: seen.append(message)
    await remote.send("ping")
    assert await remote.next(skip=("connection",)) == ("pong", [None])
    await remote.send("ping")
    assert await remote.next() == ("pong", [None])
    await remote.send("hello", {})
    async with asyncio.timeout(5):
        while not seen:
            await asyncio.sleep(0.01)
    assert seen == ["hello"] and agent.pings == 2


async def test_watch_queues_route_by_media_session_id(remote: FakeServer, agent: WcsAgent) -> None:
    frames: list[tuple[str, list[Any]]] = []
    agent.on_frame = lambda message, data: frames.append((message, data))
    a, b = agent.watch("a"), agent.watch("b")
    await remote.send("setRemoteSDP", "a", "v=0 a")
    await remote.send("notifyStreamStatusEvent", {"mediaSessionId": "b", "status": "PLAYING"})
    await remote.send("notifyStreamStatusEvent", {"mediaSessionId": "nobody", "status": "FAILED"})
    await remote.send("notifyStreamEvent", {"mediaSessionId": "a", "type": "data"})
    assert await next_item(a) == ("setRemoteSDP", "v=0 a")
    assert await next_item(a) == ("notifyStreamEvent", {"mediaSessionId": "a", "type": "data"})
    assert await next_item(b) == ("notifyStreamStatusEvent", {"mediaSessionId": "b", "status": "PLAYING"})
    assert [message for message, _ in frames] == [
        "setRemoteSDP", "notifyStreamStatusEvent", "notifyStreamStatusEvent", "notifyStreamEvent",
    ]  # fmt: skip
    assert agent.watch("nobody").empty()  # not watched when it came: dropped
    assert agent.watch("a") is a


async def test_watch_all_keeps_frames_nobody_watched_yet(remote: FakeServer) -> None:
    agent = WcsAgent(remote.url, False, "test", watch_all=True)
    await agent.connect()
    try:
        await agent.send("availableStream", {"mediaSessionId": "x", "name": "cam"})
        assert await remote.next(skip=("connection",)) == (
            "availableStream",
            [{"mediaSessionId": "x", "name": "cam"}],
        )
        await remote.send("availableStream", {"id": "x", "status": "false"})
        assert await next_item(agent.watch("x")) == ("availableStream", {"id": "x", "status": "false"})
    finally:
        await agent.close()


@pytest.mark.parametrize("end", ["close", "bad frame"])
async def test_closed_notification_when_the_server_goes(
    remote: FakeServer, agent: WcsAgent, end: str
) -> None:
    queue = agent.watch("a")
    assert remote.ws is not None
    if end == "close":
        await remote.ws.close(code=4000, message=b"bye")
    else:  # a frame that is not a WCS message ends the session too
        await remote.ws.send_str(json.dumps(["not", "an object"]))
    message, reason = await next_item(queue)
    assert message == "closed" and ("4000 bye" if end == "close" else "not a JSON object") in reason
    assert agent.closed.is_set() and agent.close_reason == reason
    assert await next_item(agent.watch("late")) == ("closed", reason)
    if end == "close":
        with pytest.raises(AgentError, match="closed"):
            await agent.send("ping")


async def test_close_notifies_watchers_and_leaves_a_shared_session_open(remote: FakeServer) -> None:
    async with aiohttp.ClientSession() as http:
        agent = WcsAgent(remote.url, False, "test", http=http)
        await agent.connect()
        queue = agent.watch("a")
        await agent.close()
        assert await next_item(queue) == ("closed", "")
        assert not http.closed
    with pytest.raises(ValueError, match="local_address"):
        WcsAgent(remote.url, False, "test", "127.0.0.1", http=http)


async def test_publish_play_and_hooks(remote: FakeServer, agent: WcsAgent) -> None:
    sent: list[str] = []
    agent.on_send = lambda message, payload: sent.append(message)
    await agent.publish("p", "cam", "v=0 offer", {"video"})
    publish = m.stream_payload("p", "cam", True, "v=0 offer", has_audio=False)
    assert await remote.next(skip=("connection",)) == ("publishStream", [publish])
    await agent.play("q", "cam", "v=0 offer")
    assert await remote.next() == ("playStream", [m.stream_payload("q", "cam", False, "v=0 offer")])
    await agent.send_raw("{not json")
    await agent.send("stopStream", {"mediaSessionId": "q"})
    assert await remote.next() == ("<not a frame>", ["{not json"])
    assert await remote.next() == ("stopStream", [{"mediaSessionId": "q"}])
    assert sent == ["publishStream", "playStream", "stopStream"]
    # publish and play watch their ids, so an early answer is not lost
    await remote.send("setRemoteSDP", "q", "v=0 answer")
    assert await next_item(agent.watch("q")) == ("setRemoteSDP", "v=0 answer")


async def test_negotiate(remote: FakeServer, agent: WcsAgent) -> None:
    answers: list[str] = []

    async def on_answer(sdp: str) -> None:
        answers.append(sdp)

    async def answer() -> None:
        _, data = await remote.next(skip=("connection",))
        msid = data[0]["mediaSessionId"]
        # a status before the answer does not settle it
        await remote.send("notifyStreamStatusEvent", {"mediaSessionId": msid, "status": "PLAYING"})
        await remote.send("setRemoteSDP", msid, "v=0 answer")
        await remote.send("notifyStreamStatusEvent", {"mediaSessionId": msid, "status": "PENDING"})
        await remote.send("notifyStreamStatusEvent", {"mediaSessionId": msid, "status": "PLAYING", "n": 2})

    task = asyncio.ensure_future(answer())
    payload = m.stream_payload("n1", "cam", False, "v=0 offer")
    status = await agent.negotiate("playStream", payload, m.PLAYING, on_answer, timeout=5)
    await task
    assert status["n"] == 2 and answers == ["v=0 answer"]

    async def refuse() -> None:
        _, data = await remote.next()
        info = {"mediaSessionId": data[0]["mediaSessionId"], "status": "FAILED", "info": m.STREAM_NOT_FOUND}
        await remote.send("notifyStreamStatusEvent", info)

    task = asyncio.ensure_future(refuse())
    status = await agent.negotiate("playStream", m.stream_payload("n2", "x", False, "v=0"), m.PLAYING)
    await task
    assert (status["status"], status["info"]) == ("FAILED", m.STREAM_NOT_FOUND)

    with pytest.raises(TimeoutError):
        await agent.negotiate("playStream", m.stream_payload("n3", "x", False, "v=0"), m.PLAYING, timeout=0.2)

    async def vanish() -> None:
        await remote.next()
        assert remote.ws is not None
        await remote.ws.close()

    task = asyncio.ensure_future(vanish())
    with pytest.raises(AgentError, match="lost"):
        await agent.negotiate("playStream", m.stream_payload("n4", "x", False, "v=0"), m.PLAYING, timeout=5)
    await task


async def test_connect_to_a_closed_port_fails_at_once() -> None:
    agent = WcsAgent(f"ws://127.0.0.1:{free_port()}/", False, "test")
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(AgentError, match=r"Failed to connect to ws://127\.0\.0\.1"):
        await agent.connect(timeout=5)
    assert loop.time() - start < 2
    assert agent.closed.is_set()


async def test_connect_times_out_without_get_user_data() -> None:
    remote = FakeServer(greet=False)
    await remote.start()
    agent = WcsAgent(remote.url, False, "test")
    try:
        with pytest.raises(AgentError, match="no answer within 0 s"):
            await agent.connect(timeout=0.3)
        assert agent.closed.is_set()
    finally:
        await remote.close()


async def test_socket_closed_during_handshake() -> None:
    remote = FakeServer(greet=False)
    await remote.start()
    agent = WcsAgent(remote.url, False, "test")
    connecting = asyncio.ensure_future(agent.connect(timeout=5))
    try:
        await remote.next()  # the connection frame
        assert remote.ws is not None
        await remote.ws.close(code=4003)
        with pytest.raises(AgentError, match=r"Failed to connect.*4003"):
            await connecting
    finally:
        await remote.close()


async def test_open_skips_the_handshake(remote: FakeServer) -> None:
    agent = WcsAgent(remote.url, False, "test")
    await agent.open()
    try:
        await agent.send("playStream", {"mediaSessionId": "early"})
        assert await remote.next() == ("playStream", [{"mediaSessionId": "early"}])
        assert agent.user_data == {}
    finally:
        await agent.close()


async def test_local_address_is_bound(remote: FakeServer) -> None:
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.2", 0))
    except OSError:
        pytest.skip("127.0.0.2 is not usable here")
    agent = WcsAgent(remote.url, False, "test", local_address="127.0.0.2")
    try:
        await agent.connect()
        assert remote.peers == ["127.0.0.2"]
    finally:
        await agent.close()
