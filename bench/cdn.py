"""CDN benchmark: how fast a stream published on an origin becomes playable on its edges, and what each
edge costs the origin.

    .venv/bin/python bench/cdn.py [--edges 1,2,4] [--seconds 15]

For each E a fresh origin (``--origin-address``, ``load_balancing_enabled=true``, ``loadbalancing.xml``
listing E edges) and E fresh edges (the next addresses: 127.0.0.72, .73, ...; plain ``rtcdn serve`` on the
default ports) are started; the origin pushes every live stream to every edge. The fan-out benchmark's
publisher (pre-encoded VP8 720p ~1 Mbps + Opus, replayed in real time) publishes on the origin while one
lean player per edge, started at the same moment, asks its edge for the stream, sending ``playStream``
again every ``--retry`` s while the edge answers FAILED "Stream not found". Publisher, players and a poller
of the origin's ``/rest-api/cdn/streams`` share this process, one asyncio loop and one monotonic clock.

Propagation, from ``publishStream`` being sent to the origin (and from the origin's PUBLISHING):

- the origin's ``/rest-api/cdn/streams`` shows the edge's push PUBLISHING (polled every ``--poll`` s);
- the edge's player gets its first complete VP8 keyframe: the stream is playable there. Max over edges.

Cost: once every edge player has its keyframe (and ``--settle`` s more), the origin's CPU (% of one core)
and RSS over ``--seconds``, against a publisher-only origin without CDN (E=0, always run first): per edge
= (CPU(E) - CPU(0)) / E. Packets lost: sequence gaps per SSRC at the edge players (they send no NACKs), in
the window and over their whole play. Each edge's own CPU and the load generator's are printed too.

After the window the players leave, then the publisher (the time until every edge has no stream left is
noted), and every server gets SIGTERM (origin first); exit codes and shutdown times are reported.
Figures only, no pass/fail. Results also go to ``bench/results/cdn.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil  # type: ignore[import-untyped]

from _media import Clip, ClipTrack, encode_audio, encode_video
from _server import ServerProcess, cpu_seconds, write_results
from _wcs import LeanPlayer, Publisher, Signaling, WcsError, _local_offer
from rtcdn.wcs.messages import stream_payload

RESULTS = Path(__file__).resolve().parent / "results" / "cdn.json"
STREAM = "cdn"
NOT_FOUND = "Stream not found"


# --- clients ---------------------------------------------------------------------------------------


class TimedSignaling(Signaling):
    """:class:`~_wcs.Signaling` that notes when each kind of message was first sent (monotonic seconds)."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        super().__init__(http, url)
        self.sent: dict[str, float] = {}
        self.agent.on_send = self._note

    def _note(self, message: str, payload: Any) -> None:
        self.sent.setdefault(message, time.monotonic())


