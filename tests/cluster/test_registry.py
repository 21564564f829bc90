"""cluster.registry on a real redis-server: claims owned by one node (Lua CAS), heartbeats, TTLs,
hostile values, and a Redis that is gone or hangs (a RegistryError within the timeout)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as redis

from redis_server import RedisServer, free_port
from rtcdn.cluster import Address, Claim, NodeRecord, Registry, RegistryError, connect
from rtcdn.cluster.records import decode_claim, decode_node

A = Address("127.0.0.5", 8080, 8443, 8081, 1935)


def claim(name: str, node: str, boot: str = "b") -> Claim:
    return Claim(name, node, boot, A, time.time())


def record(node: str, **extra: object) -> NodeRecord:
    return NodeRecord(node, "b", "edge", A, ts=time.time(), **extra)  # type: ignore[arg-type]


@pytest.fixture
async def registry(redis_server: RedisServer) -> AsyncIterator[Registry]:
    reg = Registry(connect(redis_server.url), "test")
    yield reg
    await reg.close()


async def test_a_name_is_held_by_one_node_until_released(registry: Registry) -> None:
    assert await registry.claim(claim("cam", "n1"), 5000) is None
    holder = await registry.claim(claim("cam", "n2"), 5000)
    assert holder is not None and holder.node == "n1"
    assert await registry.claim(claim("cam", "n1", boot="restarted"), 5000) is None  # same node: its own
    await registry.release("cam", "n2")  # not n2's: nothing happens
    found = await registry.lookup("cam")
    assert found is not None and found.node == "n1" and found.boot == "restarted"
    await registry.release("cam", "n1")
    assert await registry.lookup("cam") is None
    assert await registry.claim(claim("cam", "n2"), 5000) is None


async def test_heartbeat_refreshes_records_and_reports_conflicts(registry: Registry) -> None:
    assert await registry.claim(claim("taken", "other"), 5000) is None
    held = await registry.heartbeat(
        record("n1", carrying=("x",)), [claim("mine", "n1"), claim("taken", "n1")], 5000, 0
    )
    assert held["mine"] is None
    assert held["taken"] is not None and held["taken"].node == "other"
    nodes = await registry.nodes(5000)
    assert [(n.id, n.carrying) for n in nodes] == [("n1", ("x",))]
    assert {c.name for c in await registry.claims()} == {"mine", "taken"}


async def test_records_and_claims_go_with_their_ttl(registry: Registry) -> None:
    await registry.heartbeat(record("n1"), [claim("cam", "n1")], 300, 0)
    assert len(await registry.nodes(300)) == 1
    await asyncio.sleep(0.5)
    assert await registry.nodes(300) == []
    assert await registry.lookup("cam") is None


async def test_a_clean_leave_removes_everything_of_the_node(registry: Registry) -> None:
    await registry.heartbeat(record("n1"), [claim("a", "n1"), claim("b", "n1")], 5000, 0)
    await registry.claim(claim("c", "n2"), 5000)
    await registry.leave("n1", ["a", "b", "c"])
    assert await registry.nodes(5000) == []
    assert [c.name for c in await registry.claims()] == ["c"]


async def test_hostile_values_are_skipped(registry: Registry, redis_server: RedisServer) -> None:
    raw = redis.Redis.from_url(redis_server.url)
    try:
        prefix = registry.prefix
        await raw.set(f"{prefix}stream:bad", b"\xff{not json")
        await raw.set(f"{prefix}stream:deep", "[" * 5000 + "]" * 5000)
        await raw.set(f"{prefix}stream:odd", '{"name": 1, "node": [], "boot": "x", "address": {"ip": "a"}}')
        await raw.set(
            f"{prefix}node:evil",
            '{"id": "evil", "boot": "b", "role": "edge", "address": {"ip": "x", "ws": -1}}',
        )
        await raw.zadd(f"{prefix}nodes", {"evil": int(time.time() * 1000)})
        assert await registry.claims() == []
        assert await registry.nodes(5000) == []
        assert await registry.lookup("bad") is None
        # a name held by a value nobody can parse is still not free
        holder = await registry.claim(claim("bad", "n1"), 5000)
        assert holder is not None and holder.node != "n1"
    finally:
        await raw.aclose()


def test_decoders_refuse_what_does_not_fit() -> None:
    one = claim("x", "n")
    assert decode_claim(one.encode()) == decode_claim(one.encode().encode()) == one
    for text in (
        None,
        "",
        "null",
        "[]",
        '{"name": "x"}',
        "1e999",
        '{"name":"x","node":"n","boot":"b","address":{"ip":""}}',
    ):
        assert decode_claim(text) is None
        assert decode_node(text) is None
    rec = record("n1", groups=("eu",), upstreams={"cam": "origin1"})
    assert decode_node(rec.encode()) == rec


async def test_an_unreachable_or_hung_redis_is_an_error_within_the_timeout(redis_server: RedisServer) -> None:
    closed = Registry(connect("redis://127.0.0.1:1/0"), "test")
    with pytest.raises(RegistryError, match="lookup"):
        await closed.lookup("x")
    assert not closed.up and closed.failures == 1
    await closed.close()

    reg = Registry(connect(redis_server.url), "test")
    await reg.lookup("x")
    assert reg.up
    assert redis_server.proc is not None
    os.kill(redis_server.proc.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        with pytest.raises(RegistryError):
            await reg.heartbeat(record("n1"), [claim("cam", "n1")], 5000, 0)
        assert time.monotonic() - started < 3.0
        assert not reg.up
    finally:
        os.kill(redis_server.proc.pid, signal.SIGCONT)
    await asyncio.sleep(0.1)
    await reg.heartbeat(record("n1"), [claim("cam", "n1")], 5000, 0)  # heals by itself
    assert reg.up
    await reg.close()


def test_sentinel_urls_name_their_master() -> None:
    client = connect("redis+sentinel://u:p@127.0.0.1:26379,127.0.0.2:26380/mymaster/2")
    assert client.connection_pool.service_name == "mymaster"  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="names the master"):
        connect("redis+sentinel://127.0.0.1:26379")


@pytest.fixture
def sentinel_url(redis_server: RedisServer, tmp_path: Path) -> Iterator[str]:
    """A real Sentinel (``redis-server --sentinel``) monitoring the test's redis-server as ``mymaster``."""
    port = free_port(redis_server.host)
    conf = tmp_path / "sentinel.conf"
    conf.write_text(
        f"port {port}\nbind {redis_server.host}\nprotected-mode no\ndir {tmp_path}\n"
        f"sentinel monitor mymaster {redis_server.host} {redis_server.port} 1\n"
    )
    binary = shutil.which("redis-server")
    assert binary is not None
    proc = subprocess.Popen(
        [binary, str(conf), "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        yield f"redis+sentinel://{redis_server.host}:{port}/mymaster"
    finally:
        proc.terminate()
        proc.wait(5)


async def test_a_registry_behind_sentinel(sentinel_url: str) -> None:
    """The ``redis+sentinel://`` URL finds the master through a real Sentinel."""
    reg = Registry(connect(sentinel_url), "test")
    try:
        async with asyncio.timeout(10):
            while True:
                try:
                    assert await reg.claim(claim("cam", "n1"), 5000) is None
                    break
                except RegistryError:
                    await asyncio.sleep(0.1)  # the sentinel is starting
        found = await reg.lookup("cam")
        assert found is not None and found.node == "n1"
    finally:
        await reg.close()


async def test_a_tls_registry_needs_its_ca_and_says_why_otherwise(tmp_path: Path) -> None:
    server = RedisServer("127.0.0.1", free_port("127.0.0.1"), tmp_path / "redis", tls=True)
    server.start()
    try:
        good = Registry(connect(server.url), "test")
        assert await good.claim(claim("cam", "n1"), 5000) is None
        found = await good.lookup("cam")
        assert found is not None and found.node == "n1"
        await good.close()
        plain_port = f"127.0.0.1:{server.port}/0"
        for url, why in (
            (f"rediss://{plain_port}", "certificate verify failed"),  # the system's CAs: self-signed refused
            (f"redis://{plain_port}", "ConnectionError"),  # plain text to a TLS port: reset
        ):
            bad = Registry(connect(url, timeout=2), "test")
            started = time.monotonic()
            with pytest.raises(RegistryError, match=why) as caught:
                await bad.lookup("cam")
            assert time.monotonic() - started < 5 and str(caught.value), url
            assert not bad.up
            await bad.close()
    finally:
        server.stop()
