"""Streams: one publisher, many players, and the registry that names them.

A :class:`Stream` is where protocols meet: a publisher (a browser over WebRTC, or later a relay)
writes raw RTP into it with :meth:`Stream.forward`; players attach :class:`~rtcdn.rtp.RtpSink`s.
Nothing here awaits: every state change is a plain method, so the event loop serializes them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Protocol

from .rtp import PacketHistory, RtpError, RtpRewriter, RtpSink, TrackInfo, header_length, keyframe_detector

logger = logging.getLogger(__name__)

KEYFRAME_MIN_INTERVAL = 0.35
"""Seconds between two PLIs sent to a publisher; requests in between are coalesced into one.
Just above Chrome's own 300 ms (``kMinKeyframeSendIntervalMs``), under which Chrome ignores a PLI
(at exactly 0.3 s network jitter decides; a lost one is asked again after KEYFRAME_WAIT)."""
KEYFRAME_WAIT = 1.0
"After a PLI, requests wait this long for the keyframe; then players still waiting ask again."


def media_fields(tracks: Mapping[str, TrackInfo]) -> dict[str, object]:
    """``hasAudio``/``hasVideo``/``audioCodec``/``videoCodec`` of a track set, as WCS reports them."""
    fields: dict[str, object] = {"hasAudio": "audio" in tracks, "hasVideo": "video" in tracks}
    for kind in ("audio", "video"):
        if kind in tracks:
            fields[f"{kind}Codec"] = tracks[kind].codec_name
    return fields


class StreamError(Exception):
    """A stream operation refused; ``info`` is the WCS info string for the client."""

    def __init__(self, info: str) -> None:
        super().__init__(info)
        self.info = info


class Publisher(Protocol):
    """The source of a stream, whatever its protocol."""

    def request_keyframe(self) -> None: ...

    def on_stream_end(self, info: str) -> None:
        """The stream was ended from outside (REST terminate, shutdown): stop publishing."""


class Player(Protocol):
    """A consumer of a stream, whatever its protocol."""

    def sinks(self) -> Mapping[str, RtpSink]: ...

    def on_stream_end(self, info: str) -> None:
        """The stream is gone (publisher left, terminate): tell the client and close."""

    def on_stream_event(self, event: dict[str, object]) -> None:
        """A publisher's stream event (mute, data): pass it on to the client."""


class _TrackFanout:
    """Players of one track, grouped by rewrite profile so each packet is rewritten once per group."""

    __slots__ = ("detect", "groups", "history", "info", "keyframes", "last_rtp_time", "packets", "waiting")

    def __init__(self, info: TrackInfo) -> None:
        self.info = info
        self.groups: dict[tuple[object, ...], tuple[RtpRewriter, list[RtpSink]]] = {}
        self.history = PacketHistory() if info.kind == "video" else None
        self.detect = keyframe_detector(info.mime_type) if info.kind == "video" else None
        self.waiting: list[RtpSink] = []
        "New players' sinks, held back until a keyframe starts so they never get half a picture."
        self.packets = 0
        self.keyframes = 0
        self.last_rtp_time: tuple[int, float] | None = None

    def attach(self, sink: RtpSink) -> None:
        if self.detect is None:
            self.add(sink)
        else:
            self.waiting.append(sink)

    def add(self, sink: RtpSink) -> None:
        key = sink.rewriter.key
        group = self.groups.get(key)
        if group is None:
            self.groups[key] = (sink.rewriter, [sink])
        else:
            sink.rewriter = group[0]
            group[1].append(sink)

    def remove(self, sink: RtpSink) -> None:
        if sink in self.waiting:
            self.waiting.remove(sink)
            return
        key = sink.rewriter.key
        group = self.groups.get(key)
        if group is not None and sink in group[1]:
            group[1].remove(sink)
            if not group[1]:
                del self.groups[key]


