"""Transcode benchmark: CPU and latency per stream of AAC ↔ Opus and VP8 → H.264 (rtcdn.transcode).

    .venv/bin/python bench/transcode.py [--parts audio,video] [--streams 1,4,16] [--seconds 5]
        [--video-sizes 480p,720p] [--video-streams 1,2] [--video-seconds 10]

The source is encoded once with PyAV: 48 kHz stereo, two chords of tones per channel, one of them
amplitude-modulated, over white noise at -30 dB (a richer signal than a test tone; encoders work
harder on it), as AAC-LC 128 kbps (1024-sample frames, what OBS and ffmpeg send over RTMP) and as
Opus 64 kbps (20 ms frames, what a browser sends). For each direction and N, N
:class:`~rtcdn.transcode.AudioTranscoder` s (one worker thread each) are fed in real time on one
asyncio loop, each stream by a task of its own (starts staggered over one frame), frames pushed
when due without waiting for the previous result, for ``--seconds`` of audio. Figures:

- CPU/stream: the transcoders' own ``seconds_busy`` (thread CPU time inside ``convert``) per second
  of audio, in % of one core; process CPU/stream: the whole process (loop, futures, threads) / N;
- latency p50/p99: push → result on the loop (wall clock: conversion plus waiting for a core);
- media delay p50/max: how far an output frame's end lags the newest input frame's end when it
  comes out: the codecs' lookahead plus the FIFO waiting for a whole output frame; load-free;
- late: frames pushed more than one frame after they were due (the loop fell behind), backlog:
  the most conversions queued on one transcoder.

Before the runs, one stream per direction is converted back to back on the main thread (warm caches,
no thread hand-offs): the codecs' CPU cost with nothing else in the way.

Video (``--parts video``): VP8 as a browser sends it, encoded once per size with libvpx (realtime,
CBR ~1 Mbit/s at 480p, ~2.5 Mbit/s at 720p, a key frame every 5 s) from FFmpeg's ``testsrc2``
(moving shapes, scrolling gradients, a counter) with temporal noise over it, like a camera's
sensor noise: every frame differs everywhere, so neither codec gets a static picture. For each
size and N, N :class:`~rtcdn.transcode.video.VideoTranscoder` s (defaults: ultrafast, 2 s GOP,
:func:`~rtcdn.transcode.video.default_bit_rate`) are fed at 30 fps in real time as above. Figures:
CPU/stream (thread CPU time in ``convert`` per second of video, % of one core), ms per frame p50/p99
(thread CPU time of each ``convert``), latency p50/p99 (push → result on the loop, wall clock),
backlog, and "real time": no stream ever had more than 3 frames (100 ms) queued. Before the runs,
each size is decoded alone and transcoded back to back on the main thread (the codecs' own cost).

Figures only, no pass/fail. Results also go to ``bench/results/transcode.json``; a part not run
keeps its figures from the file already there.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from fractions import Fraction
from itertools import pairwise
from pathlib import Path
from typing import Any

import av
from av.audio.codeccontext import AudioCodecContext
from av.filter import Graph
from av.video.codeccontext import VideoCodecContext
from av.video.frame import PictureType, VideoFrame

from _report import machine, percentile_sorted, write_results
from rtcdn.rtp.frame import Frame
from rtcdn.transcode import AudioTranscoder
from rtcdn.transcode.video import VideoTranscoder, default_bit_rate

RESULTS = Path(__file__).resolve().parent / "results" / "transcode.json"
RATE = 48000
SIGNAL = (
    "0.2*sin(2*PI*440*t)+0.1*sin(2*PI*660*t)*(0.5+0.5*sin(2*PI*0.7*t))+0.03*(2*random(0)-1)"
    "|0.2*sin(2*PI*554*t)+0.1*sin(2*PI*880*t)+0.03*(2*random(1)-1)"
)


def encode_source(codec: str, seconds: float) -> tuple[list[Frame], bytes]:
    """The bench signal as ``aac`` or ``opus`` frames stamped from pts 0, and the extradata."""
    encoder = av.CodecContext.create("aac" if codec == "aac" else "libopus", "w")
    assert isinstance(encoder, AudioCodecContext)
    encoder.sample_rate, encoder.layout = RATE, "stereo"
    encoder.format = "fltp" if codec == "aac" else "flt"
    encoder.bit_rate = 128000 if codec == "aac" else 64000
    encoder.time_base = Fraction(1, RATE)
    encoder.open()
    graph = Graph()
    source = graph.add("aevalsrc", f"exprs={SIGNAL}:sample_rate={RATE}:nb_samples={encoder.frame_size}")
    fmt = graph.add("aformat", f"sample_fmts={encoder.format.name}:channel_layouts=stereo")
    sink = graph.add("abuffersink")
    source.link_to(fmt)
    fmt.link_to(sink)
    graph.configure()
    packets = []
    for i in range(round(seconds * RATE / encoder.frame_size)):
        audio = sink.pull()
        assert isinstance(audio, av.AudioFrame)
        audio.pts, audio.time_base = i * encoder.frame_size, encoder.time_base
        packets += encoder.encode(audio)
    shift = -min(p.pts or 0 for p in packets)  # the priming packet at -priming
    frames = [
        Frame("audio", codec, (bytes(p),), (p.pts or 0) + shift, RATE, True, ((p.pts or 0) + shift) / RATE)
        for p in packets
    ]
    return frames, encoder.extradata or b""


async def run(source: str, target: str, n: int, frames: list[Frame], extradata: bytes) -> dict[str, Any]:
    """N streams of ``frames`` through N transcoders in real time; the figures of :func:`table`."""
    loop = asyncio.get_running_loop()
    step = frames[1].pts - frames[0].pts
    transcoders = [
        AudioTranscoder(source, target, extradata=extradata if source == "aac" else None) for _ in range(n)
    ]
    latencies: list[float] = []
    delays: list[float] = []
    late = backlog = out_bytes = 0
    out_step = (960 if target == "opus" else 1024) / RATE

    async def stream(index: int, transcoder: AudioTranscoder) -> None:
        nonlocal late, backlog
        start = loop.time() + index * step / n
        futures = []
        for i, frame in enumerate(frames):
            due = start + i * step
            await asyncio.sleep(max(0.0, due - loop.time()))
            late += loop.time() - due > step
            pushed = time.perf_counter()
            future = transcoder.push(frame)
            backlog = max(backlog, transcoder.pending)
            end = frame.pts + step

            def done(f: asyncio.Future[list[Frame]], pushed: float = pushed, end: float = end) -> None:
                nonlocal out_bytes
                latencies.append(time.perf_counter() - pushed)
                delays.extend(end - (o.pts + out_step) for o in f.result())
                out_bytes += sum(o.size for o in f.result())

            future.add_done_callback(done)
            futures.append(future)
        await asyncio.gather(*futures)

    cpu = time.process_time()
    wall = time.perf_counter()
    await asyncio.gather(*(stream(i, t) for i, t in enumerate(transcoders)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    await asyncio.gather(*(t.close() for t in transcoders))
    audio = len(frames) * step
    latencies.sort()
    delays.sort()
    busy = sum(t.seconds_busy for t in transcoders)
    return {
        "direction": f"{source}->{target}",
        "streams": n,
        "audio_seconds": audio,
        "wall_seconds": wall,
        "cpu_per_stream": 100 * busy / n / audio,
        "process_cpu_per_stream": 100 * cpu / n / audio,
        "process_cpu": 100 * cpu / wall,
        "latency_p50_ms": 1000 * percentile_sorted(latencies, 50),
        "latency_p99_ms": 1000 * percentile_sorted(latencies, 99),
        "media_delay_p50_ms": 1000 * percentile_sorted(delays, 50),
        "media_delay_max_ms": 1000 * delays[-1],
        "late_frames": late,
        "max_backlog": backlog,
        "frames_in": sum(t.frames_in for t in transcoders),
        "frames_out": sum(t.frames_out for t in transcoders),
        "errors": sum(t.errors for t in transcoders),
        "out_kbps": out_bytes * 8 / n / audio / 1000,
    }


COLUMNS = [
    ("direction", lambda r: r["direction"]),
    ("N", lambda r: str(r["streams"])),
    ("CPU/stream %", lambda r: f"{r['cpu_per_stream']:.2f}"),
    ("process CPU/stream %", lambda r: f"{r['process_cpu_per_stream']:.2f}"),
    ("process CPU %", lambda r: f"{r['process_cpu']:.1f}"),
    ("latency p50/p99 ms", lambda r: f"{r['latency_p50_ms']:.2f}/{r['latency_p99_ms']:.2f}"),
    ("media delay p50/max ms", lambda r: f"{r['media_delay_p50_ms']:.1f}/{r['media_delay_max_ms']:.1f}"),
    ("late", lambda r: str(r["late_frames"])),
    ("backlog", lambda r: str(r["max_backlog"])),
    ("out kbps", lambda r: f"{r['out_kbps']:.0f}"),
    ("errors", lambda r: str(r["errors"])),
]


def table(runs: list[dict[str, Any]], columns: list[Any] = COLUMNS) -> str:
    rows = [[head for head, _ in columns]] + [[cell(r) for _, cell in columns] for r in runs]
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    return "\n".join("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)) for row in rows)


LEGEND = """\
CPU/stream = the transcoder's thread CPU time in convert() per second of audio, % of one core; process CPU/stream
= the whole benchmark process / N (loop, futures and thread hand-offs included); process CPU = % of one core over
the run; latency = push() -> result on the loop; media delay = newest input frame's end - output frame's end when
it comes out (codec lookahead + framing); late = frames pushed > 1 frame after due; backlog = most queued
conversions on one transcoder. Machine: {cores} cores."""


# --- video: VP8 -> H.264 -----------------------------------------------------------------------------

FPS = 30
VIDEO_SIZES = {"480p": (640, 480), "720p": (1280, 720)}
VP8_RATES = {"480p": 1_000_000, "720p": 2_500_000}
"What Chromium sends at these sizes, roughly."
NOISE = "alls=10:allf=t"
"FFmpeg ``noise``: temporal noise, new in every frame (a camera's sensor noise)."


def encode_video(size: str, seconds: float) -> list[Frame]:
    """The moving test picture as VP8 frames at 30 fps, stamped from pts 0 and RTP time 0."""
    width, height = VIDEO_SIZES[size]
    graph = Graph()
    chain = [
        graph.add("testsrc2", f"size={width}x{height}:rate={FPS}"),
        graph.add("noise", NOISE),
        graph.add("format", "pix_fmts=yuv420p"),
        graph.add("buffersink"),
    ]
    for a, b in pairwise(chain):
        a.link_to(b)
    graph.configure()
    encoder = av.CodecContext.create("libvpx", "w")
    assert isinstance(encoder, VideoCodecContext)
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
    encoder.time_base, encoder.framerate, encoder.gop_size = Fraction(1, FPS), Fraction(FPS), 5 * FPS
    encoder.bit_rate = VP8_RATES[size]
    encoder.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0", "auto-alt-ref": "0"}
    encoder.options |= {"minrate": str(VP8_RATES[size]), "maxrate": str(VP8_RATES[size])}
    encoder.open()
    packets = []
    for i in range(round(seconds * FPS)):
        picture = chain[-1].pull()
        assert isinstance(picture, VideoFrame)
        picture.pts, picture.time_base = i, encoder.time_base
        picture.pict_type = PictureType.NONE  # testsrc2 marks every frame I: libvpx would obey
        packets += encoder.encode(picture)
    packets += encoder.encode(None)
    return [
        Frame("video", "vp8", (bytes(p),), i * 90000 // FPS, 90000, p.is_keyframe, i / FPS)
        for i, p in enumerate(packets)
    ]


class TimedTranscoder(VideoTranscoder):
    """A :class:`VideoTranscoder` that keeps each :meth:`convert`'s thread CPU time (IDRs' apart too)."""

    def __init__(self) -> None:
        super().__init__("vp8")
        self.costs: list[float] = []
        self.idr_costs: list[float] = []
        "The first one includes opening the encoder."

    def convert(self, frame: Frame | None) -> list[Frame]:
        before = self.seconds_busy
        out = super().convert(frame)
        self.costs.append(self.seconds_busy - before)
        if any(f.keyframe for f in out):
            self.idr_costs.append(self.costs[-1])
        return out


def back_to_back(frames: list[Frame]) -> dict[str, float]:
    """One stream on this thread, no hand-offs: decode alone, then decode + encode (ms per frame)."""
    decoder = av.CodecContext.create("vp8", "r")
    decoder.thread_count = 1
    start = time.thread_time()
    for frame in frames:
        decoder.decode(av.Packet(frame.payload[0]))
    decode = time.thread_time() - start
    warm = VideoTranscoder("vp8")
    for frame in frames[:10]:
        warm.convert(frame)
    hot = TimedTranscoder()
    for frame in frames:
        hot.convert(frame)
    costs = sorted(hot.costs)
    return {
        "decode_ms": 1000 * decode / len(frames),
        "transcode_ms": 1000 * hot.seconds_busy / len(frames),
        "transcode_p99_ms": 1000 * percentile_sorted(costs, 99),
        "cpu_per_stream": 100 * hot.seconds_busy / (len(frames) / FPS),
    }


async def run_video(size: str, n: int, frames: list[Frame]) -> dict[str, Any]:
    """N streams of VP8 ``frames`` through N transcoders at 30 fps in real time; see :data:`VIDEO_COLUMNS`."""
    loop = asyncio.get_running_loop()
    step = 1 / FPS
    transcoders = [TimedTranscoder() for _ in range(n)]
    latencies: list[float] = []
    late = backlog = out_bytes = idrs = 0

    async def stream(index: int, transcoder: TimedTranscoder) -> None:
        nonlocal late, backlog
        start = loop.time() + index * step / n
        futures = []
        for i, frame in enumerate(frames):
            due = start + i * step
            await asyncio.sleep(max(0.0, due - loop.time()))
            late += loop.time() - due > step
            pushed = time.perf_counter()
            future = transcoder.push(frame)
            backlog = max(backlog, transcoder.pending)

            def done(f: asyncio.Future[list[Frame]], pushed: float = pushed) -> None:
                nonlocal out_bytes, idrs
                latencies.append(time.perf_counter() - pushed)
                out_bytes += sum(o.size for o in f.result())
                idrs += sum(o.keyframe for o in f.result())

            future.add_done_callback(done)
            futures.append(future)
        await asyncio.gather(*futures)

    cpu = time.process_time()
    wall = time.perf_counter()
    await asyncio.gather(*(stream(i, t) for i, t in enumerate(transcoders)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    await asyncio.gather(*(t.close() for t in transcoders))
    video = len(frames) * step
    latencies.sort()
    costs = sorted(c for t in transcoders for c in t.costs)
    idr_costs = sorted(c for t in transcoders for c in t.idr_costs[1:])
    busy = sum(t.seconds_busy for t in transcoders)
    width, height = VIDEO_SIZES[size]
    return {
        "size": size,
        "width": width,
        "height": height,
        "streams": n,
        "video_seconds": video,
        "wall_seconds": wall,
        "cpu_per_stream": 100 * busy / n / video,
        "process_cpu": 100 * cpu / wall,
        "ms_per_frame_p50": 1000 * percentile_sorted(costs, 50),
        "ms_per_frame_p99": 1000 * percentile_sorted(costs, 99),
        "idr_ms_p50": 1000 * percentile_sorted(idr_costs, 50) if idr_costs else None,
        "first_frame_ms": 1000 * max(t.costs[0] for t in transcoders),
        "latency_p50_ms": 1000 * percentile_sorted(latencies, 50),
        "latency_p99_ms": 1000 * percentile_sorted(latencies, 99),
        "latency_max_ms": 1000 * latencies[-1],
        "late_frames": late,
        "max_backlog": backlog,
        "real_time": backlog <= 3,
        "frames_in": sum(t.frames_in for t in transcoders),
        "frames_out": sum(t.frames_out for t in transcoders),
        "idr_per_stream": idrs / n,
        "errors": sum(t.errors for t in transcoders),
        "out_kbps": out_bytes * 8 / n / video / 1000,
        "target_kbps": default_bit_rate(width, height) / 1000,
    }


VIDEO_COLUMNS = [
    ("VP8 -> H.264", lambda r: f"{r['size']} {r['width']}x{r['height']}"),
    ("N", lambda r: str(r["streams"])),
    ("CPU/stream %", lambda r: f"{r['cpu_per_stream']:.1f}"),
    ("process CPU %", lambda r: f"{r['process_cpu']:.1f}"),
    ("ms/frame p50/p99", lambda r: f"{r['ms_per_frame_p50']:.2f}/{r['ms_per_frame_p99']:.2f}"),
    ("IDR/first ms", lambda r: f"{r['idr_ms_p50'] or 0:.1f}/{r['first_frame_ms']:.1f}"),
    (
        "latency p50/p99/max ms",
        lambda r: f"{r['latency_p50_ms']:.1f}/{r['latency_p99_ms']:.1f}/{r['latency_max_ms']:.1f}",
    ),
    ("backlog", lambda r: str(r["max_backlog"])),
    ("late", lambda r: str(r["late_frames"])),
    ("real time", lambda r: "yes" if r["real_time"] else "NO"),
    ("out/target kbps", lambda r: f"{r['out_kbps']:.0f}/{r['target_kbps']:.0f}"),
    ("IDRs", lambda r: f"{r['idr_per_stream']:.0f}"),
    ("errors", lambda r: str(r["errors"])),
]

VIDEO_LEGEND = """\
CPU/stream = the transcoder's thread CPU time in convert() per second of video, % of one core; process CPU = the
whole benchmark process over the run, % of one core; ms/frame = thread CPU time of one convert() (decode + encode);
IDR/first = the same for an IDR (p50, the first one left out) and for the first frame (it opens the encoder);
latency = push() -> result on the loop (conversion plus waiting for a core); backlog = most frames queued on one
transcoder; real time = backlog never above 3 frames (100 ms); late = frames pushed > 1 frame after due; IDRs per
stream (one at the start, then every 2 s). Source: VP8 {vp8} of testsrc2 + noise {noise}, 30 fps. Machine: {cores}
cores."""


def video_part(args: argparse.Namespace) -> dict[str, Any]:
    sizes = [s.strip() for s in args.video_sizes.split(",") if s.strip()]
    counts = [int(x) for x in args.video_streams.split(",") if x.strip()]
    started = time.monotonic()
    sources = {size: encode_video(size, args.video_seconds) for size in sizes}
    kbps = {s: sum(f.size for f in fs) * 8 / args.video_seconds / 1000 for s, fs in sources.items()}
    print(
        "video source: VP8 "
        + ", ".join(f"{s} {kbps[s]:.0f} kbps" for s in sizes)
        + f", {args.video_seconds:g} s at {FPS} fps, encoded in {time.monotonic() - started:.1f} s",
        flush=True,
    )
    burst = {size: back_to_back(sources[size]) for size in sizes}
    for size, b in burst.items():
        print(
            f"back to back, one stream on one thread, {size}: VP8 decode {b['decode_ms']:.2f} ms/frame, "
            f"decode + H.264 encode {b['transcode_ms']:.2f} ms/frame (p99 {b['transcode_p99_ms']:.2f}), "
            f"{b['cpu_per_stream']:.1f} % of a core at {FPS} fps",
            flush=True,
        )
    runs = []
    for size in sizes:
        for n in counts:
            r = asyncio.run(run_video(size, n, sources[size]))
            print(f"vp8->h264 {size} N={n}: {r['cpu_per_stream']:.1f} % of a core per stream", flush=True)
            runs.append(r)
    print()
    print(table(runs, VIDEO_COLUMNS))
    print()
    vp8 = ", ".join(f"{s} {kbps[s]:.0f} kbps" for s in sizes)
    print(VIDEO_LEGEND.format(vp8=vp8, noise=NOISE, cores=len(os.sched_getaffinity(0))))
    return {
        "video_config": {"sizes": sizes, "streams": counts, "seconds": args.video_seconds, "fps": FPS},
        "video_source": {"codec": "vp8", "picture": f"testsrc2 + noise {NOISE}", "kbps": kbps},
        "video_back_to_back": burst,
        "video_runs": runs,
    }


AUDIO_KEYS = ("config", "source_kbps", "back_to_back_cpu_per_stream", "runs")
VIDEO_KEYS = ("video_config", "video_source", "video_back_to_back", "video_runs")


def audio_part(
    args: argparse.Namespace, counts: list[int], directions: list[tuple[str, ...]]
) -> dict[str, Any]:
    started = time.monotonic()
    sources = {codec: encode_source(codec, args.seconds) for codec in ("aac", "opus")}
    kbps = {c: sum(f.size for f in fs) * 8 / args.seconds / 1000 for c, (fs, _) in sources.items()}
    print(
        f"source: 48 kHz stereo, AAC-LC {kbps['aac']:.0f} kbps (1024-sample frames), Opus {kbps['opus']:.0f} kbps "
        f"(20 ms), {args.seconds:g} s, encoded in {time.monotonic() - started:.1f} s",
        flush=True,
    )
    burst = {}
    for source, target in directions:  # warm-up (codec tables, first calls), then back to back on this thread
        frames, extradata = sources[source]
        warm = AudioTranscoder(source, target, extradata=extradata if source == "aac" else None)
        for frame in frames[:50]:
            warm.convert(frame)
        hot = AudioTranscoder(source, target, extradata=extradata if source == "aac" else None)
        for frame in frames:
            hot.convert(frame)
        burst[f"{source}->{target}"] = 100 * hot.seconds_busy / args.seconds
    print("back to back, one stream on one thread: " + ", ".join(f"{d} {c:.2f} %" for d, c in burst.items()))
    runs = []
    for source, target in directions:
        frames, extradata = sources[source]
        for n in counts:
            r = asyncio.run(run(source, target, n, frames, extradata))
            print(f"{source}->{target} N={n}: {r['cpu_per_stream']:.2f} % of a core per stream", flush=True)
            runs.append(r)
    print()
    print(table(runs))
    print()
    print(LEGEND.format(cores=len(os.sched_getaffinity(0))))
    return {
        "config": {"streams": counts, "seconds": args.seconds, "directions": args.directions},
        "source_kbps": kbps,
        "back_to_back_cpu_per_stream": burst,
        "runs": runs,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    add = parser.add_argument
    add("--parts", default="audio,video", help="audio and/or video (default audio,video)")
    add("--streams", default="1,4,16", help="comma-separated concurrent stream counts (default 1,4,16)")
    add("--seconds", type=float, default=5, help="seconds of audio per stream and run (default 5)")
    add("--directions", default="aac-opus,opus-aac", help="default aac-opus,opus-aac")
    add("--video-sizes", default="480p,720p", help="480p and/or 720p (default 480p,720p)")
    add("--video-streams", default="1,2", help="comma-separated concurrent video stream counts (default 1,2)")
    add("--video-seconds", type=float, default=10, help="seconds of video per stream and run (default 10)")
    add("--output", type=Path, default=RESULTS, help="JSON results (default bench/results/transcode.json)")
    args = parser.parse_args(argv)
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    counts = [int(x) for x in args.streams.split(",") if x.strip()]
    directions = [tuple(d.split("-")) for d in args.directions.split(",") if d.strip()]
    video_counts = [int(x) for x in args.video_streams.split(",") if x.strip()]
    if not parts or not parts <= {"audio", "video"}:
        parser.error("--parts: audio and/or video")
    if not counts or any(n < 1 for n in counts) or not video_counts or any(n < 1 for n in video_counts):
        parser.error("--streams, --video-streams: counts must be >= 1")
    if any(d not in (("aac", "opus"), ("opus", "aac")) for d in directions):
        parser.error("--directions: aac-opus and/or opus-aac")
    if not all(s.strip() in VIDEO_SIZES for s in args.video_sizes.split(",") if s.strip()):
        parser.error("--video-sizes: 480p and/or 720p")
    if args.video_seconds < 1:
        parser.error("--video-seconds: at least 1")

    cores = len(os.sched_getaffinity(0))
    report: dict[str, Any] = {
        "benchmark": "transcode",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {**machine(), "cores": cores},
        "pyav": {"version": av.__version__, "ffmpeg": av.ffmpeg_version_info},
    }
    try:  # a part not run keeps its figures from the last run
        previous = json.loads(args.output.read_text())
    except (OSError, ValueError):
        previous = {}
    for part, keys in (("audio", AUDIO_KEYS), ("video", VIDEO_KEYS)):
        if part not in parts:
            report |= {k: previous[k] for k in keys if k in previous}
    if "audio" in parts:
        report |= audio_part(args, counts, directions)
    if "video" in parts:
        if "audio" in parts:
            print()
        report |= video_part(args)
    write_results(args.output, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
