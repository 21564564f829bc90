"""rtp.depacketize: RTP → frames with real encoders, reordering, loss, wrap and hostile input."""

from __future__ import annotations

import random

import pytest
from aiortc.codecs.h264 import H264Encoder, h264_depayload
from aiortc.codecs.vpx import Vp8Encoder, vp8_depayload
from rtp_media import (
    decode,
    opus_frames,
    picture,
    push_all,
    rtp,
    seq_of,
    vpx_frames,
    with_seq,
    wrap,
    x264_access_units,
)

from rtcdn.rtp.depacketize import MAX_FRAME_SIZE, Depacketizer
from rtcdn.rtp.frame import Frame, RtpClock, annexb, split_annexb
from rtcdn.rtp.packetize import Packetizer


def aiortc_h264(count: int, keyframes: tuple[int, ...] = (0,)) -> list[list[bytes]]:
    """RTP packets (per frame) of aiortc's real H.264 packetizer: STAP-A and FU-A."""
    encoder = H264Encoder()
    return wrap(encoder.encode(picture(i), force_keyframe=i in keyframes) for i in range(count))


def aiortc_vp8(count: int, keyframes: tuple[int, ...] = (0,)) -> list[list[bytes]]:
    encoder = Vp8Encoder()
    return wrap(encoder.encode(picture(i), force_keyframe=i in keyframes) for i in range(count))


def packetized(codec: str, frames: list[Frame], seq: int | None = None, mtu: int = 1200) -> list[list[bytes]]:
    packetizer = Packetizer(codec, 96, 0x1234, frames[0].clock_rate, mtu=mtu)
    if seq is not None:
        packetizer.seq = seq
    return [packetizer.packetize(frame) for frame in frames]


def h264_frames(count: int, keyframes: tuple[int, ...] = (0,)) -> list[Frame]:
    aus = x264_access_units(count, keyframes)
    return [
        Frame("video", "h264", tuple(nals), 3000 * i, 90000, key, 0.0) for i, (nals, key) in enumerate(aus)
    ]


def vpx(codec: str, count: int, keyframes: tuple[int, ...] = (0,)) -> list[Frame]:
    name = "libvpx" if codec == "vp8" else "libvpx-vp9"
    data = vpx_frames(name, count, keyframes)
    return [Frame("video", codec, (d,), 3000 * i, 90000, key, 0.0) for i, (d, key) in enumerate(data)]


def content(frames: list[Frame]) -> list[tuple[tuple[bytes, ...], int, bool]]:
    return [(f.payload, f.rtp_time, f.keyframe) for f in frames]


def flat(per_frame: list[list[bytes]]) -> list[bytes]:
    return [p for packets in per_frame for p in packets]


# --- real media ------------------------------------------------------------------------------


def test_h264_from_aiortc_stap_a_and_fu_a_decodes() -> None:
    per_frame = aiortc_h264(5, keyframes=(0, 3))
    payload_types = {p[12] & 0x1F for p in flat(per_frame)}
    assert {24, 28} <= payload_types  # aiortc made STAP-A and FU-A
    d = Depacketizer("H264", 90000)
    frames = push_all(d, flat(per_frame), arrival=10.0)
    assert [f.keyframe for f in frames] == [True, False, False, True, False]
    assert (d.frames, d.lost_frames, d.malformed, d.needs_keyframe) == (5, 0, 0, False)
    for f, packets in zip(frames, per_frame, strict=True):
        expected = split_annexb(b"".join(h264_depayload(p[12:]) for p in packets))
        assert list(f.payload) == [n for n in expected if n[0] & 0x1F != 9]
        assert (f.kind, f.codec, f.clock_rate) == ("video", "h264", 90000)
    assert [n[0] & 0x1F for n in frames[0].payload][:2] == [7, 8]
    assert [f.rtp_time for f in frames] == [0, 3000, 6000, 9000, 12000]
    assert [f.pts for f in frames] == pytest.approx([10.0 + i / 30 for i in range(5)])
    pictures = decode("h264", [annexb(f) for f in frames])
    assert len(pictures) == 5 and (pictures[0].width, pictures[0].height) == (320, 240)


def test_h264_round_trip_exact_and_decodes() -> None:
    frames = h264_frames(6, keyframes=(0, 4))
    assert len(frames[0].payload[3]) > 1200  # an FU-A
    d = Depacketizer("h264", 90000)
    out = push_all(d, flat(packetized("h264", frames)))
    assert content(out) == content(frames)
    assert len(decode("h264", [annexb(f) for f in out])) == 6


