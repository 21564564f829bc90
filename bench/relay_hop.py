"""Relay-hop latency benchmark: the delay one push relay (server A → server B) adds.

    .venv/bin/python bench/relay_hop.py [--seconds 20]

Two ``rtcdn serve`` processes run on their own loopback addresses (A and B, default ports). The
fan-out benchmark's publisher (pre-encoded VP8 720p ~1 Mbps + Opus, replayed in real time) publishes
``s`` on A; ``POST /rest-api/pull/push`` makes A publish it on B. Then two lean players join:
player 1 plays ``s`` on A (publisher → A → player), player 2 plays ``s`` on B (publisher → A → B →
player). Publisher and players share this process and one asyncio loop, so one clock.

During the window every RTP packet is identified by what the servers do not rewrite: its RTP
timestamp and a hash of its payload (sequence numbers and SSRCs differ per hop). Times, all
CLOCK_REALTIME in ns:

- sent: ``time.time_ns()`` just before aiortc's ``RTCDtlsTransport._send_rtp`` protects the packet
  and hands it to the socket (the send path does not suspend in between);
- arrival at a player: the kernel's receive timestamp of the datagram (``SIOCGSTAMPNS`` on the
  player's ICE socket). On loopback it is taken inside the sending server's ``sendto``, so it says
  when the server sent the packet, whatever this process's event loop was doing.

Per packet: relay hop = t_B - t_A; publisher → A → player 1 = t_A - sent; publisher → A → B →
player 2 = t_B - sent. For comparison the hop is also given from user-space arrival times
(``time.perf_counter_ns()`` when the event loop hands the datagram over, before SRTP is removed):
this loop reads one datagram per socket per iteration, so bursts (keyframes) smear those.

A and B are pinned to two different CPUs (``--no-pin`` leaves them to the scheduler, which on one
machine often runs B on A's CPU right after A's ``sendto`` to B, so that player 2 gets packets before
player 1). The players offer audio before video; the publisher publishes audio first too
(``--video-first`` publishes as ``fanout.py`` does, video first).

Figures only, no pass/fail. Results also go to ``bench/results/relay_hop.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil  # type: ignore[import-untyped]
from aiortc import RTCPeerConnection

from _linux import kernel_stamp
from _media import Clip, ClipTrack, encode_audio, encode_video
from _procs import ServerProcess, cpu_seconds
from _report import (
    RESULTS,
    add_client_options,
    add_clip_options,
    add_output_options,
    clip_size,
    machine,
    parser,
    spread,
    write_results,
)
from _rtp import payload_kinds, rtp_header_length
from _wcs import LeanPlayer, Publisher, Receive, WcsError

STREAM = "s"
KINDS = ("video", "audio")

Key = tuple[int, int]
"(RTP timestamp, hash of the RTP payload): what identifies a packet on every hop."


def packet_key(rtp: bytes) -> Key:
    return int.from_bytes(rtp[4:8], "big"), hash(rtp[rtp_header_length(rtp) :])


# --- the servers ---------------------------------------------------------------------------------


def pin(servers: Sequence[ServerProcess]) -> dict[str, int]:
    """Each server on a CPU of its own (of those this process may use); {} with fewer CPUs than servers.

    Unpinned on one machine, the kernel tends to wake B on A's CPU when A sends it a packet (a
    synchronous wake-up over loopback): B then runs before A's next ``sendto`` and player 2 gets
    many packets before player 1, which two machines would not do.
    """
    try:
        cpus = sorted(psutil.Process().cpu_affinity())
        if len(cpus) < len(servers):
            return {}
        for server, cpu in zip(servers, cpus, strict=False):
            assert server.ps is not None
            server.ps.cpu_affinity([cpu])
    except (AttributeError, psutil.Error):  # no affinity on this platform
        return {}
    return {server.name: cpu for server, cpu in zip(servers, cpus, strict=False)}


# --- timing the publisher and the players --------------------------------------------------------


class SendClock:
    """Wraps the publisher's SRTP send path: when each RTP packet was sent, by :func:`packet_key`.

    The time is ``time.time_ns()`` (CLOCK_REALTIME, the clock of the kernel's receive timestamps)
    taken just before aiortc protects the packet and hands it to the socket.
    """

    def __init__(self, pc: RTCPeerConnection) -> None:
        self.recording = False
        self.sent: dict[Key, tuple[int, str]] = {}
        self.duplicates = 0
        self.other = 0
        "RTP packets of another payload type (RTX retransmissions) sent while recording."
        self.kinds = payload_kinds(str(pc.remoteDescription.sdp))
        transports: dict[int, Any] = {
            id(t.sender.transport): t.sender.transport for t in pc.getTransceivers()
        }
        for dtls in transports.values():
            dtls._send_rtp = self._wrap(dtls._send_rtp)

    def _wrap(self, original: Callable[[bytes], Coroutine[Any, Any, None]]) -> Callable[[bytes], Any]:
        async def send_rtp(data: bytes) -> None:
            now = time.time_ns()
            await original(data)  # protects and hands the datagram to the socket, without suspending
            if not self.recording or 191 < data[1] < 224:  # RTCP
                return
            kind = self.kinds.get(data[1] & 0x7F)
            if kind is None:
                self.other += 1
                return
            key = packet_key(data)
            if key in self.sent:
                self.duplicates += 1
            else:
                self.sent[key] = (now, kind)

        return send_rtp


class TimedPlayer(LeanPlayer):
    """A :class:`~_wcs.LeanPlayer` that keeps each packet's arrival times, by :func:`packet_key`.

    ``arrivals[key] = (kernel, user)``: the kernel's receive timestamp of the datagram (``SIOCGSTAMPNS``,
    CLOCK_REALTIME ns; 0 if unavailable) and ``time.perf_counter_ns()`` when the event loop handed it over.
    """

    def __init__(self, http: aiohttp.ClientSession, url: str, address: str) -> None:
        super().__init__(http, url, address)
        self.recording = False
        self.arrivals: dict[Key, tuple[int, int]] = {}
        self.duplicates = 0
        self.unstamped = 0
        "Packets recorded without a kernel timestamp."
        self._fd = -1
        self._arrival_ns = 0

    def _make_receiver(self, dtls: Any, original: Receive) -> Receive:
        inner = super()._make_receiver(dtls, original)
        protocol = getattr(original, "__self__", None)  # the aioice StunProtocol of the candidate
        sock = protocol.transport.get_extra_info("socket") if protocol is not None else None
        if sock is not None:
            self._fd = sock.fileno()
            kernel_stamp(self._fd)  # nothing received yet: this only turns time-stamping on

        def datagram_received(data: bytes, addr: Any) -> None:
            self._arrival_ns = time.perf_counter_ns()
            inner(data, addr)

        return datagram_received

    def _on_rtp(self, rtp: bytes) -> None:
        super()._on_rtp(rtp)
        if not self.recording:
            return
        key = packet_key(rtp)
        if key in self.arrivals:
            self.duplicates += 1
            return
        kernel = kernel_stamp(self._fd) if self._fd >= 0 else 0  # still the datagram being handled
        self.unstamped += not kernel
        self.arrivals[key] = (kernel, self._arrival_ns)


# --- figures ---------------------------------------------------------------------------------------


DELAYS = {
    "hop": "relay hop  t_B - t_A",
    "hop_user": "relay hop, user-space times",
    "via_a": "pub → A → player 1",
    "via_b": "pub → A → B → player 2",
}
"What :func:`match` measures (kernel receive timestamps unless said otherwise), as the table names it."


@dataclass
class KindFigures:
    sent: int = 0
    "Packets the publisher sent during the window."
    matched: int = 0
    "Seen by both players."
    only_a: int = 0
    only_b: int = 0
    neither: int = 0
    hop_negative: int = 0
    "Matched packets the kernel handed to player 2 before player 1."
    delays: dict[str, dict[str, float] | None] = field(default_factory=dict)
    "Per :data:`DELAYS` key: count, then min/p50/p90/p99/max/mean in ms."


def match(clock: SendClock, a: TimedPlayer, b: TimedPlayer) -> dict[str, KindFigures]:
    """Every packet the publisher sent in the window against both players' arrivals."""
    out = {kind: KindFigures() for kind in KINDS}
    samples = {kind: {name: list[int]() for name in DELAYS} for kind in KINDS}
    for key, (sent, kind) in clock.sent.items():
        figures = out[kind]
        values = samples[kind]
        figures.sent += 1
        t_a, t_b = a.arrivals.get(key), b.arrivals.get(key)
        if t_a is not None and t_a[0]:
            values["via_a"].append(t_a[0] - sent)
        if t_b is not None and t_b[0]:
            values["via_b"].append(t_b[0] - sent)
        if t_a is not None and t_b is not None:
            figures.matched += 1
            values["hop_user"].append(t_b[1] - t_a[1])
            if t_a[0] and t_b[0]:
                values["hop"].append(t_b[0] - t_a[0])
                figures.hop_negative += t_b[0] < t_a[0]
        elif t_a is not None:
            figures.only_a += 1
        elif t_b is not None:
            figures.only_b += 1
        else:
            figures.neither += 1
    for kind, values in samples.items():
        out[kind].delays = {name: spread(v) for name, v in values.items()}
    return out


