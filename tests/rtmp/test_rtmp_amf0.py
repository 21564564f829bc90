"""rtmp.amf0: round trips, bytes captured from FFmpeg 5.1, and hostile input (only AmfError escapes)."""

from __future__ import annotations

import random
import struct
from datetime import UTC, datetime

import pytest

from rtcdn.rtmp import amf0
from rtcdn.rtmp.amf0 import UNDEFINED, AmfError, EcmaArray

# FFmpeg 5.1 publishing rtmp://127.0.0.1:39573/live/x: its connect command and its @setDataFrame
FFMPEG_CONNECT = bytes.fromhex(
    "020007636f6e6e656374003ff00000000000000300036170700200046c69766500047479706502000a6e6f6e7072"
    "69766174650008666c617368566572020024464d4c452f332e302028636f6d70617469626c653b204c6176663539"
    "2e32372e313030290005746355726c02001b72746d703a2f2f3132372e302e302e313a33393537332f6c69766500"
    "0009"
)
FFMPEG_METADATA = bytes.fromhex(
    "02000d40736574446174614672616d6502000a6f6e4d65746144617461080000000d00086475726174696f6e003f"
    "f000000000000000057769647468004074000000000000000668656967687400406e000000000000000d76696465"
    "6f646174617261746500000000000000000000096672616d6572617465004039000000000000000c766964656f63"
    "6f646563696400401c000000000000000d617564696f6461746172617465004050d88000000000000f617564696f"
    "73616d706c65726174650040e7700000000000000f617564696f73616d706c6573697a6500403000000000000000"
    "0673746572656f0100000c617564696f636f64656369640040240000000000000007656e636f64657202000d4c61"
    "766635392e32372e313030000866696c6573697a65000000000000000000000009"
)
FFMPEG_DELETE_STREAM = bytes.fromhex("02000c64656c65746553747265616d00401c00000000000005003ff0000000000000")


@pytest.mark.parametrize(
    "value",
    [
        0.0,
        -1.5,
        1e300,
        True,
        False,
        "",
        "live",
        "ünïcødé ✓",
        "x" * 65535,
        "y" * 65536,  # long string
        None,
        {},
        {"app": "live", "n": 3.0, "nested": {"a": [1.0, "b", None, {"c": False}]}},
        EcmaArray(width=640.0, height=480.0),
        [],
        [1.0, [2.0, [3.0]], {"k": "v"}],
        datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC),
    ],
)
def test_round_trip(value: object) -> None:
    data = amf0.encode(value)
    assert amf0.decode(data) == [value]
    assert type(amf0.decode(data)[0]) is type(value)


def test_ints_are_numbers_and_undefined_decodes_as_none() -> None:
    assert amf0.encode(3) == amf0.encode(3.0) == b"\x00" + struct.pack("!d", 3.0)
    assert amf0.encode(True) == b"\x01\x01"
    assert amf0.encode(UNDEFINED) == b"\x06"
    assert amf0.decode(b"\x06\x05\x0d") == [None, None, None]
    assert amf0.encode((1, 2)) == amf0.encode([1.0, 2.0])
    assert amf0.encode("x" * 65536)[:1] == b"\x0c" and amf0.encode("x" * 65535)[:1] == b"\x02"


def test_ffmpeg_connect_command() -> None:
    assert amf0.decode(FFMPEG_CONNECT) == [
        "connect",
        1.0,
        {
            "app": "live",
            "type": "nonprivate",
            "flashVer": "FMLE/3.0 (compatible; Lavf59.27.100)",
            "tcUrl": "rtmp://127.0.0.1:39573/live",
        },
    ]
    # Our encoder writes the same bytes (key order is kept)
    assert amf0.encode(*amf0.decode(FFMPEG_CONNECT)) == FFMPEG_CONNECT
    assert amf0.decode(FFMPEG_DELETE_STREAM) == ["deleteStream", 7.0, None, 1.0]


