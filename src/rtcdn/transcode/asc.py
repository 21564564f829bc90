"""MPEG-4 AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1): the AAC decoder configuration.

FLV carries it in the AAC sequence header (``AACPacketType`` 0) ahead of the raw AAC frames, MP4 in
its ``esds`` box and SDP (RFC 3640 / RFC 6416) as ``config=``. :func:`parse_asc` reads the fields a
transcoder or muxer needs, :func:`audio_specific_config` writes the short form for AAC-LC. Both are
pure functions on bytes; nothing here keeps state.
"""

from __future__ import annotations

from dataclasses import dataclass

SAMPLE_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)
"``samplingFrequencyIndex`` 0..12; index 15 means an explicit 24-bit rate follows."
AAC_LC = 2
"``audioObjectType`` of AAC-LC, the profile of RTMP publishers and of the AAC we encode."
_SBR, _PS = 5, 29


@dataclass(frozen=True, slots=True)
class AudioSpecificConfig:
    """The leading fields of an AudioSpecificConfig."""

    object_type: int
    "``audioObjectType`` of the core coder (2 = AAC-LC); for explicit HE-AAC (SBR / PS) the core's."
    sample_rate: int
    "The core coder's sampling rate."
    channels: int
    "``channelConfiguration`` 1..6 as channels, 7 as 8 (7.1); 0: given by a program config element."
    extension_sample_rate: int = 0
    "Explicit HE-AAC (SBR / PS): the output rate of the SBR tool; 0 otherwise."


class _Bits:
    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def read(self, count: int) -> int:
        if self._pos + count > len(self._data) * 8:
            raise ValueError("AudioSpecificConfig is truncated")
        value = 0
        for _ in range(count):
            byte = self._data[self._pos >> 3]
            value = (value << 1) | ((byte >> (7 - (self._pos & 7))) & 1)
            self._pos += 1
        return value

    def object_type(self) -> int:
        value = self.read(5)
        return 32 + self.read(6) if value == 31 else value

    def sample_rate(self) -> int:
        index = self.read(4)
        if index == 15:
            return self.read(24)
        if index >= len(SAMPLE_RATES):
            raise ValueError(f"reserved samplingFrequencyIndex {index}")
        return SAMPLE_RATES[index]


def parse_asc(data: bytes) -> AudioSpecificConfig:
    """The object type, rate and channels of an AudioSpecificConfig.

    Raises ValueError when ``data`` is too short, has a reserved sampling frequency index or a
    zero rate or object type. Bits past the fields read (GASpecificConfig, sync extensions such as
    the ``0x2b7`` one FFmpeg's encoder appends) are not checked.
    """
    bits = _Bits(data)
    object_type = bits.object_type()
    sample_rate = bits.sample_rate()
    config = bits.read(4)
    extension_rate = 0
    if object_type in (_SBR, _PS):
        extension_rate = bits.sample_rate()
        object_type = bits.object_type()
    if object_type == 0 or sample_rate == 0:
        raise ValueError("AudioSpecificConfig has no object type or no sampling rate")
    if config > 7:
        raise ValueError(f"reserved channelConfiguration {config}")
    channels = 8 if config == 7 else config
    return AudioSpecificConfig(object_type, sample_rate, channels, extension_rate)


def audio_specific_config(sample_rate: int, channels: int, object_type: int = AAC_LC) -> bytes:
    """An AudioSpecificConfig with an empty GASpecificConfig (1024-sample frames, no extensions).

    Two bytes when ``sample_rate`` has an index, five with an explicit 24-bit rate otherwise.
    ``channels`` 1..6 or 8; ``object_type`` below 31.
    """
    if not 0 < object_type < 31:
        raise ValueError(f"object type {object_type} is out of range")
    if channels == 8:
        config = 7
    elif 1 <= channels <= 6:
        config = channels
    else:
        raise ValueError(f"{channels} channels have no channelConfiguration")
    if not 0 < sample_rate < 1 << 24:
        raise ValueError(f"sample rate {sample_rate} is out of range")
    if sample_rate in SAMPLE_RATES:
        value, width = (object_type << 11) | (SAMPLE_RATES.index(sample_rate) << 7) | (config << 3), 16
    else:
        value, width = (object_type << 35) | (15 << 31) | (sample_rate << 7) | (config << 3), 40
    return value.to_bytes(width // 8, "big")
