"""rtp.packetize: frames → RTP packets (H.264, VP8, VP9, audio) and the H.264 fmtp."""

from __future__ import annotations

import struct

import pytest
from aiortc.codecs.h264 import H264PayloadDescriptor
from aiortc.codecs.vpx import VpxPayloadDescriptor
from rtp_media import seq_of, vpx_frames, x264_access_units

from rtcdn.rtp.frame import Frame, annexb
from rtcdn.rtp.packet import header_length, keyframe_detector
from rtcdn.rtp.packetize import Packetizer, h264_fmtp


def video(codec: str, *payload: bytes, key: bool = True, ts: int = 9000) -> Frame:
    return Frame("video", codec, payload, ts, 90000, key, 0.0)


def header(packet: bytes) -> tuple[int, bool, int, int, int]:
    b0, b1, _seq, ts, ssrc = struct.unpack_from("!BBHII", packet)
    return b0, bool(b1 & 0x80), b1 & 0x7F, ts, ssrc


def test_rtp_header_fields() -> None:
    p = Packetizer("opus", 111, 0xCAFEBABE, 48000)
    first = p.seq
    packets = p.packetize(Frame("audio", "opus", (b"\xfc\x01\x02",), 0x1_0000_0005, 48000, True, 0.0))
    assert len(packets) == 1
    b0, marker, pt, ts, ssrc = header(packets[0])
    assert (b0, marker, pt, ts, ssrc) == (0x80, True, 111, 5, 0xCAFEBABE)
    assert header_length(packets[0]) == 12 and packets[0][12:] == b"\xfc\x01\x02"
    assert seq_of(packets[0]) == first and p.seq == (first + 1) & 0xFFFF
    assert (p.packets, p.octets) == (1, 3)


def test_sequence_numbers_wrap_and_start_random() -> None:
    assert len({Packetizer("pcmu", 0, 1, 8000).seq for _ in range(8)}) > 1
    p = Packetizer("pcma", 8, 1, 8000)
    p.seq = 65534
    seqs = [
        seq_of(p.packetize(Frame("audio", "pcma", (b"\xd5" * 160,), i * 160, 8000, True, 0.0))[0])
        for i in range(4)
    ]
    assert seqs == [65534, 65535, 0, 1]


def test_audio_frame_too_big_or_wrong_codec() -> None:
    p = Packetizer("opus", 111, 1, 48000, mtu=300)
    with pytest.raises(ValueError):
        p.packetize(Frame("audio", "opus", (b"x" * 289,), 0, 48000, True, 0.0))
    assert len(p.packetize(Frame("audio", "opus", (b"x" * 288,), 0, 48000, True, 0.0))[0]) == 300
    with pytest.raises(ValueError):
        p.packetize(Frame("audio", "pcmu", (b"x",), 0, 8000, True, 0.0))
    with pytest.raises(ValueError):
        Packetizer("aac", 97, 1, 44100)


def test_h264_small_nal_units_share_a_stap_a() -> None:
    sei, sps, pps, idr = (
        b"\x06\x05\x01\x80",
        b"\x67\x42\xc0\x1f\xda",
        b"\x68\xce\x3c\x80",
        b"\x65" + bytes(100),
    )
    p = Packetizer("h264", 102, 1, 90000)
    (packet,) = p.packetize(video("h264", sei, sps, pps, idr))
    payload = packet[12:]
    assert payload[0] == 0x78  # F=0, NRI=3 (the highest), type 24
    assert payload[1:] == b"".join(struct.pack("!H", len(n)) + n for n in (sei, sps, pps, idr))
    assert header(packet)[1]  # marker
    assert keyframe_detector("video/H264")(packet, 12)  # type: ignore[misc]


def test_h264_fu_a_and_single_nal_units() -> None:
    sps, pps = b"\x67\x42\xc0\x1f\xda", b"\x68\xce\x3c\x80"
    idr = b"\x65" + bytes(i & 0xFF for i in range(5000))
    single = b"\x41" + b"\x01" * 1184  # fits alone, not with others
    small = b"\x01\x02"
    p = Packetizer("h264", 102, 1, 90000, mtu=1200)
    packets = p.packetize(video("h264", sps, pps, idr, single, small))
    assert all(len(x) <= 1200 for x in packets)
    types = [x[12] & 0x1F for x in packets]
    assert types == [24, 28, 28, 28, 28, 28, 1, 1]
    assert [header(x)[1] for x in packets] == [False] * 7 + [True]
    fus = [x[12:] for x in packets[1:6]]
    assert [fu[1] & 0xC0 for fu in fus] == [0x80, 0, 0, 0, 0x40]
    assert all(fu[0] == 0x7C and fu[1] & 0x1F == 5 for fu in fus)
    assert max(len(f) for f in fus) - min(len(f) for f in fus) <= 1  # evenly split
    assert b"".join(fu[2:] for fu in fus) == idr[1:]
    # aiortc's depayloader rebuilds the same Annex B stream
    depayloaded = b"".join(H264PayloadDescriptor.parse(x[12:])[1] for x in packets)
    assert depayloaded == annexb(video("h264", sps, pps, idr, single, small))


def test_h264_real_access_units_through_aiortc() -> None:
    p = Packetizer("h264", 102, 1, 90000)
    for nals, key in x264_access_units(3, keyframes=(0,)):
        frame = video("h264", *nals, key=key)
        packets = p.packetize(frame)
        assert all(len(x) <= 1200 for x in packets)
        assert b"".join(H264PayloadDescriptor.parse(x[12:])[1] for x in packets) == annexb(frame)
        assert keyframe_detector("video/H264")(packets[0], 12) == key  # type: ignore[misc]


