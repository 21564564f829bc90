"""What every fuzz target shares (tests/fuzz and bench/fuzz.py): the network guard, the log watch, the
leak snapshot, the example driver (hypothesis in a worker thread, each example run on the server's
event loop) and the mutation strategies (bytes, SDP lines, JSON values).

Network rule: a fuzzed input may name any host (a relay ``uri``, an ``rtmpUrl``, an ICE candidate), so
three layers keep every byte on loopback: the inputs are rewritten to point at a closed port on
127.0.0.x (:func:`safe_url`, :func:`guard_sdp`), the server itself drops candidates it cannot reach,
and :class:`NetGuard` (a ``sys.addaudithook`` hook, active only inside a fuzz run) refuses, before
the system call, any ``connect``/``sendto``/``sendmsg`` to a non-loopback address and any name
resolution but of loopback literals and ``localhost``; every refusal is recorded and fails the run.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import json
import logging
import re
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import HypothesisDeprecationWarning, HypothesisWarning

T = TypeVar("T")

TESTS = Path(__file__).resolve().parents[1]
for _sub in ("", "rtp", "rtmp"):  # testkit, wcs_client, rtp_media, rtmp_media (also for bench/fuzz.py)
    if str(TESTS / _sub) not in sys.path:
        sys.path.append(str(TESTS / _sub))

# --- hypothesis profiles ----------------------------------------------------------------------------
settings.register_profile(
    "ci",
    deadline=None,
    database=None,
    derandomize=True,  # CI sees the same inputs every run; bench/fuzz.py explores at random
    print_blob=True,
    suppress_health_check=list(HealthCheck),
)
settings.register_profile(
    "explore", deadline=None, database=None, derandomize=False, suppress_health_check=list(HealthCheck)
)


def fuzz_settings(policy: bool = True) -> Any:
    """Settings of a fuzzed server: quick ICE timeout; with ``policy``, relays and pushes may only
    reach loopback (where the server has ``relay_allowed_hosts``: the fuzzed URLs are loopback ones
    anyway, and :class:`NetGuard` refuses the rest)."""
    import dataclasses

    from rtcdn.config import Settings
    from testkit import make_settings

    extra: dict[str, object] = {}
    if policy and "relay_allowed_hosts" in {f.name for f in dataclasses.fields(Settings)}:
        extra["relay_allowed_hosts"] = ["127.0.0.0/8"]
    return make_settings(webrtc_connect_timeout_ms=2000, **extra)


# --- network guard ----------------------------------------------------------------------------------
def loopback(host: object) -> bool:
    """Is ``host`` a loopback IP literal (127.0.0.0/8, ::1)?"""
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if not isinstance(host, str):
        return False
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


class NetGuard:
    """The audit hook; :meth:`active` turns it on for a block and collects what it refused."""

    _installed = False
    _on = False
    violations: list[str] = []

    @classmethod
    def _hook(cls, event: str, args: tuple[Any, ...]) -> None:
        if not cls._on or not event.startswith("socket."):
            return
        if event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
            address = args[1]
            ok = (
                address is None
                or isinstance(address, str | bytes)
                or (isinstance(address, tuple) and loopback(address[0]))
            )
        elif event == "socket.getaddrinfo":
            host = args[0]
            ok = host in (None, "", b"", "localhost", b"localhost") or loopback(host)
        elif event in ("socket.gethostbyname", "socket.gethostbyname_ex", "socket.gethostbyaddr"):
            ok = args[0] == "localhost" or loopback(args[0])
        else:
            return
        if not ok:
            what = f"{event} {args[1:] if event != 'socket.getaddrinfo' else args[:2]!r}"
            cls.violations.append(what)
            raise PermissionError(errno.EACCES, f"fuzz network guard: not loopback: {what}")

    @classmethod
    @contextmanager
    def active(cls) -> Iterator[list[str]]:
        if not cls._installed:
            sys.addaudithook(cls._hook)
            cls._installed = True
        cls.violations = []
        cls._on = True
        try:
            yield cls.violations
        finally:
            cls._on = False


# --- known bugs -------------------------------------------------------------------------------------
def known_exception(exc: BaseException) -> str | None:
    """The name of the known bug an exception is (each has an xfail(strict=True) reproduction), or None.

    * ``amf0-date``: an AMF0 date within +-8.64e15 ms but outside datetime's years 1..9999 raises
      OverflowError out of ``amf0.decode`` (test_amf0_date_out_of_datetime_range,
      test_rtmp_command_with_far_date).
    """
    if isinstance(exc, OverflowError) and "date value out of range" in str(exc):
        frames = traceback.extract_tb(exc.__traceback__)
        if any(f.filename.endswith("amf0.py") for f in frames):
            return "amf0-date"
    return None


def known_record(record: logging.LogRecord) -> bool:
    """A log record whose exception is a known bug (:func:`known_exception`)."""
    exc = record.exc_info[1] if record.exc_info else None
    return exc is not None and known_exception(exc) is not None


# --- log watch --------------------------------------------------------------------------------------
BAD_WORDS = ("Traceback", "Unhandled", "Error handling request", "internal error", "never retrieved")


class LogWatch(logging.Handler):
    """Collects WARNING+ records of every logger; ``bad`` are errors, tracebacks and crash words."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []
        self.bad: list[str] = []
        self.ignore: list[Callable[[logging.LogRecord], bool]] = []
        "Known bugs (each with its reproduction test) whose records must not fail the run."

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        try:
            text = record.getMessage()
        except Exception:  # a broken format string is a finding too
            text = f"{record.msg!r} % {record.args!r}"
        if record.exc_info:
            text += "\n" + "".join(traceback.format_exception(*record.exc_info))
        if record.levelno >= logging.ERROR or record.exc_info or any(w in text for w in BAD_WORDS):
            if not any(known(record) for known in self.ignore):
                self.bad.append(f"{record.levelname} {record.name}: {text[:3000]}")

    @classmethod
    @contextmanager
    def active(cls) -> Iterator[LogWatch]:
        watch = cls()
        root = logging.getLogger()
        root.addHandler(watch)
        old = root.level
        if root.level > logging.WARNING or root.level == logging.NOTSET:
            root.setLevel(logging.WARNING)
        try:
            yield watch
        finally:
            root.removeHandler(watch)
            root.setLevel(old)


