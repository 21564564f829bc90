"""Settings: the embedded defaults, ``flashphoner.properties`` on top, command-line overrides last.

Every setting is declared once, as a field of :class:`Settings`: its type and default, and in its
metadata the :class:`Key` (or keys) naming it in ``flashphoner.properties`` (WCS's name wherever WCS
has one), the parser of its text and one line of documentation. The properties parser, the key list of
``rtcdn serve --help`` (:func:`help_text`) and the README table (:func:`markdown_table`, also printed by
``python -m rtcdn.config --markdown``) are derived from those declarations.

Every problem is reported at once: :class:`ConfigError` carries a list, ``file:line: key: problem`` for
a malformed value and ``key: problem`` for settings that do not fit together. An unknown key (WCS has
hundreds) is a warning naming file and line.
"""

# ruff: noqa: RUF009  (setting() is dataclasses.field with the declaration in its metadata)

from __future__ import annotations

import argparse
import base64
import ipaddress
import logging
import sys
import textwrap
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

PROPERTIES_FILE = "flashphoner.properties"
UNSET = "\N{EN DASH}"
"How a table shows a setting that is unset by default."


class ConfigError(Exception):
    """Configuration problems that prevent start-up; ``problems`` lists them, ``str()`` is one a line."""

    def __init__(self, problems: str | Iterable[str]) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


# --- parsers: text from the file -> value; ValueError says what is wrong --------------------------


def _bool(text: str) -> bool:
    low = text.strip().lower()
    if low in ("true", "yes", "on", "1"):
        return True
    if low in ("false", "no", "off", "0"):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise ValueError(f"port out of range: {value}")
    return value


def _ports(text: str) -> list[int]:
    return [p for p in (_port(x) for x in text.replace(" ", "").split(",") if x) if p]


def _ice_servers(text: str) -> list[str]:
    servers = [entry.strip() for entry in text.split(",") if entry.strip()]
    for entry in servers:
        url, *creds = entry.split("|")
        if url.split(":", 1)[0] not in ("stun", "stuns", "turn", "turns") or ":" not in url:
            raise ValueError(f"{url!r} is not a stun:, stuns:, turn: or turns: URL")
        if len(creds) not in (0, 2):
            raise ValueError(f"{entry!r}: expected URL or URL|username|credential")
    return servers


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError(f"expected a positive integer, got {value}")
    return value


def _codecs(text: str) -> list[str]:
    return [c.strip().lower() for c in text.split(",") if c.strip()]


def _optional(text: str) -> str | None:
    return text.strip() or None


def _keepalive_on(text: str) -> bool:
    return text.strip().upper() != "NONE"


# REST API access (issue 11)
def _list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _ms_range(text: str) -> tuple[int, int]:
    low, sep, high = text.strip().partition("-")
    values = (int(low), int(high) if sep else int(low))
    if not 0 <= values[0] <= values[1]:
        raise ValueError(f"expected MIN-MAX milliseconds with 0 <= MIN <= MAX, got {text!r}")
    return values


def _targets(text: str) -> list[str]:
    from .api.targets import parse_entry  # the syntax lives with the check

    items = _list(text)
    for item in items:
        parse_entry(item)
    return items