# --- the run -----------------------------------------------------------------------------------------


@dataclass
class Run:
    relay_seconds: float = 0.0
    "REST push → the relay record PUBLISHING."
    playing_seconds: float = 0.0
    "Both players' playStream → both PLAYING."
    window_seconds: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    "% of one core over the window."
    box_cpu: float = 0.0
    "Whole machine, % of all cores."
    others_cpu: float = 0.0
    "Every other process on the machine, % of one core (other work disturbs the figures)."
    kinds: dict[str, KindFigures] = field(default_factory=dict)
    not_sent_in_window: dict[str, int] = field(default_factory=dict)
    "Packets a player recorded that the publisher sent just before the window or in the grace after it."
    unstamped: dict[str, int] = field(default_factory=dict)
    "Packets a player recorded without a kernel receive timestamp."
    duplicates: dict[str, int] = field(default_factory=dict)
    publisher_retransmissions: int = 0
    keyframe_requests: int = 0
    "PLIs/FIRs the publisher got over the whole run."
    players: dict[str, dict[str, Any]] = field(default_factory=dict)
    "The players' own sequence accounting over the whole time they played."
    relay_record: dict[str, Any] = field(default_factory=dict)
    "A's relay record once the window was over."


async def _rest(http: aiohttp.ClientSession, url: str, body: dict[str, Any] | None = None) -> Any:
    async with http.post(url, json=body or {}) as response:
        text = await response.text()
        if response.status == 404 and url.endswith("find_all"):
            return []
        if response.status != 200:
            raise RuntimeError(f"POST {url}: {response.status} {text}")
        return json.loads(text)