class EdgePlayer(LeanPlayer):
    """A :class:`~_wcs.LeanPlayer` that asks again while the edge does not have the stream yet.

    One WebSocket session and one offer: each ``playStream`` gets a new mediaSessionId (a refused one
    brings no answer, so the peer connection still waits for one). Times are monotonic seconds.
    """

    def __init__(self, http: aiohttp.ClientSession, url: str, address: str) -> None:
        super().__init__(http, url, address)
        self.not_found = 0
        "``playStream`` requests the edge answered FAILED / Stream not found."
        self.first_sent_at: float | None = None
        self.accepted_at: float | None = None
        "When the ``playStream`` that was accepted was sent."
        self.playing_at: float | None = None
        self.keyframe = asyncio.Event()
        "Set on the first complete VP8 keyframe."

    async def play_when_there(self, name: str, retry: float, timeout: float) -> None:
        """Play ``name``, asking again every ``retry`` s while it is not found, for up to ``timeout`` s."""
        await self.signaling.connect()
        for kind in ("audio", "video"):
            self.pc.addTransceiver(kind, direction="recvonly")
        sdp = await _local_offer(self.pc, self.address)
        self._hook_datagrams()
        deadline = time.monotonic() + timeout
        while True:
            self._t0 = time.monotonic()
            self.result.started = time.time()
            if self.first_sent_at is None:
                self.first_sent_at = self._t0
            payload = stream_payload(str(uuid.uuid1()), name, False, sdp)
            try:
                await self.signaling.negotiate(
                    "playStream", payload, self.pc, "PLAYING", on_answer=self._on_answer
                )
                break
            except WcsError as exc:
                if NOT_FOUND not in str(exc) or time.monotonic() + retry > deadline:
                    raise
                self.not_found += 1
                await asyncio.sleep(retry)
        self.accepted_at = self._t0
        self.playing_at = time.monotonic()
        self.result.t_playing = self.playing_at - self._t0
        self.result.ok = True

    def _on_rtp(self, rtp: bytes) -> None:
        super()._on_rtp(rtp)
        if self.result.t_keyframe is not None and not self.keyframe.is_set():
            self.keyframe.set()

    def _since_accepted(self, offset: float | None) -> float | None:
        return None if offset is None or self.accepted_at is None else self.accepted_at + offset

    @property
    def first_packet_at(self) -> float | None:
        return self._since_accepted(self.result.t_first_packet)

    @property
    def keyframe_at(self) -> float | None:
        return self._since_accepted(self.result.t_keyframe)

    def counts(self) -> tuple[int, int]:
        """(expected, received) RTP packets so far, over every SSRC."""
        return sum(s.expected for s in self.ssrcs.values()), sum(s.received for s in self.ssrcs.values())


# --- the origin's view: /rest-api/cdn/streams --------------------------------------------------------


