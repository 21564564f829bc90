"""NetConnection / NetStream command messages shared by the server and the client side.

Builders for ``_result`` / ``_error`` / ``onStatus`` and other command messages (AMF0, type 20),
their decoding (:func:`parse_command`, also for the AMF3 command type 17 whose first byte is a
format switch), stream names with a ``?query`` (:func:`split_name`), ``rtmp://`` URLs
(:func:`parse_url`, FFmpeg's app/instance/stream rules) and the Enhanced RTMP capabilities a
``connect`` command object declares (:class:`Capabilities`). Pure functions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from . import amf0
from .chunk import COMMAND_AMF0, COMMAND_AMF3, Message
from .errors import RtmpError, RtmpProtocolError

DEFAULT_PORT = 1935
FOURCC_CAN_DECODE, FOURCC_CAN_ENCODE, FOURCC_CAN_FORWARD = 0x01, 0x02, 0x04
CAPS_EX_RECONNECT, CAPS_EX_MULTITRACK, CAPS_EX_MODEX, CAPS_EX_NANO_OFFSET = 0x01, 0x02, 0x04, 0x08


@dataclass(frozen=True, slots=True)
class Command:
    """A decoded command: ``name``, ``transaction`` id, the command object ``obj`` (often None), ``args``."""

    name: str
    transaction: float
    obj: object
    args: tuple[object, ...]
    stream_id: int = 0

    def arg(self, index: int, kind: type, default: object = None) -> object:
        """``args[index]`` if it is there and of type ``kind``, else ``default``."""
        if index < len(self.args) and isinstance(self.args[index], kind):
            return self.args[index]
        return default


def parse_command(msg: Message) -> Command:
    """A command message → :class:`Command`; raises ``AmfError`` or :class:`RtmpProtocolError`.
    A missing transaction id reads as 0 (FFmpeg's ``-listen`` server sends a bare ``onFCPublish``)."""
    payload = msg.payload[1:] if msg.type_id == COMMAND_AMF3 and msg.payload[:1] == b"\x00" else msg.payload
    values = amf0.decode(payload)
    if not values or not isinstance(values[0], str):
        raise RtmpProtocolError("malformed command: it does not start with a name")
    name, rest = values[0], values[1:]
    transaction = 0.0
    if rest and isinstance(rest[0], float):
        transaction, rest = rest[0], rest[1:]
    return Command(name, transaction, rest[0] if rest else None, tuple(rest[1:]), msg.stream_id)


def command(name: str, transaction: float, obj: object = None, *args: object, stream_id: int = 0) -> Message:
    return Message(COMMAND_AMF0, stream_id, 0, amf0.encode(name, float(transaction), obj, *args))


def status(level: str, code: str, description: str = "", **extra: object) -> dict[str, object]:
    """An info object: ``{level, code, description, ...}``."""
    return {"level": level, "code": code, "description": description, **extra}


def on_status(stream_id: int, level: str, code: str, description: str = "", **extra: object) -> Message:
    return command("onStatus", 0, None, status(level, code, description, **extra), stream_id=stream_id)


def split_name(raw: str) -> tuple[str, dict[str, str]]:
    """``"key?token=a&x=1"`` → ``("key", {"token": "a", "x": "1"})`` (a repeated parameter: the last wins)."""
    name, _, query = raw.partition("?")
    return name, dict(parse_qsl(query, keep_blank_values=True))


@dataclass(frozen=True, slots=True)
class RtmpUrl:
    """``rtmp://host[:port]/app[/instance]/stream[?query]``; ``stream`` keeps its ``?query``."""

    host: str
    port: int
    app: str
    stream: str
    tc_url: str


def parse_url(url: str) -> RtmpUrl:
    """Split an RTMP URL the way FFmpeg does: with two path parts they are app and stream; with more,
    the first two are the app (``app/instance``) and the rest is the stream."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port or DEFAULT_PORT
    except ValueError as exc:  # a bad IPv6 literal, a port out of range or not a number
        raise RtmpError(f"bad RTMP URL {url!r}: {exc}") from None
    if parts.scheme != "rtmp":
        raise RtmpError(f"not an rtmp:// URL: {url!r}")
    if not host:
        raise RtmpError(f"no host in RTMP URL {url!r}")
    path, query = parts.path.lstrip("/"), f"?{parts.query}" if parts.query else ""
    if "/" not in path and "/" in parts.query:  # rtmp://host/live?auth=x/stream: the query is the app's
        app_query, _, stream = parts.query.partition("/")
        path, query = f"{path}?{app_query}/{stream}", ""
    pieces = path.split("/")
    if len(pieces) >= 3:
        app, stream = "/".join(pieces[:2]), "/".join(pieces[2:])
    elif len(pieces) == 2:
        app, stream = pieces
    else:
        app, stream = pieces[0], ""
    if not app:
        raise RtmpError(f"no application in RTMP URL {url!r}")
    netloc = host if ":" not in host else f"[{host}]"
    if parts.port:
        netloc += f":{port}"
    return RtmpUrl(host, port, app, stream + query if stream else "", f"rtmp://{netloc}/{app}")


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a ``connect`` command object declares about Enhanced RTMP: the FourCCs it handles
    (``fourCcList`` and the keys of ``videoFourCcInfoMap`` / ``audioFourCcInfoMap``; ``"*"`` is any)
    and ``capsEx``. ``enhanced`` is False for a legacy client (none of those properties)."""

    fourccs: frozenset[str] = frozenset()
    caps_ex: int = 0
    enhanced: bool = False

    @classmethod
    def of(cls, obj: object) -> Capabilities:
        if not isinstance(obj, dict):
            return cls()
        found: set[str] = set()
        enhanced = False
        listed = obj.get("fourCcList")
        if isinstance(listed, list):
            enhanced = True
            found.update(x for x in listed if isinstance(x, str))
        for key in ("videoFourCcInfoMap", "audioFourCcInfoMap"):
            table = obj.get(key)
            if isinstance(table, dict):
                enhanced = True
                found.update(k for k, v in table.items() if not isinstance(v, float) or v != 0)
        caps = obj.get("capsEx")
        if isinstance(caps, float):
            enhanced = True
        caps_ex = int(caps) if isinstance(caps, float) and math.isfinite(caps) else 0
        return cls(frozenset(found), caps_ex, enhanced)

    def accepts(self, fourcc: str) -> bool:
        return "*" in self.fourccs or fourcc in self.fourccs


def server_capabilities(video: Iterable[str], audio: Iterable[str], caps_ex: int) -> dict[str, object]:
    """The E-RTMP properties a server adds to its ``connect`` ``_result`` (we forward, not transcode)."""
    video, audio = list(video), list(audio)
    return {
        "fourCcList": video + audio,
        "videoFourCcInfoMap": {cc: float(FOURCC_CAN_FORWARD) for cc in video},
        "audioFourCcInfoMap": {cc: float(FOURCC_CAN_FORWARD) for cc in audio},
        "capsEx": float(caps_ex),
    }
