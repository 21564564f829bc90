"""Processes of a benchmark: the server under test, load-generator children, and their CPU and memory.

:class:`ServerProcess` runs ``rtcdn serve`` on a loopback address of its own, with its configuration,
state and log in a folder of its own (TLS listeners off), waits for its ``ready:`` line, stops it
with SIGTERM (recording the exit code and how long shutting down took) and picks the problems out of
its log. :func:`stop_process` is that stop, for any server and signal (Janus stops on SIGINT).

:class:`Worker` is a child process (``spawn``) running a ``*_main(conn, ...)`` function, spoken to over
a pipe: the parent sends ``(command, argument)``, the child answers each with
:func:`serve_commands`. :func:`measure` takes the CPU of groups of processes over a window.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import multiprocessing as mp
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

# testkit.free_port: ports below the ephemeral range, so no outgoing connection races the bind
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from testkit import free_port as free_port

PROPERTIES = {"keep_alive.server_interval": "5000"}
"flashphoner.properties every benchmark server gets (a ``properties`` argument adds to them)."


# --- CPU and memory --------------------------------------------------------------------------------


def cpu_seconds(process: psutil.Process) -> float:
    """User + system CPU time ``process`` has used so far."""
    times = process.cpu_times()
    return float(times.user + times.system)


def total_cpu(processes: Sequence[psutil.Process]) -> float:
    """CPU seconds of ``processes`` so far (those gone count 0)."""
    total = 0.0
    for p in processes:
        with contextlib.suppress(psutil.Error):
            total += cpu_seconds(p)
    return total


def total_rss(processes: Sequence[psutil.Process]) -> int:
    """Resident memory of ``processes`` (bytes; those gone count 0)."""
    total = 0
    for p in processes:
        with contextlib.suppress(psutil.Error):
            total += int(p.memory_info().rss)
    return total


@dataclass
class Window:
    seconds: float
    cpu: dict[str, float]
    "% of one core over the window, per process group."
    box: float
    "Whole machine busy, % of all cores."
    others: float
    "CPU of every other process on the machine, % of one core (other work disturbs the figures)."


def measure(groups: Mapping[str, Sequence[psutil.Process]], seconds: float) -> Window:
    """CPU of each group of processes over ``seconds`` (this thread sleeps meanwhile)."""

    def sample() -> dict[str, float]:
        return {name: total_cpu(procs) for name, procs in groups.items()}

    psutil.cpu_percent()
    before, started = sample(), time.monotonic()
    time.sleep(seconds)
    after, elapsed = sample(), time.monotonic() - started
    box = psutil.cpu_percent()
    cpu = {k: 100 * (after[k] - before[k]) / elapsed for k in groups}
    others = max(0.0, box * (psutil.cpu_count() or 1) - sum(cpu.values()))
    return Window(elapsed, cpu, box, others)


# --- servers -----------------------------------------------------------------------------------------


def stop_process(process: subprocess.Popen[bytes], sig: int, timeout: float) -> tuple[int, float | None]:
    """Send ``sig``, wait up to ``timeout`` s (then SIGKILL); (exit code, seconds to exit or None if killed)."""
    started = time.monotonic()
    process.send_signal(sig)
    try:
        code = process.wait(timeout)
        return code, time.monotonic() - started
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait(), None


class ServerProcess:
    """``rtcdn serve`` on ``address`` (TLS listeners off), its config, state and log in ``folder``.

    ``ws_port`` is the WebSocket port; ``options`` are further command-line options (they replace the
    ones set here, e.g. ``{"--http-ports": "0"}``) and ``properties`` further ``flashphoner.properties``
    settings. ``name`` tells the servers of one benchmark apart (messages, :meth:`keep_log`).
    """

    def __init__(
        self,
        name: str,
        address: str,
        folder: Path,
        media_ports: str,
        *,
        ws_port: int = 8080,
        options: Mapping[str, str] | None = None,
        properties: Mapping[str, str] | None = None,
    ) -> None:
        self.name, self.address, self.ws_port = name, address, ws_port
        config = folder / "conf"
        config.mkdir(parents=True)
        settings = {**PROPERTIES, **(properties or {})}
        (config / "flashphoner.properties").write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
        self.log_path = folder / "server.log"
        self.options = {
            "--bind": address,
            "--ws-port": str(ws_port),
            "--wss-port": "0",
            "--https-ports": "0",
            "--media-ports": media_ports,
            "--state-dir": str(folder / "state"),
            "--config-dir": str(config),
            "--log-level": "INFO",
            **(options or {}),
        }
        self.command = [
            sys.executable,
            "-m",
            "rtcdn",
            "serve",
            *(x for item in self.options.items() for x in item),
        ]
        self.ws_url = f"ws://{address}:{ws_port}"
        http_port = self.options.get("--http-ports", "8081").split(",")[0]
        self.rest_url = f"http://{address}:{http_port}/rest-api"
        "The REST API on the first HTTP port (the server's default 8081 unless ``options`` say otherwise)."
        self.process: subprocess.Popen[bytes] | None = None
        self.ps: psutil.Process | None = None
        self.exit_code: int | None = None
        self.shutdown_seconds: float | None = None
        "SIGTERM → exit; None if the server had to be killed (or was not stopped)."

    def start(self, timeout: float = 20) -> None:
        """Start the server and wait for its ``ready:`` line; RuntimeError (server stopped) if none comes."""
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT)
        self.ps = psutil.Process(self.process.pid)
        deadline = time.monotonic() + timeout
        while "ready:" not in self.log():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"server {self.name} did not start:\n{self.log()[-2000:]}")
            time.sleep(0.05)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def keep_log(self, folder: Path | None) -> None:
        """Copy the log to ``folder/server-NAME.log`` (nothing if ``folder`` is None)."""
        if folder is None:
            return
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"server-{self.name}.log").write_text(self.log())

    def cpu_seconds(self) -> float:
        """User + system CPU time the server has used so far."""
        assert self.ps is not None
        return cpu_seconds(self.ps)

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM, then wait (SIGKILL after ``timeout``)."""
        if self.process is None or self.exit_code is not None:
            return
        self.exit_code, self.shutdown_seconds = stop_process(self.process, signal.SIGTERM, timeout)

    def problems(self) -> list[str]:
        """Log lines at WARNING and above, and tracebacks."""
        return [
            line
            for line in self.log().splitlines()
            if " WARNING " in line or " ERROR " in line or " CRITICAL " in line or "Traceback" in line
        ]


