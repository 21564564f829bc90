"""rtmp.connection / rtmp.server: real FFmpeg 5.1 and 9 publishing and playing, our RtmpClient, bad input.

Every test ends with the server closed, no connection left and no task left in the loop.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from rtmp_media import FFMPEG5, FFMPEG9, RawPeer, audio, commands_of, ffmpeg_flv, flv_file_tags, h264, run

from rtcdn.rtmp import (
    PlayOutput,
    RtmpClient,
    RtmpConfig,
    RtmpRefused,
    RtmpServer,
    RtmpServerConnection,
    chunk,
)
from rtcdn.rtmp.chunk import Message
from rtcdn.rtmp.commands import command
from rtcdn.rtmp.flv import (
    AudioPacketType,
    AudioTag,
    FrameType,
    PacketType,
    VideoTag,
    build_audio,
    build_video,
)
from rtcdn.rtmp.handshake import client_handshake
from rtcdn.tasks import TaskSet

CONFIG = RtmpConfig(
    handshake_timeout=0.5, idle_timeout=0.5, publish_idle_timeout=2.0, close_timeout=0.5, stall_timeout=0.3
)


@dataclass
class Sink:
    app: str
    name: str
    query: dict[str, str]
    video: list[tuple[int, VideoTag]] = field(default_factory=list)
    audio: list[tuple[int, AudioTag]] = field(default_factory=list)
    meta: list[dict[str, object]] = field(default_factory=list)
    ended: list[str] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def on_video(self, timestamp_ms: int, tag: VideoTag) -> None:
        self.video.append((timestamp_ms, tag))

    def on_audio(self, timestamp_ms: int, tag: AudioTag) -> None:
        self.audio.append((timestamp_ms, tag))

    def on_metadata(self, meta: dict[str, object]) -> None:
        self.meta.append(meta)

    def on_end(self, reason: str) -> None:
        self.ended.append(reason)
        self.done.set()


def flv_stream(acodec: str = "aac") -> list[tuple[str, int, bytes]]:
    """A live FLV stream to play: sequence headers, then H.264 and AAC/Opus frames interleaved."""
    video, sound = h264(), audio(acodec)
    codec = "mp4a" if acodec == "aac" else "Opus"
    out = [
        ("v", 0, build_video(VideoTag("avc1", FrameType.KEY, PacketType.SEQUENCE_START, 0, video.config))),
        ("a", 0, build_audio(AudioTag(codec, AudioPacketType.SEQUENCE_START, sound.config))),
    ]
    frames = iter(sound.frames)
    pending = next(frames, None)
    for ts, key, au in video.frames:
        while pending is not None and pending[0] <= ts:
            out.append(
                ("a", pending[0], build_audio(AudioTag(codec, AudioPacketType.CODED_FRAMES, pending[1])))
            )
            pending = next(frames, None)
        tag = VideoTag("avc1", FrameType.KEY if key else FrameType.INTER, PacketType.CODED_FRAMES, 0, au)
        out.append(("v", ts, build_video(tag)))
    return out


class Handler:
    def __init__(self) -> None:
        self.sinks: list[Sink] = []
        self.outputs: list[PlayOutput] = []
        self.closed: list[str] = []
        self.conns: list[RtmpServerConnection] = []
        self.refuse_apps = {"private"}
        self.taken = {"taken"}
        self.playable: dict[str, str] = {"x": "aac", "opus": "libopus", "idle": "", "ends": "aac", "hevc": ""}
        self.fail = {"boom"}
        self.files: dict[str, list[tuple[int, int, bytes]]] = {}
        "FLV tags (kind, timestamp, body) to play as they are, by stream name."
        self.tasks = TaskSet("test-feeder")

    async def on_connect(self, conn: RtmpServerConnection, app: str, query: dict[str, str]) -> None:
        self.conns.append(conn)
        if app in self.refuse_apps:
            raise RtmpRefused("NetConnection.Connect.Rejected", f"no application {app}")

    async def on_publish(
        self, conn: RtmpServerConnection, app: str, name: str, query: dict[str, str]
    ) -> Sink:
        if name in self.taken:
            raise RtmpRefused("NetStream.Publish.BadName", "name in use")
        if name in self.fail:
            raise RuntimeError("a bug in the handler")
        sink = Sink(app, name, query)
        if name == "crash":
            sink.on_video = lambda ts, tag: 1 / 0  # type: ignore[method-assign,assignment,misc]
        self.sinks.append(sink)
        return sink

    async def on_play(
        self, conn: RtmpServerConnection, app: str, name: str, query: dict[str, str], out: PlayOutput
    ) -> None:
        if name in self.fail:
            raise RuntimeError("a bug in the handler")
        if name == "gone":  # closed at once, before any media
            out.on_close = self.closed.append
            out.close("NetStream.Play.UnpublishNotify", "gone is unpublished")
            return
        if name not in self.playable:
            raise RtmpRefused("NetStream.Play.StreamNotFound", f"{name} is not published")
        self.outputs.append(out)
        out.on_close = self.closed.append
        if name in self.files:
            self.tasks.spawn(self.feed_file(out, self.files[name]), f"feed {name}")
        elif self.playable[name]:
            self.tasks.spawn(self.feed(out, self.playable[name]), f"feed {name}")

    async def feed_file(self, out: PlayOutput, tags: list[tuple[int, int, bytes]]) -> None:
        for kind, ts, body in tags:
            if kind == 9:
                out.send_video(ts, body)
                await asyncio.sleep(0.004)
            elif kind == 8:
                out.send_audio(ts, body)
        await asyncio.sleep(0.05)
        out.close("NetStream.Play.UnpublishNotify", f"{out.name} is unpublished")

    async def feed(self, out: PlayOutput, acodec: str) -> None:
        out.send_metadata({"width": 160.0, "height": 120.0})
        for kind, ts, body in flv_stream(acodec):
            if out.closed:
                return
            (out.send_video if kind == "v" else out.send_audio)(ts, body)
            if kind == "v":
                await asyncio.sleep(0.004)
        if out.name == "ends":
            await asyncio.sleep(0.05)
            out.close("NetStream.Play.UnpublishNotify", "ends is unpublished")


@pytest.fixture
async def rtmp() -> AsyncIterator[tuple[RtmpServer, Handler]]:
    handler = Handler()
    server = RtmpServer(handler, CONFIG)
    await server.start("127.0.0.1", 0)
    yield server, handler
    await server.close()
    await handler.tasks.close()
    assert not server.connections
    assert asyncio.all_tasks() == {asyncio.current_task()}


def url(server: RtmpServer, path: str = "live/x") -> str:
    return f"rtmp://127.0.0.1:{server.port}/{path}"


async def settle(server: RtmpServer, timeout: float = 3.0) -> None:
    """Wait until the server has no connection left."""
    async with asyncio.timeout(timeout):
        while server.connections:
            await asyncio.sleep(0.01)


def connect_command(app: str = "live") -> Message:
    return command("connect", 1, {"app": app, "tcUrl": f"rtmp://127.0.0.1/{app}", "flashVer": "test"})


def closed_reasons(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The close reasons the connections logged."""
    return [r.getMessage().split("closed: ", 1)[1] for r in caplog.records if ": closed: " in r.getMessage()]


