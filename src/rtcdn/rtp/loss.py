"""Which sequence numbers of a received RTP stream are missing: what a receiver NACKs."""

from __future__ import annotations

LOSS_WINDOW = 512
"""Sequence numbers behind the newest packet that are still tracked (and asked for): half the
sender's :data:`~rtcdn.rtp.packet.HISTORY_SIZE`, ~1 s of a 5 Mbps video track."""


class LossTracker:
    """Gaps in the sequence numbers received so far, within :data:`LOSS_WINDOW` of the newest.

    Unlike aiortc's ``NackGenerator`` it also counts the gaps *below* the first packet received: a
    stream whose start comes reordered (a relay's burst of its cached GOP over a jittery hop) loses
    the packets before the first one to arrive, and a receiver that never asks for them keeps a
    hole that no later packet fills.
    """

    __slots__ = ("_expires", "missing", "newest", "oldest")

    def __init__(self) -> None:
        self.newest: int | None = None
        self.oldest = 0
        "The lowest sequence number received, while it is within the window of the newest."
        self.missing: set[int] = set()
        self._expires = 0
        """A sequence number at or before the oldest missing one: nothing leaves the window before
        it does, so the set is swept only then (not per packet)."""

    def add(self, seq: int) -> bool:
        """Note packet ``seq``; True when it revealed new gaps."""
        newest = self.newest
        if newest is None:
            self.newest = self.oldest = seq
            return False
        ahead = (seq - newest) & 0xFFFF
        if 0 < ahead < 0x8000:
            self.newest = seq
            if ahead > LOSS_WINDOW:  # a jump (sender restart, long outage): start over from here
                self.missing.clear()
                self.oldest = seq
                return False
            if ahead > 1:
                if not self.missing:
                    self._expires = (newest + 1) & 0xFFFF
                self.missing.update((newest + k) & 0xFFFF for k in range(1, ahead))
            self._forget_old()
            return ahead > 1
        if seq in self.missing:
            self.missing.discard(seq)
            return False
        below = (self.oldest - seq) & 0xFFFF
        if 0 < below < 0x8000 and (newest - seq) & 0xFFFF <= LOSS_WINDOW:  # older than the first
            self.missing.update((seq + k) & 0xFFFF for k in range(1, below))
            self._expires = (seq + 1) & 0xFFFF  # older than every other missing one
            self.oldest = seq
            return below > 1
        return False

    def _forget_old(self) -> None:
        newest = self.newest
        assert newest is not None
        if (newest - self.oldest) & 0xFFFF > LOSS_WINDOW:
            self.oldest = (newest - LOSS_WINDOW) & 0xFFFF
        if self.missing and (newest - self._expires) & 0xFFFF > LOSS_WINDOW:
            self.missing = {s for s in self.missing if (newest - s) & 0xFFFF <= LOSS_WINDOW}
            if self.missing:
                self._expires = max(self.missing, key=lambda s: (newest - s) & 0xFFFF)
