"""rtmp.chunk: hand-written chunk streams from the spec, FFmpeg's real bytes, every split, the limits."""

from __future__ import annotations

import random
import struct
from collections.abc import Sequence

import pytest
from rtmp_media import TS_OFFSET_S, Capture

from rtcdn.rtmp import amf0, chunk, flv
from rtcdn.rtmp.chunk import AckWindow, ChunkReader, ChunkWriter, Message
from rtcdn.rtmp.codecs import AvcConfig, split_avcc
from rtcdn.rtmp.errors import RtmpProtocolError

P32 = bytes(range(32))


def feed_all(data: bytes, cuts: Sequence[int] = (), reader: ChunkReader | None = None) -> list[Message]:
    reader = reader or ChunkReader()
    out: list[Message] = []
    last = 0
    for cut in [*cuts, len(data)]:
        out += reader.feed(data[last:cut])
        last = cut
    return out


def every_split(data: bytes, expected: list[Message]) -> None:
    """One or two cuts anywhere give the same messages; so does byte-by-byte feeding."""
    for i in range(len(data) + 1):
        assert feed_all(data, (i,)) == expected, f"cut at {i}"
    step = max(1, len(data) // 60)
    for i in range(0, len(data), step):
        for j in range(i, len(data), step):
            assert feed_all(data, (i, j)) == expected, f"cuts at {i}, {j}"
    assert feed_all(data, range(1, len(data))) == expected


def test_spec_example_1_type_2_and_3_headers() -> None:
    """RTMP spec §5.3.2.1: four audio messages, type 0 then 2 then 3 then 3 (delta 20)."""
    data = (
        bytes.fromhex("03 0003e8 000020 08 39300000") + P32
        + bytes.fromhex("83 000014") + P32
        + b"\xc3" + P32
        + b"\xc3" + P32
    )  # fmt: skip
    expected = [Message(8, 12345, ts, P32) for ts in (1000, 1020, 1040, 1060)]
    assert feed_all(data) == expected
    every_split(data, expected)


def test_spec_example_2_one_message_in_three_chunks() -> None:
    """RTMP spec §5.3.2.2: a 307-byte video message cut at 128 bytes: type 0, 3, 3."""
    body = bytes(i % 251 for i in range(307))
    data = (
        bytes.fromhex("04 0003e8 000133 09 3a300000") + body[:128]
        + b"\xc4" + body[128:256]
        + b"\xc4" + body[256:]
    )  # fmt: skip
    expected = [Message(9, 12346, 1000, body)]
    every_split(data, expected)
    assert ChunkWriter().write(expected[0], csid=4) == data


def test_type_1_header_and_type_3_new_message_reuse_the_delta() -> None:
    data = (
        bytes.fromhex("05 000064 000004 14 01000000") + b"abcd"  # ts 100, stream 1
        + bytes.fromhex("45 00000a 000002 12") + b"xy"  # type 1: +10, new length and type
        + b"\xc5" + b"zz"  # type 3 starting a message: +10 again
    )  # fmt: skip
    expected = [Message(20, 1, 100, b"abcd"), Message(18, 1, 110, b"xy"), Message(18, 1, 120, b"zz")]
    every_split(data, expected)


def test_type_3_after_type_0_adds_the_type_0_timestamp_like_ffmpeg() -> None:
    data = bytes.fromhex("06 000028 000001 09 01000000") + b"a" + b"\xc6" + b"b"
    assert [m.timestamp for m in feed_all(data)] == [40, 80]


@pytest.mark.parametrize(
    ("csid", "basic"),
    [(2, "02"), (63, "3f"), (64, "0000"), (300, "00ec"), (319, "00ff"), (320, "010001"), (65599, "01ffff")],
)
def test_basic_header_forms(csid: int, basic: str) -> None:
    msg = Message(8, 1, 5, bytes(200))
    data = ChunkWriter().write(msg, csid=csid)
    assert data.startswith(bytes.fromhex(basic))
    continuation = bytes([0xC0 | bytes.fromhex(basic)[0]]) + bytes.fromhex(basic)[1:]
    assert data[len(basic) // 2 + 11 + 128 :].startswith(continuation)
    every_split(data, [msg])
    with pytest.raises(ValueError, match="out of range"):
        ChunkWriter().write(msg, csid=65600)


def test_extended_timestamp_on_type_0_and_continuations() -> None:
    msg = Message(9, 1, 0x01000000, bytes(range(200)))
    data = ChunkWriter().write(msg, csid=6)
    header = bytes.fromhex("06 ffffff 0000c8 09 01000000 01000000")
    assert data.startswith(header)
    assert data[len(header) + 128 : len(header) + 133] == bytes.fromhex("c6 01000000")  # repeated on type 3
    every_split(data, [msg])


def test_extended_timestamp_left_out_of_continuations_is_tolerated() -> None:
    body = bytes(range(200))
    data = bytes.fromhex("06 ffffff 0000c8 09 01000000 01000000") + body[:128] + b"\xc6" + body[128:]
    every_split(data, [Message(9, 1, 0x01000000, body)])


def test_extended_delta_on_type_3_new_messages() -> None:
    data = (
        bytes.fromhex("07 000000 000001 08 01000000") + b"a"  # ts 0
        + bytes.fromhex("87 ffffff 01000000") + b"b"  # type 2, extended delta 0x01000000
        + bytes.fromhex("c7 01000000") + b"c"  # type 3 new message: the extended delta again
    )  # fmt: skip
    assert [m.timestamp for m in feed_all(data)] == [0, 0x01000000, 0x02000000]


def test_timestamp_delta_wraps_at_32_bits() -> None:
    data = bytes.fromhex("08 ffffff 000001 08 01000000 fffffff0") + b"a" + bytes.fromhex("88 000020") + b"b"
    assert [m.timestamp for m in feed_all(data)] == [0xFFFFFFF0, 0x10]
    wrapped = ChunkWriter().write(Message(8, 1, 0x1_0000_0005, b"x"))
    assert feed_all(wrapped)[0].timestamp == 5


def test_set_chunk_size_from_the_peer_applies_to_the_next_bytes() -> None:
    writer = ChunkWriter()
    first = Message(20, 0, 0, bytes(300))
    data = writer.write(first) + writer.set_chunk_size(256)
    second = Message(9, 1, 40, bytes(range(256)) * 2 + b"end")
    data += writer.write(second)
    assert data.count(b"\xc6") >= 2  # 515 bytes in 256-byte chunks
    reader = ChunkReader()
    msgs = feed_all(data, reader=reader)
    assert [m for m in msgs if m.type_id != chunk.SET_CHUNK_SIZE] == [first, second]
    assert reader.chunk_size == 256
    every_split(data, msgs)


def test_abort_drops_the_incomplete_message() -> None:
    writer = ChunkWriter()
    partial = writer.write(Message(9, 1, 0, bytes(300)), csid=4)[: 12 + 128]
    reader = ChunkReader()
    assert reader.feed(partial) == [] and reader.buffered == 300
    msgs = reader.feed(writer.write(chunk.abort(4)) + writer.write(Message(9, 1, 7, b"new"), csid=4))
    assert msgs[-1] == Message(9, 1, 7, b"new") and reader.buffered == 0


def test_zero_length_messages() -> None:
    data = bytes.fromhex("04 000001 000000 08 01000000") + bytes.fromhex("84 000001")
    every_split(data, [Message(8, 1, 1, b""), Message(8, 1, 2, b"")])


def test_random_round_trips_with_chunk_size_changes() -> None:
    rng = random.Random(99)
    writer = ChunkWriter()
    data = bytearray()
    sent: list[Message] = []
    ts = 0
    for _ in range(300):
        if rng.random() < 0.05:
            size = rng.choice([1, 2, 7, 128, 4096, 65536])
            data += writer.set_chunk_size(size)
            sent.append(chunk.set_chunk_size(size))
        ts += rng.choice([0, 1, 33, 0xFFFFFF, 0x7FFFFFFF])
        msg = Message(
            rng.choice([8, 9, 18, 20]), rng.randrange(3), ts & 0xFFFFFFFF, rng.randbytes(rng.randrange(600))
        )
        data += writer.write(msg, csid=rng.choice([3, 4, 5, 64, 400, None]))  # type: ignore[arg-type]
        sent.append(msg)
    blob = bytes(data)
    assert feed_all(blob) == sent
    for seed in range(5):
        cuts = sorted(random.Random(seed).sample(range(1, len(blob)), 500))
        assert feed_all(blob, cuts) == sent


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (bytes.fromhex("44 000000 000004 08"), "starts with a type 1"),
        (bytes.fromhex("c3"), "starts with a type 3"),
        (bytes.fromhex("03 000000 800001 09 01000000"), "8388609 bytes .* over the limit of 8388608"),
        (bytes.fromhex("02 000000 000004 01 00000000 00000000"), "invalid chunk size 0"),
        (bytes.fromhex("02 000000 000004 01 00000000 80000000"), "invalid chunk size"),
        (bytes.fromhex("02 000000 000004 01 00000000 7fffffff"), "peer chunk size 2147483647 is over the limit"),
        (bytes.fromhex("02 000000 000002 01 00000000 0001"), "shorter than 4 bytes"),
        (bytes.fromhex("03 000000 000100 09 01000000") + bytes(128) + bytes.fromhex("03 000000 000001 09 01000000"),
         "while a message is still incomplete"),
    ],
)  # fmt: skip
def test_protocol_errors(data: bytes, message: str) -> None:
    with pytest.raises(RtmpProtocolError, match=message):
        ChunkReader().feed(data)