def statuses(msgs: list[Message]) -> list[tuple[str, str]]:
    out = []
    for name, values in commands_of(msgs):
        info = next((v for v in values if isinstance(v, dict) and "code" in v), None)
        if name in ("onStatus", "_error") and info is not None:
            out.append((str(info["level"]), str(info["code"])))
    return out


# ------------------------------------------------------------------------------ real FFmpeg


X264_AAC = ("-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac")
ERTMP_HEVC_OPUS = (
    "-rtmp_enhanced_codecs hvc1,av01,vp09,avc1,Opus,mp4a -c:v libx265 -preset ultrafast -c:a libopus"
)
PUBLISHERS = [
    pytest.param(FFMPEG5, X264_AAC, "avc1", "mp4a", id="ffmpeg5"),
    pytest.param(FFMPEG9, X264_AAC, "avc1", "mp4a", id="ffmpeg9"),
    pytest.param(FFMPEG9, tuple(ERTMP_HEVC_OPUS.split()), "hvc1", "Opus", id="ffmpeg9-ertmp-hevc-opus"),
]


@pytest.mark.parametrize(("ffmpeg", "args", "vcodec", "acodec"), PUBLISHERS)
async def test_real_ffmpeg_publishes(
    rtmp: tuple[RtmpServer, Handler], ffmpeg: str | None, args: tuple[str, ...], vcodec: str, acodec: str
) -> None:
    if ffmpeg is None:
        pytest.skip("Debian's ffmpeg is not installed")
    server, handler = rtmp
    rc, log = await run(
        ffmpeg, "-hide_banner", "-loglevel", "error",
        "-f", "lavfi", "-i", "testsrc=size=160x120:rate=25", "-f", "lavfi", "-i", "sine=sample_rate=48000",
        "-t", "1", *args, "-f", "flv", url(server, "live/cam?token=abc&x"),
    )  # fmt: skip
    assert rc == 0, log
    await settle(server)
    [sink] = handler.sinks
    assert (sink.app, sink.name, sink.query) == ("live", "cam", {"token": "abc", "x": ""})
    assert sink.ended == ["FCUnpublish from the client"]
    assert {t.codec for _, t in sink.video} == {vcodec} and {t.codec for _, t in sink.audio} == {acodec}
    assert sink.video[0][1].sequence_header and sink.audio[0][1].sequence_header
    frames = [
        (ts, t)
        for ts, t in sink.video
        if t.packet_type in (PacketType.CODED_FRAMES, PacketType.CODED_FRAMES_X)
    ]
    assert len(frames) == 25 and frames[0][1].keyframe
    assert len(sink.audio) > 40 and sink.meta[0]["width"] == 160.0
    assert [ts for ts, _ in frames] == sorted(ts for ts, _ in frames)
    conn = handler.conns[0]
    assert str(conn.connect_params["flashVer"]).startswith("FMLE/3.0 (compatible; Lavf")
    assert conn.stats.bad_tags == 0 and conn.stats.video_in == len(sink.video)
    if "-rtmp_enhanced_codecs" in args:
        assert conn.capabilities.enhanced and conn.capabilities.fourccs == {
            "hvc1",
            "av01",
            "vp09",
            "avc1",
            "Opus",
            "mp4a",
        }
    else:
        assert not conn.capabilities.enhanced


