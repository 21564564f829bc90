"""Dynamic CDN (WCS CDN 2.x, ``cdn_enabled=true``) benchmark: what pull on demand costs a player, how many
upstreams an origin serves whatever the players, and what the registry work costs a node at rest.

    .venv/bin/python bench/cluster.py [--repeats 10] [--edges 1,2,4] [--players 1,5,20] [--idle-seconds 20]

Real processes: one ``rtcdn serve`` per node on a loopback address of its own (origin 127.0.0.80, edges
.81-.84, mid edge .85, leaves .86-.87), Debian's ``redis-server`` on 127.0.0.79 as the registry. The
publisher (a VP8 + Opus clip replayed in real time; a keyframe request restarts it at a keyframe) and the
lean players (bench/_wcs.py's ``EdgePlayer``) share this process, on 127.0.0.89.

1. ``latency``, per repeat: a player on an edge without the stream (cold: it looks the name up in Redis,
   pulls it from the origin, waits for it to go live), then 1 s later, while that player holds the
   pull (warm), a second one there, then one on the origin (direct): ``playStream`` sent → PLAYING, → first
   RTP packet, → first complete VP8 keyframe, and the keyframe requests the publisher got meanwhile. The
   next repeat waits for the edge's pull to close (``cdn_pull_close_after`` = ``--close-after``; that wait
   is reported). p50/p99 are nearest-rank: with 10 repeats p99 is the max.
2. ``upstreams``: for each E of ``--edges`` and P of ``--players``, P players per edge on E cold edges join
   at once: the origin's play sessions of the stream (``/rest-api/stream/find_all``, records not published:
   one per pulling edge), at the end and the most seen while they joined, and each edge's live pulls
   (``/rest-api/pull/find_all``). Then ``--mid-players`` on each of 2 leaf edges with ``cdn_upstream=mid``
   pulling through a mid edge: the origin should see 1 upstream, the mid 2.
3. ``idle``: nodes without streams side by side over one ``--idle-seconds`` window: an origin and an edge
   with the default 3000 ms heartbeat (redis-server port 6379), with 300 ms (6380), and two nodes with
   ``cdn_enabled=false`` (6381: a redis nobody uses). CPU: utime + stime (psutil reads /proc/<pid>/stat),
   % of one core; redis commands/s from ``INFO stats`` (the two INFO calls included).

The machine may have few cores and other work: figures are noisy (its load over the idle window is printed).
Figures only, no pass/fail; every process started is stopped, whatever happens. Results also go to
``bench/results/cluster.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil  # type: ignore[import-untyped]
import redis

from _media import Clip, ClipTrack, encode_audio, encode_video
from _procs import ServerProcess, cpu_seconds
from _report import RESULTS, fmt, machine, percentile, render, write_results
from _wcs import EdgePlayer, Publisher, WcsError, close_all

RESULTS_FILE = RESULTS / "cluster.json"
STREAM = "cluster"
REDIS_ADDRESS = "127.0.0.79"
CLIENT_ADDRESS = "127.0.0.89"
MEDIA_PORTS = "31000-31999"
POLL = RETRY = 0.05
"Seconds between two polls of the nodes' REST API; between playStream retries on Stream not found."
SETTLE, GAP, TIMEOUT, CONCURRENCY = 1.0, 1.0, 30.0, 20
"""Seconds after the keyframes before counting (phase 2; x3 after the idle nodes start); between a player's
keyframe and the next join (phase 1); a player may take to its keyframe; players joining at once."""
TERMINAL = ("UNPUBLISHED", "STOPPED", "FAILED")
"Statuses of a finished relay (``/pull/find_all`` keeps them for a while)."
FAILURES = (WcsError, RuntimeError, TimeoutError, aiohttp.ClientError, redis.RedisError, OSError)
PHASES = ("latency", "upstreams", "idle")
IDLE = (("heartbeat 3000 ms", 3000), ("heartbeat 300 ms", 300), ("cdn off", 0))
Nodes = list[ServerProcess]


# --- processes -------------------------------------------------------------------------------------


def redis_commands(port: int) -> int:
    """Commands the redis-server on ``port`` processed so far (``INFO stats``; this INFO is one of them)."""
    with redis.Redis(host=REDIS_ADDRESS, port=port, socket_timeout=1) as client:
        info: dict[str, Any] = client.info("stats")
    return int(info["total_commands_processed"])


class Processes:
    """The servers of a phase, each registered before it starts; :meth:`stop` ends every one."""

    def __init__(self, folder: Path, args: argparse.Namespace) -> None:
        self.folder, self.args = folder, args
        self.nodes: list[ServerProcess] = []
        self.redis: list[subprocess.Popen[bytes]] = []

    def redis_server(self, port: int) -> tuple[str, psutil.Process]:
        """``redis-server`` (no persistence) on REDIS_ADDRESS:``port`` as tests/redis_server.py runs it: its URL."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (Debian: apt-get install redis-server)")
        (folder := self.folder / f"redis-{port}").mkdir(parents=True)
        command = [binary, "--bind", REDIS_ADDRESS, "--port", str(port), "--save", "", "--appendonly", "no"]
        command += ["--dir", str(folder), "--protected-mode", "no"]
        self.redis.append(
            process := subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                redis_commands(port)
                return f"redis://{REDIS_ADDRESS}:{port}/0", psutil.Process(process.pid)
            except (redis.RedisError, OSError):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start on {REDIS_ADDRESS}:{port}") from None
                time.sleep(0.05)

    def node(self, name: str, index: int, properties: dict[str, str]) -> ServerProcess:
        address, folder = f"127.0.0.{80 + index}", self.folder / name
        self.nodes.append(server := ServerProcess(name, address, folder, MEDIA_PORTS, properties=properties))
        server.start()
        return server

    def stop(self, report: dict[str, Any]) -> None:
        """Every node (last started first, SIGTERM), then every redis-server; how it went into ``report``."""
        try:
            for server in reversed(self.nodes):
                server.stop()
        finally:
            for r in self.redis:
                r.terminate()
            for r in self.redis:
                try:
                    r.wait(5)
                except subprocess.TimeoutExpired:
                    r.kill()
                    r.wait(5)
        for s in self.nodes:
            s.keep_log(self.args.logs)
            report[s.name] = {"exit_code": s.exit_code, "shutdown_s": s.shutdown_seconds}
            report[s.name]["log_problems"] = s.problems()[:10]


def cdn(role: str, node_id: str, registry: str, args: argparse.Namespace, **extra: str) -> dict[str, str]:
    """flashphoner.properties of a dynamic CDN node."""
    keys = {"node_id": node_id, "cdn_enabled": "true", "cdn_role": role, "cdn_registry_url": registry}
    return {**keys, "cdn_pull_close_after": str(args.close_after), **extra}


# --- what the nodes say, what the players saw ----------------------------------------------------------


async def rest(http: aiohttp.ClientSession, server: ServerProcess, method: str) -> list[dict[str, Any]]:
    """``POST /rest-api/METHOD`` with ``{}``; [] for a 404 (find_all: nothing to list)."""
    async with http.post(f"{server.rest_url}/{method}", json={}) as response:
        if response.status == 404:
            return []
        response.raise_for_status()
        body = await response.json()
    return body if isinstance(body, list) else []


async def upstreams(http: aiohttp.ClientSession, server: ServerProcess) -> int:
    """Play sessions of STREAM on ``server``: one per node pulling it from there (and per player there)."""
    records = await rest(http, server, "stream/find_all")
    return sum(1 for r in records if r.get("name") == STREAM and not r.get("published"))


async def pulls(http: aiohttp.ClientSession, server: ServerProcess) -> list[str]:
    """The URIs ``server``'s live pulls of STREAM come from."""
    records = await rest(http, server, "pull/find_all")
    live = [r for r in records if r.get("direction") == "pull" and r.get("status") not in TERMINAL]
    return [str(r["uri"]) for r in live if r.get("remoteStreamName") == STREAM]


async def wait_cold(
    http: aiohttp.ClientSession, source: ServerProcess, nodes: Nodes, timeout: float = 20
) -> float:
    """Seconds until none of ``nodes`` pulls STREAM and ``source`` has no session playing it."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if not any([await pulls(http, n) for n in nodes]) and not await upstreams(http, source):
            return time.monotonic() - started
        await asyncio.sleep(POLL)
    raise RuntimeError(f"{STREAM!r} was still pulled {timeout:.0f} s after its last player left")


async def join(players: list[EdgePlayer]) -> list[str]:
    """Play STREAM on every player (CONCURRENCY at a time), each until its first keyframe; the errors."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(player: EdgePlayer) -> None:
        async with gate:
            await player.play_when_there(STREAM, RETRY, TIMEOUT)
            await asyncio.wait_for(player.keyframe.wait(), TIMEOUT)

    results = await asyncio.gather(*(one(p) for p in players), return_exceptions=True)
    return [f"{type(r).__name__}: {r}" for r in results if isinstance(r, BaseException)]


def timings(p: EdgePlayer) -> dict[str, float | None]:
    """ms from the first ``playStream`` sent to PLAYING, the first RTP packet, the first complete keyframe."""
    marks = {"playing": p.playing_at, "first_packet": p.first_packet_at, "keyframe": p.keyframe_at}
    t0 = p.first_sent_at
    return {k: None if t is None or t0 is None else (t - t0) * 1000 for k, t in marks.items()}


def spread(values: list[float | None]) -> dict[str, float | None]:
    v = [x for x in values if x is not None]
    return {"n": len(v), "p50": percentile(v, 50), "p99": percentile(v, 99), "max": max(v, default=None)}


@dataclass
class Net:
    """The servers of phases 1 and 2, and the publisher's video track."""

    origin: ServerProcess
    edges: list[ServerProcess]
    video: ClipTrack
    mid: ServerProcess | None = None
    leaves: list[ServerProcess] = field(default_factory=list)


# --- 1. cold edge against warm edge -------------------------------------------------------------------


async def latency(http: aiohttp.ClientSession, args: argparse.Namespace, net: Net) -> dict[str, Any]:
    """Per repeat: a player on the cold edge, one more on the (now warm) edge, one on the origin."""
    origin, edge = net.origin, net.edges[0]
    samples: dict[str, list[dict[str, float | None]]] = {"cold": [], "warm": [], "origin": []}
    closes: list[float | None] = []
    errors: list[str] = []
    for repeat in range(1, args.repeats + 1):
        await wait_cold(http, origin, [edge])
        players: list[EdgePlayer] = []
        try:
            for kind, server in (("cold", edge), ("warm", edge), ("origin", origin)):
                players.append(player := EdgePlayer(http, server.ws_url, CLIENT_ADDRESS))
                before = net.video.keyframe_requests
                if failed := await join([player]):
                    errors += [f"repeat {repeat}, {kind}: {e}" for e in failed]
                    break
                plis = float(net.video.keyframe_requests - before)
                samples[kind].append({**timings(player), "publisher_plis": plis})
                await asyncio.sleep(GAP)
        finally:
            await close_all(list(players))
        closes.append(await wait_cold(http, origin, [edge]))
        got = ", ".join(f"{k} {fmt(v[-1]['keyframe'])}" for k, v in samples.items() if len(v) == repeat)
        print(f"  repeat {repeat}: first keyframe ms: {got}; pull closed {fmt(closes[-1], '.2f')} s after")
    marks = ("playing", "first_packet", "keyframe", "publisher_plis")
    figures = {kind: {m: spread([s[m] for s in rows]) for m in marks} for kind, rows in samples.items()}
    ratio: dict[str, float | None] = {}
    for q in ("p50", "p99"):
        cold, warm = figures["cold"]["keyframe"][q], figures["warm"]["keyframe"][q]
        ratio[q] = cold / warm if cold is not None and warm else None
    out = {"figures": figures, "cold_over_warm_keyframe": ratio, "pull_closed_s": spread(closes)}
    return {**out, "samples": samples, "errors": errors}


# --- 2. upstreams on the origin -----------------------------------------------------------------------


async def fan_in(http: aiohttp.ClientSession, edges: Nodes, per_edge: int, sources: Nodes) -> dict[str, Any]:
    """``per_edge`` players on each of ``edges`` join from cold; the play sessions of the stream on each
    of ``sources`` (the origin first, then any node between it and the edges) and the edges' pulls."""
    await wait_cold(http, sources[0], [*edges, *sources[1:]])
    players = [EdgePlayer(http, e.ws_url, CLIENT_ADDRESS) for e in edges for _ in range(per_edge)]
    most = dict.fromkeys((s.name for s in sources), 0)

    async def watch() -> None:
        while True:
            for s in sources:
                most[s.name] = max(most[s.name], await upstreams(http, s))
            await asyncio.sleep(POLL)

    watcher = asyncio.create_task(watch())
    try:
        errors = await join(players)
        await asyncio.sleep(SETTLE)
        end = {s.name: await upstreams(http, s) for s in sources}
        edge_pulls = {e.name: await pulls(http, e) for e in edges}
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        await close_all(list(players))
    ok = sum(p.keyframe.is_set() for p in players)
    seen = ", ".join(f"{k} {end[k]} (max {most[k]})" for k in end)
    print(f"  {len(edges)} edge(s) x {per_edge}: upstreams {seen}; {ok}/{len(players)} with a keyframe")
    return {
        **{"edges": len(edges), "players_per_edge": per_edge, "players_ok": ok, "players": len(players)},
        **{"upstreams_end": end, "upstreams_max_seen": most, "pulls": edge_pulls, "errors": errors[:5]},
        "keyframe_ms": spread([timings(p)["keyframe"] for p in players]),
        "not_found": sum(p.not_found for p in players),
    }


async def network(args: argparse.Namespace, report: dict[str, Any], net: Net, audio: Clip) -> None:
    connector = aiohttp.TCPConnector(local_addr=(CLIENT_ADDRESS, 0), limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        publisher = Publisher(http, net.origin.ws_url, CLIENT_ADDRESS)
        try:
            await publisher.publish(STREAM, [net.video, ClipTrack("audio", audio)])
            if "latency" in args.phases:
                print(f"\n1. latency: {args.repeats} repeats on {net.edges[0].address}", flush=True)
                report["latency"] = await latency(http, args, net)
            if net.mid is None:
                return
            print("\n2. upstreams", flush=True)
            for n in args.edges:
                for per in args.players:
                    report["upstreams"].append(await fan_in(http, net.edges[:n], per, [net.origin]))
            deadline = time.monotonic() + 15  # the leaves find the mid in the node list, read every heartbeat
            while not all(
                [any(n["id"] == "mid" for n in await rest(http, x, "cdn/nodes")) for x in net.leaves]
            ):
                if time.monotonic() > deadline:
                    raise RuntimeError("the leaves never listed the mid edge in /cdn/nodes")
                await asyncio.sleep(0.2)
            report["mid_tier"] = await fan_in(http, net.leaves, args.mid_players, [net.origin, net.mid])
        finally:
            await publisher.close()


# --- 3. at rest ----------------------------------------------------------------------------------------


def idle(args: argparse.Namespace, folder: Path, servers: dict[str, Any]) -> dict[str, Any]:
    """Every configuration at once (an origin, an edge and a redis-server each), over one window."""
    procs = Processes(folder, args)
    try:
        groups: dict[str, tuple[int, psutil.Process, ServerProcess, ServerProcess]] = {}
        for i, (label, beat) in enumerate(IDLE):
            url, r = procs.redis_server(6379 + i)
            nodes = []
            for j, role in enumerate(("origin", "edge")):
                name = f"idle-{role}-{beat or 'off'}"
                on = cdn(role, name, url, args, cdn_heartbeat_interval=str(beat))
                nodes.append(procs.node(name, 2 * i + j, on if beat else {"cdn_enabled": "false"}))
            groups[label] = (6379 + i, r, nodes[0], nodes[1])

        def snapshot() -> dict[str, list[float]]:
            return {
                k: [o.cpu_seconds(), e.cpu_seconds(), cpu_seconds(r), float(redis_commands(port))]
                for k, (port, r, o, e) in groups.items()
            }

        time.sleep(SETTLE * 3)
        psutil.cpu_percent()
        before, started = snapshot(), time.monotonic()
        time.sleep(args.idle_seconds)
        after, elapsed = snapshot(), time.monotonic() - started
        machine = psutil.cpu_percent()
        rows = {}
        for label in groups:
            d = [(a - b) / elapsed for a, b in zip(after[label], before[label], strict=True)]
            cpu = {"origin_cpu": 100 * d[0], "edge_cpu": 100 * d[1], "redis_cpu": 100 * d[2]}
            rows[label] = {**cpu, "redis_commands_per_s": d[3]}
        return {"window_s": elapsed, "machine_cpu_percent": machine, "rows": rows}
    finally:
        procs.stop(servers)


# --- report --------------------------------------------------------------------------------------------


def _pq(s: dict[str, float | None], spec: str = ".0f") -> str:
    return f"{fmt(s['p50'], spec)} / {fmt(s['p99'], spec)}"


def print_tables(report: dict[str, Any]) -> None:
    if lat := report.get("latency"):
        after = report["config"]["close_after"]
        print(f"\n1. playStream sent -> ..., ms, p50 / p99 over the repeats (cdn_pull_close_after {after})")
        rows = [["player", "n", "PLAYING", "first packet", "first keyframe", "PLIs at publisher"]]
        for kind, f in lat["figures"].items():
            marks = [_pq(f[m]) for m in ("playing", "first_packet", "keyframe", "publisher_plis")]
            rows.append(
                [f"{kind} {'(direct)' if kind == 'origin' else 'edge'}", str(f["keyframe"]["n"]), *marks]
            )
        print(render(rows))
        r, c = lat["cold_over_warm_keyframe"], lat["pull_closed_s"]
        print(
            f"cold / warm, first keyframe: p50 {fmt(r['p50'], '.2f')}x, p99 {fmt(r['p99'], '.2f')}x; last player "
            f"left -> pull closed on the edge: p50 {fmt(c['p50'], '.2f')} s, max {fmt(c['max'], '.2f')} s"
        )
    if runs := report["upstreams"] + ([report["mid_tier"]] if report.get("mid_tier") else []):
        print("\n2. play sessions of the stream on the origin (expected: one per pulling edge), on the mid")
        rows = ["edges|players/edge|ok|origin end/max|mid end/max|pulls/edge|keyframe p50/max ms".split("|")]
        for run in runs:
            end, most, k = run["upstreams_end"], run["upstreams_max_seen"], run["keyframe_ms"]
            mid = f"{end['mid']} / {most['mid']}" if "mid" in end else "-"
            label, per_edge = (
                f"{run['edges']}{' leaves' if 'mid' in end else ''}",
                str(run["players_per_edge"]),
            )
            counts = [f"{run['players_ok']}/{run['players']}", f"{end['origin']} / {most['origin']}", mid]
            pulled = ",".join(str(len(v)) for v in run["pulls"].values())
            rows.append([label, per_edge, *counts, pulled, f"{fmt(k['p50'])} / {fmt(k['max'])}"])
        print(render(rows))
    if rest_ := report.get("idle"):
        print(
            f"\n3. at rest, no streams: CPU % of one core over {rest_['window_s']:.1f} s (the machine was "
            f"{rest_['machine_cpu_percent']:.0f} % busy over all its cores meanwhile)"
        )
        rows = [["nodes", "origin", "edge", "redis-server", "redis cmds/s"]]
        for label, row in rest_["rows"].items():
            cpu = [fmt(row[k], ".2f") for k in ("origin_cpu", "edge_cpu", "redis_cpu")]
            rows.append([label, *cpu, fmt(row["redis_commands_per_s"], ".1f")])
        print(render(rows))
    for name, s in report["servers"].items():
        if s["exit_code"] != 0 or s["log_problems"]:
            print(f"  {name}: exit code {s['exit_code']}; {s['log_problems'][:2]}")
    for error in report["errors"]:
        print(f"  ! {error}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    add = parser.add_argument
    add("--phases", default=",".join(PHASES), help="comma-separated, of latency,upstreams,idle (default all)")
    add("--repeats", type=int, default=10, help="cold/warm repeats (default 10)")
    add("--close-after", type=int, default=1000, help="cdn_pull_close_after, ms (default 1000)")
    add("--edges", default="1,2,4", help="edge counts, at most 4 (default 1,2,4)")
    add("--players", default="1,5,20", help="players per edge (default 1,5,20)")
    add("--mid-players", type=int, default=5, help="players per leaf edge of the mid tier (default 5)")
    add("--idle-seconds", type=float, default=20, help="CPU window at rest (default 20)")
    add("--output", type=Path, default=RESULTS_FILE, help="JSON results (default bench/results/cluster.json)")
    add("--logs", type=Path, help="keep every server log in this folder")
    args = parser.parse_args(argv)
    args.phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    args.edges = [int(x) for x in args.edges.split(",") if x.strip()]
    args.players = [int(x) for x in args.players.split(",") if x.strip()]
    if not args.phases or any(p not in PHASES for p in args.phases):
        parser.error(f"--phases: comma-separated, of {', '.join(PHASES)}")
    if not args.edges or not all(1 <= n <= 4 for n in args.edges) or not all(p >= 1 for p in args.players):
        parser.error("--edges: 1 to 4 each (addresses .81-.84); --players: >= 1 each")
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")

    video, audio = encode_video(640, 360, 30, 10, 500_000, gop_seconds=2), encode_audio(10)
    cores = psutil.cpu_count()
    print(
        f"clip: VP8 640x360@30 {video.bitrate / 1e3:.0f} kbps, keyframe every 2 s, + Opus; machine: "
        f"{cores} cores (other work may be running: figures are noisy)",
        flush=True,
    )
    report: dict[str, Any] = {
        "benchmark": "cluster",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(),
        "config": {k: v for k, v in vars(args).items() if k not in ("output", "logs")},
        **{"upstreams": [], "servers": {}, "errors": []},
    }
    with tempfile.TemporaryDirectory(prefix="rtcdn-cluster-") as tmp:
        if "latency" in args.phases or "upstreams" in args.phases:
            procs = Processes(Path(tmp) / "net", args)
            try:
                url = procs.redis_server(6379)[0]
                origin = procs.node("origin", 0, cdn("origin", "origin", url, args))
                count = max(args.edges) if "upstreams" in args.phases else 1
                edges = [
                    procs.node(f"edge{i}", i, cdn("edge", f"edge{i}", url, args)) for i in range(1, count + 1)
                ]
                net = Net(origin, edges, ClipTrack("video", video))
                if "upstreams" in args.phases:  # the mid first: the leaves read the node list as they start
                    net.mid = procs.node("mid", 5, cdn("edge", "mid", url, args))
                    for i in (1, 2):
                        leaf = cdn("edge", f"leaf{i}", url, args, cdn_upstream="mid")
                        net.leaves.append(procs.node(f"leaf{i}", 5 + i, leaf))
                asyncio.run(network(args, report, net, audio))
            except FAILURES as exc:
                report["errors"].append(f"{type(exc).__name__}: {exc}")
            finally:
                procs.stop(report["servers"])
        if "idle" in args.phases:
            print(f"\n3. at rest: {args.idle_seconds:g} s window", flush=True)
            try:
                report["idle"] = idle(args, Path(tmp) / "idle", report["servers"])
            except FAILURES as exc:
                report["errors"].append(f"idle: {type(exc).__name__}: {exc}")
    print_tables(report)
    write_results(args.output, report)
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