def test_limits_on_chunk_streams_and_buffered_bytes() -> None:
    writer = ChunkWriter()
    many = b"".join(writer.write(Message(8, 1, 0, b"x"), csid=c) for c in range(3, 3 + 65))
    with pytest.raises(RtmpProtocolError, match="more than 64 chunk streams"):
        ChunkReader().feed(many)
    assert len(ChunkReader(max_chunk_streams=100).feed(many)) == 65
    # three 7 MiB messages started at once: over 16 MiB buffered
    starts = b"".join(writer.write(Message(9, 1, 0, bytes(7 << 20)), csid=c)[: 12 + 128] for c in (4, 5, 6))
    with pytest.raises(RtmpProtocolError, match="more than 16777216 bytes"):
        ChunkReader().feed(starts)
    assert ChunkReader(max_message_size=1000).max_message_size == 1000
    with pytest.raises(RtmpProtocolError, match=r"1001 bytes .* over the limit of 1000"):
        ChunkReader(max_message_size=1000).feed(writer.write(Message(9, 1, 0, bytes(1001))))
    with pytest.raises(ValueError, match="too long"):
        writer.write(Message(9, 1, 0, bytes(1 << 24)))


def test_control_messages() -> None:
    assert chunk.window_ack_size(2_500_000).payload == struct.pack("!I", 2_500_000)
    assert chunk.set_peer_bandwidth(5, chunk.LIMIT_DYNAMIC).payload == bytes.fromhex("0000000502")
    assert chunk.parse_u32(chunk.acknowledgement(1 << 32 | 7)) == 7
    ping = chunk.user_control(chunk.PING_REQUEST, 1234)
    assert chunk.parse_user_control(ping.payload) == (chunk.PING_REQUEST, 1234, None)
    buffer = chunk.user_control(chunk.SET_BUFFER_LENGTH, 1, 3000)
    assert chunk.parse_user_control(buffer.payload) == (chunk.SET_BUFFER_LENGTH, 1, 3000)
    with pytest.raises(RtmpProtocolError, match="too short"):
        chunk.parse_user_control(b"\x00\x06")
    window = AckWindow()
    assert window.due(10_000) is None
    window.size = 1000
    assert [window.due(n) for n in (500, 1000, 1500, 2100, 1 << 32)] == [None, 1000, None, 2100, 0]