def test_h264_sps_pps_prepended_to_idr_without_them() -> None:
    frames = h264_frames(6, keyframes=(0, 4))
    sps, pps = frames[0].payload[0], frames[0].payload[1]
    stripped = list(frames)
    idr = frames[4]
    assert [n[0] & 0x1F for n in idr.payload] == [7, 8, 5, 5]
    stripped[4] = Frame("video", "h264", idr.payload[2:], idr.rtp_time, 90000, True, 0.0)
    out = push_all(Depacketizer("h264", 90000), flat(packetized("h264", stripped)))
    assert out[4].payload == (sps, pps, *idr.payload[2:]) and out[4].keyframe
    # a fresh decoder can start at that access unit
    assert len(decode("h264", [annexb(f) for f in out[4:]])) == 2


def test_h264_idr_without_any_parameter_sets_is_dropped() -> None:
    frames = h264_frames(2)
    idr = Frame("video", "h264", frames[0].payload[2:], 0, 90000, True, 0.0)
    d = Depacketizer("h264", 90000)
    assert push_all(d, flat(packetized("h264", [idr, frames[1]]))) == []
    assert d.needs_keyframe and d.lost_frames == 1 and d.skipped_frames == 1


def test_h264_packetization_mode_0_and_aud_dropped() -> None:
    frames = h264_frames(3)
    aud = b"\x09\xf0"
    packets, seq = [], 500
    for f in frames:  # mode 0: every NAL unit in its own packet, whatever its size
        nals = (aud, *f.payload)
        for i, nal in enumerate(nals):
            packets.append(rtp(nal, seq, f.rtp_time, marker=i == len(nals) - 1))
            seq += 1
    out = push_all(Depacketizer("h264", 90000), packets)
    assert content(out) == content(frames)


def test_h264_without_marker_bits_ends_frames_on_timestamp_change() -> None:
    frames = h264_frames(4)
    packets = [p[:1] + bytes((p[1] & 0x7F,)) + p[2:] for p in flat(packetized("h264", frames))]
    d = Depacketizer("h264", 90000)
    out = push_all(d, packets)
    assert content(out) == content(frames[:3])  # the last one is only known complete by its successor
    assert d.flush() == [] and d.lost_frames == 1


def test_vp8_from_aiortc_multi_packet_frames_decode() -> None:
    per_frame = aiortc_vp8(5, keyframes=(0, 3))
    assert all(len(packets) > 3 for packets in per_frame)
    d = Depacketizer("vp8", 90000)
    frames = push_all(d, flat(per_frame))
    assert [f.keyframe for f in frames] == [True, False, False, True, False]
    for f, packets in zip(frames, per_frame, strict=True):
        assert f.payload == (b"".join(vp8_depayload(p[12:]) for p in packets),)
    pictures = decode("libvpx", [f.payload[0] for f in frames])
    assert len(pictures) == 5 and pictures[-1].width == 320


def test_vp8_round_trip_exact() -> None:
    frames = vpx("vp8", 4, keyframes=(0, 2))
    out = push_all(Depacketizer("vp8", 90000), flat(packetized("vp8", frames)))
    assert content(out) == content(frames)


def test_vp8_descriptor_variants() -> None:
    frames = vpx("vp8", 2)
    # 7-bit picture id, TL0PICIDX, TID/KEYIDX; no extension at all on the second frame
    packets, seq = [], 10
    for k, f in enumerate(frames):
        data = f.payload[0]
        chunks = [data[i : i + 1000] for i in range(0, len(data), 1000)]
        for i, chunk in enumerate(chunks):
            s = 0x10 if i == 0 else 0
            desc = bytes((0x80 | s, 0xF0, 0x05, 0x07, 0xE3)) if k == 0 else bytes((s,))
            packets.append(rtp(desc + chunk, seq, f.rtp_time, marker=i == len(chunks) - 1))
            seq += 1
    assert content(push_all(Depacketizer("vp8", 90000), packets)) == content(frames)


def test_vp9_round_trip_exact_and_decodes() -> None:
    frames = vpx("vp9", 5, keyframes=(0, 3))
    d = Depacketizer("vp9", 90000)
    out = push_all(d, flat(packetized("vp9", frames)))
    assert content(out) == content(frames) and [f.keyframe for f in out] == [True, False, False, True, False]
    assert len(decode("libvpx-vp9", [f.payload[0] for f in out])) == 5


