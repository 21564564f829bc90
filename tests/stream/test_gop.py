"""stream.fanout's GOP cache: a player joining a running stream starts on the current GOP (paced,
live packets queued behind it, sequence numbers continuous), no keyframe is asked of the publisher;
frame sinks get the GOP's frames at once; a GOP too long is not cached."""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import struct
from pathlib import Path
from types import ModuleType

import pytest
from test_stream import DELTA, RTP, VP8, FakePlayer, FakePublisher

from rtcdn.rtp import TrackInfo
from rtcdn.stream import StreamManager, fanout

OPUS = TrackInfo(kind="audio", mime_type="audio/opus", clock_rate=48000, payload_type=111)


def rtp_media() -> ModuleType:
    """tests/rtp/rtp_media.py (real encoded media helpers), loaded by path."""
    path = Path(__file__).resolve().parents[1] / "rtp" / "rtp_media.py"
    spec = importlib.util.spec_from_file_location("rtp_media", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def packet(template: bytes, seq: int, ts: int) -> bytes:
    return template[:2] + struct.pack("!HI", seq, ts) + template[8:]


def live_stream() -> tuple[StreamManager, FakePublisher, object]:
    manager = StreamManager()
    publisher = FakePublisher()
    stream = manager.create("s", publisher)
    stream.set_tracks([VP8])
    stream.go_live()
    return manager, publisher, stream


def seqs(player: FakePlayer) -> list[int]:
    return [struct.unpack_from("!H", p, 2)[0] for p in player.sent]


async def test_a_joining_player_gets_the_gop_then_live_packets_without_a_keyframe_request() -> None:
    manager, publisher, stream = live_stream()
    first = FakePlayer()
    stream.add_player(first)  # type: ignore[attr-defined]
    assert publisher.keyframes == 1  # nothing cached yet: the publisher is asked
    gop = [packet(RTP, 10, 0)] + [packet(DELTA, 10 + i, 3000 * i) for i in range(1, 40)]
    for i, data in enumerate(gop):
        stream.forward("video", data, 10 + i, 3000 * i)  # type: ignore[attr-defined]
    await asyncio.sleep(0.4)  # past the PLI rate limit: a request now would be sent at once
    joiner = FakePlayer()
    stream.add_player(joiner)  # type: ignore[attr-defined]
    assert publisher.keyframes == 1 and stream.keyframes_spared == 1  # type: ignore[attr-defined]
    assert len(joiner.sent) == fanout.CATCH_UP_PACKETS  # the first burst goes out at once
    assert joiner.sent[0][12:] == RTP[12:]  # starting with the keyframe
    stream.forward("video", packet(DELTA, 50, 150000), 50, 150000)  # type: ignore[attr-defined]
    async with asyncio.timeout(2):
        while len(joiner.sent) < 41:
            await asyncio.sleep(0.005)
    assert [p[12:] for p in joiner.sent] == [p[12:] for p in gop] + [DELTA[12:]]
    player_seqs = seqs(joiner)
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(player_seqs))
    assert seqs(first)[-1] == (seqs(first)[0] + 40) & 0xFFFF
    stream.forward("video", packet(DELTA, 51, 153000), 51, 153000)  # type: ignore[attr-defined]
    assert len(joiner.sent) == 42 and len(first.sent) == 42  # both on the live fan-out now
    totals = manager.totals()
    assert totals.keyframes_spared == 1 and totals.packets_out == 84


async def test_a_new_keyframe_restarts_the_gop_and_a_leaving_joiner_is_dropped() -> None:
    _, publisher, stream = live_stream()
    for seq in range(1, 30):
        stream.forward("video", packet(RTP if seq in (1, 20) else DELTA, seq, seq), seq, seq)  # type: ignore[attr-defined]
    track = stream.tracks["video"]  # type: ignore[attr-defined]
    assert track.gop is not None and [s for s, _ in track.gop] == list(range(20, 30))
    joiner = FakePlayer()
    stream.add_player(joiner)  # type: ignore[attr-defined]
    stream.remove_player(joiner)  # type: ignore[attr-defined]
    assert track.catching == [] and publisher.keyframes == 0
    await asyncio.sleep(0.02)
    assert len(joiner.sent) == min(10, fanout.CATCH_UP_PACKETS)  # the first burst only: nothing after it left


async def test_a_gop_too_long_is_not_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fanout, "GOP_MAX_PACKETS", 5)
    _, publisher, stream = live_stream()
    for seq in range(1, 10):
        stream.forward("video", packet(RTP if seq == 1 else DELTA, seq, seq), seq, seq)  # type: ignore[attr-defined]
    joiner = FakePlayer()
    stream.add_player(joiner)  # type: ignore[attr-defined]
    assert joiner.sent == [] and publisher.keyframes == 1  # waits for a keyframe, as without a cache
    stream.forward("video", packet(RTP, 10, 10), 10, 10)  # type: ignore[attr-defined]
    assert len(joiner.sent) == 1


