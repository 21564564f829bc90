"""Performance benchmark (issue 5): rtcdn against Janus, same feed, same players, same figures.

    .venv/bin/python bench/perf.py [--players 10,50,100,200,300,400,500] [--seconds 10] [--no-janus]
                                   [--viewer chromium|lean|lean,chromium] [--repeat K]

Servers, each started fresh by this script on loopback and measured over a ramp of player counts N:

- ``rtcdn serve`` with one worker, and with ``--workers 2`` (skipped, with a message, when this
  rtcdn has no ``--workers``): players first ask ``GET http://ADDR:8081/balancer`` and connect to the
  worker it names;
- Janus (Debian's ``janus``, streaming plugin, HTTP API; see ``_janus.py``) with ``event_loops = 1``,
  the strong anchor, and with its default configuration (one loop thread per handle). Janus never
  offers a loopback ICE candidate, so the whole run happens inside a network namespace the benchmark
  creates and deletes (``_netns.py``: ``lo`` plus a veth carrying 198.18.0.1), never on the
  machine's own interfaces; rtcdn runs there on 127.0.0.x as everywhere else.

The feed is the same for all: a pre-encoded VP8 1280x720@30 clip at ~1.5 Mbps (keyframe every 2 s)
plus Opus, looped in real time. rtcdn gets it from a WCS WebSDK publisher (aiortc, DTLS-SRTP); Janus
as plain RTP on its mountpoint's ports, cut into the same RTP payloads by the same packetizer.

Players are receive-only WebRTC peers that do not decode (``_wcs.LeanPlayer``'s core): once a
player's first VP8 keyframe has arrived it stops unprotecting SRTP and only reads the RTP header,
which SRTP leaves in clear: packet counts, sequence gaps per SSRC. ``--viewer`` says what they look
like to the server: ``chromium`` (the default) sends the SDP Chromium sends and the RTCP a Chromium
receiver sends, at its rates (receiver reports with REMB ~4.5/s, audio RR ~0.2/s, PLI until the first
keyframe, NACK on gaps, STUN consent every ~3 s: ``_chromium.py``); ``lean`` keeps aiortc's offer and
sends no RTCP, as the benchmark did before. ``--viewer lean,chromium`` runs both, interleaved, and
``--repeat K`` runs the whole sequence K times; ratios only compare setups of one viewer kind and round. They are spread over
``--processes`` processes running on uvloop when it is installed (asyncio's own loop costs ~5x the
CPU per datagram and would make the generator, not the server, the limit). A few "timed" players
live in the feed's process (asyncio's loop) and keep unprotecting every packet: each RTP payload the
feed sends is logged with its send time (``time.time_ns()``), and a timed player matches the payloads
it receives against that log and takes the kernel's receive timestamp of the datagram
(``SIOCGSTAMPNS``), so delay = server's send - feed's send, on one clock. In practice that is the
video packets: the test tone's Opus frames repeat, and a payload seen twice within 5 s is left out.

Per server: the feed alone first (baseline CPU and RSS), then for each N the players missing are
added, and after ``--settle`` seconds the figures are taken over ``--seconds``: server CPU (its own
processes' CPU time; workers summed), RSS, packets lost, delay p50/p99, time from ``playStream``
(``watch`` for Janus) to the first complete keyframe for the players added at that step. A ramp stops
after the first N with loss >= 0.5 % or players that failed to join, or once the load generator used
more than 90 % of its cores, the whole machine was > 95 % busy or the delay p50 passed 1 s
(``--keep-going`` runs every N). "Held" = the largest N before the first with loss >= 0.5 %; the
summary also gives it with delay p99 < 200 ms, since a server may queue rather than drop.

Scaling runs (``--cap 0.3``, ``--cap-workers 1,2``, ``--cap-players``): rtcdn again with 1 and 2
workers, every server process in a cgroup of its own capped at that fraction of a core (``_linux.CpuCaps``),
so the players held by 1 and 2 workers compare while the generator keeps CPU to spare; the summary
line gives both "held" figures per worker count. They stay out of the Janus ratios and the plot.

By default every server but the two-worker rtcdn is pinned to CPU 0 and the load generator (feed,
players, this script) to the other CPUs, as in ``shared/research/janus-anchor.md``; the two-worker
rtcdn and the generator share all CPUs.

Besides the ratios per N, the summary fits each setup's CPU and RSS over N (N=0: the feed alone) and
gives rtcdn/Janus of the slopes: what one more viewer costs, the ingest left out.

Modules: ``_perf_players.py`` (players, feed), ``_perf_setups.py`` (servers), ``_perf_ramp.py`` (the
ramp and its figures), ``_perf_report.py`` (tables, ratios, fits, plot).

Output: a table, ``bench/results/latest.json`` and ``bench/results/cpu_vs_players.png`` (needs
matplotlib; without it the plot is skipped with a message).
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import sys
import time
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

import _netns as netns
from _chromium import VIEWERS
from _janus import janus_available
from _linux import caps_unavailable
from _media import encode_audio, encode_video
from _perf_players import has_uvloop
from _perf_ramp import DELAY_LIMIT_MS, GENERATOR_LIMIT, LOSS_LIMIT, run_setup
from _perf_report import LEGEND, fit_table, fits, held, plot, ratio_table, ratios, scaling_summary, table
from _perf_setups import Setup, ipv4_addresses, janus_setup, rtcdn_has_workers, rtcdn_setup
from _report import RESULTS, config, counts, machine, write_results


def options() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    add = parser.add_argument
    add(
        "--players",
        default="10,50,100,200,300,400,500",
        help="player counts N (default 10,50,100,200,300,400,500)",
    )
    add(
        "--viewer",
        default="chromium",
        help="what the players look like: chromium (Chromium's SDP and RTCP, default), lean (aiortc's offer, "
        "no RTCP), or both, comma-separated (interleaved)",
    )
    add("--repeat", type=int, default=1, help="run the whole sequence of setups this many times (default 1)")
    add("--seconds", type=float, default=10, help="measurement window per N (default 10)")
    add("--settle", type=float, default=3, help="seconds after the joins before the window (default 3)")
    add(
        "--warmup", type=float, default=2, help="seconds after the feed is up before the baseline (default 2)"
    )
    add("--baseline-seconds", type=float, default=4, help="feed-alone window (default 4)")
    add("--workers", default="1,2", help="rtcdn worker counts to run (default 1,2; 0 or '' = no rtcdn)")
    add("--no-janus", action="store_true", help="skip the Janus anchor")
    add(
        "--cap",
        type=float,
        default=0.3,
        help="scaling runs: every rtcdn process capped at this fraction of a core (cgroups; default 0.3, 0 = no scaling runs)",
    )
    add("--cap-workers", default="1,2", help="worker counts of the scaling runs (default 1,2)")
    add(
        "--cap-players",
        default="40,80,120,160,200,240,280,320,360,400",
        help="player counts of the scaling runs (default 40,80,...,400: two workers with the C send hold 400)",
    )
    add(
        "--janus-configs",
        default="event_loops=1,default",
        help="Janus configurations: event_loops=K and/or default (default: event_loops=1,default)",
    )
    add("--keep-going", action="store_true", help="run every N even after loss or a saturated generator")
    add("--processes", type=int, default=4, help="player processes (default 4)")
    add("--join-concurrency", type=int, default=8, help="concurrent joins per process (default 8)")
    add(
        "--uvloop",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run the player processes on uvloop (default: when installed)",
    )
    add("--timed-players", type=int, default=2, help="players measuring the delay, in the feed's process")
    add(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="server on CPU 0, the rest on the others",
    )
    add("--address", default="127.0.0.61", help="rtcdn's bind address (default 127.0.0.61)")
    add("--client-address", default="127.0.0.62", help="address rtcdn's publisher and players gather on")
    add("--ws-port", type=int, default=8080)
    add("--http-port", type=int, default=8081)
    add("--media-ports", default="31000-31999")
    add("--janus-address", default="127.0.0.1", help="Janus's HTTP API address (default 127.0.0.1)")
    add("--janus-http-port", type=int, default=8088)
    add(
        "--janus-interface",
        help="interface Janus and its players use for ICE (default: a veth in a network namespace the "
        "benchmark creates, see --netns)",
    )
    add(
        "--netns",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run inside a network namespace of the benchmark's own, where Janus gets a veth interface "
        "(default: when Janus runs and no --janus-interface is named; needs root)",
    )
    add(
        "--native-send",
        choices=("on", "off", "both"),
        default="on",
        help="players' RTP through rtcdn's C send (on, the default), its Python fallback (off), or both "
        "side by side (uncapped rtcdn setups only)",
    )
    add("--size", default="1280x720")
    add("--fps", type=int, default=30)
    add("--bitrate", type=int, default=1_500_000, help="video bits/s (default 1500000)")
    add("--output", type=Path, default=RESULTS / "latest.json")
    add("--plot", type=Path, default=RESULTS / "cpu_vs_players.png")
    add("--logs", type=Path, help="keep every server log in this folder")
    return parser


def janus_interface(args: argparse.Namespace) -> str:
    """Why Janus cannot run ('' if it can); sets ``args.janus_interface`` to (interface, address)."""
    why = janus_available()
    if why:
        return why
    if args.janus_interface is None:
        return (
            "Janus offers no loopback ICE candidate and this run has no network namespace of its own: "
            + (netns.unavailable() or "--no-netns")
            + " (or name an interface with --janus-interface)"
        )
    addresses = {n: a for n, a in ipv4_addresses().items() if n == args.janus_interface}
    args.janus_interface = (args.janus_interface, addresses.get(args.janus_interface, ""))
    return "" if addresses else f"interface {args.janus_interface[0]} has no IPv4 address"


def wants_netns(args: argparse.Namespace) -> bool:
    """Whether to re-run inside the benchmark's network namespace (see ``_netns``)."""
    if args.netns is not None:
        if args.netns and netns.unavailable():
            raise SystemExit(f"--netns: {netns.unavailable()}")
        return bool(args.netns)
    janus = not args.no_janus and not janus_available() and args.janus_interface is None
    return janus and not netns.unavailable()