async def _get_json(http: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    async with http.get(url) as response:
        status = response.status
        body = await response.json() if response.content_type == "application/json" else await response.text()
    return status, body


async def watch_routes(
    http: aiohttp.ClientSession, origin: ServerProcess, nodes: list[str], interval: float, timeout: float
) -> dict[str, list[tuple[float, str, str, bool]]]:
    """Poll the origin's ``/cdn/streams`` until every edge's push of the stream is PUBLISHING.

    Per node id, the changes seen: (monotonic time of the reply, status, info, edgeUp). Gives up after
    ``timeout`` s with what it saw.
    """
    seen: dict[str, list[tuple[float, str, str, bool]]] = {n: [] for n in nodes}
    url = f"{origin.rest_url}/cdn/streams"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, routes = await _get_json(http, url)
        now = time.monotonic()
        mine = next((r for r in routes if r["name"] == STREAM), None) if status == 200 else None
        for edge in mine["edges"] if mine is not None else []:
            history = seen.setdefault(str(edge["node"]), [])
            state = (str(edge["status"]), str(edge["info"]), bool(edge["edgeUp"]))
            if not history or history[-1][1:] != state:
                history.append((now, *state))
        if all(h and h[-1][1] == "PUBLISHING" for h in seen.values()):
            break
        await asyncio.sleep(interval)
    return seen


def _publishing_at(history: list[tuple[float, str, str, bool]]) -> float | None:
    return next((t for t, status, _, _ in history if status == "PUBLISHING"), None)


async def wait_edges_empty(
    http: aiohttp.ClientSession, edges: list[ServerProcess], timeout: float
) -> float | None:
    """Seconds until no edge lists a stream (``/stream/find_all`` 404 everywhere); None on timeout."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        codes = [(await _get_json(http, f"{e.rest_url}/stream/find_all"))[0] for e in edges]
        if all(code == 404 for code in codes):
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    return None


# --- one run -----------------------------------------------------------------------------------------


@dataclass
class Run:
    """One E: times in seconds; ``*_from_sent`` from ``publishStream`` sent, ``*_from_publishing`` from the
    publisher's PUBLISHING; CPU in % of one core over the window."""

    edges: int
    publishing_seconds: float = 0.0
    "publishStream sent → the publisher's PUBLISHING."
    routes_from_sent: dict[str, float | None] = field(default_factory=dict)
    "Per edge: /cdn/streams first showing its push PUBLISHING."
    routes_all_from_sent: float | None = None
    routes_all_from_publishing: float | None = None
    keyframe_from_sent: dict[str, float | None] = field(default_factory=dict)
    "Per edge: its player's first complete VP8 keyframe."
    keyframe_all_from_sent: float | None = None
    keyframe_all_from_publishing: float | None = None
    route_history: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    "Per edge: the statuses /cdn/streams showed until all were PUBLISHING (t from publishStream sent)."
    players: dict[str, dict[str, Any]] = field(default_factory=dict)
    window_seconds: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    "origin, each edge, load_generator."
    rss: dict[str, int] = field(default_factory=dict)
    "At the end of the window, bytes."
    others_cpu: float = 0.0
    "Every other process on the machine, % of one core."
    box_cpu: float = 0.0
    "Whole machine, % of all cores."
    lost_window: int = 0
    expected_window: int = 0
    lost_total: int = 0
    expected_total: int = 0
    udp_errors: dict[str, int] = field(default_factory=dict)
    "The kernel's UDP error counters over the run, machine-wide."
    keyframe_requests: int = 0
    "PLIs/FIRs the publisher got."
    clip_restarts: int = 0
    routes_after_window: list[dict[str, Any]] = field(default_factory=list)
    relays_after_window: list[dict[str, Any]] = field(default_factory=list)
    "The origin's /pull/find_all once the window was over."
    edges_empty_seconds: float | None = None
    "Publisher gone → no edge lists a stream."
    errors: list[str] = field(default_factory=list)
    servers: dict[str, dict[str, Any]] = field(default_factory=dict)


def _udp_counters() -> dict[str, int]:
    """The kernel's UDP counters (/proc/net/snmp), machine-wide; {} where there is no /proc."""
    try:
        text = Path("/proc/net/snmp").read_text()
    except OSError:
        return {}
    lines = [line.split() for line in text.splitlines() if line.startswith("Udp:")]
    return dict(zip(lines[0][1:], map(int, lines[1][1:]), strict=True))


def _last(times: dict[str, float | None]) -> float | None:
    """The latest of the times; None if one is missing."""
    present = [t for t in times.values() if t is not None]
    return max(present) if present and len(present) == len(times) else None


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


async def drive(
    args: argparse.Namespace, origin: ServerProcess, edges: list[ServerProcess], video: Clip, audio: Clip
) -> Run:
    """Publish (edge players asking from the start), wait for every edge, measure, leave."""
    run = Run(edges=len(edges))
    me = psutil.Process()
    udp_before = _udp_counters()
    async with aiohttp.ClientSession() as http:
        video_track, audio_track = ClipTrack("video", video), ClipTrack("audio", audio)
        publisher = Publisher(http, origin.ws_url, args.client_address)
        signaling = publisher.signaling = TimedSignaling(http, origin.ws_url)
        players = {str(i): EdgePlayer(http, e.ws_url, args.client_address) for i, e in enumerate(edges, 1)}
        left = False
        try:
            joins = {
                node: asyncio.create_task(p.play_when_there(STREAM, args.retry, args.timeout))
                for node, p in players.items()
            }
            watcher = (  # E=0: no CDN to watch
                asyncio.create_task(watch_routes(http, origin, list(players), args.poll, args.timeout))
                if players
                else None
            )
            try:
                await publisher.publish(STREAM, [video_track, audio_track])
            except BaseException:
                for task in [*joins.values(), *([watcher] if watcher is not None else [])]:
                    task.cancel()
                raise
            published_at = time.monotonic()
            sent_at = signaling.sent["publishStream"]
            run.publishing_seconds = published_at - sent_at

            if watcher is not None:
                history = await watcher
                await asyncio.wait(joins.values())
                for node, join in joins.items():
                    exc = join.exception()
                    if exc is not None:
                        run.errors.append(f"edge {node} player: {type(exc).__name__}: {exc}")
                waits = [p.keyframe.wait() for p in players.values() if p.result.ok]
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.gather(*waits), args.timeout)

                route_at = {node: _publishing_at(history.get(node, [])) for node in players}
                run.routes_from_sent = {n: None if t is None else t - sent_at for n, t in route_at.items()}
                run.route_history = {
                    node: [
                        {"t": t - sent_at, "status": status, "info": info, "edgeUp": up}
                        for t, status, info, up in changes
                    ]
                    for node, changes in history.items()
                }
                keyframe_at = {node: p.keyframe_at for node, p in players.items()}
                run.keyframe_from_sent = {
                    n: None if t is None else t - sent_at for n, t in keyframe_at.items()
                }
                last_route, last_keyframe = _last(route_at), _last(keyframe_at)
                if last_route is not None:
                    run.routes_all_from_sent = last_route - sent_at
                    run.routes_all_from_publishing = last_route - published_at
                else:
                    run.errors.append(f"not every push was PUBLISHING within {args.timeout:.0f} s")
                if last_keyframe is not None:
                    run.keyframe_all_from_sent = last_keyframe - sent_at
                    run.keyframe_all_from_publishing = last_keyframe - published_at
                else:
                    run.errors.append(f"not every edge player had a keyframe within {args.timeout:.0f} s")

            await asyncio.sleep(args.settle)
            groups: dict[str, Callable[[], float]] = {
                "origin": origin.cpu_seconds,
                **{e.name: e.cpu_seconds for e in edges},
                "load_generator": lambda: cpu_seconds(me),
            }
            counts_before = {node: p.counts() for node, p in players.items()}
            psutil.cpu_percent()
            before = {k: f() for k, f in groups.items()}
            started = time.monotonic()
            await asyncio.sleep(args.seconds)
            after = {k: f() for k, f in groups.items()}
            run.window_seconds = elapsed = time.monotonic() - started
            run.box_cpu = psutil.cpu_percent()
            counts_after = {node: p.counts() for node, p in players.items()}
            run.cpu = {k: 100 * (after[k] - before[k]) / elapsed for k in groups}
            run.others_cpu = max(0.0, run.box_cpu * (psutil.cpu_count() or 1) - sum(run.cpu.values()))
            for server in (origin, *edges):
                assert server.ps is not None
                run.rss[server.name] = int(server.ps.memory_info().rss)

            for node, p in players.items():
                (e0, r0), (e1, r1) = counts_before[node], counts_after[node]
                result = p.finish()
                run.players[node] = {
                    "address": edges[int(node) - 1].address,
                    "ok": result.ok,
                    "not_found": p.not_found,
                    "first_play_from_sent": None if p.first_sent_at is None else p.first_sent_at - sent_at,
                    "accepted_from_sent": None if p.accepted_at is None else p.accepted_at - sent_at,
                    "playing_from_sent": None if p.playing_at is None else p.playing_at - sent_at,
                    "first_packet_from_sent": None
                    if p.first_packet_at is None
                    else p.first_packet_at - sent_at,
                    "keyframe_from_sent": run.keyframe_from_sent.get(node),
                    "keyframe_from_accepted": result.t_keyframe,
                    "packets": result.packets,
                    "expected": result.expected,
                    "lost": result.lost,
                    "expected_window": e1 - e0,
                    "lost_window": max(0, (e1 - e0) - (r1 - r0)),
                    "srtp_errors": result.srtp_errors,
                    "per_ssrc": result.per_ssrc,
                }
            run.lost_window = sum(p["lost_window"] for p in run.players.values())
            run.expected_window = sum(p["expected_window"] for p in run.players.values())
            run.lost_total = sum(p["lost"] for p in run.players.values())
            run.expected_total = sum(p["expected"] for p in run.players.values())
            if edges:
                run.routes_after_window = (await _get_json(http, f"{origin.rest_url}/cdn/streams"))[1]
                code, relays = await _get_json(http, f"{origin.rest_url}/pull/find_all")
                run.relays_after_window = relays if code == 200 else []

            await close_all(list(players.values()))
            await publisher.close()
            left = True
            run.keyframe_requests, run.clip_restarts = video_track.keyframe_requests, video_track.restarts
            if edges:
                run.edges_empty_seconds = await wait_edges_empty(http, edges, 15)
        finally:
            if not left:
                await close_all([*players.values(), publisher])
    udp_after = _udp_counters()
    run.udp_errors = {k: udp_after[k] - udp_before[k] for k in ("InErrors", "RcvbufErrors") if k in udp_after}
    return run


