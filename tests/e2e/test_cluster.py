"""Dynamic CDN (issue 12, WCS CDN 2.x) end to end: a real ``redis-server`` registry (127.0.0.139)
and real ``rtcdn serve`` nodes on 127.0.0.140-147, each joining by its own flashphoner.properties
(``cdn_enabled``, ``cdn_role``, ``cdn_registry_url``, ``node_id``; heartbeat 0.5 s, TTL 2.5 s,
pull grace 2 s). Chromium publishes on origin A with the Two Way Streaming page (stream S1) for
the whole module.

* an edge started after the publish plays S1 on its own Player page (one pull from origin A);
* 20 aiortc players arriving at once on a cold edge: all PLAYING, exactly one pull; the last one
  leaving closes it after the grace (~2 s, not before ~1 s);
* ``/balancer``: an edge started at run time is picked; ``?streamName=`` prefers the edges
  carrying the stream;
* an edge ``kill -9``: not ACTIVE in ``/cdn/nodes`` within TTL + a heartbeat, never picked again;
* origin B publishing S1 too: FAILED "Stream name is already in use";
* origin B ``kill -9``: its edges' players end with "Agent servicing origin stream is shutting
  down"; restarted and published again, new players on the edges play;
* Redis killed: the edge player keeps decoding; Redis back (empty): every node and S1's claim
  are back within a few heartbeats, and a cold edge plays S1.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext

from wcs_client import WcsClient, count_frames

from .cluster_nodes import (
    CLOSE_AFTER_S,
    HEARTBEAT_S,
    TTL_S,
    Cluster,
    Spec,
    balancer,
    metric,
    node_states,
    ok,
    picks,
    pulls,
    until,
)
from .pages import RECORD_PEER_CONNECTIONS, TIMEOUT_MS, LiveServer, Player, TwoWayStreaming

pytestmark = pytest.mark.asyncio(loop_scope="session")

ORIGIN_A = Spec("origin-a", "127.0.0.140", "origin")
ORIGIN_B = Spec("origin-b", "127.0.0.141", "origin")
BURST = Spec("edge-burst", "127.0.0.142", "edge")
"Cold for S1 until the 20 players arrive."
LOSS = Spec("edge-loss", "127.0.0.143", "edge")
"Plays origin B's stream when origin B is killed."
LATE = Spec("edge-late", "127.0.0.144", "edge")
"Started after S1 was published."
JOIN = Spec("edge-join", "127.0.0.145", "edge")
"Started while the balancer is being asked."
VICTIM = Spec("edge-victim", "127.0.0.146", "edge")
"Killed with SIGKILL."
COLD = Spec("edge-cold", "127.0.0.147", "edge")
"Cold for S1 until Redis comes back."
NODE_IDS = [s.id for s in (ORIGIN_A, ORIGIN_B, BURST, LOSS, LATE, JOIN, VICTIM, COLD)]

ORIGIN_LOST = "Agent servicing origin stream is shutting down"
PAGE_NAME_IN_USE = "Server already has a publish stream with the same name, try using different one"
SLACK_S = 0.6
"Tolerance on timings measured from the test process (HTTP polling on a loaded machine)."


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with Cluster.run(
        tmp_path_factory.mktemp("cluster"), (ORIGIN_A, ORIGIN_B, BURST, LOSS, VICTIM, COLD)
    ) as c:
        yield c


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def s1(browser: Browser, cluster: Cluster) -> AsyncIterator[TwoWayStreaming]:
    """Chromium publishing on origin A's Two Way Streaming page, for the whole module."""
    context = await browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    await context.add_init_script(RECORD_PEER_CONNECTIONS)
    errors: list[str] = []
    context.on("page", lambda page: page.on("pageerror", lambda exc: errors.append(f"{page.url}: {exc}")))
    page = await TwoWayStreaming.connect(context, cluster.server(ORIGIN_A))
    await page.publish()
    await page.expect_publishing()
    yield page
    await context.close()
    assert not errors, errors


async def play(client: WcsClient, name: str) -> str:
    """Play ``name``: PLAYING, and video frames arriving; returns the mediaSessionId."""
    msid, pc, status = await client.play(name)
    assert status is not None and status["status"] == "PLAYING", status
    video = next(r.track for r in pc.getReceivers() if r.track.kind == "video")
    frames = await count_frames(video, 1.5)
    assert frames >= 5, f"{frames} video frames in 1.5 s from {client.url}"
    return msid


async def claims(server: LiveServer) -> dict[str, str]:
    """``/rest-api/cdn/streams`` of ``server``: stream name -> the node holding the claim."""
    return {c["name"]: c["node"] for c in await ok(server, "cdn/streams")}


async def carriers(server: LiveServer, name: str) -> list[str]:
    """The nodes that carry ``name``, as ``/rest-api/cdn/show_routes`` of ``server`` says: its keys
    are ``<n>-<upstream>-<node id>``."""
    shown: dict[str, str] = await ok(server, "cdn/show_routes")
    return sorted(n for key, v in shown.items() if v == name for n in NODE_IDS if key.endswith(f"-{n}"))