def test_vp8_descriptor_and_picture_id() -> None:
    data = bytes((0x50, 0x2A, 0x01)) + bytes(i & 0xFF for i in range(3000))  # P=0: key frame
    p = Packetizer("vp8", 96, 7, 90000, mtu=1000)
    p.picture_id = 0x7FFF
    packets = p.packetize(video("vp8", data))
    assert len(packets) == 4 and all(len(x) <= 1000 for x in packets)
    descs = [VpxPayloadDescriptor.parse(x[12:]) for x in packets]
    assert [d.partition_start for d, _ in descs] == [1, 0, 0, 0]
    assert {d.partition_id for d, _ in descs} == {0} and {d.picture_id for d, _ in descs} == {0x7FFF}
    assert b"".join(rest for _, rest in descs) == data
    assert packets[0][12:16] == b"\x90\x80\xff\xff"
    assert [header(x)[1] for x in packets] == [False, False, False, True]
    assert keyframe_detector("video/VP8")(packets[0], 12)  # type: ignore[misc]
    (next_packet,) = p.packetize(video("vp8", b"\x51\x00\x00", key=False))
    assert VpxPayloadDescriptor.parse(next_packet[12:])[0].picture_id == 0  # 15-bit wrap
    assert p.picture_id == 1
    exact = p.packetize(video("vp8", b"\x51" + bytes(2 * (1000 - 12 - 4) - 1), key=False))
    assert [len(x) for x in exact] == [1000, 1000]  # the fewest packets
    assert not keyframe_detector("video/VP8")(next_packet, 12)  # type: ignore[misc]


def test_vp9_descriptor() -> None:
    p = Packetizer("vp9", 98, 7, 90000, mtu=512)
    p.picture_id = 300
    key = p.packetize(video("vp9", b"\x82" + bytes(1500), key=True))
    delta = p.packetize(video("vp9", b"\x86" + bytes(10), key=False))
    assert [x[12] for x in key] == [0x88, 0x80, 0x80, 0x84]  # I, B ... E, P clear
    assert [x[12] for x in delta] == [0xCC]  # I, P, B, E
    assert key[0][13:15] == struct.pack("!H", 0x8000 | 300) and delta[0][13:15] == struct.pack(
        "!H", 0x8000 | 301
    )
    assert b"".join(x[15:] for x in key) == b"\x82" + bytes(1500)
    assert all(len(x) <= 512 for x in key)
    assert [header(x)[1] for x in key] == [False, False, False, True]
    assert keyframe_detector("video/VP9")(key[0], 12) and not keyframe_detector("video/VP9")(delta[0], 12)  # type: ignore[misc]


def test_real_vp9_frames_keep_their_keyframe_flag() -> None:
    p = Packetizer("vp9", 98, 7, 90000)
    for data, key in vpx_frames("libvpx-vp9", 2, keyframes=(0,)):
        packets = p.packetize(video("vp9", data, key=key))
        assert b"".join(x[15:] for x in packets) == data
        assert bool(keyframe_detector("video/VP9")(packets[0], 12)) == key  # type: ignore[misc]


def test_empty_frames_give_no_packets() -> None:
    p = Packetizer("h264", 102, 1, 90000)
    seq = p.seq
    assert p.packetize(video("h264")) == [] and p.packetize(video("h264", b"")) == []
    assert Packetizer("vp8", 96, 1, 90000).packetize(video("vp8", b"")) == []
    assert p.seq == seq
    with pytest.raises(ValueError):
        Packetizer("vp8", 96, 1, 90000).packetize(video("vp8", b"a", b"b"))


@pytest.mark.parametrize(
    ("sps", "plid"),
    [
        ("6742c01f", "42e01f"),  # x264 constrained baseline → Chromium's form
        ("6742e01f", "42e01f"),
        ("6742001e", "42001e"),  # baseline
        ("674d401f", "4d001f"),  # main
        ("674d801f", "42e01f"),  # main with constraint_set0: constrained baseline
        ("67640028", "640028"),  # high
        ("67640c34", "640c34"),  # constrained high
        ("6742d00b", "42f00b"),  # constrained baseline level 1b
        ("676e0028", "6e0028"),  # high 10: not Chromium's, kept as is
        ("6742c063", "42c063"),  # unknown level: kept as is
    ],
)
def test_h264_fmtp(sps: str, plid: str) -> None:
    assert h264_fmtp(bytes.fromhex(sps) + b"\xda") == {
        "packetization-mode": "1",
        "level-asymmetry-allowed": "1",
        "profile-level-id": plid,
    }


def test_h264_fmtp_from_real_sps() -> None:
    (nals, _), *_ = x264_access_units(1, profile="baseline")
    assert nals[0][1] == 0x42 and nals[0][2] & 0x40  # x264 writes constraint_set1 for baseline
    assert h264_fmtp(nals[0])["profile-level-id"] == f"42e0{nals[0][3]:02x}"
    (nals, _), *_ = x264_access_units(1, profile="high", preset="veryfast")
    assert h264_fmtp(nals[0])["profile-level-id"] == f"6400{nals[0][3]:02x}"
    with pytest.raises(ValueError):
        h264_fmtp(b"\x68\x42\xc0\x1f")