def test_split_aggregate() -> None:
    def tag(kind: int, ts: int, body: bytes) -> bytes:
        head = bytes([kind]) + len(body).to_bytes(3, "big") + (ts & 0xFFFFFF).to_bytes(3, "big")
        return head + bytes([ts >> 24]) + b"\x00\x00\x00" + body + (11 + len(body)).to_bytes(4, "big")

    body = tag(9, 5000, b"\x17\x01v1") + tag(8, 5020, b"\xaf\x01a") + tag(9, 5040, b"\x27\x01v2")
    msgs = chunk.split_aggregate(Message(chunk.AGGREGATE, 1, 100, body))
    assert msgs == [
        Message(9, 1, 100, b"\x17\x01v1"),
        Message(8, 1, 120, b"\xaf\x01a"),
        Message(9, 1, 140, b"\x27\x01v2"),
    ]
    with pytest.raises(RtmpProtocolError, match="overruns"):
        chunk.split_aggregate(Message(chunk.AGGREGATE, 1, 0, body[:-6]))


def test_hostile_chunk_streams_raise_only_protocol_errors() -> None:
    rng = random.Random(7)
    base = ChunkWriter().write(Message(20, 0, 0, amf0.encode("connect", 1.0, {"app": "live"}))) * 3
    for _ in range(2000):
        data = bytearray(rng.choice([base, rng.randbytes(300)]))
        for _ in range(rng.randrange(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        try:
            feed_all(bytes(data), sorted(rng.sample(range(1, len(data)), 5)))
        except RtmpProtocolError:
            pass


# ------------------------------------------------------------------------------ real FFmpeg bytes


def check_ffmpeg_capture(capture: Capture) -> None:
    data = capture.data
    msgs = feed_all(data)
    # FFmpeg's C1 carries the Flash Player 9 digest scheme (version field 9.0.124.2)
    assert capture.c1[4:8] == bytes([9, 0, 124, 2])
    # It sends connect in 128-byte chunks, then switches to 4096
    assert msgs[0].type_id == chunk.COMMAND_AMF0 and len(msgs[0].payload) > 128
    assert msgs[1] == chunk.set_chunk_size(4096)
    names = [amf0.decode(m.payload)[0] for m in msgs if m.type_id == chunk.COMMAND_AMF0]
    assert names == [
        "connect",
        "releaseStream",
        "FCPublish",
        "createStream",
        "publish",
        "FCUnpublish",
        "deleteStream",
    ]
    connect = amf0.decode(msgs[0].payload)[2]
    assert (
        isinstance(connect, dict)
        and connect["app"] == "live"
        and str(connect["flashVer"]).startswith("FMLE/3.0")
    )
    video = [m for m in msgs if m.type_id == chunk.VIDEO]
    audio = [m for m in msgs if m.type_id == chunk.AUDIO]
    assert len(video) >= 20 and len(audio) >= 40
    tags = [flv.parse_video(m.payload) for m in video]
    assert tags[0].sequence_header and tags[0].codec == "avc1"
    assert tags[1].keyframe and len(video[1].payload) > 4096  # a keyframe in several chunks
    config = AvcConfig.parse(tags[0].data)
    assert tags[-1].packet_type == flv.PacketType.SEQUENCE_END  # FFmpeg ends with an end of sequence
    for tag in tags[1:-1]:
        assert tag.packet_type == flv.PacketType.CODED_FRAMES and split_avcc(tag.data, config.length_size)
    # The timestamps are past 0xFFFFFF ms: extended timestamps, also on type-3 continuation chunks
    media_ts = [m.timestamp for m in video[1:]]
    assert media_ts[0] == TS_OFFSET_S * 1000 and media_ts == sorted(media_ts)
    assert flv.parse_audio(audio[0].payload).sequence_header
    meta = flv.parse_metadata(next(m for m in msgs if m.type_id == chunk.DATA_AMF0).payload)
    assert meta is not None and meta["width"] == 320.0
    # Byte by byte and in random pieces: the same messages
    assert feed_all(data, range(1, len(data))) == msgs
    for seed in range(3):
        cuts = sorted(random.Random(seed).sample(range(1, len(data)), 2000))
        assert feed_all(data, cuts) == msgs


def test_ffmpeg5_publish_bytes(capture5: Capture) -> None:
    check_ffmpeg_capture(capture5)


def test_ffmpeg9_publish_bytes(capture9: Capture) -> None:
    check_ffmpeg_capture(capture9)