async def close_all(clients: list[LeanPlayer | Publisher], timeout: float = 10) -> None:
    if clients:
        await asyncio.wait([asyncio.ensure_future(c.close()) for c in clients], timeout=timeout)


def _edge_address(args: argparse.Namespace, i: int) -> str:
    return str(ipaddress.ip_address(args.origin_address) + i)


def start_servers(
    args: argparse.Namespace, n: int, folder: Path
) -> tuple[ServerProcess, list[ServerProcess]]:
    """E edges, then the origin (a plain server for E=0) listing them in loadbalancing.xml."""
    edges = [
        ServerProcess(f"edge{i}", _edge_address(args, i), folder / f"edge{i}", args.media_ports)
        for i in range(1, n + 1)
    ]
    cdn = {"load_balancing_enabled": "true"} if n else {}
    origin = ServerProcess("origin", args.origin_address, folder / "origin", args.media_ports, properties=cdn)
    if n:
        nodes = "".join(f'<node id="{i}"><ip>{e.address}</ip></node>' for i, e in enumerate(edges, 1))
        Path(origin.options["--config-dir"], "loadbalancing.xml").write_text(
            f'<loadbalancer mode="roundrobin" stream_distribution="webrtc">{nodes}</loadbalancer>\n'
        )
    started: list[ServerProcess] = []
    try:
        for server in [*edges, origin]:
            server.start()
            started.append(server)
    except BaseException:
        for server in started:
            server.stop()
        raise
    return origin, edges


