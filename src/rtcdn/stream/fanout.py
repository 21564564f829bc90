"""One track of a stream and everything attached to it: RTP players grouped by rewrite profile,
frame players behind a lazily created depacketizer, the NACK history and the keyframe gate.

New consumers wait until a keyframe starts (RTP sinks on the packet that starts one, frame sinks
on a keyframe frame), so nobody gets half a picture. Hot path: :meth:`TrackFanout.forward`.
"""

from __future__ import annotations

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

if TYPE_CHECKING:
    from ..rtp.depacketize import Depacketizer


class TrackFanout:
    """Consumers of one track. ``groups`` maps a rewrite profile to its rewriter and sinks, so each
    packet is rewritten once per profile; each sink then only patches sequence number and SSRC."""

    __slots__ = (
        "clock",
        "depacketizer",
        "detect",
        "frame_sinks",
        "frame_waiting",
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

    def __init__(self, info: TrackInfo, on_first_keyframe: Callable[[float], None] | None = None) -> None:
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

    # --- RTP consumers ----------------------------------------------------------------------
    def attach(self, sink: RtpSink) -> None:
        if self.detect is None:
            self._add(sink)
        else:
            self.waiting.append((sink, time.monotonic()))

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
        key = sink.rewriter.key
        group = self.groups.get(key)
        if group is not None and sink in group[1]:
            group[1].remove(sink)
            if not group[1]:
                del self.groups[key]

    # --- frame consumers --------------------------------------------------------------------
    def attach_frames(self, sink: FrameSink) -> None:
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
        self.frame_waiting.append(sink)

    def remove_frames(self, sink: FrameSink) -> None:
        for sinks in (self.frame_waiting, self.frame_sinks):
            if sink in sinks:
                sinks.remove(sink)
        if not self.frame_sinks and not self.frame_waiting:
            self.depacketizer = None

    def _deliver(self, frame: Frame) -> None:
        if self.frame_waiting and frame.keyframe:
            self.frame_sinks += self.frame_waiting
            self.frame_waiting.clear()
        for sink in self.frame_sinks:
            sink(frame)

    # --- the hot path -------------------------------------------------------------------------
    def forward(self, data: bytes, seq: int, rtp_time: int, now: float) -> bool | None:
        """Fan one publisher packet out; returns whether it starts a keyframe (None: no detector,
        or a packet too broken to forward)."""
        self.packets += 1
        self.octets += len(data)
        self.last_rtp_time = (rtp_time, now)
        keyframe: bool | None = None
        if self.detect is not None:
            try:
                keyframe = self.detect(data, header_length(data))
            except RtpError:
                return None
            if keyframe:
                self.keyframes += 1
                if self.waiting:
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
        depacketizer = self.depacketizer
        if depacketizer is not None:
            for frame in depacketizer.push(data, now):
                self._deliver(frame)
        return keyframe

    def needs_keyframe(self) -> bool:
        """Consumers wait for a keyframe, or the depacketizer lost one."""
        return bool(self.waiting or self.frame_waiting) or (
            self.depacketizer is not None and self.depacketizer.needs_keyframe
        )

    def clear(self) -> None:
        self.groups.clear()
        self.waiting.clear()
        self.frame_sinks.clear()
        self.frame_waiting.clear()
        self.depacketizer = None

    def out_counters(self) -> tuple[int, int]:
        """Packets and octets sent to the attached RTP sinks so far."""
        packets = octets = 0
        for _, sinks in self.groups.values():
            for sink in sinks:
                packets += sink.packets
                octets += sink.octets
        return packets, octets