class Stream:
    """A named live stream. Lifecycle: created by :meth:`StreamManager.create` (PENDING),
    :meth:`go_live` when the publisher's media is up (PUBLISHING), :meth:`close` once; a closed
    stream is never reused."""

    def __init__(self, name: str, manager: StreamManager, publisher: Publisher) -> None:
        self.name = name
        self.publisher = publisher
        self.created = time.time()
        self.live = False
        self.closed = False
        self.tracks: dict[str, _TrackFanout] = {}
        self.players: list[Player] = []
        self._manager = manager
        self._last_pli = 0.0
        self._pli_outstanding = False
        self._pli_timer: asyncio.TimerHandle | None = None
        self._pli_check: asyncio.TimerHandle | None = None

    # --- publisher side -------------------------------------------------------------------
    def set_tracks(self, tracks: Iterable[TrackInfo]) -> None:
        self.tracks = {t.kind: _TrackFanout(t) for t in tracks}

    def track_infos(self) -> dict[str, TrackInfo]:
        return {kind: fan.info for kind, fan in self.tracks.items()}

    def media_fields(self) -> dict[str, object]:
        """``hasAudio``/``hasVideo``/``audioCodec``/``videoCodec`` as WCS reports them."""
        return media_fields(self.track_infos())

    def go_live(self) -> None:
        if not self.closed:
            self.live = True
            logger.info("stream %r: live with %s", self.name, sorted(self.tracks))
            self._manager._notify("live", self.name)

    def forward(self, kind: str, data: bytes, seq: int, rtp_time: int) -> None:
        """Fan one publisher packet out to every player (hot path: no awaits, no logging)."""
        fan = self.tracks.get(kind)
        if fan is None:
            return
        fan.packets += 1
        fan.last_rtp_time = (rtp_time, time.time())
        if fan.detect is not None:
            try:
                keyframe = fan.detect(data, header_length(data))
            except RtpError:
                return
            if keyframe:
                fan.keyframes += 1
                self._pli_outstanding = False
                if self._pli_timer is not None:  # this keyframe serves the deferred request too
                    self._pli_timer.cancel()
                    self._pli_timer = None
                if fan.waiting:
                    for sink in fan.waiting:
                        fan.add(sink)
                    fan.waiting.clear()
        if fan.history is not None:
            fan.history.add(seq, data)
        for rewriter, sinks in fan.groups.values():
            template = rewriter.rewrite(data)
            for sink in sinks:
                sink.send(template, seq)

    # --- player side ----------------------------------------------------------------------
    def add_player(self, player: Player) -> None:
        if self.closed:
            raise StreamError("Stream not found")
        self.players.append(player)
        for kind, sink in player.sinks().items():
            fan = self.tracks.get(kind)
            if fan is not None:
                fan.attach(sink)
        self.request_keyframe()

    def remove_player(self, player: Player) -> None:
        if player in self.players:
            self.players.remove(player)
            for kind, sink in player.sinks().items():
                fan = self.tracks.get(kind)
                if fan is not None:
                    fan.remove(sink)

    def retransmit(self, sink: RtpSink, player_seqs: Iterable[int]) -> int:
        """Serve a player's NACK from the history; returns how many packets were resent."""
        fan = self.tracks.get(sink.kind)
        if fan is None or fan.history is None:
            return 0
        sent = 0
        for pseq in player_seqs:
            seq = sink.publisher_seq(pseq)
            if seq is None:
                continue
            data = fan.history.get(seq)
            if data is not None:
                sink.send(sink.rewriter.rewrite(data), seq)
                sent += 1
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
            self.publisher.request_keyframe()
            if self._pli_check is not None:
                self._pli_check.cancel()
            self._pli_check = asyncio.get_running_loop().call_later(KEYFRAME_WAIT, self._check_keyframe)

    def _check_keyframe(self) -> None:
        """The PLI got no keyframe (lost, or ignored by the encoder): ask again if players wait."""
        self._pli_check = None
        fan = self.tracks.get("video")
        if self._pli_outstanding and fan is not None and fan.waiting and not self.closed:
            logger.info("stream %r: no keyframe %.1f s after a PLI, asking again", self.name, KEYFRAME_WAIT)
            self._pli_outstanding = False
            self.request_keyframe()

    # --- lifecycle ------------------------------------------------------------------------
    def close(self, info: str, notify_publisher: bool = False) -> None:
        """End the stream: every player is told ``info``; idempotent."""
        if self.closed:
            return
        self.closed = True
        self.live = False
        for timer in (self._pli_timer, self._pli_check):
            if timer is not None:
                timer.cancel()
        self._pli_timer = self._pli_check = None
        self._manager._forget(self)
        self._manager._notify("closed", self.name)
        players, self.players = self.players, []
        for fan in self.tracks.values():
            fan.groups.clear()
            fan.waiting.clear()
        logger.info("stream %r: closed (%s), %d player(s) told", self.name, info, len(players))
        for player in players:
            player.on_stream_end(info)
        if notify_publisher:
            self.publisher.on_stream_end(info)


class StreamManager:
    """The registry of streams by name. Owned by the Server."""

    def __init__(self) -> None:
        self._streams: dict[str, Stream] = {}
        self.listeners: list[Callable[[str, str], None]] = []
        "Called with (``live`` or ``closed``, stream name); must not raise or block."

    def _notify(self, event: str, name: str) -> None:
        for listener in self.listeners:
            listener(event, name)

    def create(self, name: str, publisher: Publisher) -> Stream:
        """Reserve ``name`` for a new publisher; raises :class:`StreamError` if it is taken."""
        if name in self._streams:
            raise StreamError("Stream name is already in use")
        stream = Stream(name, self, publisher)
        self._streams[name] = stream
        return stream

    def get_live(self, name: str) -> Stream:
        stream = self._streams.get(name)
        if stream is None or not stream.live:
            raise StreamError("Stream not found")
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

    def close_all(self, info: str) -> None:
        for stream in list(self._streams.values()):
            stream.close(info, notify_publisher=True)
