"""Transcode benchmark: CPU and latency per stream of AAC → Opus and Opus → AAC (rtcdn.transcode).

    .venv/bin/python bench/transcode.py [--streams 1,4,16] [--seconds 5]

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

Figures only, no pass/fail. Results also go to ``bench/results/transcode.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from av.audio.codeccontext import AudioCodecContext
from av.filter import Graph

from _server import percentile_sorted, write_results
from rtcdn.rtp.frame import Frame
from rtcdn.transcode import AudioTranscoder

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


def table(runs: list[dict[str, Any]]) -> str:
    rows = [[head for head, _ in COLUMNS]] + [[cell(r) for _, cell in COLUMNS] for r in runs]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)) for row in rows)


LEGEND = """\
CPU/stream = the transcoder's thread CPU time in convert() per second of audio, % of one core; process CPU/stream
= the whole benchmark process / N (loop, futures and thread hand-offs included); process CPU = % of one core over
the run; latency = push() -> result on the loop; media delay = newest input frame's end - output frame's end when
it comes out (codec lookahead + framing); late = frames pushed > 1 frame after due; backlog = most queued
conversions on one transcoder. Machine: {cores} cores."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    add = parser.add_argument
    add("--streams", default="1,4,16", help="comma-separated concurrent stream counts (default 1,4,16)")
    add("--seconds", type=float, default=5, help="seconds of audio per stream and run (default 5)")
    add("--directions", default="aac-opus,opus-aac", help="default aac-opus,opus-aac")
    add("--output", type=Path, default=RESULTS, help="JSON results (default bench/results/transcode.json)")
    args = parser.parse_args(argv)
    counts = [int(x) for x in args.streams.split(",") if x.strip()]
    directions = [tuple(d.split("-")) for d in args.directions.split(",") if d.strip()]
    if not counts or any(n < 1 for n in counts):
        parser.error("--streams: counts must be >= 1")
    if any(d not in (("aac", "opus"), ("opus", "aac")) for d in directions):
        parser.error("--directions: aac-opus and/or opus-aac")

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
    cores = len(os.sched_getaffinity(0))
    print(LEGEND.format(cores=cores))
    report = {
        "benchmark": "transcode",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cores": cores, "python": platform.python_version(), "platform": platform.platform()},
        "pyav": {"version": av.__version__, "ffmpeg": av.ffmpeg_version_info},
        "config": {"streams": counts, "seconds": args.seconds, "directions": args.directions},
        "source_kbps": kbps,
        "back_to_back_cpu_per_stream": burst,
        "runs": runs,
    }
    write_results(args.output, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
