"""What the benchmarks share: an ``rtcdn serve`` child process and a few small helpers for the figures.

:class:`ServerProcess` runs the server on a loopback address of its own, with its configuration,
state and log in a folder of its own (TLS listeners off), waits for its ``ready:`` line, measures its
CPU, stops it with SIGTERM (recording the exit code and how long shutting down took) and picks the
problems out of its log.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

PROPERTIES = {"keep_alive.server_interval": "5000"}
"flashphoner.properties every benchmark server gets (a ``properties`` argument adds to them)."


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
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.exit_code = self.process.wait(timeout)
            self.shutdown_seconds = time.monotonic() - started
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.exit_code = self.process.wait()

    def problems(self) -> list[str]:
        """Log lines at WARNING and above, and tracebacks."""
        return [
            line
            for line in self.log().splitlines()
            if " WARNING " in line or " ERROR " in line or " CRITICAL " in line or "Traceback" in line
        ]


# --- figures -------------------------------------------------------------------------------------


def cpu_seconds(process: psutil.Process) -> float:
    """User + system CPU time ``process`` has used so far."""
    times = process.cpu_times()
    return float(times.user + times.system)


def percentile_sorted(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of sorted, non-empty values (``q`` in 0..100)."""
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..100); None without values."""
    return percentile_sorted(sorted(values), q) if values else None


def rounded(value: Any) -> Any:
    """``value`` with every float rounded to 4 decimals (stable, readable diffs)."""
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


def write_results(path: Path, report: dict[str, Any]) -> None:
    """``report`` as JSON (floats rounded) to ``path``, then say so."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rounded(report), indent=1) + "\n")
    print(f"\nwritten: {os.path.relpath(path)}")