def test_vp9_flexible_mode_layer_indices_and_scalability_structure() -> None:
    frames = vpx("vp9", 2)
    packets, seq = [], 100
    for k, f in enumerate(frames):
        data = f.payload[0]
        chunks = [data[i : i + 1000] for i in range(0, len(data), 1000)]
        for i, chunk in enumerate(chunks):
            be = (0x08 if i == 0 else 0) | (0x04 if i == len(chunks) - 1 else 0)
            if k == 0:  # non-flexible: I (7-bit), L + TL0PICIDX, V with Y and G on the first packet
                b0 = 0x80 | 0x20 | be | (0x02 if i == 0 else 0)
                desc = bytes((b0, 0x05, 0x00, 0x01))
                if i == 0:  # N_S=1, Y, G; 160x120, 320x240; 2 groups: (T=0, R=1, P_DIFF 1), (T=1, R=0)
                    desc += bytes((0x38, 0x00, 0xA0, 0x00, 0x78, 0x01, 0x40, 0x00, 0xF0))
                    desc += bytes((0x02, 0x04, 0x02, 0x20))
            else:  # flexible: I (15-bit), P, L (no TL0PICIDX), 3 reference indices
                b0 = 0x80 | 0x40 | 0x20 | 0x10 | be
                desc = bytes((b0, 0x81, 0x00, 0x00, 0x03, 0x05, 0x06))
            packets.append(rtp(desc + chunk, seq, f.rtp_time, marker=i == len(chunks) - 1))
            seq += 1
    assert content(push_all(Depacketizer("vp9", 90000), packets)) == content(frames)


def test_vp9_spatial_layers_make_a_superframe() -> None:
    frames = vpx("vp9", 2)
    layers = [frames[0].payload[0][:700], frames[1].payload[0][:300]]
    packets = [
        rtp(bytes((0xAC, 0x00, 0x00, 0x07)) + layers[0], 1, 0),  # I, B, E, L: SID 0, TL0PICIDX
        rtp(bytes((0x2C, 0x02, 0x07)) + layers[1], 2, 0, marker=True),  # B, E, L: SID 1
    ]
    (out,) = push_all(Depacketizer("vp9", 90000), packets)
    data = out.payload[0]
    assert out.keyframe and data[:1000] == layers[0] + layers[1]
    assert data[1000:] == b"\xc9\xbc\x02\x2c\x01\xc9"  # 2-byte sizes 700, 300 between markers


def test_opus_round_trip_and_decode() -> None:
    payloads = opus_frames(6)
    frames = [Frame("audio", "opus", (p,), 960 * i, 48000, True, 0.0) for i, p in enumerate(payloads)]
    packets = flat(packetized("opus", frames))
    d = Depacketizer("opus", 48000)
    out = push_all(d, packets, arrival=3.0)
    assert content(out) == content(frames) and d.lost_frames == 0
    assert [f.pts for f in out] == pytest.approx([3.0 + 0.02 * i for i in range(6)])
    assert len(decode("libopus", [f.payload[0] for f in out])) == 6


@pytest.mark.parametrize(("codec", "rate"), [("pcmu", 8000), ("pcma", 8000), ("g722", 8000)])
def test_g711_g722_one_packet_one_frame(codec: str, rate: int) -> None:
    packets = [rtp(bytes([i]) * 160, 7 + i, 160 * i, marker=i == 0, pt=0) for i in range(4)]
    out = push_all(Depacketizer(codec, rate), packets)
    assert [(f.payload, f.rtp_time, f.keyframe, f.kind) for f in out] == [
        ((bytes([i]) * 160,), 160 * i, True, "audio") for i in range(4)
    ]


# --- ordering, loss, recovery ----------------------------------------------------------------


def test_reordering_within_the_window_gives_the_same_frames() -> None:
    frames = h264_frames(5, keyframes=(0, 3))
    packets = flat(packetized("h264", frames))
    rnd = random.Random(3)
    shuffled: list[bytes] = []
    for i in range(0, len(packets), 6):  # shuffle within blocks: a frame's packets and the next's
        block = packets[i : i + 6]
        rnd.shuffle(block)
        shuffled += block
    assert shuffled != packets
    d = Depacketizer("h264", 90000)
    assert content(push_all(d, shuffled)) == content(frames)
    assert (d.lost_frames, d.skipped_frames, d.needs_keyframe, d.buffered) == (0, 0, False, 0)


