"""The registry of a dynamic CDN on Redis (redis-py's asyncio client): node records, stream claims.

Keys, all under ``rtcdn:{<cluster>}:`` (one hash tag, so a Redis Cluster keeps them on one shard):

* ``node:<id>`` — the node's :class:`~.records.NodeRecord`, ``PX`` its TTL (or ``cdn_nodes_timeout``
  when that is longer: the node is then listed PASSIVE until it goes);
* ``nodes`` — a sorted set of node ids scored by their last write (ms), for listing without SCAN;
* ``stream:<name>`` — the :class:`~.records.Claim` of the node publishing ``name``: taken, refreshed
  and deleted only through :data:`CLAIM_SCRIPT`/:data:`RELEASE_SCRIPT`, which check the owner.

Only Redis 7.0 commands (Valkey works). Every call has a short timeout and raises
:class:`RegistryError` for any failure: the registry is soft state, a node that cannot reach it
keeps serving and writes everything again on the next heartbeat that succeeds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from .records import Address, Claim, NodeRecord, decode_claim, decode_node

logger = logging.getLogger(__name__)

T = TypeVar("T")

OP_TIMEOUT = 1.0
"Seconds any registry call may take (a Redis that hangs is a Redis that is down)."

CLAIM_SCRIPT = """
local v = redis.call('GET', KEYS[1])
if v then
  local ok, cur = pcall(cjson.decode, v)
  if not (ok and type(cur) == 'table' and cur['node'] == ARGV[1]) then return v end
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
"""
"Take or refresh a claim: only when the key is free or already this node's; else the holder's value."

RELEASE_SCRIPT = """
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local ok, cur = pcall(cjson.decode, v)
if ok and type(cur) == 'table' and cur['node'] == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RegistryError(Exception):
    """The registry could not be reached or answered nonsense; ``str()`` says how."""


def connect(url: str, timeout: float = OP_TIMEOUT) -> redis.Redis:
    """A client for ``redis://``, ``rediss://``, ``unix://`` or ``redis[s]+sentinel://h:p,h:p/master[/db]``
    (no connection is made yet). Retries are off: the heartbeat is the retry."""
    options: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(NoBackoff(), 0),
        "decode_responses": False,  # values are decoded defensively (records.py): bad UTF-8 is no crash
    }
    if "+sentinel://" not in url:
        return redis.Redis.from_url(url, **options)
    parts = urlsplit(url)
    hosts = []
    for item in parts.netloc.rpartition("@")[2].split(","):
        host, _, port = item.rpartition(":") if ":" in item else (item, "", "26379")
        hosts.append((host.strip("[]"), int(port)))
    path = [p for p in parts.path.split("/") if p]
    if not path:
        raise ValueError(f"{url}: a Sentinel URL names the master: redis+sentinel://host:port/NAME")
    if parts.username or parts.password:
        options["username"] = unquote(parts.username) if parts.username else None
        options["password"] = unquote(parts.password) if parts.password else None
    if parts.scheme.startswith("rediss"):
        options["ssl"] = True
    db = int(path[1]) if len(path) > 1 else 0
    sentinel = Sentinel(hosts, sentinel_kwargs={"socket_timeout": timeout}, **options)  # type: ignore[no-untyped-call]
    client: redis.Redis = sentinel.master_for(path[0], db=db)
    return client


