"""A player's RTCP, read where the datagram arrives: no queue, no task wake-up, no aiortc parsing.

A viewer sends receiver reports and REMB several times a second (Chromium: ~4.5 compound packets a
second per video track) and, now and then, NACKs and PLIs. aiortc would queue each datagram, wake
its DTLS reader, unprotect, parse every packet into objects, build statistics with datetimes and
format debug strings (~90 µs per datagram). A passthrough player needs only the feedback: this
input unprotects SRTCP in place of aiortc and hands NACKs and PLI/FIR to the sender they name;
everything else (RR, SR, SDES, BYE, REMB, transport-cc, XR) is dropped as read.

Installed by the player once connected (:func:`install`): the ICE connection's receive hook
(:func:`rtcdn.webrtc._aiortc.bound_receive_queue`) offers it every RTCP datagram first.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Mapping
from typing import Any

import pylibsrtp

logger = logging.getLogger(__name__)

RTPFB, PSFB = 205, 206
NACK_FMT, PLI_FMT, FIR_FMT = 1, 1, 4


class Feedback:
    """What one sender of the player does with feedback naming its SSRC."""

    __slots__ = ("on_keyframe_request", "on_nack")

    def __init__(self, on_nack: Callable[[list[int]], None], on_keyframe_request: Callable[[], None]) -> None:
        self.on_nack = on_nack
        self.on_keyframe_request = on_keyframe_request


class RtcpInput:
    """Counts what it read; ``read(datagram)`` returns True when the datagram was RTCP it consumed."""

    def __init__(self, session: pylibsrtp.Session, senders: Mapping[int, Feedback]) -> None:
        self._session = session
        self._senders = dict(senders)
        self.packets = 0
        self.failures = 0
        "Datagrams SRTCP refused (replayed, forged) or too broken to parse: dropped."

    def read(self, data: bytes) -> bool:
        try:
            plain = self._session.unprotect_rtcp(data)
        except pylibsrtp.Error:
            self.failures += 1
            return True
        self.packets += 1
        try:
            self._dispatch(plain)
        except (struct.error, IndexError):
            self.failures += 1
        except Exception:  # a callback's failure never reaches the socket's protocol
            logger.exception("player RTCP feedback failed")
        return True

    def _dispatch(self, data: bytes) -> None:
        i, end = 0, len(data)
        while i + 4 <= end:
            first, pt, words = data[i], data[i + 1], struct.unpack_from("!H", data, i + 2)[0]
            size = 4 * (words + 1)
            if first >> 6 != 2 or i + size > end:
                return  # not RTCP version 2, or cut short: the rest cannot be trusted
            fmt = first & 0x1F
            if pt == RTPFB and fmt == NACK_FMT and size >= 16:
                sender = self._senders.get(struct.unpack_from("!I", data, i + 8)[0])
                if sender is not None:
                    sender.on_nack(_nacked(data, i + 12, i + size))
            elif pt == PSFB and fmt == PLI_FMT and size >= 12:
                sender = self._senders.get(struct.unpack_from("!I", data, i + 8)[0])
                if sender is not None:
                    sender.on_keyframe_request()
            elif pt == PSFB and fmt == FIR_FMT and size >= 20:
                for j in range(i + 12, i + size - 7, 8):  # FCI: SSRC, seq nr, reserved
                    sender = self._senders.get(struct.unpack_from("!I", data, j)[0])
                    if sender is not None:
                        sender.on_keyframe_request()
            i += size


def _nacked(data: bytes, start: int, end: int) -> list[int]:
    """RFC 4585 generic NACK FCIs: PID and the bitmask of the 16 following lost packets."""
    out: list[int] = []
    for j in range(start, end - 3, 4):
        pid, blp = struct.unpack_from("!HH", data, j)
        out.append(pid)
        for bit in range(16):
            if blp & (1 << bit):
                out.append((pid + bit + 1) & 0xFFFF)
    return out


def is_rtcp(data: bytes) -> bool:
    """An SRTP-range first byte and an RTCP packet type (RFC 5761: 192-223)."""
    return len(data) >= 8 and 127 < data[0] < 192 and 191 < data[1] < 224


def install(dtls: Any, senders: Mapping[int, Feedback]) -> RtcpInput | None:
    """Read the player's RTCP on ``dtls``'s ICE connection from now on; None when the connection
    has no receive hook or SRTP is not up (aiortc keeps reading it then)."""
    session = getattr(dtls, "_rx_srtp", None)
    connection = dtls.transport._connection
    if session is None or not hasattr(connection, "rtcp_input"):
        return None
    reader = RtcpInput(session, senders)
    connection.rtcp_input = reader.read
    return reader
