"""REST API authentication (``disable_rest_auth=false``): HTTP Basic against ``rest_users_file``,
Bearer API tokens (``rest_api_tokens``) and, through a verifier the server passes in, JWTs whose
claims carry ``{"rtcdn": {"api": true}}``.

No ``Authorization`` header (or a scheme other than Basic and Bearer) is answered 401 with
``WWW-Authenticate: Basic realm="rtcdn"``; wrong credentials 403; both after a random delay
(``rest_auth_failure_delay_ms``) that slows guessing down. scrypt runs on a thread, two at a time at
most, so the event loop (which also forwards media) never waits for it; an unknown user costs the
same scrypt as a known one. A password that was right is remembered (keyed by its HMAC under a key
of this process, never in clear), so a script polling ``find_all`` pays scrypt once.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import enum
import hashlib
import hmac
import ipaddress
import logging
import os
import random
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .users import ScryptHash, UsersFile, dummy_hash

logger = logging.getLogger(__name__)

REALM = "rtcdn"
CHALLENGE = f'Basic realm="{REALM}"'
REMEMBERED = 256
"Good (user, password) pairs kept so that repeated requests skip scrypt."
SCRYPT_THREADS = 2
LOG_EVERY = 10.0
"Seconds between two failure warnings; the ones in between are counted in the next."

TokenVerifier = Callable[[str], Awaitable[Mapping[str, Any] | None]]
"""The JWT seam: the verified claims of a token, or None when it is not valid. The server passes
one in when client tokens (``rtcdn.access``) are configured; without it, only static tokens work."""


class Verdict(enum.Enum):
    OK = "ok"
    MISSING = "missing"
    "No credentials: 401 and a challenge."
    WRONG = "wrong"
    "Credentials that do not fit: 403."


@dataclass(frozen=True)
class Outcome:
    verdict: Verdict
    who: str = ""
    "Who was let in (a user, ``token#k``, a JWT's ``sub``), or who was refused."
    reason: str = ""
    "Why a request was refused, for the log only (the answer never says which part was wrong)."


def api_granted(claims: Mapping[str, Any]) -> bool:
    """A JWT grants the REST API with ``"rtcdn": {"api": true}`` (or a flat ``"rtcdn.api": true``)."""
    grants = claims.get("rtcdn")
    return (isinstance(grants, Mapping) and grants.get("api") is True) or claims.get("rtcdn.api") is True


class RestAuth:
    """Checks ``Authorization`` headers. ``users``: the users file (None: Basic always fails);
    ``tokens``: static Bearer tokens; ``verify_jwt``: see :data:`TokenVerifier`; ``failure_delay``:
    the range, in seconds, of the pause before a 401/403."""

    def __init__(
        self,
        users: UsersFile | None = None,
        tokens: Iterable[str] = (),
        verify_jwt: TokenVerifier | None = None,
        failure_delay: tuple[float, float] = (0.1, 0.5),
    ) -> None:
        self.users = users
        self.tokens: Sequence[bytes] = tuple(t.encode("utf-8") for t in tokens if t)
        self.verify_jwt = verify_jwt
        self.failure_delay = failure_delay
        self._key = os.urandom(32)
        self._dummy = dummy_hash()
        self._remembered: OrderedDict[tuple[str, bytes], ScryptHash] = OrderedDict()
        self._scrypt_slots = asyncio.Semaphore(SCRYPT_THREADS)
        self._failures = 0
        self._logged = 0.0

    async def check(self, header: str | None) -> Outcome:
        """The verdict on an ``Authorization`` header (None: absent)."""
        if not header or not header.strip():
            return Outcome(Verdict.MISSING, reason="no Authorization header")
        scheme, _, credentials = header.strip().partition(" ")
        scheme = scheme.lower()
        if scheme == "basic":
            return await self._basic(credentials.strip())
        if scheme == "bearer":
            return await self._bearer(credentials.strip())
        return Outcome(Verdict.MISSING, reason=f"unsupported scheme {scheme[:20]!r}")

    async def _basic(self, credentials: str) -> Outcome:
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return Outcome(Verdict.WRONG, reason="malformed Basic credentials")
        name, sep, password = decoded.partition(":")
        if not sep:
            return Outcome(Verdict.WRONG, reason="malformed Basic credentials")
        if self.users is None:
            return Outcome(Verdict.WRONG, name, "Basic auth without rest_users_file")
        stored = self.users.get(name)
        key = (name, hmac.new(self._key, password.encode("utf-8"), hashlib.sha256).digest())
        if stored is not None and self._remembered.get(key) == stored:
            self._remembered.move_to_end(key)
            return Outcome(Verdict.OK, name)
        right = await self._verify(stored if stored is not None else self._dummy, password)
        if stored is None:
            return Outcome(Verdict.WRONG, name, "unknown user")
        if not right:
            return Outcome(Verdict.WRONG, name, "wrong password")
        self._remembered[key] = stored
        while len(self._remembered) > REMEMBERED:
            self._remembered.popitem(last=False)
        return Outcome(Verdict.OK, name)

    async def _verify(self, stored: ScryptHash, password: str) -> bool:
        async with self._scrypt_slots:
            return await asyncio.get_running_loop().run_in_executor(None, stored.verify, password)

    async def _bearer(self, token: str) -> Outcome:
        given = token.encode("utf-8")
        found = -1
        for k, known in enumerate(self.tokens):  # every token is compared: no early exit
            if hmac.compare_digest(given, known):
                found = k
        if found >= 0:
            return Outcome(Verdict.OK, f"token#{found + 1}")
        if self.verify_jwt is not None and token.count(".") == 2:
            try:
                claims = await self.verify_jwt(token)
            except Exception as exc:  # a broken verifier refuses, it never lets in
                logger.warning("REST auth: JWT verifier failed: %r", exc)
                return Outcome(Verdict.WRONG, reason="JWT verifier failed")
            if claims is None:
                return Outcome(Verdict.WRONG, reason="invalid JWT")
            who = str(claims.get("sub", "jwt"))
            if not api_granted(claims):
                return Outcome(Verdict.WRONG, who, 'JWT without "rtcdn": {"api": true}')
            return Outcome(Verdict.OK, who)
        return Outcome(Verdict.WRONG, reason="unknown token")

    async def refuse(self, outcome: Outcome, peer: str | None, path: str) -> None:
        """Log a refusal (at most one warning each :data:`LOG_EVERY` s) and wait the failure delay."""
        self._failures += 1
        now = time.monotonic()
        if now - self._logged >= LOG_EVERY:
            more = f" ({self._failures - 1} more since the last warning)" if self._failures > 1 else ""
            who = f" as {outcome.who!r}" if outcome.who else ""
            logger.warning("REST auth refused %s from %s%s: %s%s", path, peer, who, outcome.reason, more)
            self._logged, self._failures = now, 0
        low, high = self.failure_delay
        if high > 0:
            await asyncio.sleep(random.uniform(low, high))


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exposure_warning(bind: str, auth_enabled: bool, rest_ports: Sequence[int]) -> str | None:
    """The start-up warning when the REST API is reachable beyond loopback without auth, or None."""
    if auth_enabled or not rest_ports or is_loopback(bind):
        return None
    where = "every interface" if bind in ("", "0.0.0.0", "::") else bind
    return (
        f"REST API open to the network: ports {', '.join(map(str, rest_ports))} on {where} with "
        "disable_rest_auth=true: anyone who reaches them can start relays and pushes to any host and "
        "stop any stream; set disable_rest_auth=false with rest_users_file or rest_api_tokens, or bind "
        "127.0.0.1"
    )


def warn_if_exposed(bind: str, auth_enabled: bool, rest_ports: Sequence[int]) -> str | None:
    """Log :func:`exposure_warning` (if any) and return it."""
    message = exposure_warning(bind, auth_enabled, rest_ports)
    if message is not None:
        logger.warning("%s", message)
    return message
