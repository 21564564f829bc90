"""stream.stream + stream.manager: registry rules, fan-out to groups, keyframe coalescing, end of stream."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import pytest

from rtcdn.rtp import RtpRewriter, RtpSink, TrackInfo, stamp
from rtcdn.stream import EndReason, FrameSink, NameInUse, StreamEnded, StreamManager, StreamNotFound

VP8 = TrackInfo(kind="video", mime_type="video/VP8", clock_rate=90000, payload_type=96)
RTP = bytes([0x80, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9]) + b"\x10\x00keyframe"  # VP8 S=1, P=0
DELTA = RTP[:12] + b"\x10\x01delta"  # VP8 S=1, P=1


class FakePublisher:
    def __init__(self) -> None:
        self.keyframes = 0
        self.ended: list[EndReason] = []

    def request_keyframe(self) -> None:
        self.keyframes += 1

    def on_stream_end(self, reason: EndReason) -> None:
        self.ended.append(reason)


class FakePlayer:
    def __init__(self, pt: int = 100) -> None:
        self.sent: list[bytes] = []
        self.sink = RtpSink(
            "video", 7, RtpRewriter(pt, {}), lambda t, seq: self.sent.append(stamp(t, seq, b"\0\0\0\7"))
        )
        self.ended: list[EndReason] = []
        self.events: list[dict[str, object]] = []

    def sinks(self) -> Mapping[str, RtpSink]:
        return {"video": self.sink}

    def frame_sinks(self) -> Mapping[str, FrameSink]:
        return {}

    def on_stream_end(self, reason: EndReason) -> None:
        self.ended.append(reason)

    def on_stream_event(self, event: dict[str, object]) -> None:
        self.events.append(event)


async def test_names_are_unique_until_closed() -> None:
    manager = StreamManager()
    stream = manager.create("a", FakePublisher())
    with pytest.raises(NameInUse):
        manager.create("a", FakePublisher())
    with pytest.raises(StreamNotFound):
        manager.get_live("a")  # not live yet
    stream.go_live()
    assert manager.get_live("a") is stream
    stream.close(EndReason.PUBLISHER_STOP)
    with pytest.raises(StreamNotFound):
        manager.get_live("a")
    manager.create("a", FakePublisher())


async def test_forward_rewrites_once_per_profile() -> None:
    stream = StreamManager().create("s", FakePublisher())
    stream.set_tracks([VP8])
    stream.go_live()
    players = [FakePlayer(100), FakePlayer(100), FakePlayer(101)]
    for p in players:
        stream.add_player(p)
    stream.forward("video", RTP, 1, 0)
    assert len(stream.tracks["video"].groups) == 2
    assert [p.sent[0][1] for p in players] == [100, 100, 101]
    assert all(p.sent[0][12:] == RTP[12:] for p in players)
    stream.remove_player(players[0])
    stream.forward("video", RTP, 2, 0)
    assert [len(p.sent) for p in players] == [1, 2, 2]


async def test_keyframe_requests_are_rate_limited_and_coalesced() -> None:
    publisher = FakePublisher()
    stream = StreamManager().create("s", publisher)
    stream.set_tracks([VP8])
    stream.go_live()
    for _ in range(5):
        stream.request_keyframe()
    assert publisher.keyframes == 1  # the keyframe asked for serves every request
    stream.forward("video", RTP, 1, 0)  # it arrives
    for _ in range(5):
        stream.request_keyframe()
    assert publisher.keyframes == 1  # too soon after the last PLI: deferred, coalesced
    await asyncio.sleep(0.6)
    assert publisher.keyframes == 2


async def test_keyframe_asked_again_while_players_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("rtcdn.stream.stream.KEYFRAME_WAIT", 0.2)
    publisher = FakePublisher()
    stream = StreamManager().create("s", publisher)
    stream.set_tracks([VP8])
    stream.go_live()
    stream.add_player(FakePlayer())  # PLI 1 at t=0, which the encoder ignores
    await asyncio.sleep(0.6)  # the wait ends at 0.2, the rate limit lets PLI 2 go at 0.35
    assert publisher.keyframes == 2  # asked again once the wait and the rate limit passed
    stream.forward("video", RTP, 1, 0)
    await asyncio.sleep(0.7)
    assert publisher.keyframes == 2  # the player got its keyframe: no more asking


async def test_new_player_waits_for_a_keyframe() -> None:
    stream = StreamManager().create("s", FakePublisher())
    stream.set_tracks([VP8])
    stream.go_live()
    player = FakePlayer()
    stream.add_player(player)
    stream.forward("video", DELTA, 1, 0)
    assert player.sent == []  # half a picture is never sent
    stream.forward("video", RTP, 2, 0)
    stream.forward("video", DELTA, 3, 0)
    assert [p[12:] for p in player.sent] == [RTP[12:], DELTA[12:]]


async def test_close_tells_players_and_events_reach_them() -> None:
    publisher = FakePublisher()
    stream = StreamManager().create("s", publisher)
    stream.set_tracks([VP8])
    stream.go_live()
    player = FakePlayer()
    stream.add_player(player)
    stream.notify_event({"type": "data", "payload": {"n": 1}})
    assert player.events == [{"type": "data", "payload": {"n": 1}}]
    stream.close(EndReason.PUBLISHER_STOP, notify_publisher=True)
    stream.close(EndReason.SHUTDOWN)
    assert player.ended == [EndReason.PUBLISHER_STOP]
    assert publisher.ended == [EndReason.PUBLISHER_STOP]
    with pytest.raises(StreamEnded):
        stream.add_player(FakePlayer())


async def test_nack_is_served_from_history() -> None:
    publisher = FakePublisher()
    stream = StreamManager().create("s", publisher)
    stream.set_tracks([VP8])
    stream.go_live()
    player = FakePlayer()
    stream.add_player(player)
    assert publisher.keyframes == 1  # the join's
    stream.forward("video", RTP, 1, 0)
    assert len(player.sent) == 1
    player_seq = int.from_bytes(player.sent[0][2:4], "big")
    assert stream.retransmit(player.sink, [player_seq]) == 1
    assert player.sent[1] == player.sent[0]
    await asyncio.sleep(0.4)  # past the keyframe requests' rate limit
    # a packet the history never had: only a keyframe can fill the player's hole
    assert stream.retransmit(player.sink, [player_seq, (player_seq + 5) & 0xFFFF]) == 1
    assert publisher.keyframes == 2


async def test_acquire_waits_for_a_pending_stream_and_fails_for_unknown_ones() -> None:
    manager = StreamManager()
    with pytest.raises(StreamNotFound):
        await manager.acquire("nobody", timeout=0.1)
    stream = manager.create("s", FakePublisher())
    waiter = asyncio.ensure_future(manager.acquire("s", timeout=2.0))
    await asyncio.sleep(0.05)
    assert not waiter.done()  # PENDING: the player waits instead of failing
    stream.go_live()
    assert await waiter is stream
    pending = manager.create("t", FakePublisher())
    waiter = asyncio.ensure_future(manager.acquire("t", timeout=2.0))
    await asyncio.sleep(0.05)
    pending.close(EndReason.PUBLISHER_STOP)
    with pytest.raises(StreamNotFound):
        await waiter
    manager.create("u", FakePublisher())
    with pytest.raises(StreamNotFound, match="did not go live"):
        await manager.acquire("u", timeout=0.05)


async def test_totals_count_live_and_ended_streams() -> None:
    manager = StreamManager()
    stream = manager.create("s", FakePublisher())
    stream.set_tracks([VP8])
    stream.go_live()
    player = FakePlayer()
    stream.add_player(player)
    stream.forward("video", RTP, 1, 0)
    live = manager.totals()
    assert (live.packets_in, live.octets_in, live.packets_out) == (1, len(RTP), 1)
    assert live.plis == 1 and sum(live.first_keyframe_counts) == 1
    stream.close(EndReason.PUBLISHER_STOP)
    ended = manager.totals()
    assert (ended.packets_in, ended.octets_in, ended.packets_out, ended.plis) == (1, len(RTP), 1, 1)


async def test_leave_ends_for_the_publisher_and_detaches_a_player() -> None:
    manager = StreamManager()
    publisher = FakePublisher()
    stream = manager.create("s", publisher)
    stream.set_tracks([VP8])
    stream.go_live()
    player, other = FakePlayer(), FakePlayer()
    stream.add_player(player)
    stream.add_player(other)
    stream.leave(player)
    assert stream.players == [other] and not player.ended
    stream.leave(object())  # a stranger: nothing happens
    stream.leave(publisher)
    assert stream.closed and other.ended == [EndReason.PUBLISHER_STOP]