def build_setups(
    args: argparse.Namespace, server_cpus: list[int] | None, video: Any, audio: Any, skipped: dict[str, str]
) -> list[Setup]:
    """Every setup, in the order they run: per round, per viewer kind, rtcdn then Janus (so the two of
    one comparison run close together); the capped scaling runs last, in the first round only."""

    def skip(label: str, why: str) -> None:
        if label not in skipped:
            skipped[label] = why
            print(f"{label}: skipped: {why}", flush=True)

    workers = [int(x) for x in args.workers.split(",") if x.strip() and int(x) > 0]
    has_workers = rtcdn_has_workers() if any(k > 1 for k in workers) or args.cap else True
    janus_why = "" if args.no_janus else janus_interface(args)
    janus_configs = [] if args.no_janus else [c.strip() for c in args.janus_configs.split(",") if c.strip()]
    setups: list[Setup] = []
    for repeat in range(1, args.repeat + 1):
        for viewer in args.viewers:
            for k in workers:
                if k > 1 and not has_workers:
                    skip(f"rtcdn workers={k}", "this rtcdn's `serve` has no --workers option yet")
                    continue
                cpus = server_cpus if k == 1 else None
                for native in {"on": [True], "off": [False], "both": [True, False]}[args.native_send]:
                    setups.append(
                        rtcdn_setup(args, k, cpus, video, audio, viewer, repeat=repeat, native=native)
                    )
            for janus_config in janus_configs:
                if janus_why:
                    skip(f"janus {janus_config}", janus_why)
                    continue
                loops = None if janus_config == "default" else int(janus_config.split("=")[1])
                setups.append(janus_setup(args, loops, server_cpus, video, audio, viewer, repeat=repeat))
    cap_workers = (
        [int(x) for x in args.cap_workers.split(",") if x.strip() and int(x) > 0] if args.cap else []
    )
    why = caps_unavailable() if cap_workers else ""
    for viewer in args.viewers:
        for k in cap_workers:
            if why or (k > 1 and not has_workers):
                skip(
                    f"rtcdn workers={k} cap={args.cap:g}",
                    why or "this rtcdn's `serve` has no --workers option yet",
                )
            else:
                native = args.native_send != "off"
                setups.append(
                    rtcdn_setup(args, k, None, video, audio, viewer, cpu_cap=args.cap, native=native)
                )
    return setups


