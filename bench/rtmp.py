"""RTMP ingest benchmark: Debian's ffmpeg publishing RTMP to rtcdn, N counting WebRTC players, against
a WebRTC publisher of the same H.264 stream.

    .venv/bin/python bench/rtmp.py [--players 1,10,50] [--seconds 15] [--sources rtmp,webrtc]

The clip is encoded once by Debian's ffmpeg (``/usr/bin/ffmpeg``, 5.1): ``testsrc2`` 1280x720@30,
libx264 baseline ``-bf 0 -tune zerolatency`` CBR ~1.5 Mbps, a keyframe every 2 s, and a 440 Hz sine as
AAC-LC 128 kbps stereo, 10 s, into an FLV file. The two sources then send the same H.264 bitstream:

* ``rtmp``: ffmpeg ``-re -stream_loop -1 -i clip.flv -c copy -f flv rtmp://...`` (no encoding: the
  publisher costs little CPU); the server passes H.264 through and transcodes AAC to Opus.
* ``webrtc``: the clip's H.264 (``h264_mp4toannexb``) replayed in real time through an aiortc sender
  (bench/_media.py ``ClipTrack``, packetized, not encoded; a PLI restarts the clip at its keyframe),
  with Opus audio (bench/_media.py ``encode_audio``), over the WCS protocol like bench/fanout.py.

For each source and N a fresh server (``codecs=opus,h264``) is started on its own loopback address.
First, a player that is already waiting (it retries ``playStream`` every 50 ms from the moment the
publisher is started) measures the time to the first video keyframe; the server's log gives the time
from the publisher's connection to the stream going live, and REST polling the time to PUBLISHING.
Then the server's CPU is measured with the publisher alone (N=0, the ingest itself: for RTMP it
includes the AAC → Opus transcode, on a worker thread whose CPU is reported apart), then N
:class:`~_wcs.LeanPlayer` s (counting SRTP packets without decoding, here also spotting the first
H.264 keyframe) join at random moments within ``--stagger`` s (one GOP) and the server's CPU, per
player, and the players' time from ``playStream`` to the first keyframe packet are measured.

RTMP cannot ask its encoder for a keyframe: a WebRTC player of an RTMP stream waits for the next one
(up to the 2 s GOP; OBS's "auto" keyframe interval is far longer), where a WebRTC publisher answers
the PLI. Even the waiting player misses the stream's first keyframe: its playStream waits for the
stream to go live, and the keyframe that makes it live is forwarded before the player's ICE and DTLS
are done, so it too waits a whole GOP.

For the transcode's CPU per stream measured standalone, the script quotes bench/transcode.py's
results (bench/results/transcode.json, the transcoder's own ``seconds_busy``).

Figures only, no pass/fail. Results also go to ``bench/results/rtmp.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
import av
import psutil  # type: ignore[import-untyped]

from _media import VIDEO_CLOCK, Clip, ClipTrack, encode_audio
from _procs import ServerProcess, Worker, measure, serve_commands, split
from _report import RESULTS, machine, player_summary, write_results
from _rtp import rtp_header_length
from _wcs import LeanPlayer, Publisher, WcsError

RESULTS_FILE = RESULTS / "rtmp.json"
TRANSCODE_RESULTS = RESULTS / "transcode.json"
STREAM = "bench"
FFMPEG = "/usr/bin/ffmpeg"
FPS = 30
GOP_SECONDS = 2
EARLY_REFUSAL = f"play '{STREAM}' failed: no live stream '{STREAM}'"
"The warning the server logs for each attempt of the waiting player before the stream is live."


# --- media ----------------------------------------------------------------------------------------


def encode_clip(folder: Path, size: str, bitrate: int, seconds: float) -> tuple[Path, Clip]:
    """The FLV clip (H.264 + AAC) for ffmpeg, and its H.264 as Annex B access units for aiortc."""
    flv, annexb = folder / "clip.flv", folder / "clip.h264"
    rate = f"{bitrate // 1000}k"
    subprocess.run(
        [
            FFMPEG, "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={FPS}",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
            "-t", f"{seconds:g}", "-c:v", "libx264", "-profile:v", "baseline", "-preset", "veryfast",
            "-tune", "zerolatency", "-bf", "0", "-g", str(GOP_SECONDS * FPS), "-keyint_min", str(GOP_SECONDS * FPS),
            "-sc_threshold", "0", "-b:v", rate, "-maxrate", rate, "-bufsize", rate, "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-b:a", "128k", "-ac", "2", "-f", "flv", str(flv),
        ],
        check=True,
    )  # fmt: skip
    annexb_command = [
        FFMPEG,
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-i",
        str(flv),
        "-an",
        "-c:v",
        "copy",
    ]
    subprocess.run([*annexb_command, "-bsf:v", "h264_mp4toannexb", "-f", "h264", str(annexb)], check=True)
    frames: list[bytes] = []
    keyframes: list[bool] = []
    with av.open(str(annexb)) as container:
        for packet in container.demux(video=0):
            if packet.size:
                frames.append(bytes(packet))
                keyframes.append(bool(packet.is_keyframe))
    assert keyframes and keyframes[0], "the clip must start with a keyframe"
    return flv, Clip(frames, keyframes, VIDEO_CLOCK, VIDEO_CLOCK // FPS)


def h264_keyframe_start(payload: bytes) -> bool:
    """Whether an RTP payload (RFC 6184) starts a keyframe: an SPS or IDR slice, alone, in a STAP-A,
    or the first fragment of a FU-A."""
    if not payload:
        return False
    kind = payload[0] & 0x1F
    if kind in (5, 7):
        return True
    if kind == 24:  # STAP-A: 16-bit size, NAL unit, ...
        off = 1
        while off + 2 < len(payload):
            size = int.from_bytes(payload[off : off + 2], "big")
            if payload[off + 2] & 0x1F in (5, 7):
                return True
            off += 2 + size
        return False
    return kind == 28 and len(payload) > 1 and bool(payload[1] & 0x80) and payload[1] & 0x1F == 5


class H264Player(LeanPlayer):
    """A :class:`~_wcs.LeanPlayer` that also times the first H.264 keyframe: its first packet and its
    last (marker bit), in seconds from ``playStream``, in ``result.t_keyframe`` (complete) and
    :attr:`t_keyframe_packet`."""

    def __init__(self, http: aiohttp.ClientSession, url: str, address: str) -> None:
        super().__init__(http, url, address)
        self._h264_pts: set[int] = set()
        self._h264_ts: bytes | None = None
        self.t_keyframe_packet: float | None = None
        self.keyframe_seen = asyncio.Event()

    def _on_answer(self, sdp: str, negotiated: str | None = None) -> None:
        super()._on_answer(sdp, negotiated)
        for line in sdp.splitlines():
            if line.startswith("a=rtpmap:") and " H264/" in line:
                self._h264_pts.add(int(line[9:].split()[0]))

    def _on_rtp(self, rtp: bytes) -> None:
        super()._on_rtp(rtp)
        if self.result.t_keyframe is not None or (rtp[1] & 0x7F) not in self._h264_pts:
            return
        if self._h264_ts is None:
            if not h264_keyframe_start(rtp[rtp_header_length(rtp) :]):
                return
            self._h264_ts = rtp[4:8]
            self.t_keyframe_packet = time.monotonic() - self._t0
        if rtp[1] & 0x80 and rtp[4:8] == self._h264_ts:
            self.result.t_keyframe = time.monotonic() - self._t0
            self.keyframe_seen.set()

    def report(self) -> dict[str, Any]:
        return {**asdict(self.finish()), "t_keyframe_packet": self.t_keyframe_packet}


class H264Publisher(Publisher):
    """bench/_wcs.py's publisher, offering H.264 (and Opus) instead of VP8."""

    async def publish(
        self, name: str, tracks: list[ClipTrack], mimes: Sequence[str] = ("video/H264",)
    ) -> None:
        await super().publish(name, tracks, mimes)


