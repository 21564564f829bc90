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

from __future__ import annotations

import argparse
import logging
import textwrap
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from .access import AccessKeys, _access_control_problems, _rest_access_problems
from .cdn import CdnKeys, cdn_problems
from .core import CoreKeys
from .keys import PROPERTIES_FILE, UNSET, ConfigError, Key, setting

logger = logging.getLogger(__name__)

__all__ = ["PROPERTIES_FILE", "ConfigError", "Key", "Settings", "load", "setting", "validate"]


@dataclass(frozen=True)
class Settings(CdnKeys, AccessKeys, CoreKeys):
    """Every setting rtcdn reads, immutable: derive changed settings with :func:`dataclasses.replace`.

    Each field declares its default and the :class:`Key` (or keys) that set it; nothing else does.
    The fields live in one class per area (:mod:`.core`, :mod:`.access`, :mod:`.cdn`)."""

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
    from ..webrtc import KNOWN_CODECS  # the list of codecs lives with the media layer

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
    problems += cdn_problems(s, fits)
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
