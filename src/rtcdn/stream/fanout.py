"""One track of a stream and everything attached to it: RTP players grouped by rewrite profile,
frame players behind a lazily created depacketizer, the NACK history and the keyframe gate.

Nobody gets half a picture. A video track keeps its current GOP (the packets from the last
keyframe start on, up to :data:`GOP_MAX_PACKETS`): a new RTP sink is sent that GOP first, paced at
:data:`CATCH_UP_PACKETS` per :data:`CATCH_UP_TICK` behind which the live packets queue, then joins
the live fan-out — a decodable picture at once, without asking the publisher for a keyframe. A frame
sink likewise gets the GOP's frames at once. Without a cached GOP (none seen yet, or too long), new
consumers wait until a keyframe starts (RTP sinks on the packet that starts one, frame sinks on a
keyframe frame). Hot path: :meth:`TrackFanout.forward`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..rtp import PacketHistory, RtpError, RtpRewriter, RtpSink, TrackInfo, header_length, keyframe_detector
from ..rtp.frame import Frame, RtpClock
from .errors import NoCommonCodecs
from .ports import FrameSink

LATE_FRAMES = 4
"""Video frames a gap may stay open for before the depacketizer gives up on it: time for a NACKed
packet to come back (~130 ms at 30 fps) before the loss costs a keyframe."""

logger = logging.getLogger(__name__)

GOP_MAX_PACKETS = 3000
"""Packets of the current GOP kept for joining players (~3.6 MB at 1200 bytes: a 2 s GOP up to
~14 Mbps); a longer GOP is not cached and its joiners wait for the next keyframe."""
GOP_MAX_SECONDS = 5.0
"""Media time a cached GOP may span: a joiner catches up on it in a fraction of it, decoding every
frame; an encoder that sends keyframes only when asked (browsers) makes longer ones, and then a
keyframe request serves a joiner better."""
GOP_MAX_FRAMES = 600
"Frames of the current GOP kept for joining frame sinks (20 s at 30 fps)."
EARLY_LOOKAHEAD = 256
"""How far after a late keyframe start the history is searched for packets that came before it
(~0.2 s of a 1.5 Mbps stream, ~5 s of one packet per frame)."""
CATCH_UP_TICK = 0.005
"Seconds between two bursts of cached packets to a joining player."
CATCH_UP_PACKETS = 8
"""Cached packets sent per tick to a joining player (~1,600 packets/s, ~15 Mbps at 1200 bytes): a
720p keyframe in ~25 ms, without a burst a receiver's socket buffer could not take."""

if TYPE_CHECKING:
    from ..rtp.depacketize import Depacketizer


