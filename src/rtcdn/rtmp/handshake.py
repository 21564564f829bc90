"""The RTMP handshake (RTMP 1.0 spec §5.2), the simple form, server and client side.

``C0 C1 → S0 S1 S2 → C2``: C0/S0 is the version byte (3); C1/S1 are 1536 bytes (time, 4 bytes we
write as zero, 1528 random bytes); S2/C2 echo the peer's C1/S1. A client that sends the Flash
Player 9 digest scheme in C1 (FFmpeg always does, browsers' Flash did) is answered the simple way:
the zero version field in our S1 tells FFmpeg and librtmp (OBS) not to look for a server digest,
and they accept the echo. The other direction (we are the client) works with nginx-rtmp, FFmpeg's
``-listen 1`` server and the servers that accept the simple form.

Each side is one coroutine on an asyncio stream pair, bounded by ``timeout`` seconds; a wrong
version byte raises :class:`RtmpProtocolError` ``bad handshake version …``, a stall
:class:`RtmpTimeout`, a peer that closes midway :class:`RtmpClosed`.
"""

from __future__ import annotations

import asyncio
import os
import struct
import time

from .errors import RtmpClosed, RtmpProtocolError, RtmpTimeout

VERSION = 3
SIZE = 1536
HANDSHAKE_TIMEOUT = 10.0


def _now_ms(start: float) -> int:
    return int((time.monotonic() - start) * 1000) & 0xFFFFFFFF


def _packet(epoch: int) -> bytes:
    """C1/S1: our time, four zero bytes (= no digest scheme), random bytes."""
    return struct.pack("!II", epoch, 0) + os.urandom(SIZE - 8)


def _echo(peer: bytes, read_at: int) -> bytes:
    """S2/C2: the peer's packet with its time, the time we read it at, and its random bytes."""
    return peer[:4] + struct.pack("!I", read_at) + peer[8:]


def _check_version(version: int, side: str) -> None:
    if version != VERSION:
        hint = " (RTMPE/encrypted RTMP is not supported)" if version in (6, 8, 9) else ""
        raise RtmpProtocolError(f"bad handshake version {version} from the {side} (expected {VERSION}){hint}")


async def _read(reader: asyncio.StreamReader, n: int, what: str) -> bytes:
    try:
        return await reader.readexactly(n)
    except asyncio.IncompleteReadError as exc:
        raise RtmpClosed(
            f"the peer closed the connection during the handshake ({what}: {len(exc.partial)} of {n} bytes)"
        ) from None


async def server_handshake(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float = HANDSHAKE_TIMEOUT
) -> bytes:
    """Answer a client's handshake; returns its C1 (whose bytes 4..8 are non-zero for FP9 clients)."""
    start = time.monotonic()
    try:
        async with asyncio.timeout(timeout):
            c0 = await _read(reader, 1, "C0")
            _check_version(c0[0], "client")
            s1 = _packet(0)
            writer.write(bytes((VERSION,)) + s1)  # S0+S1 may go before C1 (§5.2.5)
            c1 = await _read(reader, SIZE, "C1")
            writer.write(_echo(c1, _now_ms(start)))
            await writer.drain()
            await _read(reader, SIZE, "C2")  # C2 should echo S1; peers differ, so it is not checked
            return c1
    except TimeoutError:
        raise RtmpTimeout(f"the client did not complete the handshake within {timeout:g} s") from None


async def client_handshake(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float = HANDSHAKE_TIMEOUT
) -> None:
    """Handshake with a server as the client (simple form, C1 version field zero)."""
    start = time.monotonic()
    try:
        async with asyncio.timeout(timeout):
            writer.write(bytes((VERSION,)) + _packet(0))
            await writer.drain()
            s0 = await _read(reader, 1, "S0")
            _check_version(s0[0], "server")
            s1 = await _read(reader, SIZE, "S1")
            read_at = _now_ms(start)
            writer.write(_echo(s1, read_at))
            await writer.drain()
            await _read(reader, SIZE, "S2")  # S2 should echo C1; digest servers answer otherwise
    except TimeoutError:
        raise RtmpTimeout(f"the server did not complete the handshake within {timeout:g} s") from None