# --- worker processes -------------------------------------------------------------------------


def publisher_main(conn: Connection, url: str, address: str, video: Clip, audio: Clip) -> None:
    async def main() -> None:
        async with aiohttp.ClientSession() as http:
            tracks = [ClipTrack("video", video), ClipTrack("audio", audio)]
            publisher = H264Publisher(http, url, address)
            try:
                await publisher.publish(STREAM, tracks)
            except Exception as exc:
                conn.send({"ok": False, "error": f"{type(exc).__name__}: {exc}"})
                await publisher.close()
                return
            conn.send({"ok": True, "publishing": time.time()})

            def stop(_: Any) -> dict[str, Any]:
                return {"keyframe_requests": tracks[0].keyframe_requests, "clip_restarts": tracks[0].restarts}

            await serve_commands(conn, {"stop": stop})
            await publisher.close()

    conn.send("ready")  # the imports are done
    conn.recv()  # "go": the parent starts the clock
    asyncio.run(main())


def early_player_main(conn: Connection, url: str, address: str, give_up: float) -> None:
    """One player that keeps asking for the stream (every 50 ms) from "go" until it plays, then waits
    for the first keyframe; reports wall-clock times."""

    async def main() -> dict[str, Any]:
        async with aiohttp.ClientSession() as http:
            started, attempts = time.time(), 0
            while True:
                player = H264Player(http, url, address)
                attempts += 1
                try:
                    await player.play(STREAM)
                    break
                except WcsError as exc:
                    await player.close()
                    if time.time() - started > give_up:
                        return {"ok": False, "error": str(exc), "attempts": attempts}
                    await asyncio.sleep(0.05)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(player.keyframe_seen.wait(), 10)
            report = player.report()
            await player.close()

        def wall(key: str) -> float | None:
            value = report[key]
            return None if value is None else report["started"] + value

        return {
            "ok": True,
            "attempts": attempts,
            "go": started,
            "play_sent": report["started"],
            "playing": wall("t_playing"),
            "first_packet": wall("t_first_packet"),
            "keyframe_packet": wall("t_keyframe_packet"),
            "keyframe": wall("t_keyframe"),
        }

    conn.send("ready")
    conn.recv()
    conn.send(asyncio.run(main()))


