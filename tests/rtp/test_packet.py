"""rtp: header rewriting, sinks, history, RTX unwrapping on raw bytes."""

from __future__ import annotations

import struct

import pytest
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

from rtcdn.rtp import (
    PacketHistory,
    RtpError,
    RtpRewriter,
    RtpSink,
    extension_id_map,
    header_length,
    keyframe_detector,
    stamp,
    unwrap_rtx,
)

MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
ABS = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"


def ext_map(ids: dict[int, str]) -> HeaderExtensionsMap:
    m = HeaderExtensionsMap()
    m.configure(
        RTCRtpParameters(
            headerExtensions=[RTCRtpHeaderExtensionParameters(id=i, uri=u) for i, u in ids.items()]
        )
    )
    return m


def packet(
    seq: int = 100, pt: int = 96, ext: dict[int, str] | None = None, payload: bytes = b"\x10abc"
) -> bytes:
    p = RtpPacket(
        payload_type=pt, sequence_number=seq, timestamp=1234, ssrc=0x11223344, marker=1, payload=payload
    )
    p.extensions.mid = "1"
    p.extensions.abs_send_time = 0x123456
    return p.serialize(ext_map(ext or {}))


def test_rewrite_without_extensions_changes_only_pt() -> None:
    data = packet(pt=96)
    out = RtpRewriter(102, {}).rewrite(data)
    parsed = RtpPacket.parse(out)
    assert (parsed.payload_type, parsed.marker, parsed.sequence_number, parsed.payload) == (
        102,
        1,
        100,
        b"\x10abc",
    )


def test_rewrite_maps_extension_ids_and_drops_mid() -> None:
    data = packet(ext={1: MID, 3: ABS})
    id_map = extension_id_map({1: MID, 3: ABS}, {MID: 4, ABS: 2})
    assert id_map == {3: 2}
    out = RtpRewriter(98, id_map).rewrite(data)
    parsed = RtpPacket.parse(out, ext_map({2: ABS, 4: MID}))
    assert parsed.extensions.abs_send_time == 0x123456
    assert parsed.extensions.mid is None
    assert parsed.payload == b"\x10abc" and parsed.payload_type == 98


def test_rewrite_drops_extension_block_when_nothing_maps() -> None:
    out = RtpRewriter(98, {}).rewrite(packet(ext={1: MID, 3: ABS}))
    assert out[0] & 0x10 == 0
    assert header_length(out) == 12
    assert RtpPacket.parse(out).payload == b"\x10abc"


def test_sink_patches_sequence_and_ssrc_consistently() -> None:
    sent: list[bytes] = []
    ssrc = bytes.fromhex("aabbccdd")
    sink = RtpSink("video", 0xAABBCCDD, RtpRewriter(96, {}), lambda t, seq: sent.append(stamp(t, seq, ssrc)))
    rewriter = RtpRewriter(96, {})
    for seq in (65534, 65535, 0, 1):
        sink.send(rewriter.rewrite(packet(seq=seq)), seq)
    seqs = [struct.unpack("!H", p[2:4])[0] for p in sent]
    assert [(b - seqs[0]) & 0xFFFF for b in seqs] == [0, 1, 2, 3]
    assert all(p[8:12] == bytes.fromhex("aabbccdd") for p in sent)
    assert sink.publisher_seq(seqs[2]) == 0
    assert sink.packets == 4


def test_history_returns_only_exact_sequence() -> None:
    h = PacketHistory()
    h.add(5, b"five")
    assert h.get(5) == b"five"
    h.add(5 + 1024, b"later")
    assert h.get(5) is None and h.get(5 + 1024) == b"later"


def test_unwrap_rtx() -> None:
    original = packet(seq=777, pt=96, payload=b"\x90payload")
    rtx = RtpPacket(payload_type=97, sequence_number=5, timestamp=1234, ssrc=0x55, marker=1)
    rtx.payload = struct.pack("!H", 777) + b"\x90payload"
    out = unwrap_rtx(rtx.serialize(), payload_type=96, ssrc=0x11223344)
    parsed = RtpPacket.parse(out)
    assert (parsed.sequence_number, parsed.payload_type, parsed.ssrc, parsed.payload) == (
        777,
        96,
        0x11223344,
        b"\x90payload",
    )
    assert RtpPacket.parse(original).payload == parsed.payload


@pytest.mark.parametrize("data", [b"", b"\x80" * 5, b"\x40" * 20, b"\x90\x60" + b"\x00" * 12])
def test_header_length_rejects_garbage(data: bytes) -> None:
    with pytest.raises(RtpError):
        header_length(data)


@pytest.mark.parametrize(
    ("mime", "payload", "key"),
    [
        ("video/VP8", b"\x10\x00\x9d", True),  # S=1 PID=0, P=0
        ("video/VP8", b"\x10\x01\x9d", False),  # inter frame
        ("video/VP8", b"\x00\x00\x9d", False),  # not the start of a partition
        ("video/VP8", b"\x90\xe0\x81\x23\x05\x00\x00", True),  # X, I (15-bit id), L, T
        ("video/VP9", b"\x08rest", True),
        ("video/VP9", b"\x48rest", False),
        ("video/H264", b"\x65idr", True),
        ("video/H264", b"\x41slice", False),
        ("video/H264", b"\x18\x00\x02\x67\x42\x00\x02\x68\xce", True),  # STAP-A with SPS
        ("video/H264", b"\x7c\x85fu", True),  # FU-A start of IDR
        ("video/H264", b"\x7c\x05fu", False),  # FU-A continuation
        ("video/H264", b"", False),
    ],
)
def test_keyframe_detectors(mime: str, payload: bytes, key: bool) -> None:
    detect = keyframe_detector(mime)
    assert detect is not None
    data = packet(payload=payload) if payload else bytes(12)
    assert detect(data, header_length(data) if payload else 12) is key
    assert keyframe_detector("video/AV1") is None
