"""VP8 / VP9 → H.264 on real media made here with PyAV: a moving test picture, encoded with libvpx,
transcoded, and every output decoded again with FFmpeg's h264 decoder.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import replace
from fractions import Fraction
from functools import cache
from itertools import pairwise
from typing import Any, Literal

import av
import pytest
from av.filter import Graph
from av.video.codeccontext import VideoCodecContext
from av.video.frame import PictureType, VideoFrame

from rtcdn.rtp.frame import Frame, annexb
from rtcdn.transcode.video import PRESETS, VideoTranscoder, default_bit_rate

BASE = 500.0
"pts of the first input frame (seconds)."
RTP_BASE = 0xFFFFFFFF - 30000
"rtp_time of the first input frame: the 32-bit timestamps wrap within a second of video."
VPX = {"vp8": "libvpx", "vp9": "libvpx-vp9"}


def _context(name: str, mode: Literal["r", "w"]) -> VideoCodecContext:
    context = av.CodecContext.create(name, mode)
    assert isinstance(context, VideoCodecContext)
    return context


@cache
def pictures(width: int, height: int, count: int) -> tuple[VideoFrame, ...]:
    """``count`` frames of FFmpeg's moving ``testsrc2`` picture, yuv420p."""
    graph = Graph()
    chain = [
        graph.add("testsrc2", f"size={width}x{height}:rate=30"),
        graph.add("format", "pix_fmts=yuv420p"),
        graph.add("buffersink"),
    ]
    for a, b in pairwise(chain):
        a.link_to(b)
    graph.configure()
    out = []
    for _ in range(count):
        picture = chain[-1].pull()
        assert isinstance(picture, VideoFrame)
        out.append(picture)
    return tuple(out)


