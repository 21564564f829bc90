"""Live RTMP fuzz: raw asyncio TCP clients on an in-process server's RTMP port (a real handshake, a
bad one or none), then mutated chunk streams and AMF commands around real H.264/AAC/Opus publish
sessions, plays of the steady stream (legacy and Enhanced RTMP), commands out of order. The server
closes only the bad connection and ends what it started; the steady WebRTC stream keeps playing."""

from __future__ import annotations

import asyncio
import math

import pytest
from fuzzkit import LogWatch, Tally, in_thread, known_record, run_examples
from live_targets import RtmpTarget, Steady

from rtcdn.rtmp import amf0, chunk
from rtcdn.rtmp.chunk import ChunkWriter, Message
from rtcdn.rtmp.handshake import client_handshake
from rtcdn.server import Server

EXAMPLES = 80


async def test_rtmp_connections(fuzz_server: Server, steady: Steady, log_watch: LogWatch) -> None:
    log_watch.ignore.append(known_record)  # a mutation may write a far AMF0 date (known bug below)
    target = RtmpTarget(fuzz_server, steady)
    await target.setup()
    tally = Tally("rtmp")
    try:
        await in_thread(lambda: run_examples(tally, target.strategy(), target.check, EXAMPLES))
    finally:
        await target.close()
    assert tally.tried == EXAMPLES


@pytest.mark.parametrize("obj", [{"capsEx": math.inf}, {"videoFourCcInfoMap": {"vp08": math.nan}}])
async def test_connect_non_finite_capabilities(fuzz_server: Server, obj: dict[str, object]) -> None:
    """capsEx Infinity / a NaN FourCC info value in connect: Capabilities.of raised out of the command
    handler ('internal error' with a traceback at ERROR)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", fuzz_server.settings.rtmp_port)
    await client_handshake(reader, writer, 5.0)
    connect = Message(chunk.COMMAND_AMF0, 0, 0, amf0.encode("connect", 1.0, {"app": "live", **obj}))
    writer.write(ChunkWriter().write(connect))
    writer.write_eof()
    async with asyncio.timeout(5):
        while await reader.read(65536):
            pass
    writer.close()
    await asyncio.sleep(0.2)  # the log watch fixture fails the test on an error logged


async def test_rtmp_command_with_far_date(fuzz_server: Server, log_watch: LogWatch) -> None:
    import struct

    reader, writer = await asyncio.open_connection("127.0.0.1", fuzz_server.settings.rtmp_port)
    await client_handshake(reader, writer, 5.0)
    payload = amf0.encode("connect", 1.0, {"app": "live"}) + b"\x0b" + struct.pack("!d", 1e15) + b"\x00\x00"
    writer.write(ChunkWriter().write(Message(chunk.COMMAND_AMF0, 0, 0, payload)))
    writer.write_eof()
    async with asyncio.timeout(5):
        while await reader.read(65536):
            pass
    writer.close()
    await asyncio.sleep(0.2)
    assert not log_watch.bad, log_watch.bad[0][:300]
