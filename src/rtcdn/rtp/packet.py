"""RTP passthrough: header rewriting, per-player sinks and the per-track packet history.

Pure Python on raw packet bytes; nothing here knows about aiortc or WebRTC. A packet is
parsed once when it enters a :class:`~rtcdn.stream.Stream`; each distinct *profile* of players
(payload type + header-extension id mapping) gets one rewritten copy, and each player then only
patches its sequence number and SSRC (:class:`RtpSink`).
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

RTP_HEADER_SIZE = 12
HISTORY_SIZE = 1024

_SEQ = struct.Struct("!H")


class RtpError(ValueError):
    """A packet that is not valid RTP."""


@dataclass(frozen=True, slots=True)
class TrackInfo:
    """What a publisher sends on one track; players negotiate against it."""

    kind: str
    "``audio`` or ``video``."
    mime_type: str
    "e.g. ``video/VP8``, ``video/H264``, ``audio/opus``."
    clock_rate: int
    payload_type: int
    "The publisher's payload type for the media codec."
    channels: int | None = None
    parameters: Mapping[str, str | int] = field(default_factory=dict)
    "fmtp parameters (H264 profile-level-id, packetization-mode, ...)."
    extensions: Mapping[int, str] = field(default_factory=dict)
    "The publisher's header extension ids → URIs."

    @property
    def codec_name(self) -> str:
        return self.mime_type.split("/", 1)[1]


def header_length(data: bytes) -> int:
    """Length of the fixed header, CSRCs and extension block; raises :class:`RtpError`."""
    n = len(data)
    if n < RTP_HEADER_SIZE or data[0] >> 6 != 2:
        raise RtpError("not an RTP version 2 packet")
    off = RTP_HEADER_SIZE + 4 * (data[0] & 0x0F)
    if data[0] & 0x10:
        if off + 4 > n:
            raise RtpError("RTP extension header is truncated")
        off += 4 + 4 * ((data[off + 2] << 8) | data[off + 3])
    if off > n:
        raise RtpError("RTP header is longer than the packet")
    return off


def rewrite_extensions(block: bytes, id_map: Mapping[int, int]) -> bytes:
    """Rewrite an RFC 8285 extension block (profile + length + elements).

    Elements whose id has no entry in ``id_map`` are dropped. Returns the new block (with
    its 4-byte profile/length header) or ``b""`` when nothing is left.
    """
    profile = block[0:2]
    body = block[4:]
    out = bytearray()
    i = 0
    if profile == b"\xbe\xde":  # one-byte header
        while i < len(body):
            b = body[i]
            if b == 0:
                i += 1
                continue
            ext_id, length = b >> 4, (b & 0x0F) + 1
            if ext_id == 15:
                break
            new_id = id_map.get(ext_id)
            if new_id is not None and 0 < new_id < 15:
                out.append((new_id << 4) | (length - 1))
                out += body[i + 1 : i + 1 + length]
            i += 1 + length
    elif profile[0] == 0x10 and (profile[1] & 0xF0) == 0:  # two-byte header
        while i + 1 < len(body):
            ext_id = body[i]
            if ext_id == 0:
                i += 1
                continue
            length = body[i + 1]
            new_id = id_map.get(ext_id)
            if new_id is not None and 0 < new_id < 256:
                out += bytes((new_id, length))
                out += body[i + 2 : i + 2 + length]
            i += 2 + length
    else:
        return b""
    if not out:
        return b""
    out += b"\x00" * (-len(out) % 4)
    return profile + struct.pack("!H", len(out) // 4) + bytes(out)


class RtpRewriter:
    """Turns a publisher's packet into a template for one player profile.

    The template has the player's payload type and header-extension ids; sequence number and
    SSRC are left for :class:`RtpSink` to patch.
    """

    __slots__ = ("_id_map", "_pt")

    def __init__(self, payload_type: int, id_map: Mapping[int, int]) -> None:
        self._pt = payload_type
        self._id_map = dict(id_map)

    @property
    def key(self) -> tuple[int, tuple[tuple[int, int], ...]]:
        return (self._pt, tuple(sorted(self._id_map.items())))

    def rewrite(self, data: bytes) -> bytes:
        b0 = data[0]
        b1 = (data[1] & 0x80) | self._pt
        if not b0 & 0x10:
            return bytes((b0, b1)) + data[2:]
        off = RTP_HEADER_SIZE + 4 * (b0 & 0x0F)
        end = off + 4 + 4 * ((data[off + 2] << 8) | data[off + 3])
        block = rewrite_extensions(data[off:end], self._id_map) if self._id_map else b""
        if not block:
            b0 &= ~0x10
        return bytes((b0, b1)) + data[2:off] + block + data[end:]


def extension_id_map(publisher: Mapping[int, str], player: Mapping[str, int]) -> dict[int, int]:
    """Map publisher extension ids to the player's, by URI (mid is never forwarded)."""
    out: dict[int, int] = {}
    for ext_id, uri in publisher.items():
        if uri.endswith(":sdes:mid"):
            continue
        if uri in player:
            out[ext_id] = player[uri]
    return out


def stamp(template: bytes, seq: int, ssrc: bytes) -> bytes:
    """``template`` with sequence number ``seq`` and the 4-byte ``ssrc`` written in.

    The reference for what a :data:`Transmit` puts on the wire (the WebRTC layer's fast one writes
    the same bytes straight into its SRTP buffer).
    """
    buf = bytearray(template)
    _SEQ.pack_into(buf, 2, seq)
    buf[8:12] = ssrc
    return bytes(buf)


