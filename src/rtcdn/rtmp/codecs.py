"""Codec configuration records and NAL unit framing carried in FLV tags.

* :class:`AvcConfig` — AVCDecoderConfigurationRecord (the AVC sequence header): SPS/PPS lists,
  NAL unit length size; :func:`split_avcc` / :func:`join_avcc` for length-prefixed NAL units,
  :func:`split_annexb` for start-code separated ones (what encoders and RTP depacketizers give).
* :class:`AudioSpecificConfig` — the AAC sequence header (object type, sampling frequency, channels).
* :class:`OpusHead` — the RFC 7845 ID header, the enhanced-RTMP Opus sequence start.

Malformed input raises :class:`~rtcdn.rtmp.errors.FlvError` (a ``ValueError``). Pure functions.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .errors import FlvError

_AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)


def need(data: bytes, n: int, what: str) -> None:
    """Raise :class:`FlvError` unless ``data`` has at least ``n`` bytes."""
    if len(data) < n:
        raise FlvError(f"{what} is truncated: {len(data)} bytes, needs {n}")


# ------------------------------------------------------------------------------- H.264 framing


@dataclass(frozen=True, slots=True)
class AvcConfig:
    """AVCDecoderConfigurationRecord (ISO/IEC 14496-15 §5.3.3.1); ``extension``: the bytes after the
    PPS list (the high-profile chroma/bit-depth fields), kept as they are."""

    profile: int
    compatibility: int
    level: int
    length_size: int
    sps: tuple[bytes, ...]
    pps: tuple[bytes, ...]
    extension: bytes = b""

    @classmethod
    def from_parameter_sets(
        cls, sps: Sequence[bytes], pps: Sequence[bytes], length_size: int = 4
    ) -> AvcConfig:
        if not sps or len(sps[0]) < 4:
            raise FlvError("an AVC configuration needs an SPS of at least 4 bytes")
        first = sps[0]
        return cls(first[1], first[2], first[3], length_size, tuple(sps), tuple(pps))

    @classmethod
    def parse(cls, data: bytes) -> AvcConfig:
        what = "AVCDecoderConfigurationRecord"
        need(data, 6, what)
        if data[0] != 1:
            raise FlvError(f"{what} version {data[0]} (expected 1)")
        length_size = (data[4] & 0x03) + 1
        if length_size == 3:
            raise FlvError(f"{what}: NAL unit length size 3 is invalid")
        pos = 6
        lists: list[tuple[bytes, ...]] = []
        count = data[5] & 0x1F
        for kind in ("SPS", "PPS"):
            units = []
            for _ in range(count):
                need(data, pos + 2, what)
                n = int.from_bytes(data[pos : pos + 2], "big")
                need(data, pos + 2 + n, f"{what} {kind}")
                units.append(bytes(data[pos + 2 : pos + 2 + n]))
                pos += 2 + n
            lists.append(tuple(units))
            if kind == "SPS":
                need(data, pos + 1, what)
                count = data[pos]
                pos += 1
        return cls(data[1], data[2], data[3], length_size, lists[0], lists[1], bytes(data[pos:]))

    def build(self) -> bytes:
        if len(self.sps) > 31 or len(self.pps) > 255:
            raise ValueError("too many SPS/PPS for an AVCDecoderConfigurationRecord")
        parts = [
            bytes(
                (
                    1,
                    self.profile,
                    self.compatibility,
                    self.level,
                    0xFC | (self.length_size - 1),
                    0xE0 | len(self.sps),
                )
            )
        ]
        parts += [len(u).to_bytes(2, "big") + u for u in self.sps]
        parts.append(bytes((len(self.pps),)))
        parts += [len(u).to_bytes(2, "big") + u for u in self.pps]
        return b"".join(parts) + self.extension


def split_avcc(data: bytes, length_size: int = 4) -> list[bytes]:
    """Length-prefixed (AVCC) NAL units → the units."""
    out, pos = [], 0
    while pos < len(data):
        if pos + length_size > len(data):
            raise FlvError(f"AVCC data: a {length_size}-byte length prefix is cut at offset {pos}")
        n = int.from_bytes(data[pos : pos + length_size], "big")
        pos += length_size
        if pos + n > len(data):
            raise FlvError(f"AVCC data: a NAL unit of {n} bytes overruns the data at offset {pos}")
        out.append(bytes(data[pos : pos + n]))
        pos += n
    return out


def join_avcc(nalus: Iterable[bytes], length_size: int = 4) -> bytes:
    """NAL units → length-prefixed (AVCC) data."""
    return b"".join(len(u).to_bytes(length_size, "big") + u for u in nalus)


def split_annexb(data: bytes) -> list[bytes]:
    """Annex-B (start-code separated) data → the NAL units, without start codes or trailing zeros."""
    out: list[bytes] = []
    pos = data.find(b"\x00\x00\x01")
    while pos >= 0:
        start = pos + 3
        nxt = data.find(b"\x00\x00\x01", start)
        unit = (data[start:] if nxt < 0 else data[start:nxt]).rstrip(b"\x00")
        if unit:
            out.append(bytes(unit))
        pos = nxt
    return out


# ------------------------------------------------------------------------------- audio configs


@dataclass(frozen=True, slots=True)
class AudioSpecificConfig:
    """The start of an MPEG-4 AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1): object type (2 = AAC-LC),
    sampling frequency, channels (None when a program config element defines them)."""

    object_type: int
    sample_rate: int
    channels: int | None

    @classmethod
    def parse(cls, data: bytes) -> AudioSpecificConfig:
        need(data, 2, "AudioSpecificConfig")
        bits = int.from_bytes(data[:8], "big")
        avail = min(len(data), 8) * 8

        def take(n: int) -> int:
            nonlocal avail
            if avail < n:
                raise FlvError("AudioSpecificConfig is truncated")
            avail -= n
            return (bits >> avail) & ((1 << n) - 1)

        object_type = take(5)
        if object_type == 31:
            object_type = 32 + take(6)
        index = take(4)
        if index == 15:
            rate = take(24)
        elif index < len(_AAC_RATES):
            rate = _AAC_RATES[index]
        else:
            raise FlvError(f"AudioSpecificConfig: reserved sampling frequency index {index}")
        config = take(4)
        if config > 7:
            raise FlvError(f"AudioSpecificConfig: reserved channel configuration {config}")
        return cls(object_type, rate, None if config == 0 else 8 if config == 7 else config)

    def build(self) -> bytes:
        """The config with a plain GASpecificConfig (1024-sample frames, no extensions)."""
        bits, n = 0, 0

        def put(value: int, width: int) -> None:
            nonlocal bits, n
            bits, n = (bits << width) | value, n + width

        if self.object_type >= 31:
            put(31, 5)
            put(self.object_type - 32, 6)
        else:
            put(self.object_type, 5)
        if self.sample_rate in _AAC_RATES:
            put(_AAC_RATES.index(self.sample_rate), 4)
        else:
            put(15, 4)
            put(self.sample_rate, 24)
        put({None: 0, 8: 7}.get(self.channels, self.channels or 0), 4)
        put(0, 3)  # frameLengthFlag, dependsOnCoreCoder, extensionFlag
        put(0, -n % 8)
        return bits.to_bytes(n // 8, "big")


@dataclass(frozen=True, slots=True)
class OpusHead:
    """The Opus ID header (RFC 7845 §5.1); ``mapping``: the channel mapping table (family ≠ 0)."""

    channels: int
    pre_skip: int = 312
    input_sample_rate: int = 48000
    output_gain: int = 0
    mapping_family: int = 0
    mapping: bytes = b""

    @classmethod
    def parse(cls, data: bytes) -> OpusHead:
        need(data, 19, "OpusHead")
        if data[:8] != b"OpusHead":
            raise FlvError("Opus sequence header does not start with 'OpusHead'")
        if data[8] >> 4:
            raise FlvError(f"OpusHead version {data[8]} is not supported")
        channels, pre_skip, rate, gain, family = struct.unpack_from("<BHIhB", data, 9)
        if channels == 0:
            raise FlvError("OpusHead has 0 channels")
        mapping = b""
        if family != 0:
            need(data, 21 + channels, "OpusHead channel mapping")
            mapping = bytes(data[19 : 21 + channels])
        return cls(channels, pre_skip, rate, gain, family, mapping)

    def build(self) -> bytes:
        return (
            b"OpusHead"
            + struct.pack(
                "<BBHIhB",
                1,
                self.channels,
                self.pre_skip,
                self.input_sample_rate,
                self.output_gain,
                self.mapping_family,
            )
            + self.mapping
        )
