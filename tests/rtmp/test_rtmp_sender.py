"""rtmp.sender: the drop policy (video to the next keyframe, audio over a larger bound), the stall abort."""

from __future__ import annotations

import time

import pytest

from rtcdn.rtmp.chunk import AUDIO, DATA_AMF0, VIDEO, Message
from rtcdn.rtmp.sender import MediaSender

KEY = b"\x17\x01\x00\x00\x00" + bytes(100)
INTER = b"\x27\x01\x00\x00\x00" + bytes(100)
CONFIG = b"\x17\x00\x00\x00\x00" + bytes(30)
AUDIO_CONFIG = b"\xaf\x00\x11\x90"
SOUND = b"\xaf\x01" + bytes(50)


class FakeLink:
    def __init__(self) -> None:
        self.sent: list[Message] = []
        self.backlog = 0
        self.aborted: str | None = None

    def send_message(self, msg: Message) -> None:
        self.sent.append(msg)

    def write_buffer_size(self) -> int:
        return self.backlog

    def abort(self, reason: str) -> None:
        self.aborted = reason


def test_video_drops_until_the_next_keyframe_audio_later() -> None:
    link = FakeLink()
    sender = MediaSender(link, 1, video_queue_bytes=1000, audio_queue_bytes=5000, stall_timeout=60)
    assert sender.send_video(0, KEY) and sender.send_video(40, INTER)
    link.backlog = 950  # the socket is behind
    assert not sender.send_video(80, INTER)
    assert sender.send_audio(85, SOUND)  # audio still fits under its larger bound
    assert sender.send_video(90, CONFIG)  # sequence headers always go
    link.backlog = 0  # caught up, but the decoder needs a keyframe now
    assert not sender.send_video(120, INTER)
    assert sender.send_video(160, KEY) and sender.send_video(200, INTER)
    link.backlog = 4990
    assert not sender.send_audio(210, SOUND) and sender.send_audio(210, AUDIO_CONFIG)
    sender.send_metadata({"width": 1.0})
    assert sender.stats.video_dropped == 2 and sender.stats.audio_dropped == 1
    assert sender.stats.video_sent == 5 and sender.stats.audio_sent == 2
    kinds = [(m.type_id, m.timestamp) for m in link.sent]
    assert kinds == [
        (VIDEO, 0), (VIDEO, 40), (AUDIO, 85), (VIDEO, 90), (VIDEO, 160), (VIDEO, 200), (AUDIO, 210), (DATA_AMF0, 0)
    ]  # fmt: skip
    assert all(m.stream_id == 1 for m in link.sent)


def test_disabled_tracks_and_closed_sender() -> None:
    link = FakeLink()
    sender = MediaSender(link, 3)
    sender.audio_enabled = False
    assert not sender.send_audio(0, SOUND) and sender.send_video(0, KEY)
    sender.closed = True
    assert not sender.send_video(1, KEY)
    sender.send_metadata({})
    assert len(link.sent) == 1 and sender.stats.audio_dropped == 0
    assert MediaSender(link, 1).send_video(1 << 32 | 5, KEY) and link.sent[-1].timestamp == 5


def test_a_stalled_peer_is_aborted(monkeypatch: pytest.MonkeyPatch) -> None:
    link = FakeLink()
    sender = MediaSender(link, 1, video_queue_bytes=1000, stall_timeout=5)
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    link.backlog = 1500
    assert not sender.send_video(0, KEY)
    now[0] += 4
    assert not sender.send_video(40, KEY) and link.aborted is None
    link.backlog = 0
    now[0] += 0.1
    assert sender.send_video(80, KEY)  # drained: the stall clock restarts
    link.backlog = 1500
    sender.send_video(120, KEY)
    now[0] += 5.5
    sender.send_video(160, KEY)
    assert link.aborted is not None and "not read its data for 5 s" in link.aborted
    assert sender.closed and not sender.send_audio(0, SOUND)
