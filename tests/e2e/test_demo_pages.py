"""The unmodified WebSDK demo pages, served by rtcdn, in headless Chromium; each test runs against
a VP8 and an H264 server (``live_server`` is parametrized in conftest.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import pytest
from playwright.async_api import BrowserContext

from .pages import DemoPage, EmbedPlayer, LiveServer, Player, TwoWayStreaming

pytestmark = pytest.mark.asyncio(loop_scope="session")

# what the page shows for the info "Stream name is already in use"
NAME_IN_USE = "Server already has a publish stream with the same name, try using different one"


async def publishing(context: BrowserContext, live_server: LiveServer) -> TwoWayStreaming:
    publisher = await TwoWayStreaming.connect(context, live_server)
    await publisher.publish()
    await publisher.expect_publishing()
    return publisher


async def play_all(players: Iterable[DemoPage]) -> None:
    """Start every player, then check them all at once (each check waits for frames)."""
    players = list(players)
    for player in players:
        await player.play()
    await asyncio.gather(*(player.expect_playing() for player in players))


async def test_two_way_streaming_publishes_and_plays_back(
    context: BrowserContext, live_server: LiveServer
) -> None:
    page = await publishing(context, live_server)
    await page.play()
    await page.expect_playing()
    await page.stop()
    await page.expect_publishing()
    await page.play()
    await page.expect_playing()
    await page.unpublish()
    await page.expect_stopped()


async def test_player_and_embed_player_play_and_stop(
    context: BrowserContext, live_server: LiveServer
) -> None:
    publisher = await publishing(context, live_server)
    players = [
        await Player.load(context, live_server, publisher.name),
        await EmbedPlayer.load(context, live_server, publisher.name),
    ]
    await play_all(players)
    for player in players:
        await player.stop()
        await publisher.expect_publishing()
    await play_all(players)  # a stopped page plays again on its session


async def test_unpublish_stops_every_player(context: BrowserContext, live_server: LiveServer) -> None:
    publisher = await publishing(context, live_server)
    players = [
        publisher,
        await Player.load(context, live_server, publisher.name),
        await EmbedPlayer.load(context, live_server, publisher.name),
    ]
    await play_all(players)
    await publisher.unpublish()
    await asyncio.gather(*(player.expect_stopped() for player in players))


async def test_play_unknown_stream_fails(context: BrowserContext, live_server: LiveServer) -> None:
    two_way = await TwoWayStreaming.connect(context, live_server)
    await two_way.play("no-such-stream")
    await two_way.expect_play_failed("Other: Stream not found")  # the page's wording for unknown infos

    player = await Player.load(context, live_server, "no-such-stream")
    await player.play()
    await player.expect_failed("Stream not found")

    embed = await EmbedPlayer.load(context, live_server, "no-such-stream")
    await embed.play()
    await embed.expect_failed("Stream not found")


async def test_second_publisher_with_taken_name_fails(
    context: BrowserContext, live_server: LiveServer
) -> None:
    first = await publishing(context, live_server)
    player = await Player.load(context, live_server, first.name)
    await player.play()
    await player.expect_playing()

    second = await TwoWayStreaming.connect(context, live_server)
    await second.publish(first.name)
    await second.expect_publish_failed(NAME_IN_USE)

    await first.expect_publishing()
    await player.expect_playing()  # frames keep coming
    late = await EmbedPlayer.load(context, live_server, first.name)
    await late.play()
    await late.expect_playing()
