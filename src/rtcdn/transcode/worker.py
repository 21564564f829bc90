"""Worker: the thread a transcoder converts on, one per transcoder, so frames keep their order and
the event loop never waits on a codec (PyAV releases the GIL inside codec calls)."""

from __future__ import annotations

import asyncio
import math
from concurrent.futures import ThreadPoolExecutor

from ..rtp.frame import Frame


def usable(frame: Frame, kind: str, codec: str) -> bool:
    """Can a transcoder of ``codec`` take ``frame``? One non-empty part (an empty packet would put a
    decoder into draining), a clock rate, a finite pts."""
    return (
        frame.kind == kind
        and frame.codec == codec
        and len(frame.payload) == 1
        and bool(frame.payload[0])
        and frame.clock_rate > 0
        and math.isfinite(frame.pts)
    )


def _nothing() -> None:
    return None


class Worker:
    """Base of the transcoders: :meth:`push` runs the subclass's ``convert`` on the worker thread.

    Lifecycle: the thread starts with the first push; :meth:`close` waits for the conversions
    already pushed, then ends it (idempotent)."""

    def __init__(self, name: str) -> None:
        self._submitted = self._finished = 0
        self._closed = False
        self._idle: asyncio.Future[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    def convert(self, frame: Frame | None) -> list[Frame]:
        raise NotImplementedError

    def push(self, frame: Frame | None) -> asyncio.Future[list[Frame]]:
        """:meth:`convert` on the worker thread; await the future for the output frames.

        The conversion is queued at call time, so frames are converted in call order even when
        the futures are awaited later or not at all. After :meth:`close` the future holds ``[]``.
        """
        loop = asyncio.get_running_loop()
        if self._closed:
            done: asyncio.Future[list[Frame]] = loop.create_future()
            done.set_result([])
            return done
        self._submitted += 1
        return loop.run_in_executor(self._executor, self._work, frame)

    def _work(self, frame: Frame | None) -> list[Frame]:
        try:
            return self.convert(frame)
        finally:
            self._finished += 1

    @property
    def pending(self) -> int:
        """Pushed frames not converted yet (a backlog means the CPU cannot keep up)."""
        return self._submitted - self._finished

    async def close(self) -> None:
        """Waits for the conversions already pushed, then ends the worker thread. Idempotent.

        Buffered input is dropped: push ``None`` first to get a stream's last frames."""
        self._closed = True
        if self._idle is None:
            self._idle = asyncio.get_running_loop().run_in_executor(self._executor, _nothing)
        await asyncio.shield(self._idle)
        self._executor.shutdown(wait=True)  # the worker is idle now: this returns at once
