"""Frames: whole access units for frame-based protocols, and the RTP → seconds clock.

A :class:`Frame` is what :class:`~rtcdn.rtp.depacketize.Depacketizer` emits and what
:class:`~rtcdn.rtp.packetize.Packetizer` consumes: one video access unit or one audio frame,
with its RTP timestamp and a presentation time in seconds. Frames are immutable values; nothing
here keeps a reference to them. :func:`annexb`, :func:`avcc`, :func:`split_annexb` and
:func:`split_avcc` convert H.264 frames from and to the byte stream forms of RTMP, HLS and MP4.

:class:`RtpClock` lives as long as a publisher's track: it unwraps the 32-bit RTP timestamps
and, once the publisher's RTCP sender reports arrive, maps them onto the publisher's NTP clock
so that the audio and video tracks of one publisher line up.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

START_CODE = b"\x00\x00\x00\x01"
NTP_UNIX_OFFSET = 2_208_988_800
"Seconds from 1900-01-01 (NTP era 0) to 1970-01-01."

_LENGTH = struct.Struct("!I")


@dataclass(frozen=True, slots=True)
class Frame:
    """One access unit (video) or one encoded frame (audio)."""

    kind: str
    "``audio`` or ``video``."
    codec: str
    "Lower case: ``h264``, ``vp8``, ``vp9``, ``opus``, ``pcma``, ``pcmu``, ``g722``."
    payload: tuple[bytes, ...]
    """H.264: the access unit's NAL units without start codes, in order (on a keyframe SPS and
    PPS first). Every other codec: exactly one element, the frame."""
    rtp_time: int
    "RTP timestamp (32-bit, publisher's clock) of the frame."
    clock_rate: int
    keyframe: bool
    "Video: IDR / VP8 key frame / VP9 non-inter frame. Audio: always True."
    pts: float
    "Presentation time in seconds (see :class:`RtpClock`)."

    @property
    def size(self) -> int:
        """Payload bytes (without start codes or length prefixes)."""
        return sum(len(part) for part in self.payload)


def annexb(frame: Frame) -> bytes:
    """An H.264 frame as an Annex B byte stream (4-byte start codes)."""
    return b"".join(START_CODE + nal for nal in frame.payload)


def avcc(frame: Frame) -> bytes:
    """An H.264 frame in AVCC / ISO BMFF form (4-byte big-endian NAL unit lengths)."""
    return b"".join(_LENGTH.pack(len(nal)) + nal for nal in frame.payload)


def split_annexb(data: bytes) -> list[bytes]:
    """The NAL units of an Annex B byte stream (3- or 4-byte start codes), without start codes.

    Bytes before the first start code and zero bytes trailing a NAL unit (``trailing_zero_8bits``,
    or the leading zero of the next 4-byte start code) are dropped, as are empty NAL units.
    """
    out: list[bytes] = []
    i = data.find(b"\x00\x00\x01")
    while i >= 0:
        start = i + 3
        i = data.find(b"\x00\x00\x01", start)
        end = len(data) if i < 0 else i
        while end > start and data[end - 1] == 0:
            end -= 1
        if end > start:
            out.append(data[start:end])
    return out


def split_avcc(data: bytes, length_size: int = 4) -> list[bytes]:
    """The NAL units of AVCC data (``length_size``-byte big-endian lengths, as in RTMP / FLV).

    Raises ValueError when a length runs past the end of ``data``; empty NAL units are dropped.
    """
    out: list[bytes] = []
    i, n = 0, len(data)
    while i < n:
        if i + length_size > n:
            raise ValueError("AVCC length is truncated")
        size = int.from_bytes(data[i : i + length_size], "big")
        i += length_size
        if i + size > n:
            raise ValueError("AVCC NAL unit is truncated")
        if size:
            out.append(data[i : i + size])
        i += size
    return out


class RtpClock:
    """Maps one track's RTP timestamps to presentation seconds.

    Before the first sender report the time base is the arrival time of the first packet seen
    (``pts = first_arrival + (ext_rtp - first_ext_rtp) / clock_rate``). After a sender report
    ``pts = sr_ntp + (ext_rtp - sr_ext_rtp) / clock_rate``, with ``ext_rtp`` the timestamp
    unwrapped past 32-bit wraps; every track of one publisher then shares the publisher's NTP
    clock. The switch to SR time (and each later SR, which corrects drift) may make pts jump by
    the difference between the two clocks.
    """

    __slots__ = ("_base_arrival", "_base_ext", "_last", "_sr_ext", "_sr_ntp", "clock_rate")

    def __init__(self, clock_rate: int) -> None:
        if clock_rate <= 0:
            raise ValueError("clock rate must be positive")
        self.clock_rate = clock_rate
        self._last: int | None = None  # highest extended timestamp seen
        self._base_ext = 0
        self._base_arrival: float | None = None
        self._sr_ext = 0
        self._sr_ntp: float | None = None

    def unwrap(self, rtp_time: int) -> int:
        """The extended (64-bit, wrap-free) value of a 32-bit timestamp.

        A timestamp up to 2**31 behind the newest one seen is taken as older (reordering, or
        B-frames), anything else as newer.
        """
        rtp_time &= 0xFFFFFFFF
        last = self._last
        if last is None:
            self._last = rtp_time
            return rtp_time
        delta = (rtp_time - last) & 0xFFFFFFFF
        if delta >= 0x80000000:
            return last + delta - 0x100000000
        ext = last + delta
        self._last = ext
        return ext

    def on_sender_report(self, ntp_seconds: float, rtp_time: int) -> None:
        """Feed the publisher's RTCP SR for this track (NTP as unix-epoch seconds)."""
        self._sr_ext = self.unwrap(rtp_time)
        self._sr_ntp = ntp_seconds

    @property
    def synchronized(self) -> bool:
        """Whether a sender report has been seen (pts are on the publisher's NTP clock)."""
        return self._sr_ntp is not None

    def pts(self, rtp_time: int, arrival: float) -> float:
        """Presentation time of ``rtp_time``; ``arrival`` (seconds) is used only as the first base."""
        ext = self.unwrap(rtp_time)
        if self._sr_ntp is not None:
            return self._sr_ntp + (ext - self._sr_ext) / self.clock_rate
        if self._base_arrival is None:
            self._base_arrival = arrival
            self._base_ext = ext
        return self._base_arrival + (ext - self._base_ext) / self.clock_rate

    @staticmethod
    def ntp_to_unix(ntp: int) -> float:
        """A 64-bit NTP timestamp (RFC 3550: 32.32 fixed point, seconds since 1900) in unix seconds.

        Seconds with the top bit clear are taken as NTP era 1 (from 2036-02-07, RFC 4330 §3).
        """
        seconds = (ntp >> 32) & 0xFFFFFFFF
        if not seconds & 0x80000000:
            seconds += 0x100000000
        return seconds - NTP_UNIX_OFFSET + (ntp & 0xFFFFFFFF) / 0x100000000
