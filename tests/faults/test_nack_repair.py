"""Deterministic NACK repair on the origin → edge hop: one video packet dropped on its way into the
edge (by a ``drop`` predicate on the edge's ICE connections), then its retransmission too."""

from __future__ import annotations

import time
from pathlib import Path

from faultkit import cdn_pair, until

from wcs_client import WcsClient


class DropPacket:
    """Drops the first ``times`` arrivals of one video packet (RTP sequence number ``target``, picked
    ``ahead`` packets after the first video packet seen once :attr:`pt` is set); keeps every
    arrival's time. SRTP leaves the RTP header in the clear."""

    def __init__(self, times: int, ahead: int = 30) -> None:
        self.times = times
        self.ahead = ahead
        self.pt: int | None = None
        self.target: int | None = None
        self.arrivals: list[float] = []

    def __call__(self, data: bytes) -> bool:
        if self.pt is None or len(data) < 12 or data[0] >> 6 != 2 or data[1] & 0x7F != self.pt:
            return False
        seq = int.from_bytes(data[2:4], "big")
        if self.target is None:
            self.target = (seq + self.ahead) & 0xFFFF
        if seq != self.target:
            return False
        self.arrivals.append(time.monotonic())
        return len(self.arrivals) <= self.times


async def run(tmp_path: Path, drop: DropPacket, watch: float) -> tuple[list[float], int]:
    """Publish on the origin, arm ``drop`` once the stream is on the edge, watch ``watch`` seconds
    after the target's first arrival; the arrivals (relative to the first) and the origin's resends."""
    async with cdn_pair(tmp_path, None, drop) as (origin, edge, _):
        async with WcsClient(f"ws://127.0.0.1:{origin.settings.ws_port}") as pub:
            await pub.publish("nack")
            await until(lambda: (s := edge.streams.find("nack")) is not None and s.live)
            stream = edge.streams.find("nack")
            assert stream is not None
            drop.pt = stream.tracks["video"].info.payload_type
            await until(lambda: bool(drop.arrivals), timeout=10)
            await until(lambda: time.monotonic() - drop.arrivals[0] > watch, timeout=watch + 2)
            return [t - drop.arrivals[0] for t in drop.arrivals], origin.streams.totals().nacks_served


async def test_a_lost_packet_is_nacked_and_resent_at_once(tmp_path: Path) -> None:
    drop = DropPacket(times=1)
    arrivals, resent = await run(tmp_path, drop, watch=1.0)
    print(
        f"\narrivals of the dropped packet at the edge (s after the first): {arrivals}; origin resends {resent}"
    )
    assert len(arrivals) == 2 and resent >= 1
    assert arrivals[1] < 0.25  # one packet interval to see the gap, one loopback round trip


async def test_a_lost_retransmission_is_asked_for_again(tmp_path: Path) -> None:
    drop = DropPacket(times=2)
    arrivals, resent = await run(tmp_path, drop, watch=2.0)
    print(
        f"\narrivals of the dropped packet at the edge (s after the first): {arrivals}; origin resends {resent}"
    )
    assert len(arrivals) >= 3, arrivals  # the original, the lost resend, a second resend
    assert arrivals[2] < 1.0
