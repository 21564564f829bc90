"""``loadbalancing.xml``: the static CDN's edge list, parsed safely with line numbers in errors.

No DOCTYPE and no entity declarations are accepted, so nothing is ever expanded.
"""

from __future__ import annotations

import dataclasses
import xml.parsers.expat
from dataclasses import dataclass, field
from pathlib import Path

from ..config import ConfigError

LOADBALANCING_FILE = "loadbalancing.xml"

MODES = {
    "ROUNDROBIN": "ROUNDROBIN",
    "ROUND_ROBIN": "ROUNDROBIN",
    "RANDOM": "RANDOM",
    "FEWESTCALLS": "FEWESTCALLS",
    "FEWEST_CALLS": "FEWESTCALLS",
    "LEAST_LOADED_NODE": "LEAST_LOADED_NODE",
    "LESS_LOADED_NODE": "LEAST_LOADED_NODE",
}
"Every spelling WCS uses (case-insensitive) → rtcdn's name."
DISTRIBUTIONS = ("webrtc", "rtmp")
_NODE_PORTS = {"ws": 8080, "wss": 8443, "http": 8081, "https": 8444, "flash": 1935}


@dataclass(frozen=True)
class Node:
    """An edge: where the origin pushes streams and where players are sent."""

    id: str
    ip: str
    ws: int = 8080
    wss: int = 8443
    http: int = 8081
    "Port of the node's REST/stat endpoint (``/?action=stat``)."
    https: int = 8444
    flash: int = 1935
    local: bool = False
    "This very server (worker 0 of ``--workers``): players may be sent here, nothing is pushed."
    same_host: bool = False
    "A worker on this machine: the balancer answers with the host the client used."

    def agent_uri(self, secure: bool) -> str:
        return f"wss://{self.ip}:{self.wss}" if secure else f"ws://{self.ip}:{self.ws}"


@dataclass(frozen=True)
class LoadBalancerConfig:
    mode: str = "ROUNDROBIN"
    randomize: bool = False
    stream_distribution: str = "webrtc"
    nodes: tuple[Node, ...] = field(default_factory=tuple)


@dataclass
class _Element:
    name: str
    attrs: dict[str, str]
    line: int
    text: str = ""
    children: list[_Element] = field(default_factory=list)


def _parse_tree(data: bytes, path: Path) -> _Element:
    parser = xml.parsers.expat.ParserCreate()
    stack: list[_Element] = []
    root: list[_Element] = []

    def refuse(*_: object) -> None:
        raise ConfigError(
            f"{path}:{parser.CurrentLineNumber}: DOCTYPE and entity declarations are not allowed"
        )

    def start(name: str, attrs: dict[str, str]) -> None:
        element = _Element(name, attrs, parser.CurrentLineNumber)
        (stack[-1].children if stack else root).append(element)
        stack.append(element)

    def end(name: str) -> None:
        stack.pop()

    def text(data: str) -> None:
        if stack:
            stack[-1].text += data

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    try:
        parser.Parse(data, True)
    except xml.parsers.expat.ExpatError as exc:
        raise ConfigError(
            f"{path}:{exc.lineno}: invalid XML: {xml.parsers.expat.ErrorString(exc.code)}"
        ) from None
    return root[0]


def _bool(value: str, where: str) -> bool:
    low = value.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    raise ConfigError(f"{where}: expected true or false, got {value!r}")


def _node(element: _Element, path: Path, index: int) -> Node:
    where = f"{path}:{element.line}"
    fields: dict[str, str] = {}
    for child in element.children:
        if child.name in fields:
            raise ConfigError(f"{path}:{child.line}: <{child.name}> given twice in a <node>")
        if child.name != "ip" and child.name not in _NODE_PORTS:
            raise ConfigError(f"{path}:{child.line}: unknown element <{child.name}> in <node>")
        fields[child.name] = child.text.strip()
    ip = fields.pop("ip", "")
    if not ip:
        raise ConfigError(f"{where}: <node> has no address: add <ip>host</ip>")
    ports: dict[str, int] = {}
    for name, text in fields.items():
        if not text:  # WCS's examples leave optional fields empty
            continue
        try:
            port = int(text)
        except ValueError:
            raise ConfigError(f"{where}: <{name}> must be a port number, got {text!r}") from None
        if not 0 < port < 65536:
            raise ConfigError(f"{where}: <{name}> port out of range: {port}")
        ports[name] = port
    defaults = Node(id=element.attrs.get("id") or str(index), ip=ip)
    return dataclasses.replace(
        defaults,
        ws=ports.get("ws", defaults.ws),
        wss=ports.get("wss", defaults.wss),
        http=ports.get("http", defaults.http),
        https=ports.get("https", defaults.https),
        flash=ports.get("flash", defaults.flash),
    )


def load_loadbalancing(path: Path) -> LoadBalancerConfig:
    """Parse ``loadbalancing.xml``; raises :class:`ConfigError` naming file, line and problem."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    root = _parse_tree(data, path)
    where = f"{path}:{root.line}"
    if root.name != "loadbalancer":
        raise ConfigError(f"{where}: the root element must be <loadbalancer>, not <{root.name}>")
    known = {"mode", "randomize", "stream_distribution"}
    for attr in root.attrs:
        if attr not in known:
            raise ConfigError(f"{where}: unknown attribute {attr!r} of <loadbalancer>")
    mode_text = root.attrs.get("mode", "ROUNDROBIN")
    mode = MODES.get(mode_text.strip().upper())
    if mode is None:
        raise ConfigError(f"{where}: mode={mode_text!r} is not one of {', '.join(sorted(set(MODES)))}")
    distribution = root.attrs.get("stream_distribution", "webrtc").strip().lower()
    if distribution not in DISTRIBUTIONS:
        raise ConfigError(f"{where}: stream_distribution={distribution!r} must be webrtc or rtmp")
    nodes = []
    for index, child in enumerate(root.children, 1):
        if child.name != "node":
            raise ConfigError(f"{path}:{child.line}: unknown element <{child.name}> in <loadbalancer>")
        nodes.append(_node(child, path, index))
    if not nodes:
        raise ConfigError(f"{where}: <loadbalancer> lists no <node>")
    return LoadBalancerConfig(
        mode=mode,
        randomize=_bool(root.attrs.get("randomize", "false"), f"{where}: randomize"),
        stream_distribution=distribution,
        nodes=tuple(nodes),
    )