# --- leaks ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Snapshot:
    peers: int
    streams: tuple[str, ...]
    sessions: int
    wcs_sessions: int
    tasks: int
    rtmp_connections: int

    @classmethod
    def of(cls, server: Any) -> Snapshot:
        rtmp = sum(len(getattr(getattr(li, "server", None), "connections", ())) for li in server.listeners)
        return cls(
            peers=len(server.media.peers),
            streams=tuple(sorted(s.name for s in server.streams)),
            sessions=len(server.streams.sessions),
            wcs_sessions=len(server.sessions),
            tasks=len(asyncio.all_tasks()),
            rtmp_connections=rtmp,
        )


async def settle(server: Any, want: Snapshot, timeout: float = 15.0) -> Snapshot:
    """Wait (up to ``timeout`` s) until the server is back to ``want``; returns the last snapshot."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    now = Snapshot.of(server)
    while now != want and loop.time() < end:
        await asyncio.sleep(0.1)
        now = Snapshot.of(server)
    return now


def threads() -> set[str]:
    """Live threads but the event loops' default executors (owned by the loop, not the server)."""
    return {f"{t.name}#{t.ident}" for t in threading.enumerate() if not t.name.startswith("asyncio_")}


# --- the driver -------------------------------------------------------------------------------------
@dataclass
class Tally:
    """Inputs tried and failures of one target (bench/fuzz.py prints these)."""

    name: str
    tried: int = 0
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0


def run_examples(
    tally: Tally,
    strategy: st.SearchStrategy[T],
    check: Callable[[T], None],
    max_examples: int,
    *,
    collect: bool = False,
    deadline: float | None = None,
) -> None:
    """Run ``check`` on ``max_examples`` inputs of ``strategy`` (hypothesis, this thread). With
    ``collect`` (bench) failures are recorded and the run goes on; else the first one raises
    (shrunk by hypothesis). ``deadline``: a ``time.monotonic()`` after which examples are skipped."""

    @settings(max_examples=max_examples)
    @given(strategy)
    def inner(value: T) -> None:
        if deadline is not None and time.monotonic() > deadline:
            return
        tally.tried += 1
        if not collect:
            check(value)
            return
        try:
            check(value)
        except Exception as exc:
            tally.failures.append(f"{type(exc).__name__}: {exc}\n  input: {value!r:.1500}")

    start = time.monotonic()
    try:
        with warnings.catch_warnings():
            # the server's loop (another thread) uses `random` while this thread draws an example
            warnings.filterwarnings("ignore", "Do not use the `random` module", HypothesisDeprecationWarning)
            warnings.filterwarnings("ignore", "Generating overly large repr", HypothesisWarning)
            inner()
    finally:
        tally.seconds += time.monotonic() - start