def test_ffmpeg_metadata_is_an_ecma_array() -> None:
    name, frame, meta = amf0.decode(FFMPEG_METADATA)
    assert (name, frame) == ("@setDataFrame", "onMetaData")
    assert isinstance(meta, EcmaArray)
    assert meta["width"] == 320.0 and meta["audiocodecid"] == 10.0 and meta["stereo"] is False
    assert meta["encoder"] == "Lavf59.27.100" and len(meta) == 13
    assert amf0.encode(name, frame, meta) == FFMPEG_METADATA


def test_decode_one_and_offsets() -> None:
    data = amf0.encode("a", 2.0, {"b": None})
    value, pos = amf0.decode_one(data)
    assert value == "a" and pos == 4
    value, pos = amf0.decode_one(data, pos)
    assert value == 2.0 and pos == 13


def test_encode_refuses_unknown_types() -> None:
    with pytest.raises(TypeError, match="cannot encode bytes"):
        amf0.encode(b"raw")
    with pytest.raises(TypeError, match="keys must be str"):
        amf0.encode({1: 2})
    cycle: list[object] = []
    cycle.append(cycle)
    with pytest.raises(ValueError, match="nests deeper"):
        amf0.encode(cycle)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x07\x00\x01", "reference"),
        (b"\x10\x00\x01x\x00\x00\x09", "typed object"),
        (b"\x11\x01", "AMF3"),
        (b"\x04", "movie clip"),
        (b"\x0e", "record set"),
        (b"\x20", "unknown AMF0 type marker 0x20"),
        (b"\x09", "object-end marker outside an object"),
        (b"\x00\x01\x02", "truncated"),
        (b"\x02\x00\x05ab", "truncated"),
        (b"\x03\x00\x01a\x00", "truncated"),
        (b"\x03\x00\x01a\x05", "truncated"),  # no object end
        (b"\x08\x00\x00\x00\x01", "truncated"),
        (b"\x0a\xff\xff\xff\xff\x05", "strict array"),
        (b"\x0b" + struct.pack("!d", float("nan")) + b"\x00\x00", "date"),
        (b"\x0b" + struct.pack("!d", 1e300) + b"\x00\x00", "date"),
    ],
)
def test_hostile_values(data: bytes, message: str) -> None:
    with pytest.raises(AmfError, match=message):
        amf0.decode(data)


def test_limits() -> None:
    deep = b"\x03\x00\x01a" * 40 + b"\x05" + b"\x00\x00\x09" * 40
    with pytest.raises(AmfError, match="deeper than 32"):
        amf0.decode(deep)
    assert amf0.decode(deep, max_depth=64)
    deep_arrays = b"\x0a\x00\x00\x00\x01" * 40 + b"\x05"
    with pytest.raises(AmfError, match="deeper"):
        amf0.decode(deep_arrays)
    many = b"\x0a" + struct.pack("!I", 20_000) + b"\x05" * 20_000
    with pytest.raises(AmfError, match="element limit"):
        amf0.decode(many)
    flat = b"\x05" * 10_001
    with pytest.raises(AmfError, match="too many values"):
        amf0.decode(flat)
    assert len(amf0.decode(flat, max_elements=20_000)) == 10_001


def _valid_samples() -> list[bytes]:
    return [
        FFMPEG_CONNECT,
        FFMPEG_METADATA,
        FFMPEG_DELETE_STREAM,
        amf0.encode(
            "x", [1.0, {"a": EcmaArray(b=[True, None])}], datetime(2020, 1, 1, tzinfo=UTC), "z" * 70000
        ),
    ]


def test_random_and_mutated_input_raises_only_amf_error() -> None:
    rng = random.Random(1234)
    inputs = [rng.randbytes(rng.randrange(1, 64)) for _ in range(3000)]
    for sample in _valid_samples():
        inputs += [sample[:cut] for cut in range(0, len(sample), max(1, len(sample) // 200))]
        for _ in range(400):
            mutated = bytearray(sample)
            for _ in range(rng.randrange(1, 4)):
                mutated[rng.randrange(len(mutated))] = rng.randrange(256)
            inputs.append(bytes(mutated))
    decoded = 0
    for data in inputs:
        try:
            amf0.decode(data)
            decoded += 1
        except AmfError:
            pass
    assert decoded > 100  # some mutations still decode (a changed number, a changed letter)
