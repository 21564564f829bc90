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
``late_frames`` complete frames wait behind it. The frame it broke is dropped; for video every
frame up to the next keyframe is dropped too and :attr:`Depacketizer.needs_keyframe` is set (the
caller sends a PLI). A jump of more than 3000 sequence numbers is taken as a sender restart only
when a second consecutive packet confirms it (RFC 3550 A.1). Padding-only packets hold their
sequence number and are otherwise ignored. Memory is bounded: ``max_reorder`` packets and one
frame of at most :data:`MAX_FRAME_SIZE` bytes. Nothing in hostile input raises out of
:meth:`Depacketizer.push`: malformed packets are counted and skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

from .frame import Frame, RtpClock
from .packet import RtpError, header_length

VIDEO_CODECS = frozenset({"h264", "vp8", "vp9"})
AUDIO_CODECS = frozenset({"opus", "pcma", "pcmu", "g722"})
MAX_REORDER = 32
MAX_DROPOUT = 3000
MAX_MISORDER = 100
MAX_FRAME_SIZE = 4 << 20
"Bytes one frame may grow to (each piece also counts :data:`_PART_COST`) before it is dropped."

_PART_COST = 48
_OK, _BAD, _PADDING = 0, 1, 2
_FU_START, _FU_END, _FU = 1, 2, 4


class _Malformed(ValueError):
    pass


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


# --- payload parsers: payload → (starts a frame, flags, data); raise on malformed input --------


def _parse_h264(p: bytes) -> tuple[bool, int, bytes | list[bytes]]:
    nal_type = p[0] & 0x1F
    if 1 <= nal_type <= 23:
        return _h264_starts(p), 0, [p]
    if nal_type == 24:  # STAP-A
        nals: list[bytes] = []
        i, n = 1, len(p)
        while i < n:
            if i + 2 > n:
                raise _Malformed("STAP-A size is truncated")
            size = (p[i] << 8) | p[i + 1]
            nal = p[i + 2 : i + 2 + size]
            if size == 0 or len(nal) != size or not 1 <= nal[0] & 0x1F <= 23:
                raise _Malformed("bad STAP-A NAL unit")
            nals.append(nal)
            i += 2 + size
        if not nals:
            raise _Malformed("empty STAP-A")
        return _h264_starts(nals[0]), 0, nals
    if nal_type == 28:  # FU-A
        if len(p) < 3:
            raise _Malformed("FU-A is truncated")
        fu = p[1]
        flags = _FU | (_FU_START if fu & 0x80 else 0) | (_FU_END if fu & 0x40 else 0)
        if fu & 0x80:
            nal = bytes(((p[0] & 0xE0) | (fu & 0x1F),)) + p[2:]
            return _h264_starts(nal), flags, nal
        return False, flags, p[2:]
    raise _Malformed(f"unsupported H.264 NAL unit type {nal_type}")


def _h264_starts(nal: bytes) -> bool:
    """SEI, SPS, PPS and AUD only precede a picture; a slice with first_mb_in_slice 0 starts it."""
    nal_type = nal[0] & 0x1F
    return 6 <= nal_type <= 9 or (nal_type in (1, 5) and len(nal) > 1 and bool(nal[1] & 0x80))


def _parse_vp8(p: bytes) -> tuple[bool, int, bytes | list[bytes]]:
    b0, i = p[0], 1
    if b0 & 0x80:  # X
        ext = p[1]
        i = 2
        if ext & 0x80:  # I: 7- or 15-bit picture id
            i += 2 if p[2] & 0x80 else 1
        if ext & 0x40:  # L: TL0PICIDX
            i += 1
        if ext & 0x30:  # T/K: TID, Y, KEYIDX
            i += 1
    if i >= len(p):
        raise _Malformed("VP8 packet without payload")
    first = bool(b0 & 0x10) and not b0 & 0x07  # S and partition index 0
    return first, int(first), p[i:]


def _parse_vp9(p: bytes) -> tuple[bool, int, bytes | list[bytes]]:
    b0, i, sid = p[0], 1, 0
    if b0 & 0x80:  # I: 7- or 15-bit picture id
        i += 2 if p[1] & 0x80 else 1
    if b0 & 0x20:  # L: layer indices, and TL0PICIDX in non-flexible mode
        sid = (p[i] >> 1) & 0x07
        i += 1 if b0 & 0x10 else 2
    if b0 & 0x10 and b0 & 0x40:  # F and P: up to 3 reference indices
        for _ in range(3):
            i += 1
            if not p[i - 1] & 0x01:
                break
        else:
            raise _Malformed("more than 3 VP9 reference indices")
    if b0 & 0x02:  # V: scalability structure
        ss = p[i]
        i += 1
        if ss & 0x10:  # Y: resolutions
            i += 4 * ((ss >> 5) + 1)
        if ss & 0x08:  # G: picture group description
            groups = p[i]
            i += 1
            for _ in range(groups):
                i += 1 + ((p[i] >> 2) & 0x03)
    if i >= len(p):
        raise _Malformed("VP9 packet without payload")
    return bool(b0 & 0x08) and sid == 0, b0, p[i:]


