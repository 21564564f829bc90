"""bench/perf.py's ramp: one server configuration driven through the player counts N.

Per setup: the feed alone first (baseline CPU and RSS), then for each N the players missing are
added, and after ``--settle`` seconds the figures are taken over ``--seconds``. :func:`run_setup`
starts the setup's server, runs its :class:`Ramp` and stops the server.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

from _janus import JanusServer
from _linux import CpuCaps, udp_counters
from _perf_players import feed_main, players_main
from _perf_setups import Server, Setup
from _procs import Worker, total_cpu, total_rss
from _report import MIB, fmt, percentile_sorted, quantiles

LOSS_LIMIT = 0.5
"% of packets lost over a window above which N is not 'held'."
GENERATOR_LIMIT = 90.0
"% of the generator's cores above which the load generator, not the server, is the limit."
BOX_LIMIT = 95.0
"% of all CPUs busy above which the machine, not the server, is the limit."
DELAY_LIMIT_MS = 200.0
"Delay p99 above which an N counts as held only by queueing (reported beside the loss criterion)."


class Ramp:
    """One server configuration driven through the player counts."""

    def __init__(self, setup: Setup, args: argparse.Namespace, generator_cpus: list[int] | None) -> None:
        self.setup, self.args, self.generator_cpus = setup, args, generator_cpus
        self.gen_cores = len(generator_cpus or args.cpus)
        self.levels: list[dict[str, Any]] = []
        self.baseline: dict[str, float] = {}
        self.stopped_because = ""
        self.feed_stats: dict[str, Any] = {}
        self.affinity: dict[int, list[int]] = {}
        "CPUs each server process may run on."
        self.caps: CpuCaps | None = None
        "The cgroups capping the server's processes (``Setup.cpu_cap``); closed by the caller."

    def say(self, text: str) -> None:
        print(f"  [{self.setup.label}] {text}", flush=True)

    def run(self, server: Server) -> None:
        setup, args = self.setup, self.args
        self.server = server
        feed = Worker(feed_main, setup.feed, args.join_concurrency, self.generator_cpus)
        groups: list[Worker] = []
        try:
            ready = feed.receive(60)
            if not ready["ok"]:
                raise RuntimeError(f"feed failed: {ready['error']}")
            setup.ready(server)
            procs = setup.processes(server)
            if setup.cpu_cap:
                self.caps = CpuCaps(setup.cpu_cap, f"rtcdn-perf-{os.getpid()}")
                for p in procs:
                    self.caps.confine(p.pid)
                self.say(f"{len(procs)} server process(es) capped at {setup.cpu_cap:g} core each")
            self.affinity = {p.pid: p.cpu_affinity() for p in procs}
            time.sleep(args.warmup)
            before, started = total_cpu(procs), time.monotonic()
            time.sleep(args.baseline_seconds)
            self.baseline = {
                "server_cpu_pct": 100 * (total_cpu(procs) - before) / (time.monotonic() - started),
                "server_rss_mb": total_rss(procs) / MIB,
            }
            self.say(
                f"feed alone: server {self.baseline['server_cpu_pct']:.1f} % CPU, "
                f"{self.baseline['server_rss_mb']:.1f} MiB"
            )
            groups = [
                Worker(players_main, setup.players, args.join_concurrency, self.generator_cpus, args.uvloop)
                for _ in range(args.processes)
            ]
            for g in groups:
                g.receive(60)
            current = 0
            for n in setup.counts or args.counts:
                level = self.level(n, current, feed, groups)
                current = level["playing"]
                self.levels.append(level)
                self.say(level_line(level))
                reason = self.stop_reason(level)
                if reason and not args.keep_going:
                    self.stopped_because = f"stopped after N={n}: {reason}"
                    self.say(self.stopped_because)
                    break
            for g in groups:
                g.send("stop")
            feed.send("stop")
            for g in groups:
                g.receive(60)
            self.feed_stats = feed.receive(60)
        finally:
            for w in [*groups, feed]:
                w.join(5 if not w.process.is_alive() else 20)

    def stop_reason(self, level: dict[str, Any]) -> str:
        if level["playing"] < level["players"]:
            return f"{level['players'] - level['playing']} players could not join"
        if level["loss_pct"] is not None and level["loss_pct"] >= LOSS_LIMIT:
            return f"loss {level['loss_pct']:.2f} % >= {LOSS_LIMIT} %"
        if level["generator_saturated"]:
            return (
                f"the load generator used {level['generator_cpu_pct']:.0f} % CPU of its "
                f"{100 * self.gen_cores} % ({self.gen_cores} core(s))"
            )
        if level["box_cpu_pct"] > BOX_LIMIT:
            return f"the machine is saturated ({level['box_cpu_pct']:.0f} % of all CPUs busy)"
        if (level["hop_delay_p50_ms"] or 0) > 1000:
            return f"delay p50 {level['hop_delay_p50_ms']:.0f} ms: the server is falling behind"
        return ""

    def level(self, n: int, current: int, feed: Worker, groups: list[Worker]) -> dict[str, Any]:
        args, setup = self.args, self.setup
        timed = min(args.timed_players, n) if current == 0 else 0
        rest = n - current - timed
        shares = [rest // len(groups) + (i < rest % len(groups)) for i in range(len(groups))]
        started = time.monotonic()
        joined: list[dict[str, Any]] = []
        if timed:
            joined.append(feed.request("join", 120, argument=timed))
        for g, k in zip(groups, shares, strict=True):
            g.send("join", k)
        joined += [g.receive(120 + k) for g, k in zip(groups, shares, strict=True)]
        join_seconds = time.monotonic() - started
        playing_new = sum(j["playing"] for j in joined)
        errors = [e for j in joined for e in j["errors"]]
        t_playing = [t for j in joined for t in j["t_playing"]]
        time.sleep(args.settle)

        everyone = [feed, *groups]
        gen_procs = [w.ps for w in everyone] + [psutil.Process()]
        procs = setup.processes(self.server)  # workers may have come and gone
        snap_before = [w.request("snapshot") for w in everyone]
        udp_before = udp_counters()
        feed.request("record", argument=True)
        psutil.cpu_percent()
        parts_before = [total_cpu([feed.ps]), total_cpu([g.ps for g in groups])]
        throttled_before = self.caps.throttled_seconds() if self.caps else 0.0
        cpu_before, gen_before, t0 = total_cpu(procs), total_cpu(gen_procs), time.monotonic()
        time.sleep(args.seconds)
        cpu_after, gen_after, t1 = total_cpu(procs), total_cpu(gen_procs), time.monotonic()
        throttled = (self.caps.throttled_seconds() if self.caps else 0.0) - throttled_before
        parts_after = [total_cpu([feed.ps]), total_cpu([g.ps for g in groups])]
        box = psutil.cpu_percent()
        recorded = feed.request("record", argument=False)
        udp_after = udp_counters()
        snap_after = [w.request("snapshot") for w in everyone]
        keyframes = [t for w in everyone for t in w.request("keyframes")]
        rss = total_rss(procs)

        elapsed = t1 - t0
        received = sum(a["received"] - b["received"] for a, b in zip(snap_after, snap_before, strict=True))
        expected = sum(a["expected"] - b["expected"] for a, b in zip(snap_after, snap_before, strict=True))
        lost = max(0, expected - received)
        other = sum(
            a["other_datagrams"] - b["other_datagrams"] for a, b in zip(snap_after, snap_before, strict=True)
        )
        repaired = sum(a["repaired"] - b["repaired"] for a, b in zip(snap_after, snap_before, strict=True))
        rtcp: Counter[str] = Counter()
        for a, b in zip(snap_after, snap_before, strict=True):
            rtcp.update({k: v - b["rtcp_sent"].get(k, 0) for k, v in a["rtcp_sent"].items()})
        servers: Counter[str] = Counter()
        for snap in snap_after:
            servers.update(snap["servers"])
        playing_total = current + playing_new
        seated = max(1, playing_total)  # per-player figures: per player actually playing
        server_cpu = 100 * (cpu_after - cpu_before) / elapsed
        generator_cpu = 100 * (gen_after - gen_before) / elapsed
        got = sorted(t * 1000 for t in keyframes if t is not None)
        level: dict[str, Any] = {
            "server": setup.server,
            "config": setup.config,
            "viewer": setup.viewer,
            "repeat": setup.repeat,
            "label": setup.label,
            "workers": setup.workers,
            "players": n,
            "playing": playing_total,
            "join_seconds": join_seconds,
            "join_errors": errors[:10],
            "window_seconds": elapsed,
            "server_cpu_pct": server_cpu,
            "cpu_per_player_pct": server_cpu / seated,
            "cpu_per_player_over_baseline_pct": (server_cpu - self.baseline["server_cpu_pct"]) / seated,
            "server_rss_mb": rss / MIB,
            "rss_per_player_mb": (rss / MIB - self.baseline["server_rss_mb"]) / seated,
            "packets_expected": expected,
            "packets_lost": lost,
            "loss_pct": 100 * lost / expected if expected else None,
            "packets_per_player_per_second": received / elapsed / max(1, playing_total),
            "other_datagrams_per_player_per_second": other / elapsed / max(1, playing_total),
            "repaired_packets": repaired,
            "rtcp_sent_per_player_per_second": {
                k: v / elapsed / max(1, playing_total) for k, v in rtcp.items()
            },
            **quantiles([d for ds in recorded["delays_ms"].values() for d in ds], "hop_delay"),
            "hop_delay_by_server_url": {
                url: quantiles(ds, "hop_delay") for url, ds in recorded["delays_ms"].items()
            },
            "hop_delay_unmatched": recorded["unmatched"],
            "feed_packets_per_second": recorded["sent_per_second"],
            "first_keyframe_ms": percentile_sorted(got, 50) if got else None,
            "first_keyframe_p95_ms": percentile_sorted(got, 95) if got else None,
            "first_keyframe_players": len(got),
            "players_without_keyframe": len(keyframes) - len(got),
            "playing_p50_ms": percentile_sorted(sorted(t * 1000 for t in t_playing), 50)
            if t_playing
            else None,
            "generator_cpu_pct": generator_cpu,
            "generator_cores": self.gen_cores,
            "feed_process_cpu_pct": 100 * (parts_after[0] - parts_before[0]) / elapsed,
            "player_processes_cpu_pct": 100 * (parts_after[1] - parts_before[1]) / elapsed,
            "generator_saturated": generator_cpu > GENERATOR_LIMIT * self.gen_cores,
            "box_cpu_pct": box,
            "others_cpu_pct": max(0.0, box * (psutil.cpu_count() or 1) - server_cpu - generator_cpu),
            "udp_rcvbuf_errors": udp_after.get("RcvbufErrors", 0) - udp_before.get("RcvbufErrors", 0),
            "udp_in_errors": udp_after.get("InErrors", 0) - udp_before.get("InErrors", 0),
            "players_per_server_url": dict(servers),
            "server_processes": len(procs),
            "cpu_cap": setup.cpu_cap,
            "throttled_pct": 100 * throttled / elapsed / len(procs) if self.caps else None,
            "server_threads": sum(p.num_threads() for p in procs if p.is_running()),
        }
        return level


def level_line(level: dict[str, Any]) -> str:
    f = fmt
    spread = ""
    if len(level["players_per_server_url"]) > 1:
        spread = "; players per worker " + ", ".join(
            f"{url.rsplit(':', 1)[-1]}: {k}" for url, k in sorted(level["players_per_server_url"].items())
        )
    if len(level["hop_delay_by_server_url"]) > 1:
        spread += "; delay p50/p99 per worker " + ", ".join(
            f"{url.rsplit(':', 1)[-1]}: {f(d['hop_delay_p50_ms'], '.2f')}/{f(d['hop_delay_p99_ms'], '.2f')} ms"
            for url, d in sorted(level["hop_delay_by_server_url"].items())
        )
    errors = f"; join errors: {level['join_errors'][:2]}" if level["join_errors"] else ""
    sent = level["rtcp_sent_per_player_per_second"]
    rtcp = ""
    if sent:
        packets = sum(v for k, v in sent.items() if k != "nacked")
        rtcp = f", viewer RTCP {packets:.2f}/s per player ({', '.join(f'{k} {v:.2f}' for k, v in sorted(sent.items()))})"
    return (
        f"N={level['players']}: {level['playing']} playing (joined in {level['join_seconds']:.1f} s), server "
        f"{level['server_cpu_pct']:.1f} % CPU, loss {f(level['loss_pct'], '.3f')} %, delay p50/p99 "
        f"{f(level['hop_delay_p50_ms'], '.2f')}/{f(level['hop_delay_p99_ms'], '.2f')} ms, 1st keyframe p50 "
        f"{f(level['first_keyframe_ms'], '.0f')} ms, generator {level['generator_cpu_pct']:.0f} % CPU of "
        f"{100 * level['generator_cores']} %, feed {level['feed_packets_per_second']:.0f} pkt/s, "
        f"UDP rcvbuf drops {level['udp_rcvbuf_errors']}{rtcp}{spread}{errors}"
    )


JANUS_BENIGN = ("Hashing algorithm not the one we expected", "Failed to add some remote candidates", "mDNS")
"Janus warnings every aiortc player causes (extra fingerprints, one candidate line per m-line) or the config does."


def run_setup(setup: Setup, args: argparse.Namespace, generator_cpus: list[int] | None) -> dict[str, Any]:
    """Start the server, ramp the players, stop the server.

    CPU affinity is inherited: this process takes the server's CPUs while it starts the server (its
    workers and threads inherit them), then the generator's CPUs while it starts the feed and players.
    """
    print(f"{setup.label}: starting", flush=True)
    ramp = Ramp(setup, args, generator_cpus)
    failure = ""
    everywhere = sorted(args.cpus)
    with tempfile.TemporaryDirectory(prefix="rtcdn-perf-") as tmp:
        server = setup.make(Path(tmp))
        try:
            os.sched_setaffinity(0, setup.server_cpus or everywhere)
            try:
                server.start()
            finally:
                os.sched_setaffinity(0, generator_cpus or everywhere)
            ramp.run(server)
        except (RuntimeError, TimeoutError, OSError) as exc:
            failure = f"{type(exc).__name__}: {exc}"
            print(f"  [{setup.label}] failed: {failure}", flush=True)
        finally:
            server.stop()
            server.keep_log(args.logs)
            if ramp.caps is not None:
                ramp.caps.close()
        problems = [p for p in server.problems() if not any(b in p for b in JANUS_BENIGN)]
    if problems:
        print(
            f"  [{setup.label}] {len(problems)} warnings/errors in the server log, first: {problems[0][:200]}"
        )
    extra: dict[str, Any] = {}
    if isinstance(server, JanusServer):
        version = subprocess.run([server.command[0], "--version"], capture_output=True, text=True, timeout=10)
        extra["janus_version"] = version.stdout.splitlines()[0] if version.stdout else ""
        extra["janus_command"] = " ".join(server.command)
        extra["janus_config_files"] = server.config
    return {
        "server": setup.server,
        "config": setup.config,
        "viewer": setup.viewer,
        "repeat": setup.repeat,
        "label": setup.label,
        "workers": setup.workers,
        **extra,
        "server_cpus": setup.server_cpus,
        "cpu_cap": setup.cpu_cap,
        "generator_cpus": generator_cpus,
        "server_affinity": ramp.affinity,
        "baseline": ramp.baseline,
        "levels": ramp.levels,
        "stopped_because": ramp.stopped_because,
        "failure": failure,
        "feed": ramp.feed_stats,
        "exit_code": server.exit_code,
        "shutdown_seconds": server.shutdown_seconds,
        "log_problems": problems[:20],
        "log_problem_count": len(problems),
    }
