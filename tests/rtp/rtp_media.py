"""Real encoded media and RTP packet helpers for the frame conversion tests (PyAV, aiortc)."""

from __future__ import annotations

import fractions
import math
import random
import struct
from collections.abc import Iterable, Sequence
from typing import Any, cast

import av
from av.video.codeccontext import VideoCodecContext

from rtcdn.rtp.depacketize import Depacketizer
from rtcdn.rtp.frame import Frame, split_annexb

W, H = 320, 240
_NOISE = random.Random(7)
_PLANES = [_NOISE.randbytes(W * H * 2) for _ in range(3)]


def picture(i: int, width: int = W, height: int = H) -> av.VideoFrame:
    """A deterministic, detailed picture that moves a little from frame to frame (90 kHz pts)."""
    frame = av.VideoFrame(width, height, "yuv420p")
    for k, plane in enumerate(frame.planes):
        off = (i * 7) % 1000
        plane.update(_PLANES[k][off : off + plane.buffer_size])
    frame.pts = i * 3000
    frame.time_base = fractions.Fraction(1, 90000)
    return frame


def rtp(
    payload: bytes,
    seq: int,
    ts: int,
    marker: bool = False,
    pt: int = 96,
    ssrc: int = 0x1234,
    padding: int = 0,
    csrcs: int = 0,
    extension: bytes = b"",
) -> bytes:
    """An RTP packet; ``padding`` bytes of padding, ``extension`` an RFC 8285 one-byte block body."""
    b0 = 0x80 | csrcs | (0x20 if padding else 0) | (0x10 if extension else 0)
    head = struct.pack("!BBHII", b0, pt | (0x80 if marker else 0), seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc)
    head += b"\x11\x22\x33\x44" * csrcs
    if extension:
        extension += b"\x00" * (-len(extension) % 4)
        head += b"\xbe\xde" + struct.pack("!H", len(extension) // 4) + extension
    pad = b"\x00" * (padding - 1) + bytes((padding,)) if padding else b""
    return head + payload + pad


def with_seq(packet: bytes, seq: int) -> bytes:
    return packet[:2] + struct.pack("!H", seq & 0xFFFF) + packet[4:]


def seq_of(packet: bytes) -> int:
    return int(struct.unpack_from("!H", packet, 2)[0])


def wrap(frames: Iterable[tuple[Sequence[bytes], int]], seq: int = 1000, pt: int = 96) -> list[list[bytes]]:
    """RTP packets (marker on the last of each frame) for ``(payloads, timestamp)`` pairs, per frame."""
    out = []
    for payloads, ts in frames:
        packets = []
        for i, payload in enumerate(payloads):
            packets.append(rtp(payload, seq, ts, marker=i == len(payloads) - 1, pt=pt))
            seq += 1
        out.append(packets)
    return out


def push_all(depacketizer: Depacketizer, packets: Iterable[bytes], arrival: float = 0.0) -> list[Frame]:
    frames: list[Frame] = []
    for packet in packets:
        frames += depacketizer.push(packet, arrival)
    return frames


def x264_access_units(
    count: int, keyframes: Sequence[int] = (0,), profile: str = "baseline", preset: str = "ultrafast"
) -> list[tuple[list[bytes], bool]]:
    """``count`` H.264 access units (NAL units, is IDR) from libx264, IDR at the ``keyframes``."""
    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height, codec.pix_fmt = W, H, "yuv420p"
    codec.time_base = fractions.Fraction(1, 90000)
    codec.framerate = fractions.Fraction(30, 1)
    codec.options = {"tune": "zerolatency", "preset": preset, "profile": profile, "bframes": "0"}
    out = []
    for i in range(count):
        frame = picture(i)
        frame.pict_type = av.video.frame.PictureType.I if i in keyframes else av.video.frame.PictureType.NONE
        for packet in codec.encode(frame):
            nals = split_annexb(bytes(packet))
            out.append((nals, any(nal[0] & 0x1F == 5 for nal in nals)))
    for packet in codec.encode(None):
        nals = split_annexb(bytes(packet))
        out.append((nals, any(nal[0] & 0x1F == 5 for nal in nals)))
    assert len(out) == count
    return out


def vpx_frames(codec_name: str, count: int, keyframes: Sequence[int] = (0,)) -> list[tuple[bytes, bool]]:
    """``count`` VP8 (``libvpx``) or VP9 (``libvpx-vp9``) frames, realtime, one per picture."""
    codec = cast(VideoCodecContext, av.CodecContext.create(codec_name, "w"))
    codec.width, codec.height, codec.pix_fmt = W, H, "yuv420p"
    codec.time_base = fractions.Fraction(1, 90000)
    codec.framerate = fractions.Fraction(30, 1)
    codec.bit_rate = 1_000_000
    codec.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0", "auto-alt-ref": "0"}
    out = []
    for i in range(count):
        frame = picture(i)
        frame.pict_type = av.video.frame.PictureType.I if i in keyframes else av.video.frame.PictureType.NONE
        out += [(bytes(p), bool(p.is_keyframe)) for p in codec.encode(frame)]
    out += [(bytes(p), bool(p.is_keyframe)) for p in codec.encode(None)]
    assert len(out) == count
    return out


def opus_frames(count: int) -> list[bytes]:
    """``count`` 20 ms Opus frames of a 440 Hz tone (48 kHz stereo)."""
    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate = 48000
    codec.layout = "stereo"
    codec.format = "s16"
    codec.bit_rate = 64000
    codec.time_base = fractions.Fraction(1, 48000)
    out: list[bytes] = []
    n = 0
    while len(out) < count:
        samples = bytearray()
        for k in range(960):
            v = int(8000 * math.sin(2 * math.pi * 440 * (n + k) / 48000))
            samples += struct.pack("<hh", v, v)
        frame = av.AudioFrame(format="s16", layout="stereo", samples=960)
        frame.planes[0].update(bytes(samples))
        frame.sample_rate = 48000
        frame.pts = n
        frame.time_base = fractions.Fraction(1, 48000)
        n += 960
        out += [bytes(p) for p in codec.encode(frame)]
    return out[:count]


def decode(codec_name: str, payloads: Iterable[bytes]) -> list[Any]:
    """Decode with PyAV; returns the pictures (or audio frames) it produced, flushed."""
    codec: Any = av.CodecContext.create(codec_name, "r")
    out: list[Any] = []
    for data in payloads:
        out += codec.decode(av.Packet(data))
    out += codec.decode(None)
    return out
