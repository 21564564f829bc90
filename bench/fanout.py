"""Fan-out benchmark: one publisher, N counting players, rtcdn in its own process.

    .venv/bin/python bench/fanout.py [--players 1,10,50] [--seconds 15]

For each N a fresh server is started on a dedicated loopback address. A publisher process replays a
pre-encoded VP8 (+ Opus) clip in real time; the server's CPU is first measured with the publisher
alone (the N=0 baseline), then N players join from worker processes (``--per-worker`` players each,
one asyncio loop per process) and, once all of them are PLAYING, the server's CPU, RSS and the
players' packet counts are measured over a window of ``--seconds``. Players do not decode; they count
SRTP packets, sequence gaps per SSRC and the time from sending ``playStream`` to the first complete
VP8 keyframe. Server, publisher and players share the machine: the generator's CPU is printed too.

Figures only, no pass/fail. Results also go to ``bench/results/fanout.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from dataclasses import asdict
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
import psutil  # type: ignore[import-untyped]

from _chromium import VIEWERS
from _linux import udp_counters, udp_errors
from _media import Clip, ClipTrack, encode_audio, encode_video
from _procs import ServerProcess, Worker, measure, serve_commands, split
from _report import (
    RESULTS,
    Columns,
    add_client_options,
    add_clip_options,
    add_output_options,
    cell,
    clip_size,
    config,
    counts,
    machine,
    parser,
    player_summary,
    write_results,
)
from _report import table as render_table
from _wcs import LeanPlayer, Publisher

__all__ = ["Worker", "_summarize", "players_main", "publisher_main"]

STREAM = "bench"


# --- worker processes -------------------------------------------------------------------------


def publisher_main(conn: Connection, url: str, address: str, video: Clip, audio: Clip | None) -> None:
    async def main() -> None:
        async with aiohttp.ClientSession() as http:
            tracks = [ClipTrack("video", video)] + ([ClipTrack("audio", audio)] if audio else [])
            publisher = Publisher(http, url, address)
            try:
                await publisher.publish(STREAM, tracks)
            except Exception as exc:
                conn.send({"ok": False, "error": f"{type(exc).__name__}: {exc}"})
                await publisher.close()
                return
            conn.send({"ok": True})

            def stop(_: Any) -> dict[str, Any]:
                return {"keyframe_requests": tracks[0].keyframe_requests, "clip_restarts": tracks[0].restarts}

            await serve_commands(conn, {"stop": stop})
            await publisher.close()

    asyncio.run(main())


def players_main(
    conn: Connection, url: str, address: str, count: int, concurrency: int, viewer: str = "lean"
) -> None:
    async def main() -> None:
        async with aiohttp.ClientSession() as http:
            players = [LeanPlayer(http, url, address, viewer) for _ in range(count)]
            gate = asyncio.Semaphore(concurrency)

            async def start(player: LeanPlayer) -> None:
                async with gate:
                    try:
                        await player.play(STREAM)
                    except Exception as exc:
                        player.result.error = f"{type(exc).__name__}: {exc}"

            await asyncio.gather(*(start(p) for p in players))
            conn.send(
                {
                    "playing": sum(p.result.ok for p in players),
                    "errors": [p.result.error for p in players if not p.result.ok],
                }
            )

            def stop(_: Any) -> list[dict[str, Any]]:
                return [asdict(p.finish()) for p in players]

            await serve_commands(conn, {"count": lambda _: sum(p.packets for p in players), "stop": stop})
            await asyncio.wait([asyncio.ensure_future(p.close()) for p in players], timeout=15)

    asyncio.run(main())


# --- one run ------------------------------------------------------------------------------------


_summarize = player_summary
"The players' figures (``_report.player_summary``; the old name, which bench/viewer_memory.py imports)."


def _drive(
    n: int, args: argparse.Namespace, server: ServerProcess, video: Clip, audio: Clip | None
) -> dict[str, Any]:
    """Publisher, baseline window, ``n`` players, measurement window, players leave, publisher leaves."""
    assert server.ps is not None
    out: dict[str, Any] = {"players": n}
    publisher = Worker(publisher_main, server.ws_url, args.client_address, video, audio)
    workers: list[Worker] = []
    try:
        ready = publisher.receive(60)
        if not ready["ok"]:
            raise RuntimeError(f"publisher failed: {ready['error']}")
        time.sleep(args.warmup)
        base = measure({"server": [server.ps], "publisher": [publisher.ps]}, args.baseline_seconds)
        out["baseline"] = {
            "server_cpu": base.cpu["server"],
            "server_rss": server.ps.memory_info().rss,
            "publisher_cpu": base.cpu["publisher"],
            "others_cpu": base.others,
            "box_cpu": base.box,
        }

        udp_before = udp_counters()
        started = time.monotonic()
        sizes = split(n, args.per_worker)
        workers = [
            Worker(players_main, server.ws_url, args.client_address, k, args.join_concurrency, args.viewer)
            for k in sizes
        ]
        joins = [w.receive(120 + 2 * k) for w, k in zip(workers, sizes, strict=True)]
        out["join_seconds"] = time.monotonic() - started
        out["playing"] = sum(j["playing"] for j in joins)
        out["join_errors"] = [e for j in joins for e in j["errors"]]
        time.sleep(args.settle)

        packets_before = sum(w.request("count") for w in workers)
        window = measure(
            {"server": [server.ps], "publisher": [publisher.ps], "players": [w.ps for w in workers]},
            args.seconds,
        )
        packets_after = sum(w.request("count") for w in workers)
        server_cpu = window.cpu["server"]
        out.update(
            window_seconds=window.seconds,
            server_cpu=server_cpu,
            server_cpu_per_player=server_cpu / n,
            server_cpu_per_player_over_baseline=(server_cpu - base.cpu["server"]) / n,
            server_rss=server.ps.memory_info().rss,
            publisher_cpu=window.cpu["publisher"],
            players_cpu=window.cpu["players"],
            others_cpu=window.others,
            box_cpu=window.box,
            packets_per_player_per_second=(packets_after - packets_before)
            / window.seconds
            / max(1, out["playing"]),
        )
        out["server_rss_per_player"] = (out["server_rss"] - out["baseline"]["server_rss"]) / n

        results = [r for w in workers for r in w.request("stop", timeout=60)]
        for w in workers:
            w.join()
        out["udp_errors"] = udp_errors(udp_before, udp_counters())
        out.update(player_summary(results))

        time.sleep(1)
        after = measure({"server": [server.ps]}, args.after_seconds)
        out["after_players_left"] = {
            "server_cpu": after.cpu["server"],
            "server_rss": server.ps.memory_info().rss,
        }
        out["publisher"] = publisher.request("stop")
        publisher.join()
        return out
    finally:
        for w in [*workers, publisher]:
            if w.process.is_alive():
                w.process.kill()
                w.join()


def run(n: int, args: argparse.Namespace, video: Clip, audio: Clip | None) -> dict[str, Any]:
    """One measurement with a fresh server."""
    with tempfile.TemporaryDirectory(prefix="rtcdn-fanout-") as tmp:
        server = ServerProcess(
            f"N{n}",
            args.address,
            Path(tmp),
            args.media_ports,
            ws_port=args.ws_port,
            options={"--http-ports": "0"},
        )
        server.start()
        try:
            out = _drive(n, args, server, video, audio)
        finally:
            server.stop()
            server.keep_log(args.logs)
        out["server"] = {
            "exit_code": server.exit_code,
            "shutdown_seconds": server.shutdown_seconds,
            "log_problems": server.problems()[:20],
        }
    return out


# --- report ---------------------------------------------------------------------------------------


COLUMNS: Columns = [
    ("N", lambda r: str(r["players"])),
    ("playing", lambda r: f"{r['playing']}/{r['players']}" if r["players"] else "-"),
    ("srv CPU%", cell("server_cpu", ".1f")),
    ("/player", cell("server_cpu_per_player", ".2f")),
    ("Δ/player", cell("server_cpu_per_player_over_baseline", ".2f")),
    ("RSS MiB", cell("server_rss", ".1f", 2**-20)),
    ("ΔRSS/pl KiB", cell("server_rss_per_player", ".0f", 2**-10)),
    ("pkt/s/pl", cell("packets_per_player_per_second", ".0f")),
    ("loss %", cell("loss_percent", ".3f")),
    ("1st KF p50 ms", cell("keyframe_p50", ".0f", 1000)),
    ("p95 ms", cell("keyframe_p95", ".0f", 1000)),
    ("pub CPU%", cell("publisher_cpu", ".1f")),
    ("players CPU%", cell("players_cpu", ".1f")),
    ("others CPU%", cell("others_cpu", ".0f")),
    ("box %", cell("box_cpu", ".0f")),
]


def table(runs: list[dict[str, Any]]) -> str:
    """One row per N, after a row for N=0: the publisher-only baselines, averaged over the runs."""
    baseline = {key: sum(r["baseline"][key] for r in runs) / len(runs) for key in runs[0]["baseline"]}
    return render_table([{"players": 0, **baseline}, *runs], COLUMNS)


LEGEND = """\
CPU in % of one core over the window (N=0: the publisher-only window before players join); /player = server
CPU / N; Δ/player = (server CPU - that run's N=0 baseline) / N; loss from sequence gaps per SSRC (lean players
send no NACK; a chromium viewer's packet that came back after a NACK still counts as lost); 1st KF = playStream
sent -> first complete VP8 keyframe; pub + players = the load generator; others = every other process on the
machine; box = the whole machine, % of all {cores} cores."""


def main(argv: list[str] | None = None) -> int:
    options = parser(__doc__)
    add = options.add_argument
    add("--players", default="1,10,50", help="comma-separated player counts (default 1,10,50)")
    add("--seconds", type=float, default=15, help="measurement window per N (default 15)")
    add("--baseline-seconds", type=float, default=5, help="publisher-only window (default 5)")
    add("--after-seconds", type=float, default=3, help="window once the players have left (default 3)")
    add("--warmup", type=float, default=2, help="seconds after PUBLISHING before the baseline (default 2)")
    add("--settle", type=float, default=2, help="seconds after all players are PLAYING (default 2)")
    add("--address", default="127.0.0.31", help="the server's bind address (default 127.0.0.31)")
    add_client_options(options, "127.0.0.32")
    add("--ws-port", type=int, default=8080)
    add("--per-worker", type=int, default=25, help="players per worker process (default 25)")
    add("--join-concurrency", type=int, default=10, help="concurrent joins per worker (default 10)")
    add(
        "--viewer",
        choices=VIEWERS,
        default="lean",
        help="players as lean aiortc peers (default) or as Chromium",
    )
    add_clip_options(options)
    add("--no-audio", action="store_true", help="publish video only")
    add_output_options(options, RESULTS / "fanout.json", "keep each run's server log in this folder")
    args = options.parse_args(argv)
    why = " (the publisher-only baseline is always measured)"
    players = counts(options, "--players", args.players, why, ordered=False)

    width, height = clip_size(args)
    started = time.monotonic()
    video = encode_video(width, height, args.fps, 10, args.bitrate, gop_seconds=2)
    audio = None if args.no_audio else encode_audio(10)
    cores = psutil.cpu_count() or 1
    opus = "" if audio is None else f" + Opus {audio.bitrate / 1e3:.0f} kbps"
    print(
        f"clip: VP8 {width}x{height}@{args.fps} {video.bitrate / 1e6:.2f} Mbps, keyframe every 2 s{opus}, "
        f"{video.seconds:.0f} s loop (encoded in {time.monotonic() - started:.1f} s); machine: {cores} cores",
        flush=True,
    )

    runs = []
    for n in players:
        print(f"N={n}: running ...", flush=True)
        r = run(n, args, video, audio)
        left = r["after_players_left"]
        print(
            f"N={n}: {r['playing']}/{n} playing, joined in {r['join_seconds']:.1f} s, PLAYING p50/p95 "
            f"{r['playing_p50'] * 1000:.0f}/{r['playing_p95'] * 1000:.0f} ms, "
            f"PLIs at the publisher {r['publisher']['keyframe_requests']}, "
            f"kernel UDP receive-buffer drops {r['udp_errors'].get('RcvbufErrors')}; after the players left: "
            f"server {left['server_cpu']:.1f} % CPU, {left['server_rss'] / 2**20:.1f} MiB; "
            f"server exit code {r['server']['exit_code']} in {r['server']['shutdown_seconds']:.1f} s",
            flush=True,
        )
        for line in r["join_errors"][:5] + r["server"]["log_problems"][:5]:
            print(f"    {line}", flush=True)
        runs.append(r)

    print()
    print(table(runs))
    print()
    print(LEGEND.format(cores=cores))

    report = {
        "benchmark": "fanout",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(),
        "config": config(args, leave_out=("output", "logs")),
        "clip": {
            "video_bitrate": round(video.bitrate),
            "video_frames": len(video.frames),
            "audio_bitrate": round(audio.bitrate) if audio else None,
        },
        "runs": runs,
    }
    write_results(args.output, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