async def test_edge_started_after_the_publish_plays_it_on_the_player_page(
    context: BrowserContext, cluster: Cluster, s1: TwoWayStreaming
) -> None:
    origin = cluster.server(ORIGIN_A)
    assert (await claims(origin)).get(s1.name) == ORIGIN_A.id
    late = cluster.start(LATE)
    player = await Player.load(context, late, s1.name)
    await player.play()
    await player.expect_playing()  # PLAYING, a picture, VP8 frames decoded and rising
    [pull] = await pulls(late, s1.name)
    assert (pull["status"], pull["uri"]) == ("PLAYING", f"ws://{ORIGIN_A.host}:8080"), pull
    shown = await ok(late, "cdn/show_routes")
    assert [(k.endswith(f"-{ORIGIN_A.id}-{LATE.id}"), v) for k, v in shown.items()] == [(True, s1.name)], (
        shown
    )


async def test_twenty_players_on_a_cold_edge_share_one_pull_closed_after_the_grace(
    cluster: Cluster, s1: TwoWayStreaming
) -> None:
    edge = cluster.server(BURST)
    assert await pulls(edge, s1.name) == []  # cold
    clients = [WcsClient(edge.ws_url) for _ in range(20)]
    try:
        await asyncio.gather(*(c.connect() for c in clients))
        answers = await asyncio.gather(*(c.play(s1.name) for c in clients))
        assert [a[2] and a[2]["status"] for a in answers] == ["PLAYING"] * 20, [a[2] for a in answers]
        [pull] = await pulls(edge, s1.name)
        assert (pull["status"], pull["uri"]) == ("PLAYING", f"ws://{ORIGIN_A.host}:8080"), pull
        assert await metric(edge, "rtcdn_cdn_pulls_started_total") == 1
        video = next(r.track for r in answers[-1][1].getReceivers() if r.track.kind == "video")
        assert await count_frames(video, 1.5) >= 5
        assert (await ok(edge, "cdn/show_routes")) != {}
    finally:
        await asyncio.gather(*(c.close() for c in clients))
    left = time.monotonic()

    async def closed() -> bool:
        return [p["status"] for p in await pulls(edge, s1.name)] != ["PLAYING"]

    await until(closed, "the idle pull closes", timeout=CLOSE_AFTER_S + 8)
    grace = time.monotonic() - left
    assert CLOSE_AFTER_S - 1.0 <= grace <= CLOSE_AFTER_S + 1.0 + SLACK_S, f"closed {grace:.2f} s after"
    assert [p["status"] for p in await pulls(edge, s1.name)] == ["STOPPED"]
    assert await ok(edge, "cdn/show_routes") == {}


async def test_balancer_picks_a_new_edge_and_prefers_edges_carrying_the_stream(
    cluster: Cluster, s1: TwoWayStreaming
) -> None:
    origin = cluster.server(ORIGIN_A)
    edges = {spec.id for spec, _ in cluster.running.values() if spec.role == "edge"}
    assert set(await picks(origin, 20)) <= edges  # only live edges, never an origin
    joined = cluster.start(JOIN)

    async def picked() -> dict[str, object] | None:
        answer = await balancer(origin)
        return answer if answer["node"] == JOIN.id else None

    answer, _ = await until(picked, "the new edge is picked by /balancer", timeout=10)
    assert answer == {"server": JOIN.host, "ws": 8080, "wss": 8443, "flash": 1935, "node": JOIN.id}

    async with WcsClient(joined.ws_url) as viewer:  # the new edge carries S1, no other edge does
        await play(viewer, s1.name)

        async def only_join_carries() -> bool:
            return all([await carriers(n, s1.name) == [JOIN.id] for n in (origin, cluster.server(COLD))])

        await until(only_join_carries, "only the new edge carries S1", timeout=CLOSE_AFTER_S + 6)
        for asked in (origin, cluster.server(COLD)):
            assert set(await picks(asked, 15, s1.name)) == {JOIN.id}
        spread = set(await picks(origin, 30, "no-such-stream"))
        assert len(spread) >= 2 and spread <= edges | {JOIN.id}, spread


async def test_killed_edge_leaves_the_registry_within_its_ttl(cluster: Cluster) -> None:
    origin, other = cluster.server(ORIGIN_A), cluster.server(COLD)
    assert (await node_states(origin)).get(VICTIM.id) == "ACTIVE"

    async def victim_picked() -> bool:
        return VICTIM.id in await picks(origin, 5)

    await until(victim_picked, "the victim is picked by /balancer before the kill")
    cluster.kill(VICTIM)
    killed = time.monotonic()

    async def not_active() -> bool:
        return (await node_states(origin)).get(VICTIM.id) != "ACTIVE"

    await until(not_active, "the killed edge is no longer ACTIVE", timeout=TTL_S + 5)
    gone = time.monotonic() - killed
    assert gone <= TTL_S + HEARTBEAT_S + SLACK_S, f"still ACTIVE {gone:.2f} s after SIGKILL"

    async def absent() -> bool:
        return VICTIM.id not in await node_states(origin) and VICTIM.id not in await node_states(other)

    await until(absent, "the killed edge leaves /cdn/nodes", timeout=TTL_S + 5)
    absent_after = time.monotonic() - killed
    assert absent_after <= TTL_S + 2 * HEARTBEAT_S + SLACK_S, f"listed {absent_after:.2f} s after SIGKILL"
    for asked in (origin, other):
        assert VICTIM.id not in await picks(asked, 30)