def run_one(n: int, args: argparse.Namespace, video: Clip, audio: Clip) -> Run:
    """One E with fresh servers, all stopped with SIGTERM (origin first) whatever happens."""
    with tempfile.TemporaryDirectory(prefix="rtcdn-cdn-") as tmp:
        origin, edges = start_servers(args, n, Path(tmp))
        servers = [origin, *edges]
        run = Run(edges=n)
        try:
            run = asyncio.run(drive(args, origin, edges, video, audio))
        except (WcsError, RuntimeError, TimeoutError, aiohttp.ClientError) as exc:
            run.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            for server in servers:
                server.stop()
            for server in servers:
                server.keep_log(args.logs / f"E{n}" if args.logs else None)
        run.servers = {
            s.name: {
                "address": s.address,
                "exit_code": s.exit_code,
                "shutdown_seconds": s.shutdown_seconds,
                "log_problems": s.problems()[:20],
            }
            for s in servers
        }
    return run


# --- report ------------------------------------------------------------------------------------------


def _f(value: float | None, spec: str = ".0f", scale: float = 1) -> str:
    return "-" if value is None else format(value * scale, spec)


def _pair(from_sent: float | None, from_publishing: float | None) -> str:
    return f"{_f(_ms(from_sent))} / {_f(_ms(from_publishing))}"


