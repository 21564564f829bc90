"""bench/perf.py's servers under test: rtcdn with K workers and Janus, each as a :class:`Setup`.

A setup says how to start its server in a folder, which processes are the server's (for CPU and
RSS), where players and the feed go, which CPUs it is pinned to, and which viewer kind plays.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import psutil  # type: ignore[import-untyped]

from _janus import MOUNTPOINT, RTP_ADDRESS, JanusServer
from _media import Clip
from _perf_players import STREAM, Feed, Target
from _procs import ServerProcess


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
    """One server configuration of the benchmark, played by one kind of viewer."""

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
    repeat: int = 1
    "Which of the ``--repeat`` rounds (setups of one round are compared with each other)."

    @property
    def viewer(self) -> str:
        return self.players.viewer

    @property
    def label(self) -> str:
        return f"{self.server} {self.config} {self.viewer}" + (f" #{self.repeat}" if self.repeat > 1 else "")


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
    viewer: str,
    cpu_cap: float | None = None,
    repeat: int = 1,
    native: bool = True,
) -> Setup:
    """rtcdn with ``workers``; ``native=False`` sends players' RTP from Python (``webrtc_native_send``)."""
    ws_url = f"ws://{args.address}:{args.ws_port}"
    http = f"http://{args.address}:{args.http_port}"

    def make(folder: Path) -> Server:
        options = {"--http-ports": str(args.http_port)}
        if workers > 1:
            options["--workers"] = str(workers)
        return ServerProcess(
            f"rtcdn-w{workers}",
            args.address,
            folder,
            args.media_ports,
            ws_port=args.ws_port,
            options=options,
            properties={} if native else {"webrtc_native_send": "false"},
        )

    def ready(server: Server) -> None:
        """Wait until the stream is live on every worker (workers > 0 get it over a relay)."""
        deadline = time.monotonic() + 30
        for k in range(1, workers):
            url = f"http://{args.address}:{args.http_port + 1000 * k}/rest-api/stream/find"
            while not published(url):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"stream {STREAM!r} not on worker {k} ({url}) within 30 s")
                time.sleep(0.2)

    balancer = f"{http}/balancer" if workers > 1 else ""
    players = Target("rtcdn", ws_url, STREAM, args.client_address, balancer, viewer)
    publisher = Target("rtcdn", ws_url, STREAM, args.client_address)
    return Setup(
        "rtcdn",
        f"workers={workers}" + (f" cap={cpu_cap:g}" if cpu_cap else "") + ("" if native else " python-send"),
        workers,
        make,
        _rtcdn_processes,
        players,
        Feed(publisher, players, video, audio),
        cpus,
        ready,
        cpu_cap,
        args.cap_counts if cpu_cap else None,
        repeat,
    )


def published(url: str) -> bool:
    """Whether the REST API at ``url`` (``.../stream/find``) says :data:`STREAM` is being published."""
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
    args: argparse.Namespace,
    event_loops: int | None,
    cpus: list[int] | None,
    video: Clip,
    audio: Clip,
    viewer: str,
    repeat: int = 1,
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
    target = Target("janus", api, str(MOUNTPOINT), address, viewer=viewer)
    feed = Feed(target, target, video, audio, RTP_ADDRESS, video_port=5004, audio_port=5002)
    config = "default" if event_loops is None else f"event_loops={event_loops}"
    return Setup("janus", config, 1, make, _janus_processes, target, feed, cpus, repeat=repeat)


def rtcdn_has_workers() -> bool:
    """Whether this rtcdn's ``serve`` takes ``--workers``."""
    help_text = subprocess.run(
        [sys.executable, "-m", "rtcdn", "serve", "--help"], capture_output=True, text=True, timeout=30
    ).stdout
    return "--workers" in help_text


def ipv4_addresses() -> dict[str, str]:
    """Interface name → its IPv4 address."""
    return {
        name: a.address
        for name, addresses in psutil.net_if_addrs().items()
        for a in addresses
        if a.family == socket.AF_INET
    }
