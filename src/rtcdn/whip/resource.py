"""WhipResource: one WHIP publish or WHEP play, the HTTP resource a client DELETEs to end it."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from ..stream import EndReason, MediaError, MediaRecord, MediaState, Stream
from ..webrtc import WebRtcPlayer, WebRtcPublisher

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class WhipResource:
    """Lifecycle: created by POST (PENDING) → PUBLISHING/PLAYING once ICE + DTLS are up → ended
    once (DELETE, ICE failure, stream end, terminate, shutdown); ``on_end`` frees it."""

    kind: str
    "``whip`` (publish) or ``whep`` (play)."
    name: str
    peer: WebRtcPublisher | WebRtcPlayer
    remote: str
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    etag: str = field(default_factory=lambda: f'"{uuid.uuid4().hex[:16]}"')
    created: float = field(default_factory=time.time)
    state: MediaState = MediaState.PENDING
    info: str = ""
    stream: Stream | None = None
    error: MediaError | None = None
    "Why it failed, when it did (the HTTP status of a POST that got no answer)."
    task: asyncio.Task[None] | None = None
    on_end: Callable[[WhipResource, str], None] | None = None

    def __post_init__(self) -> None:
        self.peer.on_end = lambda reason: self.end(MediaState.ENDED, reason.value)
        self.peer.on_lost = lambda clean: self.end(
            MediaState.ENDED if clean else MediaState.FAILED,
            "the client closed the connection" if clean else "ICE consent lost",
        )

    @property
    def published(self) -> bool:
        return self.kind == "whip"

    @property
    def path(self) -> str:
        return f"/{self.kind}/{self.name}/{self.id}"

    @property
    def ended(self) -> bool:
        return self.state in (MediaState.ENDED, MediaState.FAILED)

    def describe(self) -> MediaRecord:
        return MediaRecord(
            id=self.id,
            name=self.name,
            published=self.published,
            protocol=self.kind,
            state=self.state,
            session=f"{self.kind}:{self.remote}",
            app=self.kind,
            created=self.created,
            info=self.info,
        )

    def terminate(self, reason: EndReason) -> None:
        self.end(MediaState.ENDED, reason.value)

    def went_live(self, state: MediaState, detail: str) -> None:
        self.state = state
        logger.info("%s %r %s: %s %s", self.kind, self.name, self.id, state.value.lower(), detail)

    def fail(self, error: MediaError) -> None:
        """Publishing or playing failed (the POST answers with ``error``'s status if still waiting)."""
        self.error = error
        self.end(MediaState.FAILED, f"{type(error).__name__}: {error}")

    def end(self, state: MediaState, info: str) -> None:
        """Finish (idempotent): detach from the stream, stop the task; ``on_end`` closes the peer."""
        if self.ended:
            return
        self.state, self.info = state, info
        if self.task is not None and self.task is not asyncio.current_task():
            self.task.cancel()
        if self.stream is not None:
            self.stream.leave(self.peer)
        logger.info("%s %r %s: %s (%s)", self.kind, self.name, self.id, state.value, info)
        if self.on_end is not None:
            self.on_end(self, info)