# --- load-generator children -----------------------------------------------------------------------


def split(n: int, per_worker: int) -> list[int]:
    """``n`` players over as few worker processes as ``per_worker`` allows, evenly."""
    workers = max(1, -(-n // per_worker))
    return [n // workers + (i < n % workers) for i in range(workers)]


Handler = Callable[[Any], Any]
"A child's command handler: ``handler(argument)`` → reply, or an awaitable of it."


async def serve_commands(conn: Connection, handlers: Mapping[str, Handler]) -> None:
    """Answer the parent's ``(command, argument)`` requests until ``stop`` has been answered.

    A handler that raises answers ``{"exception": "Type: message"}`` (:meth:`Worker.receive` raises it).
    """
    loop = asyncio.get_running_loop()
    commands: asyncio.Queue[tuple[str | None, Any]] = asyncio.Queue()

    def receive() -> None:
        try:
            commands.put_nowait(conn.recv())
        except (EOFError, OSError):  # the parent is gone (killed): stop, instead of spinning on EOF
            loop.remove_reader(conn.fileno())
            commands.put_nowait((None, None))

    loop.add_reader(conn.fileno(), receive)
    try:
        while True:
            command, argument = await commands.get()
            if command is None:
                return
            try:
                reply = handlers[command](argument)
                if inspect.isawaitable(reply):
                    reply = await reply
            except Exception as exc:
                reply = {"exception": f"{type(exc).__name__}: {exc}"}
            conn.send(reply)
            if command == "stop":
                return
    finally:
        loop.remove_reader(conn.fileno())


class Worker:
    """A child process running ``target(conn, *args)`` (a ``*_main`` function), spoken to over a pipe."""

    def __init__(self, target: Callable[..., None], *args: Any) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=target, args=(child, *args), daemon=True)
        self.process.start()
        child.close()
        assert self.process.pid is not None
        self.ps = psutil.Process(self.process.pid)

    def receive(self, timeout: float) -> Any:
        """The child's next message; RuntimeError if it is a handler's exception."""
        if not self.conn.poll(timeout):
            raise TimeoutError(f"worker {self.process.pid}: no answer within {timeout:.0f} s")
        reply = self.conn.recv()
        if isinstance(reply, dict) and "exception" in reply:
            raise RuntimeError(f"worker {self.process.pid}: {reply['exception']}")
        return reply

    def send(self, command: str, argument: Any = None) -> None:
        self.conn.send((command, argument))

    def request(self, command: str, timeout: float = 30, *, argument: Any = None) -> Any:
        self.send(command, argument)
        return self.receive(timeout)

    def join(self, timeout: float = 20) -> None:
        """Wait for the child to end (killed after ``timeout``). The pipe is closed first: a child
        not told to stop (the parent interrupted) reads EOF and stops by itself."""
        self.conn.close()
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
