"""The processes of tests/e2e/test_cluster.py: a real ``redis-server`` (the registry) on 127.0.0.139
and ``rtcdn serve`` nodes of one dynamic CDN on 127.0.0.140-149, each configured by its own
flashphoner.properties; plus the REST and polling helpers the tests share."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest

from redis_server import RedisServer, free_port

from .conftest import WEBSDK, error_lines, supervised
from .pages import LiveServer

T = TypeVar("T")

REDIS_HOST = "127.0.0.139"
HEARTBEAT_S, TTL_S, CLOSE_AFTER_S = 0.5, 2.5, 2.0
"cdn_heartbeat_interval, cdn_node_ttl and cdn_pull_close_after of every node, in seconds."


@dataclass(frozen=True)
class Spec:
    """One node: its ``node_id``, loopback address and ``cdn_role``."""

    id: str
    host: str
    role: str


def properties(spec: Spec, registry_url: str) -> str:
    return (
        "cdn_enabled=true\n"
        f"cdn_role={spec.role}\n"
        f"cdn_registry_url={registry_url}\n"
        f"node_id={spec.id}\n"
        f"cdn_heartbeat_interval={int(HEARTBEAT_S * 1000)}\n"
        f"cdn_node_ttl={int(TTL_S * 1000)}\n"
        f"cdn_pull_close_after={int(CLOSE_AFTER_S * 1000)}\n"
    )


@contextlib.contextmanager
def node_process(host: str, workdir: Path, config: str) -> Iterator[LiveServer]:
    """``rtcdn serve --bind host --config-dir workdir`` as conftest's ``rtcdn_process`` runs it, and
    checked as strictly at the end (SIGTERM → exit 0, no ERROR or traceback in its log);
    a node the test SIGKILLed is only reaped."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "flashphoner.properties").write_text(config)
    cmd = [sys.executable, "-m", "rtcdn", "serve", "--bind", host, "--config-dir", str(workdir)]
    cmd += ["--state-dir", str(workdir / "state"), "--websdk-dir", str(WEBSDK)]
    runs = len(list(workdir.glob("rtcdn*.log")))
    log = workdir / (f"rtcdn-{runs + 1}.log" if runs else "rtcdn.log")  # a restarted node: a log of its own
    with supervised(cmd, log, f"rtcdn on {host}") as pid:
        yield LiveServer(host, "VP8", workdir, pid)