PLAYERS = [
    pytest.param(FFMPEG5, "x", "aac", id="ffmpeg5-aac"),
    pytest.param(FFMPEG9, "x", "aac", id="ffmpeg9-aac"),
    pytest.param(FFMPEG9, "opus", "opus", id="ffmpeg9-ertmp-opus"),
]


@pytest.mark.parametrize(("ffmpeg", "name", "acodec"), PLAYERS)
async def test_real_ffmpeg_plays(
    rtmp: tuple[RtmpServer, Handler], ffmpeg: str | None, name: str, acodec: str
) -> None:
    if ffmpeg is None:
        pytest.skip("Debian's ffmpeg is not installed")
    server, handler = rtmp
    rc, log = await run(
        ffmpeg, "-hide_banner", "-nostats", "-rw_timeout", "3000000", "-i", url(server, f"live/{name}?k=1"),
        "-frames:v", "30", "-f", "null", "-",
        timeout=15,
    )  # fmt: skip
    assert rc == 0, log
    assert "Video: h264" in log and f"Audio: {acodec}" in log and "frame=   30" in log
    await settle(server)
    [out] = handler.outputs
    assert out.query == {"k": "1"} and out.fourccs == frozenset()
    assert len(handler.closed) == 1 and out.stats.video_sent >= 30 and out.stats.video_dropped == 0


async def test_real_ffmpeg_play_refused(rtmp: tuple[RtmpServer, Handler]) -> None:
    server, handler = rtmp
    rc, log = await run(
        FFMPEG9, "-hide_banner", "-i", url(server, "live/nothing"), "-f", "null", "-", timeout=10
    )
    assert rc != 0 and "nothing is not published" in log
    await settle(server)
    assert handler.outputs == [] and handler.conns[0].close_reason == (
        "NetStream.Play.StreamNotFound: nothing is not published"
    )


# ------------------------------------------------------------------------------ our client


