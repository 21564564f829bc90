"""Where a transcoder's output samples play: on the input's clock, so that audio stays in sync with video.

One :class:`Timeline` per transcoded stream, renewed when the stream ends (see
:class:`~rtcdn.transcode.audio.AudioTranscoder`). It works in output samples: the decoded input is
counted as it is written into the transcoder's FIFO, and FIFO sample *n* is output sample *n*
(the encoder's priming takes the place of the first input samples, which the transcoder drops).
"""

from __future__ import annotations

from collections import deque

GAP_FILL_LIMIT = 1.0
"Seconds of missing input filled with silence; a longer gap, or an overlap, moves the timeline."
_MASK = 0xFFFFFFFF


class Timeline:
    """The first input frame's pts and RTP time, advanced by sample count, following gaps and jumps.

    :meth:`place` is told each input frame before its samples are written: a pts more than half
    the previous input frame after where the count expects it is a gap, up to
    :data:`GAP_FILL_LIMIT` filled with silence (the caller writes the samples :meth:`place`
    returns), beyond that or earlier than expected a jump: output samples written from then on
    play that much later (or earlier). :meth:`stamp` gives an output frame's RTP time and pts.
    """

    __slots__ = ("_origin_pts", "_origin_rtp", "_position", "_shifts", "_tolerance", "rate", "written")

    def __init__(self, rate: int) -> None:
        self.rate = rate
        "The output's sample rate and RTP clock."
        self.written = 0
        "Output samples written so far (the caller counts them; silence included)."
        self._origin_pts: float | None = None
        self._origin_rtp = 0
        self._position = 0.0  # where the next input sample plays, in output samples from the origin
        self._tolerance = 0.0  # seconds of pts jitter ignored: half the previous input frame
        self._shifts: deque[tuple[int, int]] = deque([(0, 0)])  # (from output sample, samples moved)

    def place(self, pts: float, rtp_time: int, clock_rate: int, duration: float) -> int:
        """Puts an input frame of ``duration`` seconds on the timeline; returns the silence to write first."""
        rate, silence = self.rate, 0
        if self._origin_pts is None:
            self._origin_pts = pts
            self._origin_rtp = round(rtp_time * rate / clock_rate)
        else:
            drift = pts - (self._origin_pts + self._position / rate)
            if self._tolerance < drift <= GAP_FILL_LIMIT:
                silence = round(drift * rate)
            elif abs(drift) > self._tolerance:
                jump = round(drift * rate)
                self._shifts.append((self.written, self._shifts[-1][1] + jump))
                self._position += jump
        self._tolerance = duration / 2
        self._position += silence + duration * rate
        return silence

    def stamp(self, start: int) -> tuple[int, float]:
        """(RTP time, pts) of output sample ``start``; ``start`` must not decrease between calls."""
        if self._origin_pts is None:
            raise RuntimeError("no input placed yet")
        shifts = self._shifts
        while len(shifts) > 1 and shifts[1][0] <= start:
            shifts.popleft()
        position = start + shifts[0][1]
        return (self._origin_rtp + position) & _MASK, self._origin_pts + position / self.rate