@dataclass
class Cluster:
    """The registry and the running nodes. Every process is entered into ``stack``, so the module
    fixture's exit ends them all (SIGTERM, exit 0 and a log without ERROR checked, as for every
    e2e server), also when a test failed; a node killed with :meth:`kill` is only reaped."""

    redis: RedisServer
    base: Path
    stack: contextlib.ExitStack
    running: dict[str, tuple[Spec, LiveServer]] = field(default_factory=dict)

    @classmethod
    @contextlib.contextmanager
    def run(cls, base: Path, specs: tuple[Spec, ...]) -> Iterator[Cluster]:
        with contextlib.ExitStack() as stack:
            redis = RedisServer(REDIS_HOST, free_port(REDIS_HOST), base / "redis")
            stack.callback(redis.stop)
            redis.start()
            cluster = cls(redis, base, stack)
            for spec in specs:
                cluster.start(spec)
            yield cluster

    def start(self, spec: Spec) -> LiveServer:
        """``rtcdn serve`` of ``spec`` (again, after a kill: same address and config dir)."""
        assert spec.id not in self.running, f"{spec.id} runs already"
        assert spec.host.startswith("127.0.0.14") and len(spec.host) == 11, spec.host
        workdir = self.base / spec.id
        server = self.stack.enter_context(node_process(spec.host, workdir, properties(spec, self.redis.url)))
        self.running[spec.id] = (spec, server)
        return server

    def ensure(self, spec: Spec) -> LiveServer:
        """The node of ``spec``, started now if it is not running (a test run on its own)."""
        return self.running[spec.id][1] if spec.id in self.running else self.start(spec)

    def server(self, spec: Spec) -> LiveServer:
        if spec.id not in self.running:
            pytest.fail(f"node {spec.id} is not running (an earlier test killed it?)")
        return self.running[spec.id][1]

    def errors(self) -> dict[str, list[str]]:
        """The ERROR and traceback lines logged so far, by node (the running ones)."""
        logs = {
            i: [
                line
                for log in s.workdir.glob("rtcdn*.log")
                for line in error_lines(log.read_text(errors="replace"))
            ]
            for i, (_, s) in self.running.items()
            if s.workdir is not None
        }
        return {i: lines for i, lines in logs.items() if lines}

    def kill(self, spec: Spec) -> None:
        """SIGKILL, and wait until the process is gone (its sockets are closed)."""
        _, server = self.running.pop(spec.id)
        os.kill(server.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                state = Path(f"/proc/{server.pid}/stat").read_text().rpartition(")")[2].split()[0]
            except (FileNotFoundError, IndexError):
                return
            if state in ("Z", "X"):
                return
            time.sleep(0.02)
        pytest.fail(f"{spec.id} (pid {server.pid}) still alive 10 s after SIGKILL")


# --- REST ----------------------------------------------------------------------------------------


async def rest(server: LiveServer, method: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    """``POST /rest-api/<method>``: (HTTP status, JSON answer)."""
    timeout = aiohttp.ClientTimeout(total=5)
    async with (
        aiohttp.ClientSession(timeout=timeout) as http,
        http.post(f"{server.rest_url}/{method}", json=body or {}) as resp,
    ):
        return resp.status, await resp.json()


async def ok(server: LiveServer, method: str) -> Any:
    code, answer = await rest(server, method)
    assert code == 200, (server.host, method, code, answer)
    return answer


async def balancer(server: LiveServer, stream: str | None = None) -> dict[str, Any]:
    """``GET /balancer[?streamName=]`` of ``server``: the edge it sends a player to."""
    query = {"streamName": stream} if stream else {}
    timeout = aiohttp.ClientTimeout(total=5)
    async with (
        aiohttp.ClientSession(timeout=timeout) as http,
        http.get(f"http://{server.host}:8081/balancer", params=query) as resp,
    ):
        assert resp.status == 200, await resp.text()
        answer: dict[str, Any] = await resp.json()
        return answer


async def picks(server: LiveServer, n: int, stream: str | None = None) -> list[str]:
    """The ``node`` of ``n`` balancer answers."""
    return [str((await balancer(server, stream))["node"]) for _ in range(n)]


async def node_states(server: LiveServer) -> dict[str, str]:
    """``/rest-api/cdn/nodes`` of ``server``: node id -> ACTIVE / PASSIVE."""
    return {n["id"]: n["state"] for n in await ok(server, "cdn/nodes")}


async def pulls(server: LiveServer, name: str) -> list[dict[str, Any]]:
    """The relay records of ``server`` (``/pull/find_all``) that pull ``name`` in."""
    code, found = await rest(server, "pull/find_all")
    if code == 404:
        return []
    assert code == 200, found
    return [r for r in found if r["direction"] == "pull" and r["localStreamName"] == name]


async def metric(server: LiveServer, name: str) -> float:
    """A sample without labels from ``/metrics`` of ``server``."""
    timeout = aiohttp.ClientTimeout(total=5)
    async with (
        aiohttp.ClientSession(timeout=timeout) as http,
        http.get(f"http://{server.host}:8081/metrics") as resp,
    ):
        text = await resp.text()
    for line in text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    raise AssertionError(f"no {name} in /metrics of {server.host}")


async def until(
    check: Callable[[], Awaitable[T]], what: str, timeout: float = 10.0, every: float = 0.05
) -> tuple[T, float]:
    """Poll ``check`` until it returns something truthy: (that value, seconds it took)."""
    start = time.monotonic()
    last: Any = None
    while True:
        last = await check()
        elapsed = time.monotonic() - start
        if last:
            return last, elapsed
        if elapsed > timeout:
            raise AssertionError(f"{what}: not after {timeout} s (last: {last!r})")
        await asyncio.sleep(every)