def print_run(run: Run, baseline: Run | None) -> None:
    if run.edges:
        print(
            f"  publishStream → PUBLISHING at the origin {run.publishing_seconds * 1000:.0f} ms; "
            f"from publishStream sent / from PUBLISHING, ms:"
        )
        routes = ", ".join(f"{n} {_f(_ms(t))}" for n, t in run.routes_from_sent.items())
        print(
            f"  /cdn/streams PUBLISHING: {_pair(run.routes_all_from_sent, run.routes_all_from_publishing)} "
            f"(per edge: {routes})"
        )
        keyframes = ", ".join(f"{n} {_f(_ms(t))}" for n, t in run.keyframe_from_sent.items())
        print(
            f"  keyframe at every edge:  {_pair(run.keyframe_all_from_sent, run.keyframe_all_from_publishing)} "
            f"(per edge: {keyframes})"
        )
        for node, p in run.players.items():
            print(
                f"  edge {node} {p['address']}: {p['not_found']} x {NOT_FOUND}, then playStream sent at "
                f"{_f(_ms(p['accepted_from_sent']))}, PLAYING {_f(_ms(p['playing_from_sent']))}, first packet "
                f"{_f(_ms(p['first_packet_from_sent']))}, keyframe {_f(_ms(p['keyframe_from_sent']))} ms; "
                f"lost {p['lost_window']} of {p['expected_window']} in the window, {p['lost']} of "
                f"{p['expected']} in all; SRTP errors {p['srtp_errors']}; edge CPU "
                f"{run.cpu.get(f'edge{node}', 0):.1f} %, RSS {run.rss.get(f'edge{node}', 0) / 2**20:.1f} MiB"
            )
    else:
        print(f"  publishStream → PUBLISHING {run.publishing_seconds * 1000:.0f} ms; publisher only, no CDN")
    if run.cpu:
        line = f"  origin CPU {run.cpu['origin']:.2f} %, RSS {run.rss['origin'] / 2**20:.1f} MiB"
        if baseline is not None and baseline.cpu and run.edges:
            line += (
                f"; per edge over E=0: {(run.cpu['origin'] - baseline.cpu['origin']) / run.edges:+.2f} % CPU, "
                f"{(run.rss['origin'] - baseline.rss['origin']) / run.edges / 2**20:+.2f} MiB"
            )
        print(line)
        print(
            f"  load generator CPU {run.cpu['load_generator']:.1f} %, other processes {run.others_cpu:.0f} %, "
            f"machine {run.box_cpu:.0f} %; PLIs at the publisher {run.keyframe_requests} (clip restarts "
            f"{run.clip_restarts}); kernel UDP errors {run.udp_errors}"
        )
    if run.edges:
        print(f"  publisher gone → no stream left on any edge: {_f(_ms(run.edges_empty_seconds))} ms")
    for name, s in run.servers.items():
        print(f"  {name}: exit code {s['exit_code']} in {_f(s['shutdown_seconds'], '.1f')} s")
        for line in s["log_problems"][:5]:
            print(f"      {line}")
    for error in run.errors:
        print(f"  ! {error}")


def table(runs: list[Run]) -> str:
    baseline = next((r for r in runs if r.edges == 0 and r.cpu), None)
    heads = [
        "E",
        "pub ms",
        "all pushes PUBLISHING ms",
        "keyframe on all edges ms",
        "origin CPU%",
        "Δ/edge",
        "RSS MiB",
        "ΔRSS/edge MiB",
        "edge CPU%",
        "lost/expected",
    ]
    rows = [heads]
    for r in runs:
        base_cpu = baseline.cpu["origin"] if baseline is not None else None
        base_rss = baseline.rss["origin"] if baseline is not None else None
        per_edge = r.edges and base_cpu is not None and r.cpu
        edge_cpu = [v for k, v in r.cpu.items() if k.startswith("edge")]
        rows.append(
            [
                str(r.edges),
                _f(_ms(r.publishing_seconds)),
                _pair(r.routes_all_from_sent, r.routes_all_from_publishing) if r.edges else "-",
                _pair(r.keyframe_all_from_sent, r.keyframe_all_from_publishing) if r.edges else "-",
                _f(r.cpu.get("origin"), ".2f"),
                _f((r.cpu["origin"] - base_cpu) / r.edges, "+.2f")
                if per_edge and base_cpu is not None
                else "-",
                _f(r.rss.get("origin"), ".1f", 2**-20),
                _f((r.rss["origin"] - base_rss) / r.edges, "+.2f", 2**-20)
                if per_edge and base_rss is not None
                else "-",
                _f(sum(edge_cpu) / len(edge_cpu), ".2f") if edge_cpu else "-",
                f"{r.lost_window}/{r.expected_window}" if r.edges else "-",
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(heads))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in rows)


def cpu_fit(runs: list[Run]) -> dict[str, float] | None:
    """Least squares over the runs with edges: origin CPU = fixed + per_edge * E (None with < 2 E values)."""
    points = [(float(r.edges), r.cpu["origin"]) for r in runs if r.edges and r.cpu]
    if len({x for x, _ in points}) < 2:
        return None
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    slope = sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x, _ in points)
    return {"fixed": my - slope * mx, "per_edge": slope}


