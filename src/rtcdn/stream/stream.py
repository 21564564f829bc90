"""Stream: one named live stream, where a publisher meets its players, whatever their protocols.

A publisher writes raw RTP into it with :meth:`Stream.forward` (or whole frames with
:meth:`Stream.forward_frame`, packetized once per track); players attach RTP sinks and/or frame
sinks (:class:`~rtcdn.stream.ports.Player`). Nothing here awaits but :meth:`Stream.wait_live`:
every state change is a plain method, so the event loop serializes them.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from ..rtp import RtpSink, TrackInfo
from ..rtp.frame import Frame
from .errors import EndReason, NoCommonCodecs, StreamEnded, TooManyPlayers
from .fanout import TrackFanout
from .ports import Player, Publisher

if TYPE_CHECKING:
    from ..rtp.packetize import Packetizer
    from .manager import StreamManager

logger = logging.getLogger(__name__)

KEYFRAME_MIN_INTERVAL = 0.35
"""Seconds between two PLIs sent to a publisher; requests in between are coalesced into one.
Just above Chrome's own 300 ms (``kMinKeyframeSendIntervalMs``), under which Chrome ignores a PLI
(at exactly 0.3 s network jitter decides; a lost one is asked again after KEYFRAME_WAIT)."""
KEYFRAME_WAIT = 1.0
"After a PLI, requests wait this long for the keyframe; then players still waiting ask again."


class StreamState(enum.Enum):
    PENDING = "pending"
    "Created: the name is taken, the publisher's media is not up yet."
    LIVE = "live"
    CLOSED = "closed"
    "Ended; a closed stream is never reused."


class Stream:
    """A named live stream. Lifecycle: :meth:`StreamManager.create` (PENDING), :meth:`go_live`
    when the publisher's media is up (LIVE), :meth:`close` once (CLOSED)."""

    def __init__(self, name: str, manager: StreamManager, publisher: Publisher) -> None:
        self.name = name
        self.publisher = publisher
        self.created = time.time()
        self.state = StreamState.PENDING
        self.tracks: dict[str, TrackFanout] = {}
        self.players: list[Player] = []
        self.plis = 0
        self.nacks_served = 0
        self.keyframes_spared = 0
        "Players that started on the cached GOP instead of a keyframe request to the publisher."
        self._manager = manager
        self._changed = asyncio.Event()
        self._packetizers: dict[str, Packetizer] = {}
        self._last_pli = 0.0
        self._pli_outstanding = False
        self._pli_timer: asyncio.TimerHandle | None = None
        self._pli_check: asyncio.TimerHandle | None = None
        self._activity_timer: asyncio.TimerHandle | None = None
        self._active_at = time.monotonic()
        self.wanted_at = 0.0
        "When a player last asked for the stream (monotonic s): an idle pull is kept a while."

    @property
    def live(self) -> bool:
        return self.state is StreamState.LIVE

    @property
    def closed(self) -> bool:
        return self.state is StreamState.CLOSED

    def __repr__(self) -> str:
        return f"<Stream {self.name!r} {self.state.value}>"

    # --- publisher side -------------------------------------------------------------------
    def set_tracks(self, tracks: Iterable[TrackInfo], packetize: bool = False) -> None:
        """The publisher's tracks. ``packetize=True`` for a frame publisher: its frames are
        turned into RTP once per track (:meth:`forward_frame`)."""
        on_kf = self._manager.stats.observe_first_keyframe
        cache = self._manager.gop_cache
        self.tracks = {t.kind: TrackFanout(t, on_kf, cache) for t in tracks}
        if packetize:
            from ..rtp.packetize import Packetizer  # only frame publishers need it

            try:
                self._packetizers = {
                    t.kind: Packetizer(
                        t.codec_name.lower(), t.payload_type, random.getrandbits(32), t.clock_rate
                    )
                    for t in self.track_infos().values()
                }
            except ValueError as exc:
                raise NoCommonCodecs(f"cannot packetize: {exc}") from None

    def track_infos(self) -> dict[str, TrackInfo]:
        return {kind: fan.info for kind, fan in self.tracks.items()}

    def go_live(self) -> None:
        if self.state is StreamState.PENDING:
            self.state = StreamState.LIVE
            self._changed.set()
            logger.info("stream %r: live with %s", self.name, sorted(self.tracks))
            self._manager._notify("live", self)
            if self._manager.rtp_activity_timeout > 0:
                self._watch_activity(-1)

    def _watch_activity(self, seen: int) -> None:
        """Every sixth of the timeout: a live stream whose packet count stood still for the whole
        timeout ends (the publisher hangs: its sockets are open, nothing comes), players told."""
        self._activity_timer = None
        if self.state is not StreamState.LIVE:
            return
        packets = sum(fan.packets for fan in self.tracks.values())
        now = time.monotonic()
        if packets != seen:
            self._active_at = now
        elif now - self._active_at >= self._manager.rtp_activity_timeout:
            logger.warning("stream %r: no packet for %.0f s, ending it", self.name, now - self._active_at)
            self.close(EndReason.RTP_INACTIVE, notify_publisher=True)
            return
        loop = asyncio.get_running_loop()
        delay = self._manager.rtp_activity_timeout / 6
        self._activity_timer = loop.call_later(delay, self._watch_activity, packets)

    async def wait_live(self, timeout: float) -> None:
        """Return once the stream is live; :class:`StreamEnded` if it closes first,
        :class:`TimeoutError` after ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            while self.state is StreamState.PENDING:
                await self._changed.wait()
        if self.state is StreamState.CLOSED:
            raise StreamEnded(f"stream {self.name!r} ended before it went live")

    def forward(self, kind: str, data: bytes, seq: int, rtp_time: int) -> None:
        """Fan one publisher packet out to every player (hot path: no awaits, no logging)."""
        fan = self.tracks.get(kind)
        if fan is None:
            return
        keyframe = fan.forward(data, seq, rtp_time, time.time())
        if keyframe:
            self._pli_outstanding = False
            if self._pli_timer is not None:  # this keyframe serves the deferred request too
                self._pli_timer.cancel()
                self._pli_timer = None
        elif fan.depacketizer is not None and fan.depacketizer.needs_keyframe:
            self.request_keyframe()

    def forward_frame(self, frame: Frame) -> None:
        """A frame publisher's frame: packetized once, then forwarded like any RTP packet."""
        packetizer = self._packetizers.get(frame.kind)
        if packetizer is None:
            return
        for packet in packetizer.packetize(frame):
            self.forward(frame.kind, packet, (packet[2] << 8) | packet[3], frame.rtp_time)

    def on_sender_report(self, kind: str, ntp_seconds: float, rtp_time: int) -> None:
        """The publisher's RTCP sender report: aligns the tracks' presentation times."""
        fan = self.tracks.get(kind)
        if fan is not None:
            fan.clock.on_sender_report(ntp_seconds, rtp_time)

    # --- player side ----------------------------------------------------------------------
    def check_room(self) -> None:
        """:class:`TooManyPlayers` if the stream has the manager's ``max_players`` (0: no cap)."""
        cap = self._manager.max_players
        if cap and len(self.players) >= cap:
            raise TooManyPlayers(f"stream {self.name!r} has {len(self.players)} players (max {cap})")

    def add_player(self, player: Player) -> None:
        """Attach ``player``; :class:`StreamEnded` if the stream ended, :class:`TooManyPlayers`
        if it is full (every kind of player counts: relays and pushes out of it too)."""
        if self.closed:
            raise StreamEnded(f"stream {self.name!r} has ended")
        self.check_room()
        self.players.append(player)
        cached = True  # every video consumer starts on the cached GOP: no keyframe to ask for
        for kind, sink in player.sinks().items():
            fan = self.tracks.get(kind)
            if fan is not None:
                cached = fan.attach(sink) and cached
        for kind, frame_sink in player.frame_sinks().items():
            fan = self.tracks.get(kind)
            if fan is not None:
                cached = fan.attach_frames(frame_sink) and cached
        if cached:
            self.keyframes_spared += 1
        else:
            self.request_keyframe()

    def remove_player(self, player: Player) -> None:
        if player in self.players:
            self.players.remove(player)
            for kind, sink in player.sinks().items():
                fan = self.tracks.get(kind)
                if fan is not None:
                    fan.remove(sink)
                    self._manager.stats.add_sent(sink.packets, sink.octets)
            for kind, frame_sink in player.frame_sinks().items():
                fan = self.tracks.get(kind)
                if fan is not None:
                    fan.remove_frames(frame_sink)

    def leave(self, member: object) -> None:
        """``member`` is done with the stream: its publisher's leaving ends it (players are told
        ``PUBLISHER_STOP``), a player's only detaches that player. Anything else: nothing."""
        if member is self.publisher:
            self.close(EndReason.PUBLISHER_STOP)
        elif member in self.players:
            self.remove_player(member)

    def retransmit(self, sink: RtpSink, player_seqs: Iterable[int]) -> int:
        """Serve a player's NACK from the history; returns how many packets were resent. A packet
        the history does not have (never received, or too old) leaves a hole only a keyframe
        fills: the publisher is asked for one (rate-limited as any request)."""
        fan = self.tracks.get(sink.kind)
        if fan is None or fan.history is None:
            return 0
        sent = missing = 0
        for pseq in player_seqs:
            seq = sink.publisher_seq(pseq)
            if seq is None:
                continue
            data = fan.history.get(seq)
            if data is not None:
                sink.send(sink.rewriter.rewrite(data), seq)
                sent += 1
            else:
                missing += 1
        self.nacks_served += sent
        if missing:
            self.request_keyframe()
        return sent

    def notify_event(self, event: dict[str, object]) -> None:
        for player in list(self.players):
            player.on_stream_event(event)

    def request_keyframe(self) -> None:
        """Ask the publisher for a keyframe now, or once the rate limit allows (coalesced).

        A request while a PLI is outstanding (no keyframe seen since) is already served by it.
        """
        if self.closed or "video" not in self.tracks:
            return
        now = time.monotonic()
        if self._pli_outstanding and now - self._last_pli < KEYFRAME_WAIT:
            return
        wait = self._last_pli + KEYFRAME_MIN_INTERVAL - now
        if wait <= 0:
            self._send_pli()
        elif self._pli_timer is None:
            self._pli_timer = asyncio.get_running_loop().call_later(wait, self._send_pli)

    def _send_pli(self) -> None:
        self._pli_timer = None
        self._last_pli = time.monotonic()
        self._pli_outstanding = True
        if not self.closed:
            self.plis += 1
            self.publisher.request_keyframe()
            if self._pli_check is not None:
                self._pli_check.cancel()
            self._pli_check = asyncio.get_running_loop().call_later(KEYFRAME_WAIT, self._check_keyframe)

    def _check_keyframe(self) -> None:
        """The PLI got no keyframe (lost, or ignored by the encoder): ask again if players wait."""
        self._pli_check = None
        fan = self.tracks.get("video")
        if self._pli_outstanding and fan is not None and fan.needs_keyframe() and not self.closed:
            logger.info("stream %r: no keyframe %.1f s after a PLI, asking again", self.name, KEYFRAME_WAIT)
            self._pli_outstanding = False
            self.request_keyframe()

    # --- lifecycle ------------------------------------------------------------------------
    def close(self, reason: EndReason, notify_publisher: bool = False) -> None:
        """End the stream: every player is told ``reason``; idempotent."""
        if self.closed:
            return
        self.state = StreamState.CLOSED
        self._changed.set()
        for timer in (self._pli_timer, self._pli_check, self._activity_timer):
            if timer is not None:
                timer.cancel()
        self._pli_timer = self._pli_check = self._activity_timer = None
        self._manager._forget(self)
        self._manager._notify("closed", self)
        players, self.players = self.players, []
        for fan in self.tracks.values():
            self._manager.stats.add_received(fan.packets, fan.octets)
            packets, octets = fan.out_counters()
            self._manager.stats.add_sent(packets, octets)
            fan.clear()
        self._manager.stats.plis += self.plis
        self._manager.stats.keyframes_spared += self.keyframes_spared
        self._manager.stats.nacks_served += self.nacks_served
        logger.info("stream %r: closed (%s), %d player(s) told", self.name, reason.value, len(players))
        for player in players:
            player.on_stream_end(reason)
        if notify_publisher:
            self.publisher.on_stream_end(reason)


StreamListener = Callable[[str, Stream], None]
"Called with (``live`` or ``closed``, the stream); must not raise or block."
