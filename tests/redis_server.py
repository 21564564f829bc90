"""A real Debian ``redis-server`` on a loopback address, started and stopped by the tests; with
``tls=True`` it speaks only TLS (``rediss://``), with a certificate for the address made here."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from rtcdn.tls import ensure_self_signed
from testkit import free_port

__all__ = ["RedisServer", "free_port"]


class RedisServer:
    """``start()`` runs redis-server (no persistence) on ``host:port``; ``kill()``/``stop()`` end it,
    ``start()`` again brings an empty one back on the same port (what a restart looks like)."""

    def __init__(self, host: str, port: int, workdir: Path, tls: bool = False) -> None:
        self.host, self.port, self.workdir, self.tls = host, port, workdir, tls
        self.proc: subprocess.Popen[bytes] | None = None
        self.ca = workdir / "cert.pem"
        "With ``tls``: the server's self-signed certificate, the CA a client must trust."

    @property
    def url(self) -> str:
        if self.tls:
            return f"rediss://{self.host}:{self.port}/0?ssl_ca_certs={self.ca}"
        return f"redis://{self.host}:{self.port}/0"

    def _certificate(self) -> list[str]:
        """Make the certificate and key (rtcdn's own self-signed maker); redis-server's TLS options."""
        cert, key = ensure_self_signed(self.workdir, [self.host])
        assert cert == self.ca
        tls = ["--tls-port", str(self.port), "--tls-cert-file", str(cert), "--tls-key-file", str(key)]
        return ["--port", "0", *tls, "--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no"]

    def _pong(self) -> bool:
        with socket.create_connection((self.host, self.port), timeout=0.2) as raw:
            if not self.tls:
                raw.sendall(b"PING\r\n")
                return raw.recv(16).startswith(b"+PONG")
            context = ssl.create_default_context(cafile=str(self.ca))
            with context.wrap_socket(raw, server_hostname=self.host) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed (make test installs Debian's redis-server)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        args = [binary, "--bind", self.host, "--save", "", "--appendonly", "no"]
        args += ["--dir", str(self.workdir), "--protected-mode", "no"]
        args += self._certificate() if self.tls else ["--port", str(self.port)]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if self._pong():
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
