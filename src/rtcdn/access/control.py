"""AccessControl: the one object front ends ask whether a connection, a publish or a play may go on.

Order of the checks: the token (local and cheap: :class:`~.tokens.TokenVerifier`), then the REST
hook (the backend decides: :class:`~.hooks.RestHooks`); either may be off. With keys configured,
every publish and play needs a valid token granting it: the session's (WCS ``connection``) or its
own (WCS ``publishStream``/``playStream`` ``custom``, WHIP/WHEP ``Authorization: Bearer``, RTMP
``?token=``), the stream's own one winning. A service token (another node) skips the hooks.

Every refusal raises :class:`~rtcdn.stream.AccessDenied` after a random delay in
``auth_failure_delay_ms`` (a brake on guessing), and is logged with why.

Lifecycle: built by the Server; :meth:`start` (JWKS refresh, hook workers and keep-alive),
:meth:`close`.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from typing import Any

from ..stream import AccessDenied, MediaSessions
from .forwarded import ClientAddress
from .hooks import HookConfig, RestHooks
from .limits import ConnectionLimits, OriginPolicy
from .tokens import Grant, TokenVerifier

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AccessConfig:
    """What :class:`AccessControl` needs of the settings (the Server builds it)."""

    node_id: str = "rtcdn"
    jwt_keys: tuple[tuple[str, bytes], ...] = ()
    "HS secrets by kid; the first one signs service tokens."
    jwks_url: str | None = None
    jwks_refresh: float = 3600.0
    algorithms: tuple[str, ...] = ("HS256",)
    audience: str | None = None
    issuer: str | None = None
    token_name: str = "token"
    "The field of WCS ``custom`` and the RTMP query parameter holding the token."
    failure_delay: tuple[float, float] = (0.2, 1.0)
    "Seconds: every refusal waits a random time in this range."
    hooks: HookConfig | None = None
    allow_domains: tuple[str, ...] = ()
    max_sessions_per_ip: int = 50
    connection_rate: float = 10.0
    connection_burst: int = 20
    limits_exempt: tuple[str, ...] = ("127.0.0.0/8", "::1")
    trusted_proxies: tuple[str, ...] = ()


class AccessControl:
    """Tokens, hooks and WebSocket admission of one node (see the module docstring)."""

    def __init__(
        self,
        config: AccessConfig | None = None,
        sessions: MediaSessions | None = None,
        local_address: str | None = None,
    ) -> None:
        """``sessions``: the media sessions keep-alive asks about; ``local_address``: where the
        JWKS and hook requests come from."""
        self.config = config = config if config is not None else AccessConfig()
        self.token_name = config.token_name
        self.tokens = TokenVerifier(
            config.jwt_keys,
            config.jwks_url,
            config.algorithms,
            config.audience,
            config.issuer,
            config.jwks_refresh,
            config.node_id,
            local_address,
        )
        self.hooks = RestHooks(config.hooks, sessions, local_address) if config.hooks is not None else None
        self.origins = OriginPolicy(config.allow_domains)
        self.connections = ConnectionLimits(
            config.max_sessions_per_ip, config.connection_rate, config.connection_burst, config.limits_exempt
        )
        self.clients = ClientAddress(config.trusted_proxies)
        "The client's address behind a trusted reverse proxy."
        self.refusals = 0

    @property
    def active(self) -> bool:
        """Is anything checked at all (tokens or hooks)? If not, admission is immediate."""
        return self.tokens.enabled or self.hooks is not None

    def start(self) -> None:
        self.tokens.start()
        if self.hooks is not None:
            self.hooks.start()

    async def close(self) -> None:
        if self.hooks is not None:
            await self.hooks.close()
        await self.tokens.close()

    # --- decisions ------------------------------------------------------------------------------
    async def connect(self, token: str | None, payload: dict[str, Any], who: str) -> Grant | None:
        """A WCS ``connection``: the session's grant (None without a token, or with auth off).
        A token, when given, must be valid; then the ``connect`` hook. Raises AccessDenied."""
        grant = None
        if token and self.tokens.enabled:
            grant = await self._verify(token, who)
        if self.hooks is not None and not (grant is not None and grant.service):
            if not await self.hooks.ask("connect", self._payload(payload)):
                raise await self.refused("the connect hook refused", who)
        return grant

    async def admit(
        self,
        action: str,
        name: str,
        token: str | None,
        session_grant: Grant | None,
        payload: dict[str, Any],
        who: str,
    ) -> Grant | None:
        """May ``who`` ``action`` (``publish``/``play``) the stream ``name``? Returns the grant that
        let it (None with auth off); raises AccessDenied. ``payload``: the hook's fields."""
        grant = session_grant
        if self.tokens.enabled:
            if token:
                grant = await self._verify(token, who)
            if grant is None:
                raise await self.refused(f"no token to {action} {name!r}", who)
            if not grant.allows(action, name):
                raise await self.refused(
                    f"the token of {grant.subject!r} grants no {action} of {name!r}", who
                )
        if self.hooks is not None and not (grant is not None and grant.service):
            method = "publishStream" if action == "publish" else "playStream"
            if not await self.hooks.ask(method, self._payload({"name": name, **payload})):
                raise await self.refused(f"the {method} hook refused {name!r}", who)
        return grant

    def may_query(self, name: str, grant: Grant | None) -> bool:
        """May a session holding ``grant`` learn whether ``name`` is live (WCS ``availableStream``)?
        With tokens on, only with a grant to play it: the answer tells which streams exist. (The
        hooks are not asked: the SDK's question carries no token and expects an answer at once.)"""
        if not self.tokens.enabled:
            return True
        return grant is not None and (grant.service or grant.allows("play", name))

    async def bearer(self, token: str | None, action: str, name: str, remote: str) -> bool:
        """The WHIP/WHEP ``authorize`` hook: admit, as a bool."""
        if not self.active:
            return True
        kind = "whip" if action == "publish" else "whep"
        payload = {
            "appKey": kind,
            "sessionId": f"{kind}:{remote}",
            "published": action == "publish",
            "status": "PENDING",
            "mediaProvider": "WebRTC",
        }
        try:
            await self.admit(action, name, token, None, payload, f"{kind} {remote}")
        except AccessDenied:
            return False
        return True

    async def is_service(self, authorization: str | None) -> bool:
        """Does a WebSocket upgrade's ``Authorization: Bearer`` carry a valid service token (another
        node's relay: the per-address caps do not apply to it)? Never delays, never raises."""
        scheme, _, bearer = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not bearer.strip() or not self.tokens.enabled:
            return False
        try:
            return (await self.tokens.verify(bearer.strip())).service
        except AccessDenied:
            return False

    def admitted(self, media_id: str, grant: Grant | None) -> None:
        """A publish/play admitted with ``grant`` is now the media session ``media_id``: keep-alive
        leaves a service one alone."""
        if self.hooks is not None and grant is not None and grant.service:
            self.hooks.exempt.add(media_id)

    def notify_status(self, payload: dict[str, Any], grant: Grant | None) -> None:
        """A WCS stream status: the ``StreamStatusEvent`` hook (queued; not for service sessions)."""
        if self.hooks is not None and not (grant is not None and grant.service):
            self.hooks.notify("StreamStatusEvent", self._payload(payload))

    def service_token(self) -> str | None:
        """A fresh token for a connection to another node, or None (auth off, or no HS key)."""
        return self.tokens.service_token() if self.tokens.enabled else None

    # --- helpers --------------------------------------------------------------------------------
    async def _verify(self, token: str, who: str) -> Grant:
        try:
            return await self.tokens.verify(token)
        except AccessDenied as exc:
            raise await self.refused(str(exc), who) from None

    async def refused(self, why: str, who: str) -> AccessDenied:
        """Log a refusal, wait the random delay, and return the error for the caller to raise."""
        self.refusals += 1
        logger.info("access: %s refused: %s", who, why)
        low, high = self.config.failure_delay
        if high > 0:
            await asyncio.sleep(random.uniform(low, high))
        return AccessDenied(why)

    def _payload(self, payload: dict[str, Any]) -> dict[str, Any]:
        return {"nodeId": self.config.node_id, **payload}
