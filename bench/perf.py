"""Performance benchmark (issue 5): rtcdn against Janus, same feed, same players, same figures.

    .venv/bin/python bench/perf.py [--players 10,50,100,200,300,400,500] [--seconds 10] [--no-janus]

Servers, each started fresh by this script on loopback and measured over a ramp of player counts N:

- ``rtcdn serve`` with one worker, and with ``--workers 2`` (skipped, with a message, when this
  rtcdn has no ``--workers``): players first ask ``GET http://ADDR:8081/balancer`` and connect to the
  worker it names;
- Janus (Debian's ``janus``, streaming plugin, HTTP API; see ``_janus.py``) with ``event_loops = 1``,
  the strong anchor, and with its default configuration (one loop thread per handle).

The feed is the same for all: a pre-encoded VP8 1280x720@30 clip at ~1.5 Mbps (keyframe every 2 s)
plus Opus, looped in real time. rtcdn gets it from a WCS WebSDK publisher (aiortc, DTLS-SRTP); Janus
as plain RTP on its mountpoint's ports, cut into the same RTP payloads by the same packetizer.

Players are receive-only WebRTC peers that do not decode (``_wcs.LeanPlayer``'s core): once a
player's first VP8 keyframe has arrived it stops unprotecting SRTP and only reads the RTP header,
which SRTP leaves in clear: packet counts, sequence gaps per SSRC. They are spread over
``--processes`` processes running on uvloop when it is installed (asyncio's own loop costs ~5x the
CPU per datagram and would make the generator, not the server, the limit). A few "timed" players
live in the feed's process (asyncio's loop) and keep unprotecting every packet: each RTP payload the
feed sends is logged with its send time (``time.time_ns()``), and a timed player matches the payloads
it receives against that log and takes the kernel's receive timestamp of the datagram
(``SIOCGSTAMPNS``), so delay = server's send - feed's send, on one clock. In practice that is the
video packets: the test tone's Opus frames repeat, and a payload seen twice within 5 s is left out.

Per server: the feed alone first (baseline CPU and RSS), then for each N the players missing are
added, and after ``--settle`` seconds the figures are taken over ``--seconds``: server CPU (its own
processes' CPU time; workers summed), RSS, packets lost, delay p50/p99, time from ``playStream``
(``watch`` for Janus) to the first complete keyframe for the players added at that step. A ramp stops
after the first N with loss >= 0.5 % or players that failed to join, or once the load generator used
more than 90 % of its cores, the whole machine was > 95 % busy or the delay p50 passed 1 s
(``--keep-going`` runs every N). "Held" = the largest N before the first with loss >= 0.5 %; the
summary also gives it with delay p99 < 200 ms, since a server may queue rather than drop.

Scaling runs (``--cap 0.3``, ``--cap-workers 1,2``, ``--cap-players``): rtcdn again with 1 and 2
workers, every server process in a cgroup of its own capped at that fraction of a core (``_cgroup.py``),
so the players held by 1 and 2 workers compare while the generator keeps CPU to spare; the summary
line gives both "held" figures per worker count. They stay out of the Janus ratios and the plot.

By default every server but the two-worker rtcdn is pinned to CPU 0 and the load generator (feed,
players, this script) to the other CPUs, as in ``shared/research/janus-anchor.md``; the two-worker
rtcdn and the generator share all CPUs.

Output: a table, ``bench/results/latest.json`` and ``bench/results/cpu_vs_players.png`` (needs
matplotlib; without it the plot is skipped with a message).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import psutil  # type: ignore[import-untyped]
import pylibsrtp

from _cgroup import CpuCaps
from _cgroup import unavailable as caps_unavailable
from _janus import (
    MOUNTPOINT,
    RTP_ADDRESS,
    JanusPlayer,
    JanusServer,
    RtpFeed,
    interface_address,
    janus_available,
)
from _media import Clip, ClipTrack, encode_audio, encode_video
from _server import ServerProcess, cpu_seconds, percentile_sorted, write_results
from _wcs import LeanPlayer, Publisher, _rtp_header_length, _SsrcStats
from relay_hop import _kernel_stamp

RESULTS = Path(__file__).resolve().parent / "results"
STREAM = "perf"
LOSS_LIMIT = 0.5
"% of packets lost over a window above which N is not 'held'."
GENERATOR_LIMIT = 90.0
"% of the generator's cores above which the load generator, not the server, is the limit."
BOX_LIMIT = 95.0
"% of all CPUs busy above which the machine, not the server, is the limit."
DELAY_LIMIT_MS = 200.0
"Delay p99 above which an N counts as held only by queueing (reported beside the loss criterion)."
MIB = 2**20


# --- players -----------------------------------------------------------------------------------------


class SendLog:
    """Send times of the feed's RTP payloads: ``hash(payload)`` → ``time.time_ns()``.

    A payload sent twice within 5 s (a repeated Opus frame) is ambiguous and left out of the delays;
    the clip's loop repeats payloads only after 10 s (VP8 payloads never: the picture id runs on).
    """

    def __init__(self) -> None:
        self.sent: dict[int, int] = {}
        self.ambiguous: set[int] = set()
        self.count = 0

    def mark(self, payload: bytes, ns: int) -> None:
        self.count += 1
        key = hash(payload)
        previous = self.sent.get(key)
        if previous is not None and ns - previous < 5_000_000_000:
            self.ambiguous.add(key)
        self.sent[key] = ns


class CountingPlayer(LeanPlayer):
    """The lean player, leaner: after the first complete keyframe only the clear RTP header is read.

    With :meth:`time_against` it instead unprotects every packet and, while ``recording``, keeps
    ``delays``: kernel receive time - the feed's send time of the same payload (ns).
    """

    send_log: SendLog | None = None
    recording = False
    unmatched = 0
    other_datagrams = 0
    "STUN, DTLS and SRTCP datagrams (aiortc handles those)."
    played_url = ""
    "The server (worker) this player plays from."
    _fd = -1

    def time_against(self, log: SendLog) -> None:
        self.send_log = log
        self.delays: list[int] = []

    def _make_receiver(
        self, dtls: Any, original: Callable[[bytes, Any], None]
    ) -> Callable[[bytes, Any], None]:
        if self.send_log is not None:
            protocol = getattr(original, "__self__", None)  # aioice's StunProtocol of the candidate
            sock = protocol.transport.get_extra_info("socket") if protocol is not None else None
            if sock is not None:
                self._fd = sock.fileno()
                _kernel_stamp(self._fd)  # turns receive time-stamping on
        ssrcs = self.ssrcs
        header_only = self.send_log is None

        def datagram_received(data: bytes, addr: Any) -> None:
            srtp = dtls._rx_srtp
            if srtp is None or len(data) < 12 or not 127 < data[0] < 192 or 191 < data[1] < 209:
                self.other_datagrams += 1
                original(data, addr)  # STUN, DTLS, SRTCP
                return
            if header_only and self._keyframe_done:
                self.packets += 1
                seq = (data[2] << 8) | data[3]
                ssrc = int.from_bytes(data[8:12], "big")
                stats = ssrcs.get(ssrc)
                if stats is None:
                    stats = ssrcs[ssrc] = _SsrcStats(seq)
                stats.add(seq)
                return
            try:
                rtp = srtp.unprotect(data)
            except pylibsrtp.Error:
                self.srtp_errors += 1
                return
            self._on_rtp(rtp)

        return datagram_received

    def _on_rtp(self, rtp: bytes) -> None:
        super()._on_rtp(rtp)
        log = self.send_log
        if log is None or not self.recording:
            return
        key = hash(rtp[_rtp_header_length(rtp) :])
        sent = log.sent.get(key)
        if sent is None or key in log.ambiguous:
            self.unmatched += 1
            return
        kernel = _kernel_stamp(self._fd) if self._fd >= 0 else 0  # still the datagram being handled
        if kernel:
            self.delays.append(kernel - sent)
        else:
            self.unmatched += 1

    def counters(self) -> tuple[int, int]:
        """(received, expected) packets so far, over every SSRC."""
        return sum(s.received for s in self.ssrcs.values()), sum(s.expected for s in self.ssrcs.values())


class JanusCountingPlayer(CountingPlayer, JanusPlayer):
    """:class:`CountingPlayer` over the Janus HTTP API."""


@dataclass(frozen=True)
class Target:
    """Where players go: ``server`` is ``rtcdn`` (``url`` a ws:// URL) or ``janus`` (``url`` its API)."""

    server: str
    url: str
    stream: str
    address: str
    "The address players gather their ICE candidate on."
    balancer: str = ""
    "rtcdn with workers: ask this URL which worker to play from."


async def new_player(http: aiohttp.ClientSession, target: Target) -> tuple[CountingPlayer, str]:
    """A player for ``target`` and the URL it plays from (asks the balancer first if there is one)."""
    if target.server == "janus":
        return JanusCountingPlayer(http, target.url, target.address), target.url
    url = target.url
    if target.balancer:
        async with http.get(target.balancer) as response:
            choice = await response.json(content_type=None)
        url = f"ws://{choice['server']}:{choice['ws']}"
    return CountingPlayer(http, url, target.address), url


class Group:
    """Players of one process: joins in batches, counters, keyframe times of the last batch."""

    def __init__(self, http: aiohttp.ClientSession, target: Target, concurrency: int) -> None:
        self.http, self.target = http, target
        self.players: list[CountingPlayer] = []
        self.batch: list[CountingPlayer] = []
        self.errors: list[str] = []
        self.servers: Counter[str] = Counter()
        self._gate = asyncio.Semaphore(concurrency)

    async def _start(self, prepare: Callable[[CountingPlayer], None] | None) -> CountingPlayer | None:
        async with self._gate:
            try:
                player, url = await new_player(self.http, self.target)
            except (aiohttp.ClientError, OSError, KeyError, ValueError) as exc:
                self.errors.append(f"balancer: {type(exc).__name__}: {exc}")
                return None
            if prepare is not None:
                prepare(player)
            try:
                async with asyncio.timeout(45):
                    await player.play(self.target.stream)
                self.servers[url] += 1
                player.played_url = url
            except Exception as exc:
                player.result.error = f"{type(exc).__name__}: {exc}"
                self.errors.append(player.result.error)
            return player

    async def join(
        self, count: int, prepare: Callable[[CountingPlayer], None] | None = None
    ) -> dict[str, Any]:
        errors = len(self.errors)
        started = await asyncio.gather(*(self._start(prepare) for _ in range(count)))
        self.batch = [p for p in started if p is not None]
        self.players += self.batch
        return {
            "playing": sum(p.result.ok for p in self.batch),
            "errors": self.errors[errors:],
            "t_playing": [p.result.t_playing for p in self.batch if p.result.ok],
        }

    def snapshot(self) -> dict[str, Any]:
        received = expected = 0
        for p in self.players:
            r, e = p.counters()
            received += r
            expected += e
        return {
            "received": received,
            "expected": expected,
            "srtp_errors": sum(p.srtp_errors for p in self.players),
            "other_datagrams": sum(p.other_datagrams for p in self.players),
            "servers": dict(self.servers),
        }

    def keyframes(self) -> list[float | None]:
        """Seconds from playStream to the first complete keyframe, per player of the last batch."""
        return [p.result.t_keyframe for p in self.batch if p.result.ok]

    async def close(self) -> None:
        if self.players:
            await asyncio.wait([asyncio.ensure_future(p.close()) for p in self.players], timeout=15)


Handler = Callable[[Any], Awaitable[Any]]


async def _serve(conn: Connection, handlers: dict[str, Handler]) -> None:
    """Answer the parent's ``(command, argument)`` requests until ``stop`` has been answered."""
    loop = asyncio.get_running_loop()
    commands: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    loop.add_reader(conn.fileno(), lambda: commands.put_nowait(conn.recv()))
    try:
        while True:
            command, argument = await commands.get()
            try:
                reply = await handlers[command](argument)
            except Exception as exc:
                reply = {"exception": f"{type(exc).__name__}: {exc}"}
            conn.send(reply)
            if command == "stop":
                return
    finally:
        loop.remove_reader(conn.fileno())


def _pin(cpus: Sequence[int] | None) -> None:
    if cpus:
        os.sched_setaffinity(0, cpus)


def has_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def players_main(
    conn: Connection, target: Target, concurrency: int, cpus: list[int] | None, fast_loop: bool
) -> None:
    """A process of players; commands: join K, snapshot, keyframes, stop.

    With ``fast_loop`` the process runs on uvloop: asyncio's own loop costs ~16 µs of CPU per datagram
    received, uvloop ~3 µs, and the players are mostly that. (The timed players, which read kernel
    receive timestamps, stay on asyncio's loop, whose datagram path is known to read one at a time.)
    """
    _pin(cpus)

    async def main() -> None:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            group = Group(http, target, concurrency)

            async def snapshot(_: Any) -> dict[str, Any]:
                return group.snapshot()

            async def keyframes(_: Any) -> list[float | None]:
                return group.keyframes()

            async def stop(_: Any) -> None:
                return None

            conn.send({"ok": True})
            await _serve(
                conn, {"join": group.join, "snapshot": snapshot, "keyframes": keyframes, "stop": stop}
            )
            await group.close()

    if fast_loop:
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())