LEGEND = """\
pub: publishStream sent -> the origin's PUBLISHING. Pushes PUBLISHING: the origin's /rest-api/cdn/streams
shows every edge's push PUBLISHING; keyframe on all edges: the last edge player's first complete VP8 keyframe
(players ask from the start, again while the edge says Stream not found); both as "from publishStream sent /
from the origin's PUBLISHING". CPU in % of one core over the window, RSS at its end; Δ/edge = (origin at E -
origin at E=0, publisher only, no CDN) / E; edge CPU: mean over the edges; lost/expected: RTP sequence gaps
at the edge players over the window (no NACKs)."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    add = parser.add_argument
    add("--edges", default="1,2,4", help="comma-separated edge counts (default 1,2,4; E=0 always runs first)")
    add("--seconds", type=float, default=15, help="CPU window per E (default 15)")
    add("--settle", type=float, default=2, help="seconds after every edge's keyframe before the window")
    add("--retry", type=float, default=0.02, help="seconds between playStream retries (default 0.02)")
    add("--poll", type=float, default=0.02, help="seconds between /cdn/streams polls (default 0.02)")
    add("--timeout", type=float, default=30, help="seconds for every edge to get there (default 30)")
    add("--origin-address", default="127.0.0.71", help="origin; edge i is this address + i (default .71)")
    add("--client-address", default="127.0.0.70", help="address publisher and players gather on")
    add("--media-ports", default="31000-31999")
    add("--size", default="1280x720", help="video size (default 1280x720)")
    add("--fps", type=int, default=30)
    add("--bitrate", type=int, default=1_000_000, help="video bits/s (default 1000000)")
    add("--output", type=Path, default=RESULTS, help="JSON results (default bench/results/cdn.json)")
    add("--logs", type=Path, help="keep every server log in this folder (one subfolder per E)")
    args = parser.parse_args(argv)
    counts = [int(x) for x in args.edges.split(",") if x.strip()]
    if not counts or any(n < 1 for n in counts):
        parser.error("--edges: counts must be >= 1 (E=0, the publisher-only baseline, always runs)")
    servers = [_edge_address(args, i) for i in range(max(counts) + 1)]
    if args.client_address in servers or not all(ipaddress.ip_address(a).is_loopback for a in servers):
        parser.error("--edges: edge addresses must stay on loopback and not meet --client-address")

    width, height = (int(x) for x in args.size.split("x"))
    started = time.monotonic()
    video = encode_video(width, height, args.fps, 10, args.bitrate, gop_seconds=2)
    audio = encode_audio(10)
    cores = psutil.cpu_count() or 1
    print(
        f"clip: VP8 {width}x{height}@{args.fps} {video.bitrate / 1e6:.2f} Mbps, keyframe every 2 s + Opus "
        f"{audio.bitrate / 1e3:.0f} kbps, {video.seconds:.0f} s loop (encoded in "
        f"{time.monotonic() - started:.1f} s); machine: {cores} cores; origin {args.origin_address}, edges "
        f"from {_edge_address(args, 1)}, clients on {args.client_address}",
        flush=True,
    )

    runs: list[Run] = []
    baseline: Run | None = None
    for n in [0, *counts]:
        print(f"\nE={n}: running ...", flush=True)
        run = run_one(n, args, video, audio)
        if n == 0 and run.cpu:
            baseline = run
        print_run(run, baseline)
        runs.append(run)

    print()
    print(table(runs))
    fit = cpu_fit(runs)
    if fit is not None:
        print(
            f"least squares over E >= 1: origin CPU = {fit['fixed']:.2f} + {fit['per_edge']:.2f} x E % "
            "(the marginal cost of one more edge is the slope)"
        )
    print()
    print(LEGEND)
    report = {
        "benchmark": "cdn",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cores": cores, "python": platform.python_version(), "platform": platform.platform()},
        "config": {k: v for k, v in vars(args).items() if k not in ("output", "logs")},
        "clip": {
            "video_bitrate": round(video.bitrate),
            "video_frames": len(video.frames),
            "audio_bitrate": round(audio.bitrate),
        },
        "origin_cpu_fit": fit,
        "runs": [asdict(r) for r in runs],
    }
    write_results(args.output, report)
    return 1 if any(r.errors for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
