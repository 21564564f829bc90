"""WorkerPool: ``rtcdn serve --workers N`` — N processes on one machine, one core each.

Worker 0 (this process) is where streams are published; workers 1..N-1 are child ``rtcdn serve``
processes on the same address with ports shifted by ``1000 * k`` and a slice of the media port
range. They are local CDN edges: worker 0's :class:`~rtcdn.cdn.CdnOrigin` relays every live
stream to them and its balancer spreads players over all workers, itself included.

Lifecycle: ``start()`` spawns the children, ``close()`` stops them with SIGTERM (then SIGKILL).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

from ..config import Settings
from .config import LoadBalancerConfig, Node

logger = logging.getLogger(__name__)

PORT_STEP = 1000


def worker_nodes(settings: Settings) -> tuple[Node, ...]:
    """Worker 0 (local) and the children, as balancer nodes."""
    host = settings.bind if settings.bind not in ("", "0.0.0.0") else "127.0.0.1"
    http = settings.http_ports[0] if settings.http_ports else 0
    return tuple(
        Node(
            id=str(k),
            ip=host,
            ws=settings.ws_port + PORT_STEP * k,
            wss=settings.wss_port,
            http=http + PORT_STEP * k,
            local=(k == 0),
            same_host=True,
        )
        for k in range(settings.workers)
    )


def workers_config(settings: Settings) -> LoadBalancerConfig:
    """Players go to the worker whose process is the least loaded (worker 0 also ingests the
    publishers and relays every stream to the others, so it takes fewer players than they do)."""
    return LoadBalancerConfig(mode="LEAST_LOADED_PROCESS", nodes=worker_nodes(settings))


def media_slice(settings: Settings, k: int) -> tuple[int, int]:
    """Worker ``k``'s share of ``media_port_from``..``media_port_to`` (0/0: the OS picks)."""
    low, high = settings.media_port_from, settings.media_port_to
    if not low:
        return 0, 0
    size = (high - low + 1) // settings.workers
    return low + size * k, low + size * (k + 1) - 1


class WorkerPool:
    def __init__(self, settings: Settings, state_dir: Path) -> None:
        self._settings = settings
        self._state_dir = state_dir
        self._procs: list[asyncio.subprocess.Process] = []

    def command(self, k: int) -> list[str]:
        s = self._settings
        node = worker_nodes(s)[k]
        low, high = media_slice(s, k)
        cmd = [
            sys.executable,
            "-m",
            "rtcdn",
            "serve",
            "--worker-index",
            str(k),
            "--bind",
            s.bind,
            "--ws-port",
            str(node.ws),
            "--wss-port",
            "0",
            "--rtmp-port",
            "0",
            "--http-ports",
            str(node.http),
            "--https-ports",
            "",
            "--media-ports",
            f"{low}-{high}",
            "--state-dir",
            str(self._state_dir / f"worker-{k}"),
            "--log-level",
            logging.getLevelName(logging.getLogger().level),
        ]
        if s.config_dir is not None:
            cmd += ["--config-dir", str(s.config_dir)]
        return cmd

    async def start(self) -> None:
        for k in range(1, self._settings.workers):
            proc = await asyncio.create_subprocess_exec(*self.command(k), stdout=asyncio.subprocess.DEVNULL)
            self._procs.append(proc)
            logger.info("worker %d started (pid %d)", k, proc.pid)

    async def close(self) -> None:
        for proc in self._procs:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        for proc in self._procs:
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        self._procs.clear()