@dataclass(frozen=True)
class Feed:
    """What the feed process publishes and how: a WCS publisher on ``target`` or RTP to Janus.

    ``players`` is where the feed process's timed players go (as every other player).
    """

    target: Target
    players: Target
    video: Clip
    audio: Clip
    rtp_address: str = ""
    video_port: int = 0
    audio_port: int = 0


def _log_sends(pc: Any, log: SendLog) -> None:
    """Log every RTP payload the aiortc publisher ``pc`` sends, just before SRTP and ``sendto``."""
    transports = {id(t.sender.transport): t.sender.transport for t in pc.getTransceivers()}
    for dtls in transports.values():
        original = dtls._send_rtp

        async def send_rtp(data: bytes, original: Callable[[bytes], Awaitable[None]] = original) -> None:
            if not 191 < data[1] < 224:  # RTP, not RTCP
                log.mark(data[_rtp_header_length(data) :], time.time_ns())
            await original(data)  # protects and sends without suspending

        dtls._send_rtp = send_rtp


def feed_main(conn: Connection, feed: Feed, concurrency: int, cpus: list[int] | None) -> None:
    """The feed (publisher or RTP) and the timed players; commands: join, record, snapshot, stop."""
    _pin(cpus)

    async def main() -> None:
        log = SendLog()
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            publisher: Publisher | None = None
            rtp: RtpFeed | None = None
            tracks: list[ClipTrack] = []
            try:
                if feed.target.server == "janus":
                    rtp = RtpFeed(
                        feed.rtp_address, feed.video_port, feed.audio_port, feed.video, feed.audio, log.mark
                    )
                    rtp.start()
                else:
                    tracks = [ClipTrack("video", feed.video), ClipTrack("audio", feed.audio)]
                    publisher = Publisher(http, feed.target.url, feed.target.address)
                    await publisher.publish(STREAM, tracks)
                    _log_sends(publisher.pc, log)
            except Exception as exc:
                conn.send({"ok": False, "error": f"{type(exc).__name__}: {exc}"})
                if publisher is not None:
                    await publisher.close()
                return
            conn.send({"ok": True})
            group = Group(http, feed.players, concurrency)

            async def join(count: int) -> dict[str, Any]:
                return await group.join(count, lambda p: p.time_against(log))

            marks = [0, time.monotonic()]

            async def record(on: bool) -> dict[str, Any]:
                for p in group.players:
                    p.recording = on
                    if on:
                        p.delays.clear()
                        p.unmatched = 0
                if on:
                    marks[:] = [log.count, time.monotonic()]
                    return {}
                sent_per_second = (log.count - marks[0]) / (time.monotonic() - marks[1])
                by_url: dict[str, list[float]] = {}
                for p in group.players:
                    by_url.setdefault(p.played_url, []).extend(d / 1e6 for d in p.delays)
                return {
                    "delays_ms": by_url,
                    "unmatched": sum(p.unmatched for p in group.players),
                    "sent_per_second": sent_per_second,
                }

            async def snapshot(_: Any) -> dict[str, Any]:
                return group.snapshot()

            async def keyframes(_: Any) -> list[float | None]:
                return group.keyframes()

            async def stop(_: Any) -> dict[str, Any]:
                if tracks:
                    return {
                        "keyframe_requests": tracks[0].keyframe_requests,
                        "clip_restarts": tracks[0].restarts,
                    }
                return {"rtp_packets_sent": rtp.packets_sent if rtp else 0}

            handlers: dict[str, Handler] = {
                "join": join,
                "record": record,
                "snapshot": snapshot,
                "keyframes": keyframes,
                "stop": stop,
            }
            await _serve(conn, handlers)
            await group.close()
            if publisher is not None:
                await publisher.close()
            if rtp is not None:
                await rtp.stop()

    asyncio.run(main())


