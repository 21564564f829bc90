"""In-process network faults on the datagrams rtcdn's ICE connections receive (test-only, off by default).

This is layer 1 of the fault injection of ``tests/faults``: loss, delay, jitter, reordering,
duplication and partitions, applied where aioice hands a received datagram to its connection
(:func:`rtcdn.webrtc._aiortc.bound_receive_queue`), before aiortc sees it. It is inbound only: a
process impairs what it receives, so "faults on the edge" is the origin → edge hop as the edge
sees it (and the players' RTCP to the edge). STUN (ICE checks and consent) is answered by aioice
before this point and is never impaired: a ``blackhole`` cuts the media, not ICE.

Syntax, in the ``RTCDN_FAULTS`` environment variable or given to :func:`set_process_faults` /
:func:`attach`, comma separated ``key=value`` pairs::

    RTCDN_FAULTS="loss=0.05,delay=40ms,jitter=10ms,reorder=1,dup=0.01,seed=7,blackhole=2s@5s"

``loss=P``
    drop a datagram with probability ``P`` (0 to 1); ``5%`` is also accepted.
``burst=N``
    each loss drops ``N`` datagrams in a row (default 1).
``delay=D``
    hold every datagram ``D`` before delivering it (``ms`` or ``s``; a bare number is ms).
``jitter=J``
    add a uniform random ``-J..+J`` to each datagram's delay (never below 0).
``reorder=0|1``
    1 (default): each datagram keeps its own delay, so jitter reorders them, as a real network
    does; 0: first in, first out (a datagram waits for the ones before it).
``dup=P``
    deliver a second copy with probability ``P`` (it gets its own delay).
``blackhole=D@T``
    drop everything for ``D``, ``T`` after the faults were set (the first use of
    ``RTCDN_FAULTS`` in a process, or the call of :func:`set_process_faults` / :func:`attach`).
``seed=N``
    seed of the ``random.Random`` of each connection (connection *k* of a :class:`Faults` uses
    ``f"{seed}/{k}"``): the same seed and order of connections gives the same losses.

``RTCDN_FAULTS`` is read once per process, when the first ICE connection is made, and applies
to every ICE connection of that process (in-process test clients included); an empty or unset
variable means no faults. In-process tests with several servers use :func:`attach` instead, which
impairs only the connections made with one :class:`~rtcdn.webrtc.MediaConfig` (one server).

In-process tests may also give :func:`attach` a ``drop`` predicate, called with every datagram
(SRTP keeps the RTP header in the clear: payload type and sequence number can be read), that
drops the ones it returns True for: deterministic losses, e.g. one packet and its retransmission.

When no faults are set the receive path is the plain one (the wrapper is not installed): nothing
is paid per datagram. Counters of what was done are in :attr:`Faults.stats`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import re
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .peer import MediaConfig

logger = logging.getLogger(__name__)

ENV = "RTCDN_FAULTS"

Deliver = Callable[[bytes, int], None]
"aioice's ``Connection.data_received(data, component)``."
DropFilter = Callable[[bytes], bool]
"Drops the datagrams it returns True for (see :func:`attach`)."


class FaultSyntaxError(ValueError):
    """A fault specification that does not parse."""


_DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(ms|s)?\s*$")


def _duration(key: str, text: str) -> float:
    """Seconds from ``40ms``, ``0.5s`` or ``40`` (ms)."""
    match = _DURATION.match(text)
    if match is None:
        raise FaultSyntaxError(f"{ENV}: {key}={text!r} is not a duration (e.g. 40ms or 2s)")
    value = float(match.group(1))
    return value if match.group(2) == "s" else value / 1000


def _probability(key: str, text: str) -> float:
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise FaultSyntaxError(f"{ENV}: {key}={text!r} is not a probability (e.g. 0.05 or 5%)") from None
    if not 0 <= value <= 1:
        raise FaultSyntaxError(f"{ENV}: {key}={text!r} is not between 0 and 1")
    return value


def _integer(key: str, text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise FaultSyntaxError(f"{ENV}: {key}={text!r} is not an integer") from None
    if value < low:
        raise FaultSyntaxError(f"{ENV}: {key}={text!r} must be at least {low}")
    return value


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """What to do to received datagrams; :meth:`parse` reads the ``RTCDN_FAULTS`` syntax."""

    loss: float = 0.0
    burst: int = 1
    delay: float = 0.0
    "Seconds."
    jitter: float = 0.0
    "Seconds, either way."
    reorder: bool = True
    dup: float = 0.0
    blackhole: tuple[float, float] | None = None
    "(duration, start) in seconds."
    seed: int = 0

    @classmethod
    def parse(cls, text: str) -> FaultSpec:
        values: dict[str, object] = {}
        for item in text.split(","):
            item = item.strip()
            if not item:
                continue
            key, sep, value = item.partition("=")
            key, value = key.strip().lower(), value.strip()
            if not sep or not value:
                raise FaultSyntaxError(f"{ENV}: {item!r} is not key=value")
            if key in values:
                raise FaultSyntaxError(f"{ENV}: {key} given twice")
            if key in ("loss", "dup"):
                values[key] = _probability(key, value)
            elif key in ("delay", "jitter"):
                values[key] = _duration(key, value)
            elif key == "burst":
                values[key] = _integer(key, value, 1)
            elif key == "seed":
                values[key] = _integer(key, value, 0)
            elif key == "reorder":
                if value not in ("0", "1"):
                    raise FaultSyntaxError(f"{ENV}: reorder={value!r} must be 0 or 1")
                values[key] = value == "1"
            elif key == "blackhole":
                length, at, start = value.partition("@")
                values[key] = (_duration(key, length), _duration(key, start) if at else 0.0)
            else:
                known = ", ".join(f.name for f in fields(cls))
                raise FaultSyntaxError(f"{ENV}: unknown key {key!r} (known: {known})")
        return cls(**values)  # type: ignore[arg-type]

    @property
    def active(self) -> bool:
        """Does this spec change anything?"""
        return bool(self.loss or self.delay or self.jitter or self.dup or self.blackhole)

    def __str__(self) -> str:
        parts = []
        if self.loss:
            parts.append(f"loss={self.loss:g}" + (f",burst={self.burst}" if self.burst > 1 else ""))
        if self.delay:
            parts.append(f"delay={self.delay * 1000:g}ms")
        if self.jitter:
            parts.append(f"jitter={self.jitter * 1000:g}ms")
        if not self.reorder:
            parts.append("reorder=0")
        if self.dup:
            parts.append(f"dup={self.dup:g}")
        if self.blackhole:
            parts.append(f"blackhole={self.blackhole[0]:g}s@{self.blackhole[1]:g}s")
        parts.append(f"seed={self.seed}")
        return ",".join(parts)


@dataclass(slots=True)
class FaultStats:
    """What a :class:`Faults` did, summed over its connections; only ever incremented."""

    connections: int = 0
    "ICE connections impaired."
    received: int = 0
    "Datagrams that reached the injector."
    dropped: int = 0
    "Lost to ``loss`` (bursts included)."
    filtered: int = 0
    "Dropped by the ``drop`` predicate."
    blackholed: int = 0
    "Lost to ``blackhole``."
    duplicated: int = 0
    "Extra copies made by ``dup``."
    delayed: int = 0
    "Datagrams (copies included) delivered later through ``loop.call_later``."
    reordered: int = 0
    "Datagrams delivered after one that arrived later than they did."
    delivered: int = 0
    "Datagrams (copies included) handed to the connection."


@dataclass
class Faults:
    """A :class:`FaultSpec` in effect since :attr:`started`, with its counters."""

    spec: FaultSpec
    drop: DropFilter | None = None
    stats: FaultStats = field(default_factory=FaultStats)
    started: float = field(default_factory=time.monotonic)

    def wrap(self, deliver: Deliver) -> Deliver:
        """``deliver`` behind this spec's faults (one connection's own random generator)."""
        connection = _Connection(self, deliver)
        self.stats.connections += 1
        return connection.data_received


class _Connection:
    """The faults of one ICE connection: its random generator, burst and ordering state."""

    __slots__ = ("burst", "deliver", "faults", "highest", "index", "last_at", "rng")

    def __init__(self, faults: Faults, deliver: Deliver) -> None:
        self.faults = faults
        self.deliver = deliver
        self.rng = random.Random(f"{faults.spec.seed}/{faults.stats.connections}")
        self.burst = 0
        "Datagrams the current loss burst still drops."
        self.index = 0
        "Arrival number of the next datagram."
        self.highest = -1
        "Highest arrival number delivered so far."
        self.last_at = 0.0
        "Loop time of the latest delivery scheduled (reorder=0)."

    def arrive(self, index: int, data: bytes, component: int) -> None:
        stats = self.faults.stats
        if index < self.highest:
            stats.reordered += 1
        else:
            self.highest = index
        stats.delivered += 1
        self.deliver(data, component)

    def data_received(self, data: bytes, component: int) -> None:
        spec, stats = self.faults.spec, self.faults.stats
        stats.received += 1
        index = self.index
        self.index = index + 1
        if spec.blackhole is not None:
            length, start = spec.blackhole
            if start <= time.monotonic() - self.faults.started < start + length:
                stats.blackholed += 1
                return
        if self.faults.drop is not None and self.faults.drop(data):
            stats.filtered += 1
            return
        if self.burst:
            self.burst -= 1
            stats.dropped += 1
            return
        rng = self.rng
        if spec.loss and rng.random() < spec.loss:
            self.burst = spec.burst - 1
            stats.dropped += 1
            return
        copies = 2 if spec.dup and rng.random() < spec.dup else 1
        stats.duplicated += copies - 1
        for _ in range(copies):
            if not (spec.delay or spec.jitter):
                self.arrive(index, data, component)
                continue
            wait = spec.delay + (rng.uniform(-spec.jitter, spec.jitter) if spec.jitter else 0.0)
            loop = asyncio.get_running_loop()
            at = loop.time() + max(0.0, wait)
            if not spec.reorder:  # strictly later: the loop's timer heap does not keep ties in order
                at = self.last_at = max(at, self.last_at + 1e-6)
            stats.delayed += 1
            loop.call_at(at, self.arrive, index, data, component)


_process: Faults | None = None
_process_read = False
_attached: weakref.WeakKeyDictionary[object, Faults] = weakref.WeakKeyDictionary()


def _make(spec: str | FaultSpec | None, drop: DropFilter | None = None) -> Faults | None:
    if isinstance(spec, str):
        spec = FaultSpec.parse(spec)
    if spec is None:
        spec = FaultSpec()
    return Faults(spec, drop) if spec.active or drop is not None else None


def process_faults() -> Faults | None:
    """The faults of every ICE connection of this process: :func:`set_process_faults`, else
    ``RTCDN_FAULTS`` (read the first time this is called; a bad value raises
    :class:`FaultSyntaxError`)."""
    global _process, _process_read
    if not _process_read:
        _process_read = True
        text = os.environ.get(ENV, "").strip()
        if text:
            _process = _make(text)
            if _process is not None:
                logger.warning("%s: fault injection on received datagrams: %s", ENV, _process.spec)
    return _process


def set_process_faults(spec: str | FaultSpec | None) -> Faults | None:
    """Set (or, with None, clear) the faults of every ICE connection made from now on in this
    process, instead of ``RTCDN_FAULTS``; returns the :class:`Faults` holding the counters."""
    global _process, _process_read
    _process_read = True
    _process = _make(spec)
    return _process


def attach(media: MediaConfig, spec: str | FaultSpec | None, drop: DropFilter | None = None) -> Faults | None:
    """Impair only the ICE connections made from now on with ``media`` (one server of an
    in-process test), by ``spec`` and the ``drop`` predicate; neither detaches. Takes precedence
    over the process faults."""
    faults = _make(spec, drop)
    if faults is None:
        _attached.pop(media.ports, None)
    else:
        _attached[media.ports] = faults
    return faults


def faults_for(ports: object) -> Faults | None:
    """The faults of a connection gathered on ``ports`` (a MediaConfig's PortRange): those
    :func:`attach`-ed to it, else the process's."""
    attached = _attached.get(ports)
    return attached if attached is not None else process_faults()
