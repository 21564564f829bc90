"""RtmpServer: the listening socket(s) and the set of :class:`RtmpServerConnection` they accept.

Lifecycle: ``await start(host, port)`` (port 0 picks a free one: see :attr:`port`) → connections
are served, each in a task of the server's :class:`~rtcdn.tasks.TaskSet` → ``await close()``
stops listening, closes every connection (players get NetStream.Play.Stop, sinks ``on_end``) and
waits for them. Over ``max_connections`` a new socket is closed at once.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Sequence

from ..tasks import TaskSet
from .config import RtmpConfig
from .connection import RtmpHandler, RtmpServerConnection

logger = logging.getLogger(__name__)


class RtmpServer:
    def __init__(self, handler: RtmpHandler, config: RtmpConfig | None = None) -> None:
        self.handler = handler
        self.config = config or RtmpConfig()
        self.connections: set[RtmpServerConnection] = set()
        self.refused = 0
        "Connections closed at accept because of ``max_connections``."
        self._tasks = TaskSet("rtmp")
        self._server: asyncio.Server | None = None

    async def start(self, host: str | Sequence[str] | None = "0.0.0.0", port: int = 1935) -> None:
        """Listen on ``host`` (one address, several, or None for all) and ``port`` (0: any free one)."""
        if self._server is not None:
            raise RuntimeError("the RTMP server is already started")
        self._server = await asyncio.start_server(self._accepted, host, port, reuse_address=True)

    @property
    def port(self) -> int:
        """The port of the first listening socket (the one picked when ``start`` got 0)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the RTMP server is not listening")
        return int(self._server.sockets[0].getsockname()[1])

    def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self.connections) >= self.config.max_connections:
            self.refused += 1
            logger.warning(
                "rtmp: refusing %s: %d connections already",
                writer.get_extra_info("peername"),
                len(self.connections),
            )
            writer.transport.abort()
            return
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = RtmpServerConnection(reader, writer, self.handler, self.config)
        self.connections.add(conn)
        try:
            self._tasks.spawn(self._serve(conn), f"connection {conn.peer}")
        except RuntimeError:  # closing: the task set refuses new tasks
            self.connections.discard(conn)
            writer.transport.abort()

    async def _serve(self, conn: RtmpServerConnection) -> None:
        try:
            await conn.run()
        finally:
            self.connections.discard(conn)

    async def close(self) -> None:
        """Stop listening, close every connection and wait for them (idempotent)."""
        if self._server is not None:
            self._server.close()
        conns = list(self.connections)
        for conn in conns:
            conn.close("the server is shutting down")
        if conns:
            waits = [asyncio.ensure_future(c.wait_closed()) for c in conns]
            _, pending = await asyncio.wait(waits, timeout=self.config.close_timeout + 1.0)
            for fut in pending:
                fut.cancel()
        await self._tasks.close()
        if self._server is not None:
            await self._server.wait_closed()
