"""The WCS front end under access control: the session's token and a stream's own, refusals as
FAILED / "Restricted access" after the refusal delay, a bad token failing the session, allow_domains,
the caps per client address, per session and per stream, the frame size cap."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest

from authkit import auth_settings, running, token, ws_url
from rtcdn.wcs import messages as m
from rtcdn.wcs.client import AgentError
from testkit import make_settings
from wcs_client import WcsClient

RESTRICTED = ("FAILED", "Restricted access")


def outcome(status: dict[str, object] | None) -> tuple[object, object]:
    assert status is not None
    return status["status"], status["info"]


async def test_tokens_grant_publish_and_play(tmp_path: Path) -> None:
    async with running(auth_settings(), tmp_path / "s") as server:
        url = ws_url(server)
        async with WcsClient(url, custom={"token": token(["live/*"], ["live/*"])}) as client:
            _, _, status = await client.publish("live/cam")
            assert outcome(status)[0] == "PUBLISHING", status
            _, _, status = await client.play("live/cam")
            assert outcome(status)[0] == "PLAYING", status
            assert outcome((await client.publish("other"))[2]) == RESTRICTED  # no grant for it
            async with WcsClient(url, custom={"token": token(play=["live/*"])}) as viewer:
                assert outcome((await viewer.play("live/cam"))[2])[0] == "PLAYING"
                assert outcome((await viewer.publish("live/cam2"))[2]) == RESTRICTED  # play only
            async with WcsClient(url) as anonymous:  # no token: the session opens, its streams are refused
                assert anonymous.user_data is not None and anonymous.user_data["status"] == "ESTABLISHED"
                assert outcome((await anonymous.play("live/cam"))[2]) == RESTRICTED
                assert outcome((await anonymous.publish("live/x"))[2]) == RESTRICTED


async def test_a_streams_own_token_wins_over_the_sessions(tmp_path: Path) -> None:
    async with running(auth_settings(), tmp_path / "s") as server:
        async with WcsClient(ws_url(server), custom={"token": token(["a"], ["a"])}) as client:
            _, _, status = await client.publish("b", custom={"token": token(["b"])})
            assert outcome(status)[0] == "PUBLISHING", status
            # its own token does not grant "a": the session's grant does not help it
            assert outcome((await client.play("a", custom={"token": token(play=["b"])}))[2]) == RESTRICTED
            assert (
                outcome((await client.play("b", custom={"token": token(["b"], ttl=-120)}))[2]) == RESTRICTED
            )
            assert outcome((await client.publish("a"))[2])[0] == "PUBLISHING"  # the session's
            async with WcsClient(ws_url(server)) as anonymous:
                _, _, status = await anonymous.play("b", custom={"token": token(play=["*"])})
                assert outcome(status)[0] == "PLAYING", status


@pytest.mark.parametrize(
    "bad",
    [
        token(["*"], ttl=-120),
        token(["*"], key=b"w" * 32),
        token(["*"], aud="someone-else"),
        token(["*"], key=b"rtcdn-test-secret-0123456789abcdef" * 2, alg="HS512"),
        "garbage",
    ],
    ids=["expired", "wrong-key", "wrong-audience", "hs512", "garbage"],
)
async def test_a_bad_session_token_fails_the_session_after_the_delay(tmp_path: Path, bad: str) -> None:
    async with running(auth_settings(auth_failure_delay_ms=(200, 300)), tmp_path / "s") as server:
        client = WcsClient(ws_url(server), custom={"token": bad})
        started = time.monotonic()
        with pytest.raises(AgentError):
            await client.connect()
        assert 0.2 <= time.monotonic() - started < 2.0
        fail = await client.wait_message("fail", timeout=5)
        assert fail["data"][0]["info"] == m.RESTRICTED_ACCESS
        await client.close()
        assert server.sessions == {}


async def test_refusals_wait_the_delay(tmp_path: Path) -> None:
    async with running(auth_settings(auth_failure_delay_ms=(200, 300)), tmp_path / "s") as server:
        async with WcsClient(ws_url(server), custom={"token": token(["cam"])}) as client:
            started = time.monotonic()
            assert outcome((await client.publish("not-mine"))[2]) == RESTRICTED
            assert 0.2 <= time.monotonic() - started < 2.0
            started = time.monotonic()
            assert outcome((await client.publish("cam"))[2])[0] == "PUBLISHING"  # no delay when allowed
            assert time.monotonic() - started < 2.0


async def test_auth_off_by_default(tmp_path: Path) -> None:
    async with running(make_settings(), tmp_path / "s") as server:
        async with WcsClient(ws_url(server), custom={"token": "ignored"}) as client:
            assert outcome((await client.publish("cam"))[2])[0] == "PUBLISHING"
        assert server.access.service_token() is None and not server.access.active


async def upgrade(url: str, origin: str | None = None) -> int:
    """The HTTP status of a WebSocket upgrade (101 when it succeeds)."""
    headers = {"Origin": origin} if origin is not None else {}
    async with aiohttp.ClientSession() as http:
        try:
            async with http.ws_connect(url, headers=headers) as ws:
                await ws.close()
                return 101
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status


async def test_allow_domains(tmp_path: Path) -> None:
    settings = make_settings(allow_domains=["!*.evil.example.com", "*.example.com", "app.test"])
    async with running(settings, tmp_path / "s") as server:
        url = ws_url(server)
        assert await upgrade(url, "https://www.example.com") == 101
        assert await upgrade(url, "https://APP.test:8888") == 101
        assert await upgrade(url, "https://a.evil.example.com") == 403  # the first match decides
        assert await upgrade(url, "https://example.org") == 403  # no match
        assert await upgrade(url, "null") == 403
        assert await upgrade(url) == 101  # no Origin: not a browser page, not checked
        assert server.sessions == {}


async def test_caps_per_client_address(tmp_path: Path) -> None:
    settings = make_settings(limits_exempt_ips=[], max_sessions_per_ip=2, connection_rate_per_ip=1000)
    async with running(settings, tmp_path / "s") as server:
        url = ws_url(server)
        async with aiohttp.ClientSession() as http:
            first, second = await http.ws_connect(url), await http.ws_connect(url)
            assert await upgrade(url) == 429
            await first.close()
            async with asyncio.timeout(5):
                while server.access.connections.sessions.get("127.0.0.1", 0) > 1:
                    await asyncio.sleep(0.02)
            third = await http.ws_connect(url)
            await second.close()
            await third.close()
    settings = make_settings(limits_exempt_ips=[], connection_rate_per_ip=0.01, connection_burst_per_ip=3)
    async with running(settings, tmp_path / "r") as server:
        url = ws_url(server)
        assert [await upgrade(url) for _ in range(4)] == [101, 101, 101, 429]
    async with running(
        make_settings(connection_rate_per_ip=0.01, connection_burst_per_ip=1), tmp_path / "e"
    ) as server:
        assert [await upgrade(ws_url(server)) for _ in range(3)] == [101] * 3  # loopback is exempt by default


async def test_behind_a_trusted_proxy_the_caps_count_the_forwarded_client(tmp_path: Path) -> None:
    settings = make_settings(
        limits_exempt_ips=[],
        max_sessions_per_ip=1,
        connection_rate_per_ip=1000,
        trusted_proxies=["127.0.0.1"],
    )
    async with running(settings, tmp_path / "s") as server, aiohttp.ClientSession() as http:
        url = ws_url(server)

        async def via_proxy(client: str) -> int:
            try:
                ws = await http.ws_connect(url, headers={"X-Forwarded-For": client})
            except aiohttp.WSServerHandshakeError as exc:
                return exc.status
            sockets.append(ws)
            return 101

        sockets: list[aiohttp.ClientWebSocketResponse] = []
        assert [await via_proxy(c) for c in ("127.0.0.9", "127.0.0.10", "127.0.0.9")] == [101, 101, 429]
        assert server.access.connections.sessions == {"127.0.0.9": 1, "127.0.0.10": 1}
        async with asyncio.timeout(5):  # the sessions start just after the upgrade's answer
            while len(server.wcs.sessions) < 2:
                await asyncio.sleep(0.02)
        assert sorted(s.remote for s in server.wcs.sessions.values()) == ["127.0.0.10", "127.0.0.9"]
        for ws in sockets:
            await ws.close()
    untrusted = make_settings(limits_exempt_ips=[], max_sessions_per_ip=1, connection_rate_per_ip=1000)
    async with running(untrusted, tmp_path / "u") as server, aiohttp.ClientSession() as http:
        first = await http.ws_connect(ws_url(server), headers={"X-Forwarded-For": "127.0.0.9"})
        assert await upgrade(ws_url(server)) == 429  # the header is not believed: both are 127.0.0.1
        await first.close()


async def test_streams_per_session_and_players_per_stream(tmp_path: Path) -> None:
    async with running(
        make_settings(max_streams_per_session=2, max_players_per_stream=1), tmp_path / "s"
    ) as server:
        async with WcsClient(ws_url(server)) as client, WcsClient(ws_url(server)) as other:
            assert outcome((await client.publish("a"))[2])[0] == "PUBLISHING"
            assert outcome((await client.play("a"))[2])[0] == "PLAYING"
            assert outcome((await client.publish("b"))[2]) == ("FAILED", m.TOO_MANY_STREAMS)
            assert outcome((await other.play("a"))[2]) == ("FAILED", m.TOO_MANY_PLAYERS)
            assert outcome((await other.publish("b"))[2])[0] == "PUBLISHING"


async def test_frames_over_the_cap_close_the_socket(tmp_path: Path) -> None:
    async with running(make_settings(), tmp_path / "s") as server, aiohttp.ClientSession() as http:
        async with http.ws_connect(ws_url(server), max_msg_size=0) as ws:
            await ws.send_str('{"message":"ping","data":["' + "x" * m.MAX_FRAME_BYTES + '"]}')
            msg = await ws.receive(timeout=5)
            assert msg.type == aiohttp.WSMsgType.CLOSE and ws.close_code == 1009


async def test_available_stream_answers_only_sessions_that_may_play_it(tmp_path: Path) -> None:
    """With tokens on, ``availableStream`` tells whether a stream is live only to a session whose
    grant lets it play that stream; anyone else gets "Restricted access", live or not."""

    async def available(client: WcsClient, name: str) -> tuple[object, object]:
        await client.send("availableStream", {"mediaSessionId": f"a-{name}", "name": name})
        reply = (await client.wait_message("availableStream"))["data"][0]
        assert reply["id"] == f"a-{name}", reply
        return reply["status"], reply.get("info")

    async with running(auth_settings(), tmp_path / "s") as server:
        url = ws_url(server)
        async with WcsClient(url, custom={"token": token(["live/*"], ["live/*"])}) as owner:
            assert outcome((await owner.publish("live/cam"))[2])[0] == "PUBLISHING"
            assert await available(owner, "live/cam") == ("true", None)
            assert (await available(owner, "live/none"))[0] == "false"  # not live: WCS's answer
            async with (
                WcsClient(url) as anonymous,
                WcsClient(url, custom={"token": token(play=["x"])}) as other,
            ):
                for client in (anonymous, other):
                    for name in ("live/cam", "live/none"):
                        assert await available(client, name) == ("false", m.RESTRICTED_ACCESS)