# access control (issue 11)
JWT_ALGORITHMS = ("HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                  "ES256", "ES384", "ES512", "EdDSA")  # fmt: skip
HMAC_KEY_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
"The shortest secret each HMAC algorithm accepts (its hash size, RFC 7518 §3.2)."


def _jwt_keys(text: str) -> tuple[tuple[str, bytes], ...]:
    """``kid:secret,kid2:base64:c2VjcmV0...``: the secret as UTF-8, or base64 (standard or URL-safe)
    after ``base64:``. Errors never repeat a secret."""
    keys: dict[str, bytes] = {}
    for entry in _list(text):
        kid, sep, secret = entry.partition(":")
        kid = kid.strip()
        if not sep or not kid or not secret:
            raise ValueError(f"expected KID:SECRET, got an entry without {'a kid' if sep else 'a colon'}")
        if secret.startswith("base64:"):
            raw = secret[7:].strip().replace("-", "+").replace("_", "/")
            try:
                data = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
            except ValueError:
                raise ValueError(f"key {kid!r}: the secret after base64: is not base64") from None
        else:
            data = secret.encode()
        if len(data) < HMAC_KEY_BYTES["HS256"]:
            raise ValueError(f"key {kid!r}: {len(data)} bytes; an HMAC secret needs at least 32")
        if kid in keys:
            raise ValueError(f"key {kid!r} given twice")
        keys[kid] = data
    return tuple(keys.items())


def _jwt_algorithms(text: str) -> list[str]:
    canonical = {a.upper(): a for a in JWT_ALGORITHMS}
    names = [canonical.get(a.upper(), a) for a in _list(text)]
    unknown = [a for a in names if a not in JWT_ALGORITHMS]
    if unknown or not names:
        raise ValueError(f"expected some of {', '.join(JWT_ALGORITHMS)}, got {text.strip()!r}")
    return names


def _http_url(text: str) -> str | None:
    url = text.strip()
    if url and not url.startswith(("http://", "https://")):
        raise ValueError(f"expected an http:// or https:// URL, got {url!r}")
    return url or None


def _seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError(f"expected a positive number of seconds, got {text.strip()!r}")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(f"expected 0 or more, got {value}")
    return value


def _rate(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise ValueError(f"expected 0 or more, got {text.strip()!r}")
    return value


def _on_error(text: str) -> str:
    value = text.strip().upper()
    if value not in ("LOG", "FAIL"):
        raise ValueError(f"expected LOG or FAIL, got {text.strip()!r}")
    return value


def _networks(text: str) -> list[str]:
    items = _list(text)
    for item in items:
        ipaddress.ip_network(item, strict=False)  # ValueError names the bad one
    return items


def _name(text: str) -> str:
    if not text.strip():
        raise ValueError("expected a name")
    return text.strip()


# --- declarations ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    """One configuration key: how its text becomes (part of) a :class:`Settings` field, and its doc."""

    name: str
    "The ``flashphoner.properties`` key (WCS's name where WCS has one); the field's name if not ``file``."
    parse: Callable[[str], Any]
    "Text -> the field's value (with ``index``: one item of it); raises ValueError when malformed."
    doc: str
    "One line for the README table and ``--help`` (Markdown; backticks are dropped in ``--help``)."
    option: str | None = None
    "The ``rtcdn serve`` option that overrides it."
    index: int | None = None
    "For a list of ports fed by several keys: the item this key sets (0 removes it)."
    shown: str | None = None
    "The default as documented, where the field's value would not say it (e.g. 'the bind address')."
    file: bool = True
    "False for a setting only the command line sets: a file naming it gets the unknown-key warning."


def setting(default: Any, *keys: Key) -> Any:
    """A :class:`Settings` field: its default and, in its ``metadata``, the keys that set it."""
    if isinstance(default, list):
        items = list(default)
        return field(default_factory=lambda: list(items), metadata={"keys": keys})
    return field(default=default, metadata={"keys": keys})


SELF_SIGNED = "self-signed in `state/`"


@dataclass(frozen=True)
class Settings:
    """Every setting rtcdn reads, immutable: derive changed settings with :func:`dataclasses.replace`.

    Each field declares its default and the :class:`Key` (or keys) that set it; nothing else does."""

    bind: str = setting(
        "0.0.0.0",
        Key("bind", str.strip, "address every listener and media socket binds", "--bind", file=False),
    )
    ws_port: int = setting(8080, Key("ws.port", _port, "WebSocket signaling (0 = off)", "--ws-port"))
    wss_port: int = setting(
        8443, Key("wss.port", _port, "secure WebSocket signaling (0 = off)", "--wss-port")
    )
    rtmp_port: int = setting(
        1935,
        Key(
            "rtmp.port", _port, "RTMP: publish from OBS/ffmpeg, play with ffmpeg/VLC (0 = off)", "--rtmp-port"
        ),
    )
    rtmp_transcode_video: bool = setting(
        False,
        Key(
            "rtmp_transcode_video",
            _bool,
            "VP8/VP9 streams go to RTMP players and pushes transcoded to H.264 (CPU: see README) "
            "instead of being refused",
        ),
    )
    http_ports: list[int] = setting(
        [8081, 9091],
        Key(
            "http.rest.port",
            _port,
            "HTTP: REST (`/rest-api/`), demo pages (`/client2/`), index (`/`); 0 = off",
            "--http-ports",
            index=0,
        ),
        Key("http.port", _port, "a second HTTP port serving the same (0 = off)", "--http-ports", index=1),
    )
    https_ports: list[int] = setting(
        [8444, 8888],
        Key("https.rest.port", _port, "`http.rest.port` over HTTPS (0 = off)", "--https-ports", index=0),
        Key("https.port", _port, "`http.port` over HTTPS (0 = off)", "--https-ports", index=1),
    )
    media_port_from: int = setting(
        31000, Key("media_port_from", _port, "lowest UDP media port", "--media-ports")
    )
    media_port_to: int = setting(
        31999, Key("media_port_to", _port, "highest UDP media port", "--media-ports")
    )
    ip: str | None = setting(
        None, Key("ip", _optional, "address written in ICE candidates (public address of a 1:1 NAT)")
    )
    ip_local: str | None = setting(
        None, Key("ip_local", _optional, "address media sockets bind", shown="`--bind`, or every interface")
    )
    codecs: list[str] = setting(
        ["opus", "alaw", "ulaw", "g722", "vp8", "h264", "vp9"],
        Key(
            "codecs",
            _codecs,
            "codecs accepted from publishers, in preference order; a publisher gets the first one it offers",
        ),
    )
    codecs_exclude_streaming: list[str] = setting(
        [], Key("codecs_exclude_streaming", _codecs, "codecs removed from `codecs`")
    )
    keep_alive_interval_ms: int = setting(
        5000, Key("keep_alive.server_interval", _positive, "ms between server pings")
    )
    keep_alive_probes: int = setting(
        10, Key("keep_alive.probes", _positive, "unanswered pings before the session is closed")
    )
    keep_alive_enabled: bool = setting(
        True, Key("keep_alive.algorithm", _keepalive_on, "`NONE` turns pings off", shown=UNSET)
    )
    rtp_activity_timeout: float = setting(
        6.0,
        Key(
            "rtp_activity_timeout",
            _seconds,
            "seconds without a packet from a live stream's publisher before it ends (a hung publisher "
            "or origin): players get `Failed by RTP activity`; 0 = never",
        ),
    )
    webrtc_connect_timeout_ms: int = setting(
        15000,
        Key(
            "webrtc_connect_timeout",
            _positive,
            "ms for ICE+DTLS before a stream goes `FAILED` / `Failed by ICE timeout`",
        ),
    )
    wcs_agent_ssl: bool = setting(
        False,
        Key(
            "wcs_agent_ssl",
            _bool,
            "relays (and CDN pushes) connect to other servers over `wss://` (port 8443); "
            "set it on both ends, as WCS documents",
        ),
    )
    wcs_agent_ssl_verify: bool = setting(
        True,
        Key(
            "wcs_agent_ssl_verify",
            _bool,
            "check the remote's certificate; `false` only for self-signed test servers",
        ),
    )
    wcs_agent_ssl_ca_file: str | None = setting(
        None,
        Key(
            "wcs_agent_ssl_ca_file",
            _optional,
            "PEM file of extra trusted certificates, e.g. another node's `state/cert.pem`",
        ),
    )
    load_balancing_enabled: bool = setting(
        False,
        Key(
            "load_balancing_enabled",
            _bool,
            "this node is a CDN origin: reads `loadbalancing.xml` from `--config-dir`",
        ),
    )
    tls_cert_file: str | None = setting(
        None, Key("ssl.cert_file", _optional, "PEM certificate for wss/https", shown=SELF_SIGNED)
    )
    tls_key_file: str | None = setting(
        None, Key("ssl.key_file", _optional, "PEM private key of `ssl.cert_file`", shown=SELF_SIGNED)
    )
    config_dir: Path | None = setting(
        None,
        Key(
            "config_dir",
            Path,
            "folder holding flashphoner.properties and loadbalancing.xml",
            "--config-dir",
            file=False,
        ),
    )
    workers: int = setting(
        1, Key("workers", _positive, "processes serving players; 1 = this process only", "--workers")
    )
    worker_index: int = setting(
        0, Key("worker_index", int, "set by worker 0 on the workers it starts", "--worker-index", file=False)
    )
    node_id: str = setting(
        "", Key("node_id", str.strip, "name reported in `getUserData` and stats", shown="the bind address")
    )
    ice_servers: list[str] = setting(
        [],
        Key(
            "ice_servers",
            _ice_servers,
            'STUN/TURN servers for WHIP/WHEP clients (`Link: rel="ice-server"`): `URL` or '
            "`URL|username|credential`, comma separated",
            shown="none",
        ),
    )
    # --- REST API access (issue 11) ---
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

    @property
    def streaming_codecs(self) -> list[str]:
        return [c for c in self.codecs if c not in self.codecs_exclude_streaming]


def declared_keys() -> list[tuple[str, Key]]:
    """``(Settings field, key)`` for every declared key, in declaration order."""
    return [(f.name, key) for f in fields(Settings) for key in f.metadata.get("keys", ())]


FILE_KEYS: dict[str, tuple[str, Key]] = {key.name: (attr, key) for attr, key in declared_keys() if key.file}
"Key name -> (Settings field, key) for every key a properties file may set."


# --- derived documentation ------------------------------------------------------------------------


def default_text(attr: str, key: Key) -> str:
    """The default of ``key`` as the README shows it (Markdown)."""
    if key.shown is not None:
        return key.shown
    value = getattr(Settings(), attr)
    if key.index is not None:
        value = value[key.index] if key.index < len(value) else 0
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None or value == "" or value == []:
        return UNSET
    if isinstance(value, list):
        return "`" + ",".join(str(v) for v in value) + "`"
    return str(value)


def _plain(markdown: str) -> str:
    return markdown.replace("`", "")


def markdown_table() -> str:
    """The README's table of ``flashphoner.properties`` keys."""
    rows = ["| key | default | option | meaning |", "|---|---|---|---|"]
    for attr, key in declared_keys():
        if key.file:
            cells = [f"`{key.name}`", default_text(attr, key), f"`{key.option}`" if key.option else UNSET]
            rows.append("| " + " | ".join(c.replace("|", r"\|") for c in [*cells, key.doc]) + " |")
    return "\n".join(rows) + "\n"


def help_text(width: int = 78) -> str:
    """The configuration keys as ``rtcdn serve --help`` lists them."""
    lines = textwrap.wrap(f"keys of CONFIG_DIR/{PROPERTIES_FILE} (the options above override them):", width)
    for attr, key in declared_keys():
        if key.file:
            default = _plain(default_text(attr, key))
            option = f"; {key.option}" if key.option else ""
            lines.append(f"  {key.name} (default: {'unset' if default == UNSET else default}{option})")
            lines += textwrap.wrap(_plain(key.doc), width, initial_indent=" " * 6, subsequent_indent=" " * 6)
    return "\n".join(lines)


def option_help(option: str) -> str:
    """The keys an ``rtcdn serve`` option overrides and their defaults, for the option's help."""
    found = [(attr, key) for attr, key in declared_keys() if key.option == option]
    names = ", ".join(key.name for _, key in found if key.file)
    defaults = ", ".join(_plain(default_text(attr, key)) for attr, key in found)
    return f"{names}; default {defaults}" if names else f"default {defaults}"


# --- loading --------------------------------------------------------------------------------------


def iter_properties(text: str) -> Iterator[tuple[int, str, str]]:
    """Yield ``(line, key, value)`` from Java-properties text (``=``, ``:`` or space separated,
    ``#``/``!`` comments, backslash continuation)."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        start = i
        line = lines[i].strip()
        i += 1
        while line.endswith("\\") and i < len(lines):
            line = line[:-1] + lines[i].strip()
            i += 1
        if not line or line[0] in "#!":
            continue
        cut = min((p for p in (line.find("="), line.find(":")) if p >= 0), default=-1)
        space = next((n for n, ch in enumerate(line) if ch.isspace()), -1)
        if space >= 0 and (cut < 0 or space < cut) and line[:space].strip():
            key, value = line[:space], line[space:].strip().lstrip("=:").strip()
        elif cut >= 0:
            key, value = line[:cut], line[cut + 1 :]
        else:
            key, value = line, ""
        yield start + 1, key.strip(), value.strip()


def read_properties(settings: Settings, path: Path) -> tuple[Settings, list[str], set[str]]:
    """``settings`` with the well-formed values of the properties file ``path`` applied, the problems
    (``file:line: key: problem``) and the fields whose value was malformed."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return settings, [f"{path}: cannot read: {exc}"], set()
    values: dict[str, Any] = {}
    problems: list[str] = []
    malformed: set[str] = set()
    for line, name, raw in iter_properties(text):
        found = FILE_KEYS.get(name)
        if found is None:
            logger.warning("%s:%d: unknown setting %r ignored", path, line, name)
            continue
        attr, key = found
        try:
            value = key.parse(raw)
        except ValueError as exc:
            problems.append(f"{path}:{line}: {name}: {exc}")
            malformed.add(attr)
            continue
        if key.index is not None:  # one port of a list: 0 keeps its place until the end
            items = list(values.get(attr, getattr(settings, attr)))
            items += [0] * (key.index + 1 - len(items))
            items[key.index] = value
            value = items
        values[attr] = value
    for attr, key in declared_keys():
        if key.index is not None and attr in values:
            values[attr] = [p for p in values[attr] if p]
    return replace(settings, **values), problems, malformed


def cross_problems(settings: Settings, skip: Collection[str] = ()) -> list[str]:
    """Settings that do not fit together, as ``key: problem``; checks reading a field in ``skip`` (one
    whose value in the file was malformed, so it holds its default) are left out."""
    from .webrtc import KNOWN_CODECS  # the list of codecs lives with the media layer

    def fits(*attrs: str) -> bool:
        return not any(attr in skip for attr in attrs)

    s = settings
    problems: list[str] = []
    if fits("media_port_from", "media_port_to") and s.media_port_from > s.media_port_to:
        problems.append(f"media_port_from: {s.media_port_from} is above media_port_to ({s.media_port_to})")
    if fits("codecs", "codecs_exclude_streaming"):
        unknown = [c for c in s.codecs if c not in KNOWN_CODECS]
        if unknown:
            logger.warning("codecs: %s cannot be forwarded by rtcdn and are ignored", ", ".join(unknown))
        if not [c for c in s.streaming_codecs if c in KNOWN_CODECS]:
            problems.append("codecs: no codec rtcdn can forward is enabled")
    if s.wcs_agent_ssl_ca_file and not Path(s.wcs_agent_ssl_ca_file).is_file():
        problems.append(f"wcs_agent_ssl_ca_file: {s.wcs_agent_ssl_ca_file} is not a file")
    if fits("workers", "load_balancing_enabled") and s.workers > 1 and s.load_balancing_enabled:
        problems.append("workers: more than 1 together with load_balancing_enabled=true is not supported yet")
    if fits("workers", "ws_port", "http_ports") and s.workers > 1 and not (s.ws_port and s.http_ports):
        problems.append("workers: more than 1 needs the ws port and an http port (the balancer lives there)")
    if bool(s.tls_cert_file) != bool(s.tls_key_file):
        given, missing = (
            ("ssl.cert_file", "ssl.key_file") if s.tls_cert_file else ("ssl.key_file", "ssl.cert_file")
        )
        problems.append(f"{given}: set without {missing}; set both or neither")
    problems += _rest_access_problems(s, fits)
    problems += _access_control_problems(s, fits)
    return problems


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


def validate(settings: Settings) -> None:
    """Raise :class:`ConfigError` listing every pair of settings that do not fit together."""
    problems = cross_problems(settings)
    if problems:
        raise ConfigError(problems)


def load(config_dir: Path | None, overrides: Mapping[str, Any] | None = None) -> Settings:
    """Defaults, then ``<config_dir>/flashphoner.properties`` if present, then ``overrides`` (Settings
    field -> value; None = not given). Raises :class:`ConfigError` listing every problem found."""
    settings = Settings(config_dir=config_dir)
    problems: list[str] = []
    malformed: set[str] = set()
    if config_dir is not None:
        if not config_dir.is_dir():
            raise ConfigError(f"{config_dir}: config dir does not exist")
        path = config_dir / PROPERTIES_FILE
        if path.exists():
            settings, problems, malformed = read_properties(settings, path)
    given = {attr: value for attr, value in (overrides or {}).items() if value is not None}
    settings = replace(settings, **given)
    problems += cross_problems(settings, malformed - given.keys())
    if problems:
        raise ConfigError(problems)
    return settings


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m rtcdn.config``: print the configuration keys (``--markdown``: the README table)."""
    parser = argparse.ArgumentParser(prog="python -m rtcdn.config", description=main.__doc__)
    parser.add_argument("--markdown", action="store_true", help="print the README's Markdown table")
    args = parser.parse_args(argv)
    print(markdown_table() if args.markdown else help_text(), end="" if args.markdown else "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
