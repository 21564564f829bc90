"""The settings of access control (issue 11): REST API auth, client tokens, REST hooks, caps."""

# ruff: noqa: RUF009  (setting() is dataclasses.field with the declaration in its metadata)

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .keys import (
    HMAC_KEY_BYTES,
    Key,
    _bool,
    _http_url,
    _jwt_algorithms,
    _jwt_keys,
    _list,
    _ms_range,
    _name,
    _networks,
    _non_negative,
    _on_error,
    _optional,
    _positive,
    _rate,
    _seconds,
    _targets,
    setting,
)

if TYPE_CHECKING:
    from . import Settings


@dataclass(frozen=True)
class AccessKeys:
    disable_rest_auth: bool = setting(
        True,
        Key(
            "disable_rest_auth",
            _bool,
            "`false`: `/rest-api/` (but `openapi.json`) needs HTTP Basic (`rest_users_file`) or a Bearer "
            "token (`rest_api_tokens`); 401 without credentials, 403 with wrong ones",
        ),
    )
    rest_users_file: str | None = setting(
        None,
        Key(
            "rest_users_file",
            _optional,
            "HTTP Basic users, `NAME:scrypt$n=..,r=..,p=..$SALT$HASH` a line, written by "
            "`python -m rtcdn.api.users add NAME --file FILE`; relative to the config dir; re-read on change",
        ),
    )
    rest_api_tokens: list[str] = setting(
        [],
        Key(
            "rest_api_tokens", _list, "Bearer tokens accepted by the REST API, comma separated", shown="none"
        ),
    )
    rest_auth_failure_delay_ms: tuple[int, int] = setting(
        (100, 500),
        Key(
            "rest_auth_failure_delay_ms",
            _ms_range,
            "random pause before a 401/403, `MIN-MAX` ms (`0`: none)",
            shown="`100-500`",
        ),
    )
    rest_cors_origins: list[str] = setting(
        ["*"],
        Key(
            "rest_cors_origins",
            _list,
            "CORS on `/rest-api/`: `*` (WCS), or the origins allowed, comma separated (echoed); "
            "empty: no CORS headers",
        ),
    )
    rest_max_body_bytes: int = setting(
        65536, Key("rest_max_body_bytes", _positive, "largest REST request body; a larger one gets 413")
    )
    metrics_auth: bool = setting(
        False,
        Key(
            "metrics_auth",
            _bool,
            "`/metrics` needs the REST API's credentials (with `disable_rest_auth=false`)",
        ),
    )
    relay_allowed_hosts: list[str] = setting(
        [],
        Key(
            "relay_allowed_hosts",
            _targets,
            "where `/pull/push`, `/pull/pull`, `/push/startup` and a `publishStream` `rtmpUrl` may connect: "
            "hosts, `host:port`, addresses or CIDRs, comma separated (CDN nodes and workers always)",
            shown="any",
        ),
    )

    # --- access control (issue 11) ---
    auth_jwt_keys: tuple[tuple[str, bytes], ...] = setting(
        (),
        Key(
            "auth_jwt_keys",
            _jwt_keys,
            "HMAC keys of client tokens, `KID:SECRET` comma separated (the secret as text, or "
            "`base64:...`; 32 bytes at least); keys (or a JWKS URL) switch token auth on: every publish "
            "and play then needs a token; the first key signs node-to-node service tokens",
            shown="none",
        ),
    )
    auth_jwt_jwks_url: str | None = setting(
        None,
        Key(
            "auth_jwt_jwks_url",
            _http_url,
            "JWKS URL of an identity server (RS/PS/ES/EdDSA public keys): fetched at start, every "
            "`auth_jwt_jwks_refresh` s, and on an unknown `kid`",
        ),
    )
    auth_jwt_jwks_refresh: float = setting(
        3600, Key("auth_jwt_jwks_refresh", _seconds, "seconds between two fetches of the JWKS")
    )
    auth_jwt_algorithms: list[str] = setting(
        ["HS256"],
        Key(
            "auth_jwt_algorithms",
            _jwt_algorithms,
            "the token algorithms accepted, comma separated (a token's own `alg` is never trusted)",
        ),
    )
    auth_jwt_audience: str | None = setting(
        None,
        Key(
            "auth_jwt_audience",
            _optional,
            "the `aud` tokens must carry (unset: a token with an `aud` is refused)",
        ),
    )
    auth_jwt_issuer: str | None = setting(
        None, Key("auth_jwt_issuer", _optional, "the `iss` tokens must carry (unset: not checked)")
    )
    auth_token_property_name: str = setting(
        "token",
        Key(
            "auth_token_property_name",
            _name,
            "where the token is: the field of WCS `custom` (`createSession`, `publishStream`, "
            "`playStream`) and the RTMP URL query parameter",
        ),
    )
    auth_failure_delay_ms: tuple[int, int] = setting(
        (200, 1000),
        Key(
            "auth_failure_delay_ms",
            _ms_range,
            "random pause before any access refusal (token or hook), `MIN-MAX` ms (`0`: none)",
            shown="`200-1000`",
        ),
    )
    rest_hooks_url: str | None = setting(
        None,
        Key(
            "rest_hooks_url",
            _http_url,
            "WCS REST hooks: the backend URL; `connect`, `publishStream`, `playStream`, "
            "`StreamStatusEvent`, `StreamKeepAliveEvent` are POSTed to `URL/METHOD`",
        ),
    )
    disable_rest_requests: bool = setting(
        False, Key("disable_rest_requests", _bool, "`true`: no REST hooks even with `rest_hooks_url`")
    )
    rest_request_timeout: float = setting(
        15,
        Key(
            "rest_request_timeout",
            _seconds,
            "seconds a hook waits for the backend (WCS's unit; 1-3 recommended), then `rest_on_error`",
        ),
    )
    rest_on_error: str = setting(
        "LOG",
        Key(
            "rest_on_error",
            _on_error,
            "a backend that cannot answer (timeout, connection error, 5xx): `LOG` allows, `FAIL` refuses "
            "(WCS's `restOnError`; a 4xx always refuses)",
        ),
    )
    rest_hook_send_hash: bool = setting(
        False,
        Key(
            "rest_hook_send_hash",
            _bool,
            "hooks carry `Authorization: WCS <hex HMAC-MD5 of the body>` keyed with `rest_hook_secret_key`",
        ),
    )
    rest_hook_secret_key: str | None = setting(
        None, Key("rest_hook_secret_key", _optional, "the key of `rest_hook_send_hash`")
    )
    keep_alive_streaming_sessions_enabled: bool = setting(
        False,
        Key(
            "keep_alive_streaming_sessions_enabled",
            _bool,
            "post `StreamKeepAliveEvent` for every live publish/play; a refusal stops it",
        ),
    )
    streaming_sessions_keep_alive_interval: int = setting(
        10000,
        Key("streaming_sessions_keep_alive_interval", _positive, "ms between two `StreamKeepAliveEvent`s"),
    )
    allow_domains: list[str] = setting(
        [],
        Key(
            "allow_domains",
            _list,
            "WebSocket `Origin` domains allowed, comma separated, `*` wildcards, `!` forbids, the first "
            "match decides (e.g. `!*.evil.com,*`); others get 403; no `Origin` header: not checked",
            shown="all",
        ),
    )
    max_sessions_per_ip: int = setting(
        50,
        Key("max_sessions_per_ip", _non_negative, "WebSocket sessions open per client address (0: no cap)"),
    )
    connection_rate_per_ip: float = setting(
        10,
        Key(
            "connection_rate_per_ip",
            _rate,
            "new WebSocket connections a second per client address, in bursts of "
            "`connection_burst_per_ip` (0: no cap); over it: 429",
        ),
    )
    connection_burst_per_ip: int = setting(
        20, Key("connection_burst_per_ip", _positive, "burst of `connection_rate_per_ip`")
    )
    limits_exempt_ips: list[str] = setting(
        ["127.0.0.0/8", "::1"],
        Key(
            "limits_exempt_ips",
            _networks,
            "addresses or CIDRs the per-address caps leave alone (empty: none), comma separated",
        ),
    )
    trusted_proxies: list[str] = setting(
        [],
        Key(
            "trusted_proxies",
            _networks,
            "reverse proxies (addresses or CIDRs, comma separated) whose `X-Forwarded-For` names the "
            "client, for the per-address caps and the logs (empty: the socket's peer is the client)",
        ),
    )
    max_streams_per_session: int = setting(
        16,
        Key(
            "max_streams_per_session", _non_negative, "publishes + plays of one WebSocket session (0: no cap)"
        ),
    )
    max_players_per_stream: int = setting(
        0,
        Key(
            "max_players_per_stream",
            _non_negative,
            "players of one stream, every protocol, relays and pushes out of it included (0: no cap)",
        ),
    )