async def test_client_publishes_to_our_server(rtmp: tuple[RtmpServer, Handler]) -> None:
    server, handler = rtmp
    client = RtmpClient(fourcc_list=["avc1", "Opus"], timeout=3)
    await client.connect(url(server, "live/key?token=t1"))
    assert client.server_properties["videoFourCcInfoMap"] == {cc: 4.0 for cc in CONFIG.video_fourccs}
    assert client.server_properties["capsEx"] == 4.0
    await client.publish()
    assert client.stream_id == 1 and client.stream_name == "key?token=t1"
    client.send_metadata({"width": 160.0})
    sent = flv_stream("libopus")
    for kind, ts, body in sent:
        assert (client.send_video if kind == "v" else client.send_audio)(ts, body)
    await client.drain()
    await client.close()
    await settle(server)
    [sink] = handler.sinks
    assert (sink.name, sink.query, sink.ended) == ("key", {"token": "t1"}, ["FCUnpublish from the client"])
    assert sink.meta == [{"width": 160.0}]
    got = [(ts, build_video(t)) for ts, t in sink.video]
    assert got == [(ts, body) for kind, ts, body in sent if kind == "v"]
    assert [(ts, build_audio(t)) for ts, t in sink.audio] == [
        (ts, body) for kind, ts, body in sent if kind == "a"
    ]
    assert handler.conns[0].capabilities.fourccs == {"avc1", "Opus"}
    assert handler.conns[0].connect_params["flashVer"] == "FMLE/3.0 (compatible; rtcdn)"


async def test_client_refusals(rtmp: tuple[RtmpServer, Handler]) -> None:
    server, _ = rtmp
    client = RtmpClient(timeout=3)
    with pytest.raises(RtmpRefused) as refused:
        await client.connect(url(server, "private/x"))
    assert (refused.value.code, refused.value.description) == (
        "NetConnection.Connect.Rejected",
        "no application private",
    )
    await client.close()
    client = RtmpClient(timeout=3)
    await client.connect(url(server, "live/taken"))
    with pytest.raises(RtmpRefused) as refused:
        await client.publish()
    assert (refused.value.code, refused.value.description) == ("NetStream.Publish.BadName", "name in use")
    await client.close()


# ------------------------------------------------------------------------------ bad input


async def published_after(server: RtmpServer, handler: Handler) -> None:
    """The server still serves: a client publishes after the bad one."""
    client = RtmpClient(timeout=3)
    await client.connect(url(server, "live/after"))
    await client.publish()
    await client.close()
    await settle(server)
    assert handler.sinks[-1].name == "after" and handler.sinks[-1].ended


@pytest.mark.parametrize(
    "garbage",
    [
        pytest.param(b"\x06" + bytes(1536), id="bad-version"),
        pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", id="http"),
        pytest.param(b"\x03" + bytes(10), id="short-c1"),
    ],
)
async def test_broken_handshake(rtmp: tuple[RtmpServer, Handler], garbage: bytes) -> None:
    server, handler = rtmp
    peer = await RawPeer.open(server.port, handshake=False)
    peer.raw(garbage)
    start = time.monotonic()
    await peer.until_closed()
    assert time.monotonic() - start < 2
    await peer.close()
    await published_after(server, handler)