def players_main(
    conn: Connection, url: str, address: str, count: int, concurrency: int, stagger: float, seed: int
) -> None:
    """``count`` players, each starting at a random moment within ``stagger`` s (joins spread over a
    GOP: the wait for an RTMP stream's next keyframe is then a sample of its distribution)."""

    async def main() -> None:
        async with aiohttp.ClientSession() as http:
            players = [H264Player(http, url, address) for _ in range(count)]
            gate = asyncio.Semaphore(concurrency)
            delays = random.Random(seed).choices(range(1000), k=count)

            async def start(player: H264Player, delay: float) -> None:
                await asyncio.sleep(delay)
                async with gate:
                    try:
                        await player.play(STREAM)
                    except Exception as exc:
                        player.result.error = f"{type(exc).__name__}: {exc}"

            await asyncio.gather(
                *(start(p, d * stagger / 1000) for p, d in zip(players, delays, strict=True))
            )
            conn.send(
                {
                    "playing": sum(p.result.ok for p in players),
                    "errors": [p.result.error for p in players if not p.result.ok],
                }
            )
            await serve_commands(
                conn,
                {
                    "count": lambda _: sum(p.packets for p in players),
                    "stop": lambda _: [p.report() for p in players],
                },
            )
            await asyncio.wait([asyncio.ensure_future(p.close()) for p in players], timeout=15)

    asyncio.run(main())


# --- the server's view --------------------------------------------------------------------------


def _log_time(line: str) -> float:
    """The wall-clock time of a server log line (``2026-12-01 21:54:02,561 INFO ...``, local time)."""
    return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()


