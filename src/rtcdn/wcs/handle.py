"""MediaHandle: one publish or play of a WCS session, the media session REST lists and terminates."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..access import Grant
from ..stream import EndReason, MediaRecord, MediaState, Stream
from ..webrtc import WebRtcPlayer, WebRtcPublisher
from . import messages as m
from .records import END_INFO, record_fields

if TYPE_CHECKING:
    from .session import WcsSession

_MEDIA_STATES = {
    m.PENDING: MediaState.PENDING,
    m.PUBLISHING: MediaState.PUBLISHING,
    m.PLAYING: MediaState.PLAYING,
    m.UNPUBLISHED: MediaState.ENDED,
    m.STOPPED: MediaState.ENDED,
    m.FAILED: MediaState.FAILED,
}


@dataclass(eq=False)
class MediaHandle:
    """One publish or play of a session, keyed by the client's mediaSessionId; the
    :class:`~rtcdn.stream.MediaSession` that REST lists and terminates."""

    id: str
    name: str
    published: bool
    peer: WebRtcPublisher | WebRtcPlayer
    session: WcsSession
    status: str = m.PENDING
    stream: Stream | None = None
    task: asyncio.Task[None] | None = None
    grant: Grant | None = None
    "What admitted it (its own token, or the session's); None with auth off."
    created: float = field(default_factory=time.time)
    states: dict[str, dict[str, bool]] = field(
        default_factory=lambda: {"audioState": {"muted": False}, "videoState": {"muted": False}}
    )

    @property
    def ended(self) -> bool:
        return self.status in (m.UNPUBLISHED, m.STOPPED, m.FAILED)

    def describe(self) -> MediaRecord:
        return MediaRecord(
            id=self.id,
            name=self.name,
            published=self.published,
            protocol="wcs",
            state=_MEDIA_STATES[self.status],
            session=self.session.id,
            app=self.session.app_key,
            created=self.created,
        )

    def terminate(self, reason: EndReason) -> None:
        self.session._end(self, m.UNPUBLISHED if self.published else m.STOPPED, END_INFO[reason])

    def fields(self) -> dict[str, Any]:
        """The WCS record of this publish/play (status events, REST)."""
        return record_fields(self.describe(), self.stream.track_infos() if self.stream is not None else {})