Transmit = Callable[[bytes, int], None]
"""``transmit(template, seq)``: send ``template`` with sequence number ``seq`` and the sink's SSRC
(bound into the transmitter); synchronous, drops rather than queues when the socket is full."""


class RtpSink:
    """One player's end of one track: picks its sequence numbers, counts, transmits.

    ``transmit`` is the WebRTC layer's synchronous send, bound to this sink's SSRC: it writes the
    template, sequence number and SSRC straight into its SRTP buffer, protects and sends (one copy
    per packet and player). Lifecycle: created by a player after negotiation, attached to a Stream
    track, detached on close.
    """

    __slots__ = (
        "_seq_offset",
        "kind",
        "octets",
        "on_keyframe_request",
        "packets",
        "rewriter",
        "ssrc",
        "transmit",
    )

    def __init__(
        self,
        kind: str,
        ssrc: int,
        rewriter: RtpRewriter,
        transmit: Transmit,
    ) -> None:
        self.kind = kind
        self.ssrc = ssrc
        self.rewriter = rewriter
        self.transmit = transmit
        self.packets = 0
        self.octets = 0
        self.on_keyframe_request: Callable[[], None] | None = None
        self._seq_offset: int | None = None

    def send(self, template: bytes, seq: int) -> None:
        """Send a template made by this sink's rewriter, for publisher sequence ``seq``."""
        offset = self._seq_offset
        if offset is None:
            offset = self._seq_offset = (random.getrandbits(15) - seq) & 0xFFFF
        self.transmit(template, (seq + offset) & 0xFFFF)
        self.packets += 1
        self.octets += len(template)

    def publisher_seq(self, player_seq: int) -> int | None:
        """The publisher sequence number a player's NACK refers to."""
        if self._seq_offset is None:
            return None
        return (player_seq - self._seq_offset) & 0xFFFF


class PacketHistory:
    """The last :data:`HISTORY_SIZE` packets of a track, by publisher sequence number."""

    __slots__ = ("_ring",)

    def __init__(self) -> None:
        self._ring: list[tuple[int, bytes] | None] = [None] * HISTORY_SIZE

    def add(self, seq: int, data: bytes) -> None:
        self._ring[seq % HISTORY_SIZE] = (seq, data)

    def get(self, seq: int) -> bytes | None:
        entry = self._ring[seq % HISTORY_SIZE]
        if entry is not None and entry[0] == seq:
            return entry[1]
        return None


def unwrap_rtx(data: bytes, payload_type: int, ssrc: int) -> bytes:
    """Recover the original packet from an RFC 4588 retransmission."""
    hlen = header_length(data)
    pad = data[-1] if data[0] & 0x20 else 0
    if len(data) - pad - hlen < 2:
        raise RtpError("RTX packet without original sequence number")
    b0 = data[0] & ~0x20  # padding is dropped with the RTX payload's tail
    b1 = (data[1] & 0x80) | payload_type
    return (
        bytes((b0, b1))
        + data[hlen : hlen + 2]
        + data[4:8]
        + struct.pack("!I", ssrc)
        + data[12:hlen]
        + data[hlen + 2 : len(data) - pad]
    )


def _vp8_keyframe_start(data: bytes, i: int) -> bool:
    """RFC 7741: first packet of partition 0 whose VP8 payload header has P=0."""
    if len(data) < i + 2:
        return False
    b0 = data[i]
    if not b0 & 0x10 or b0 & 0x07:  # S bit, partition index 0
        return False
    j = i + 1
    if b0 & 0x80:  # X: an extension byte follows
        ext = data[j]
        j += 1
        if ext & 0x80:  # I: picture id, 7 or 15 bits
            j += 2 if len(data) > j and data[j] & 0x80 else 1
        if ext & 0x40:  # L: TL0PICIDX
            j += 1
        if ext & 0x30:  # T or K
            j += 1
    return len(data) > j and not data[j] & 0x01


def _vp9_keyframe_start(data: bytes, i: int) -> bool:
    """draft-ietf-payload-vp9: B (start of frame) set and P (inter-picture predicted) clear."""
    return len(data) > i and (data[i] & 0x48) == 0x08


def _h264_keyframe_start(data: bytes, i: int) -> bool:
    """RFC 6184: an SPS or IDR NAL unit, alone, in a STAP-A, or starting an FU-A."""
    if len(data) <= i:
        return False
    nal_type = data[i] & 0x1F
    if nal_type in (5, 7):
        return True
    if nal_type == 24:  # STAP-A: 16-bit size + NAL unit, repeated
        j = i + 1
        while j + 2 < len(data):
            if data[j + 2] & 0x1F in (5, 7):
                return True
            j += 2 + ((data[j] << 8) | data[j + 1])
        return False
    if nal_type == 28 and len(data) > i + 1:  # FU-A
        return bool(data[i + 1] & 0x80) and data[i + 1] & 0x1F == 5
    return False


KeyframeDetector = Callable[[bytes, int], bool]
"``detect(packet, payload_offset)``: does this RTP packet start a keyframe?"

KEYFRAME_DETECTORS: dict[str, KeyframeDetector] = {
    "vp8": _vp8_keyframe_start,
    "vp9": _vp9_keyframe_start,
    "h264": _h264_keyframe_start,
}


def keyframe_detector(mime_type: str) -> KeyframeDetector | None:
    """The detector for a codec, or None when rtcdn cannot tell keyframes of that codec."""
    return KEYFRAME_DETECTORS.get(mime_type.split("/")[-1].lower())
