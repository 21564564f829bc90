"""rtmp.handshake: both sides against each other, FP9-digest clients, bad versions, stalls, closes."""

from __future__ import annotations

import asyncio
import os
import struct
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from rtmp_media import Capture

from rtcdn.rtmp.errors import RtmpClosed, RtmpProtocolError, RtmpTimeout
from rtcdn.rtmp.handshake import SIZE, client_handshake, server_handshake

Serve = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def pair(serve: Serve) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        yield reader, writer
    finally:
        writer.close()
        server.close()
        await server.wait_closed()


async def test_client_and_server_sides_agree() -> None:
    result: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            result.set_result(await server_handshake(reader, writer, 2.0))
            writer.write(b"after")
            await writer.drain()
        finally:
            writer.close()

    async for reader, writer in pair(serve):
        await client_handshake(reader, writer, 2.0)
        c1 = await result
        assert len(c1) == SIZE and c1[4:8] == b"\x00\x00\x00\x00"  # the simple form
        assert await reader.read() == b"after"  # nothing of the handshake is left over


async def test_server_answers_an_fp9_digest_client_the_simple_way() -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await server_handshake(reader, writer, 2.0)
        finally:
            writer.close()

    async for reader, writer in pair(serve):
        c1 = struct.pack("!I", 1234) + bytes([9, 0, 124, 2]) + os.urandom(SIZE - 8)
        writer.write(b"\x03" + c1)
        s0s1 = await reader.readexactly(1 + SIZE)
        s2 = await reader.readexactly(SIZE)
        assert s0s1[0] == 3
        assert s0s1[5:9] == b"\x00\x00\x00\x00"  # S1 version zero: the client must not look for a digest
        assert s2[:4] == c1[:4] and s2[8:] == c1[8:]  # S2 echoes C1 (time, random bytes)
        writer.write(s0s1[1:])  # C2 = S1
        assert await reader.read() == b""


@pytest.mark.parametrize("version", [0, 6, 0x47])
async def test_bad_version_byte(version: int) -> None:
    errors: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await server_handshake(reader, writer, 2.0)
        except RtmpProtocolError as exc:
            errors.set_result(exc)
        finally:
            writer.close()

    async for _, writer in pair(serve):
        writer.write(bytes([version]) + bytes(SIZE))
        exc = await errors
        assert f"bad handshake version {version} from the client" in str(exc)
        if version == 6:
            assert "RTMPE" in str(exc)


async def test_client_refuses_a_bad_server_version() -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(1 + SIZE)
        writer.write(b"\x0a" + bytes(2 * SIZE))
        await writer.drain()
        await reader.read()
        writer.close()

    async for reader, writer in pair(serve):
        with pytest.raises(RtmpProtocolError, match="bad handshake version 10 from the server"):
            await client_handshake(reader, writer, 2.0)


async def test_stall_and_close_midway() -> None:
    outcome: asyncio.Queue[BaseException] = asyncio.Queue()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await server_handshake(reader, writer, 0.3)
        except (RtmpTimeout, RtmpClosed) as exc:
            await outcome.put(exc)
        finally:
            writer.close()

    async for _, writer in pair(serve):
        writer.write(b"\x03" + bytes(100))  # C0 and a part of C1, then nothing
        exc = await asyncio.wait_for(outcome.get(), 2)
        assert isinstance(exc, RtmpTimeout) and "within 0.3 s" in str(exc)
    async for _, writer in pair(serve):
        writer.write(b"\x03" + bytes(100))
        await writer.drain()
        writer.close()
        exc = await asyncio.wait_for(outcome.get(), 2)
        assert isinstance(exc, RtmpClosed) and "C1: 100 of 1536 bytes" in str(exc)


async def test_client_timeout_on_a_silent_server() -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    async for reader, writer in pair(serve):
        with pytest.raises(RtmpTimeout, match=r"server did not complete the handshake within 0\.2 s"):
            await client_handshake(reader, writer, 0.2)


def test_real_ffmpeg_clients_complete_our_server_handshake(capture5: Capture, capture9: Capture) -> None:
    # The captures ran our server_handshake against both FFmpeg versions; both sent the FP9 digest
    # form in C1, accepted the simple answer and went on to publish.
    for capture in (capture5, capture9):
        assert capture.c1[4:8] != b"\x00\x00\x00\x00" and len(capture.data) > 10_000