async def in_thread(fn: Callable[[], T]) -> T:
    """Run blocking ``fn`` on a thread of its own (joined before returning) while the loop runs."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()

    def settle_future(ok: bool, value: Any) -> None:
        if done.done():
            return
        if ok:
            done.set_result(value)
        else:
            done.set_exception(value)

    def body() -> None:
        try:
            result = fn()
        except BaseException as exc:
            loop.call_soon_threadsafe(settle_future, False, exc)
        else:
            loop.call_soon_threadsafe(settle_future, True, result)

    thread = threading.Thread(target=body, name="fuzz-driver", daemon=True)
    thread.start()
    try:
        return await done
    finally:
        while thread.is_alive():
            await asyncio.sleep(0.01)


def on_loop(loop: asyncio.AbstractEventLoop, timeout: float = 60.0) -> Callable[[Coroutine[Any, Any, T]], T]:
    """From the driver thread: run a coroutine on the server's loop and wait for its result."""

    def run(coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)

    return run


# --- strategies -------------------------------------------------------------------------------------
INTERESTING_INTS = (0, 1, 2, 3, 4, 7, 8, 15, 16, 31, 32, 63, 64, 127, 128, 255, 256, 1023, 1024, 4095,
                    0x7FFF, 0x8000, 0xFFFF, 0x10000, 0xFFFFFF, 0x1000000, 0x7FFFFFFF, 0x80000000,
                    0xFFFFFFFF, 1 << 32, 1 << 53, (1 << 63) - 1, 1 << 64, -1, -128, -(1 << 31))  # fmt: skip


class Pool(list[T]):
    """Seeds whose repr stays short (hypothesis puts strategy arguments in its messages)."""

    def __repr__(self) -> str:
        return f"<{len(self)} seeds>"