def summarize(results: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    """Print and return, per setup, the largest N held and the load generator's capacity."""
    summary: dict[str, Any] = {}
    print()
    for r in results:
        label = r["label"]
        n_held, n_fast = held(r["levels"]), held(r["levels"], DELAY_LIMIT_MS)
        saturated = next((lv["players"] for lv in r["levels"] if lv["generator_saturated"]), None)
        summary[label] = {
            "max_players_held": n_held,
            "max_players_held_delay_p99_under_200ms": n_fast,
            "generator_saturated_at": saturated,
        }
        why = r["failure"] or r["stopped_because"] or "every N ran"
        print(
            f"{label}: largest N held with < {LOSS_LIMIT} % loss: {n_held if n_held is not None else 'none'}"
            f" (and delay p99 < {DELAY_LIMIT_MS:.0f} ms: {n_fast if n_fast is not None else 'none'}); {why}; "
            f"server exit code {r['exit_code']}"
        )
        if r["levels"]:
            kept = [lv for lv in r["levels"] if (lv["loss_pct"] or 0) < LOSS_LIMIT]
            top = (kept or r["levels"])[-1]  # a server that drops packets sends the players less
            per_player = top["player_processes_cpu_pct"] / top["players"]
            capacity = (GENERATOR_LIMIT * top["generator_cores"] - top["feed_process_cpu_pct"]) / per_player
            summary[label].update(
                generator_cpu_per_player_pct=per_player, generator_capacity_players=round(capacity)
            )
            print(
                f"    load generator: {per_player:.3f} % of a core per player ({'uvloop' if args.uvloop else 'asyncio'}"
                f" players): {top['generator_cpu_pct']:.0f} % CPU of its {100 * top['generator_cores']} % "
                f"({top['generator_cores']} core(s)) at N={top['players']}; saturated "
                + (f"at N={saturated}" if saturated else f"near N~{capacity:.0f} (extrapolated)")
            )
        busy = [lv["players"] for lv in r["levels"] if lv["others_cpu_pct"] > 15]
        if busy:
            print(f"    warning: other processes used > 15 % of a core during N={busy}: figures disturbed")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = options()
    argv = sys.argv[1:] if argv is None else argv
    # SIGTERM stops as Ctrl-C does (and SIGINT does even where a shell started this in the
    # background, ignoring it): servers, players and the namespace are cleaned up
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.default_int_handler)
    args = parser.parse_args(argv)
    if netns.inside():
        args.janus_interface = args.janus_interface or netns.INTERFACE
    elif wants_netns(args):
        return netns.run_inside([__file__, *argv])
    args.counts = counts(parser, "--players", args.players)
    args.cap_counts = counts(parser, "--cap-players", args.cap_players)
    args.viewers = [v.strip() for v in args.viewer.split(",") if v.strip()]
    if not args.viewers or any(v not in VIEWERS for v in args.viewers):
        parser.error(f"--viewer: comma-separated, of {', '.join(VIEWERS)}")
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")
    if args.uvloop is None:
        args.uvloop = has_uvloop()
        if not args.uvloop:
            print(
                "uvloop is not installed (.venv/bin/pip install uvloop): players on asyncio's loop, ~5x the CPU"
            )

    cpus = args.cpus = sorted(os.sched_getaffinity(0))
    server_cpus, generator_cpus = (cpus[:1], cpus[1:]) if args.pin and len(cpus) > 1 else (None, None)

    width, height = (int(x) for x in args.size.split("x"))
    started = time.monotonic()
    video = encode_video(width, height, args.fps, 10, args.bitrate, gop_seconds=2)
    audio = encode_audio(10)
    clip = (
        f"VP8 {width}x{height}@{args.fps} {video.bitrate / 1e6:.2f} Mbps, keyframe every 2 s + Opus "
        f"{audio.bitrate / 1e3:.0f} kbps, {video.seconds:.0f} s loop"
    )
    print(f"clip: {clip} (encoded in {time.monotonic() - started:.1f} s); CPUs {cpus}", flush=True)
    print(f"viewers: {', '.join(args.viewers)}; rounds: {args.repeat}", flush=True)
    if server_cpus:
        print(
            f"pinning: servers (but rtcdn --workers 2) on CPU {server_cpus}, load generator on {generator_cpus}"
        )

    skipped: dict[str, str] = {}
    setups = build_setups(args, server_cpus, video, audio, skipped)
    psutil.cpu_percent()
    time.sleep(1)
    idle = psutil.cpu_percent()
    if idle > 10:
        print(
            f"warning: the machine is busy before the benchmark ({idle:.0f} % of all CPUs): figures will be disturbed"
        )
    results = [run_setup(s, args, None if s.server_cpus is None else generator_cpus) for s in setups]
    by_label = {r["label"]: r["levels"] for r in results if not r["cpu_cap"]}
    capped = {r["label"]: r for r in results if r["cpu_cap"]}
    levels = [level for r in results for level in r["levels"]]

    print()
    print(table(levels) if levels else "no results")
    print(LEGEND)
    compare = ratios(by_label)
    if compare:
        print()
        one_worker = [r for r in compare if r["rtcdn"].startswith("rtcdn workers=1 ")]
        print(ratio_table(one_worker or compare))
        print(
            "rtcdn / Janus at the same N, same viewer kind and round: < 1 means rtcdn uses less (CPU, RSS) or is "
            "faster (delay, keyframe); ΔCPU/pl = (CPU - CPU with the feed alone) / N."
        )
    fitted = fits(results)
    if fitted:
        print()
        print(fit_table(fitted, results))
        print(
            "slopes of a least-squares fit of server CPU and RSS over N (N=0: the feed alone, lossy N left out)"
        )

    summary = summarize(results, args)
    players_per_core: dict[str, float] = {}
    for label, single in by_label.items():
        n_held = held(single)
        if label.startswith("rtcdn workers=1 ") and n_held:
            level = next(lv for lv in single if lv["players"] == n_held)
            players_per_core[label] = 100 / level["cpu_per_player_pct"]
            print(
                f"{label}: {players_per_core[label]:.0f} players per core (100 / CPU%/player at N={n_held})"
            )
    scaling = {
        viewer: scaling_summary({k: r for k, r in capped.items() if r["viewer"] == viewer})
        for viewer in args.viewers
    }
    for viewer, s in scaling.items():
        if s:
            print(f"[{viewer}] {s['line']}")
    for label, reason in skipped.items():
        print(f"{label}: skipped: {reason}")

    subtitle = f"{clip}; {platform.node()} {len(cpus)} CPUs"
    problem = plot(by_label, args.plot, subtitle)
    print(problem or f"written: {os.path.relpath(args.plot)}")

    report = {
        "benchmark": "perf",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {**machine(), "cores": len(cpus)},
        "config": config(args),
        "clip": {
            "video": f"VP8 {width}x{height}@{args.fps}",
            "video_bitrate": round(video.bitrate),
            "audio_bitrate": round(audio.bitrate),
            "gop_seconds": 2,
        },
        "players_per_core": players_per_core,
        "fits": fitted,
        "scaling": scaling,
        "summary": summary,
        "skipped": skipped,
        "ratios": compare,
        "servers": [{k: v for k, v in r.items() if k != "levels"} for r in results],
        "runs": levels,
    }
    write_results(args.output, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
