"""Relays between real rtcdn processes, with Chromium publishing and playing on the demo pages.

Servers: A, B, C on 127.0.0.23-25 (plain WebSocket agents), and a secure pair A2 → B2 on
127.0.0.26-27 with ``wcs_agent_ssl=true`` on both; B2 has no plain WebSocket port at all, so a
relay to it can only work over wss, with B2's self-signed certificate trusted by A2's
``wcs_agent_ssl_ca_file``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext

from .conftest import rtcdn_process
from .pages import RECORD_PEER_CONNECTIONS, TIMEOUT_MS, LiveServer, Player, TwoWayStreaming

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, LiveServer, LiveServer]]:
    base = tmp_path_factory.mktemp("relay")
    with (
        rtcdn_process("127.0.0.23", base / "a", None) as a,
        rtcdn_process("127.0.0.24", base / "b", None) as b,
        rtcdn_process("127.0.0.25", base / "c", None) as c,
    ):
        yield a, b, c


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, LiveServer]]:
    base = tmp_path_factory.mktemp("relay-ssl")
    with rtcdn_process("127.0.0.27", base / "b2", "wcs_agent_ssl=true\nws.port=0\n") as b2:
        cert = base / "b2" / "state" / "cert.pem"
        with rtcdn_process(
            "127.0.0.26", base / "a2", f"wcs_agent_ssl=true\nwcs_agent_ssl_ca_file={cert}\n"
        ) as a2:
            yield a2, b2


@pytest_asyncio.fixture(loop_scope="session")
async def tls_context(browser: Browser) -> AsyncIterator[BrowserContext]:
    """A context that accepts the servers' self-signed certificates (https pages, wss)."""
    context = await browser.new_context(ignore_https_errors=True)
    context.set_default_timeout(TIMEOUT_MS)
    await context.add_init_script(RECORD_PEER_CONNECTIONS)
    yield context
    await context.close()


async def rest(server: LiveServer, method: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.post(f"{server.rest_url}/{method}", json=body) as resp:
        return resp.status, await resp.json()


async def relay_status(server: LiveServer, status: str, timeout: float = 20) -> dict[str, Any]:
    """Poll ``/pull/find_all`` until the (only) relay reaches ``status``."""
    async with asyncio.timeout(timeout):
        while True:
            code, records = await rest(server, "pull/find_all")
            if code == 200 and records[-1]["status"] == status:
                return dict(records[-1])
            await asyncio.sleep(0.2)


async def publish(context: BrowserContext, server: LiveServer) -> TwoWayStreaming:
    page = await TwoWayStreaming.connect(context, server)
    await page.publish()
    await page.expect_publishing()
    return page


async def play(context: BrowserContext, server: LiveServer, name: str) -> Player:
    player = await Player.load(context, server, name)
    await player.play()
    await player.expect_playing()  # PLAYING, a picture, decoded frames increasing
    return player


async def test_push_find_terminate(context: BrowserContext, plain: tuple[LiveServer, ...]) -> None:
    a, b, _ = plain
    publisher = await publish(context, a)
    code, record = await rest(
        a,
        "pull/push",
        {"uri": b.ws_url, "localStreamName": publisher.name, "remoteStreamName": publisher.name},
    )
    assert code == 200 and record["status"] in ("NEW", "PENDING"), record
    record = await relay_status(a, "PUBLISHING")
    assert record["localMediaSessionId"] and record["remoteMediaSessionId"]
    player = await play(context, b, publisher.name)
    code, _ = await rest(a, "pull/terminate", {"uri": b.ws_url, "localStreamName": publisher.name})
    assert code == 200
    await player.expect_stopped()
    await publisher.expect_publishing()  # the local publisher is not disturbed
    await publisher.unpublish()


async def test_pull_and_publisher_leaving(context: BrowserContext, plain: tuple[LiveServer, ...]) -> None:
    a, b, _ = plain
    publisher = await publish(context, a)
    local = f"pulled-{publisher.name}"
    code, _ = await rest(
        b, "pull/pull", {"uri": a.ws_url, "remoteStreamName": publisher.name, "localStreamName": local}
    )
    assert code == 200
    await relay_status(b, "PLAYING")
    player = await play(context, b, local)
    await publisher.unpublish()
    await player.expect_stopped()
    record = await relay_status(b, "STOPPED")
    assert "Stopped by publisher stop" in record["info"]


async def test_chain_a_b_c(context: BrowserContext, plain: tuple[LiveServer, ...]) -> None:
    a, b, c = plain
    publisher = await publish(context, a)
    name = publisher.name
    assert (await rest(a, "pull/push", {"uri": b.ws_url, "localStreamName": name, "remoteStreamName": name}))[
        0
    ] == 200
    await relay_status(a, "PUBLISHING")
    assert (await rest(b, "pull/push", {"uri": c.ws_url, "localStreamName": name, "remoteStreamName": name}))[
        0
    ] == 200
    await relay_status(b, "PUBLISHING")
    player = await play(context, c, name)  # a picture at once: its PLI travelled C → B → A → browser
    await publisher.unpublish()
    await player.expect_stopped()


async def test_wss_agents(
    context: BrowserContext, tls_context: BrowserContext, secure: tuple[LiveServer, LiveServer]
) -> None:
    a2, b2 = secure
    publisher = await publish(context, a2)
    # plain ws:// on the default port: wcs_agent_ssl turns it into wss://127.0.0.27:8443
    code, _ = await rest(
        a2,
        "pull/push",
        {
            "uri": "ws://127.0.0.27:8080",
            "localStreamName": publisher.name,
            "remoteStreamName": publisher.name,
        },
    )
    assert code == 200
    await relay_status(a2, "PUBLISHING")
    # B2 has no ws:// port: its player page comes over https and connects to wss://
    player = await Player.load(tls_context, b2, publisher.name, https=True)
    await player.play()
    await player.expect_playing()
    await publisher.unpublish()
    await player.expect_stopped()


async def test_rest_errors_between_processes(context: BrowserContext, plain: tuple[LiveServer, ...]) -> None:
    a, b, _ = plain
    assert (
        await rest(a, "pull/push", {"uri": b.ws_url, "localStreamName": "nobody", "remoteStreamName": "x"})
    )[0] == 404
    assert (await rest(a, "pull/push", {"uri": b.ws_url, "localStreamName": "x"}))[0] == 400
    publisher = await publish(context, a)
    body = {"uri": b.ws_url, "localStreamName": publisher.name, "remoteStreamName": publisher.name}
    assert (await rest(a, "pull/push", body))[0] == 200
    assert (await rest(a, "pull/push", body))[0] == 409
    taken = {"uri": b.ws_url, "remoteStreamName": "x", "localStreamName": publisher.name}
    assert (await rest(a, "pull/pull", taken))[0] == 409
    await relay_status(a, "PUBLISHING")
    unreachable = {"uri": "ws://127.0.0.23:9", "localStreamName": publisher.name, "remoteStreamName": "u"}
    assert (await rest(a, "pull/push", unreachable))[0] == 200
    async with asyncio.timeout(15):
        while True:
            _, records = await rest(a, "pull/find", {"uri": "ws://127.0.0.23:9"})
            if records[0]["status"] == "FAILED":
                break
            await asyncio.sleep(0.2)
    assert "Failed to connect" in records[0]["info"]
    await rest(a, "pull/terminate", {"localStreamName": publisher.name})
    await publisher.unpublish()
