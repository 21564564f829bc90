"""RtmpServerConnection: one accepted RTMP client, from the handshake to the close.

Lifecycle: handshake (``handshake_timeout``) → ``connect`` (the handler's ``on_connect`` may refuse
the app: ``NetConnection.Connect.Rejected``) → ``createStream`` (at most ``max_streams``) →
``publish`` (``on_publish`` returns a :class:`PublishSink` fed with every tag) or ``play``
(``on_play`` gets a :class:`PlayOutput` to send to) → media → close. Until a publish or play the
client must complete a message every ``idle_timeout`` seconds; a publisher every
``publish_idle_timeout``. ``releaseStream`` / ``FCPublish`` / ``FCUnpublish`` / ``FCSubscribe`` /
``getStreamLength`` / ``_checkbw`` get the answers FFmpeg, OBS and Flash expect; ``deleteStream``,
``closeStream`` and ``FCUnpublish`` end a publish or play; an unknown command gets ``_error`` (when
it has a transaction id) and the connection carries on. Commands out of order (publish before
connect, media before publish), protocol errors and refusals send an error status and close.

``run()`` never raises (except a cancellation from outside, after cleaning up); every path ends in
one teardown: each sink gets ``on_end(reason)`` once, each output's ``on_close`` fires once, the
socket is flushed for up to ``close_timeout`` seconds, then aborted. :meth:`close` ends it from
anywhere. Output (:class:`PlayOutput`) never blocks: see :mod:`rtcdn.rtmp.sender`.
"""

from __future__ import annotations

import asyncio
import logging

from . import amf0, chunk
from .chunk import ChunkReader, ChunkWriter, Message
from .commands import (
    Capabilities,
    Command,
    command,
    on_status,
    parse_command,
    server_capabilities,
    split_name,
    status,
)
from .config import RtmpConfig
from .errors import RtmpError, RtmpRefused, RtmpTimeout
from .handler import PlayOutput, PublishSink, RtmpHandler
from .handshake import server_handshake
from .netstream import ConnectionStats, NetStream

__all__ = ["ConnectionStats", "PlayOutput", "PublishSink", "RtmpHandler", "RtmpServerConnection"]

logger = logging.getLogger(__name__)

FMS_VERSION = "FMS/3,5,7,7009"