def publish_times(log: str, source: str) -> dict[str, float | None]:
    """From the server's log: when the publisher's connection came (RTMP: its TCP connection's
    ``connect``; WebRTC: its WebSocket session), its ``publish`` command (RTMP), and the stream went live."""

    def first(pattern: str) -> re.Match[str] | None:
        return next((m for m in map(re.compile(pattern).search, log.splitlines()) if m), None)

    live = first(f"^(.{{23}}) INFO .*stream '{STREAM}': live")
    if source == "rtmp":
        pub = first(rf"^(.{{23}}) INFO .*rtmp (\S+): publishing live/{STREAM}$")
        conn = first(rf"^(.{{23}}) INFO .*rtmp {re.escape(pub[2])}: connected") if pub else None
    else:
        found = first(rf"^(.{{23}}) INFO .*session (\S+): publishing '{STREAM}'")
        pub = None
        conn = first(rf"^(.{{23}}) INFO .*session {re.escape(found[2])}: connected") if found else None
    return {
        "connected": _log_time(conn[1]) if conn else None,
        "publish_command": _log_time(pub[1]) if pub else None,
        "live": _log_time(live[1]) if live else None,
    }


def wait_rest_publishing(server: ServerProcess, timeout: float = 30) -> float | None:
    """Poll ``/rest-api/stream/find_all`` every 20 ms; the wall-clock time it first lists the publisher
    as PUBLISHING (None after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{server.rest_url}/stream/find_all", timeout=2) as resp:
                records = json.load(resp)
            if any(r["name"] == STREAM and r["published"] and r["status"] == "PUBLISHING" for r in records):
                return time.time()
        except (urllib.error.URLError, OSError, ValueError):
            pass  # 404 "no streams" yet
        time.sleep(0.02)
    return None


def thread_cpu(process: psutil.Process) -> dict[int, float]:
    return {t.id: t.user_time + t.system_time for t in process.threads()}


# --- one run ------------------------------------------------------------------------------------


class RtmpSource:
    """ffmpeg copying the FLV clip to the server over RTMP, in a loop, in real time."""

    def __init__(self, flv: Path, url: str, log: Path) -> None:
        self.command = [
            FFMPEG,
            "-hide_banner",
            "-nostats",
            "-loglevel",
            "warning",
            "-re",
            "-stream_loop",
            "-1",
        ]
        self.command += ["-i", str(flv), "-c", "copy", "-f", "flv", url]
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.ps: psutil.Process | None = None

    def start(self) -> None:
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                self.command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )
        self.ps = psutil.Process(self.process.pid)

    def stop(self) -> dict[str, Any]:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return {"exit_code": self.process.returncode, "log": self.log.read_text(errors="replace")[-1000:]}


class WebRtcSource:
    """The H.264 clip (+ Opus) published over WebRTC from a worker process."""

    def __init__(self, url: str, address: str, video: Clip, audio: Clip) -> None:
        self.worker = Worker(publisher_main, url, address, video, audio)
        self.ps: psutil.Process = self.worker.ps

    def start(self) -> None:
        self.worker.conn.send("go")

    def ready(self) -> dict[str, Any]:
        answer: dict[str, Any] = self.worker.receive(60)
        if not answer["ok"]:
            raise RuntimeError(f"publisher failed: {answer['error']}")
        return answer

    def stop(self) -> dict[str, Any]:
        out: dict[str, Any] = self.worker.request("stop") if self.worker.process.is_alive() else {}
        self.worker.join()
        return out


def _ms(a: float | None, b: float | None) -> float | None:
    """``b - a`` in milliseconds (None if either is unknown)."""
    return None if a is None or b is None else 1000 * (b - a)


def _drive(
    source_name: str,
    n: int,
    args: argparse.Namespace,
    server: ServerProcess,
    folder: Path,
    media: dict[str, Any],
) -> dict[str, Any]:
    assert server.ps is not None
    out: dict[str, Any] = {"source": source_name, "players": n}
    early = Worker(early_player_main, server.ws_url, args.client_address, 30.0)
    source: RtmpSource | WebRtcSource
    if source_name == "rtmp":
        source = RtmpSource(
            media["flv"], f"rtmp://{args.address}:{args.rtmp_port}/live/{STREAM}", folder / "ffmpeg.log"
        )
    else:
        source = WebRtcSource(server.ws_url, args.client_address, media["video"], media["audio"])
    workers: list[Worker] = []
    try:
        early.receive(60)  # "ready": imported
        if isinstance(source, WebRtcSource):
            source.worker.receive(60)
        early.conn.send("go")
        spawned = time.time()
        source.start()
        rest_publishing = wait_rest_publishing(server)
        if isinstance(source, WebRtcSource):
            source.ready()
        waiting = early.receive(60)
        times = publish_times(server.log(), source_name)
        out["publish"] = {
            "spawn_to_rest_publishing_ms": _ms(spawned, rest_publishing),
            "spawn_to_connected_ms": _ms(spawned, times["connected"]),
            "connected_to_live_ms": _ms(times["connected"], times["live"]),
            "publish_command_to_live_ms": _ms(times["publish_command"], times["live"]),
            "spawn_to_live_ms": _ms(spawned, times["live"]),
        }
        out["waiting_player"] = {
            "ok": waiting["ok"],
            "attempts": waiting["attempts"],
            "error": waiting.get("error", ""),
            "live_to_playing_ms": _ms(times["live"], waiting.get("playing")),
            "live_to_keyframe_packet_ms": _ms(times["live"], waiting.get("keyframe_packet")),
            "live_to_keyframe_ms": _ms(times["live"], waiting.get("keyframe")),
            "spawn_to_keyframe_ms": _ms(spawned, waiting.get("keyframe")),
            "play_sent_to_keyframe_ms": _ms(waiting.get("play_sent"), waiting.get("keyframe")),
        }
        early.join()
        time.sleep(args.warmup)

        threads_before = thread_cpu(server.ps)
        base = measure({"server": [server.ps], "publisher": [source.ps]}, args.baseline_seconds)
        threads_after = thread_cpu(server.ps)
        others = sum(
            cpu - threads_before.get(tid, 0.0) for tid, cpu in threads_after.items() if tid != server.ps.pid
        )
        out["baseline"] = {
            "server_cpu": base.cpu["server"],
            "server_worker_threads_cpu": 100 * others / base.seconds,
            "server_rss": server.ps.memory_info().rss,
            "publisher_cpu": base.cpu["publisher"],
            "others_cpu": base.others,
            "box_cpu": base.box,
        }
        if n == 0:
            return out

        started = time.monotonic()
        sizes = split(n, args.per_worker)
        workers = [
            Worker(
                players_main, server.ws_url, args.client_address, k, args.join_concurrency, args.stagger, i
            )
            for i, k in enumerate(sizes)
        ]
        joins = [w.receive(120 + 2 * k) for w, k in zip(workers, sizes, strict=True)]
        out["join_seconds"] = time.monotonic() - started
        out["playing"] = sum(j["playing"] for j in joins)
        out["join_errors"] = [e for j in joins for e in j["errors"]]
        time.sleep(args.settle)

        packets_before = sum(w.request("count") for w in workers)
        window = measure(
            {"server": [server.ps], "publisher": [source.ps], "players": [w.ps for w in workers]},
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
        results = [r for w in workers for r in w.request("stop", timeout=60)]
        for w in workers:
            w.join()
        out.update(player_summary(results))
        return out
    finally:
        out["publisher"] = source.stop()
        for w in [*workers, early]:
            if w.process.is_alive():
                w.process.kill()
                w.join()


def run(source: str, n: int, args: argparse.Namespace, media: dict[str, Any]) -> dict[str, Any]:
    """One measurement with a fresh server."""
    with tempfile.TemporaryDirectory(prefix="rtcdn-rtmp-") as tmp:
        server = ServerProcess(
            f"{source}-N{n}",
            args.address,
            Path(tmp),
            args.media_ports,
            ws_port=args.ws_port,
            options={"--http-ports": str(args.http_port), "--rtmp-port": str(args.rtmp_port)},
            properties={"codecs": "opus,h264"},
        )
        server.start()
        try:
            out = _drive(source, n, args, server, Path(tmp), media)
        finally:
            server.stop()
            server.keep_log(args.logs)
        problems = server.problems()
        refused = [line for line in problems if EARLY_REFUSAL in line]  # the waiting player's attempts
        out["server"] = {
            "exit_code": server.exit_code,
            "shutdown_seconds": server.shutdown_seconds,
            "plays_refused_before_live": len(refused),
            "log_problems": [line for line in problems if EARLY_REFUSAL not in line][:20],
        }
    return out


# --- report ---------------------------------------------------------------------------------------


def _num(key: str, spec: str, scale: float = 1) -> Callable[[dict[str, Any]], str]:
    def cell(row: dict[str, Any]) -> str:
        value: Any = row
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        return "-" if value is None else format(value * scale, spec)

    return cell


INGEST_COLUMNS: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
    ("source", lambda r: r["source"]),
    ("srv CPU%", _num("baseline.server_cpu", ".1f")),
    ("threads CPU%", _num("baseline.server_worker_threads_cpu", ".2f")),
    ("RSS MiB", _num("baseline.server_rss", ".1f", 2**-20)),
    ("pub CPU%", _num("baseline.publisher_cpu", ".1f")),
    ("spawn→conn ms", _num("publish.spawn_to_connected_ms", ".0f")),
    ("conn→live ms", _num("publish.connected_to_live_ms", ".0f")),
    ("publish→live ms", _num("publish.publish_command_to_live_ms", ".0f")),
    ("spawn→REST ms", _num("publish.spawn_to_rest_publishing_ms", ".0f")),
    ("live→1st KF ms", _num("waiting_player.live_to_keyframe_ms", ".0f")),
    ("spawn→1st KF ms", _num("waiting_player.spawn_to_keyframe_ms", ".0f")),
    ("others CPU%", _num("baseline.others_cpu", ".0f")),
]

PLAYER_COLUMNS: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
    ("source", lambda r: r["source"]),
    ("N", lambda r: str(r["players"])),
    ("playing", lambda r: f"{r.get('playing', 0)}/{r['players']}"),
    ("srv CPU%", _num("server_cpu", ".1f")),
    ("/player", _num("server_cpu_per_player", ".2f")),
    ("Δ/player", _num("server_cpu_per_player_over_baseline", ".2f")),
    ("pkt/s/pl", _num("packets_per_player_per_second", ".0f")),
    ("loss %", _num("loss_percent", ".3f")),
    ("PLAYING p50", _num("playing_p50", ".0f", 1000)),
    ("KF pkt p50", _num("keyframe_packet_p50", ".0f", 1000)),
    ("p95", _num("keyframe_packet_p95", ".0f", 1000)),
    ("KF max", _num("keyframe_max", ".0f", 1000)),
    ("pub CPU%", _num("publisher_cpu", ".1f")),
    ("players CPU%", _num("players_cpu", ".1f")),
    ("others CPU%", _num("others_cpu", ".0f")),
    ("box %", _num("box_cpu", ".0f")),
]


def table(rows: list[dict[str, Any]], columns: list[tuple[str, Callable[[dict[str, Any]], str]]]) -> str:
    cells = [[head for head, _ in columns]] + [[cell(r) for _, cell in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in cells)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def ingest_rows(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per source: the publisher-only (N=0) figures, averaged over that source's runs."""
    rows = []
    for source in dict.fromkeys(r["source"] for r in runs):
        mine = [r for r in runs if r["source"] == source]
        row: dict[str, Any] = {"source": source, "runs": len(mine)}
        for group in ("baseline", "publish", "waiting_player"):
            keys = [
                k for k, v in mine[0][group].items() if isinstance(v, int | float) and not isinstance(v, bool)
            ]
            row[group] = {k: _mean([r[group][k] for r in mine if r[group].get(k) is not None]) for k in keys}
        rows.append(row)
    return rows


