"""Fixtures of the RTMP tests: byte streams captured from the real FFmpeg binaries."""

from __future__ import annotations

import asyncio

import pytest
from rtmp_media import FFMPEG5, FFMPEG9, TS_OFFSET_S, Capture, run

from rtcdn.rtmp import chunk
from rtcdn.rtmp.commands import command, on_status
from rtcdn.rtmp.handshake import server_handshake


async def capture_publish(ffmpeg: str, *args: str) -> Capture:
    """What ``ffmpeg ... -f flv rtmp://127.0.0.1:PORT/live/x`` sends to a raw asyncio TCP server that
    answers the handshake and then, without reading them, every reply FFmpeg waits for (connect
    _result, createStream _result = stream 1, NetStream.Publish.Start): FFmpeg's transaction ids are
    fixed (connect 1, releaseStream 2, FCPublish 3, createStream 4)."""
    got = bytearray()
    c1 = b""
    done = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal c1
        try:
            c1 = await server_handshake(reader, writer, 5.0)
            out = chunk.ChunkWriter()
            replies = [
                out.write(chunk.window_ack_size(2_500_000)),
                out.write(chunk.set_peer_bandwidth(2_500_000)),
                out.set_chunk_size(4096),
                out.write(
                    command(
                        "_result",
                        1,
                        {"fmsVer": "FMS/3,5,7,7009"},
                        {"level": "status", "code": "NetConnection.Connect.Success"},
                    )
                ),
                out.write(command("_result", 4, None, 1.0)),
                out.write(on_status(1, "status", "NetStream.Publish.Start", "x")),
            ]
            writer.write(b"".join(replies))
            while data := await reader.read(65536):
                got.extend(data)
        finally:
            writer.close()
            done.set()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        rc, log = await run(
            ffmpeg, "-hide_banner", "-loglevel", "error",
            "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-f", "lavfi", "-i", "sine=sample_rate=48000",
            "-t", "1", *args, "-output_ts_offset", str(TS_OFFSET_S),
            "-f", "flv", f"rtmp://127.0.0.1:{port}/live/x",
        )  # fmt: skip
        assert rc == 0, log
        await asyncio.wait_for(done.wait(), 5)
    finally:
        server.close()
        await server.wait_closed()
    return Capture(ffmpeg, c1, bytes(got))


def _capture(ffmpeg: str | None) -> Capture:
    if ffmpeg is None:
        pytest.skip("Debian's ffmpeg is not installed (apt-get install ffmpeg)")
    return asyncio.run(capture_publish(ffmpeg, "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"))


@pytest.fixture(scope="session")
def capture5() -> Capture:
    """FFmpeg 5.1 (Debian) publishing H.264 + AAC."""
    return _capture(FFMPEG5)


@pytest.fixture(scope="session")
def capture9() -> Capture:
    """FFmpeg 9 (static) publishing H.264 + AAC."""
    return _capture(FFMPEG9)