class _Close(Exception):
    """End the connection with this reason (the client has been told already)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RtmpServerConnection:
    """One client connection (see the module docstring); created and run by :class:`RtmpServer`."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        handler: RtmpHandler,
        config: RtmpConfig | None = None,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.handler = handler
        self.config = config or RtmpConfig()
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.app = ""
        self.app_query: dict[str, str] = {}
        self.tc_url = ""
        self.connect_params: dict[str, object] = {}
        "The client's connect command object (flashVer, tcUrl, swfUrl, fourCcList...)."
        self.capabilities = Capabilities()
        self.stats = ConnectionStats()
        self.state = "handshake"  # → connecting → connected → closed
        self.close_reason: str | None = None
        cfg = self.config
        self._reader = ChunkReader(
            max_chunk_size=cfg.max_chunk_size,
            max_message_size=cfg.max_message_size,
            max_chunk_streams=cfg.max_chunk_streams,
            max_buffered=cfg.max_buffered,
        )
        self._writer = ChunkWriter()
        self._ack = chunk.AckWindow()
        self._streams: dict[int, NetStream] = {}
        self._next_stream_id = 1
        self._task: asyncio.Task[None] | None = None
        self._done = asyncio.Event()

    # ------------------------------------------------------------------------------ Link (sender)

    def send_message(self, msg: Message) -> None:
        if self.writer.transport.is_closing():
            return
        data = self._writer.write(msg)
        self.stats.bytes_out += len(data)
        self.writer.write(data)

    def write_buffer_size(self) -> int:
        return self.writer.transport.get_write_buffer_size()

    def abort(self, reason: str) -> None:
        self.close(reason)

    # ------------------------------------------------------------------------------ lifecycle

    @property
    def closed(self) -> bool:
        return self.state == "closed"

    def close(self, reason: str = "closed by the server", code: str | None = None) -> None:
        """End the connection (from any task, or from a handler callback): the teardown runs in
        the connection's own task. With ``code`` (e.g. ``NetStream.Publish.Failed``), each publish
        and play first gets an error onStatus with ``reason`` as its description."""
        if self.close_reason is None:
            self.close_reason = reason
        if self.state == "closed":  # the teardown is running (and bounded by close_timeout)
            return
        if code is not None:
            for st in self._streams.values():
                if st.mode:
                    self.send_message(on_status(st.id, "error", code, reason))
        if self._task is not None and not self._task.done() and self._task is not asyncio.current_task():
            self._task.cancel()
        elif self._task is None:
            self.writer.close()

    async def wait_closed(self) -> None:
        await self._done.wait()

    async def run(self) -> None:
        """Serve the connection to its end (the task :class:`RtmpServer` starts per connection)."""
        self._task = asyncio.current_task()
        reason, external = "the client closed the connection", False
        try:
            await server_handshake(self.reader, self.writer, self.config.handshake_timeout)
            self.state = "connecting"
            await self._serve()
        except asyncio.CancelledError:
            external = self.close_reason is None
            if not external and self._task is not None:
                self._task.uncancel()
            reason = self.close_reason or "the server is shutting down"
        except _Close as exc:
            reason = exc.reason
        except (RtmpError, amf0.AmfError) as exc:
            reason = str(exc)
        except ConnectionError:  # reset, broken pipe: the client went away (FFmpeg resets at the end)
            reason = "the client closed the connection (reset)"
        except OSError as exc:
            reason = f"socket error: {exc}"
        except Exception as exc:
            logger.exception("rtmp %s: internal error", self.peer)
            reason = f"internal error: {exc!r}"
        reason = self.close_reason or reason
        self.close_reason = reason
        logger.info("rtmp %s (%s): closed: %s", self.peer, self.app or "-", reason)
        await self._teardown(reason)
        if external:
            raise asyncio.CancelledError

    async def _teardown(self, reason: str) -> None:
        self.state = "closed"
        try:
            for st in list(self._streams.values()):
                st.end(reason, None)  # players get NetStream.Play.Stop, publishers nothing
            self._streams.clear()
            self.writer.close()
            async with asyncio.timeout(self.config.close_timeout):
                await self.writer.wait_closed()
        except (TimeoutError, OSError):
            pass
        finally:
            self.writer.transport.abort()  # a no-op once the close completed; drops a stalled backlog
            self._done.set()

    def _deadline(self) -> float | None:
        modes = {st.mode for st in self._streams.values()}
        if "publish" in modes:
            return self.config.publish_idle_timeout
        if "play" in modes:
            return None
        return self.config.idle_timeout

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            idle = self._deadline()
            try:
                async with asyncio.timeout_at(None if idle is None else last + idle):
                    data = await self.reader.read(65536)
            except TimeoutError:
                what = "publishing" if "publish" in {s.mode for s in self._streams.values()} else "idle"
                raise RtmpTimeout(f"no message from the client for {idle:g} s ({what})") from None
            if not data:
                return
            self.stats.bytes_in += len(data)
            messages = self._reader.feed(data)
            for msg in messages:
                self.stats.messages_in += 1
                await self._dispatch(msg)
                if self.close_reason is not None:  # close() from a handler called in this task
                    raise _Close(self.close_reason)
            if messages:
                last = loop.time()
            seq = self._ack.due(self._reader.bytes_received)
            if seq is not None:
                self.send_message(chunk.acknowledgement(seq))

    # ------------------------------------------------------------------------------ messages

    async def _dispatch(self, msg: Message) -> None:
        t = msg.type_id
        if t in (chunk.COMMAND_AMF0, chunk.COMMAND_AMF3):
            await self._command(parse_command(msg))
        elif t in (chunk.AUDIO, chunk.VIDEO, chunk.DATA_AMF0, chunk.DATA_AMF3):
            self._media(msg)
        elif t == chunk.AGGREGATE:
            for sub in chunk.split_aggregate(msg):
                self._media(sub)
        elif t == chunk.WINDOW_ACK_SIZE:
            self._ack.size = chunk.parse_u32(msg)
        elif t == chunk.USER_CONTROL:
            event, value, _ = chunk.parse_user_control(msg.payload)
            if event == chunk.PING_REQUEST:
                self.send_message(chunk.user_control(chunk.PING_RESPONSE, value))
        # Set Chunk Size and Abort are applied by the reader; Acknowledgement, Set Peer Bandwidth,
        # shared objects: nothing to do.

    def _refuse(self, stream_id: int, code: str, description: str) -> _Close:
        self.send_message(on_status(stream_id, "error", code, description))
        return _Close(f"{code}: {description}")

    def _error(self, cmd: Command, code: str, description: str) -> None:
        if cmd.transaction:  # a transaction id 0 expects no answer (FFmpeg fails on unexpected _error)
            self.send_message(command("_error", cmd.transaction, None, status("error", code, description)))

    async def _command(self, cmd: Command) -> None:
        name = cmd.name
        logger.debug("rtmp %s: %s #%g on stream %d: %r %r", self.peer, name, cmd.transaction, cmd.stream_id,
                     cmd.obj, cmd.args)  # fmt: skip
        if name == "connect":
            await self._connect(cmd)
            return
        if self.state != "connected":
            if name in ("publish", "play"):
                kind = "Publish" if name == "publish" else "Play"
                raise self._refuse(cmd.stream_id, f"NetStream.{kind}.Failed", f"{name} before connect")
            self._error(cmd, "NetConnection.Call.Failed", f"{name} before connect")
            raise _Close(f"{name} before connect")
        if name == "createStream":
            if len(self._streams) >= self.config.max_streams:
                self._error(
                    cmd,
                    "NetConnection.Call.Failed",
                    f"too many streams on one connection (max {self.config.max_streams})",
                )
                return
            sid = self._next_stream_id
            self._next_stream_id += 1
            self._streams[sid] = NetStream(sid, self.stats)
            self.send_message(command("_result", cmd.transaction, None, float(sid)))
        elif name in ("releaseStream", "_checkbw"):
            self.send_message(command("_result", cmd.transaction, None, amf0.UNDEFINED))
        elif name in ("FCPublish", "FCSubscribe"):
            stream = cmd.arg(0, str, "")
            code, reply = (
                ("NetStream.Publish.Start", "onFCPublish")
                if name == "FCPublish"
                else ("NetStream.Play.Start", "onFCSubscribe")
            )
            self.send_message(command(reply, 0, None, {"code": code, "description": stream}))
            if cmd.transaction:
                self.send_message(command("_result", cmd.transaction, None, amf0.UNDEFINED))
        elif name == "getStreamLength":
            self.send_message(command("_result", cmd.transaction, None, 0.0))
        elif name == "publish":
            await self._publish(cmd)
        elif name == "play":
            await self._play(cmd)
        elif name in ("deleteStream", "closeStream", "FCUnpublish"):
            self._stop(cmd)
        elif name in ("receiveAudio", "receiveVideo"):
            st = self._streams.get(cmd.stream_id)
            if st is not None and st.output is not None:
                flag = bool(cmd.arg(0, bool, True))
                if name == "receiveAudio":
                    st.output.audio_enabled = flag
                else:
                    st.output.video_enabled = flag
        elif name not in ("_result", "_error", "onStatus", "onBWDone", "_checkbwresult"):
            logger.debug("rtmp %s: unknown command %r", self.peer, name)
            self._error(cmd, "NetConnection.Call.Failed", f"unknown command {name!r}")

    async def _connect(self, cmd: Command) -> None:
        if self.state != "connecting":
            self._error(cmd, "NetConnection.Call.Failed", "connect on a connected connection")
            raise _Close("connect twice")
        params = cmd.obj if isinstance(cmd.obj, dict) else {}
        app_raw = params.get("app")
        tc_url = params.get("tcUrl")
        self.connect_params = params
        self.app, self.app_query = split_name(app_raw.strip("/") if isinstance(app_raw, str) else "")
        self.tc_url = tc_url if isinstance(tc_url, str) else ""
        self.capabilities = Capabilities.of(params)
        try:
            if not self.app:
                raise RtmpRefused("NetConnection.Connect.Rejected", "no application name in connect")
            await self.handler.on_connect(self, self.app, dict(self.app_query))
        except Exception as exc:
            if not isinstance(exc, RtmpRefused):
                logger.exception("rtmp %s: on_connect of %r failed", self.peer, self.app)
                exc = RtmpRefused("NetConnection.Connect.Failed", "internal server error")
            self.send_message(
                command("_error", cmd.transaction, None, status("error", exc.code, exc.description))
            )
            raise _Close(f"connect refused: {exc}") from None
        cfg = self.config
        self.send_message(chunk.window_ack_size(cfg.window_ack_size))
        self.send_message(chunk.set_peer_bandwidth(cfg.peer_bandwidth, chunk.LIMIT_DYNAMIC))
        data = self._writer.set_chunk_size(cfg.chunk_size)
        self.stats.bytes_out += len(data)
        self.writer.write(data)
        props: dict[str, object] = {"fmsVer": FMS_VERSION, "capabilities": 31.0, "mode": 1.0}
        if self.capabilities.enhanced:
            props.update(server_capabilities(cfg.video_fourccs, cfg.audio_fourccs, cfg.caps_ex))
        # objectEncoding 0: AMF0 only, even for a client that offers AMF3
        info = status("status", "NetConnection.Connect.Success", "Connection succeeded.", objectEncoding=0.0)
        self.send_message(command("_result", cmd.transaction, props, info))
        self.state = "connected"
        logger.info("rtmp %s: connected to %r (%s)", self.peer, self.app, params.get("flashVer", "?"))

    def _stream_for(self, cmd: Command, kind: str) -> NetStream:
        st = self._streams.get(cmd.stream_id)
        if st is None:
            raise self._refuse(
                cmd.stream_id,
                f"NetStream.{kind}.Failed",
                f"{cmd.name} on stream {cmd.stream_id}, which createStream did not create",
            )
        if st.mode:
            raise self._refuse(
                cmd.stream_id,
                f"NetStream.{kind}.Failed",
                f"{cmd.name} on stream {st.id}, which is already {st.mode}ing",
            )
        return st

    def _query(self, raw: object) -> tuple[str, dict[str, str]]:
        name, query = split_name(raw if isinstance(raw, str) else "")
        return name, {**self.app_query, **query}

    async def _publish(self, cmd: Command) -> None:
        st = self._stream_for(cmd, "Publish")
        name, query = self._query(cmd.arg(0, str))
        if not name:
            raise self._refuse(st.id, "NetStream.Publish.BadName", "no stream name in publish")
        try:
            sink = await self.handler.on_publish(self, self.app, name, query)
        except RtmpRefused as exc:
            raise self._refuse(st.id, exc.code, exc.description) from None
        except Exception:
            logger.exception("rtmp %s: on_publish of %s failed", self.peer, name)
            raise self._refuse(st.id, "NetStream.Publish.Failed", "internal server error") from None
        st.mode, st.name, st.sink, st.published = "publish", name, sink, True
        self.send_message(chunk.user_control(chunk.STREAM_BEGIN, st.id))
        self.send_message(
            on_status(st.id, "status", "NetStream.Publish.Start", f"{name} is now published.", details=name)
        )
        logger.info("rtmp %s: publishing %s/%s", self.peer, self.app, name)

    async def _play(self, cmd: Command) -> None:
        st = self._stream_for(cmd, "Play")
        name, query = self._query(cmd.arg(0, str))
        if not name:
            raise self._refuse(st.id, "NetStream.Play.StreamNotFound", "no stream name in play")
        out = PlayOutput(self, st.id, name, query)
        try:
            await self.handler.on_play(self, self.app, name, query, out)
        except Exception as exc:
            out.closed = True
            if isinstance(exc, RtmpRefused):
                raise self._refuse(st.id, exc.code, exc.description) from None
            logger.exception("rtmp %s: on_play of %s failed", self.peer, name)
            raise self._refuse(st.id, "NetStream.Play.Failed", "internal server error") from None
        st.mode, st.name, st.output = "play", name, out
        out.start()
        logger.info("rtmp %s: playing %s/%s", self.peer, self.app, name)

    def _stop(self, cmd: Command) -> None:
        if cmd.name == "deleteStream":
            sid = cmd.arg(0, float)
            valid = isinstance(sid, float) and 0 < sid < 1 << 32
            st = self._streams.pop(int(sid), None) if isinstance(sid, float) and valid else None
        elif cmd.name == "closeStream":
            st = self._streams.get(cmd.stream_id)
        else:  # FCUnpublish(name)
            name = split_name(str(cmd.arg(0, str, "")))[0]
            st = next((s for s in self._streams.values() if s.mode == "publish" and s.name == name), None)
            self.send_message(
                command(
                    "onFCUnpublish", 0, None, {"code": "NetStream.Unpublish.Success", "description": name}
                )
            )
            if cmd.transaction:
                self.send_message(command("_result", cmd.transaction, None, amf0.UNDEFINED))
        if st is not None:
            st.end(f"{cmd.name} from the client", self.send_message)

    def _media(self, msg: Message) -> None:
        st = self._streams.get(msg.stream_id)
        if st is None or st.mode != "publish":
            late = st is not None and st.published  # media in flight after an unpublish
            if late or not msg.payload or msg.type_id in (chunk.DATA_AMF0, chunk.DATA_AMF3):
                return
            raise self._refuse(msg.stream_id, "NetStream.Publish.Failed", "media before publish")
        try:
            st.deliver(msg, f"{self.peer} {self.app}")
        except Exception:
            logger.exception("rtmp %s: the sink of %s failed", self.peer, st.name)
            raise self._refuse(st.id, "NetStream.Publish.Failed", "internal server error") from None