@st.composite
def mutated(draw: st.DrawFn, seeds: Sequence[bytes], max_ops: int = 4) -> bytes:
    """A seed with up to ``max_ops`` mutations: bit flips, byte sets, interesting integers written
    in, inserted/deleted/duplicated ranges, truncation, splices of another seed."""
    data = bytearray(draw(st.sampled_from(Pool(seeds))))
    for _ in range(draw(st.integers(0, max_ops))):
        op = draw(st.integers(0, 7))
        n = len(data)
        pos = draw(st.integers(0, max(0, n - 1)))
        if op == 0 and n:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == 1 and n:
            data[pos] = draw(st.integers(0, 255))
        elif op == 2:
            value = draw(st.sampled_from(INTERESTING_INTS))
            width = draw(st.sampled_from((1, 2, 3, 4, 8)))
            data[pos : pos + width] = (value % (1 << (8 * width))).to_bytes(width, "big")
        elif op == 3:
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == 4 and n:
            del data[pos : pos + draw(st.integers(1, max(1, n // 4)))]
        elif op == 5 and n:
            size = draw(st.integers(1, max(1, n // 4)))
            data[pos:pos] = data[pos : pos + size]
        elif op == 6:
            del data[pos:]
        elif op == 7:
            other = draw(st.sampled_from(Pool(seeds)))
            cut = draw(st.integers(0, len(other)))
            data[pos:] = other[cut:]
    return bytes(data)


def fuzz_bytes(seeds: Sequence[bytes], max_random: int = 64) -> st.SearchStrategy[bytes]:
    """Random bytes or mutated seeds (mostly the latter: they get past the first checks)."""
    pool = Pool(seeds)
    return st.one_of(st.binary(max_size=max_random), mutated(pool), mutated(pool, max_ops=1))


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(1 << 70), 1 << 70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    json_scalars, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20,
)  # fmt: skip
"Any JSON value (finite numbers: Python's json also reads NaN/Infinity; see odd_values)."
huge_strings = st.sampled_from(("x" * 70_000, "\u00e9" * 40_000, "0" * 300_000, "\u2028\u0000" * 1000))
odd_values = st.one_of(
    json_values,
    huge_strings,
    st.sampled_from([None, 0, -1, 1e308, 2**64, "", " ", [], {}, [[[[[]]]]], {"a": {"b": {"c": {}}}}, True]),
    st.recursive(st.none(), lambda x: st.lists(x, min_size=1, max_size=1), max_leaves=60),  # deep nesting
)


def strict_json(text: str) -> Any:
    """``json.loads`` refusing NaN/Infinity (what a browser's JSON.parse accepts)."""

    def refuse(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    try:
        return json.loads(text, parse_constant=refuse)
    except RecursionError:
        raise ValueError("nested too deep for json") from None


# --- safe network values ----------------------------------------------------------------------------
def closed_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (below the ephemeral range: no client takes it)."""
    from testkit import free_port

    return free_port()


def safe_urls(port: int) -> list[str]:
    """Relay ``uri`` / ``rtmpUrl`` values a fuzzer may send: each names only 127.0.0.x (at a closed
    ``port``) or no host at all. Not here: the values of the known URL parsing bugs (see the xfail
    tests of test_rest_schemathesis.py)."""
    return [
        f"ws://127.0.0.1:{port}/",
        f"ws://127.0.0.2:{port}",
        f"wss://127.0.0.1:{port}/websocket",
        f"127.0.0.1:{port}",
        f"ws://127.0.0.1:{port}/a?b=c#d",
        f"rtmp://127.0.0.1:{port}/live",
        f"rtmp://127.0.0.1:{port}/live/",
        f"rtmp://127.0.0.1:{port}/app/inst/name?x=1",
        f"rtmp://127.0.0.3:{port}/live?auth=x/stream",
        f"http://127.0.0.1:{port}/",
        "rtmp:///live",
        "ws://",
        "rtmp://",
        "",
        "   ",
        "\u0000",
    ]


def safe_url(value: object, port: int) -> object:
    """A string becomes one of :func:`safe_urls` (picked by its hash); any other type stays."""
    if not isinstance(value, str):
        return value
    urls = safe_urls(port)
    return urls[sum(value.encode("utf-8", "surrogatepass")) % len(urls)]


URL_KEYS = ("uri", "rtmpUrl")


def sanitize_urls(value: Any, port: int) -> Any:
    """Every ``uri``/``rtmpUrl`` anywhere in a JSON value made safe (:func:`safe_url`)."""
    if isinstance(value, dict):
        return {k: safe_url(v, port) if k in URL_KEYS else sanitize_urls(v, port) for k, v in value.items()}
    if isinstance(value, list):
        return [sanitize_urls(v, port) for v in value]
    return value


# --- SDP mutations ----------------------------------------------------------------------------------
_NUMBER = re.compile(r"\d+")


def guard_sdp(sdp: str, fallback: str = "127.0.0.1") -> str:
    """Candidate addresses that are IP literals but not loopback become ``fallback``, mDNS names
    (``.local``) too: what aiortc parses as ``a=candidate:`` lines (``str.splitlines``)."""
    lines = sdp.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if not line.startswith("a=candidate:"):
            continue
        fields = line.split(" ")
        if len(fields) > 4:
            host = fields[4].strip()
            try:
                ipaddress.ip_address(host.split("%", 1)[0])
                is_ip = True
            except ValueError:
                is_ip = False
            if (is_ip and not loopback(host)) or host.lower().rstrip(".").endswith(".local"):
                fields[4] = fallback
                lines[i] = " ".join(fields)
    return "".join(lines)


@st.composite
def mutated_sdp(draw: st.DrawFn, offers: Sequence[str], max_ops: int = 4) -> str:
    """A real offer with lines deleted, duplicated, swapped, numbers garbled, random characters put
    in, lines replaced, the text cut or its line ends changed; then :func:`guard_sdp`."""
    lines = draw(st.sampled_from(Pool(offers))).split("\r\n")
    end = "\r\n"
    for _ in range(draw(st.integers(1, max_ops))):
        op = draw(st.integers(0, 8))
        i = draw(st.integers(0, max(0, len(lines) - 1)))
        if not lines:
            lines = [""]
        if op == 0:
            del lines[i]
        elif op == 1:
            lines.insert(i, lines[i])
        elif op == 2:
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == 3:
            value = draw(st.sampled_from((*INTERESTING_INTS, 10**30)))
            text = str(value)
            lines[i] = _NUMBER.sub(lambda m, text=text: text if draw(st.booleans()) else m.group(0), lines[i])
        elif op == 4:
            at = draw(st.integers(0, len(lines[i])))
            junk = draw(st.binary(min_size=1, max_size=12)).decode("latin-1")
            lines[i] = lines[i][:at] + junk + lines[i][at:]
        elif op == 5:
            lines[i] = draw(st.sampled_from(("a=", "m=", "=", "a=candidate:", "a=rtpmap:", "a=fmtp:96 ",
                                             "a=ssrc-group:FID", "a=extmap:99 x", "m=video 9 RTP/AVP",
                                             "a=mid:", "a=group:BUNDLE 7", "c=IN IP4", "a=setup:", "b=AS:-1")))  # fmt: skip
        elif op == 6:
            lines[i] = lines[i][: draw(st.integers(0, len(lines[i])))]
        elif op == 7:
            end = draw(st.sampled_from(("\n", "\r", "\r\n\r\n", "\u2028", "")))
        elif op == 8:
            lines[i] = draw(st.text(max_size=60))
    return guard_sdp(end.join(lines))
