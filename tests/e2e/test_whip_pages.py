"""WHIP/WHEP with real third-party clients against real ``rtcdn serve`` processes.

Clients (tests/whip_clients.py): ffmpeg's ``whip`` muxer (H.264 + Opus from lavfi) and the npm
``whip-whep`` WHIPClient/WHEPClient in headless Chromium; the streams they publish are checked on
the unmodified WebSDK demo pages (Player, Embed Player, Two Way Streaming) and by REST.

Servers, all ``codecs=opus,h264`` (ffmpeg only sends H.264; the pages then all see H.264):

* A (127.0.0.101): where the clients publish and play.
* B (127.0.0.102): the target of ``/rest-api/pull/push`` from A, and the CDN edge of C.
* C (127.0.0.103): a static CDN origin (``load_balancing_enabled=true``, B its only edge).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Route

from whip_clients import (
    WhipClientError,
    WhipRequest,
    WhipWhepPage,
    ffmpeg_whip,
    log_tail,
    serve_whip_page,
    wait_ffmpeg_publishing,
)

from .conftest import rtcdn_process
from .pages import RECORD_PEER_CONNECTIONS, TIMEOUT_MS, EmbedPlayer, LiveServer, Player, TwoWayStreaming

pytestmark = pytest.mark.asyncio(loop_scope="session")

A, B, C = "127.0.0.101", "127.0.0.102", "127.0.0.103"
H264 = "codecs=opus,h264\n"
ORIGIN = H264 + "load_balancing_enabled=true\n"
LOADBALANCING = f"""<?xml version="1.0" encoding="UTF-8"?>
<loadbalancer mode="roundrobin" stream_distribution="webrtc">
  <node id="1"><ip>{B}</ip></node>
