"""Settings: the embedded defaults, ``flashphoner.properties`` on top, command-line overrides last.

Keys use WCS's names wherever WCS has one. A malformed value stops start-up with
``file:line: message``; an unknown key (WCS has hundreds) is a warning naming file and line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

PROPERTIES_FILE = "flashphoner.properties"


class ConfigError(Exception):
    """A configuration problem that prevents start-up."""


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


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError(f"expected a positive integer, got {value}")
    return value


def _codecs(text: str) -> list[str]:
    return [c.strip().lower() for c in text.split(",") if c.strip()]


@dataclass
class Settings:
    """Every setting rtcdn reads. Field docs name the ``flashphoner.properties`` key."""

    bind: str = "0.0.0.0"
    "Address every listener binds (``--bind``); media candidates use it too unless it is 0.0.0.0."
    ws_port: int = 8080
    "ws.port: WebSocket signaling (0 = off)."
    wss_port: int = 8443
    "wss.port: secure WebSocket signaling (0 = off)."
    http_ports: list[int] = field(default_factory=lambda: [8081, 9091])
    "http.rest.port and http.port: REST, demo pages, index."
    https_ports: list[int] = field(default_factory=lambda: [8444, 8888])
    "https.rest.port and https.port."
    media_port_from: int = 31000
    media_port_to: int = 31999
    ip: str | None = None
    "ip: the address put in ICE candidates (a public address in front of NAT)."
    ip_local: str | None = None
    "ip_local: the address media sockets bind (default: --bind, or every interface)."
    codecs: list[str] = field(default_factory=lambda: ["opus", "alaw", "ulaw", "g722", "vp8", "h264", "vp9"])
    "codecs: accepted codecs in preference order (a publisher gets the first it offers)."
    codecs_exclude_streaming: list[str] = field(default_factory=list)
    keep_alive_interval_ms: int = 5000
    "keep_alive.server_interval"
    keep_alive_probes: int = 10
    "keep_alive.probes"
    keep_alive_enabled: bool = True
    "keep_alive.algorithm (NONE turns pings off)."
    webrtc_connect_timeout_ms: int = 15000
    "webrtc_connect_timeout: ICE + DTLS must finish within this, else FAILED."
    wcs_agent_ssl: bool = False
    "wcs_agent_ssl: relays (and CDN pushes) connect to other servers with wss:// on 8443."
    wcs_agent_ssl_verify: bool = True
    "wcs_agent_ssl_verify: check the remote's certificate (false only for self-signed test servers)."
    wcs_agent_ssl_ca_file: str | None = None
    "wcs_agent_ssl_ca_file: PEM file of extra trusted certificates (e.g. another node's self-signed one)."
    load_balancing_enabled: bool = False
    tls_cert_file: str | None = None
    "ssl.cert_file: PEM certificate for wss/https (default: self-signed in the state dir)."
    tls_key_file: str | None = None
    "ssl.key_file"
    config_dir: Path | None = None
    "--config-dir, where loadbalancing.xml is read from when load_balancing_enabled=true."
    workers: int = 1
    "workers: processes serving players (--workers); 1 = this process only."
    worker_index: int = 0
    "Set by worker 0 on the workers it starts (--worker-index); never in a file."
    node_id: str = ""
    "node_id: name reported in getUserData and stats (default: the bind address)."

    @property
    def streaming_codecs(self) -> list[str]:
        return [c for c in self.codecs if c not in self.codecs_exclude_streaming]


def _set(attr: str, parse: Callable[[str], Any]) -> Callable[[Settings, str], None]:
    def apply(s: Settings, text: str) -> None:
        setattr(s, attr, parse(text))

    return apply


def _set_list_item(attr: str, index: int) -> Callable[[Settings, str], None]:
    def apply(s: Settings, text: str) -> None:
        ports = list(getattr(s, attr))
        port = _port(text)
        while len(ports) <= index:
            ports.append(0)
        ports[index] = port
        setattr(s, attr, [p for p in ports if p] if port == 0 else ports)

    return apply


def _keepalive_algorithm(s: Settings, text: str) -> None:
    s.keep_alive_enabled = text.strip().upper() != "NONE"


KEYS: dict[str, Callable[[Settings, str], None]] = {
    "ws.port": _set("ws_port", _port),
    "wss.port": _set("wss_port", _port),
    "http.rest.port": _set_list_item("http_ports", 0),
    "http.port": _set_list_item("http_ports", 1),
    "https.rest.port": _set_list_item("https_ports", 0),
    "https.port": _set_list_item("https_ports", 1),
    "media_port_from": _set("media_port_from", _port),
    "media_port_to": _set("media_port_to", _port),
    "ip": _set("ip", lambda t: t.strip() or None),
    "ip_local": _set("ip_local", lambda t: t.strip() or None),
    "codecs": _set("codecs", _codecs),
    "codecs_exclude_streaming": _set("codecs_exclude_streaming", _codecs),
    "keep_alive.server_interval": _set("keep_alive_interval_ms", _positive),
    "keep_alive.probes": _set("keep_alive_probes", _positive),
    "keep_alive.algorithm": _keepalive_algorithm,
    "webrtc_connect_timeout": _set("webrtc_connect_timeout_ms", _positive),
    "wcs_agent_ssl": _set("wcs_agent_ssl", _bool),
    "wcs_agent_ssl_verify": _set("wcs_agent_ssl_verify", _bool),
    "wcs_agent_ssl_ca_file": _set("wcs_agent_ssl_ca_file", lambda t: t.strip() or None),
    "load_balancing_enabled": _set("load_balancing_enabled", _bool),
    "ssl.cert_file": _set("tls_cert_file", lambda t: t.strip() or None),
    "ssl.key_file": _set("tls_key_file", lambda t: t.strip() or None),
    "node_id": _set("node_id", str.strip),
    "workers": _set("workers", _positive),
}


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


def load_properties(settings: Settings, path: Path) -> None:
    """Apply a properties file to ``settings``; raises :class:`ConfigError` naming file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    for line, key, value in iter_properties(text):
        apply = KEYS.get(key)
        if apply is None:
            logger.warning("%s:%d: unknown setting %r ignored", path, line, key)
            continue
        try:
            apply(settings, value)
        except ValueError as exc:
            raise ConfigError(f"{path}:{line}: {key}: {exc}") from None


