"""RtmpConfig: the limits and timers of the RTMP server side (one frozen object for every connection)."""

from __future__ import annotations

from dataclasses import dataclass

from .chunk import MAX_BUFFERED, MAX_CHUNK_SIZE, MAX_CHUNK_STREAMS, MAX_MESSAGE_SIZE
from .commands import CAPS_EX_MODEX
from .sender import AUDIO_QUEUE_BYTES, STALL_TIMEOUT, VIDEO_QUEUE_BYTES


@dataclass(frozen=True, slots=True)
class RtmpConfig:
    handshake_timeout: float = 10.0
    "Seconds a client has to complete C0+C1 … C2."
    idle_timeout: float = 30.0
    "Before a publish or play: the longest gap between two complete messages."
    publish_idle_timeout: float = 30.0
    "A publisher that sends no complete message for this long is dropped (players may be silent)."
    close_timeout: float = 2.0
    "How long the last bytes (a status, an error) may take to flush before the socket is aborted."
    max_connections: int = 1000
    "Connections the server accepts at once; more are closed right after accept."
    max_streams: int = 4
    "createStream calls per connection (each a NetStream); more get _error."
    chunk_size: int = 4096
    "Our chunk size, sent right before the connect _result."
    window_ack_size: int = 2_500_000
    peer_bandwidth: int = 2_500_000
    max_chunk_size: int = MAX_CHUNK_SIZE
    max_message_size: int = MAX_MESSAGE_SIZE
    max_chunk_streams: int = MAX_CHUNK_STREAMS
    max_buffered: int = MAX_BUFFERED
    video_queue_bytes: int = VIDEO_QUEUE_BYTES
    "A player's unsent backlog over which video is dropped until the next keyframe."
    audio_queue_bytes: int = AUDIO_QUEUE_BYTES
    "A player's unsent backlog over which audio is dropped too."
    stall_timeout: float = STALL_TIMEOUT
    "A player whose backlog stays over ``video_queue_bytes`` this long is closed."
    video_fourccs: tuple[str, ...] = ("avc1", "hvc1", "vp09", "av01")
    "Enhanced RTMP video codecs announced to E-RTMP clients (in the connect _result)."
    audio_fourccs: tuple[str, ...] = ("Opus", "mp4a")
    caps_ex: int = CAPS_EX_MODEX
    "capsEx announced to E-RTMP clients: we parse (skip) ModEx prefixes."