class Registry:
    """One node's view of the registry. Lifecycle: made with a client; :meth:`close` closes it."""

    def __init__(self, client: redis.Redis, cluster: str) -> None:
        self._redis = client
        self.prefix = f"rtcdn:{{{cluster}}}:"
        self._claim = client.register_script(CLAIM_SCRIPT)
        self._release = client.register_script(RELEASE_SCRIPT)
        self.up = False
        self.last_ok = 0.0
        "Monotonic time of the last call that succeeded (0: never)."
        self.failures = 0
        self.last_error = "not contacted yet"

    def _key(self, kind: str, name: str = "") -> str:
        return f"{self.prefix}{kind}{':' + name if name else ''}"

    async def _call(self, what: str, op: Callable[[], Awaitable[T]]) -> T:
        try:
            async with asyncio.timeout(OP_TIMEOUT * 2):
                result = await op()
        except (RedisError, OSError, TimeoutError, ValueError) as exc:
            self.failures += 1
            self.last_error = f"{what}: {type(exc).__name__}: {exc}".rstrip(": ")
            if self.up:
                logger.warning("registry: unreachable (%s)", self.last_error)
            self.up = False
            raise RegistryError(self.last_error) from None
        if not self.up:
            logger.info("registry: reachable")
        self.up, self.last_ok = True, time.monotonic()
        return result

    # --- writes ---------------------------------------------------------------------------------
    async def heartbeat(
        self, record: NodeRecord, claims: Iterable[Claim], ttl_ms: int, keep_ms: int
    ) -> dict[str, Claim | None]:
        """Write the node record and refresh (or take again) every claim, in one round trip.
        Returns, per claim, None when it is this node's, else the claim holding the name."""
        claims = list(claims)
        now_ms = int(record.ts * 1000)

        async def op() -> list[Any]:
            async with self._redis.pipeline(transaction=False) as pipe:  # reset (connection back) on error
                pipe.set(self._key("node", record.id), record.encode(), px=max(ttl_ms, keep_ms))
                pipe.zadd(self._key("nodes"), {record.id: now_ms})
                pipe.zremrangebyscore(self._key("nodes"), "-inf", now_ms - max(ttl_ms, keep_ms))
                for claim in claims:
                    key = self._key("stream", claim.name)
                    await self._claim(keys=[key], args=[claim.node, claim.encode(), ttl_ms], client=pipe)
                return list(await pipe.execute())

        results = await self._call("heartbeat", op)
        return {c.name: _holder(r) for c, r in zip(claims, results[3:], strict=True)}

    async def claim(self, claim: Claim, ttl_ms: int) -> Claim | None:
        """Take ``claim.name`` for ``claim.node``: None if it is ours now, else the holder's claim."""
        key = self._key("stream", claim.name)
        result = await self._call(
            "claim", lambda: self._claim(keys=[key], args=[claim.node, claim.encode(), ttl_ms])
        )
        return _holder(result)

    async def release(self, name: str, node_id: str) -> None:
        key = self._key("stream", name)
        await self._call("release", lambda: self._release(keys=[key], args=[node_id]))

    async def leave(self, node_id: str, names: Iterable[str]) -> None:
        """A clean stop: the node's record, its place in ``nodes`` and its claims go at once."""

        async def op() -> None:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.delete(self._key("node", node_id))
                pipe.zrem(self._key("nodes"), node_id)
                for name in names:
                    await self._release(keys=[self._key("stream", name)], args=[node_id], client=pipe)
                await pipe.execute()

        await self._call("leave", op)

    # --- reads ----------------------------------------------------------------------------------
    async def lookup(self, name: str) -> Claim | None:
        """The claim of ``name`` (None: nobody publishes it)."""
        text = await self._call("lookup", lambda: self._redis.get(self._key("stream", name)))
        return decode_claim(text)

    async def nodes(self, keep_ms: int) -> list[NodeRecord]:
        """Every node written within ``keep_ms`` (their records as written; malformed ones skipped)."""

        async def op() -> list[Any]:
            since = int(time.time() * 1000) - keep_ms
            ids = [_text(i) for i in await self._redis.zrangebyscore(self._key("nodes"), since, "+inf")]
            if not ids:
                return []
            return list(await self._redis.mget([self._key("node", i) for i in ids]))

        texts = await self._call("nodes", op)
        return [r for r in map(decode_node, texts) if r is not None]

    async def claims(self, limit: int = 10000) -> list[Claim]:
        """Every stream claim (at most ``limit``; SCAN, so it never blocks Redis)."""

        async def op() -> list[Any]:
            keys: list[Any] = []
            async for key in self._redis.scan_iter(match=self._key("stream", "*"), count=500):
                keys.append(key)
                if len(keys) >= limit:
                    break
            return list(await self._redis.mget(keys)) if keys else []

        texts = await self._call("claims", op)
        return [c for c in map(decode_claim, texts) if c is not None]

    async def close(self) -> None:
        try:
            await self._redis.aclose()
        except (RedisError, OSError):
            pass


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _holder(result: Any) -> Claim | None:
    """A claim script's answer: 1 (ours) → None; the holder's value → its claim."""
    if result == 1:
        return None
    holder = decode_claim(result if isinstance(result, str | bytes) else None)
    if holder is None:  # held, by something that does not parse: still not ours
        return Claim("?", "?", "?", Address("?"), 0.0)
    return holder
