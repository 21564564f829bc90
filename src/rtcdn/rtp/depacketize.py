"""RTP → frames: reassembles one track's packets into :class:`~rtcdn.rtp.frame.Frame` s.

One :class:`Depacketizer` per track (per publisher SSRC: make a new one when the SSRC changes),
fed with whole RTP packets (after SRTP, RTX already unwrapped, payload type already checked) in
arrival order; it lives as long as the consumer (RTMP out, HLS, recorder) follows the track.

Codecs: H.264 (RFC 6184, single NAL unit, STAP-A and FU-A: packetization-mode 0 and 1; every
NAL unit is kept except access unit delimiters, type 9; the last seen SPS/PPS are put in front of
an IDR access unit lacking them), VP8 (RFC 7741), VP9 (draft-ietf-payload-vp9: flexible and
non-flexible descriptors; several spatial layer frames of one picture are joined into a VP9
superframe) and the one-packet-one-frame audio codecs.

Ordering: packets wait in a reorder buffer keyed by extended sequence number. A gap is given
up on (a loss) once it is more than ``max_reorder`` packets behind the newest one, or once
``late_frames`` complete frames wait behind it (a caller that NACKs should raise
``late_frames`` so that retransmissions, an RTT late, still fill gaps). The frame it broke is
dropped; for video every frame up to the next keyframe is dropped too and
:attr:`Depacketizer.needs_keyframe` is set (the caller sends a PLI). A jump of more than 3000
sequence numbers ahead or 100 back is taken as a sender restart only when a second consecutive
packet confirms it (RFC 3550 A.1). Padding-only packets hold their
sequence number and are otherwise ignored. Memory is bounded: ``max_reorder`` packets and one
frame of at most :data:`MAX_FRAME_SIZE` bytes. Nothing in hostile input raises out of
:meth:`Depacketizer.push`: malformed packets are counted and skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

from .frame import Frame, RtpClock
from .packet import RtpError, header_length
from .payload import ASSEMBLERS, PARSERS, Assembler, parse_audio

VIDEO_CODECS = frozenset({"h264", "vp8", "vp9"})
AUDIO_CODECS = frozenset({"opus", "pcma", "pcmu", "g722"})
MAX_REORDER = 32
MAX_DROPOUT = 3000
MAX_MISORDER = 100
MAX_FRAME_SIZE = 4 << 20
"Bytes one frame may grow to (each piece also counts :data:`_PART_COST`) before it is dropped."

_PART_COST = 48
_OK, _BAD, _PADDING = 0, 1, 2


@dataclass(slots=True)
class _Packet:
    ts: int
    end: bool
    "Marker bit (video) / always (audio): the frame ends here."
    start: bool
    "The payload itself says a frame starts here."
    arrival: float
    state: int
    flags: int
    data: bytes | list[bytes]
    size: int
    "Memory the payload takes in a frame: bytes plus :data:`_PART_COST` per piece."


class Depacketizer:
    """Turns one track's RTP packets into frames; see the module docstring for the rules."""

    __slots__ = ("_active", "_asm", "_bad_seq", "_buf", "_frame_arrival", "_frame_size", "_frame_ts",
        "_highest", "_last_ts", "_late_frames", "_max_reorder", "_next", "_parse", "_prev", "_waiting_key",
        "clock", "clock_rate", "codec", "duplicates", "frames", "kind", "lost_frames", "malformed",
        "needs_keyframe", "packets", "skipped_frames")  # fmt: skip

    def __init__(
        self,
        codec: str,
        clock_rate: int,
        clock: RtpClock | None = None,
        *,
        max_reorder: int = MAX_REORDER,
        late_frames: int | None = None,
    ) -> None:
        """``late_frames`` defaults to 1 for video and 3 for audio (where every packet is a frame)."""
        codec = codec.lower()
        if codec not in VIDEO_CODECS | AUDIO_CODECS:
            raise ValueError(f"cannot depacketize {codec!r}")
        if max_reorder < 1:
            raise ValueError("max_reorder must be at least 1")
        self.codec = codec
        self.kind = "video" if codec in VIDEO_CODECS else "audio"
        self.clock_rate = clock_rate
        self.clock = clock if clock is not None else RtpClock(clock_rate)
        "The track's clock; feed it the publisher's sender reports."
        self._parse = PARSERS.get(codec, parse_audio)
        self._asm = ASSEMBLERS.get(codec, Assembler)()
        self._max_reorder = max_reorder
        self._late_frames = late_frames if late_frames is not None else (1 if self.kind == "video" else 3)
        self._buf: dict[int, _Packet] = {}
        self._next: int | None = None  # extended sequence number of the next packet to consume
        self._highest = 0
        self._bad_seq: int | None = None
        self._prev: _Packet | None = None  # the previous packet consumed, None after a gap
        self._last_ts: int | None = None
        self._active = False  # a frame is being assembled
        self._frame_ts = 0
        self._frame_arrival = 0.0
        self._frame_size = 0
        self._waiting_key = self.kind == "video"
        self.needs_keyframe = False
        "Video frames are being dropped until the next keyframe: send a PLI."
        self.packets = 0
        self.frames = 0
        self.lost_frames = 0
        "Frames dropped because packets of theirs were lost or broken (audio: one per lost packet)."
        self.skipped_frames = 0
        "Complete video frames dropped while waiting for a keyframe."
        self.malformed = 0
        self.duplicates = 0
        "Packets already seen or too late (behind frames already emitted)."

    @property
    def buffered(self) -> int:
        """Packets waiting in the reorder buffer."""
        return len(self._buf)

    def push(self, packet: bytes, arrival: float) -> list[Frame]:
        """Add one RTP packet (header included) received at ``arrival`` seconds; frames now complete."""
        if type(packet) is not bytes:
            packet = bytes(packet)
        n = len(packet)
        try:
            hlen = header_length(packet)
        except RtpError:
            self.malformed += 1
            return []
        end = n
        if packet[0] & 0x20:
            pad = packet[-1]
            if pad == 0 or hlen + pad > n:
                self.malformed += 1
                return []
            end -= pad
        self.packets += 1
        seq = (packet[2] << 8) | packet[3]
        ts = int.from_bytes(packet[4:8], "big")
        last = bool(packet[1] & 0x80) or self.kind == "audio"
        if end == hlen:
            entry = _Packet(ts, last, False, arrival, _PADDING, 0, b"", 0)
        else:
            try:
                start, flags, data = self._parse(packet[hlen:end])
                cost = end - hlen + _PART_COST * (len(data) if isinstance(data, list) else 1)
                entry = _Packet(ts, last, start, arrival, _OK, flags, data, cost)
            except (ValueError, IndexError):
                self.malformed += 1
                entry = _Packet(ts, last, False, arrival, _BAD, 0, b"", 0)

        out: list[Frame] = []
        if self._next is None:
            self._start(seq, ts, arrival)
        delta = ((seq - self._highest + 0x8000) & 0xFFFF) - 0x8000
        ext = self._highest + delta
        if not -MAX_MISORDER <= delta <= MAX_DROPOUT:
            if seq != self._bad_seq:  # a jump: wait for the next packet to confirm it
                self._bad_seq = (seq + 1) & 0xFFFF
                self.duplicates += 1
                return []
            out = self.flush()  # the sender restarted
            self._broken()  # with the packet before this one, dropped as a jump
            self._start(seq, ts, arrival)
            ext = seq
        elif ext < (self._next or 0) or ext in self._buf:
            self.duplicates += 1
            return []
        self._buf[ext] = entry
        if ext > self._highest:
            self._highest = ext
        self._drain(out, False)
        return out

    def flush(self) -> list[Frame]:
        """End of stream: give up on every gap and emit what is complete; drop a frame left open."""
        out: list[Frame] = []
        if self._next is not None:  # nothing arrived yet: nothing to drain
            self._drain(out, True)
        if self._active:
            self._active = False
            self._broken()
        self._prev = None
        return out

    def _start(self, seq: int, ts: int, arrival: float) -> None:
        self._next = self._highest = seq
        self._buf.clear()
        self._bad_seq = None
        self.clock.pts(ts, arrival)  # the first packet's arrival is the clock's base

    def _drain(self, out: list[Frame], force: bool) -> None:
        buf = self._buf
        nxt = self._next
        assert nxt is not None
        while buf:
            entry = buf.pop(nxt, None)
            if entry is not None:
                nxt += 1
                self._next = nxt
                self._consume(entry, out)
                continue
            if (
                not force
                and self._highest - nxt <= self._max_reorder
                and self._complete_after_gap() < self._late_frames
            ):
                return
            skip = min(buf)
            self._lose(skip - nxt)
            nxt = self._next = skip

    def _complete_after_gap(self) -> int:
        """How many whole frames wait behind the gap at ``_next``."""
        assert self._next is not None
        count = 0
        ok = False
        prev: _Packet | None = None
        buf = self._buf
        for s in range(self._next + 1, self._highest + 1):
            p = buf.get(s)
            if p is None:
                prev = None
                ok = False
                continue
            if p.state == _PADDING:
                continue
            if prev is None:
                ok = p.start
            elif prev.end or prev.ts != p.ts:
                ok = True
            if p.state == _BAD:
                ok = False
            elif ok and p.end:
                count += 1
            prev = p
        return count

    def _consume(self, p: _Packet, out: list[Frame]) -> None:
        if p.state == _PADDING:
            return
        prev = self._prev
        if prev is None:  # after a gap only the payload can tell a frame start
            starts = p.start and p.ts != self._last_ts
        else:
            starts = prev.end or prev.ts != p.ts
        if starts:
            if self._active:  # no marker: the new timestamp ended the frame
                self._finish(out)
            self._active = True
            self._asm.begin()
            self._frame_ts = p.ts
            self._frame_arrival = p.arrival
            self._frame_size = 0
        self._prev = p
        self._last_ts = p.ts
        if not self._active:
            return  # inside a frame whose start was lost
        self._frame_size += p.size
        if p.state == _BAD or not self._asm.add(p.flags, p.data) or self._frame_size > MAX_FRAME_SIZE:
            self._active = False
            self._broken()
        elif p.end:
            self._finish(out)

    def _lose(self, missing: int) -> None:
        """``missing`` sequence numbers will never arrive."""
        prev, self._prev = self._prev, None
        if self.kind == "audio":
            self.lost_frames += missing
            return
        if self._active or prev is None or prev.end:  # else: inside a frame already counted lost
            self.lost_frames += 1
        self._active = False
        self._waiting_key = self.needs_keyframe = True

    def _broken(self) -> None:
        self.lost_frames += 1
        if self.kind == "video":
            self._waiting_key = True
            self.needs_keyframe = True

    def _finish(self, out: list[Frame]) -> None:
        self._active = False
        result = self._asm.finish()
        if result is None:
            self._broken()
            return
        payload, keyframe = result
        if self._waiting_key and not keyframe:
            self.skipped_frames += 1
            self.needs_keyframe = True
            return
        if keyframe:
            self._waiting_key = False
            self.needs_keyframe = False
        self.frames += 1
        ts = self._frame_ts
        pts = self.clock.pts(ts, self._frame_arrival)
        out.append(Frame(self.kind, self.codec, payload, ts, self.clock_rate, keyframe, pts))