async def test_closing_the_stream_stops_the_catch_up() -> None:
    _, _, stream = live_stream()
    for seq in range(1, 200):
        stream.forward("video", packet(RTP if seq == 1 else DELTA, seq, seq), seq, seq)  # type: ignore[attr-defined]
    joiner = FakePlayer()
    stream.add_player(joiner)  # type: ignore[attr-defined]
    from rtcdn.stream import EndReason

    stream.close(EndReason.PUBLISHER_STOP)  # type: ignore[attr-defined]
    sent = len(joiner.sent)
    await asyncio.sleep(0.05)
    assert len(joiner.sent) == sent < 199


async def test_a_gop_spanning_too_long_is_not_cached() -> None:
    _, publisher, stream = live_stream()
    ticks = int(fanout.GOP_MAX_SECONDS * 90000)
    stream.forward("video", packet(RTP, 1, 0), 1, 0)  # type: ignore[attr-defined]
    stream.forward("video", packet(DELTA, 2, ticks), 2, ticks)  # type: ignore[attr-defined]
    assert stream.tracks["video"].gop is not None  # type: ignore[attr-defined]
    stream.forward("video", packet(DELTA, 3, ticks + 3000), 3, ticks + 3000)  # type: ignore[attr-defined]
    assert stream.tracks["video"].gop is None  # type: ignore[attr-defined]
    stream.add_player(FakePlayer())  # type: ignore[attr-defined]
    assert publisher.keyframes == 1


async def test_what_a_joiner_gets_decodes_from_its_first_packet() -> None:
    """Real VP8 (aiortc's encoder and packetizer): an RTP player and a frame sink joining mid-GOP
    both decode every frame they get, first to last, with no keyframe after the first."""
    from aiortc.codecs.vpx import Vp8Encoder

    from rtcdn.rtp.depacketize import Depacketizer
    from rtcdn.rtp.frame import RtpClock

    media = rtp_media()
    decode, push_all, seq_of = media.decode, media.push_all, media.seq_of
    encoder = Vp8Encoder()
    frames = media.wrap(encoder.encode(media.picture(i), force_keyframe=i == 0) for i in range(40))
    _, publisher, stream = live_stream()
    packets = [p for frame in frames for p in frame]
    for data in packets[: len(packets) // 2]:
        stream.forward("video", data, seq_of(data), struct.unpack_from("!I", data, 4)[0])  # type: ignore[attr-defined]
    joiner = FakePlayer(pt=96)
    got: list[object] = []

    class FrameJoiner(FakePlayer):
        def sinks(self) -> dict[str, object]:  # type: ignore[override]
            return {}

        def frame_sinks(self) -> dict[str, object]:  # type: ignore[override]
            return {"video": got.append}

    stream.add_player(joiner)  # type: ignore[attr-defined]
    stream.add_player(FrameJoiner())  # type: ignore[attr-defined]
    assert publisher.keyframes == 0
    for data in packets[len(packets) // 2 :]:
        stream.forward("video", data, seq_of(data), struct.unpack_from("!I", data, 4)[0])  # type: ignore[attr-defined]
    async with asyncio.timeout(2):
        while len(joiner.sent) < len(packets):
            await asyncio.sleep(0.005)
    received = push_all(Depacketizer("vp8", 90000, RtpClock(90000)), joiner.sent)
    assert len(received) == 40 and received[0].keyframe and not any(f.keyframe for f in received[1:])
    assert len(decode("vp8", [f.payload[0] for f in received])) == 40
    assert len(got) == 40 and len(decode("vp8", [f.payload[0] for f in got])) == 40  # type: ignore[attr-defined]


async def test_an_h264_keyframe_of_several_packets_starts_one_gop() -> None:
    """SPS+PPS (STAP-A), then two IDR slices (FU-A starts): each "starts a keyframe", all one GOP."""
    h264 = TrackInfo(kind="video", mime_type="video/H264", clock_rate=90000, payload_type=102)
    manager = StreamManager()
    stream = manager.create("s", FakePublisher())
    stream.set_tracks([h264])
    stream.go_live()
    head = bytes([0x80, 102, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9])
    stap = head + bytes([24, 0, 2, 0x67, 0x42, 0, 2, 0x68, 0xCE])
    idr = [head + bytes([28, 0x85]) + b"slice", head + bytes([28, 0x45]) + b"end"]
    p_frame = head + bytes([0x41]) + b"p"
    for seq, data in enumerate([stap, *idr, *idr], 1):
        stream.forward("video", packet(data, seq, 9000), seq, 9000)
    stream.forward("video", packet(p_frame, 6, 12000), 6, 12000)
    gop = stream.tracks["video"].gop
    assert gop is not None and [s for s, _ in gop] == [1, 2, 3, 4, 5, 6]
    stream.forward("video", packet(stap, 7, 15000), 7, 15000)  # the next keyframe: a new GOP
    assert [s for s, _ in stream.tracks["video"].gop or ()] == [7]


def test_the_gop_is_replayed_in_sequence_order_each_packet_once() -> None:
    gop = [(65534, b"k"), (0, b"b"), (65535, b"a"), (2, b"d"), (1, b"c"), (0, b"b"), (65000, b"old")]
    assert fanout.in_order(gop) == [(65534, b"k"), (65535, b"a"), (0, b"b"), (1, b"c"), (2, b"d")]


async def test_a_late_resend_of_an_old_keyframe_packet_restarts_nothing() -> None:
    _, publisher, stream = live_stream()
    stream.forward("video", packet(RTP, 1, 1000), 1, 1000)  # type: ignore[attr-defined]
    for seq in range(2, 10):
        stream.forward("video", packet(DELTA, seq, 1000 + 3000 * seq), seq, 1000 + 3000 * seq)  # type: ignore[attr-defined]
    stream.forward("video", packet(RTP, 20, 90000), 20, 90000)  # type: ignore[attr-defined]
    stream.forward("video", packet(DELTA, 21, 93000), 21, 93000)  # type: ignore[attr-defined]
    track = stream.tracks["video"]  # type: ignore[attr-defined]
    keyframes = track.keyframes
    stream.forward("video", packet(RTP, 1, 1000), 1, 1000)  # type: ignore[attr-defined]
    stream.forward("video", packet(DELTA, 5, 16000), 5, 16000)  # type: ignore[attr-defined]  # a late resend
    assert [s for s, _ in track.gop or ()] == [20, 21] and track.keyframes == keyframes
    joiner = FakePlayer()
    stream.add_player(joiner)  # type: ignore[attr-defined]
    assert joiner.sent[0][12:] == RTP[12:] and publisher.keyframes == 0


async def test_a_keyframe_start_arriving_after_its_own_picture_brings_that_picture_along() -> None:
    """The start packet of a keyframe reordered (or resent) behind the rest of its picture: the GOP,
    and a player waiting for that keyframe, begin with the whole picture in sequence order."""
    _, publisher, stream = live_stream()
    early = FakePlayer()
    stream.add_player(early)  # type: ignore[attr-defined]  # waits: nothing cached yet
    rest = [packet(DELTA, seq, 9000) for seq in range(11, 15)]  # same timestamp: the same picture
    for seq, data in zip(range(11, 15), rest, strict=True):
        stream.forward("video", data, seq, 9000)  # type: ignore[attr-defined]
    assert early.sent == []
    start = packet(RTP, 10, 9000)
    stream.forward("video", start, 10, 9000)  # type: ignore[attr-defined]
    stream.forward("video", packet(DELTA, 15, 12000), 15, 12000)  # type: ignore[attr-defined]
    async with asyncio.timeout(2):
        while len(early.sent) < 6:
            await asyncio.sleep(0.005)
    assert [p[12:] for p in early.sent] == [start[12:]] + [p[12:] for p in rest] + [DELTA[12:]]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs(early)))
    joiner = FakePlayer()
    stream.add_player(joiner)  # type: ignore[attr-defined]
    async with asyncio.timeout(2):
        while len(joiner.sent) < 6:
            await asyncio.sleep(0.005)
    assert [struct.unpack_from("!I", p, 4)[0] for p in joiner.sent] == [9000] * 5 + [12000]
    assert joiner.sent[0][12:] == start[12:]
    stream.forward("video", packet(DELTA, 16, 15000), 16, 15000)  # type: ignore[attr-defined]
    assert len(early.sent) == len(joiner.sent) == 7  # both live
    assert publisher.keyframes == 1