def validate(settings: Settings) -> None:
    from .webrtc import KNOWN_CODECS  # the list of codecs lives with the media layer

    if settings.media_port_from > settings.media_port_to:
        raise ConfigError(
            f"media_port_from ({settings.media_port_from}) is above media_port_to ({settings.media_port_to})"
        )
    unknown = [c for c in settings.codecs if c not in KNOWN_CODECS]
    if unknown:
        logger.warning("codecs: %s cannot be forwarded by rtcdn and are ignored", ", ".join(unknown))
    if not [c for c in settings.streaming_codecs if c in KNOWN_CODECS]:
        raise ConfigError("codecs: no codec rtcdn can forward is enabled")
    if settings.wcs_agent_ssl_ca_file and not Path(settings.wcs_agent_ssl_ca_file).is_file():
        raise ConfigError(f"wcs_agent_ssl_ca_file: {settings.wcs_agent_ssl_ca_file} is not a file")
    if settings.workers > 1 and settings.load_balancing_enabled:
        raise ConfigError("workers > 1 together with load_balancing_enabled=true is not supported yet")
    if settings.workers > 1 and not (settings.ws_port and settings.http_ports):
        raise ConfigError("workers > 1 needs the ws port and an http port (the balancer lives there)")
    if bool(settings.tls_cert_file) != bool(settings.tls_key_file):
        raise ConfigError("ssl.cert_file and ssl.key_file must be set together")


def load(config_dir: Path | None, overrides: dict[str, Any] | None = None) -> Settings:
    """Defaults, then ``<config_dir>/flashphoner.properties`` if present, then ``overrides``."""
    settings = Settings(config_dir=config_dir)
    if config_dir is not None:
        if not config_dir.is_dir():
            raise ConfigError(f"{config_dir}: config dir does not exist")
        path = config_dir / PROPERTIES_FILE
        if path.exists():
            load_properties(settings, path)
    for key, value in (overrides or {}).items():
        if value is not None:
            setattr(settings, key, value)
    validate(settings)
    return settings
