"""Real encoded media for the RTMP tests (PyAV: libx264, aac, libopus) and the ffmpeg binaries."""

from __future__ import annotations

import asyncio
import fractions
import math
import random
import shutil
import struct
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import av
import imageio_ffmpeg

from rtcdn.rtmp import amf0
from rtcdn.rtmp.chunk import ChunkReader, ChunkWriter, Message
from rtcdn.rtmp.codecs import AvcConfig, join_avcc, split_annexb
from rtcdn.rtmp.handshake import client_handshake

FFMPEG5 = shutil.which("ffmpeg")
"Debian's ffmpeg (5.1 on bookworm), when installed."
FFMPEG9 = imageio_ffmpeg.get_ffmpeg_exe()
"The static ffmpeg 9 of imageio-ffmpeg (Enhanced RTMP)."


@dataclass(frozen=True)
class H264:
    config: bytes
    "The AVCDecoderConfigurationRecord."
    frames: tuple[tuple[int, bool, bytes], ...]
    "(timestamp ms, keyframe, AVCC access unit)."


@lru_cache
def h264(count: int = 60, fps: int = 25, gop: int = 25, width: int = 160, height: int = 120) -> H264:
    """``count`` frames of libx264 (baseline-like, no B-frames), keyframe every ``gop`` frames."""
    ctx = av.CodecContext.create("libx264", "w")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
    ctx.time_base = fractions.Fraction(1, fps)
    ctx.options = {"preset": "ultrafast", "tune": "zerolatency", "g": str(gop), "bf": "0"}
    ctx.open()
    sps: list[bytes] = []
    pps: list[bytes] = []
    frames: list[tuple[int, bool, bytes]] = []
    noise = random.Random(5).randbytes(width * height * 2)

    def take(packets: list[av.Packet]) -> None:
        for packet in packets:
            units = split_annexb(bytes(packet))
            for u in units:
                if u[0] & 0x1F == 7 and not sps:
                    sps.append(u)
                elif u[0] & 0x1F == 8 and not pps:
                    pps.append(u)
            au = [u for u in units if u[0] & 0x1F not in (7, 8, 9)]
            assert packet.pts is not None
            frames.append((int(packet.pts * 1000 // fps), bool(packet.is_keyframe), join_avcc(au)))

    for i in range(count):
        frame = av.VideoFrame(width, height, "yuv420p")
        for plane in frame.planes:
            off = (i * 7) % 1000
            plane.update(noise[off : off + plane.buffer_size])
        frame.pts = i
        take(ctx.encode(frame))
    take(ctx.encode(None))
    return H264(AvcConfig.from_parameter_sets(sps, pps).build(), tuple(frames))


@dataclass(frozen=True)
class Audio:
    config: bytes
    "AudioSpecificConfig (AAC) or OpusHead (Opus)."
    frames: tuple[tuple[int, bytes], ...]
    "(timestamp ms, raw frame)."


@lru_cache
def audio(codec: str = "aac", duration_ms: int = 2400, rate: int = 48000) -> Audio:
    """A mono 440 Hz tone through PyAV's ``aac`` or ``libopus`` encoder."""
    ctx = av.CodecContext.create(codec, "w")
    ctx.sample_rate, ctx.layout = rate, "mono"
    ctx.format = "fltp" if codec == "aac" else "s16"
    ctx.time_base = fractions.Fraction(1, rate)
    ctx.open()
    size = ctx.frame_size or 960
    frames: list[tuple[int, bytes]] = []
    total = rate * duration_ms // 1000
    for start in range(0, total, size):
        tone = [0.3 * math.sin(2 * math.pi * 440 * n / rate) for n in range(start, start + size)]
        if codec == "aac":
            raw = struct.pack(f"<{size}f", *tone)
        else:
            raw = struct.pack(f"<{size}h", *(int(x * 32767) for x in tone))
        frame = av.AudioFrame(format=ctx.format.name, layout="mono", samples=size)
        frame.planes[0].update(raw)
        frame.sample_rate, frame.pts = rate, start
        for packet in ctx.encode(frame):
            assert packet.pts is not None
            frames.append((max(0, int(packet.pts * 1000 // rate)), bytes(packet)))
    for packet in ctx.encode(None):
        frames.append((max(0, int((packet.pts or 0) * 1000 // rate)), bytes(packet)))
    assert ctx.extradata is not None
    return Audio(bytes(ctx.extradata), tuple(frames))


async def run_bytes(*args: str, timeout: float = 20.0, stderr: bool = True) -> tuple[int, bytes]:
    """Run a command (an ffmpeg binary) with a timeout; kill it (and only it) when it overruns.
    Returns its exit code (-9 when killed) and its stdout (+ stderr when ``stderr``)."""
    proc = await asyncio.create_subprocess_exec(
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT if stderr else asyncio.subprocess.DEVNULL,
    )
    try:
        async with asyncio.timeout(timeout):
            out, _ = await proc.communicate()
    except TimeoutError:
        proc.kill()
        out, _ = await proc.communicate()
        return -9, out
    assert proc.returncode is not None
    return proc.returncode, out


async def run(*args: str, timeout: float = 20.0) -> tuple[int, str]:
    """:func:`run_bytes` with the output as text (stdout and stderr)."""
    rc, out = await run_bytes(*args, timeout=timeout)
    return rc, out.decode(errors="replace")


class RawPeer:
    """A hand-driven RTMP client for the bad-input tests: handshake (optional), raw bytes, messages."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.chunks = ChunkReader()
        self.out = ChunkWriter()
        self.inbox: list[Message] = []
        self.handshaken = False
        self.received = bytearray()
        "Every byte received (before the handshake too)."

    @classmethod
    async def open(cls, port: int, handshake: bool = True, host: str = "127.0.0.1") -> RawPeer:
        reader, writer = await asyncio.open_connection(host, port)
        peer = cls(reader, writer)
        if handshake:
            await client_handshake(reader, writer, 5.0)
            peer.handshaken = True
        return peer

    def send(self, *msgs: Message) -> None:
        for msg in msgs:
            self.writer.write(self.out.write(msg))

    def raw(self, data: bytes) -> None:
        self.writer.write(data)

    async def until_closed(self, timeout: float = 5.0) -> list[Message]:
        """Every message until the server closes the connection (fails after ``timeout``)."""
        async with asyncio.timeout(timeout):
            try:
                while data := await self.reader.read(65536):
                    self.received += data
                    if self.handshaken:
                        self.inbox += self.chunks.feed(data)
            except ConnectionError:
                pass
        return self.inbox

    async def wait_for(self, predicate: Callable[[Message], bool], timeout: float = 5.0) -> Message:
        async with asyncio.timeout(timeout):
            while True:
                for msg in self.inbox:
                    if predicate(msg):
                        return msg
                data = await self.reader.read(65536)
                if not data:
                    raise EOFError("the server closed the connection")
                self.inbox += self.chunks.feed(data)

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except OSError:
            pass


def commands_of(msgs: list[Message]) -> list[tuple[str, list[object]]]:
    """(name, values after the transaction id) of the command messages."""
    out = []
    for msg in msgs:
        if msg.type_id == 20:
            values = amf0.decode(msg.payload)
            out.append((str(values[0]), values[2:]))
    return out


def flv_file_tags(data: bytes) -> list[tuple[int, int, bytes]]:
    """(tag type, timestamp ms, body) of every tag of an FLV file."""
    assert data[:3] == b"FLV"
    pos = int.from_bytes(data[5:9], "big") + 4
    tags = []
    while pos + 11 <= len(data):
        kind, size = data[pos], int.from_bytes(data[pos + 1 : pos + 4], "big")
        ts = int.from_bytes(data[pos + 4 : pos + 7], "big") | data[pos + 7] << 24
        tags.append((kind, ts, data[pos + 11 : pos + 11 + size]))
        pos += 11 + size + 4
    return tags


async def ffmpeg_flv(ffmpeg: str, *codec_args: str, seconds: float = 0.5) -> bytes:
    """An FLV file (in memory) of FFmpeg's test sources encoded with ``codec_args``."""
    rc, out = await run_bytes(
        ffmpeg, "-hide_banner", "-loglevel", "error",
        "-f", "lavfi", "-i", "testsrc=size=160x120:rate=25", "-f", "lavfi", "-i", "sine=sample_rate=48000",
        "-t", str(seconds), *codec_args, "-f", "flv", "-",
        timeout=30, stderr=False,
    )  # fmt: skip
    assert rc == 0
    return out


TS_OFFSET_S = 20000
"FFmpeg's -output_ts_offset in the captures: timestamps over 0xFFFFFF ms, so extended timestamps."


@dataclass(frozen=True)
class Capture:
    ffmpeg: str
    c1: bytes
    "The client's C1 (its handshake packet)."
    data: bytes
    "Every byte FFmpeg sent after the handshake."