def transcode_reference() -> dict[str, Any] | None:
    """bench/transcode.py's standalone AAC → Opus figure (bench/results/transcode.json), if present."""
    try:
        report = json.loads(TRANSCODE_RESULTS.read_text())
    except (OSError, ValueError):
        return None
    runs = [r for r in report.get("runs", []) if r.get("direction") == "aac->opus"]
    return {
        "date": report.get("date"),
        "back_to_back_cpu_per_stream": report.get("back_to_back_cpu_per_stream", {}).get("aac->opus"),
        "cpu_per_stream": {str(r["streams"]): r["cpu_per_stream"] for r in runs},
        "process_cpu_per_stream": {str(r["streams"]): r["process_cpu_per_stream"] for r in runs},
    }


LEGEND = """\
CPU in % of one core over the measurement window. Ingest (N=0: the publisher alone, {baseline:g} s): srv CPU =
the whole server; threads CPU = the server's threads other than its event loop (RTMP: the AAC→Opus transcoder's
worker); pub CPU = ffmpeg (-c copy) or the aiortc publisher process; spawn→conn = publisher process started →
the server logs its connection (RTMP TCP connect / WCS WebSocket session); conn→live = that → the stream is live
(RTMP: connect, createStream, publish, metadata + sequence headers; WebRTC: publishStream, ICE, DTLS);
publish→live = the RTMP publish command → live; spawn→REST = started → REST lists it PUBLISHING (20 ms polls);
live→1st KF / spawn→1st KF = to the last packet of the first H.264 keyframe at a player already waiting (it
retries playStream every 50 ms). Players: /player = server CPU / N; Δ/player = (server CPU - that run's N=0)
/ N; loss = sequence gaps per SSRC (no NACK); PLAYING = playStream → PLAYING; KF pkt = playStream → the first
packet of the first keyframe (p50/p95 over the players), KF max = the slowest complete keyframe; RTMP has no
keyframe request, so late joiners wait for the next keyframe (GOP {gop} s); the WebRTC publisher answers the
PLI by restarting its clip at a keyframe; players join at random moments within {stagger:g} s. others = every other process; box = the machine, % of all {cores} cores."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    add = parser.add_argument
    add("--players", default="1,10,50", help="comma-separated player counts (default 1,10,50)")
    add("--sources", default="rtmp,webrtc", help="rtmp and/or webrtc (default rtmp,webrtc)")
    add("--seconds", type=float, default=15, help="measurement window per N (default 15)")
    add("--baseline-seconds", type=float, default=5, help="publisher-only window (default 5)")
    add(
        "--warmup",
        type=float,
        default=2,
        help="seconds after the first keyframe before the baseline (default 2)",
    )
    add("--settle", type=float, default=2, help="seconds after all players are PLAYING (default 2)")
    add("--address", default="127.0.0.115", help="the server's bind address (default 127.0.0.115)")
    add("--client-address", default="127.0.0.116", help="address the WebRTC clients gather on")
    add("--ws-port", type=int, default=8080)
    add("--http-port", type=int, default=8081)
    add("--rtmp-port", type=int, default=1935)
    add("--media-ports", default="31000-31999")
    add(
        "--stagger",
        type=float,
        default=GOP_SECONDS,
        help=f"players join within this many s (default {GOP_SECONDS})",
    )
    add("--per-worker", type=int, default=25, help="players per worker process (default 25)")
    add("--join-concurrency", type=int, default=10, help="concurrent joins per worker (default 10)")
    add("--size", default="1280x720", help="video size (default 1280x720)")
    add("--bitrate", type=int, default=1_500_000, help="video bits/s (default 1500000)")
    add("--output", type=Path, default=RESULTS_FILE, help="JSON results (default bench/results/rtmp.json)")
    add("--logs", type=Path, help="keep each run's server log in this folder")
    args = parser.parse_args(argv)
    counts = [int(x) for x in args.players.split(",") if x.strip()]
    sources = [s.strip() for s in args.sources.split(",") if s.strip()]
    if not counts or any(n < 0 for n in counts):
        parser.error("--players: counts must be >= 0 (the publisher-only baseline is always measured)")
    if not sources or any(s not in ("rtmp", "webrtc") for s in sources):
        parser.error("--sources: rtmp and/or webrtc")
    if not Path(FFMPEG).exists():
        parser.error(f"no {FFMPEG}: `make ffmpeg` installs Debian's")
    cores = psutil.cpu_count() or 1
    ffmpeg_version = subprocess.run([FFMPEG, "-version"], capture_output=True, text=True).stdout.split("\n")[
        0
    ]

    with tempfile.TemporaryDirectory(prefix="rtcdn-rtmp-clip-") as clip_dir:
        started = time.monotonic()
        flv, video = encode_clip(Path(clip_dir), args.size, args.bitrate, 10)
        audio = encode_audio(10)
        media = {"flv": flv, "video": video, "audio": audio}
        print(
            f"clip: H.264 baseline {args.size}@{FPS} {video.bitrate / 1e6:.2f} Mbps, keyframe every {GOP_SECONDS} s, "
            f"{video.seconds:.0f} s loop; RTMP: + AAC 128 kbps ({flv.stat().st_size * 8 / video.seconds / 1e6:.2f} Mbps "
            f"FLV); WebRTC: + Opus {audio.bitrate / 1e3:.0f} kbps (encoded in {time.monotonic() - started:.1f} s); "
            f"{ffmpeg_version}; machine: {cores} cores",
            flush=True,
        )
        runs = []
        for source in sources:
            for n in counts:
                print(f"{source} N={n}: running ...", flush=True)
                r = run(source, n, args, media)
                pub, wait = r["publish"], r["waiting_player"]
                print(
                    f"{source} N={n}: {r.get('playing', 0)}/{n} playing; ingest alone: server "
                    f"{r['baseline']['server_cpu']:.1f} % CPU ({r['baseline']['server_worker_threads_cpu']:.2f} % "
                    f"in worker threads); connect → live {_fmt(pub['connected_to_live_ms'])} ms, waiting player "
                    f"live → keyframe {_fmt(wait['live_to_keyframe_ms'])} ms ({wait['attempts']} attempts); "
                    f"server exit code {r['server']['exit_code']}",
                    flush=True,
                )
                for line in r.get("join_errors", [])[:5] + r["server"]["log_problems"][:5]:
                    print(f"    {line}", flush=True)
                runs.append(r)

    reference = transcode_reference()
    ingest = ingest_rows(runs)
    print()
    print(table(ingest, INGEST_COLUMNS))
    print()
    print(table([r for r in runs if r["players"]], PLAYER_COLUMNS))
    print()
    print(LEGEND.format(baseline=args.baseline_seconds, gop=GOP_SECONDS, stagger=args.stagger, cores=cores))
    if reference is not None:
        print(
            f"\nAAC→Opus standalone (bench/transcode.py, {reference['date']}): "
            f"{reference['back_to_back_cpu_per_stream']:.2f} % of a core back to back, "
            + ", ".join(f"N={k}: {v:.2f} %" for k, v in reference["cpu_per_stream"].items())
            + " per stream (the transcoder's seconds_busy)"
        )
    report = {
        "benchmark": "rtmp",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(),
        "ffmpeg": ffmpeg_version,
        "config": {k: v for k, v in vars(args).items() if k not in ("output", "logs")},
        "clip": {
            "video_bitrate": round(video.bitrate),
            "video_frames": len(video.frames),
            "gop_seconds": GOP_SECONDS,
            "rtmp_audio": "aac 128k",
            "webrtc_audio_bitrate": round(audio.bitrate),
        },
        "ingest": ingest,
        "transcode_reference": reference,
        "runs": runs,
    }
    write_results(args.output, report)
    return 0


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


if __name__ == "__main__":
    sys.exit(main())