def _parse_audio(p: bytes) -> tuple[bool, int, bytes | list[bytes]]:
    return True, 0, p


# --- assemblers: begin(); add(flags, data) -> False when broken; finish() -> (payload, key) | None


class _Assembler:
    """Audio: one packet, one frame. The base of the video assemblers (``parts``: the pieces)."""

    __slots__ = ("key", "parts")

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.key = True

    def begin(self) -> None:
        self.parts = []

    def add(self, flags: int, data: bytes | list[bytes]) -> bool:
        if self.parts or not isinstance(data, bytes):
            return False
        self.parts.append(data)
        return True

    def finish(self) -> tuple[tuple[bytes, ...], bool] | None:
        return ((b"".join(self.parts),), self.key) if self.parts else None


class _Vp8(_Assembler):
    __slots__ = ()

    def add(self, flags: int, data: bytes | list[bytes]) -> bool:
        if not isinstance(data, bytes) or bool(flags) == bool(self.parts):  # S=1 PID=0 first only
            return False
        if flags:
            self.key = not data[0] & 0x01  # P bit of the VP8 payload header
        self.parts.append(data)
        return True


class _Vp9(_Assembler):
    """``parts`` are the spatial layer frames of the picture, ``_cur`` the one being received."""

    __slots__ = ("_cur",)

    def __init__(self) -> None:
        super().__init__()
        self._cur: list[bytes] | None = None

    def begin(self) -> None:
        self.parts = []
        self._cur = None

    def add(self, flags: int, data: bytes | list[bytes]) -> bool:
        if not isinstance(data, bytes):
            return False
        if flags & 0x08:  # B: a layer frame starts
            if self._cur is not None:
                return False
            if not self.parts:
                self.key = not flags & 0x40  # P clear on the first packet
            self._cur = [data]
        elif self._cur is None:
            return False
        else:
            self._cur.append(data)
        if flags & 0x04:  # E
            self._close()
        return True

    def _close(self) -> None:
        if self._cur is not None:
            self.parts.append(b"".join(self._cur))
            self._cur = None

    def finish(self) -> tuple[tuple[bytes, ...], bool] | None:
        self._close()  # no E bit: the marker / next timestamp ended it
        layers = self.parts
        if not layers or len(layers) > 8:
            return None
        if len(layers) == 1:
            return (layers[0],), self.key
        # a superframe: the frames, then an index (marker, little-endian sizes, marker)
        mag = max(1, (max(len(f) for f in layers).bit_length() + 7) // 8)
        marker = bytes((0xC0 | (mag - 1) << 3 | (len(layers) - 1),))
        index = marker + b"".join(len(f).to_bytes(mag, "little") for f in layers) + marker
        return (b"".join(layers) + index,), self.key


class _H264(_Assembler):
    """``parts`` are the NAL units; ``_fu`` the one being reassembled from FU-A fragments."""

    __slots__ = ("_fu", "_pps", "_sps")

    def __init__(self) -> None:
        super().__init__()
        self._fu: bytearray | None = None
        self._sps: bytes | None = None
        self._pps: bytes | None = None

    def begin(self) -> None:
        self.parts = []
        self._fu = None

    def add(self, flags: int, data: bytes | list[bytes]) -> bool:
        if isinstance(data, list):
            self.parts += data
            return self._fu is None
        if flags & _FU_START:
            if self._fu is not None:
                return False
            self._fu = bytearray(data)
        elif self._fu is None:
            return False
        else:
            self._fu += data
        if flags & _FU_END:
            self._close()
        return True

    def _close(self) -> None:
        if self._fu is not None:
            self.parts.append(bytes(self._fu))
            self._fu = None

    def finish(self) -> tuple[tuple[bytes, ...], bool] | None:
        self._close()  # no E bit: the marker / next timestamp ended it
        nals = [nal for nal in self.parts if nal[0] & 0x1F != 9]
        if not nals:
            return None
        sps = [nal for nal in nals if nal[0] & 0x1F == 7]
        pps = [nal for nal in nals if nal[0] & 0x1F == 8]
        self._sps = sps[-1] if sps else self._sps
        self._pps = pps[-1] if pps else self._pps
        if not any(nal[0] & 0x1F == 5 for nal in nals):
            return tuple(nals), False
        if self._sps is None or self._pps is None:
            return None  # an IDR without parameter sets is undecodable
        rest = [nal for nal in nals if not 7 <= nal[0] & 0x1F <= 8]
        return (*(sps or [self._sps]), *(pps or [self._pps]), *rest), True


_PARSERS = {"h264": _parse_h264, "vp8": _parse_vp8, "vp9": _parse_vp9}
_ASSEMBLERS: dict[str, type[_Assembler]] = {"h264": _H264, "vp8": _Vp8, "vp9": _Vp9}


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
        self._parse = _PARSERS.get(codec, _parse_audio)
        self._asm = _ASSEMBLERS.get(codec, _Assembler)()
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