def _rest_access_problems(s: Settings, fits: Callable[..., bool]) -> list[str]:
    """REST API access (issue 11): auth switched on with no way in, a missing users file."""
    problems: list[str] = []
    if s.disable_rest_auth or not fits("disable_rest_auth"):
        if s.metrics_auth and fits("metrics_auth", "disable_rest_auth"):
            problems.append("metrics_auth: true needs disable_rest_auth=false (there are no credentials)")
        return problems
    ways_in = s.rest_users_file or s.rest_api_tokens or s.auth_jwt_keys or s.auth_jwt_jwks_url
    if not ways_in and fits("rest_users_file", "rest_api_tokens"):
        problems.append(
            "disable_rest_auth: false needs rest_users_file, rest_api_tokens or JWT keys (auth_jwt_keys, "
            "auth_jwt_jwks_url; tokens with rtcdn.api=true) — nobody could log in"
        )
    if s.rest_users_file and not ((s.config_dir or Path()) / s.rest_users_file).is_file():
        problems.append(f"rest_users_file: {(s.config_dir or Path()) / s.rest_users_file} is not a file")
    return problems


def _access_control_problems(s: Settings, fits: Callable[..., bool]) -> list[str]:
    """Access control (issue 11): keys no accepted algorithm can use, a hash without its key."""
    problems: list[str] = []
    if fits("auth_jwt_keys", "auth_jwt_algorithms") and s.auth_jwt_keys:
        hmac_algs = [a for a in s.auth_jwt_algorithms if a in HMAC_KEY_BYTES]
        if not hmac_algs:
            problems.append("auth_jwt_keys: set, but auth_jwt_algorithms accepts no HS256/HS384/HS512")
        need = max((HMAC_KEY_BYTES[a] for a in hmac_algs), default=0)
        for kid, secret in s.auth_jwt_keys:
            if len(secret) < need:
                problems.append(
                    f"auth_jwt_keys: key {kid!r} has {len(secret)} bytes, {max(hmac_algs)} needs {need}"
                )
    if fits("auth_jwt_jwks_url", "auth_jwt_algorithms") and s.auth_jwt_jwks_url:
        if all(a in HMAC_KEY_BYTES for a in s.auth_jwt_algorithms):
            problems.append("auth_jwt_jwks_url: set, but auth_jwt_algorithms accepts no public-key algorithm")
    if (
        fits("rest_hook_send_hash", "rest_hook_secret_key")
        and s.rest_hook_send_hash
        and not s.rest_hook_secret_key
    ):
        problems.append("rest_hook_send_hash: true needs rest_hook_secret_key")
    return problems