@cache
def stream(
    codec: str, width: int = 320, height: int = 240, count: int = 30, first: int = 0
) -> tuple[Frame, ...]:
    """``count`` frames of ``codec`` (a key frame every 10), stamped from frame number ``first`` on."""
    encoder = _context(VPX[codec], "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
    encoder.time_base, encoder.framerate, encoder.gop_size = Fraction(1, 30), Fraction(30), 10
    encoder.bit_rate = 400_000
    encoder.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0", "auto-alt-ref": "0"}
    encoder.open()
    packets = []
    for i, picture in enumerate(pictures(width, height, count)):
        picture.pts, picture.time_base = i, encoder.time_base
        picture.pict_type = PictureType.NONE  # testsrc2 marks its frames I: libvpx would obey
        packets += encoder.encode(picture)
    packets += encoder.encode(None)
    assert len(packets) == count
    return tuple(
        Frame(
            "video",
            codec,
            (bytes(p),),
            (RTP_BASE + (first + i) * 3000) & 0xFFFFFFFF,
            90000,
            p.is_keyframe,
            BASE + (first + i) / 30,
        )
        for i, p in enumerate(packets)
    )


def convert_all(transcoder: VideoTranscoder, frames: tuple[Frame, ...] | list[Frame]) -> list[list[Frame]]:
    return [transcoder.convert(frame) for frame in frames]


def decode(frames: list[Frame]) -> list[VideoFrame]:
    """Each H.264 frame through FFmpeg's decoder: exactly one picture each, at once (no delay)."""
    decoder = _context("h264", "r")
    decoder.thread_count = 1
    out = []
    for frame in frames:
        decoded = decoder.decode(av.Packet(annexb(frame)))
        assert len(decoded) == 1
        out += decoded
    return out


def luma_difference(a: VideoFrame, b: VideoFrame) -> float:
    """Mean absolute difference of the luma planes, every 4th pixel of every 4th row."""
    pa, pb = a.planes[0], b.planes[0]
    ba, bb = bytes(pa), bytes(pb)
    total = count = 0
    for y in range(0, a.height, 4):
        ra, rb = (
            ba[y * pa.line_size : y * pa.line_size + a.width],
            bb[y * pb.line_size : y * pb.line_size + b.width],
        )
        total += sum(abs(x - z) for x, z in zip(ra[::4], rb[::4], strict=True))
        count += len(ra[::4])
    return total / count


def nal_types(frame: Frame) -> list[int]:
    return [nal[0] & 0x1F for nal in frame.payload]


@pytest.mark.parametrize("codec", ["vp8", "vp9"])
def test_transcodes_to_decodable_h264(codec: str) -> None:
    frames = stream(codec)
    transcoder = VideoTranscoder(codec, gop_seconds=0.5)
    results = convert_all(transcoder, frames)
    assert [len(r) for r in results] == [1] * 30  # one access unit per frame, in the same call
    out = [r[0] for r in results]
    first = out[0]
    assert first.keyframe and nal_types(first)[:2] == [7, 8] and 5 in nal_types(first)
    sps = first.payload[0]
    assert sps[1] == 66 and sps[2] & 0x40  # profile_idc Baseline, constraint_set1: Constrained Baseline
    # IDRs every 0.5 s of input time (15 frames), not at the input's key frames (every 10)
    assert [i for i, f in enumerate(out) if f.keyframe] == [0, 15]
    for f in out:
        assert f.kind == "video" and f.codec == "h264" and f.clock_rate == 90000
        assert f.keyframe == (5 in nal_types(f))
        assert nal_types(f)[:2] == [7, 8] if f.keyframe else set(nal_types(f)) == {1}
        assert all(nal and b"\x00\x00\x01" not in nal for nal in f.payload)
    assert [(f.rtp_time, f.pts) for f in out] == [(f.rtp_time, f.pts) for f in frames]
    decoded = decode(out)
    assert {(p.width, p.height) for p in decoded} == {(320, 240)}
    source = pictures(320, 240, 30)
    for i in (0, 14, 29):  # the picture itself came through, not just a picture of the right size
        assert luma_difference(decoded[i], source[i]) < 12
    assert (transcoder.frames_in, transcoder.frames_out, transcoder.errors, transcoder.skipped_frames) == (
        30,
        30,
        0,
        0,
    )
    assert (transcoder.width, transcoder.height) == (320, 240)
    assert transcoder.seconds_busy > 0 and not transcoder.needs_keyframe


@pytest.mark.parametrize("codec", ["vp8", "vp9"])
def test_resolution_change_reopens_the_encoder(codec: str) -> None:
    frames = stream(codec, 320, 240, 15) + stream(codec, 160, 120, 15, first=15)
    transcoder = VideoTranscoder(codec)
    out = [f for r in convert_all(transcoder, frames) for f in r]
    assert len(out) == 30
    assert [i for i, f in enumerate(out) if f.keyframe] == [0, 15]
    assert nal_types(out[15])[:2] == [7, 8]
    sizes = [(p.width, p.height) for p in decode(out)]
    assert sizes == [(320, 240)] * 15 + [(160, 120)] * 15
    assert (transcoder.width, transcoder.height) == (160, 120) and transcoder.errors == 0


@pytest.mark.parametrize(
    ("codec", "pix_fmt", "width", "height"), [("vp8", "yuv420p", 161, 121), ("vp9", "yuv444p", 160, 120)]
)
def test_odd_sizes_and_other_pixel_formats(codec: str, pix_fmt: str, width: int, height: int) -> None:
    """An odd size loses its last column and row; VP9 4:4:4 (profile 1) becomes 4:2:0."""
    encoder = _context(VPX[codec], "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, pix_fmt
    encoder.time_base, encoder.bit_rate = Fraction(1, 30), 300_000
    encoder.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    encoder.open()
    packets = []
    for i, picture in enumerate(pictures(width, height, 5)):
        converted = picture.reformat(format=pix_fmt)
        converted.pts, converted.pict_type = i, PictureType.NONE
        packets += encoder.encode(converted)
    packets += encoder.encode(None)
    frames = [
        Frame("video", codec, (bytes(p),), i * 3000, 90000, p.is_keyframe, i / 30)
        for i, p in enumerate(packets)
    ]
    transcoder = VideoTranscoder(codec)
    out = [f for r in convert_all(transcoder, frames) for f in r]
    assert len(out) == 5 and transcoder.errors == 0
    assert {(p.width, p.height, p.format.name) for p in decode(out)} == {(width & ~1, height & ~1, "yuv420p")}


def test_waits_for_the_first_keyframe() -> None:
    frames = stream("vp8")[3:]  # frames 3..9 are inter frames, 10 is a key frame
    transcoder = VideoTranscoder("vp8")
    results = convert_all(transcoder, frames)
    assert results[:7] == [[]] * 7 and transcoder.skipped_frames == 7 and transcoder.errors == 0
    out = [f for r in results for f in r]
    assert len(out) == 20 and out[0].keyframe and out[0].pts == frames[7].pts
    assert len(decode(out)) == 20 and transcoder.frames_in == 27 and transcoder.frames_out == 20


def test_broken_frames_are_counted_and_skipped() -> None:
    frames = list(stream("vp8"))
    garbage = replace(frames[5], payload=(b"\x00garbage, not VP8" * 4,))
    wrong = [
        replace(frames[6], codec="h264"),
        replace(frames[6], payload=(b"",)),
        replace(frames[6], payload=(b"a", b"b")),
        replace(frames[6], kind="audio"),
        replace(frames[6], pts=float("nan")),
    ]
    transcoder = VideoTranscoder("vp8")
    head = convert_all(transcoder, frames[:5])
    assert transcoder.convert(garbage) == [] and transcoder.errors == 1 and transcoder.needs_keyframe
    assert convert_all(transcoder, wrong) == [[]] * 5 and transcoder.errors == 6
    # the decoder restarted: inter frames up to the next key frame (10) are skipped, then an IDR
    tail = convert_all(transcoder, frames[6:])
    assert tail[:4] == [[]] * 4 and transcoder.skipped_frames == 4 and not transcoder.needs_keyframe
    out = [f for r in head + tail for f in r]
    assert len(out) == 25 and out[5].keyframe and out[5].pts == frames[10].pts
    assert [f.keyframe for f in out].count(True) == 2
    assert len(decode(out)) == 25
    # the end of the stream starts afresh: the next inter frame waits for a key frame
    assert transcoder.convert(None) == [] and transcoder.convert(frames[11]) == []
    assert transcoder.needs_keyframe and transcoder.skipped_frames == 5
    assert transcoder.convert(frames[10])[0].keyframe


def test_arguments() -> None:
    cases: list[tuple[tuple[str, ...], dict[str, Any]]] = [
        (("h264",), {}),
        (("vp8", "vp9"), {}),
        (("vp8",), {"bit_rate": 0}),
        (("vp8",), {"gop_seconds": 0}),
        (("vp8",), {"preset": "warp"}),
    ]
    for args, kwargs in cases:
        with pytest.raises(ValueError):
            VideoTranscoder(*args, **kwargs)
    assert PRESETS[0] == "ultrafast"
    assert default_bit_rate(1280, 720) == 2_000_000 and default_bit_rate(640, 480) == 667_000
    assert default_bit_rate(160, 120) == 150_000


async def test_worker_thread_off_the_loop_and_close() -> None:
    frames = stream("vp9", 640, 480, 20)
    transcoder = VideoTranscoder("vp9")
    ticks = 0
    done = False

    async def ticker() -> None:
        nonlocal ticks
        while not done:
            await asyncio.sleep(0.002)
            ticks += 1

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    started = time.perf_counter()
    futures = [transcoder.push(frame) for frame in frames]  # a burst: queued at once, in order
    assert transcoder.pending > 0
    pushed_ticks = ticks
    results = await asyncio.gather(*futures)
    elapsed = time.perf_counter() - started
    done = True
    await task
    assert pushed_ticks == 0  # push() itself did not convert
    assert ticks >= 3, f"the loop ticked {ticks} times in {elapsed * 1000:.0f} ms"
    out = [f for r in results for f in r]
    assert [f.pts for f in out] == [f.pts for f in frames] and transcoder.pending == 0
    names = [t.name for t in threading.enumerate()]
    assert any(n.startswith("transcode-vp9-h264") for n in names)
    await transcoder.close()
    await transcoder.close()  # idempotent
    assert not any(t.name.startswith("transcode-vp9-h264") for t in threading.enumerate())
    assert await transcoder.push(frames[0]) == [] and transcoder.frames_in == 20