async def push_relay(http: aiohttp.ClientSession, a: ServerProcess, b: ServerProcess) -> dict[str, Any]:
    """Start the push A → B and wait until its record says PUBLISHING."""
    body = {"uri": b.ws_url, "localStreamName": STREAM, "remoteStreamName": STREAM}
    record = await _rest(http, f"{a.rest_url}/pull/push", body)
    msid = record["localMediaSessionId"]
    async with asyncio.timeout(30):
        while True:
            records = await _rest(http, f"{a.rest_url}/pull/find_all")
            mine = next((r for r in records if r["localMediaSessionId"] == msid), None)
            if mine is not None and mine["status"] == "PUBLISHING":
                return dict(mine)
            if mine is not None and mine["status"] in ("FAILED", "UNPUBLISHED", "STOPPED"):
                raise RuntimeError(f"relay A → B {mine['status']}: {mine['info']}")
            await asyncio.sleep(0.05)


async def drive(
    args: argparse.Namespace, a: ServerProcess, b: ServerProcess, video: Clip, audio: Clip
) -> Run:
    run = Run()
    me = psutil.Process()
    async with aiohttp.ClientSession() as http:
        video_track, audio_track = ClipTrack("video", video), ClipTrack("audio", audio)
        # m-line order: audio first, as the lean players offer (see --video-first)
        tracks = [video_track, audio_track] if args.video_first else [audio_track, video_track]
        publisher = Publisher(http, a.ws_url, args.client_address)
        players = {"A": TimedPlayer(http, a.ws_url, args.client_address)}
        players["B"] = TimedPlayer(http, b.ws_url, args.client_address)
        try:
            await publisher.publish(STREAM, tracks)
            clock = SendClock(publisher.pc)
            await asyncio.sleep(args.warmup)

            started = time.monotonic()
            await push_relay(http, a, b)
            run.relay_seconds = time.monotonic() - started

            started = time.monotonic()
            await asyncio.gather(*(p.play(STREAM) for p in players.values()))
            run.playing_seconds = time.monotonic() - started
            await asyncio.sleep(args.settle)

            groups: dict[str, Callable[[], float]] = {
                "server_a": a.cpu_seconds,
                "server_b": b.cpu_seconds,
                "load_generator": lambda: cpu_seconds(me),
            }
            psutil.cpu_percent()
            before = {k: f() for k, f in groups.items()}
            started = time.monotonic()
            clock.recording = players["A"].recording = players["B"].recording = True
            await asyncio.sleep(args.seconds)
            clock.recording = False
            elapsed = time.monotonic() - started
            after = {k: f() for k, f in groups.items()}
            run.box_cpu = psutil.cpu_percent()
            run.window_seconds = elapsed
            run.cpu = {k: 100 * (after[k] - before[k]) / elapsed for k in groups}
            run.others_cpu = max(0.0, run.box_cpu * (psutil.cpu_count() or 1) - sum(run.cpu.values()))
            await asyncio.sleep(args.grace)  # packets still on their way
            for p in players.values():
                p.recording = False

            run.kinds = match(clock, players["A"], players["B"])
            run.unstamped = {name: p.unstamped for name, p in players.items()}
            run.not_sent_in_window = {
                name: sum(key not in clock.sent for key in p.arrivals) for name, p in players.items()
            }
            run.duplicates = {
                "publisher": clock.duplicates,
                **{name: p.duplicates for name, p in players.items()},
            }
            run.publisher_retransmissions = clock.other
            records = await _rest(http, f"{a.rest_url}/pull/find_all")
            run.relay_record = next((r for r in records if r["direction"] == "push"), {})
            run.players = {name: _player_summary(p) for name, p in players.items()}
            run.keyframe_requests = video_track.keyframe_requests
        finally:
            await asyncio.wait([asyncio.ensure_future(p.close()) for p in players.values()], timeout=10)
            await publisher.close()
    return run


