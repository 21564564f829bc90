"""Pull on demand: the relays an edge opens to bring in streams its players ask for.

One :class:`Pull` per stream name, one state machine per pull (research notes §2.5):

* **starting** — the first player's :meth:`PullSupervisor.fetch` resolves the upstream and opens
  one relay pull; players arriving meanwhile await the same start (single flight); all of them
  wait at most ``start_timeout`` for the stream to go live;
* **live** — players attach to the local stream as to any other;
* **grace** — the last player left: after ``close_after`` seconds without a player (or a player
  asking) the relay is terminated. A player in the grace period keeps the pull;
* **closed** — the local stream ended with the relay and its name is free at once, so a player
  arriving now starts a fresh pull (no "stopping" state to trip on).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..relay import Relay, RelayError, RelayManager
from ..stream import MediaError, Stream, StreamEnded, StreamManager, UpstreamFailed
from ..tasks import TaskSet

logger = logging.getLogger(__name__)

TICK = 0.25
"Seconds between two looks at the pulls' players."

Resolver = Callable[[str], Awaitable[tuple[str, str]]]
"Stream name → (the upstream's node id or URI, the agent URI to pull from); raises MediaError."


@dataclass(eq=False)
class Pull:
    name: str
    upstream: str
    relay: Relay
    since: float
    idle_since: float | None = None

    @property
    def stream(self) -> Stream | None:
        return self.relay.stream


class PullSupervisor:
    """Lifecycle: :meth:`start` runs the idle watch; :meth:`close` stops it (the relays belong to
    the RelayManager, which the Server closes)."""

    def __init__(
        self,
        streams: StreamManager,
        relays: RelayManager,
        resolve: Resolver,
        start_timeout: float,
        close_after: float,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self._streams = streams
        self._relays = relays
        self._resolve = resolve
        self.start_timeout = start_timeout
        self.close_after = close_after
        self._on_change = on_change
        self.pulls: dict[str, Pull] = {}
        self._starting: dict[str, asyncio.Task[MediaError | None]] = {}
        self._tasks = TaskSet("cdn-pulls")
        self.started = 0
        self.failed = 0
        self.closed_idle = 0
        self.shared = 0
        "Players that joined a start already under way instead of starting their own."

    def start(self) -> None:
        self._tasks.spawn(self._watch(), "watch")

    async def close(self) -> None:
        await self._tasks.close()

    def owns(self, stream: Stream) -> bool:
        """Is ``stream`` one this supervisor pulled in (so not a name to claim)?"""
        pull = self.pulls.get(stream.name)
        return pull is not None and pull.stream is stream

    async def fetch(self, name: str) -> bool:
        """Bring ``name`` in (single flight) and wait until it is live; raises the
        :class:`~rtcdn.stream.MediaError` that says why not. Cancelling one waiting player
        leaves the start running for the others."""
        task = self._starting.get(name)
        if task is None:
            task = self._tasks.spawn(self._start(name), f"start:{name}")
            self._starting[name] = task
            task.add_done_callback(
                lambda t: self._starting.pop(name, None) if self._starting.get(name) is t else None
            )
        else:
            self.shared += 1
        error = await asyncio.shield(task)
        if error is not None:
            raise error
        return True

    async def _start(self, name: str) -> MediaError | None:
        try:
            upstream, uri = await self._resolve(name)
        except MediaError as exc:
            return exc
        if self._streams.find(name) is not None:
            return None  # it appeared meanwhile (a publisher, another start): play that
        try:
            relay = self._relays.pull(uri, name, name)
        except RelayError as exc:
            self.failed += 1
            return UpstreamFailed(f"cannot pull {name!r} from {uri}: {exc}")
        stream = relay.stream
        assert stream is not None
        self.pulls[name] = Pull(name, upstream, relay, time.time())
        self.started += 1
        logger.info("cdn: pulling %r from %s (%s)", name, upstream, uri)
        self._on_change()
        try:
            await stream.wait_live(self.start_timeout)
        except TimeoutError:
            self.failed += 1
            self._relays.terminate(relay)
            return UpstreamFailed(f"{name!r} from {uri} did not go live within {self.start_timeout:.0f} s")
        except StreamEnded:
            self.failed += 1
            return UpstreamFailed(f"pulling {name!r} from {uri} failed: {relay.info or relay.status}")
        return None

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(TICK)
            self.sweep(time.monotonic())

    def sweep(self, now: float) -> None:
        """Forget pulls that ended; close those idle for ``close_after`` seconds."""
        for name, pull in list(self.pulls.items()):
            stream = pull.stream
            if pull.relay.finished or stream is None or stream.closed:
                del self.pulls[name]
                logger.info("cdn: pull of %r from %s ended: %s", name, pull.upstream, pull.relay.info)
                self._on_change()
            elif stream.players or not stream.live:
                pull.idle_since = None
            elif pull.idle_since is None:
                pull.idle_since = now
            elif now - max(pull.idle_since, stream.wanted_at) >= self.close_after:
                logger.info("cdn: no player of %r for %.0f s, closing its pull", name, self.close_after)
                del self.pulls[name]
                self.closed_idle += 1
                self._relays.terminate(pull.relay)
                self._on_change()