class Worker:
    """A child process running :func:`players_main` or :func:`feed_main`, spoken to over a pipe."""

    def __init__(self, target: Callable[..., None], *args: Any) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=target, args=(child, *args), daemon=True)
        self.process.start()
        child.close()
        assert self.process.pid is not None
        self.ps = psutil.Process(self.process.pid)

    def receive(self, timeout: float) -> Any:
        if not self.conn.poll(timeout):
            raise TimeoutError(f"worker {self.process.pid}: no answer within {timeout:.0f} s")
        reply = self.conn.recv()
        if isinstance(reply, dict) and "exception" in reply:
            raise RuntimeError(f"worker {self.process.pid}: {reply['exception']}")
        return reply

    def send(self, command: str, argument: Any = None) -> None:
        self.conn.send((command, argument))

    def request(self, command: str, argument: Any = None, timeout: float = 30) -> Any:
        self.send(command, argument)
        return self.receive(timeout)

    def join(self, timeout: float = 20) -> None:
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


# --- servers under test ---------------------------------------------------------------------------


class Server(Protocol):
    name: str
    exit_code: int | None
    shutdown_seconds: float | None

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def problems(self) -> list[str]: ...
    def keep_log(self, folder: Path | None) -> None: ...


@dataclass
class Setup:
    """One server configuration of the benchmark."""

    server: str
    "``rtcdn`` or ``janus``."
    config: str
    "``workers=1``, ``workers=2``, ``event_loops=1``, ``default``."
    workers: int
    make: Callable[[Path], Server]
    processes: Callable[[Server], list[psutil.Process]]
    players: Target
    feed: Feed
    server_cpus: list[int] | None
    "CPUs the server is pinned to (None: not pinned)."
    ready: Callable[[Server], None] = lambda server: None
    "Waits, after the feed is up, until every player could be served (rtcdn workers: stream relayed)."
    cpu_cap: float | None = None
    "Each server process confined to this fraction of a core (cgroups), or None."
    counts: list[int] | None = None
    "Player counts of this setup's ramp (None: ``--players``)."

    @property
    def label(self) -> str:
        return f"{self.server} {self.config}"


def _rtcdn_processes(server: Server) -> list[psutil.Process]:
    assert isinstance(server, ServerProcess) and server.ps is not None
    return [server.ps, *server.ps.children(recursive=True)]


def _janus_processes(server: Server) -> list[psutil.Process]:
    assert isinstance(server, JanusServer) and server.ps is not None
    return [server.ps]


def rtcdn_setup(
    args: argparse.Namespace,
    workers: int,
    cpus: list[int] | None,
    video: Clip,
    audio: Clip,
    cpu_cap: float | None = None,
) -> Setup:
    ws_url = f"ws://{args.address}:{args.ws_port}"
    http = f"http://{args.address}:{args.http_port}"

    def make(folder: Path) -> Server:
        options = {"--http-ports": str(args.http_port)}
        if workers > 1:
            options["--workers"] = str(workers)
        return ServerProcess(
            f"rtcdn-w{workers}", args.address, folder, args.media_ports, ws_port=args.ws_port, options=options
        )

    def ready(server: Server) -> None:
        """Wait until the stream is live on every worker (workers > 0 get it over a relay)."""
        deadline = time.monotonic() + 30
        for k in range(1, workers):
            url = f"http://{args.address}:{args.http_port + 1000 * k}/rest-api/stream/find"
            while not _published(url):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"stream {STREAM!r} not on worker {k} ({url}) within 30 s")
                time.sleep(0.2)

    players = Target("rtcdn", ws_url, STREAM, args.client_address, f"{http}/balancer" if workers > 1 else "")
    publisher = Target("rtcdn", ws_url, STREAM, args.client_address)
    return Setup(
        "rtcdn",
        f"workers={workers}" + (f" cap={cpu_cap:g}" if cpu_cap else ""),
        workers,
        make,
        _rtcdn_processes,
        players,
        Feed(publisher, players, video, audio),
        cpus,
        ready,
        cpu_cap,
        args.cap_counts if cpu_cap else None,
    )


