"""RTP and SDP bits the benchmark players share: header length, VP8 keyframe start, sequence
accounting per SSRC (and the receiver report it makes), payload types by kind."""

from __future__ import annotations

from aiortc.rtp import RtcpReceiverInfo


def rtp_header_length(data: bytes) -> int:
    """Fixed header + CSRCs + extension block of an RTP packet (no checks: for packets known to be RTP)."""
    off = 12 + 4 * (data[0] & 0x0F)
    if data[0] & 0x10:
        off += 4 + 4 * ((data[off + 2] << 8) | data[off + 3])
    return off


def vp8_descriptor_length(payload: bytes) -> int:
    """Bytes of the VP8 payload descriptor (RFC 7741) at the start of an RTP payload."""
    off = 1
    if payload[0] & 0x80:  # X: extension byte follows
        ext = payload[1]
        off = 2
        if ext & 0x80:  # I: picture id, 7 or 15 bits
            off += 2 if payload[off] & 0x80 else 1
        if ext & 0x40:  # L: TL0PICIDX
            off += 1
        if ext & 0x30:  # T or K: TID/Y/KEYIDX
            off += 1
    return off


def vp8_keyframe_start(payload: bytes) -> bool:
    """Whether an RTP payload starts a VP8 keyframe (RFC 7741 payload descriptor + RFC 6386 P bit)."""
    if len(payload) < 2:
        return False
    b0 = payload[0]
    if not b0 & 0x10 or b0 & 0x07:  # S (start of partition) and partition index 0
        return False
    off = vp8_descriptor_length(payload)
    return off < len(payload) and not payload[off] & 0x01


def payload_kinds(sdp: str) -> dict[int, str]:
    """Media payload types of an SDP → ``audio``/``video`` (retransmission formats left out)."""
    kinds: dict[int, str] = {}
    rtx: set[int] = set()
    kind = ""
    for line in sdp.splitlines():
        if line.startswith("m="):
            fields = line[2:].split()
            kind = fields[0]
            kinds.update((int(pt), kind) for pt in fields[3:] if pt.isdigit())
        elif line.startswith("a=rtpmap:") and " rtx/" in line.lower():
            rtx.add(int(line[9:].split()[0]))
    return {pt: k for pt, k in kinds.items() if pt not in rtx}


def rtx_payload_types(sdp: str) -> set[int]:
    """The RTX (RFC 4588) payload types of an SDP."""
    return {
        int(line[9:].split()[0])
        for line in sdp.splitlines()
        if line.startswith("a=rtpmap:") and " rtx/" in line.lower()
    }


class StreamCounts:
    """What a receiver reports about one SSRC: packets received against the extended sequence range.

    ``repaired``: packets that arrived after being NACKed (they also count in ``received``).
    """

    __slots__ = ("_expected_prior", "_received_prior", "first", "highest", "received", "repaired")

    def __init__(self, seq: int) -> None:
        self.first = seq
        self.highest = seq  # extended (with wrap-around cycles)
        self.received = 0
        self.repaired = 0
        self._expected_prior = 0
        self._received_prior = 0

    def add(self, seq: int) -> int:
        """Count ``seq``; returns how far it moved the highest sequence number on (0: not at all)."""
        self.received += 1
        delta = (seq - self.highest) & 0xFFFF
        if 0 < delta < 0x8000:
            self.highest += delta
            return delta
        return 0

    @property
    def expected(self) -> int:
        return self.highest - self.first + 1

    @property
    def lost(self) -> int:
        """Packets lost on first transmission (a repaired one still counts)."""
        return max(0, self.expected - self.received + self.repaired)

    def report(self, ssrc: int, lsr: int, dlsr: int) -> RtcpReceiverInfo:
        """An RR report block for this SSRC, and the interval it covers starts anew (RFC 3550 A.3)."""
        expected, received = self.expected, self.received
        interval_expected = expected - self._expected_prior
        interval_lost = interval_expected - (received - self._received_prior)
        self._expected_prior, self._received_prior = expected, received
        fraction = (interval_lost << 8) // interval_expected if interval_expected > 0 < interval_lost else 0
        return RtcpReceiverInfo(
            ssrc=ssrc,
            fraction_lost=min(fraction, 255),
            packets_lost=max(-0x800000, min(expected - received, 0x7FFFFF)),
            highest_sequence=self.highest & 0xFFFFFFFF,
            jitter=0,
            lsr=lsr,
            dlsr=dlsr,
        )