async def test_a_keyframe_start_arriving_after_later_pictures_brings_them_along() -> None:
    """A relay's burst of its cached GOP reordered by a jittery hop (one packet per picture): the
    pictures after the keyframe that came before its start are in the GOP too, so a joiner has no
    hole that its jitter buffer would wait on (the fresh-CI failure of test_lossy_relay)."""
    _, publisher, stream = live_stream()
    early = FakePlayer()
    stream.add_player(early)  # type: ignore[attr-defined]  # waits: nothing cached yet
    before = {11: 12000, 12: 15000, 14: 21000}  # 13 is still on its way
    for seq, ts in before.items():
        stream.forward("video", packet(DELTA, seq, ts), seq, ts)  # type: ignore[attr-defined]
    stream.forward("video", packet(RTP, 10, 9000), 10, 9000)  # type: ignore[attr-defined]
    track = stream.tracks["video"]  # type: ignore[attr-defined]
    assert [s for s, _ in track.gop or ()] == [10, 11, 12, 14]
    joiner = FakePlayer()
    stream.add_player(joiner)  # type: ignore[attr-defined]
    stream.forward("video", packet(DELTA, 13, 18000), 13, 18000)  # type: ignore[attr-defined]
    async with asyncio.timeout(2):
        while len(early.sent) < 5 or len(joiner.sent) < 5:
            await asyncio.sleep(0.005)
    for player in (early, joiner):
        ts = [struct.unpack_from("!I", p, 4)[0] for p in player.sent]
        assert ts == [9000, 12000, 15000, 21000, 18000], ts
        assert sorted((s - seqs(player)[0]) & 0xFFFF for s in seqs(player)) == [0, 1, 2, 3, 4]
    assert publisher.keyframes == 1