def in_order(gop: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
    """The GOP by sequence number from its keyframe on, each packet once: packets kept in arrival
    order put a late (reordered, or resent after a NACK) packet after the ones it precedes, and a
    receiver replaying that fast would give up on the gap before the packet came."""
    first = gop[0][0]
    unique = {item[0]: item for item in gop if (item[0] - first) & 0xFFFF < 0x8000}  # the same tuples
    return sorted(unique.values(), key=lambda item: (item[0] - first) & 0xFFFF)


class CatchUp:
    """A joining RTP sink being sent the cached GOP; live packets queue behind it."""

    __slots__ = ("next", "pending", "since", "sink")

    def __init__(self, sink: RtpSink, gop: list[tuple[int, bytes]], since: float) -> None:
        self.sink = sink
        self.pending = in_order(gop)
        "References to the GOP's own (seq, packet) tuples, then the live ones: ~8 bytes a packet."
        self.next = 0
        self.since: float | None = since
        "When it attached; None once its first (keyframe) packets went out."


class TrackFanout:
    """Consumers of one track. ``groups`` maps a rewrite profile to its rewriter and sinks, so each
    packet is rewritten once per profile; each sink then only patches sequence number and SSRC."""

    __slots__ = (
        "_timer",
        "cache_gop",
        "catching",
        "clock",
        "depacketizer",
        "detect",
        "frame_gop",
        "frame_sinks",
        "frame_waiting",
        "gop",
        "gop_start",
        "groups",
        "history",
        "info",
        "keyframes",
        "last_rtp_time",
        "octets",
        "on_first_keyframe",
        "packets",
        "waiting",
    )

    def __init__(
        self,
        info: TrackInfo,
        on_first_keyframe: Callable[[float], None] | None = None,
        cache_gop: bool = True,
    ) -> None:
        self.info = info
        self.groups: dict[tuple[object, ...], tuple[RtpRewriter, list[RtpSink]]] = {}
        self.history = PacketHistory() if info.kind == "video" else None
        self.detect = keyframe_detector(info.mime_type) if info.kind == "video" else None
        self.waiting: list[tuple[RtpSink, float]] = []
        "New RTP sinks (and when they came), held back until a keyframe starts."
        self.frame_sinks: list[FrameSink] = []
        self.frame_waiting: list[FrameSink] = []
        self.depacketizer: Depacketizer | None = None
        "Created by the first frame consumer: a WebRTC-only stream never depacketizes."
        self.clock = RtpClock(info.clock_rate)
        self.packets = 0
        self.octets = 0
        self.keyframes = 0
        self.last_rtp_time: tuple[int, float] | None = None
        self.on_first_keyframe = on_first_keyframe
        "Called with the seconds a new RTP sink waited for its first keyframe."
        self.cache_gop = cache_gop
        self.gop: list[tuple[int, bytes]] | None = None
        "(seq, packet) from the last keyframe start on; None: no keyframe yet, or the GOP was too long."
        self.gop_start = 0
        "RTP time of the cached GOP's keyframe."
        self.frame_gop: list[Frame] | None = None
        self.catching: list[CatchUp] = []
        self._timer: asyncio.TimerHandle | None = None

    # --- RTP consumers ----------------------------------------------------------------------
    def attach(self, sink: RtpSink) -> bool:
        """Attach ``sink``; True when it starts on the cached GOP (no keyframe to ask for)."""
        if self.detect is None:
            self._add(sink)
            return True
        if self.gop:
            self.catching.append(CatchUp(sink, self.gop, time.monotonic()))
            if self._timer is None:
                self._catch_up()
            return True
        self.waiting.append((sink, time.monotonic()))
        return False

    def _catch_up(self) -> None:
        """Send every joining sink its next cached packets; a sink whose backlog is empty joins
        the live fan-out."""
        self._timer = None
        for catch in list(self.catching):
            sink, pending = catch.sink, catch.pending
            end = min(catch.next + CATCH_UP_PACKETS, len(pending))
            try:
                for seq, data in pending[catch.next : end]:
                    sink.send(sink.rewriter.rewrite(data), seq)
            except Exception:  # never leave a joiner stalled behind its backlog: it goes live
                logger.exception("track %s: catching a player up failed", self.info.mime_type)
                end = len(pending)
            catch.next = end
            if catch.since is not None:
                if self.on_first_keyframe is not None:
                    self.on_first_keyframe(time.monotonic() - catch.since)
                catch.since = None
            if end == len(pending):
                self.catching.remove(catch)
                self._add(sink)
        if self.catching:
            self._timer = asyncio.get_running_loop().call_later(CATCH_UP_TICK, self._catch_up)

    def _add(self, sink: RtpSink) -> None:
        key = sink.rewriter.key
        group = self.groups.get(key)
        if group is None:
            self.groups[key] = (sink.rewriter, [sink])
        else:
            sink.rewriter = group[0]
            group[1].append(sink)

    def remove(self, sink: RtpSink) -> None:
        for i, (waiting, _) in enumerate(self.waiting):
            if waiting is sink:
                del self.waiting[i]
                return
        for catch in self.catching:
            if catch.sink is sink:
                self.catching.remove(catch)
                return
        key = sink.rewriter.key
        group = self.groups.get(key)
        if group is not None and sink in group[1]:
            group[1].remove(sink)
            if not group[1]:
                del self.groups[key]

    # --- frame consumers --------------------------------------------------------------------
    def attach_frames(self, sink: FrameSink) -> bool:
        """Attach a frame sink; True when it starts on the cached GOP's frames (delivered now)."""
        if self.depacketizer is None:
            from ..rtp.depacketize import Depacketizer  # only streams with frame consumers need it

            try:
                self.depacketizer = Depacketizer(
                    self.info.codec_name.lower(),
                    self.info.clock_rate,
                    self.clock,
                    late_frames=LATE_FRAMES if self.info.kind == "video" else None,
                )
            except ValueError as exc:
                raise NoCommonCodecs(f"frames of {self.info.mime_type} are not supported: {exc}") from None
            now = time.time()
            for _, data in self.gop or ():  # the new depacketizer starts on the cached GOP
                for frame in self.depacketizer.push(data, now):
                    self._deliver(frame)
        if self.detect is None or self.frame_gop:
            for frame in self.frame_gop or ():
                sink(frame)
            self.frame_sinks.append(sink)
            return True
        self.frame_waiting.append(sink)
        return False

    def remove_frames(self, sink: FrameSink) -> None:
        for sinks in (self.frame_waiting, self.frame_sinks):
            if sink in sinks:
                sinks.remove(sink)
        if not self.frame_sinks and not self.frame_waiting:
            self.depacketizer = None
            self.frame_gop = None

    def _deliver(self, frame: Frame) -> None:
        if self.detect is not None:  # video: keep the GOP's frames for frame sinks to come
            if frame.keyframe:
                self.frame_gop = [frame]
            elif self.frame_gop is not None:
                if len(self.frame_gop) < GOP_MAX_FRAMES:
                    self.frame_gop.append(frame)
                else:
                    self.frame_gop = None
        if self.frame_waiting and frame.keyframe:
            self.frame_sinks += self.frame_waiting
            self.frame_waiting.clear()
        for sink in self.frame_sinks:
            sink(frame)

    # --- the hot path -------------------------------------------------------------------------
    def forward(self, data: bytes, seq: int, rtp_time: int, now: float) -> bool | None:
        """Fan one publisher packet out; returns whether it starts a new keyframe (None: no
        detector, or a packet too broken to forward). A keyframe packet with the timestamp of the
        last keyframe or an older one (the same picture's other packets, a late resend of an old
        keyframe) starts nothing: the GOP goes on, waiting players keep waiting."""
        self.packets += 1
        self.octets += len(data)
        self.last_rtp_time = (rtp_time, now)
        keyframe: bool | None = None
        joiners: list[CatchUp] = []
        if self.detect is not None:
            try:
                keyframe = self.detect(data, header_length(data))
            except RtpError:
                return None
            age = (rtp_time - self.gop_start) & 0xFFFFFFFF  # ticks since the last keyframe's timestamp
            if keyframe and (self.keyframes == 0 or 0 < age < 0x80000000):
                picture = [(seq, data)]
                if self.cache_gop or self.waiting:  # who would be sent what came before the start
                    picture += self._came_early(seq, rtp_time)
                self.gop = picture if self.cache_gop else None
                self.gop_start = rtp_time
            else:
                keyframe = False
                gop = self.gop
                if gop is not None and age < 0x80000000:  # older packets are no part of this GOP
                    if len(gop) < GOP_MAX_PACKETS and age <= GOP_MAX_SECONDS * self.info.clock_rate:
                        gop.append((seq, data))
                    else:
                        self.gop = None  # too long to cache: joiners wait for the next keyframe
            if keyframe:
                self.keyframes += 1
                if self.waiting and len(picture) > 1:  # its other packets came first: catch up on them
                    joiners = [CatchUp(sink, picture, since) for sink, since in self.waiting]
                    self.waiting.clear()
                elif self.waiting:
                    started = time.monotonic()
                    for sink, since in self.waiting:
                        self._add(sink)
                        if self.on_first_keyframe is not None:
                            self.on_first_keyframe(started - since)
                    self.waiting.clear()
        if self.history is not None:
            self.history.add(seq, data)
        for rewriter, sinks in self.groups.values():
            template = rewriter.rewrite(data)
            for sink in sinks:
                sink.send(template, seq)
        for catch in self.catching:  # joiners still being sent the GOP: live packets queue behind
            catch.pending.append((seq, data))
        if joiners:
            self.catching += joiners
            if self._timer is None:
                self._catch_up()
        depacketizer = self.depacketizer
        if depacketizer is not None:
            for frame in depacketizer.push(data, now):
                self._deliver(frame)
        return keyframe

    def _came_early(self, seq: int, rtp_time: int) -> list[tuple[int, bytes]]:
        """Packets after keyframe start ``seq`` that arrived before it (the start was reordered or
        resent after a NACK), in sequence order: the rest of its picture and of the pictures after
        it. Without them a joiner starting on this GOP lacks what it needs next: an incomplete
        keyframe, or a hole in the sequence that a receiver's jitter buffer (aiortc's) waits on
        for hundreds of packets. A relay's burst of its cached GOP over a jittery hop often
        reorders its first packets by several pictures."""
        history = self.history
        if history is None:
            return []
        found = []
        for k in range(1, EARLY_LOOKAHEAD + 1):
            after = (seq + k) & 0xFFFF
            data = history.get(after)
            if data is None:
                continue  # not here (yet): a hole the GOP may still fill
            if (int.from_bytes(data[4:8], "big") - rtp_time) & 0xFFFFFFFF < 0x80000000:
                found.append((after, data))  # not older than the keyframe: this GOP's
        return found

    def needs_keyframe(self) -> bool:
        """Consumers wait for a keyframe, or the depacketizer lost one."""
        return bool(self.waiting or self.frame_waiting) or (
            self.depacketizer is not None and self.depacketizer.needs_keyframe
        )

    def clear(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.catching.clear()
        self.gop = self.frame_gop = None
        self.groups.clear()
        self.waiting.clear()
        self.frame_sinks.clear()
        self.frame_waiting.clear()
        self.depacketizer = None

    def out_counters(self) -> tuple[int, int]:
        """Packets and octets sent to the attached RTP sinks so far."""
        packets = octets = 0
        for sink in [s for _, sinks in self.groups.values() for s in sinks] + [c.sink for c in self.catching]:
            packets += sink.packets
            octets += sink.octets
        return packets, octets