</loadbalancer>
"""
FFMPEG: dict[str, Any] = {"size": "320x240", "rate": 15}
"Small and slow enough for x264 on a shared 2-core machine."
FRAMES = 10
"Decoded frames a whip-whep viewer must gain, twice, to count as playing (~0.7 s at 15 fps)."


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, LiveServer]]:
    base = tmp_path_factory.mktemp("whip")
    (base / "c").mkdir()
    (base / "c" / "loadbalancing.xml").write_text(LOADBALANCING)
    with contextlib.ExitStack() as stack:
        b = stack.enter_context(rtcdn_process(B, base / "b", H264, "H264"))
        a = stack.enter_context(rtcdn_process(A, base / "a", H264, "H264"))
        c = stack.enter_context(rtcdn_process(C, base / "c", ORIGIN, "H264"))
        yield {"a": a, "b": b, "c": c}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def whip_page_url() -> AsyncIterator[str]:
    """The whip-whep page, on its own origin (http://127.0.0.1:<port>): CORS is exercised."""
    async with serve_whip_page() as base:
        yield base


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def shared_context(browser: Browser) -> AsyncIterator[tuple[BrowserContext, list[str]]]:
    """One browser context for the module (and the uncaught page errors it collects)."""
    context = await browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    await context.add_init_script(RECORD_PEER_CONNECTIONS)
    errors: list[str] = []
    context.on("page", lambda page: page.on("pageerror", lambda exc: errors.append(f"{page.url}: {exc}")))
    yield context, errors
    await context.close()


@pytest_asyncio.fixture(loop_scope="session")
async def ctx(shared_context: tuple[BrowserContext, list[str]]) -> AsyncIterator[BrowserContext]:
    """The shared context; the pages a test opened are closed after it (they cost CPU), and an
    uncaught JavaScript error in any of them fails it."""
    context, errors = shared_context
    errors.clear()
    yield context
    for page in context.pages:
        await page.close()
    assert not errors, errors


# --- helpers -------------------------------------------------------------------------------------


def whip_url(server: LiveServer, name: str, kind: str = "whip", port: int = 8081) -> str:
    return f"http://{server.host}:{port}/{kind}/{name}"


async def rest(server: LiveServer, method: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http:
        if body is None:
            request = http.get(f"{server.rest_url}/{method}")
        else:
            request = http.post(f"{server.rest_url}/{method}", json=body)
        async with request as resp:
            return resp.status, await resp.json()


async def published(server: LiveServer, name: str, timeout: float = 5.0) -> dict[str, Any]:
    """The one publish record of ``name`` in ``GET /rest-api/stream/find_all``, once PUBLISHING
    (a client may start sending a moment before the server has seen its media)."""
    async with asyncio.timeout(timeout):
        while True:
            code, records = await rest(server, "stream/find_all")
            mine = [r for r in records if r["name"] == name and r["published"]] if code == 200 else []
            assert len(mine) <= 1, records
            if mine and mine[0]["status"] == "PUBLISHING":
                return dict(mine[0])
            await asyncio.sleep(0.1)


async def until_gone(server: LiveServer, name: str, timeout: float = 5.0) -> None:
    """``/rest-api/stream/find`` answers 404 for ``name`` (no publisher, no player left)."""
    async with asyncio.timeout(timeout):
        while (await rest(server, "stream/find", {"name": name}))[0] != 404:
            await asyncio.sleep(0.1)


async def until_logged(server: LiveServer, pattern: str, timeout: float = 5.0) -> str:
    """The first line of the server's log matching the regular expression ``pattern``."""
    assert server.workdir is not None
    log = server.workdir / "rtcdn.log"
    async with asyncio.timeout(timeout):
        while True:
            for line in log.read_text(errors="replace").splitlines():
                if re.search(pattern, line):
                    return line
            await asyncio.sleep(0.1)


async def expect_frames_rising(viewer: WhipWhepPage, timeout: float = 15.0) -> int:
    """The WHEP viewer decodes video, and keeps decoding: the frames reached."""
    decoded = await viewer.wait_frames(1, timeout)
    for _ in range(2):
        decoded = await viewer.wait_frames(decoded + FRAMES, timeout=5.0)
    return decoded


async def whep_viewer(context: BrowserContext, page_url: str, server: LiveServer, name: str) -> WhipWhepPage:
    viewer = await WhipWhepPage.open(context, page_url)
    await viewer.play(whip_url(server, name, "whep"))
    await expect_frames_rising(viewer)
    stats = await viewer.stats()
    assert "video/H264" in stats.received, stats
    return viewer


def delete_after_end(server: LiveServer, kind: str, name: str) -> Callable[[Route], Awaitable[None]]:
    """A Playwright route handler holding a DELETE until the server logged the end of the resource
    (2 s at most)."""

    async def handler(route: Route) -> None:
        if route.request.method == "DELETE":
            with contextlib.suppress(TimeoutError):
                await until_logged(server, rf"{kind} '{name}' [0-9a-f]+: ENDED", timeout=2)
        await route.continue_()

    return handler


def by_method(requests: list[WhipRequest], method: str) -> list[WhipRequest]:
    return [r for r in requests if r.method == method]


# --- 1. ffmpeg → Player page ---------------------------------------------------------------------


async def test_ffmpeg_publishes_h264_opus_and_player_page_plays_it(
    ctx: BrowserContext, servers: dict[str, LiveServer], tmp_path: Path
) -> None:
    a, name = servers["a"], "ffmpeg-cam"
    log = tmp_path / "ffmpeg.log"
    async with ffmpeg_whip(whip_url(a, name), log=log, **FFMPEG) as proc:
        await wait_ffmpeg_publishing(proc, log)
        record = await published(a, name)
        assert (record["audioCodec"], record["videoCodec"]) == ("opus", "H264"), record
        player = await Player.load(ctx, a, name)
        await player.play()
        await player.expect_playing()  # PLAYING, a picture, H264, decoded frames increasing
    assert proc.returncode == 0, log_tail(log)
    # `q` made ffmpeg DELETE its resource before it exited
    await until_logged(a, rf"whip '{name}' [0-9a-f]+: ENDED \(DELETE by the client\)")
    await player.expect_stopped()
    await until_gone(a, name)


# --- 2. whip-whep in Chromium --------------------------------------------------------------------


async def test_whip_whep_publish_trickle_and_play_on_whep_and_websdk_pages(
    ctx: BrowserContext, servers: dict[str, LiveServer], whip_page_url: str
) -> None:
    a, name = servers["a"], "whip-whep-cam"
    publisher = await WhipWhepPage.open(ctx, whip_page_url)
    await publisher.publish(whip_url(a, name, port=9091))
    await publisher.wait_connected()
    assert (await published(a, name))["videoCodec"] == "H264"

    viewer = await whep_viewer(ctx, whip_page_url, a, name)
    players = [await Player.load(ctx, a, name), await EmbedPlayer.load(ctx, a, name)]
    for player in players:
        await player.play()
    await asyncio.gather(*(player.expect_playing() for player in players))
    await expect_frames_rising(viewer)  # the WHEP viewer is not disturbed by the WCS players

    # WHIP: POST 201 with ETag; trickled candidates by PATCH, each 204 and with If-Match: <ETag>
    requests = await publisher.requests()
    [post] = by_method(requests, "POST")
    assert post.status == 201 and post.response_headers["location"].startswith(f"/whip/{name}/"), post
    etag = post.response_headers["etag"]
    patches = by_method(requests, "PATCH")
    assert patches and all(p.status == 204 for p in patches), patches
    assert all(p.headers.get("If-Match") == etag for p in patches), patches
    resource = await publisher.resource_url()
    assert resource == f"http://{a.host}:9091{post.response_headers['location']}", resource
    assert all(p.url == resource for p in patches), patches
    assert "a=end-of-candidates" in (patches[-1].body or ""), patches[-1]
    # WHEP: the same, without If-Match (WHEPClient ignores the ETag)
    whep_requests = await viewer.requests()
    assert [r.status for r in by_method(whep_requests, "POST")] == [201], whep_requests
    whep_patches = by_method(whep_requests, "PATCH")
    assert whep_patches and all(p.status == 204 for p in whep_patches), whep_patches

    await viewer.stop()  # closes its peer connection, then DELETEs
    [whep_delete] = by_method(await viewer.requests(), "DELETE")
    assert whep_delete.url == await viewer.resource_url("whep"), whep_delete
    assert whep_delete.status == 200, whep_delete
    await players[0].expect_playing()  # a WHEP viewer leaving does not disturb the stream

    await publisher.stop()
    requests = await publisher.requests()
    assert (requests[-1].method, requests[-1].url, requests[-1].status) == ("DELETE", resource, 200)
    await asyncio.gather(*(player.expect_stopped() for player in players))
    await until_gone(a, name)
    assert await publisher.errors() == [] and await viewer.errors() == []


async def test_whip_whep_delete_after_the_peer_connection_closed_is_200(
    ctx: BrowserContext, servers: dict[str, LiveServer], whip_page_url: str
) -> None:
    """whip-whep's stop() closes its peer connection, then DELETEs: the DTLS close usually ends the
    resource first (always, here), and the late DELETE must still be a 200."""
    a, name = servers["a"], "whip-whep-delete"
    publisher = await WhipWhepPage.open(ctx, whip_page_url)
    await publisher.publish(whip_url(a, name))
    await publisher.wait_connected()
    viewer = await whep_viewer(ctx, whip_page_url, a, name)
    for page, kind in ((viewer, "whep"), (publisher, "whip")):
        # the race made deterministic: the DELETE goes out once the server saw the DTLS close
        await page.page.route(f"http://{a.host}:8081/{kind}/{name}/*", delete_after_end(a, kind, name))
        await page.stop()
    deletes = [(r.method, r.status) for page in (viewer, publisher) for r in await page.requests()]
    await until_gone(a, name)
    assert [d for d in deletes if d[0] == "DELETE"] == [("DELETE", 200), ("DELETE", 200)], deletes
    for kind in ("whep", "whip"):  # the DELETEs came after the end
        await until_logged(a, rf"{kind} '{name}' [0-9a-f]+: ENDED \(the client closed the connection\)")


async def test_two_way_streaming_publish_plays_over_whep(
    ctx: BrowserContext, servers: dict[str, LiveServer], whip_page_url: str
) -> None:
    a = servers["a"]
    publisher = await TwoWayStreaming.connect(ctx, a)
    await publisher.publish()
    await publisher.expect_publishing()  # H264 (the server's only video codec)
    viewer = await whep_viewer(ctx, whip_page_url, a, publisher.name)
    await publisher.unpublish()
    await until_logged(a, rf"whep '{publisher.name}' [0-9a-f]+: ENDED")
    await until_gone(a, publisher.name)
    # no signaling tells a WHEP client; its media stops (Chromium stays "connected": a DTLS
    # close_notify leaves the peer connection state as it is)
    await asyncio.sleep(0.5)  # what was in the jitter buffer
    decoded = await viewer.frames_decoded()
    await asyncio.sleep(0.5)
    assert await viewer.frames_decoded() == decoded
    assert await viewer.errors() == []
    await viewer.stop()  # a DELETE of a resource the server already ended is still a success
    [delete] = by_method(await viewer.requests(), "DELETE")
    assert delete.status == 200, delete


# --- 3. relay and CDN ----------------------------------------------------------------------------


async def relay_status(server: LiveServer, name: str, status: str, timeout: float = 15.0) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            code, records = await rest(server, "pull/find_all")
            mine = [r for r in records if r.get("localStreamName") == name] if code == 200 else []
            if mine and mine[-1]["status"] == status:
                return dict(mine[-1])
            await asyncio.sleep(0.2)


async def test_whip_stream_pushed_to_another_server_plays_there(
    ctx: BrowserContext, servers: dict[str, LiveServer], tmp_path: Path
) -> None:
    a, b, name = servers["a"], servers["b"], "ffmpeg-pushed"
    log = tmp_path / "ffmpeg.log"
    async with ffmpeg_whip(whip_url(a, name), log=log, **FFMPEG) as proc:
        await wait_ffmpeg_publishing(proc, log)
        body = {"uri": b.ws_url, "localStreamName": name, "remoteStreamName": name}
        code, record = await rest(a, "pull/push", body)
        assert code == 200, record
        await relay_status(a, name, "PUBLISHING")
        assert (await published(b, name))["videoCodec"] == "H264"
        player = await Player.load(ctx, b, name)
        await player.play()
        await player.expect_playing()
    assert proc.returncode == 0, log_tail(log)
    await player.expect_stopped()  # the WHIP publisher left A: the relay ends, B's stream with it
    await until_gone(b, name)
    await until_gone(a, name)
    record = await relay_status(a, name, "UNPUBLISHED")
    assert record["info"] == "Stopped by publisher stop", record


async def test_whip_stream_on_cdn_origin_plays_on_edge(
    ctx: BrowserContext, servers: dict[str, LiveServer], whip_page_url: str
) -> None:
    b, c, name = servers["b"], servers["c"], "whip-cdn"
    publisher = await WhipWhepPage.open(ctx, whip_page_url)
    await publisher.publish(whip_url(c, name))
    await publisher.wait_connected()
    async with asyncio.timeout(10):  # the origin pushes every new stream to its edges
        while True:
            code, routes = await rest(c, "cdn/streams")
            assert code == 200, routes
            edges = [e for r in routes if r["name"] == name for e in r["edges"]]
            if [e["status"] for e in edges if e["ip"] == b.host] == ["PUBLISHING"]:
                break
            await asyncio.sleep(0.2)
    page = await ctx.new_page()  # the origin's balancer sends the player to the edge's own page
    await page.goto(f"http://{c.host}:9091/balancer/player?streamName={name}")
    assert page.url.startswith(f"http://{b.host}:"), page.url
    player = Player(page, b)
    await player.play()
    await player.expect_playing()
    await publisher.stop()
    await player.expect_stopped()
    await until_gone(b, name)
    assert await publisher.errors() == []


# --- 4. errors -----------------------------------------------------------------------------------


async def test_ffmpeg_to_a_taken_name_fails_fast_and_first_publisher_keeps_streaming(
    ctx: BrowserContext, servers: dict[str, LiveServer], whip_page_url: str, tmp_path: Path
) -> None:
    a, name = servers["a"], "ffmpeg-taken"
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    async with ffmpeg_whip(whip_url(a, name), log=first_log, **FFMPEG) as first:
        await wait_ffmpeg_publishing(first, first_log)
        viewer = await whep_viewer(ctx, whip_page_url, a, name)
        before = await published(a, name)

        started = time.monotonic()
        async with ffmpeg_whip(whip_url(a, name), log=second_log, **FFMPEG) as second:
            await asyncio.wait_for(second.wait(), 10)
        elapsed = time.monotonic() - started
        assert second.returncode not in (None, 0), log_tail(second_log)
        assert "HTTP error 409 Conflict" in second_log.read_text(errors="replace"), log_tail(second_log)
        assert elapsed < 5, f"the refused publisher took {elapsed:.1f} s to give up"

        # whip-whep is refused the same way, and reports the status
        late = await WhipWhepPage.open(ctx, whip_page_url)
        with pytest.raises(WhipClientError, match="Request rejected with status 409"):
            await late.publish(whip_url(a, name))
        assert [(r.method, r.status) for r in await late.requests()] == [("POST", 409)]

        await expect_frames_rising(viewer)  # the first publisher's media still flows
        assert (await published(a, name))["mediaSessionId"] == before["mediaSessionId"]
        assert first.returncode is None, log_tail(first_log)
        await viewer.stop()
    assert first.returncode == 0, log_tail(first_log)
    await until_gone(a, name)


async def test_whep_of_unknown_stream_is_404(
    ctx: BrowserContext, servers: dict[str, LiveServer], whip_page_url: str
) -> None:
    viewer = await WhipWhepPage.open(ctx, whip_page_url)
    started = time.monotonic()
    with pytest.raises(WhipClientError, match="Request rejected with status 404"):
        await viewer.play(whip_url(servers["a"], "no-such-stream", "whep"))
    assert time.monotonic() - started < 3
    assert [(r.method, r.status) for r in await viewer.requests()] == [("POST", 404)]
    assert await viewer.errors() == ["whep: Request rejected with status 404"]
