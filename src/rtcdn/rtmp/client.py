"""RtmpClient: the publishing client role (republish a stream to another RTMP server).

Lifecycle: ``await connect(url)`` (TCP, handshake, ``connect`` with ``tcUrl`` and ``flashVer``
``FMLE/3.0 (compatible; rtcdn)``, and ``fourCcList`` when E-RTMP codecs are given) →
``await publish()`` (``releaseStream``, ``FCPublish``, ``createStream``, ``publish``; waits for
NetStream.Publish.Start) → ``send_video`` / ``send_audio`` / ``send_metadata`` (FLV tag bodies; never
block, drop like a server's player output: see :mod:`rtcdn.rtmp.sender`) → ``await close()``
(``FCUnpublish``, ``deleteStream``, flush, close). A background reader task (owned by the client's
:class:`~rtcdn.tasks.TaskSet`) answers pings and acknowledgements and notices the server's errors;
``on_close(reason)`` fires once when the connection ends for any reason other than ``close()``.

Errors are :class:`~rtcdn.rtmp.errors.RtmpError` subclasses: ``RtmpConnectError`` (refused,
unreachable), ``RtmpTimeout`` (no answer within ``timeout``), ``RtmpRefused`` (the server's
``_error`` / error onStatus, with its code and description), ``RtmpClosed`` (the server hung up).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from ..tasks import TaskSet
from . import amf0, chunk
from .chunk import ChunkReader, ChunkWriter, Message
from .commands import RtmpUrl, command, parse_command, parse_url
from .errors import RtmpClosed, RtmpConnectError, RtmpError, RtmpProtocolError, RtmpRefused, RtmpTimeout
from .flv import build_metadata
from .handshake import client_handshake
from .sender import AUDIO_QUEUE_BYTES, STALL_TIMEOUT, VIDEO_QUEUE_BYTES, MediaSender

logger = logging.getLogger(__name__)

FLASH_VER = "FMLE/3.0 (compatible; rtcdn)"
_T = TypeVar("_T")


def _info(values: Sequence[object]) -> tuple[str, str]:
    """``(code, description)`` of the first info object among ``values``."""
    for value in values:
        if isinstance(value, dict) and isinstance(value.get("code"), str):
            desc = value.get("description")
            return str(value["code"]), desc if isinstance(desc, str) else ""
    return "", ""


class RtmpClient:
    def __init__(
        self,
        *,
        timeout: float = 10.0,
        flash_ver: str = FLASH_VER,
        fourcc_list: Sequence[str] | None = None,
        chunk_size: int = 4096,
        video_queue_bytes: int = VIDEO_QUEUE_BYTES,
        audio_queue_bytes: int = AUDIO_QUEUE_BYTES,
        stall_timeout: float = STALL_TIMEOUT,
    ) -> None:
        self.timeout = timeout
        self.flash_ver = flash_ver
        self.fourcc_list = list(fourcc_list) if fourcc_list else None
        self.chunk_size = chunk_size
        self._limits = (video_queue_bytes, audio_queue_bytes, stall_timeout)
        self.url: RtmpUrl | None = None
        self.server_properties: dict[str, object] = {}
        "The properties object of the server's connect ``_result`` (fmsVer, E-RTMP capabilities...)."
        self.stream_name = ""
        self.stream_id = 0
        self.on_close: Callable[[str], None] | None = None
        self.close_reason: str | None = None
        self.sender: MediaSender | None = None
        self._reader_chunks = ChunkReader(max_chunk_size=0x7FFFFFFF)  # any chunk size from a server we chose
        self._writer_chunks = ChunkWriter()
        self._ack = chunk.AckWindow()
        self._window_sent = 0
        self._writer: asyncio.StreamWriter | None = None
        self._tasks = TaskSet("rtmp-client")
        self._transaction = 0
        self._calls: dict[float, asyncio.Future[list[object]]] = {}
        self._statuses: dict[int, asyncio.Future[tuple[str, str, str]]] = {}

    # ------------------------------------------------------------------------------ Link (sender)

    def send_message(self, msg: Message) -> None:
        writer = self._writer
        if writer is None or writer.transport.is_closing():
            return
        writer.write(self._writer_chunks.write(msg))

    def write_buffer_size(self) -> int:
        return 0 if self._writer is None else self._writer.transport.get_write_buffer_size()

    def abort(self, reason: str) -> None:
        self._lost(reason)
        if self._writer is not None:
            self._writer.transport.abort()

    # ------------------------------------------------------------------------------ API

    @property
    def closed(self) -> bool:
        return self.close_reason is not None

    async def connect(self, url: str) -> None:
        """Open the connection and send ``connect``; the URL's stream part is kept for :meth:`publish`."""
        self.url = target = parse_url(url)
        where = f"{target.host}:{target.port}"
        try:
            async with asyncio.timeout(self.timeout):
                reader, writer = await asyncio.open_connection(target.host, target.port)
        except TimeoutError:
            raise RtmpTimeout(f"cannot connect to {where}: no answer within {self.timeout:g} s") from None
        except OSError as exc:
            raise RtmpConnectError(f"cannot connect to {where}: {exc.strerror or exc}") from None
        self._writer = writer
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            await client_handshake(reader, writer, self.timeout)
        except RtmpError:
            writer.transport.abort()
            self._writer = None
            raise
        self._tasks.spawn(self._read_loop(reader), "reader")
        writer.write(self._writer_chunks.set_chunk_size(self.chunk_size))
        obj: dict[str, object] = {
            "app": target.app,
            "type": "nonprivate",
            "flashVer": self.flash_ver,
            "tcUrl": target.tc_url,
        }
        if self.fourcc_list:
            obj["fourCcList"] = list(self.fourcc_list)
        reply = await self._call("connect", obj)
        self.server_properties = reply[0] if reply and isinstance(reply[0], dict) else {}

    async def publish(self, name: str | None = None, kind: str = "live") -> None:
        """Publish ``name`` (default: the URL's stream part, with its ``?query``)."""
        if self.url is None or self._writer is None:
            raise RtmpClosed("publish before connect")
        name = name if name is not None else self.url.stream
        if not name:
            raise RtmpError("no stream name to publish (the URL has none)")
        self.stream_name = name
        self.send_message(command("releaseStream", self._next(), None, name))
        self.send_message(command("FCPublish", self._next(), None, name))
        reply = await self._call("createStream", None)
        sid = next((v for v in reply if isinstance(v, float)), None)
        if sid is None or not 0 < sid < 1 << 32:
            raise RtmpProtocolError(f"createStream answered {reply!r}: no stream id")
        self.stream_id = int(sid)
        waiter = self._statuses[self.stream_id] = asyncio.get_running_loop().create_future()
        self.send_message(command("publish", 0, None, name, kind, stream_id=self.stream_id))
        level, code, description = await self._wait(waiter, "publish")
        if level == "error" or code != "NetStream.Publish.Start":
            raise RtmpRefused(code or "NetStream.Publish.Failed", description or f"{level} status")
        video, audio, stall = self._limits
        self.sender = MediaSender(
            self, self.stream_id, video_queue_bytes=video, audio_queue_bytes=audio, stall_timeout=stall
        )

    def send_video(self, timestamp_ms: int, body: bytes) -> bool:
        return self.sender.send_video(timestamp_ms, body) if self.sender and not self.closed else False

    def send_audio(self, timestamp_ms: int, body: bytes) -> bool:
        return self.sender.send_audio(timestamp_ms, body) if self.sender and not self.closed else False

    def send_metadata(self, meta: Mapping[str, object]) -> None:
        """``@setDataFrame onMetaData {...}``: the server keeps it for its players."""
        if self.sender is not None and not self.closed:
            self.sender.send_data(build_metadata(meta, set_data_frame=True))

    async def drain(self) -> None:
        """Wait until the socket takes what was sent (for tests and orderly shutdowns)."""
        if self._writer is not None and not self.closed:
            await self._writer.drain()

    async def close(self) -> None:
        """Unpublish, flush and close (idempotent); ``on_close`` is not called."""
        self.on_close = None
        writer, self._writer = self._writer, None
        if writer is not None:
            if self.stream_id and not self.closed:
                writer.write(
                    self._writer_chunks.write(command("FCUnpublish", self._next(), None, self.stream_name))
                )
                writer.write(
                    self._writer_chunks.write(
                        command("deleteStream", self._next(), None, float(self.stream_id))
                    )
                )
            self._lost("closed by the client")
            writer.close()
            try:
                async with asyncio.timeout(2.0):
                    await writer.wait_closed()
            except (TimeoutError, OSError):
                writer.transport.abort()
        self._lost("closed by the client")
        await self._tasks.close()

    # ------------------------------------------------------------------------------ internals

    def _next(self) -> float:
        self._transaction += 1
        return float(self._transaction)

    async def _wait(self, fut: asyncio.Future[_T], what: str) -> _T:
        try:
            async with asyncio.timeout(self.timeout):
                return await fut
        except TimeoutError:
            raise RtmpTimeout(f"the server did not answer {what} within {self.timeout:g} s") from None

    async def _call(self, name: str, obj: object, *args: object) -> list[object]:
        if self.closed or self._writer is None:
            raise RtmpClosed(f"cannot send {name}: {self.close_reason or 'not connected'}")
        txid = self._next()
        fut: asyncio.Future[list[object]] = asyncio.get_running_loop().create_future()
        self._calls[txid] = fut
        self.send_message(command(name, txid, obj, *args))
        try:
            return await self._wait(fut, name)
        finally:
            self._calls.pop(txid, None)

    def _lost(self, reason: str) -> None:
        if self.close_reason is not None:
            return
        self.close_reason = reason
        if self.sender is not None:
            self.sender.closed = True
        futures: list[asyncio.Future[list[object]] | asyncio.Future[tuple[str, str, str]]] = [
            *self._calls.values(),
            *self._statuses.values(),
        ]
        for fut in futures:
            if not fut.done():
                fut.set_exception(RtmpClosed(f"the connection closed: {reason}"))
        callback, self.on_close = self.on_close, None
        if callback is not None:
            try:
                callback(reason)
            except Exception:
                logger.exception("rtmp client: on_close failed")

    async def _read_loop(self, reader: asyncio.StreamReader) -> None:
        reason = "the server closed the connection"
        try:
            while data := await reader.read(65536):
                for msg in self._reader_chunks.feed(data):
                    self._dispatch(msg)
                seq = self._ack.due(self._reader_chunks.bytes_received)
                if seq is not None:
                    self.send_message(chunk.acknowledgement(seq))
        except (RtmpError, amf0.AmfError) as exc:
            reason = f"protocol error from the server: {exc}"
        except ConnectionError:  # reset: a server that closes with our data unread resets
            reason = "the server closed the connection (reset)"
        except OSError as exc:
            reason = f"socket error: {exc}"
        self._lost(reason)
        if self._writer is not None:
            self._writer.transport.abort()

    def _dispatch(self, msg: Message) -> None:
        t = msg.type_id
        if t == chunk.WINDOW_ACK_SIZE:
            self._ack.size = chunk.parse_u32(msg)
        elif t == chunk.SET_PEER_BANDWIDTH:
            size = chunk.parse_u32(msg)
            if size != self._window_sent:  # answer with our window, as the spec asks
                self._window_sent = size
                self.send_message(chunk.window_ack_size(size))
        elif t == chunk.USER_CONTROL:
            event, value, _ = chunk.parse_user_control(msg.payload)
            if event == chunk.PING_REQUEST:
                self.send_message(chunk.user_control(chunk.PING_RESPONSE, value))
        elif t in (chunk.COMMAND_AMF0, chunk.COMMAND_AMF3):
            cmd = parse_command(msg)
            values = [cmd.obj, *cmd.args]
            if cmd.name in ("_result", "_error"):
                fut = self._calls.get(cmd.transaction)
                if fut is not None and not fut.done():
                    if cmd.name == "_result":
                        fut.set_result(values)
                    else:
                        code, description = _info(values)
                        fut.set_exception(
                            RtmpRefused(code or "_error", description or "the server refused it")
                        )
            elif cmd.name == "onStatus":
                info = next((v for v in values if isinstance(v, dict)), {})
                level = str(info.get("level", ""))
                code, description = _info(values)
                waiter = self._statuses.pop(msg.stream_id, None)
                if waiter is None and msg.stream_id == 0 and len(self._statuses) == 1:  # status on stream 0
                    waiter = self._statuses.pop(next(iter(self._statuses)))
                if waiter is not None and not waiter.done():
                    waiter.set_result((level, code, description))
                elif level == "error":
                    logger.warning("rtmp client %s: server error %s: %s", self.stream_name, code, description)
                    self.abort(f"the server sent {code}: {description}")