def _published(url: str) -> bool:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        url, data=json.dumps({"name": STREAM}).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            records = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return False
    return any(r.get("published") and r.get("status") == "PUBLISHING" for r in records)


def janus_setup(
    args: argparse.Namespace, event_loops: int | None, cpus: list[int] | None, video: Clip, audio: Clip
) -> Setup:
    interface, address = args.janus_interface

    def make(folder: Path) -> Server:
        return JanusServer(
            f"el{event_loops or 'default'}",
            folder,
            interface=interface,
            event_loops=event_loops,
            address=args.janus_address,
            http_port=args.janus_http_port,
            cpus=set(cpus) if cpus else None,
        )

    api = f"http://{args.janus_address}:{args.janus_http_port}/janus"
    target = Target("janus", api, str(MOUNTPOINT), address)
    feed = Feed(target, target, video, audio, RTP_ADDRESS, video_port=5004, audio_port=5002)
    config = "default" if event_loops is None else f"event_loops={event_loops}"
    return Setup("janus", config, 1, make, _janus_processes, target, feed, cpus)


def rtcdn_has_workers() -> bool:
    """Whether this rtcdn's ``serve`` takes ``--workers``."""
    help_text = subprocess.run(
        [sys.executable, "-m", "rtcdn", "serve", "--help"], capture_output=True, text=True, timeout=30
    ).stdout
    return "--workers" in help_text


# --- measuring ---------------------------------------------------------------------------------------


def _udp_counters() -> dict[str, int]:
    lines = [
        line.split() for line in Path("/proc/net/snmp").read_text().splitlines() if line.startswith("Udp:")
    ]
    return dict(zip(lines[0][1:], map(int, lines[1][1:]), strict=True))


def _cpu(processes: Sequence[psutil.Process]) -> float:
    total = 0.0
    for p in processes:
        with contextlib.suppress(psutil.Error):
            total += cpu_seconds(p)
    return total


def _rss(processes: Sequence[psutil.Process]) -> int:
    total = 0
    for p in processes:
        with contextlib.suppress(psutil.Error):
            total += int(p.memory_info().rss)
    return total


def _quantiles(values: Sequence[float], prefix: str) -> dict[str, float | int | None]:
    ordered = sorted(values)
    out: dict[str, float | int | None] = {f"{prefix}_samples": len(ordered)}
    for q in (50, 90, 99):
        out[f"{prefix}_p{q}_ms"] = percentile_sorted(ordered, q) if ordered else None
    out[f"{prefix}_max_ms"] = ordered[-1] if ordered else None
    return out


