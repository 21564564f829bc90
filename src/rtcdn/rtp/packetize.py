"""Frames → RTP: packetizes one track of a frame-based publisher (RTMP in) for the media core.

One :class:`Packetizer` per track, created when the publisher's track is announced and kept
as long as it publishes (it owns the sequence numbers, which must stay continuous). Its packets
are whole RTP packets, version 2, without header extensions or CSRCs, at most ``mtu`` bytes (the
RTP header included; SRTP adds its tag later), and carry ``frame.rtp_time`` as timestamp.

* H.264, packetization-mode 1 (RFC 6184): consecutive NAL units that fit together go in one
  STAP-A, a NAL unit that fits alone is sent as is, a bigger one as FU-A fragments.
* VP8 (RFC 7741): a 4-byte descriptor with a 15-bit picture id, incrementing per frame as in
  libwebrtc; S bit and partition index 0 on the first packet.
* VP9 (draft-ietf-payload-vp9): the minimal non-flexible descriptor, I/P/B/E bits and a 15-bit
  picture id; P is clear on keyframes.
* Opus, PCMA, PCMU, G.722: one frame per packet.

The marker bit is set on the last packet of a video frame and on every audio packet.
:func:`h264_fmtp` derives the SDP fmtp parameters of an H.264 track from its SPS.
"""

from __future__ import annotations

import random
import struct

from .depacketize import AUDIO_CODECS, VIDEO_CODECS
from .frame import Frame
from .packet import RTP_HEADER_SIZE

_HEADER = struct.Struct("!BBHII")

# Chromium's profile-level-id patterns (api/video_codecs/h264_profile_level_id.cc): profile_idc,
# constraint-byte mask, value → canonical prefix of the profile-level-id Chromium writes.
_H264_PROFILES = (
    (0x42, 0x4F, 0x40, "42e0"),  # constrained baseline, x1xx0000
    (0x4D, 0x8F, 0x80, "42e0"),  # constrained baseline, 1xxx0000
    (0x58, 0xCF, 0xC0, "42e0"),  # constrained baseline, 11xx0000
    (0x42, 0x4F, 0x00, "4200"),  # baseline, x0xx0000
    (0x58, 0xCF, 0x80, "4200"),  # baseline, 10xx0000
    (0x4D, 0xAF, 0x00, "4d00"),  # main, 0x0x0000
    (0x64, 0xFF, 0x00, "6400"),  # high
    (0x64, 0xFF, 0x0C, "640c"),  # constrained high
    (0xF4, 0xFF, 0x00, "f400"),  # predictive high 4:4:4
)
_H264_LEVELS = frozenset({10, 11, 12, 13, 20, 21, 22, 30, 31, 32, 40, 41, 42, 50, 51, 52, 60, 61, 62})
_LEVEL_1B = {"42e0": "42f00b", "4200": "42100b", "4d00": "4d100b"}


def h264_fmtp(sps: bytes) -> dict[str, str]:
    """fmtp parameters for an H.264 track whose SPS NAL unit (no start code) is ``sps``.

    ``profile-level-id`` comes from SPS bytes 1..3 (profile_idc, constraint flags, level_idc),
    written the way Chromium writes it when Chromium knows the profile (a constrained-baseline
    SPS gives ``42e0`` + level, e.g. ``42e01f``), else as the three bytes in hex.
    """
    if len(sps) < 4 or sps[0] & 0x1F != 7:
        raise ValueError("not an H.264 SPS NAL unit")
    profile, constraints, level = sps[1], sps[2], sps[3]
    plid = sps[1:4].hex()
    for idc, mask, value, prefix in _H264_PROFILES:
        if profile == idc and constraints & mask == value:
            if level == 11 and constraints & 0x10 and prefix in _LEVEL_1B:  # level 1b
                plid = _LEVEL_1B[prefix]
            elif level in _H264_LEVELS:
                plid = f"{prefix}{level:02x}"
            break
    return {"packetization-mode": "1", "level-asymmetry-allowed": "1", "profile-level-id": plid}


