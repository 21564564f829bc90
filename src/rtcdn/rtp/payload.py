"""RTP payload formats, one codec at a time: parse a packet's payload (strip the payload
descriptor, split aggregates and fragments) and assemble a frame from the pieces. Used by
:class:`~rtcdn.rtp.depacketize.Depacketizer`, which does ordering, loss and timing."""

from __future__ import annotations

FU_START, FU_END, FU = 1, 2, 4
"Parser flags: a fragment starts / ends a NAL unit (H.264 FU-A) or a frame (VP9 B/E bits)."

# --- parsers: payload → (starts a frame, flags, data); they raise on malformed input --------------


def parse_h264(p: bytes) -> tuple[bool, int, bytes | list[bytes]]:
    nal_type = p[0] & 0x1F
    if 1 <= nal_type <= 23:
        return _h264_starts(p), 0, [p]
    if nal_type == 24:  # STAP-A
        nals: list[bytes] = []
        i, n = 1, len(p)
        while i < n:
            if i + 2 > n:
                raise ValueError("STAP-A size is truncated")
            size = (p[i] << 8) | p[i + 1]
            nal = p[i + 2 : i + 2 + size]
            if size == 0 or len(nal) != size or not 1 <= nal[0] & 0x1F <= 23:
                raise ValueError("bad STAP-A NAL unit")
            nals.append(nal)
            i += 2 + size
        if not nals:
            raise ValueError("empty STAP-A")
        return _h264_starts(nals[0]), 0, nals
    if nal_type == 28:  # FU-A
        if len(p) < 3:
            raise ValueError("FU-A is truncated")
        fu = p[1]
        flags = FU | (FU_START if fu & 0x80 else 0) | (FU_END if fu & 0x40 else 0)
        if fu & 0x80:
            nal = bytes(((p[0] & 0xE0) | (fu & 0x1F),)) + p[2:]
            return _h264_starts(nal), flags, nal
        return False, flags, p[2:]
    raise ValueError(f"unsupported H.264 NAL unit type {nal_type}")


def _h264_starts(nal: bytes) -> bool:
    """SEI, SPS, PPS and AUD only precede a picture; a slice with first_mb_in_slice 0 starts it."""
    nal_type = nal[0] & 0x1F
    return 6 <= nal_type <= 9 or (nal_type in (1, 5) and len(nal) > 1 and bool(nal[1] & 0x80))


def parse_vp8(p: bytes) -> tuple[bool, int, bytes | list[bytes]]:
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
        raise ValueError("VP8 packet without payload")
    first = bool(b0 & 0x10) and not b0 & 0x07  # S and partition index 0
    return first, int(first), p[i:]


def parse_vp9(p: bytes) -> tuple[bool, int, bytes | list[bytes]]:
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
            raise ValueError("more than 3 VP9 reference indices")
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
        raise ValueError("VP9 packet without payload")
    return bool(b0 & 0x08) and sid == 0, b0, p[i:]


def parse_audio(p: bytes) -> tuple[bool, int, bytes | list[bytes]]:
    return True, 0, p


# --- assemblers: begin(); add(flags, data) -> False when broken; finish() -> (payload, key) | None


class Assembler:
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


class Vp8Assembler(Assembler):
    __slots__ = ()

    def add(self, flags: int, data: bytes | list[bytes]) -> bool:
        if not isinstance(data, bytes) or bool(flags) == bool(self.parts):  # S=1 PID=0 first only
            return False
        if flags:
            self.key = not data[0] & 0x01  # P bit of the VP8 payload header
        self.parts.append(data)
        return True


class Vp9Assembler(Assembler):
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


class H264Assembler(Assembler):
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
        if flags & FU_START:
            if self._fu is not None:
                return False
            self._fu = bytearray(data)
        elif self._fu is None:
            return False
        else:
            self._fu += data
        if flags & FU_END:
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


PARSERS = {"h264": parse_h264, "vp8": parse_vp8, "vp9": parse_vp9}
ASSEMBLERS: dict[str, type[Assembler]] = {"h264": H264Assembler, "vp8": Vp8Assembler, "vp9": Vp9Assembler}