class Ramp:
    """One server configuration driven through the player counts."""

    def __init__(self, setup: Setup, args: argparse.Namespace, generator_cpus: list[int] | None) -> None:
        self.setup, self.args, self.generator_cpus = setup, args, generator_cpus
        self.gen_cores = len(generator_cpus or args.cpus)
        self.levels: list[dict[str, Any]] = []
        self.baseline: dict[str, float] = {}
        self.stopped_because = ""
        self.feed_stats: dict[str, Any] = {}
        self.affinity: dict[int, list[int]] = {}
        "CPUs each server process may run on."
        self.caps: CpuCaps | None = None
        "The cgroups capping the server's processes (``Setup.cpu_cap``); closed by the caller."

    def say(self, text: str) -> None:
        print(f"  [{self.setup.label}] {text}", flush=True)

    def run(self, server: Server) -> None:
        setup, args = self.setup, self.args
        self.server = server
        feed = Worker(feed_main, setup.feed, args.join_concurrency, self.generator_cpus)
        groups: list[Worker] = []
        try:
            ready = feed.receive(60)
            if not ready["ok"]:
                raise RuntimeError(f"feed failed: {ready['error']}")
            setup.ready(server)
            procs = setup.processes(server)
            if setup.cpu_cap:
                self.caps = CpuCaps(setup.cpu_cap, f"rtcdn-perf-{os.getpid()}")
                for p in procs:
                    self.caps.confine(p.pid)
                self.say(f"{len(procs)} server process(es) capped at {setup.cpu_cap:g} core each")
            self.affinity = {p.pid: p.cpu_affinity() for p in procs}
            time.sleep(args.warmup)
            before, started = _cpu(procs), time.monotonic()
            time.sleep(args.baseline_seconds)
            self.baseline = {
                "server_cpu_pct": 100 * (_cpu(procs) - before) / (time.monotonic() - started),
                "server_rss_mb": _rss(procs) / MIB,
            }
            self.say(
                f"feed alone: server {self.baseline['server_cpu_pct']:.1f} % CPU, "
                f"{self.baseline['server_rss_mb']:.1f} MiB"
            )
            groups = [
                Worker(players_main, setup.players, args.join_concurrency, self.generator_cpus, args.uvloop)
                for _ in range(args.processes)
            ]
            for g in groups:
                g.receive(60)
            current = 0
            for n in setup.counts or args.counts:
                level = self.level(n, current, feed, groups)
                current = level["playing"]
                self.levels.append(level)
                self.say(_level_line(level))
                reason = self.stop_reason(level)
                if reason and not args.keep_going:
                    self.stopped_because = f"stopped after N={n}: {reason}"
                    self.say(self.stopped_because)
                    break
            for g in groups:
                g.send("stop")
            feed.send("stop")
            for g in groups:
                g.receive(60)
            self.feed_stats = feed.receive(60)
        finally:
            for w in [*groups, feed]:
                w.join(5 if not w.process.is_alive() else 20)

    def stop_reason(self, level: dict[str, Any]) -> str:
        if level["playing"] < level["players"]:
            return f"{level['players'] - level['playing']} players could not join"
        if level["loss_pct"] is not None and level["loss_pct"] >= LOSS_LIMIT:
            return f"loss {level['loss_pct']:.2f} % >= {LOSS_LIMIT} %"
        if level["generator_saturated"]:
            return (
                f"the load generator used {level['generator_cpu_pct']:.0f} % CPU of its "
                f"{100 * self.gen_cores} % ({self.gen_cores} core(s))"
            )
        if level["box_cpu_pct"] > BOX_LIMIT:
            return f"the machine is saturated ({level['box_cpu_pct']:.0f} % of all CPUs busy)"
        if (level["hop_delay_p50_ms"] or 0) > 1000:
            return f"delay p50 {level['hop_delay_p50_ms']:.0f} ms: the server is falling behind"
        return ""

    def level(self, n: int, current: int, feed: Worker, groups: list[Worker]) -> dict[str, Any]:
        args, setup = self.args, self.setup
        timed = min(args.timed_players, n) if current == 0 else 0
        rest = n - current - timed
        shares = [rest // len(groups) + (i < rest % len(groups)) for i in range(len(groups))]
        started = time.monotonic()
        joined: list[dict[str, Any]] = []
        if timed:
            joined.append(feed.request("join", timed, timeout=120))
        for g, k in zip(groups, shares, strict=True):
            g.send("join", k)
        joined += [g.receive(120 + k) for g, k in zip(groups, shares, strict=True)]
        join_seconds = time.monotonic() - started
        playing_new = sum(j["playing"] for j in joined)
        errors = [e for j in joined for e in j["errors"]]
        t_playing = [t for j in joined for t in j["t_playing"]]
        time.sleep(args.settle)

        everyone = [feed, *groups]
        gen_procs = [w.ps for w in everyone] + [psutil.Process()]
        procs = setup.processes(self.server)  # workers may have come and gone
        snap_before = [w.request("snapshot") for w in everyone]
        udp_before = _udp_counters()
        feed.request("record", True)
        psutil.cpu_percent()
        parts_before = [_cpu([feed.ps]), _cpu([g.ps for g in groups])]
        throttled_before = self.caps.throttled_seconds() if self.caps else 0.0
        cpu_before, gen_before, t0 = _cpu(procs), _cpu(gen_procs), time.monotonic()
        time.sleep(args.seconds)
        cpu_after, gen_after, t1 = _cpu(procs), _cpu(gen_procs), time.monotonic()
        throttled = (self.caps.throttled_seconds() if self.caps else 0.0) - throttled_before
        parts_after = [_cpu([feed.ps]), _cpu([g.ps for g in groups])]
        box = psutil.cpu_percent()
        recorded = feed.request("record", False)
        udp_after = _udp_counters()
        snap_after = [w.request("snapshot") for w in everyone]
        keyframes = [t for w in everyone for t in w.request("keyframes")]
        rss = _rss(procs)

        elapsed = t1 - t0
        received = sum(a["received"] - b["received"] for a, b in zip(snap_after, snap_before, strict=True))
        expected = sum(a["expected"] - b["expected"] for a, b in zip(snap_after, snap_before, strict=True))
        lost = max(0, expected - received)
        other = sum(
            a["other_datagrams"] - b["other_datagrams"] for a, b in zip(snap_after, snap_before, strict=True)
        )
        servers: Counter[str] = Counter()
        for snap in snap_after:
            servers.update(snap["servers"])
        playing_total = current + playing_new
        seated = max(1, playing_total)  # per-player figures: per player actually playing
        server_cpu = 100 * (cpu_after - cpu_before) / elapsed
        generator_cpu = 100 * (gen_after - gen_before) / elapsed
        got = sorted(t * 1000 for t in keyframes if t is not None)
        level: dict[str, Any] = {
            "server": setup.server,
            "config": setup.config,
            "workers": setup.workers,
            "players": n,
            "playing": playing_total,
            "join_seconds": join_seconds,
            "join_errors": errors[:10],
            "window_seconds": elapsed,
            "server_cpu_pct": server_cpu,
            "cpu_per_player_pct": server_cpu / seated,
            "cpu_per_player_over_baseline_pct": (server_cpu - self.baseline["server_cpu_pct"]) / seated,
            "server_rss_mb": rss / MIB,
            "rss_per_player_mb": (rss / MIB - self.baseline["server_rss_mb"]) / seated,
            "packets_expected": expected,
            "packets_lost": lost,
            "loss_pct": 100 * lost / expected if expected else None,
            "packets_per_player_per_second": received / elapsed / max(1, playing_total),
            "other_datagrams_per_player_per_second": other / elapsed / max(1, playing_total),
            **_quantiles([d for ds in recorded["delays_ms"].values() for d in ds], "hop_delay"),
            "hop_delay_by_server_url": {
                url: _quantiles(ds, "hop_delay") for url, ds in recorded["delays_ms"].items()
            },
            "hop_delay_unmatched": recorded["unmatched"],
            "feed_packets_per_second": recorded["sent_per_second"],
            "first_keyframe_ms": percentile_sorted(got, 50) if got else None,
            "first_keyframe_p95_ms": percentile_sorted(got, 95) if got else None,
            "first_keyframe_players": len(got),
            "players_without_keyframe": len(keyframes) - len(got),
            "playing_p50_ms": percentile_sorted(sorted(t * 1000 for t in t_playing), 50)
            if t_playing
            else None,
            "generator_cpu_pct": generator_cpu,
            "generator_cores": self.gen_cores,
            "feed_process_cpu_pct": 100 * (parts_after[0] - parts_before[0]) / elapsed,
            "player_processes_cpu_pct": 100 * (parts_after[1] - parts_before[1]) / elapsed,
            "generator_saturated": generator_cpu > GENERATOR_LIMIT * self.gen_cores,
            "box_cpu_pct": box,
            "others_cpu_pct": max(0.0, box * (psutil.cpu_count() or 1) - server_cpu - generator_cpu),
            "udp_rcvbuf_errors": udp_after["RcvbufErrors"] - udp_before["RcvbufErrors"],
            "udp_in_errors": udp_after["InErrors"] - udp_before["InErrors"],
            "players_per_server_url": dict(servers),
            "server_processes": len(procs),
            "cpu_cap": setup.cpu_cap,
            "throttled_pct": 100 * throttled / elapsed / len(procs) if self.caps else None,
            "server_threads": sum(p.num_threads() for p in procs if p.is_running()),
        }
        return level


def _level_line(level: dict[str, Any]) -> str:
    def f(value: float | None, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    spread = ""
    if len(level["players_per_server_url"]) > 1:
        spread = "; players per worker " + ", ".join(
            f"{url.rsplit(':', 1)[-1]}: {k}" for url, k in sorted(level["players_per_server_url"].items())
        )
    if len(level["hop_delay_by_server_url"]) > 1:
        spread += "; delay p50/p99 per worker " + ", ".join(
            f"{url.rsplit(':', 1)[-1]}: {f(d['hop_delay_p50_ms'], '.2f')}/{f(d['hop_delay_p99_ms'], '.2f')} ms"
            for url, d in sorted(level["hop_delay_by_server_url"].items())
        )
    errors = f"; join errors: {level['join_errors'][:2]}" if level["join_errors"] else ""
    return (
        f"N={level['players']}: {level['playing']} playing (joined in {level['join_seconds']:.1f} s), server "
        f"{level['server_cpu_pct']:.1f} % CPU, loss {f(level['loss_pct'], '.3f')} %, delay p50/p99 "
        f"{f(level['hop_delay_p50_ms'], '.2f')}/{f(level['hop_delay_p99_ms'], '.2f')} ms, 1st keyframe p50 "
        f"{f(level['first_keyframe_ms'], '.0f')} ms, generator {level['generator_cpu_pct']:.0f} % CPU of "
        f"{100 * level['generator_cores']} %, feed {level['feed_packets_per_second']:.0f} pkt/s, "
        f"UDP rcvbuf drops {level['udp_rcvbuf_errors']}{spread}{errors}"
    )


# --- report ----------------------------------------------------------------------------------------


def _f(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


COLUMNS: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
    ("server", lambda r: f"{r['server']} {r['config']}"),
    ("N", lambda r: str(r["players"])),
    ("playing", lambda r: str(r["playing"])),
    ("srv CPU%", lambda r: _f(r["server_cpu_pct"], ".1f")),
    ("CPU%/pl", lambda r: _f(r["cpu_per_player_pct"], ".3f")),
    ("RSS MiB", lambda r: _f(r["server_rss_mb"], ".0f")),
    ("RSS/pl MiB", lambda r: _f(r["rss_per_player_mb"], ".3f")),
    ("loss %", lambda r: _f(r["loss_pct"], ".3f")),
    ("delay p50", lambda r: _f(r["hop_delay_p50_ms"], ".2f")),
    ("p99 ms", lambda r: _f(r["hop_delay_p99_ms"], ".2f")),
    ("1st KF p50", lambda r: _f(r["first_keyframe_ms"], ".0f")),
    ("p95 ms", lambda r: _f(r["first_keyframe_p95_ms"], ".0f")),
    ("pkt/s/pl", lambda r: _f(r["packets_per_player_per_second"], ".0f")),
    ("gen CPU%", lambda r: f"{r['generator_cpu_pct']:.0f}/{100 * r['generator_cores']}"),
    ("others%", lambda r: _f(r["others_cpu_pct"], ".0f")),
]


def render(rows: list[list[str]], left: int = 1) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(
            c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    )


def table(levels: list[dict[str, Any]]) -> str:
    rows = [[head for head, _ in COLUMNS]] + [[cell(r) for _, cell in COLUMNS] for r in levels]
    return render(rows)


LEGEND = """\
CPU in % of one core over the window (server: its own processes' CPU time; workers summed); CPU%/pl = server
CPU / N; RSS/pl = (RSS - RSS with the feed alone) / N; loss from sequence gaps per SSRC over the window (players
send no NACK); delay = kernel receive time at a timed player - the feed's send time of the same payload (the
delay the server adds; on loopback the receive stamp is taken in the server's sendto); 1st KF = playStream
(Janus: watch) -> first complete VP8 keyframe, players added at that N; gen = load generator (feed, players,
this script) CPU / its capacity; others = every other process on the machine (disturbs the figures)."""


def held(levels: list[dict[str, Any]], delay_limit: float | None = None) -> int | None:
    """The largest N before the first N that lost >= 0.5 % (or could not seat every player).

    With ``delay_limit`` (ms), an N whose delay p99 exceeds it ends the run of held N too.
    """
    best = None
    for level in levels:
        if level["playing"] < level["players"] or (level["loss_pct"] or 0) >= LOSS_LIMIT:
            break
        if delay_limit is not None and (level["hop_delay_p99_ms"] or 0) > delay_limit:
            break
        best = level["players"]
    return best


def scaling_summary(capped: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Players held by 1, 2, ... workers when every worker is capped at the same fraction of a core.

    A capped server queues before it drops (up to 256 datagrams per connection), so the figure that
    tracks its CPU is the one with the delay bound as well; both are given.
    """
    if not capped:
        return {}
    runs = sorted(capped.values(), key=lambda r: r["workers"])
    cap = runs[0]["cpu_cap"]
    out: dict[str, Any] = {"cpu_cap_per_process": cap}
    texts = []
    for key, limit, what in (
        ("held_by_workers", None, f"< {LOSS_LIMIT} % loss"),
        ("held_by_workers_delay_p99_under_200ms", DELAY_LIMIT_MS, f"and delay p99 < {DELAY_LIMIT_MS:.0f} ms"),
    ):
        held_by = {r["workers"]: held(r["levels"], limit) for r in runs}
        out[key] = {str(k): v for k, v in held_by.items()}
        base = held_by.get(1)
        parts = [
            f"{k} worker(s) {n if n is not None else 'none'}"
            + (f" (x{n / base:.2f})" if base and n and k > 1 else "")
            for k, n in held_by.items()
        ]
        texts.append(f"{what}: " + ", ".join(parts))
    top = {r["workers"]: (r["levels"][-1]["players"] if r["levels"] else None) for r in runs}
    out["largest_n_run"] = {str(k): v for k, v in top.items()}
    out["line"] = (
        f"players held with every rtcdn process capped at {cap:g} core (cgroups): "
        + "; ".join(texts)
        + " (largest N run: "
        + ", ".join(f"{k} worker(s) {n}" for k, n in top.items())
        + ")"
    )
    return out


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b not in (None, 0) else None


RATIO_KEYS = {
    "cpu_per_player": "cpu_per_player_pct",
    "rss_per_player": "rss_per_player_mb",
    "hop_delay_p50": "hop_delay_p50_ms",
    "hop_delay_p99": "hop_delay_p99_ms",
    "first_keyframe": "first_keyframe_ms",
}


def ratios(by_label: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """rtcdn / Janus per N both reached, for every rtcdn and Janus configuration."""
    out = []
    for rl, rlevels in by_label.items():
        if not rl.startswith("rtcdn"):
            continue
        for jl, jlevels in by_label.items():
            if not jl.startswith("janus"):
                continue
            janus_at = {j["players"]: j for j in jlevels}
            for r in rlevels:
                j = janus_at.get(r["players"])
                if j is None:
                    continue
                row: dict[str, Any] = {"rtcdn": rl, "janus": jl, "players": r["players"]}
                row.update({name: _ratio(r[key], j[key]) for name, key in RATIO_KEYS.items()})
                row["loss_pct"] = {"rtcdn": r["loss_pct"], "janus": j["loss_pct"]}
                out.append(row)
    return out


def ratio_table(rows: list[dict[str, Any]]) -> str:
    heads = [
        "rtcdn / Janus",
        "N",
        "CPU/pl",
        "RSS/pl",
        "delay p50",
        "delay p99",
        "1st KF",
        "loss % rtcdn|janus",
    ]
    lines = [heads]
    for r in rows:
        loss = r["loss_pct"]
        lines.append(
            [
                f"{r['rtcdn']} / {r['janus']}",
                str(r["players"]),
                *(_f(r[k], ".2f") for k in RATIO_KEYS),
                f"{_f(loss['rtcdn'], '.3f')}|{_f(loss['janus'], '.3f')}",
            ]
        )
    return render(lines)


def plot(by_label: dict[str, list[dict[str, Any]]], path: Path, subtitle: str) -> str:
    """CPU vs players (and CPU per player) for every configuration; '' or why there is no plot."""
    try:
        import matplotlib  # type: ignore[import-not-found, unused-ignore]

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return "matplotlib is not installed (.venv/bin/pip install matplotlib): no plot"
    if not any(by_label.values()):
        return "no results: no plot"
    fig, (total, per) = plt.subplots(1, 2, figsize=(12, 4.8))
    for label, levels in by_label.items():
        if not levels:
            continue
        style = "-o" if label.startswith("rtcdn") else "--s"
        n = [r["players"] for r in levels]
        total.plot(n, [r["server_cpu_pct"] for r in levels], style, label=label)
        per.plot(n, [r["cpu_per_player_pct"] for r in levels], style, label=label)
        lossy = [r for r in levels if (r["loss_pct"] or 0) >= LOSS_LIMIT]
        if lossy:
            total.plot(
                [r["players"] for r in lossy], [r["server_cpu_pct"] for r in lossy], "kx", markersize=10
            )
    total.plot([], [], "kx", label=f"loss >= {LOSS_LIMIT} %")
    total.set_xlabel("players")
    total.set_ylabel("server CPU, % of one core")
    total.axhline(100, color="grey", linewidth=0.8, linestyle=":")
    per.set_xlabel("players")
    per.set_ylabel("server CPU per player, % of one core")
    for ax in (total, per):
        ax.grid(True, alpha=0.3)
        ax.legend()
        ax.set_xlim(left=0)
        ax.set_ylim(bottom=0)
    fig.suptitle(f"Server CPU vs players: rtcdn and Janus (streaming plugin)\n{subtitle}", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return ""


JANUS_BENIGN = ("Hashing algorithm not the one we expected", "Failed to add some remote candidates", "mDNS")
"Janus warnings every aiortc player causes (extra fingerprints, one candidate line per m-line) or the config does."


def run_setup(setup: Setup, args: argparse.Namespace, generator_cpus: list[int] | None) -> dict[str, Any]:
    """Start the server, ramp the players, stop the server.

    CPU affinity is inherited: this process takes the server's CPUs while it starts the server (its
    workers and threads inherit them), then the generator's CPUs while it starts the feed and players.
    """
    print(f"{setup.label}: starting", flush=True)
    ramp = Ramp(setup, args, generator_cpus)
    failure = ""
    everywhere = sorted(args.cpus)
    with tempfile.TemporaryDirectory(prefix="rtcdn-perf-") as tmp:
        server = setup.make(Path(tmp))
        try:
            os.sched_setaffinity(0, setup.server_cpus or everywhere)
            try:
                server.start()
            finally:
                os.sched_setaffinity(0, generator_cpus or everywhere)
            ramp.run(server)
        except (RuntimeError, TimeoutError, OSError) as exc:
            failure = f"{type(exc).__name__}: {exc}"
            print(f"  [{setup.label}] failed: {failure}", flush=True)
        finally:
            server.stop()
            server.keep_log(args.logs)
            if ramp.caps is not None:
                ramp.caps.close()
        problems = [p for p in server.problems() if not any(b in p for b in JANUS_BENIGN)]
    if problems:
        print(
            f"  [{setup.label}] {len(problems)} warnings/errors in the server log, first: {problems[0][:200]}"
        )
    extra: dict[str, Any] = {}
    if isinstance(server, JanusServer):
        version = subprocess.run([server.command[0], "--version"], capture_output=True, text=True, timeout=10)
        extra["janus_version"] = version.stdout.splitlines()[0] if version.stdout else ""
        extra["janus_command"] = " ".join(server.command)
        extra["janus_config_files"] = server.config
    return {
        "server": setup.server,
        "config": setup.config,
        "workers": setup.workers,
        **extra,
        "server_cpus": setup.server_cpus,
        "cpu_cap": setup.cpu_cap,
        "generator_cpus": generator_cpus,
        "server_affinity": ramp.affinity,
        "baseline": ramp.baseline,
        "levels": ramp.levels,
        "stopped_because": ramp.stopped_because,
        "failure": failure,
        "feed": ramp.feed_stats,
        "exit_code": server.exit_code,
        "shutdown_seconds": server.shutdown_seconds,
        "log_problems": problems[:20],
        "log_problem_count": len(problems),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    add = parser.add_argument
    add(
        "--players",
        default="10,50,100,200,300,400,500",
        help="player counts N (default 10,50,100,200,300,400,500)",
    )
    add("--seconds", type=float, default=10, help="measurement window per N (default 10)")
    add("--settle", type=float, default=3, help="seconds after the joins before the window (default 3)")
    add(
        "--warmup", type=float, default=2, help="seconds after the feed is up before the baseline (default 2)"
    )
    add("--baseline-seconds", type=float, default=4, help="feed-alone window (default 4)")
    add("--workers", default="1,2", help="rtcdn worker counts to run (default 1,2; 0 or '' = no rtcdn)")
    add("--no-janus", action="store_true", help="skip the Janus anchor")
    add(
        "--cap",
        type=float,
        default=0.3,
        help="scaling runs: every rtcdn process capped at this fraction of a core (cgroups; default 0.3, 0 = no scaling runs)",
    )
    add("--cap-workers", default="1,2", help="worker counts of the scaling runs (default 1,2)")
    add(
        "--cap-players",
        default="20,40,60,80,100,120,140,160,180,200",
        help="player counts of the scaling runs (default 20,40,...,200)",
    )
    add(
        "--janus-configs",
        default="event_loops=1,default",
        help="Janus configurations: event_loops=K and/or default (default: event_loops=1,default)",
    )
    add("--keep-going", action="store_true", help="run every N even after loss or a saturated generator")
    add("--processes", type=int, default=4, help="player processes (default 4)")
    add("--join-concurrency", type=int, default=8, help="concurrent joins per process (default 8)")
    add(
        "--uvloop",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run the player processes on uvloop (default: when installed)",
    )
    add("--timed-players", type=int, default=2, help="players measuring the delay, in the feed's process")
    add(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="server on CPU 0, the rest on the others",
    )
    add("--address", default="127.0.0.61", help="rtcdn's bind address (default 127.0.0.61)")
    add("--client-address", default="127.0.0.62", help="address rtcdn's publisher and players gather on")
    add("--ws-port", type=int, default=8080)
    add("--http-port", type=int, default=8081)
    add("--media-ports", default="31000-31999")
    add("--janus-address", default="127.0.0.1", help="Janus's HTTP API address (default 127.0.0.1)")
    add("--janus-http-port", type=int, default=8088)
    add(
        "--janus-interface",
        help="interface Janus and its players use for ICE (default: the first non-loopback)",
    )
    add("--size", default="1280x720")
    add("--fps", type=int, default=30)
    add("--bitrate", type=int, default=1_500_000, help="video bits/s (default 1500000)")
    add("--output", type=Path, default=RESULTS / "latest.json")
    add("--plot", type=Path, default=RESULTS / "cpu_vs_players.png")
    add("--logs", type=Path, help="keep every server log in this folder")
    args = parser.parse_args(argv)
    args.counts = sorted({int(x) for x in args.players.split(",") if x.strip()})
    args.cap_counts = sorted({int(x) for x in args.cap_players.split(",") if x.strip()})
    if not args.counts or args.counts[0] < 1 or not args.cap_counts or args.cap_counts[0] < 1:
        parser.error("--players, --cap-players: counts must be >= 1")
    workers = [int(x) for x in args.workers.split(",") if x.strip() and int(x) > 0]
    if args.uvloop is None:
        args.uvloop = has_uvloop()
        if not args.uvloop:
            print(
                "uvloop is not installed (.venv/bin/pip install uvloop): players on asyncio's loop, ~5x the CPU"
            )

    cpus = args.cpus = sorted(os.sched_getaffinity(0))
    server_cpus, generator_cpus = (cpus[:1], cpus[1:]) if args.pin and len(cpus) > 1 else (None, None)

    width, height = (int(x) for x in args.size.split("x"))
    started = time.monotonic()
    video = encode_video(width, height, args.fps, 10, args.bitrate, gop_seconds=2)
    audio = encode_audio(10)
    clip = (
        f"VP8 {width}x{height}@{args.fps} {video.bitrate / 1e6:.2f} Mbps, keyframe every 2 s + Opus "
        f"{audio.bitrate / 1e3:.0f} kbps, {video.seconds:.0f} s loop"
    )
    print(f"clip: {clip} (encoded in {time.monotonic() - started:.1f} s); CPUs {cpus}", flush=True)
    if server_cpus:
        print(
            f"pinning: servers (but rtcdn --workers 2) on CPU {server_cpus}, load generator on {generator_cpus}"
        )

    setups: list[Setup] = []
    skipped: dict[str, str] = {}
    for k in workers:
        if k > 1 and not rtcdn_has_workers():
            skipped[f"rtcdn workers={k}"] = "this rtcdn's `serve` has no --workers option yet"
            print(f"rtcdn workers={k}: skipped: {skipped[f'rtcdn workers={k}']}", flush=True)
            continue
        setups.append(rtcdn_setup(args, k, server_cpus if k == 1 else None, video, audio))
    cap_workers = (
        [int(x) for x in args.cap_workers.split(",") if x.strip() and int(x) > 0] if args.cap else []
    )
    why = caps_unavailable() if cap_workers else ""
    for k in cap_workers:
        if why or (k > 1 and not rtcdn_has_workers()):
            label = f"rtcdn workers={k} cap={args.cap:g}"
            skipped[label] = why or "this rtcdn's `serve` has no --workers option yet"
            print(f"{label}: skipped: {skipped[label]}", flush=True)
        else:
            setups.append(rtcdn_setup(args, k, None, video, audio, cpu_cap=args.cap))
    if not args.no_janus:
        why = janus_available()
        if not why and args.janus_interface is None:
            found = interface_address()
            why = "" if found else "no non-loopback IPv4 interface for Janus's ICE candidates"
            args.janus_interface = found
        elif not why:
            addresses = {n: a for n, a in _ipv4_addresses().items() if n == args.janus_interface}
            why = "" if addresses else f"interface {args.janus_interface} has no IPv4 address"
            args.janus_interface = (args.janus_interface, addresses.get(args.janus_interface, ""))
        for config in (c.strip() for c in args.janus_configs.split(",") if c.strip()):
            loops = None if config == "default" else int(config.split("=")[1])
            if why:
                skipped[f"janus {config}"] = why
                print(f"janus {config}: skipped: {why}", flush=True)
            else:
                setups.append(janus_setup(args, loops, server_cpus, video, audio))

    psutil.cpu_percent()
    time.sleep(1)
    idle = psutil.cpu_percent()
    if idle > 10:
        print(
            f"warning: the machine is busy before the benchmark ({idle:.0f} % of all CPUs): figures will be disturbed"
        )
    results = [run_setup(s, args, None if s.server_cpus is None else generator_cpus) for s in setups]
    by_label = {f"{r['server']} {r['config']}": r["levels"] for r in results if not r["cpu_cap"]}
    capped = {f"{r['server']} {r['config']}": r for r in results if r["cpu_cap"]}
    levels = [level for r in results for level in r["levels"]]

    print()
    print(table(levels) if levels else "no results")
    print(LEGEND)
    compare = ratios(by_label)
    if compare:
        print()
        print(ratio_table([r for r in compare if r["rtcdn"] == "rtcdn workers=1"] or compare))
        print(
            "rtcdn / Janus at the same N: < 1 means rtcdn uses less (CPU, RSS) or is faster (delay, keyframe)."
        )

    summary: dict[str, Any] = {}
    print()
    for r in results:
        label = f"{r['server']} {r['config']}"
        n_held, n_fast = held(r["levels"]), held(r["levels"], DELAY_LIMIT_MS)
        saturated = next((lv["players"] for lv in r["levels"] if lv["generator_saturated"]), None)
        summary[label] = {
            "max_players_held": n_held,
            "max_players_held_delay_p99_under_200ms": n_fast,
            "generator_saturated_at": saturated,
        }
        why = r["failure"] or r["stopped_because"] or "every N ran"
        print(
            f"{label}: largest N held with < {LOSS_LIMIT} % loss: {n_held if n_held is not None else 'none'}"
            f" (and delay p99 < {DELAY_LIMIT_MS:.0f} ms: {n_fast if n_fast is not None else 'none'}); {why}; "
            f"server exit code {r['exit_code']}"
        )
        if r["levels"]:
            kept = [lv for lv in r["levels"] if (lv["loss_pct"] or 0) < LOSS_LIMIT]
            top = (kept or r["levels"])[-1]  # a server that drops packets sends the players less
            per_player = top["player_processes_cpu_pct"] / top["players"]
            capacity = (GENERATOR_LIMIT * top["generator_cores"] - top["feed_process_cpu_pct"]) / per_player
            summary[label].update(
                generator_cpu_per_player_pct=per_player, generator_capacity_players=round(capacity)
            )
            print(
                f"    load generator: {per_player:.3f} % of a core per player ({'uvloop' if args.uvloop else 'asyncio'}"
                f" players): {top['generator_cpu_pct']:.0f} % CPU of its {100 * top['generator_cores']} % "
                f"({top['generator_cores']} core(s)) at N={top['players']}; saturated "
                + (f"at N={saturated}" if saturated else f"near N~{capacity:.0f} (extrapolated)")
            )
        busy = [lv["players"] for lv in r["levels"] if lv["others_cpu_pct"] > 15]
        if busy:
            print(f"    warning: other processes used > 15 % of a core during N={busy}: figures disturbed")
    single = by_label.get("rtcdn workers=1", [])
    n_held = held(single)
    players_per_core = None
    if n_held:
        level = next(lv for lv in single if lv["players"] == n_held)
        players_per_core = 100 / level["cpu_per_player_pct"]
        print(f"rtcdn, one worker: {players_per_core:.0f} players per core (100 / CPU%/player at N={n_held})")
    scaling = scaling_summary(capped)
    if scaling:
        print(scaling["line"])
    for label, reason in skipped.items():
        print(f"{label}: skipped: {reason}")

    subtitle = f"{clip}; {platform.node()} {len(cpus)} CPUs"
    problem = plot(by_label, args.plot, subtitle)
    print(problem or f"written: {os.path.relpath(args.plot)}")

    report = {
        "benchmark": "perf",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cores": len(cpus), "python": platform.python_version(), "platform": platform.platform()},
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "clip": {
            "video": f"VP8 {width}x{height}@{args.fps}",
            "video_bitrate": round(video.bitrate),
            "audio_bitrate": round(audio.bitrate),
            "gop_seconds": 2,
        },
        "players_per_core": players_per_core,
        "players_per_core_at": n_held,
        "scaling": scaling,
        "summary": summary,
        "skipped": skipped,
        "ratios": compare,
        "servers": [{k: v for k, v in r.items() if k != "levels"} for r in results],
        "runs": levels,
    }
    write_results(args.output, report)
    return 0


def _ipv4_addresses() -> dict[str, str]:
    import socket

    return {
        name: a.address
        for name, addresses in psutil.net_if_addrs().items()
        for a in addresses
        if a.family == socket.AF_INET
    }


if __name__ == "__main__":
    sys.exit(main())