async def test_a_second_origin_publishing_the_same_name_is_refused(
    context: BrowserContext, cluster: Cluster, s1: TwoWayStreaming
) -> None:
    origin_b = cluster.server(ORIGIN_B)
    page = await TwoWayStreaming.connect(context, origin_b)
    await page.publish(s1.name)
    await page.expect_publish_failed(PAGE_NAME_IN_USE)  # the page's text for "Stream name is already in use"
    assert (await claims(origin_b)).get(s1.name) == ORIGIN_A.id  # the first publisher keeps it
    await s1.expect_text("#publishStatus", "PUBLISHING")
    async with WcsClient(origin_b.ws_url) as client:  # the same refusal over the bare protocol
        _, _, status = await client.publish(s1.name)
        assert status is not None and (status["status"], status["info"]) == (
            "FAILED",
            "Stream name is already in use",
        ), status


async def test_origin_killed_then_restarted_and_published_again(cluster: Cluster) -> None:
    name = "cluster-origin-b"
    origin_b, edges = cluster.server(ORIGIN_B), [cluster.server(LOSS), cluster.server(BURST)]
    publisher = WcsClient(origin_b.ws_url)
    players = [WcsClient(edge.ws_url) for edge in edges]
    try:
        await publisher.connect()
        _, _, status = await publisher.publish(name)
        assert status is not None and status["status"] == "PUBLISHING", status
        for p in players:
            await p.connect()
        msids = await asyncio.gather(*(play(p, name) for p in players))
        cluster.kill(ORIGIN_B)
        ended = await asyncio.gather(
            *(p.wait_status(m, timeout=15) for p, m in zip(players, msids, strict=True))
        )
        assert [(e["status"], e["info"]) for e in ended] == [("FAILED", ORIGIN_LOST)] * 2, ended
        for edge in edges:
            assert [p["status"] for p in await pulls(edge, name)] == ["FAILED"]
    finally:
        await asyncio.gather(publisher.close(), *(p.close() for p in players))

    origin_b = cluster.start(ORIGIN_B)  # same address, same config dir
    async with WcsClient(origin_b.ws_url) as publisher:
        _, _, status = await publisher.publish(name)
        assert status is not None and status["status"] == "PUBLISHING", status
        assert (await claims(origin_b)).get(name) == ORIGIN_B.id
        late = [WcsClient(edge.ws_url) for edge in edges]
        try:
            for p in late:
                await p.connect()
            await asyncio.gather(*(play(p, name) for p in late))
        finally:
            await asyncio.gather(*(p.close() for p in late))


async def test_redis_restart_heals_the_cluster_without_restarting_nodes(
    context: BrowserContext, cluster: Cluster, s1: TwoWayStreaming
) -> None:
    origin, warm, cold = cluster.server(ORIGIN_A), cluster.ensure(LATE), cluster.server(COLD)
    player = await Player.load(context, warm, s1.name)
    await player.play()
    await player.expect_playing()

    assert await metric(origin, "rtcdn_cdn_registry_up") == 1
    cluster.redis.kill()
    samples: list[tuple[float, int, str]] = []
    down = time.monotonic()
    while time.monotonic() - down < TTL_S + 1.5:  # longer than any record or claim lives
        stats = await player.video_stats()
        samples.append((time.monotonic(), stats.frames, await player.page.inner_text("#status")))
        await asyncio.sleep(0.25)
    assert await metric(origin, "rtcdn_cdn_registry_up") == 0  # the nodes did notice
    assert {s[2] for s in samples} == {"PLAYING"}, samples
    longest, since, last = 0.0, samples[0][0], samples[0][1]
    for at, frames, _ in samples[1:]:
        if frames > last:
            since, last = at, frames
        longest = max(longest, at - since)
    assert longest < 1.5 and samples[-1][1] > samples[0][1] + 20, samples

    cluster.redis.start()  # same port, empty
    back = time.monotonic()
    everyone = set(cluster.running)

    async def healed() -> bool:
        states = await node_states(origin)
        return {n for n, s in states.items() if s == "ACTIVE"} == everyone and await claims(origin) == {
            s1.name: ORIGIN_A.id
        }

    await until(healed, "every node and S1's claim are back in the registry", timeout=10)
    took = time.monotonic() - back
    assert took <= 4 * HEARTBEAT_S + SLACK_S, f"healed {took:.2f} s after Redis came back"
    assert await pulls(cold, s1.name) == []  # still cold
    async with WcsClient(cold.ws_url) as viewer:
        await play(viewer, s1.name)
    await player.expect_video()  # the warm edge's player never stopped
    assert (await player.page.inner_text("#status")) == "PLAYING"
    errors = cluster.errors()  # e.g. a pipeline left unclosed when Redis died under it (fixed)
    assert not errors, errors