def _player_summary(player: TimedPlayer) -> dict[str, Any]:
    result = asdict(player.finish())
    return {k: result[k] for k in ("packets", "expected", "lost", "srtp_errors", "t_playing", "t_keyframe")}


# --- report --------------------------------------------------------------------------------------------


def table(run: Run) -> str:
    heads = ["", "delay", "packets", "min", "p50", "p90", "p99", "max", "mean"]
    rows = [heads]
    for kind in KINDS:
        figures = run.kinds[kind]
        for name, label in DELAYS.items():
            stats = figures.delays[name]
            cells = [kind, label]
            if stats is None:
                cells += ["0"] + ["-"] * 6
            else:
                cells += [str(stats["count"])]
                cells += [f"{stats[q]:.2f}" for q in ("min", "p50", "p90", "p99", "max", "mean")]
            rows.append(cells)
    widths = [max(len(row[i]) for row in rows) for i in range(len(heads))]
    lines = [
        "  ".join(
            c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    return "\n".join(lines) + "\n(ms)"


LEGEND = """\
t_A, t_B: the kernel's receive timestamps at player 1 (on A) and player 2 (on B), i.e. when A and B sent
the packet over loopback; pub: the publisher's send time. User-space times: when this process's event loop
read the datagrams (one per socket per loop iteration, so keyframe bursts smear them). hop < 0: player 2
had the packet before player 1 (A was descheduled between its sends to B and to player 1; see --pin)."""


def main(argv: list[str] | None = None) -> int:
    options = parser(__doc__)
    add = options.add_argument
    add("--seconds", type=float, default=20, help="measurement window (default 20)")
    add(
        "--warmup", type=float, default=1, help="seconds after PUBLISHING before the relay starts (default 1)"
    )
    add("--settle", type=float, default=2, help="seconds after both players are PLAYING (default 2)")
    add("--grace", type=float, default=1, help="seconds players keep recording after the window (default 1)")
    add("--address-a", default="127.0.0.51", help="server A (publisher, player 1); default 127.0.0.51")
    add("--address-b", default="127.0.0.52", help="server B (relay from A, player 2); default 127.0.0.52")
    add_client_options(options, "127.0.0.53")
    add_clip_options(options)
    add(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="pin A and B to two different CPUs, as on two machines (default: on, with 2+ CPUs)",
    )
    add(
        "--video-first",
        action="store_true",
        help="publish video before audio, as fanout.py does (the players offer audio first)",
    )
    add_output_options(options, RESULTS / "relay_hop.json", "keep both server logs in this folder")
    args = options.parse_args(argv)

    width, height = clip_size(args)
    started = time.monotonic()
    video = encode_video(width, height, args.fps, 10, args.bitrate, gop_seconds=2)
    audio = encode_audio(10)
    cores = psutil.cpu_count() or 1
    print(
        f"clip: VP8 {width}x{height}@{args.fps} {video.bitrate / 1e6:.2f} Mbps, keyframe every 2 s + Opus "
        f"{audio.bitrate / 1e3:.0f} kbps, {video.seconds:.0f} s loop (encoded in "
        f"{time.monotonic() - started:.1f} s); machine: {cores} cores",
        flush=True,
    )

    with tempfile.TemporaryDirectory(prefix="rtcdn-relay-hop-") as tmp:
        servers = [
            ServerProcess("A", args.address_a, Path(tmp) / "a", args.media_ports),
            ServerProcess("B", args.address_b, Path(tmp) / "b", args.media_ports),
        ]
        a, b = servers
        failure = ""
        pinned: dict[str, int] = {}
        try:
            for server in servers:
                server.start()
            pinned = pin(servers) if args.pin else {}
            run = asyncio.run(drive(args, a, b, video, audio))
        except (WcsError, RuntimeError, TimeoutError) as exc:
            failure = f"{type(exc).__name__}: {exc}"
        finally:
            for server in servers:
                server.stop()
            for server in servers:
                server.keep_log(args.logs)
        problems = {s.name: s.problems()[:20] for s in servers}
    if failure:
        print(f"failed: {failure}")
        for server in servers:
            for line in problems[server.name]:
                print(f"    server {server.name}: {line}")
        return 1

    where = {name: f" (CPU {pinned[name]})" if name in pinned else "" for name in ("A", "B")}
    print(
        f"A {args.address_a}{where['A']}: publisher + player 1; B {args.address_b}{where['B']}: relay from A "
        f"+ player 2; clients on {args.client_address}{'' if pinned else '; servers not pinned'}"
    )
    print(
        f"relay A → B PUBLISHING {run.relay_seconds:.2f} s after POST /pull/push; "
        f"both players PLAYING in {run.playing_seconds:.2f} s; window {run.window_seconds:.1f} s"
    )
    print()
    print(table(run))
    print(LEGEND)
    print()
    for kind in KINDS:
        f = run.kinds[kind]
        print(
            f"{kind}: sent {f.sent} in the window, both players {f.matched}, only player 1 (A) {f.only_a}, "
            f"only player 2 (B) {f.only_b}, neither {f.neither}; hop < 0 for {f.hop_negative}"
        )
    dup = run.duplicates
    print(
        f"duplicates: publisher {dup['publisher']}, player 1 {dup['A']}, player 2 {dup['B']}; publisher "
        f"retransmissions {run.publisher_retransmissions}; PLIs at the publisher {run.keyframe_requests}; "
        f"packets without a kernel timestamp: player 1 {run.unstamped['A']}, player 2 {run.unstamped['B']}"
    )
    for name, p in run.players.items():
        print(
            f"player {'1 (A)' if name == 'A' else '2 (B)'} over its whole play: {p['packets']} packets, "
            f"{p['lost']} lost of {p['expected']} (sequence gaps), SRTP errors {p['srtp_errors']}, "
            f"first keyframe {p['t_keyframe'] * 1000:.0f} ms after playStream"
            if p["t_keyframe"] is not None
            else f"player {name}: {p['packets']} packets, no keyframe"
        )
    print(
        f"CPU over the window, % of one core: server A {run.cpu['server_a']:.1f}, server B "
        f"{run.cpu['server_b']:.1f}, this process (publisher + 2 players) {run.cpu['load_generator']:.1f}; "
        f"other processes {run.others_cpu:.0f}; machine {run.box_cpu:.0f} % of {cores} cores"
    )
    for server in servers:
        print(f"server {server.name}: exit code {server.exit_code} in {server.shutdown_seconds or 0:.1f} s")
        for line in problems[server.name]:
            print(f"    {line}")

    report = {
        "benchmark": "relay_hop",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(),
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "clip": {
            "video_bitrate": round(video.bitrate),
            "video_frames": len(video.frames),
            "audio_bitrate": round(audio.bitrate),
        },
        **asdict(run),
        "servers": {
            s.name: {
                "address": s.address,
                "cpu": pinned.get(s.name),
                "exit_code": s.exit_code,
                "shutdown_seconds": s.shutdown_seconds,
                "log_problems": problems[s.name],
            }
            for s in servers
        },
    }
    write_results(args.output, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
