"""JwksCache: the public keys of an identity server (``auth_jwt_jwks_url``), fetched with aiohttp.

Lifecycle: :meth:`JwksCache.start` opens the HTTP session and runs the refresh loop (a fetch at once,
then every ``refresh`` seconds); :meth:`key` looks a ``kid`` up and, when it is unknown, fetches the
set again (at most once per ``cooldown`` seconds: a stream of tokens with made-up kids costs one
fetch, not one each); :meth:`close` stops the loop and the session. Fetches are single-flight: every
caller waiting on a fetch shares it. A failed fetch keeps the keys already known (logged).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import jwt

from ..tasks import TaskSet
from .hooks import read_capped

logger = logging.getLogger(__name__)

MAX_JWKS_BYTES = 128 * 1024
FETCH_TIMEOUT = 5.0
COOLDOWN = 10.0
"Seconds between two fetches caused by unknown kids."

_FAMILIES = {"RSA": ("RS", "PS"), "EC": ("ES",), "OKP": ("EdDSA",)}


@dataclass(frozen=True)
class PublicKey:
    """One usable key of the set: the key object (cryptography's) and the algorithms it may verify."""

    kid: str
    key: Any
    algorithms: tuple[str, ...]


def _usable(entry: object, accepted: tuple[str, ...]) -> PublicKey | None:
    """A JWKS entry as a :class:`PublicKey`, or None: no kid, symmetric (``oct``: a shared secret
    has no business in a published key set), unknown type, or no accepted algorithm fits it."""
    if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
        return None
    kty = entry.get("kty")
    if kty not in _FAMILIES or entry.get("use", "sig") != "sig":
        return None
    alg = entry.get("alg")
    try:
        key = jwt.PyJWK(entry)
    except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
        return None
    if isinstance(alg, str):
        algorithms = tuple(a for a in accepted if a == alg)
    elif kty == "EC":  # the curve decides: P-256 → ES256, ...
        algorithms = tuple(a for a in accepted if a == key.algorithm_name)
    else:
        algorithms = tuple(a for a in accepted if a.startswith(_FAMILIES[str(kty)]))
    return PublicKey(entry["kid"], key.key, algorithms) if algorithms else None


class JwksCache:
    """The keys of one JWKS URL by kid (see the module docstring)."""

    def __init__(
        self,
        url: str,
        algorithms: tuple[str, ...],
        refresh: float = 3600.0,
        cooldown: float = COOLDOWN,
        local_address: str | None = None,
    ) -> None:
        self.url = url
        self.algorithms = algorithms
        self.refresh = refresh
        self.cooldown = cooldown
        "Seconds between two fetches caused by unknown kids (tests lower it)."
        self.keys: dict[str, PublicKey] = {}
        self.fetches = 0
        "Fetches attempted (successful or not)."
        self._local_address = local_address
        self._http: aiohttp.ClientSession | None = None
        self._fetching: asyncio.Task[None] | None = None
        self._last_fetch = -float("inf")
        self._tasks = TaskSet("jwks")

    def start(self) -> None:
        local = (self._local_address, 0) if self._local_address else None
        self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=local))
        self._tasks.spawn(self._refresh_loop(), "refresh")

    async def close(self) -> None:
        await self._tasks.close()
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def key(self, kid: str) -> PublicKey | None:
        """The key ``kid``, fetching the set again if it is unknown and the cooldown allows."""
        found = self.keys.get(kid)
        if found is None and (
            self._fetching is not None or time.monotonic() - self._last_fetch >= self.cooldown
        ):
            await self.fetch()
            found = self.keys.get(kid)
        return found

    async def only_key(self) -> PublicKey | None:
        """The one key of a set that has exactly one (for tokens without a kid)."""
        if not self.keys and self.fetches == 0:
            await self.fetch()
        return next(iter(self.keys.values())) if len(self.keys) == 1 else None

    async def fetch(self) -> None:
        """Fetch the set now, or wait for the fetch under way (never raises)."""
        if self._fetching is None:
            self._fetching = self._tasks.spawn(self._fetch(), "fetch")
        task = self._fetching
        await asyncio.wait({task})

    async def _refresh_loop(self) -> None:
        while True:
            await self.fetch()
            await asyncio.sleep(self.refresh)

    async def _fetch(self) -> None:
        self._last_fetch = time.monotonic()
        self.fetches += 1
        try:
            self.keys = await self._download()
            logger.info("jwks %s: %d key(s): %s", self.url, len(self.keys), ", ".join(self.keys) or "none")
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
            logger.warning(
                "jwks %s: fetch failed (%s); keeping %d known key(s)", self.url, exc, len(self.keys)
            )
        finally:
            self._fetching = None

    async def _download(self) -> dict[str, PublicKey]:
        if self._http is None:
            raise ValueError("not started")
        async with asyncio.timeout(FETCH_TIMEOUT):
            async with self._http.get(self.url, allow_redirects=False) as resp:
                body = await read_capped(resp.content, MAX_JWKS_BYTES)
                if resp.status != 200:
                    raise ValueError(f"HTTP {resp.status}")
        if len(body) > MAX_JWKS_BYTES:
            raise ValueError(f"key set larger than {MAX_JWKS_BYTES} bytes")
        data = json.loads(body)
        entries = data.get("keys") if isinstance(data, dict) else None
        if not isinstance(entries, list):
            raise ValueError("no 'keys' array")
        keys = {k.kid: k for k in (_usable(e, self.algorithms) for e in entries) if k is not None}
        if not keys:
            raise ValueError(f"none of {len(entries)} key(s) fits the accepted algorithms {self.algorithms}")
        return keys
