"""Client access tokens (JWT) and node-to-node service tokens.

A token is a JWS-signed JWT:

* header ``alg`` (one of the configured ``auth_jwt_algorithms``: never taken on the token's word)
  and ``kid`` (which key; may be left out when exactly one key is configured);
* claims ``exp`` (required), ``nbf``, ``iat``, ``aud`` (must equal ``auth_jwt_audience``; with none
  configured, a token carrying ``aud`` is refused), ``iss`` (must equal ``auth_jwt_issuer`` when set),
  ``sub`` and ``rtcdn: {"publish": [globs], "play": [globs]}``: the stream names it may publish and
  play, matched with :func:`fnmatch.fnmatchcase` (``*`` matches everything); a missing or empty list
  denies that action. 30 s of clock skew are allowed.

Keys: HS256/384/512 secrets by kid (``auth_jwt_keys``) and/or the public keys of a JWKS URL
(:class:`~.jwks.JwksCache`). A token whose ``sub`` starts with ``node:`` is a *service token*: the
one a node presents to another (relays, CDN pushes), minted by :meth:`TokenVerifier.service_token`
with the first HS key, granting everything for :data:`SERVICE_TOKEN_LIFETIME` seconds.
"""

from __future__ import annotations

import fnmatch
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jwt

from ..stream import AccessDenied
from .jwks import JwksCache

logger = logging.getLogger(__name__)

LEEWAY = 30.0
"Seconds of clock skew accepted on ``exp``, ``nbf`` and ``iat``."
SERVICE_TOKEN_LIFETIME = 60
SERVICE_PREFIX = "node:"
HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")


@dataclass(frozen=True)
class Grant:
    """What a verified token allows."""

    subject: str = ""
    publish: tuple[str, ...] = ()
    play: tuple[str, ...] = ()

    @property
    def service(self) -> bool:
        """A node's service token (``sub: node:<id>``): REST hooks are not asked about it."""
        return self.subject.startswith(SERVICE_PREFIX)

    def allows(self, action: str, name: str) -> bool:
        patterns = self.publish if action == "publish" else self.play if action == "play" else ()
        return any(fnmatch.fnmatchcase(name, p) for p in patterns)

    @classmethod
    def of(cls, claims: dict[str, Any]) -> Grant:
        rtcdn = claims.get("rtcdn")
        grants = rtcdn if isinstance(rtcdn, dict) else {}

        def globs(action: str) -> tuple[str, ...]:
            value = grants.get(action)
            return tuple(p for p in value if isinstance(p, str)) if isinstance(value, list) else ()

        sub = claims.get("sub")
        return cls(sub if isinstance(sub, str) else "", globs("publish"), globs("play"))


class TokenVerifier:
    """Verifies tokens against the configured keys and mints service tokens.

    Lifecycle: :meth:`start` starts the JWKS cache (if a URL is configured), :meth:`close` stops it.
    """

    def __init__(
        self,
        hmac_keys: Sequence[tuple[str, bytes]] = (),
        jwks_url: str | None = None,
        algorithms: Sequence[str] = ("HS256",),
        audience: str | None = None,
        issuer: str | None = None,
        jwks_refresh: float = 3600.0,
        node_id: str = "rtcdn",
        local_address: str | None = None,
    ) -> None:
        self.algorithms = tuple(a for a in algorithms if a.lower() != "none")
        self.hmac_keys = dict(hmac_keys)
        self.hmac_algorithms = tuple(a for a in self.algorithms if a in HMAC_ALGORITHMS)
        public = tuple(a for a in self.algorithms if a not in HMAC_ALGORITHMS)
        self.jwks = (
            JwksCache(jwks_url, public, jwks_refresh, local_address=local_address) if jwks_url else None
        )
        self.audience = audience
        self.issuer = issuer
        self.node_id = node_id
        self._signing = next(iter(hmac_keys), None)

    @property
    def enabled(self) -> bool:
        """Keys are configured: every publish and play needs a token."""
        return bool(self.hmac_keys) or self.jwks is not None

    def start(self) -> None:
        if self.jwks is not None:
            self.jwks.start()

    async def close(self) -> None:
        if self.jwks is not None:
            await self.jwks.close()

    async def verify(self, token: str) -> Grant:
        """The grant of a valid token; :class:`AccessDenied` (saying why, for the log) otherwise."""
        return Grant.of(await self.claims(token))

    async def claims(self, token: str) -> dict[str, Any]:
        """The claims of a valid token (for other uses of the same keys, e.g. the REST API's own
        grant); :class:`AccessDenied` otherwise."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise AccessDenied(f"malformed token: {exc}") from None
        alg, kid = header.get("alg"), header.get("kid")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise AccessDenied(f"token algorithm {alg!r} is not accepted (accepted: {self.algorithms})")
        if kid is not None and not isinstance(kid, str):
            raise AccessDenied("token kid is not a string")
        key, algorithms = await self._key(kid, alg)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=list(algorithms),
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY,
                options={"require": ["exp"], "enforce_minimum_key_length": True},
            )
        except (jwt.PyJWTError, ValueError, TypeError) as exc:  # a key PyJWT chokes on: refused too
            raise AccessDenied(f"invalid token (kid {kid!r}): {type(exc).__name__}: {exc}") from None
        return claims

    async def _key(self, kid: str | None, alg: str) -> tuple[Any, tuple[str, ...]]:
        """The key a token names and the algorithms it may be verified with (the token's own one
        must be among them: an HMAC secret never verifies an RS/ES token, a public key never an HS)."""
        if kid is None:
            if len(self.hmac_keys) == 1 and self.jwks is None:
                kid = next(iter(self.hmac_keys))
            elif not self.hmac_keys and self.jwks is not None:
                only = await self.jwks.only_key()
                if only is None:
                    raise AccessDenied("token has no kid and the key set has several keys")
                return self._fits(only.key, only.algorithms, alg, only.kid)
            else:
                raise AccessDenied("token has no kid and several keys are configured")
        secret = self.hmac_keys.get(kid)
        if secret is not None:
            return self._fits(secret, self.hmac_algorithms, alg, kid)
        public = await self.jwks.key(kid) if self.jwks is not None else None
        if public is None:
            raise AccessDenied(f"unknown key id {kid!r}")
        return self._fits(public.key, public.algorithms, alg, kid)

    @staticmethod
    def _fits(key: Any, algorithms: tuple[str, ...], alg: str, kid: str) -> tuple[Any, tuple[str, ...]]:
        if alg not in algorithms:
            raise AccessDenied(f"algorithm {alg} does not go with key {kid!r} ({', '.join(algorithms)})")
        return key, (alg,)

    def service_token(self) -> str | None:
        """A fresh service token (``sub: node:<node_id>``, everything granted, 60 s), signed with the
        first HS key; None without one (a JWKS alone cannot sign)."""
        if self._signing is None or not self.hmac_algorithms:
            return None
        kid, secret = self._signing
        now = int(time.time())
        claims: dict[str, Any] = {
            "sub": f"{SERVICE_PREFIX}{self.node_id}",
            "iat": now,
            "nbf": now,
            "exp": now + SERVICE_TOKEN_LIFETIME,
            "rtcdn": {"publish": ["*"], "play": ["*"]},
        }
        if self.audience:
            claims["aud"] = self.audience
        if self.issuer:
            claims["iss"] = self.issuer
        return jwt.encode(claims, secret, algorithm=self.hmac_algorithms[0], headers={"kid": kid})
