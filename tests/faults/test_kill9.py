"""kill -9 mid-stream, with real ``rtcdn serve`` processes on their own loopback addresses and aiortc
players in this process: who is told what, how fast; who is not disturbed; how fast the CDN heals.

CDN: origin O (127.0.0.131) pushing to edges E1 (.132) and E2 (.133; its received datagrams go
through ``RTCDN_FAULTS``, so the O → E2 hop is repaired by NACKs in a real process). Relay: A (.134)
publishes, B (.135) pulls from A over ``/rest-api/pull/pull``. Hung origin: O' (.136) SIGSTOPped while
it pushes to E' (.137).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from faultkit import RtcdnProcess, Watcher, loadbalancing_xml, post_json, until

from wcs_client import WcsClient

ORIGIN, E1, E2 = "127.0.0.131", "127.0.0.132", "127.0.0.133"
A, B = "127.0.0.134", "127.0.0.135"
E2_FAULTS = "loss=0.03,delay=20ms,jitter=5ms,seed=11"
STATUS_WITHIN = 5.0
"Seconds a player may wait to be told its stream ended."
HEAL_WITHIN = 10.0
UNDISTURBED_GAP = 0.5
"Longest silence a player elsewhere may see around a kill (audio alone comes every 20 ms)."
NACK_METRIC = "rtcdn_nack_resent_packets_total"


@contextlib.asynccontextmanager
async def processes(*procs: RtcdnProcess) -> AsyncIterator[None]:
    try:
        for proc in procs:
            await proc.start()
        yield
    finally:
        codes = {proc.host: await proc.stop() for proc in procs}
        for proc in procs:
            problems = proc.problems()
            if problems:
                print(f"{proc.host} logged:\n" + "\n".join(problems[:10]))
        assert all(code in (0, None) for code in codes.values()), codes
        assert not [p for proc in procs for p in proc.problems() if "Traceback" in p]


async def edge_status(origin: RtcdnProcess, name: str) -> dict[str, str]:
    async with aiohttp.ClientSession() as http, http.get(f"{origin.http_url}/rest-api/cdn/streams") as resp:
        routes = await resp.json()
    for route in routes:
        if route["name"] == name:
            return {e["ip"]: e["status"] for e in route["edges"]}
    return {}


async def balancer_picks(origin: RtcdnProcess, n: int = 4) -> set[str]:
    out = set()
    async with aiohttp.ClientSession() as http:
        for _ in range(n):
            async with http.get(f"{origin.http_url}/balancer") as resp:
                out.add((await resp.json())["server"])
    return out


def quiet(watchers: list[Watcher], since: float, until_: float) -> dict[str, float]:
    return {w.url: round(w.arrivals.max_gap(since, until_), 3) for w in watchers if w.arrivals is not None}


async def test_cdn_edge_and_origin_killed_and_restarted(tmp_path: Path) -> None:
    xml = loadbalancing_xml([(E1, 8080, 8081), (E2, 8080, 8081)])
    origin = RtcdnProcess(ORIGIN, tmp_path / "o", loadbalancing=xml)
    e1, e2 = (
        RtcdnProcess(E1, tmp_path / "e1"),
        RtcdnProcess(E2, tmp_path / "e2", env={"RTCDN_FAULTS": E2_FAULTS}),
    )
    figures: dict[str, object] = {}
    watchers: list[Watcher] = []
    pub = WcsClient(origin.ws_url)
    async with processes(e1, e2, origin):
        try:
            await pub.connect()
            await pub.publish("live")
            figures["pushed to both edges (s)"] = round(
                await until(lambda: pushed(origin, "live", E1, E2)), 2
            )
            p0, p1, p2 = [await Watcher(u, "live").start() for u in (origin.ws_url, e1.ws_url, e2.ws_url)]
            watchers += [p0, p1, p2]
            await asyncio.sleep(3)
            assert "fault injection" in e2.log.read_text()
            figures["NACK resends O→edges, E2→its player"] = (
                await origin.metric(NACK_METRIC),
                await e2.metric(NACK_METRIC),
            )
            assert await origin.metric(NACK_METRIC) > 0  # E2's RTCDN_FAULTS losses were repaired

            # 1. an edge dies: its player's socket closes; the others do not notice
            killed = await e2.kill9()
            await p2.client.closed.wait()
            figures["E2 killed: its player's socket closed after (s)"] = round(time.monotonic() - killed, 3)
            await until(lambda: picks_only(origin, E1), timeout=10)
            figures["E2 killed: balancer stops picking it after (s)"] = round(time.monotonic() - killed, 2)
            await asyncio.sleep(max(0.0, killed + 3 - time.monotonic()))
            gaps = quiet([p0, p1], killed - 1, killed + 3)
            figures["E2 killed: longest silence at the O and E1 players (s)"] = gaps
            assert max(gaps.values()) < UNDISTURBED_GAP, gaps

            # 2. it comes back: the origin pushes the stream to it again
            await e2.start()
            back = time.monotonic()
            await until(lambda: pushed(origin, "live", E2), timeout=HEAL_WITHIN)
            p2 = await Watcher(e2.ws_url, "live").start()
            watchers.append(p2)
            await until(p2.flowing, timeout=HEAL_WITHIN)
            figures["E2 restarted: a new player there gets media after (s)"] = round(
                time.monotonic() - back, 2
            )
            assert time.monotonic() - back <= HEAL_WITHIN
            await until(lambda: picks_both(origin), timeout=HEAL_WITHIN)

            # 3. the origin dies: players on both edges are told, at once
            waiting = [asyncio.ensure_future(p.terminal_status()) for p in (p1, p2)]
            killed = await origin.kill9()
            told = [await w for w in waiting]
            figures["O killed: edge players told (status, info, s)"] = [
                (s["status"], s["info"], round(t - killed, 3))
                if s
                else ("socket closed", "", round(t - killed, 3))
                for s, t in told
            ]
            for status, when in told:
                assert status is not None and status["status"] in ("STOPPED", "FAILED") and status["info"], (
                    status
                )
                assert when - killed < STATUS_WITHIN
            await p0.client.closed.wait()
            await pub.agent.closed.wait()
            await until(lambda: nowhere("live", e1, e2), timeout=STATUS_WITHIN)  # the edges let go too

            # 4. the origin comes back; the publisher publishes again: the edges have it at once
            await origin.start()
            await pub.close()
            pub = WcsClient(origin.ws_url)
            await pub.connect()
            published = time.monotonic()
            await pub.publish("live")
            await until(lambda: pushed(origin, "live", E1, E2), timeout=HEAL_WITHIN)
            for proc in (e1, e2):
                w = await Watcher(proc.ws_url, "live").start()
                watchers.append(w)
                await until(w.flowing, timeout=HEAL_WITHIN)
            figures["O restarted, republished: players on both edges get media after (s)"] = round(
                time.monotonic() - published, 2
            )
            assert time.monotonic() - published <= HEAL_WITHIN
        finally:
            print("\n" + "\n".join(f"{k}: {v}" for k, v in figures.items()))
            for w in watchers:
                await w.close()
            await pub.close()


async def relay_record(proc: RtcdnProcess) -> dict[str, Any] | None:
    async with aiohttp.ClientSession() as http, http.post(f"{proc.http_url}/rest-api/pull/find_all") as resp:
        records = await resp.json(content_type=None)
    return records[-1] if resp.status == 200 and records else None


async def relay_status(proc: RtcdnProcess, *wanted: str) -> bool:
    record = await relay_record(proc)
    return record is not None and record["status"] in wanted


async def players_of(proc: RtcdnProcess, name: str) -> int:
    return sum(1 for r in await proc.streams() if r.get("name") == name and not r.get("published"))


async def test_relay_peers_killed(tmp_path: Path) -> None:
    """B pulls A's stream. A dies: B's relay fails and B's player is told. A returns and B pulls
    again; then B dies: A's own player is undisturbed and A drops the dead relay's play session."""
    a, b = RtcdnProcess(A, tmp_path / "a"), RtcdnProcess(B, tmp_path / "b")
    figures: dict[str, object] = {}
    watchers: list[Watcher] = []
    pub = WcsClient(a.ws_url)
    pull = {"uri": a.ws_url, "remoteStreamName": "src", "localStreamName": "copy"}
    async with processes(a, b):
        try:
            await pub.connect()
            await pub.publish("src")
            code, _ = await post_json(f"{b.http_url}/rest-api/pull/pull", pull)
            assert code == 200
            await until(lambda: relay_status(b, "PLAYING"), timeout=10)
            pb = await Watcher(b.ws_url, "copy").start()
            watchers.append(pb)
            await until(pb.flowing, timeout=5)

            # 1. the relay's source dies
            waiting = asyncio.ensure_future(pb.terminal_status())
            killed = await a.kill9()
            status, when = await waiting
            figures["A killed: B's player told (status, info, s)"] = (
                status and status["status"],
                status and status["info"],
                round(when - killed, 3),
            )
            assert status is not None and status["status"] in ("STOPPED", "FAILED") and status["info"]
            assert when - killed < STATUS_WITHIN
            await until(lambda: relay_status(b, "FAILED", "STOPPED"), timeout=STATUS_WITHIN)
            record = await relay_record(b)
            assert record is not None
            figures["A killed: B's relay record (status, info, s)"] = (
                record["status"],
                record["info"],
                round(time.monotonic() - killed, 3),
            )
            await pub.agent.closed.wait()

            # 2. A is back; B pulls again; then B dies
            await a.start()
            await pub.close()
            pub = WcsClient(a.ws_url)
            await pub.connect()
            await pub.publish("src")
            pa = await Watcher(a.ws_url, "src").start()
            watchers.append(pa)
            code, _ = await post_json(f"{b.http_url}/rest-api/pull/pull", pull)
            assert code == 200
            await until(lambda: relay_status(b, "PLAYING"), timeout=10)
            assert await players_of(a, "src") == 2  # A's own player and B's relay
            await asyncio.sleep(1)
            killed = await b.kill9()
            await until(lambda: players_are(a, "src", 1), timeout=STATUS_WITHIN)
            figures["B killed: A drops the relay's play session after (s)"] = round(
                time.monotonic() - killed, 3
            )
            await asyncio.sleep(max(0.0, killed + 2 - time.monotonic()))
            gap = pa.arrivals.max_gap(killed - 1, killed + 2) if pa.arrivals else float("inf")
            figures["B killed: longest silence at A's player (s)"] = round(gap, 3)
            assert gap < UNDISTURBED_GAP
        finally:
            print("\n" + "\n".join(f"{k}: {v}" for k, v in figures.items()))
            for w in watchers:
                await w.close()
            await pub.close()


async def players_are(proc: RtcdnProcess, name: str, n: int) -> bool:
    return await players_of(proc, name) == n


async def pushed(origin: RtcdnProcess, name: str, *hosts: str) -> bool:
    statuses = await edge_status(origin, name)
    return all(statuses.get(h) == "PUBLISHING" for h in hosts)


async def picks_only(origin: RtcdnProcess, host: str) -> bool:
    return await balancer_picks(origin) == {host}


async def picks_both(origin: RtcdnProcess) -> bool:
    return await balancer_picks(origin) == {E1, E2}


async def nowhere(name: str, *procs: RtcdnProcess) -> bool:
    return not any([await proc.publishing(name) for proc in procs])


HUNG_ORIGIN, HUNG_EDGE = "127.0.0.136", "127.0.0.137"
HUNG_WITHIN = 10.0


async def test_a_hung_origin_is_noticed_by_the_edge_players(tmp_path: Path) -> None:
    """SIGSTOP (not kill): the origin's TCP and UDP sockets stay open, nothing comes from them."""
    xml = loadbalancing_xml([(HUNG_EDGE, 8080, 8081)])
    origin = RtcdnProcess(HUNG_ORIGIN, tmp_path / "o", loadbalancing=xml)
    edge = RtcdnProcess(HUNG_EDGE, tmp_path / "e")
    pub = WcsClient(origin.ws_url)
    player: Watcher | None = None
    async with processes(edge, origin):
        try:
            await pub.connect()
            await pub.publish("live")
            await until(lambda: pushed(origin, "live", HUNG_EDGE), timeout=10)
            player = await Watcher(edge.ws_url, "live").start()
            await until(player.flowing, timeout=5)
            waiting = asyncio.ensure_future(player.terminal_status(timeout=HUNG_WITHIN))
            assert origin.proc is not None
            origin.proc.send_signal(signal.SIGSTOP)
            stopped = time.monotonic()
            try:
                status, when = await waiting
            finally:
                origin.proc.send_signal(signal.SIGCONT)
            print(f"\nO hung: the edge player got {status} after {when - stopped:.1f} s")
            assert status is not None and status["status"] in ("STOPPED", "FAILED")
        finally:
            if player is not None:
                await player.close()
            await pub.close()
