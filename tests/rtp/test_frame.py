"""rtp.frame: Annex B / AVCC helpers and the RTP → seconds clock."""

from __future__ import annotations

import pytest
from rtp_media import x264_access_units

from rtcdn.rtp.frame import Frame, RtpClock, annexb, avcc, split_annexb, split_avcc

SPS = b"\x67\x42\xc0\x1f\xda"
PPS = b"\x68\xce\x3c\x80"
IDR = b"\x65\x88\x84\x00\x00\x03\x00\x10"


def h264_frame(*nals: bytes) -> Frame:
    return Frame("video", "h264", nals, 0, 90000, True, 0.0)


def test_annexb_and_avcc() -> None:
    frame = h264_frame(SPS, PPS, IDR)
    assert annexb(frame) == b"\0\0\0\x01" + SPS + b"\0\0\0\x01" + PPS + b"\0\0\0\x01" + IDR
    assert avcc(frame) == b"\0\0\0\x05" + SPS + b"\0\0\0\x04" + PPS + b"\0\0\0\x08" + IDR
    assert frame.size == len(SPS) + len(PPS) + len(IDR)


def test_split_annexb_start_codes_and_zeros() -> None:
    assert split_annexb(annexb(h264_frame(SPS, PPS, IDR))) == [SPS, PPS, IDR]
    # 3-byte start codes, leading junk, trailing_zero_8bits, empty NAL units
    data = (
        b"\xff\x00"
        + b"\0\0\x01"
        + SPS
        + b"\0\0"
        + b"\0\0\x01"
        + b"\0\0\0\x01"
        + PPS
        + b"\0\0\x01"
        + IDR
        + b"\0"
    )
    assert split_annexb(data) == [SPS, PPS, IDR]
    assert split_annexb(b"") == []
    assert split_annexb(b"no start code") == []
    # emulation prevention bytes stay (they are part of the NAL unit)
    assert split_annexb(b"\0\0\x01" + IDR) == [IDR]


def test_split_avcc() -> None:
    frame = h264_frame(SPS, PPS, IDR)
    assert split_avcc(avcc(frame)) == [SPS, PPS, IDR]
    assert split_avcc(b"\0\x05" + SPS + b"\0\0" + b"\0\x04" + PPS, length_size=2) == [SPS, PPS]
    for bad in (avcc(frame)[:-1], avcc(frame) + b"\0\0"):
        with pytest.raises(ValueError):
            split_avcc(bad)


def test_split_annexb_real_stream() -> None:
    ((nals, key),) = x264_access_units(1)
    assert key and [n[0] & 0x1F for n in nals][:2] == [7, 8]
    assert split_annexb(annexb(h264_frame(*nals))) == nals


def test_clock_before_sender_report() -> None:
    clock = RtpClock(90000)
    assert not clock.synchronized
    assert clock.pts(1_000_000, 50.0) == 50.0
    # the arrival of later packets does not matter, only the RTP time
    assert clock.pts(1_000_000 + 90000, 999.0) == pytest.approx(51.0)
    assert clock.pts(1_000_000 + 45000, 0.0) == pytest.approx(50.5)  # reordered, older
    assert clock.pts(1_000_000 - 9000, 0.0) == pytest.approx(49.9)  # older than the first


def test_clock_wraps() -> None:
    clock = RtpClock(48000)
    start = 0xFFFFFFFF - 24000 + 1
    assert clock.pts(start, 10.0) == 10.0
    assert clock.pts(0, 0.0) == pytest.approx(10.5)  # wrapped
    assert clock.pts(48000, 0.0) == pytest.approx(11.5)
    assert clock.pts(0xFFFFFFFF, 0.0) == pytest.approx(10.5 - 1 / 48000)  # late, before the wrap
    clock = RtpClock(48000)
    assert clock.pts(start, 10.0) == 10.0
    for k in range(1, 8):  # steps just under 2**31: many wraps, pts keeps growing
        assert clock.pts((start + k * 0x7FFFFFFF) & 0xFFFFFFFF, 0.0) == pytest.approx(
            10.0 + k * 0x7FFFFFFF / 48000
        )
    assert clock.unwrap(0x7FFFFFFF) > 0x100000000


def test_clock_after_sender_report() -> None:
    clock = RtpClock(90000)
    clock.pts(5000, 100.0)
    clock.on_sender_report(1_700_000_000.0, 5000 + 90000)
    assert clock.synchronized
    assert clock.pts(5000 + 90000, 0.0) == pytest.approx(1_700_000_000.0)
    assert clock.pts(5000, 0.0) == pytest.approx(1_699_999_999.0)
    assert clock.pts(5000 + 3 * 90000, 0.0) == pytest.approx(1_700_000_002.0)
    clock.on_sender_report(1_700_000_002.5, 5000 + 3 * 90000)  # drift correction
    assert clock.pts(5000 + 3 * 90000, 0.0) == pytest.approx(1_700_000_002.5)


def test_clock_sender_report_across_wrap() -> None:
    clock = RtpClock(90000)
    clock.on_sender_report(1000.0, 0xFFFFFFFF - 8999)  # 0.1 s before the wrap
    assert clock.pts(81000, 5.0) == pytest.approx(1001.0)
    assert clock.pts(0xFFFFFFFF - 8999 - 90000, 5.0) == pytest.approx(999.0)


def test_two_tracks_line_up_after_sender_reports() -> None:
    audio, video = RtpClock(48000), RtpClock(90000)
    a0, v0 = 3_000_000_000, 77_777  # unrelated random bases
    # before SRs, each track is based on its own first arrival: they disagree
    assert audio.pts(a0, 10.00) == 10.00
    assert video.pts(v0, 10.25) == 10.25
    ntp = 1_700_000_000.0
    audio.on_sender_report(ntp, a0 + 48000)
    video.on_sender_report(ntp + 0.5, v0 + 90000 + 45000)
    for t in (0.0, 1.0, 2.02, 7.5):  # the same capture instant on both tracks
        assert audio.pts(a0 + 48000 + round(t * 48000), 0.0) == pytest.approx(ntp + t)
        assert video.pts(v0 + 90000 + round(t * 90000), 0.0) == pytest.approx(ntp + t)


def test_ntp_to_unix() -> None:
    unix = 1_704_067_200  # 2024-01-01T00:00:00Z
    assert RtpClock.ntp_to_unix(((unix + 2_208_988_800) << 32) | 0x80000000) == unix + 0.5
    assert RtpClock.ntp_to_unix(0x83AA7E80 << 32) == 0.0  # 1970
    assert RtpClock.ntp_to_unix(16 << 32) == 2_085_978_496 + 16  # era 1, after 2036-02-07


def test_clock_rejects_bad_rate() -> None:
    with pytest.raises(ValueError):
        RtpClock(0)
