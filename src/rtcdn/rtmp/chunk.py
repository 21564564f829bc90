"""The RTMP chunk stream (RTMP 1.0 spec §5.3) and the protocol control messages (§5.4, §6.2).

* :class:`ChunkReader` — incremental: ``feed(bytes)`` returns the messages completed by those bytes.
  It understands basic headers of 1/2/3 bytes (chunk stream ids 2..65599), message headers of
  type 0/1/2/3, extended timestamps (also on type-3 chunks), timestamp deltas with 32-bit wrap,
  Set Chunk Size (applied at once: it changes how the next bytes are cut) and Abort Message.
  Limits (each a :class:`RtmpProtocolError` when broken): a message longer than
  ``max_message_size`` (default 8 MiB), a peer chunk size over ``max_chunk_size`` (default 1 MiB,
  see :data:`MAX_CHUNK_SIZE`), more than ``max_chunk_streams`` chunk stream ids (default 64), more
  than ``max_buffered`` bytes of incomplete messages at once (default 16 MiB). Bytes are copied
  into the message being assembled as they arrive, so the reader holds at most an incomplete
  chunk header (≤ 18 bytes) besides the incomplete messages themselves.
* :class:`ChunkWriter` — a message → chunk bytes, cut at the writer's chunk size: one type-0
  header, then type-3 headers (repeating the extended timestamp, as the spec and FFmpeg do).
* Protocol control messages as :class:`Message` builders (:func:`set_chunk_size`,
  :func:`window_ack_size`, :func:`set_peer_bandwidth`, :func:`acknowledgement`,
  :func:`user_control`), :func:`parse_user_control`, :class:`AckWindow` (when to acknowledge),
  and :func:`split_aggregate` for aggregate messages (type 22).

Nothing here does I/O: the connection feeds the reader and writes what the writer returns.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .errors import RtmpProtocolError

# Message type ids
SET_CHUNK_SIZE, ABORT, ACKNOWLEDGEMENT, USER_CONTROL, WINDOW_ACK_SIZE, SET_PEER_BANDWIDTH = 1, 2, 3, 4, 5, 6
AUDIO, VIDEO = 8, 9
DATA_AMF3, SHARED_OBJECT_AMF3, COMMAND_AMF3 = 15, 16, 17
DATA_AMF0, SHARED_OBJECT_AMF0, COMMAND_AMF0 = 18, 19, 20
AGGREGATE = 22

# User control events (§7.1.7)
STREAM_BEGIN, STREAM_EOF, STREAM_DRY, SET_BUFFER_LENGTH, STREAM_IS_RECORDED = 0, 1, 2, 3, 4
PING_REQUEST, PING_RESPONSE = 6, 7

# Set Peer Bandwidth limit types
LIMIT_HARD, LIMIT_SOFT, LIMIT_DYNAMIC = 0, 1, 2

DEFAULT_CHUNK_SIZE = 128
"The chunk size of both directions until a Set Chunk Size says otherwise."
MAX_CHUNK_SIZE = 1 << 20
"""Default cap on the peer's chunk size. Real peers use 128..65536 (FFmpeg and nginx 4096, OBS 4096,
SRS 60000, MediaMTX 65536); anything above 1 MiB only serves to make us wait for huge chunks."""
MAX_MESSAGE_SIZE = 8 << 20
"Default cap on one message (a keyframe of a high-bitrate 4K stream is a few MiB)."
MAX_CHUNK_STREAMS = 64
"Default cap on the chunk stream ids a peer may use (real peers use fewer than 10)."
MAX_BUFFERED = 16 << 20
"Default cap on the declared lengths of all the messages being assembled at once."
MAX_TIMESTAMP = 0xFFFFFF


@dataclass(frozen=True, slots=True)
class Message:
    """One RTMP message: ``timestamp`` in milliseconds (32-bit, wraps), ``stream_id`` the message stream."""

    type_id: int
    stream_id: int
    timestamp: int
    payload: bytes


class _InStream:
    """The state of one incoming chunk stream id."""

    __slots__ = ("body", "delta", "ext_raw", "extended", "length", "stream_id", "timestamp", "type_id")

    def __init__(self) -> None:
        self.timestamp = 0
        self.delta = 0  # the timestamp field of the last type 0/1/2 header (absolute after a type 0)
        self.length = 0
        self.type_id = 0
        self.stream_id = 0
        self.extended = False  # the last type 0/1/2 header had an extended timestamp
        self.ext_raw = 0
        self.body: bytearray | None = None  # the message being assembled


class ChunkReader:
    """Bytes in, complete messages out. Lifecycle: one per connection direction; ``feed`` until the
    peer closes; any :class:`RtmpProtocolError` is fatal for the connection (the state is undefined)."""

    def __init__(
        self,
        *,
        max_chunk_size: int = MAX_CHUNK_SIZE,
        max_message_size: int = MAX_MESSAGE_SIZE,
        max_chunk_streams: int = MAX_CHUNK_STREAMS,
        max_buffered: int = MAX_BUFFERED,
    ) -> None:
        self.chunk_size = DEFAULT_CHUNK_SIZE
        self.max_chunk_size = max_chunk_size
        self.max_message_size = max_message_size
        self.max_chunk_streams = max_chunk_streams
        self.max_buffered = max_buffered
        self.bytes_received = 0
        self.buffered = 0
        "Sum of the declared lengths of the messages being assembled."
        self._streams: dict[int, _InStream] = {}
        self._pending = b""  # an incomplete chunk header
        self._chunk: _InStream | None = None  # the stream whose chunk payload is being read
        self._chunk_left = 0

    def feed(self, data: bytes | bytearray | memoryview) -> list[Message]:
        """The messages that ``data`` completes, in order (Set Chunk Size and Abort included)."""
        self.bytes_received += len(data)
        if self._pending:
            data = self._pending + bytes(data)
            self._pending = b""
        view = memoryview(data).cast("B")
        out: list[Message] = []
        pos, end = 0, len(view)
        while pos < end:
            st = self._chunk
            if st is None:
                new = self._header(view, pos)
                if new < 0:
                    self._pending = bytes(view[pos:])
                    break
                pos = new
                st = self._chunk
                if st is None:
                    continue
            assert st.body is not None
            n = min(self._chunk_left, end - pos)
            st.body += view[pos : pos + n]
            pos += n
            self._chunk_left -= n
            if self._chunk_left:
                break
            self._chunk = None
            if len(st.body) == st.length:
                out.append(self._complete(st))
        if self._chunk is not None and self._chunk_left == 0:  # an empty message's header just ended
            st = self._chunk
            self._chunk = None
            out.append(self._complete(st))
        return out

    def _header(self, v: memoryview, pos: int) -> int:
        """Parse the chunk header at ``pos``: the position after it, or -1 if it is incomplete."""
        end = len(v)
        b0 = v[pos]
        fmt, csid, p = b0 >> 6, b0 & 0x3F, pos + 1
        if csid == 0:
            if p + 1 > end:
                return -1
            csid, p = 64 + v[p], p + 1
        elif csid == 1:
            if p + 2 > end:
                return -1
            csid, p = 64 + v[p] + (v[p + 1] << 8), p + 2
        size = (11, 7, 3, 0)[fmt]
        if p + size > end:
            return -1
        st = self._streams.get(csid)
        if st is None:
            if fmt != 0:
                raise RtmpProtocolError(
                    f"chunk stream {csid} starts with a type {fmt} chunk header "
                    "(the first header of a chunk stream must be type 0)"
                )
            if len(self._streams) >= self.max_chunk_streams:
                raise RtmpProtocolError(f"the peer uses more than {self.max_chunk_streams} chunk streams")
        continuing = st is not None and st.body is not None
        if continuing and fmt != 3:
            raise RtmpProtocolError(
                f"a type {fmt} chunk header on chunk stream {csid} while a message is still incomplete there"
            )
        field = 0
        if fmt == 3:
            assert st is not None
            extended = st.extended
        else:
            field = (v[p] << 16) | (v[p + 1] << 8) | v[p + 2]
            extended = field == MAX_TIMESTAMP
        q = p + size
        if extended:
            if q + 4 > end:
                return -1
            raw = int.from_bytes(v[q : q + 4], "big")
            if continuing:
                assert st is not None
                # Some peers leave the extended timestamp out of type-3 continuation chunks (SRS does
                # the same check): it is there only if it repeats the message's one.
                if raw == st.ext_raw:
                    q += 4
            else:
                field = raw
                q += 4
        if st is None:
            st = self._streams[csid] = _InStream()
        if not continuing:
            if fmt == 0:
                st.timestamp = field
            else:
                if fmt == 3:
                    field = st.delta if not extended else field
                st.timestamp = (st.timestamp + field) & 0xFFFFFFFF
            if fmt != 3:
                st.delta = field
                st.extended = extended
                st.ext_raw = field if extended else 0
            if fmt <= 1:
                st.length = (v[p + 3] << 16) | (v[p + 4] << 8) | v[p + 5]
                st.type_id = v[p + 6]
                if fmt == 0:
                    st.stream_id = int.from_bytes(v[p + 7 : p + 11], "little")
            if st.length > self.max_message_size:
                raise RtmpProtocolError(
                    f"message of {st.length} bytes on chunk stream {csid} is over the "
                    f"limit of {self.max_message_size} bytes"
                )
            if self.buffered + st.length > self.max_buffered:
                raise RtmpProtocolError(f"incomplete messages would hold more than {self.max_buffered} bytes")
            self.buffered += st.length
            st.body = bytearray()
        assert st.body is not None
        self._chunk = st
        self._chunk_left = min(self.chunk_size, st.length - len(st.body))
        return q

    def _complete(self, st: _InStream) -> Message:
        assert st.body is not None
        msg = Message(st.type_id, st.stream_id, st.timestamp, bytes(st.body))
        st.body = None
        self.buffered -= st.length
        if msg.type_id == SET_CHUNK_SIZE:
            if len(msg.payload) < 4:
                raise RtmpProtocolError("Set Chunk Size message is shorter than 4 bytes")
            size = int.from_bytes(msg.payload[:4], "big")
            if not 1 <= size <= 0x7FFFFFFF:
                raise RtmpProtocolError(f"invalid chunk size {size} (1..2147483647)")
            if size > self.max_chunk_size:
                raise RtmpProtocolError(f"peer chunk size {size} is over the limit of {self.max_chunk_size}")
            self.chunk_size = size
        elif msg.type_id == ABORT and len(msg.payload) >= 4:
            other = self._streams.get(int.from_bytes(msg.payload[:4], "big"))
            if other is not None and other.body is not None:
                self.buffered -= other.length
                other.body = None
        return msg


def _basic_header(fmt: int, csid: int) -> bytes:
    if 2 <= csid <= 63:
        return bytes(((fmt << 6) | csid,))
    if 64 <= csid <= 319:
        return bytes((fmt << 6, csid - 64))
    if 320 <= csid <= 65599:
        return bytes(((fmt << 6) | 1,)) + (csid - 64).to_bytes(2, "little")
    raise ValueError(f"chunk stream id {csid} is out of range (2..65599)")


def default_csid(msg: Message) -> int:
    """The chunk stream id we send a message on: 2 control, 3 connection commands, 4 audio, 6 video,
    5 data and stream commands (FFmpeg's and nginx's choice, near enough)."""
    if msg.type_id <= SET_PEER_BANDWIDTH:
        return 2
    if msg.type_id == AUDIO:
        return 4
    if msg.type_id == VIDEO:
        return 6
    return 3 if msg.stream_id == 0 else 5


class ChunkWriter:
    """Messages → chunk bytes. Lifecycle: one per connection; change the chunk size only with
    :meth:`set_chunk_size`, whose bytes must go out before any message written after it."""

    def __init__(self, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        self.chunk_size = chunk_size
        self.bytes_written = 0

    def set_chunk_size(self, size: int) -> bytes:
        """The Set Chunk Size message (cut at the old size), after which ``size`` applies."""
        data = self.write(set_chunk_size(size))
        self.chunk_size = size
        return data

    def write(self, msg: Message, csid: int | None = None) -> bytes:
        if csid is None:
            csid = default_csid(msg)
        length = len(msg.payload)
        if length > 0xFFFFFF:
            raise ValueError(f"RTMP message of {length} bytes is too long (max 16 MiB)")
        ts = msg.timestamp & 0xFFFFFFFF
        extended = ts >= MAX_TIMESTAMP
        field = MAX_TIMESTAMP if extended else ts
        ext = ts.to_bytes(4, "big") if extended else b""
        parts: list[bytes | memoryview] = [
            _basic_header(0, csid),
            field.to_bytes(3, "big"),
            length.to_bytes(3, "big"),
            bytes((msg.type_id,)),
            msg.stream_id.to_bytes(4, "little"),
            ext,
        ]
        payload = memoryview(msg.payload)
        size = self.chunk_size
        parts.append(payload[:size])
        if length > size:
            continuation = _basic_header(3, csid) + ext
            for off in range(size, length, size):
                parts.append(continuation)
                parts.append(payload[off : off + size])
        data = b"".join(parts)
        self.bytes_written += len(data)
        return data


# --------------------------------------------------------------------------------- control messages


def set_chunk_size(size: int) -> Message:
    if not 1 <= size <= 0x7FFFFFFF:
        raise ValueError(f"chunk size {size} is out of range (1..2147483647)")
    return Message(SET_CHUNK_SIZE, 0, 0, struct.pack("!I", size))


def abort(csid: int) -> Message:
    return Message(ABORT, 0, 0, struct.pack("!I", csid))


def acknowledgement(sequence: int) -> Message:
    return Message(ACKNOWLEDGEMENT, 0, 0, struct.pack("!I", sequence & 0xFFFFFFFF))


def window_ack_size(size: int) -> Message:
    return Message(WINDOW_ACK_SIZE, 0, 0, struct.pack("!I", size))


def set_peer_bandwidth(size: int, limit: int = LIMIT_DYNAMIC) -> Message:
    return Message(SET_PEER_BANDWIDTH, 0, 0, struct.pack("!IB", size, limit))


def user_control(event: int, value: int, extra: int | None = None) -> Message:
    """A User Control message: ``value`` is the stream id or the ping timestamp; ``extra`` the buffer
    length of Set Buffer Length."""
    payload = struct.pack("!HI", event, value & 0xFFFFFFFF)
    if extra is not None:
        payload += struct.pack("!I", extra & 0xFFFFFFFF)
    return Message(USER_CONTROL, 0, 0, payload)


def parse_user_control(payload: bytes) -> tuple[int, int, int | None]:
    """``(event, value, extra)`` of a User Control message (``extra``: Set Buffer Length's milliseconds)."""
    if len(payload) < 6:
        raise RtmpProtocolError(f"User Control message of {len(payload)} bytes is too short")
    event, value = struct.unpack_from("!HI", payload)
    extra = (
        int.from_bytes(payload[6:10], "big") if event == SET_BUFFER_LENGTH and len(payload) >= 10 else None
    )
    return int(event), int(value), extra


def parse_u32(msg: Message) -> int:
    """The 32-bit value of an Acknowledgement / Window Acknowledgement Size / Set Peer Bandwidth."""
    if len(msg.payload) < 4:
        raise RtmpProtocolError(f"control message type {msg.type_id} is shorter than 4 bytes")
    return int.from_bytes(msg.payload[:4], "big")


class AckWindow:
    """When to send an Acknowledgement: the peer's Window Acknowledgement Size says every how many
    received bytes. ``due(total_received)`` returns the sequence number to acknowledge, or None."""

    def __init__(self) -> None:
        self.size = 0
        self._last = 0

    def due(self, received: int) -> int | None:
        if self.size <= 0 or received - self._last < self.size:
            return None
        self._last = received
        return received & 0xFFFFFFFF


def split_aggregate(msg: Message) -> list[Message]:
    """The audio/video/data messages inside an aggregate message (FLV tags with back pointers); the
    first sub-message takes the aggregate's timestamp, the others keep their offsets from it."""
    out: list[Message] = []
    data = msg.payload
    pos, base = 0, None
    while pos + 11 <= len(data):
        kind = data[pos]
        size = int.from_bytes(data[pos + 1 : pos + 4], "big")
        ts = int.from_bytes(data[pos + 4 : pos + 7], "big") | (data[pos + 7] << 24)
        body_end = pos + 11 + size
        if body_end > len(data):
            raise RtmpProtocolError(f"aggregate message: a sub-message of {size} bytes overruns the message")
        if base is None:
            base = ts
        if kind in (AUDIO, VIDEO, DATA_AMF0):
            timestamp = (msg.timestamp + ts - base) & 0xFFFFFFFF
            out.append(Message(kind, msg.stream_id, timestamp, data[pos + 11 : body_end]))
        pos = body_end + 4  # the previous-tag-size back pointer
    return out
