"""StreamManager: the registry of streams by name, the media sessions of every protocol, and the
figures the metrics and stats pages read. Owned by the Server."""

from __future__ import annotations

import bisect
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from .directory import LocalDirectory, StreamDirectory
from .errors import EndReason, NameInUse, StreamEnded, StreamNotFound
from .ports import MediaRecord, MediaSession, Publisher
from .stream import Stream, StreamListener

FIRST_KEYFRAME_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
"Upper bounds (seconds) of the first-keyframe histogram."


@dataclass
class StreamStats:
    """Counters of streams that have ended (live streams are summed at read time) and events."""

    packets_in: int = 0
    octets_in: int = 0
    packets_out: int = 0
    octets_out: int = 0
    plis: int = 0
    nacks_served: int = 0
    keyframes_spared: int = 0
    first_keyframe_counts: list[int] = field(default_factory=lambda: [0] * (len(FIRST_KEYFRAME_BUCKETS) + 1))
    first_keyframe_sum: float = 0.0

    def add_received(self, packets: int, octets: int) -> None:
        self.packets_in += packets
        self.octets_in += octets

    def add_sent(self, packets: int, octets: int) -> None:
        self.packets_out += packets
        self.octets_out += octets

    def observe_first_keyframe(self, seconds: float) -> None:
        self.first_keyframe_counts[bisect.bisect_left(FIRST_KEYFRAME_BUCKETS, seconds)] += 1
        self.first_keyframe_sum += seconds


class MediaSessions:
    """Every publish and play of every protocol, by media session id. Ids are chosen by clients
    (WCS's mediaSessionId), so two sessions may share one: each id holds a list."""

    def __init__(self) -> None:
        self._by_id: dict[str, list[MediaSession]] = {}
        self._count = 0

    def add(self, session: MediaSession) -> None:
        same = self._by_id.setdefault(session.id, [])
        if not any(s is session for s in same):
            same.append(session)
            self._count += 1

    def discard(self, session: MediaSession) -> None:
        same = self._by_id.get(session.id)
        if same is None:
            return
        for i, s in enumerate(same):
            if s is session:
                del same[i]
                self._count -= 1
                break
        if not same:
            del self._by_id[session.id]

    def get(self, media_id: str) -> MediaSession | None:
        same = self._by_id.get(media_id)
        return same[0] if same else None

    def __iter__(self) -> Iterator[MediaSession]:
        return iter([s for same in self._by_id.values() for s in same])

    def __len__(self) -> int:
        return self._count

    def records(self) -> list[MediaRecord]:
        return [s.describe() for s in self]

    def terminate(self, media_id: str) -> bool:
        """End every publish/play of that id from outside (REST); False if there is none."""
        same = list(self._by_id.get(media_id, ()))
        for session in same:
            session.terminate(EndReason.TERMINATED)
        return bool(same)


class StreamManager:
    """Streams by name. ``create`` reserves a name, ``acquire`` finds a stream to play (here or
    through the :class:`StreamDirectory`), ``listeners`` hear streams go live and close."""

    def __init__(
        self,
        directory: StreamDirectory | None = None,
        max_players: int = 0,
        rtp_activity_timeout: float = 0.0,
        gop_cache: bool = True,
    ) -> None:
        self._streams: dict[str, Stream] = {}
        self.max_players = max_players
        self.gop_cache = gop_cache
        "Video tracks keep their current GOP for joining players (:mod:`.fanout`)."
        self.rtp_activity_timeout = rtp_activity_timeout
        "Seconds without a packet after which a live stream ends (a hung publisher); 0: never."
        "Players a stream may have (``max_players_per_stream``); 0: no cap."
        self.directory: StreamDirectory = directory if directory is not None else LocalDirectory()
        self.sessions = MediaSessions()
        self.stats = StreamStats()
        self.listeners: list[StreamListener] = []

    def _notify(self, event: str, stream: Stream) -> None:
        if event == "live":
            self.directory.announce(stream)
        else:
            self.directory.withdraw(stream)
        for listener in self.listeners:
            listener(event, stream)

    def create(self, name: str, publisher: Publisher) -> Stream:
        """Reserve ``name`` for a new publisher; :class:`NameInUse` if it is taken."""
        if name in self._streams:
            raise NameInUse(f"stream name {name!r} is already in use")
        stream = Stream(name, self, publisher)
        self._streams[name] = stream
        return stream

    async def open(self, name: str, publisher: Publisher) -> Stream:
        """:meth:`create`, then the directory's claim of the name (cluster-wide uniqueness):
        :class:`NameInUse` if it is taken here or on another node."""
        stream = self.create(name, publisher)
        await self.claim(stream)
        return stream

    async def claim(self, stream: Stream) -> None:
        """The directory's claim of a created stream's name; on a refusal (:class:`NameInUse`) or
        a cancellation the stream is closed before the error goes on."""
        try:
            await self.directory.claim(stream)
        except BaseException:
            if not stream.closed:
                stream.close(EndReason.PUBLISHER_STOP)
            raise
        if stream.closed:  # the publisher left while the claim was on its way
            raise StreamEnded(f"stream {stream.name!r} ended while its name was being claimed")

    def get_live(self, name: str) -> Stream:
        stream = self._streams.get(name)
        if stream is None or not stream.live:
            raise StreamNotFound(f"no live stream {name!r}")
        return stream

    async def acquire(self, name: str, timeout: float) -> Stream:
        """A live stream to play: a local one, one still connecting (waited for up to
        ``timeout`` s), or one the directory brings in; :class:`StreamNotFound` otherwise,
        :class:`TooManyPlayers` when it is full."""
        stream = self._streams.get(name)
        if stream is None and await self.directory.fetch(name):
            stream = self._streams.get(name)
        if stream is not None:
            stream.wanted_at = time.monotonic()
        if stream is None or stream.closed:
            raise StreamNotFound(f"no live stream {name!r}")
        if not stream.live:
            try:
                await stream.wait_live(timeout)
            except TimeoutError:
                raise StreamNotFound(f"stream {name!r} did not go live within {timeout:.0f} s") from None
            except StreamEnded:
                raise StreamNotFound(f"stream {name!r} ended before it went live") from None
        stream.check_room()  # refused before negotiating; add_player checks again
        return stream

    def find(self, name: str) -> Stream | None:
        return self._streams.get(name)

    def __iter__(self) -> Iterator[Stream]:
        return iter(list(self._streams.values()))

    def __len__(self) -> int:
        return len(self._streams)

    def _forget(self, stream: Stream) -> None:
        if self._streams.get(stream.name) is stream:
            del self._streams[stream.name]

    def close_all(self, reason: EndReason) -> None:
        for stream in list(self._streams.values()):
            stream.close(reason, notify_publisher=True)

    def totals(self) -> StreamStats:
        """Ended streams' counters plus the live ones'."""
        s = self.stats
        out = StreamStats(
            s.packets_in, s.octets_in, s.packets_out, s.octets_out, s.plis, s.nacks_served,
            s.keyframes_spared, list(s.first_keyframe_counts), s.first_keyframe_sum,
        )  # fmt: skip
        for stream in self._streams.values():
            out.plis += stream.plis
            out.keyframes_spared += stream.keyframes_spared
            out.nacks_served += stream.nacks_served
            for fan in stream.tracks.values():
                out.add_received(fan.packets, fan.octets)
                out.add_sent(*fan.out_counters())
        return out