def test_marker_packet_and_next_frame_start_swapped() -> None:
    frames = vpx("vp8", 3)
    per_frame = packetized("vp8", frames)
    packets = flat(per_frame)
    k = len(per_frame[0])
    packets[k - 1], packets[k] = packets[k], packets[k - 1]
    assert content(push_all(Depacketizer("vp8", 90000), packets)) == content(frames)


def test_lost_fu_a_fragment_drops_until_next_keyframe() -> None:
    per_frame = aiortc_h264(6, keyframes=(0, 4))
    fu = [p for p in per_frame[1] if p[12] & 0x1F == 28]
    lost = fu[len(fu) // 2]
    d = Depacketizer("h264", 90000)
    out = push_all(d, flat(per_frame[:1]))
    assert len(out) == 1 and not d.needs_keyframe
    out = push_all(d, [p for p in per_frame[1] if p != lost])
    assert out == [] and not d.needs_keyframe  # the gap may still be filled
    out = push_all(d, per_frame[2])  # a later frame completed: the gap is a loss
    assert out == [] and d.needs_keyframe and d.lost_frames == 1
    assert d.push(lost, 0.0) == [] and d.duplicates == 1  # too late now
    out = push_all(d, per_frame[3])
    assert out == [] and d.needs_keyframe and d.skipped_frames == 2
    out = push_all(d, flat(per_frame[4:]))
    assert [f.keyframe for f in out] == [True, False] and not d.needs_keyframe
    assert [f.rtp_time for f in out] == [12000, 15000]
    assert len(decode("h264", [annexb(f) for f in out])) == 2


def test_two_gaps_in_one_frame_lose_one_frame() -> None:
    frames = vpx("vp8", 3, keyframes=(0,))
    per_frame = packetized("vp8", frames, mtu=400)
    assert len(per_frame[1]) > 8
    d = Depacketizer("vp8", 90000, max_reorder=2)
    broken = per_frame[1][:2] + per_frame[1][3:5] + per_frame[1][6:]
    out = push_all(d, per_frame[0] + broken + per_frame[2])
    assert [f.rtp_time for f in out] == [0] and d.lost_frames == 1 and d.skipped_frames == 1
    assert d.needs_keyframe


def test_late_packet_within_the_window_fills_the_gap() -> None:
    frames = h264_frames(2)
    packets = flat(packetized("h264", frames))
    late = packets.pop(5)
    packets.insert(20, late)
    d = Depacketizer("h264", 90000)
    assert content(push_all(d, packets)) == content(frames) and d.lost_frames == 0


def test_gap_given_up_after_max_reorder_newer_packets() -> None:
    frames = h264_frames(3, keyframes=(0, 2))
    per_frame = packetized("h264", frames, mtu=300)  # the IDR needs many packets
    assert len(per_frame[0]) > 60
    d = Depacketizer("h264", 90000, max_reorder=16)
    push_all(d, per_frame[0][:3])
    for p in per_frame[0][4:20]:  # 16 newer packets: still waiting
        assert d.push(p, 0.0) == []
    assert d.buffered == 16 and d.lost_frames == 0
    d.push(per_frame[0][20], 0.0)  # the 17th: lost
    assert d.lost_frames == 1 and d.needs_keyframe and d.buffered == 0
    out = push_all(d, flat(per_frame))  # the rest and a repeat: duplicates, then frame 1 and 2
    assert [f.rtp_time for f in out] == [6000] and d.skipped_frames == 1
    assert d.buffered <= 16


def test_joining_mid_stream_waits_for_a_keyframe() -> None:
    frames = vpx("vp8", 4, keyframes=(0, 3))
    per_frame = packetized("vp8", frames)
    d = Depacketizer("vp8", 90000)
    partial = per_frame[0][2:]  # joined in the middle of the first frame
    out = push_all(d, partial + flat(per_frame[1:]))
    assert [f.rtp_time for f in out] == [9000] and d.skipped_frames == 2 and not d.needs_keyframe
    d2 = Depacketizer("vp8", 90000)
    assert push_all(d2, flat(per_frame[1:3])) == [] and d2.needs_keyframe


def test_sequence_number_wrap_with_reordering() -> None:
    frames = h264_frames(4, keyframes=(0, 2))
    packets = flat(packetized("h264", frames, seq=65500))
    seqs = [seq_of(p) for p in packets]
    assert 65535 in seqs and 0 in seqs
    i = seqs.index(65535)
    packets[i - 1], packets[i + 1] = packets[i + 1], packets[i - 1]  # reorder across the wrap
    d = Depacketizer("h264", 90000)
    assert content(push_all(d, packets)) == content(frames) and d.lost_frames == 0


def test_duplicates_are_ignored() -> None:
    frames = vpx("vp8", 3)
    packets = flat(packetized("vp8", frames))
    doubled = [p for p in packets for _ in range(2)]
    doubled.insert(3, packets[0])
    d = Depacketizer("vp8", 90000)
    assert content(push_all(d, doubled)) == content(frames)
    assert d.duplicates == len(packets) + 1 and d.lost_frames == 0
    d = Depacketizer("vp8", 90000)  # duplicates of packets waiting behind a gap
    reordered = [packets[0], packets[2], packets[3], packets[2], packets[3], packets[1], *packets[4:]]
    assert content(push_all(d, reordered)) == content(frames)
    assert d.duplicates == 2 and d.lost_frames == 0


def test_padding_and_padding_only_packets() -> None:
    frames = vpx("vp8", 3)
    packets = flat(packetized("vp8", frames))
    start = seq_of(packets[0])
    padded, seq = [], start
    for k, p in enumerate(packets):
        if k % 2:  # padding on a media packet
            p = bytes((p[0] | 0x20,)) + p[1:] + b"\x00" * 9 + b"\x0a"
        padded.append(with_seq(p, seq))
        seq += 1
        if p[1] & 0x80:  # a padding-only probe after each frame, with the old timestamp
            padded.append(rtp(b"", seq, int.from_bytes(p[4:8], "big"), padding=200))
            seq += 1
    d = Depacketizer("vp8", 90000)
    assert content(push_all(d, padded)) == content(frames)
    assert (d.lost_frames, d.malformed) == (0, 0)


def test_bad_padding_is_malformed() -> None:
    d = Depacketizer("opus", 48000)
    good = rtp(b"\xfc\x01", 1, 0, padding=3)
    assert d.push(good, 0.0)[0].payload == (b"\xfc\x01",)
    zero_count = bytes((good[0],)) + rtp(b"\xfc\x01\x00", 2, 960)[1:]  # P bit, last byte 0
    too_long = rtp(b"\xfc\x01", 3, 1920, padding=3)[:-1] + b"\x09"
    assert d.push(zero_count, 0.0) == [] and d.push(too_long, 0.0) == []
    assert d.malformed == 2


def test_csrcs_and_header_extensions_are_skipped() -> None:
    frames = vpx("vp8", 2)
    packets = [rtp(p[12:], seq_of(p), int.from_bytes(p[4:8], "big"), bool(p[1] & 0x80), csrcs=2,
                   extension=b"\x10\x33\x22\xaa\xbb") for p in flat(packetized("vp8", frames))]  # fmt: skip
    assert content(push_all(Depacketizer("vp8", 90000), packets)) == content(frames)


def test_audio_reordering_and_loss() -> None:
    payloads = [bytes([i]) * 40 for i in range(12)]
    packets = [rtp(p, 100 + i, 960 * i, pt=111) for i, p in enumerate(payloads)]
    d = Depacketizer("opus", 48000)
    order = [0, 2, 1, 3, 5, 6, 7, 8, 9, 4, 10, 11]  # 1 is late by one; 4 by more than 3 frames
    out = push_all(d, [packets[i] for i in order])
    assert [f.payload[0][0] for f in out] == [0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11]
    assert d.lost_frames == 1 and d.duplicates == 1 and not d.needs_keyframe
    d = Depacketizer("opus", 48000)
    out = push_all(d, [packets[i] for i in (0, 1, 5, 6, 7, 8)])  # 3 packets lost at once
    assert [f.payload[0][0] for f in out] == [0, 1, 5, 6, 7, 8] and d.lost_frames == 3


def test_two_tracks_aligned_by_sender_reports() -> None:
    audio_clock, video_clock = RtpClock(48000), RtpClock(90000)
    audio = Depacketizer("opus", 48000, audio_clock)
    video = Depacketizer("vp8", 90000, video_clock)
    assert video.clock is video_clock
    a0, v0, ntp = 4_294_960_000, 1_000, 1_700_000_000.0  # the audio clock wraps soon
    audio_clock.on_sender_report(ntp, a0)
    video_clock.on_sender_report(ntp + 0.25, v0 + 22500)
    vp8 = vpx("vp8", 3)
    packetizer = Packetizer("vp8", 96, 1, 90000)
    a_frames, v_frames = [], []
    for i in range(3):  # 100 ms apart on both tracks, video arriving later
        ts = a0 + 4800 * i
        a_frames += audio.push(rtp(b"\xfc" * 20, 10 + i, ts, pt=111), 50.0 + i / 10)
        frame = Frame("video", "vp8", vp8[i].payload, v0 + 9000 * i, 90000, vp8[i].keyframe, 0.0)
        v_frames += push_all(video, packetizer.packetize(frame), 50.3 + i / 10)
    assert [f.pts for f in a_frames] == pytest.approx([ntp, ntp + 0.1, ntp + 0.2])
    assert [f.pts for f in v_frames] == pytest.approx([ntp, ntp + 0.1, ntp + 0.2])
    assert a_frames[-1].rtp_time < a0  # wrapped


def test_sequence_jump_needs_confirmation() -> None:
    frames = vpx("vp8", 6, keyframes=(0, 3))
    per_frame = packetized("vp8", frames, seq=1000)
    d = Depacketizer("vp8", 90000)
    out = push_all(d, per_frame[0])
    stray = with_seq(per_frame[1][0], 40000)  # one stray packet far away: ignored
    assert d.push(stray, 0.0) == [] and d.duplicates == 1
    out += push_all(d, flat(per_frame[1:3]))
    assert [f.rtp_time for f in out] == [0, 3000, 6000] and d.lost_frames == 0
    # the sender restarts with other sequence numbers: confirmed by the second packet
    restarted = [with_seq(p, 30000 + i) for i, p in enumerate(flat(per_frame[3:]))]
    out = push_all(d, restarted)
    assert d.lost_frames == 1  # the first packet after the jump was sacrificed
    assert out == [] and d.needs_keyframe  # so the keyframe was broken


# --- hostile input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("codec", "rate"), [("h264", 90000), ("vp8", 90000), ("vp9", 90000), ("opus", 48000)]
)
def test_random_and_truncated_packets_never_raise(codec: str, rate: int) -> None:
    rnd = random.Random(1234)
    d = Depacketizer(codec, rate, max_reorder=32)
    real = flat(packetized("vp8", vpx("vp8", 2))) if codec == "vp8" else flat(aiortc_h264(2))
    for _ in range(3000):
        kind = rnd.random()
        if kind < 0.3:
            packet = rnd.randbytes(rnd.randrange(0, 80))
        elif kind < 0.6:  # a valid header, garbage payload
            packet = rtp(rnd.randbytes(rnd.randrange(0, 60)), rnd.randrange(65536), rnd.getrandbits(32),
                         rnd.random() < 0.5, padding=rnd.choice((0, 0, 1, 5)))  # fmt: skip
            if rnd.random() < 0.2:
                packet = packet[:-1] + bytes((rnd.randrange(256),))  # bogus padding count
        else:  # a real packet, truncated and bit-flipped, near the current sequence number
            p = bytearray(rnd.choice(real)[: rnd.randrange(1, 1300)])
            for _ in range(rnd.randrange(3)):
                p[rnd.randrange(len(p))] ^= 1 << rnd.randrange(8)
            packet = with_seq(bytes(p), 5000 + rnd.randrange(-40, 40)) if len(p) >= 4 else bytes(p)
        frames = d.push(packet, 0.0)
        assert all(isinstance(f, Frame) for f in frames)
        assert d.buffered <= 33
    assert d.malformed > 500
    d.flush()


def test_endless_frame_is_bounded() -> None:
    d = Depacketizer("h264", 90000)
    chunk = b"\x88" + bytes(1099)  # first_mb_in_slice 0
    seq = 0
    d.push(rtp(b"\x7c\x85" + chunk, seq, 123456), 0.0)  # FU-A start of an IDR, never ends
    while seq * 1100 < MAX_FRAME_SIZE + 10_000:
        seq += 1
        assert d.push(rtp(b"\x7c\x05" + chunk, seq, 123456), 0.0) == []
    assert d.lost_frames == 1 and d.needs_keyframe
    frames = h264_frames(1)
    out = push_all(d, flat(packetized("h264", frames, seq=seq + 1)))
    assert content(out) == content(frames) and not d.needs_keyframe


def test_unknown_codec() -> None:
    with pytest.raises(ValueError):
        Depacketizer("av1", 90000)
    with pytest.raises(ValueError):
        Depacketizer("vp8", 90000, max_reorder=0)
