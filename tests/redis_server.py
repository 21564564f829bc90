"""A real Debian ``redis-server`` on a loopback address, started and stopped by the tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from testkit import free_port

__all__ = ["RedisServer", "free_port"]


class RedisServer:
    """``start()`` runs redis-server (no persistence) on ``host:port``; ``kill()``/``stop()`` end it,
    ``start()`` again brings an empty one back on the same port (what a restart looks like)."""

    def __init__(self, host: str, port: int, workdir: Path) -> None:
        self.host, self.port, self.workdir = host, port, workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed (make test installs Debian's redis-server)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        args = [binary, "--bind", self.host, "--port", str(self.port), "--save", "", "--appendonly", "no"]
        args += ["--dir", str(self.workdir), "--protected-mode", "no"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on {self.host}:{self.port}")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(5)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            self.proc = None