def _split(data: bytes, size: int) -> list[bytes]:
    """``data`` in the fewest pieces of at most ``size`` bytes, of nearly equal length."""
    count = -(-len(data) // size)
    base, extra = divmod(len(data), count)
    out = []
    pos = 0
    for i in range(count):
        n = base + (i < extra)
        out.append(data[pos : pos + n])
        pos += n
    return out


class Packetizer:
    """Packetizes the frames of one track; see the module docstring for the formats."""

    __slots__ = (
        "_max_payload",
        "clock_rate",
        "codec",
        "kind",
        "octets",
        "packets",
        "payload_type",
        "picture_id",
        "seq",
        "ssrc",
    )

    def __init__(self, codec: str, payload_type: int, ssrc: int, clock_rate: int, mtu: int = 1200) -> None:
        codec = codec.lower()
        if codec not in VIDEO_CODECS | AUDIO_CODECS:
            raise ValueError(f"cannot packetize {codec!r}")
        if not 0 <= payload_type <= 127:
            raise ValueError("payload type must be 0..127")
        if mtu < RTP_HEADER_SIZE + 64:
            raise ValueError("MTU too small")
        self.codec = codec
        self.kind = "video" if codec in VIDEO_CODECS else "audio"
        self.payload_type = payload_type
        self.ssrc = ssrc & 0xFFFFFFFF
        self.clock_rate = clock_rate
        self._max_payload = mtu - RTP_HEADER_SIZE
        self.seq = random.getrandbits(16)
        "Sequence number of the next packet."
        self.picture_id = random.getrandbits(15)
        "VP8/VP9 picture id of the next frame."
        self.packets = 0
        self.octets = 0
        "Payload octets sent (for RTCP sender reports)."

    def packetize(self, frame: Frame) -> list[bytes]:
        """The RTP packets of ``frame``; raises ValueError for a frame this track cannot carry."""
        if frame.codec != self.codec:
            raise ValueError(f"a {frame.codec} frame on a {self.codec} track")
        if self.codec == "h264":
            payloads = self._h264(frame.payload)
        elif len(frame.payload) != 1:
            raise ValueError(f"a {self.codec} frame has exactly one payload element")
        elif self.codec == "vp8":
            payloads = self._vpx(frame.payload[0], 4, b"\x90\x80", b"\x80\x80", 0)
        elif self.codec == "vp9":
            first = 0x88 if frame.keyframe else 0xC8  # I, P unless keyframe, B
            payloads = self._vpx(frame.payload[0], 3, bytes((first,)), bytes((first & ~0x08,)), 0x04)
        else:
            if len(frame.payload[0]) > self._max_payload:
                raise ValueError("audio frame larger than the MTU")
            payloads = [frame.payload[0]] if frame.payload[0] else []
        ts = frame.rtp_time & 0xFFFFFFFF
        last = len(payloads) - 1
        out = []
        seq = self.seq
        for i, payload in enumerate(payloads):  # audio: one packet, with the marker bit
            b1 = self.payload_type | (0x80 if i == last else 0)
            out.append(_HEADER.pack(0x80, b1, seq, ts, self.ssrc) + payload)
            seq = (seq + 1) & 0xFFFF
            self.octets += len(payload)
        self.seq = seq
        self.packets += len(out)
        return out

    def _h264(self, nals: tuple[bytes, ...]) -> list[bytes]:
        cap = self._max_payload
        out: list[bytes] = []
        group: list[bytes] = []  # NAL units for the next STAP-A
        size = 1  # STAP-A header

        def flush() -> None:
            if len(group) == 1:
                out.append(group[0])
            elif group:
                header = max(nal[0] & 0x60 for nal in group) | (
                    0x80 if any(n[0] & 0x80 for n in group) else 0
                )
                out.append(bytes((header | 24,)) + b"".join(struct.pack("!H", len(n)) + n for n in group))
            group.clear()

        for nal in nals:
            if not nal:
                continue
            if len(nal) > cap:
                flush()
                size = 1
                indicator = (nal[0] & 0xE0) | 28
                fragments = _split(nal[1:], cap - 2)
                for i, fragment in enumerate(fragments):
                    fu = (nal[0] & 0x1F) | (0x80 if i == 0 else 0) | (0x40 if i == len(fragments) - 1 else 0)
                    out.append(bytes((indicator, fu)) + fragment)
                continue
            if size + 2 + len(nal) > cap:
                flush()
                size = 1
            group.append(nal)
            size += 2 + len(nal)
        flush()
        return out

    def _vpx(self, data: bytes, descriptor: int, first: bytes, other: bytes, end_bit: int) -> list[bytes]:
        """VP8/VP9: ``first``/``other`` descriptor prefixes before the picture id; ``end_bit`` (VP9 E)."""
        if not data:
            return []
        pid = self.picture_id
        self.picture_id = (pid + 1) & 0x7FFF
        pid_bytes = bytes((0x80 | pid >> 8, pid & 0xFF))
        pieces = _split(data, self._max_payload - descriptor)
        last = len(pieces) - 1
        out = []
        for i, piece in enumerate(pieces):
            prefix = bytearray(first if i == 0 else other)
            if i == last:
                prefix[0] |= end_bit
            out.append(bytes(prefix) + pid_bytes + piece)
        return out