@pytest.mark.parametrize(
    ("send", "reason"),
    [
        pytest.param([chunk.set_chunk_size(0x7FFFFFFF)], "peer chunk size 2147483647 is over the limit", id="chunk-size"),
        pytest.param([b"\x03\x00\x00\x00\xff\xff\xff\x09\x01\x00\x00\x00"], "16777215 bytes", id="huge-message"),
        pytest.param([Message(20, 0, 0, b"\x02\x00\x07connect\x00" + bytes(8) + b"\x20")], "unknown AMF0 type marker 0x20",
                     id="unknown-amf-type"),
        pytest.param([Message(20, 0, 0, b"\x00" + bytes(8))], "malformed command", id="no-command-name"),
        pytest.param([b"\x43\x00\x00\x00\x00\x00\x01\x14x"], "starts with a type 1", id="bad-chunk-header"),
    ],
)  # fmt: skip
async def test_protocol_errors_close_the_connection(
    rtmp: tuple[RtmpServer, Handler],
    send: list[Message | bytes],
    reason: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server, handler = rtmp
    peer = await RawPeer.open(server.port)
    with caplog.at_level(logging.INFO, logger="rtcdn.rtmp.connection"):
        for item in send:
            peer.raw(item) if isinstance(item, bytes) else peer.send(item)
        await peer.until_closed()
        await peer.close()
        await settle(server)
    [closed] = closed_reasons(caplog)
    assert reason in closed
    await published_after(server, handler)


async def test_out_of_order_commands(rtmp: tuple[RtmpServer, Handler]) -> None:
    server, handler = rtmp
    # publish before connect: an error status, then the close
    peer = await RawPeer.open(server.port)
    peer.send(command("publish", 0, None, "x", "live", stream_id=1))
    assert statuses(await peer.until_closed()) == [("error", "NetStream.Publish.Failed")]
    await peer.close()
    # createStream before connect: _error, close
    peer = await RawPeer.open(server.port)
    peer.send(command("createStream", 2, None))
    assert statuses(await peer.until_closed()) == [("error", "NetConnection.Call.Failed")]
    await peer.close()
    # media before publish
    peer = await RawPeer.open(server.port)
    peer.send(connect_command(), command("createStream", 2, None), Message(9, 1, 0, b"\x17\x01\x00\x00\x00x"))
    msgs = await peer.until_closed()
    assert [n for n, _ in commands_of(msgs)][:2] == ["_result", "_result"]
    assert statuses(msgs)[-1] == ("error", "NetStream.Publish.Failed")
    await peer.close()
    # publish on a stream createStream did not create
    peer = await RawPeer.open(server.port)
    peer.send(connect_command(), command("publish", 0, None, "x", "live", stream_id=7))
    assert statuses(await peer.until_closed())[-1] == ("error", "NetStream.Publish.Failed")
    await peer.close()
    await settle(server)
    assert "media before publish" in (handler.conns[0].close_reason or "")
    await published_after(server, handler)


async def test_play_refused_and_publish_refused_statuses(rtmp: tuple[RtmpServer, Handler]) -> None:
    server, handler = rtmp
    for cmd_name, name, code in [
        ("play", "ghost", "NetStream.Play.StreamNotFound"),
        ("publish", "taken", "NetStream.Publish.BadName"),
        ("publish", "", "NetStream.Publish.BadName"),
    ]:
        peer = await RawPeer.open(server.port)
        peer.send(
            connect_command(), command("createStream", 2, None), command(cmd_name, 0, None, name, stream_id=1)
        )
        msgs = await peer.until_closed()
        assert statuses(msgs)[-1] == ("error", code)
        await peer.close()
    peer = await RawPeer.open(server.port)
    peer.send(connect_command("private"))
    msgs = await peer.until_closed()
    assert statuses(msgs) == [("error", "NetConnection.Connect.Rejected")]
    await peer.close()
    await published_after(server, handler)


async def test_commands_that_carry_on(rtmp: tuple[RtmpServer, Handler]) -> None:
    server, _ = rtmp
    peer = await RawPeer.open(server.port)
    peer.send(chunk.window_ack_size(1000), connect_command())
    peer.send(command("noSuchCommand", 5, None), command("noSuchNotification", 0, None))
    peer.send(command("_checkbw", 6, None), command("getStreamLength", 7, None, "x"))
    peer.send(*(command("createStream", 10 + i, None) for i in range(5)))
    peer.send(chunk.user_control(chunk.PING_REQUEST, 4242))
    peer.send(Message(20, 0, 0, bytes(2000)[:0] + command("releaseStream", 20, None, "x" * 1500).payload))
    await peer.wait_for(lambda m: m.type_id == chunk.ACKNOWLEDGEMENT)  # over 1000 bytes received
    await peer.wait_for(
        lambda m: m.type_id == chunk.USER_CONTROL and chunk.parse_user_control(m.payload)[1] == 4242
    )
    await peer.wait_for(lambda m: m.type_id == 20 and b"\x40\x34" in m.payload[:30])  # _result of #20
    replies = [(name, values) for name, values in commands_of(peer.inbox)]
    errors = [values[1]["description"] for name, values in replies if name == "_error"]  # type: ignore[index]
    assert errors == ["unknown command 'noSuchCommand'", "too many streams on one connection (max 4)"]
    results = [values for name, values in replies if name == "_result"]
    assert [v[1] for v in results[3:7]] == [1.0, 2.0, 3.0, 4.0]  # connect, _checkbw, getStreamLength, streams
    await peer.close()
    await settle(server)


async def test_stalling_clients_are_closed(
    rtmp: tuple[RtmpServer, Handler], caplog: pytest.LogCaptureFixture
) -> None:
    server, handler = rtmp
    caplog.set_level(logging.INFO, logger="rtcdn.rtmp.connection")
    start = time.monotonic()
    in_handshake = await RawPeer.open(server.port, handshake=False)
    in_handshake.raw(b"\x03")
    after_connect = await RawPeer.open(server.port)
    after_connect.send(connect_command())
    half_message = await RawPeer.open(server.port)
    half_message.raw(b"\x03\x00\x00\x00\x00\x00\x40\x14\x00\x00\x00\x00ab")  # a message that never completes
    for peer in (in_handshake, after_connect, half_message):
        await peer.until_closed(timeout=3)
        await peer.close()
    assert time.monotonic() - start < 2.0  # handshake 0.5 s, idle 0.5 s
    await settle(server)
    assert sorted(closed_reasons(caplog)) == [
        "no message from the client for 0.5 s (idle)",
        "no message from the client for 0.5 s (idle)",
        "the client did not complete the handshake within 0.5 s",
    ]
    assert handler.conns[0].close_reason == "no message from the client for 0.5 s (idle)"
    await published_after(server, handler)


async def test_connection_limit(rtmp: tuple[RtmpServer, Handler]) -> None:
    _, handler = rtmp
    server = RtmpServer(handler, RtmpConfig(max_connections=1))
    await server.start("127.0.0.1", 0)
    first = await RawPeer.open(server.port)
    second = await RawPeer.open(server.port, handshake=False)
    assert await second.until_closed() == [] and server.refused == 1
    await second.close()
    await first.close()
    await server.close()


async def test_slow_player_drops_video_then_is_closed(rtmp: tuple[RtmpServer, Handler]) -> None:
    server, handler = rtmp
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    reader, writer = await asyncio.open_connection(sock=sock)
    peer = RawPeer(reader, writer)
    await client_handshake(reader, writer)
    peer.handshaken = True
    peer.send(
        connect_command(), command("createStream", 2, None), command("play", 0, None, "idle", stream_id=1)
    )
    await peer.wait_for(lambda m: b"NetStream.Play.Start" in m.payload)
    [out] = handler.outputs
    key = build_video(VideoTag("avc1", FrameType.KEY, PacketType.CODED_FRAMES, 0, bytes(100_000)))
    inter = build_video(VideoTag("avc1", FrameType.INTER, PacketType.CODED_FRAMES, 0, bytes(50_000)))
    async with asyncio.timeout(5):  # the player reads nothing: drops, then the stall timeout closes it
        ts = 0
        while not handler.closed:
            out.send_video(ts, key if ts % 1000 == 0 else inter)
            ts += 40
            await asyncio.sleep(0.002)
    assert out.stats.video_dropped > 0 and out.stats.video_sent > 0
    assert "has not read its data for 0.3 s" in handler.closed[0]
    await peer.close()
    await settle(server)


async def test_server_close_ends_publishers_and_players(rtmp: tuple[RtmpServer, Handler]) -> None:
    server, handler = rtmp
    client = RtmpClient(timeout=3)
    lost: list[str] = []
    client.on_close = lost.append
    await client.connect(url(server, "live/pub"))
    await client.publish()
    player = await RawPeer.open(server.port)
    player.send(
        connect_command(), command("createStream", 2, None), command("play", 0, None, "idle", stream_id=1)
    )
    await player.wait_for(lambda m: b"NetStream.Play.Start" in m.payload)
    await server.close()
    msgs = await player.until_closed()
    assert statuses(msgs)[-1] == ("status", "NetStream.Play.Stop")
    assert handler.sinks[0].ended == ["the server is shutting down"]
    assert handler.closed == ["the server is shutting down"]
    async with asyncio.timeout(2):
        while not lost:
            await asyncio.sleep(0.01)
    assert client.closed and not client.send_video(0, b"\x17\x01\x00\x00\x00")
    await client.close()
    await player.close()


async def test_delete_stream_and_close_stream_end_a_publish(rtmp: tuple[RtmpServer, Handler]) -> None:
    server, handler = rtmp
    peer = await RawPeer.open(server.port)
    peer.send(
        connect_command(), command("createStream", 2, None), command("publish", 0, None, "a", stream_id=1)
    )
    await peer.wait_for(lambda m: b"NetStream.Publish.Start" in m.payload)
    peer.send(
        Message(9, 1, 0, b"\x17\x00\x00\x00\x00"), Message(9, 1, 40, b"\x17")
    )  # a truncated tag: dropped
    peer.send(command("closeStream", 0, None, stream_id=1))
    await peer.wait_for(lambda m: b"NetStream.Unpublish.Success" in m.payload)
    peer.send(Message(9, 1, 80, b"\x27\x01\x00\x00\x00late"))  # in flight after the unpublish: ignored
    peer.send(command("publish", 0, None, "b", stream_id=1), command("deleteStream", 0, None, 1.0))
    await peer.wait_for(
        lambda m: m.payload.count(b"NetStream.Unpublish.Success") and b"b is now" in m.payload
    )
    await peer.close()
    await settle(server)
    assert [(s.name, s.ended) for s in handler.sinks] == [
        ("a", ["closeStream from the client"]),
        ("b", ["deleteStream from the client"]),
    ]
    assert len(handler.sinks[0].video) == 1 and handler.conns[0].stats.bad_tags == 1


async def test_play_preamble_and_handler_close(rtmp: tuple[RtmpServer, Handler]) -> None:
    server, handler = rtmp
    peer = await RawPeer.open(server.port)
    peer.send(
        connect_command(), command("createStream", 2, None), command("play", 0, None, "ends", stream_id=1)
    )
    peer.send(command("receiveAudio", 0, None, False, stream_id=1))
    msgs = await peer.until_closed()
    kinds = [(m.type_id, m.payload[:2]) for m in msgs if m.stream_id == 1 or m.type_id == chunk.USER_CONTROL]
    assert kinds[0] == (chunk.USER_CONTROL, b"\x00\x00")  # StreamBegin
    names = [name for name, _ in commands_of([m for m in msgs if m.stream_id == 1])]
    assert names == ["onStatus", "onStatus", "onStatus"]
    assert statuses(msgs) == [
        ("status", "NetStream.Play.Reset"),
        ("status", "NetStream.Play.Start"),
        ("status", "NetStream.Play.UnpublishNotify"),
    ]
    data = [m for m in msgs if m.type_id == chunk.DATA_AMF0]
    assert data[0].payload.startswith(b"\x02\x00\x11|RtmpSampleAccess") and b"onMetaData" in data[1].payload
    first_video = next(i for i, m in enumerate(msgs) if m.type_id == chunk.VIDEO)
    assert first_video > msgs.index(data[1]) and msgs[first_video].payload[:2] == b"\x17\x00"
    assert sum(m.type_id == chunk.VIDEO for m in msgs) == 61
    assert (
        sum(m.type_id == chunk.AUDIO for m in msgs) <= 1
    )  # receiveAudio false (the sequence header may pass)
    eof = [m for m in msgs if m.type_id == chunk.USER_CONTROL and chunk.parse_user_control(m.payload)[0] == 1]
    assert len(eof) == 1 and handler.closed == ["ends is unpublished"]
    await peer.close()
    # closed from on_play, before any media: only the status, no preamble
    peer = await RawPeer.open(server.port)
    peer.send(
        connect_command(), command("createStream", 2, None), command("play", 0, None, "gone", stream_id=1)
    )
    assert statuses(await peer.until_closed()) == [("status", "NetStream.Play.UnpublishNotify")]
    assert handler.closed[-1] == "gone is unpublished"
    await peer.close()


async def test_ffmpeg_ends_when_the_stream_is_unpublished(rtmp: tuple[RtmpServer, Handler]) -> None:
    server, _ = rtmp
    rc, log = await run(
        FFMPEG9, "-hide_banner", "-nostats", "-rw_timeout", "3000000", "-i", url(server, "live/ends"),
        "-f", "null", "-", timeout=15,
    )  # fmt: skip
    assert rc == 0, log
    assert "frame=   60" in log or "frame=   59" in log


async def test_ffmpeg9_plays_enhanced_hevc_and_opus(rtmp: tuple[RtmpServer, Handler]) -> None:
    """E-RTMP egress: HEVC + Opus in enhanced tags to FFmpeg 9, which does not announce fourCcList as
    a player (-rtmp_enhanced_codecs is an output option) but decodes the enhanced tags."""
    server, handler = rtmp
    flv = await ffmpeg_flv(FFMPEG9, "-c:v", "libx265", "-preset", "ultrafast", "-c:a", "libopus", seconds=1.2)
    handler.files["hevc"] = flv_file_tags(flv)
    rc, log = await run(
        FFMPEG9, "-hide_banner", "-nostats", "-rw_timeout", "3000000", "-i", url(server, "live/hevc"),
        "-f", "null", "-", timeout=15,
    )  # fmt: skip
    assert rc == 0, log
    assert "Video: hevc" in log and "Audio: opus" in log and "frame=   30" in log
    assert handler.outputs[0].fourccs == frozenset()


async def test_handler_bugs_become_statuses(
    rtmp: tuple[RtmpServer, Handler], caplog: pytest.LogCaptureFixture
) -> None:
    server, handler = rtmp
    for cmd_name, code in [("publish", "NetStream.Publish.Failed"), ("play", "NetStream.Play.Failed")]:
        peer = await RawPeer.open(server.port)
        peer.send(
            connect_command(),
            command("createStream", 2, None),
            command(cmd_name, 0, None, "boom", stream_id=1),
        )
        assert statuses(await peer.until_closed())[-1] == ("error", code)
        await peer.close()
    assert sum("a bug in the handler" in (r.exc_text or "") for r in caplog.records) == 2
    peer = await RawPeer.open(server.port)
    peer.send(
        connect_command(), command("createStream", 2, None), command("publish", 0, None, "crash", stream_id=1)
    )
    peer.send(Message(9, 1, 0, b"\x17\x00\x00\x00\x00"))
    assert statuses(await peer.until_closed())[-1] == ("error", "NetStream.Publish.Failed")
    assert any("ZeroDivisionError" in (r.exc_text or "") for r in caplog.records)
    assert handler.sinks[-1].ended == ["NetStream.Publish.Failed: internal server error"]
    await peer.close()
    await published_after(server, handler)


async def test_librtmp_plays(rtmp: tuple[RtmpServer, Handler], tmp_path: Path) -> None:
    """librtmp (the RTMP library of OBS's ancestors), through Debian's rtmpdump, when installed."""
    rtmpdump = shutil.which("rtmpdump")
    if rtmpdump is None:
        pytest.skip("rtmpdump is not installed (apt-get install rtmpdump)")
    server, handler = rtmp
    out = tmp_path / "dump.flv"
    rc, log = await run(rtmpdump, "-q", "-v", "-r", url(server, "live/ends"), "-o", str(out), timeout=15)
    assert rc == 0, log
    tags = flv_file_tags(out.read_bytes())
    assert sum(kind == 9 for kind, _, _ in tags) == 61 and sum(kind == 8 for kind, _, _ in tags) > 50
    assert handler.closed == ["ends is unpublished"]
    conn = handler.conns[0]
    assert str(conn.connect_params["flashVer"]).startswith("LNX ")


async def test_wcs_style_url_with_the_query_on_the_app(rtmp: tuple[RtmpServer, Handler]) -> None:
    """WCS ACL auth for RTMP goes on the app: rtmp://edge:1935/live?aclAuth=key1/test."""
    server, handler = rtmp
    client = RtmpClient(timeout=3)
    await client.connect(url(server, "live?aclAuth=key1/test?extra=2"))
    await client.publish()
    await client.close()
    await settle(server)
    conn, sink = handler.conns[0], handler.sinks[0]
    assert (conn.app, conn.app_query, conn.tc_url) == (
        "live",
        {"aclAuth": "key1"},
        url(server, "live?aclAuth=key1"),
    )
    assert (sink.name, sink.query) == ("test", {"aclAuth": "key1", "extra": "2"})
