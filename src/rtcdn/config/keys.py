"""The vocabulary of settings: :class:`ConfigError`, the parsers of key text and :class:`Key`/:func:`setting`,
which declare a :class:`~rtcdn.config.Settings` field and the keys that set it."""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

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
    from ..api.targets import parse_entry  # the syntax lives with the check

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
