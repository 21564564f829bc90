"""FLV tag bodies as RTMP audio (type 8) and video (type 9) message payloads, both directions.

* Legacy video (FLV 10.1): ``FrameType:4 CodecID:4``; AVC (CodecID 7) adds ``AVCPacketType``
  (0 sequence header = AVCDecoderConfigurationRecord, 1 NALUs, 2 end of sequence) and a signed
  24-bit composition time offset. Legacy audio: ``SoundFormat:4 Rate:2 Size:1 Type:1``; AAC
  (SoundFormat 10) adds ``AACPacketType`` (0 AudioSpecificConfig, 1 raw frame).
* Enhanced RTMP v2 (veovera/enhanced-rtmp): ``IsExHeader:1 FrameType:3 PacketType:4`` then a
  FourCC (``avc1 hvc1 vp08 vp09 av01``; SequenceStart / CodedFrames (+ SI24 composition time for
  avc1/hvc1) / CodedFramesX / SequenceEnd / Metadata; ModEx prefixes are skipped). Audio
  ``SoundFormat=9 AudioPacketType:4`` then a FourCC (``Opus``: SequenceStart is the RFC 7845
  OpusHead; ``mp4a``: the AudioSpecificConfig).

Parsing gives small frozen dataclasses (:class:`VideoTag`, :class:`AudioTag`); a codec we do not
know parses as ``codec="unknown:<id or fourcc>"`` so the caller can refuse it by name; a truncated
or inconsistent body raises :class:`FlvError` (a ``ValueError``). Also: the codec configuration
records are in :mod:`rtcdn.rtmp.codecs`; here also ``onMetaData`` / ``@setDataFrame`` data messages.
Pure functions, no state.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum

from . import amf0
from .codecs import AudioSpecificConfig, OpusHead, need
from .errors import FlvError

VIDEO_FOURCCS = frozenset({"avc1", "hvc1", "vp08", "vp09", "av01"})
AUDIO_FOURCCS = frozenset({"Opus", "mp4a", ".mp3", "fLaC", "ac-3", "ec-3"})
_LEGACY_AUDIO = {2: ".mp3", 7: "pcma", 8: "pcmu", 10: "mp4a", 11: "speex", 14: ".mp3"}
_LEGACY_RATES = (5512, 11025, 22050, 44100)
AVC_CODEC_ID, AAC_SOUND_FORMAT, EX_SOUND_FORMAT = 7, 10, 9


class FrameType(IntEnum):
    KEY = 1
    INTER = 2
    DISPOSABLE_INTER = 3
    GENERATED_KEY = 4
    COMMAND = 5


class PacketType(IntEnum):
    """Video packet types (legacy AVCPacketType 0/1/2 share the first three values)."""

    SEQUENCE_START = 0
    CODED_FRAMES = 1
    SEQUENCE_END = 2
    CODED_FRAMES_X = 3
    METADATA = 4
    MPEG2TS_SEQUENCE_START = 5
    MULTITRACK = 6
    MODEX = 7


class AudioPacketType(IntEnum):
    SEQUENCE_START = 0
    CODED_FRAMES = 1
    SEQUENCE_END = 2
    MULTICHANNEL_CONFIG = 4
    MULTITRACK = 5
    MODEX = 7


@dataclass(frozen=True, slots=True)
class VideoTag:
    """A video tag body. ``data``: the configuration record (SequenceStart), the AVCC NAL units /
    coded frame (CodedFrames), AMF (Metadata), or the command byte of a command frame (frame type 5,
    whose ``codec`` is ``""``: ignore those)."""

    codec: str
    frame_type: int
    packet_type: int
    composition_time: int = 0
    data: bytes = b""
    enhanced: bool = False

    @property
    def keyframe(self) -> bool:
        return self.frame_type in (FrameType.KEY, FrameType.GENERATED_KEY)

    @property
    def sequence_header(self) -> bool:
        return self.packet_type == PacketType.SEQUENCE_START


@dataclass(frozen=True, slots=True)
class AudioTag:
    """An audio tag body; ``sample_rate``/``channels`` come from the sequence header (AAC, Opus) or
    the legacy header (G.711, MP3...), and are None where the tag does not say."""

    codec: str
    packet_type: int
    data: bytes = b""
    sample_rate: int | None = None
    channels: int | None = None
    enhanced: bool = False

    @property
    def sequence_header(self) -> bool:
        return self.packet_type == AudioPacketType.SEQUENCE_START


def _si24(b: bytes, off: int) -> int:
    value = int.from_bytes(b[off : off + 3], "big")
    return value - (1 << 24) if value & 0x800000 else value


def _skip_modex(body: bytes, pos: int, packet_type: int, modex: int, what: str) -> tuple[int, int]:
    """Skip ModEx prefixes: (position after them, the real packet type)."""
    while packet_type == modex:
        need(body, pos + 1, what)
        size = body[pos] + 1
        pos += 1
        if size == 256:
            need(body, pos + 2, what)
            size = int.from_bytes(body[pos : pos + 2], "big") + 1
            pos += 2
        need(body, pos + size + 1, what)
        pos += size
        packet_type = body[pos] & 0x0F
        pos += 1
    return pos, packet_type


def _fourcc(body: bytes, pos: int, known: frozenset[str], what: str) -> str:
    need(body, pos + 4, what)
    raw = body[pos : pos + 4]
    name = raw.decode("latin-1")
    return name if name in known else f"unknown:{raw.hex() if not name.isprintable() else name}"


def parse_video(body: bytes) -> VideoTag:
    """A video message payload → :class:`VideoTag` (legacy or enhanced)."""
    need(body, 1, "video tag")
    b0 = body[0]
    if not b0 & 0x80:  # legacy
        frame_type, codec_id = b0 >> 4, b0 & 0x0F
        if frame_type == FrameType.COMMAND:
            return VideoTag("", frame_type, PacketType.CODED_FRAMES, 0, bytes(body[1:2]))
        if codec_id != AVC_CODEC_ID:
            return VideoTag(f"unknown:{codec_id}", frame_type, PacketType.CODED_FRAMES, 0, bytes(body[1:]))
        need(body, 5, "AVC video tag")
        if body[1] > PacketType.SEQUENCE_END:
            raise FlvError(f"unknown AVCPacketType {body[1]}")
        return VideoTag("avc1", frame_type, body[1], _si24(body, 2), bytes(body[5:]))
    what = "enhanced video tag"
    frame_type = (b0 >> 4) & 0x07
    pos, packet_type = _skip_modex(body, 1, b0 & 0x0F, PacketType.MODEX, what)
    if frame_type == FrameType.COMMAND and packet_type != PacketType.METADATA:
        need(body, pos + 1, what)
        return VideoTag("", frame_type, packet_type, 0, bytes(body[pos : pos + 1]), True)
    if packet_type == PacketType.MULTITRACK:
        need(body, pos + 1, what)
        many_codecs = body[pos] >> 4 == 2
        pos += 1
        codec = "unknown:multitrack" if many_codecs else _fourcc(body, pos, VIDEO_FOURCCS, what)
        return VideoTag(codec, frame_type, packet_type, 0, bytes(body[pos:]), True)
    codec = _fourcc(body, pos, VIDEO_FOURCCS, what)
    pos += 4
    cts = 0
    if packet_type == PacketType.CODED_FRAMES and codec in ("avc1", "hvc1"):
        need(body, pos + 3, what)
        cts = _si24(body, pos)
        pos += 3
    return VideoTag(codec, frame_type, packet_type, cts, bytes(body[pos:]), True)


def build_video(tag: VideoTag) -> bytes:
    """The payload of ``tag``: legacy for ``avc1`` unless ``tag.enhanced``, enhanced otherwise."""
    if tag.codec == "avc1" and not tag.enhanced:
        if tag.packet_type > PacketType.SEQUENCE_END:
            raise ValueError(f"legacy AVC has no packet type {tag.packet_type}")
        head = struct.pack("!BB", (tag.frame_type << 4) | AVC_CODEC_ID, tag.packet_type)
        return head + (tag.composition_time & 0xFFFFFF).to_bytes(3, "big") + tag.data
    if tag.codec not in VIDEO_FOURCCS:
        raise ValueError(f"cannot build a video tag for codec {tag.codec!r}")
    head = bytes((0x80 | (tag.frame_type & 0x07) << 4 | tag.packet_type,)) + tag.codec.encode()
    if tag.packet_type == PacketType.CODED_FRAMES and tag.codec in ("avc1", "hvc1"):
        head += (tag.composition_time & 0xFFFFFF).to_bytes(3, "big")
    return head + tag.data


def parse_audio(body: bytes) -> AudioTag:
    """An audio message payload → :class:`AudioTag` (legacy or enhanced)."""
    need(body, 1, "audio tag")
    b0 = body[0]
    sound_format = b0 >> 4
    if sound_format == EX_SOUND_FORMAT:
        what = "enhanced audio tag"
        pos, packet_type = _skip_modex(body, 1, b0 & 0x0F, AudioPacketType.MODEX, what)
        if packet_type == AudioPacketType.MULTITRACK:
            need(body, pos + 1, what)
            many_codecs = body[pos] >> 4 == 2
            pos += 1
            codec = "unknown:multitrack" if many_codecs else _fourcc(body, pos, AUDIO_FOURCCS, what)
            return AudioTag(codec, packet_type, bytes(body[pos:]), enhanced=True)
        codec = _fourcc(body, pos, AUDIO_FOURCCS, what)
        data = bytes(body[pos + 4 :])
        rate = channels = None
        if packet_type == AudioPacketType.SEQUENCE_START and codec == "Opus" and data:
            head = OpusHead.parse(data)
            rate, channels = 48000, head.channels
        elif packet_type == AudioPacketType.SEQUENCE_START and codec == "mp4a":
            asc = AudioSpecificConfig.parse(data)
            rate, channels = asc.sample_rate, asc.channels
        return AudioTag(codec, packet_type, data, rate, channels, True)
    if sound_format == AAC_SOUND_FORMAT:
        need(body, 2, "AAC audio tag")
        if body[1] > AudioPacketType.CODED_FRAMES:
            raise FlvError(f"unknown AACPacketType {body[1]}")
        data = bytes(body[2:])
        if body[1] == AudioPacketType.SEQUENCE_START:
            asc = AudioSpecificConfig.parse(data)
            return AudioTag("mp4a", body[1], data, asc.sample_rate, asc.channels)
        return AudioTag("mp4a", body[1], data)
    codec = _LEGACY_AUDIO.get(sound_format, f"unknown:{sound_format}")
    rate = {7: 8000, 8: 8000, 11: 16000, 14: 8000}.get(sound_format, _LEGACY_RATES[(b0 >> 2) & 3])
    return AudioTag(codec, AudioPacketType.CODED_FRAMES, bytes(body[1:]), rate, 1 + (b0 & 1))


def build_audio(tag: AudioTag) -> bytes:
    """The payload of ``tag``: legacy AAC (0xAF header) unless ``tag.enhanced``; Opus is always
    enhanced; G.711 (``pcma``/``pcmu``) legacy."""
    if tag.codec == "mp4a" and not tag.enhanced:
        return bytes((0xAF, tag.packet_type)) + tag.data
    if tag.codec in ("pcma", "pcmu"):
        return bytes(((7 if tag.codec == "pcma" else 8) << 4 | 0x02 | (tag.channels == 2),)) + tag.data
    if tag.codec not in AUDIO_FOURCCS:
        raise ValueError(f"cannot build an audio tag for codec {tag.codec!r}")
    return bytes((EX_SOUND_FORMAT << 4 | tag.packet_type,)) + tag.codec.encode() + tag.data


def classify_video(body: bytes) -> tuple[bool, bool]:
    """``(keyframe, config)`` of a video payload without parsing it all: ``config`` for sequence
    start/end and metadata packets (a sender must never drop those)."""
    if not body:
        return False, False
    b0 = body[0]
    if b0 & 0x80:
        frame_type, packet_type = (b0 >> 4) & 0x07, b0 & 0x0F
        config = packet_type in (PacketType.SEQUENCE_START, PacketType.SEQUENCE_END, PacketType.METADATA)
    else:
        frame_type = b0 >> 4
        config = (b0 & 0x0F) == AVC_CODEC_ID and len(body) > 1 and body[1] != PacketType.CODED_FRAMES
    return frame_type in (FrameType.KEY, FrameType.GENERATED_KEY), config or frame_type == FrameType.COMMAND


def audio_is_config(body: bytes) -> bool:
    """Is this audio payload a sequence header (AAC AudioSpecificConfig, enhanced SequenceStart)?"""
    if len(body) < 2:
        return False
    if body[0] >> 4 == EX_SOUND_FORMAT:
        return (body[0] & 0x0F) in (AudioPacketType.SEQUENCE_START, AudioPacketType.SEQUENCE_END)
    return body[0] >> 4 == AAC_SOUND_FORMAT and body[1] == AudioPacketType.SEQUENCE_START


# ------------------------------------------------------------------------------- data messages


def parse_data(payload: bytes) -> tuple[str, list[object]]:
    """A data message (type 18) → ``(handler name, arguments)``; ``@setDataFrame`` is unwrapped, so
    ``@setDataFrame onMetaData {..}`` gives ``("onMetaData", [{..}])``. Raises ``AmfError``/``FlvError``."""
    values = amf0.decode(payload)
    if not values or not isinstance(values[0], str):
        raise FlvError("data message does not start with a handler name")
    name, args = values[0], values[1:]
    if name == "@setDataFrame" and args and isinstance(args[0], str):
        name, args = args[0], args[1:]
    return name, args


def parse_metadata(payload: bytes) -> dict[str, object] | None:
    """The ``onMetaData`` properties of a data message, or None if it is some other data message."""
    name, args = parse_data(payload)
    if name != "onMetaData" or not args or not isinstance(args[0], dict):
        return None
    return dict(args[0])


def build_metadata(meta: Mapping[str, object], *, set_data_frame: bool = False) -> bytes:
    """``onMetaData`` + ECMA array (what a server sends a player); with ``set_data_frame`` prefixed
    by ``@setDataFrame`` (what a publisher sends a server)."""
    head = ("@setDataFrame",) if set_data_frame else ()
    return amf0.encode(*head, "onMetaData", amf0.EcmaArray(meta))
