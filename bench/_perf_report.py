"""bench/perf.py's report: the table of every level, rtcdn/Janus ratios, "held" N, the scaling
summary and the plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from _perf_ramp import DELAY_LIMIT_MS, LOSS_LIMIT
from _report import Columns, fmt, ratio, render
from _report import table as render_table

COLUMNS: Columns = [
    ("server", lambda r: str(r["label"])),
    ("N", lambda r: str(r["players"])),
    ("playing", lambda r: str(r["playing"])),
    ("srv CPU%", lambda r: fmt(r["server_cpu_pct"], ".1f")),
    ("CPU%/pl", lambda r: fmt(r["cpu_per_player_pct"], ".3f")),
    ("RSS MiB", lambda r: fmt(r["server_rss_mb"], ".0f")),
    ("RSS/pl MiB", lambda r: fmt(r["rss_per_player_mb"], ".3f")),
    ("loss %", lambda r: fmt(r["loss_pct"], ".3f")),
    ("delay p50", lambda r: fmt(r["hop_delay_p50_ms"], ".2f")),
    ("p99 ms", lambda r: fmt(r["hop_delay_p99_ms"], ".2f")),
    ("1st KF p50", lambda r: fmt(r["first_keyframe_ms"], ".0f")),
    ("p95 ms", lambda r: fmt(r["first_keyframe_p95_ms"], ".0f")),
    ("pkt/s/pl", lambda r: fmt(r["packets_per_player_per_second"], ".0f")),
    ("gen CPU%", lambda r: f"{r['generator_cpu_pct']:.0f}/{100 * r['generator_cores']}"),
    ("others%", lambda r: fmt(r["others_cpu_pct"], ".0f")),
]


def table(levels: list[dict[str, Any]]) -> str:
    return render_table(levels, COLUMNS, left=1)


LEGEND = """\
CPU in % of one core over the window (server: its own processes' CPU time; workers summed); CPU%/pl = server
CPU / N; RSS/pl = (RSS - RSS with the feed alone) / N; loss from sequence gaps per SSRC over the window, on
first transmission (lean players send no NACK; a chromium viewer's packet that came back after a NACK still
counts as lost); delay = kernel receive time at a timed player - the feed's send time of the same payload (the
delay the server adds; on loopback the receive stamp is taken in the server's sendto); 1st KF = playStream
(Janus: watch) -> first complete VP8 keyframe, players added at that N; gen = load generator (feed, players,
this script) CPU / its capacity; others = every other process on the machine (disturbs the figures)."""


def held(levels: list[dict[str, Any]], delay_limit: float | None = None) -> int | None:
    """The largest N before the first N that lost >= 0.5 % (or could not seat every player).

    With ``delay_limit`` (ms), an N whose delay p99 exceeds it ends the run of held N too.
    """
    best = None
    for level in levels:
        if level["playing"] < level["players"] or (level["loss_pct"] or 0) >= LOSS_LIMIT:
            break
        if delay_limit is not None and (level["hop_delay_p99_ms"] or 0) > delay_limit:
            break
        best = level["players"]
    return best


def scaling_summary(capped: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Players held by 1, 2, ... workers when every worker is capped at the same fraction of a core.

    A capped server queues before it drops (up to 256 datagrams per connection), so the figure that
    tracks its CPU is the one with the delay bound as well; both are given.
    """
    if not capped:
        return {}
    runs = sorted(capped.values(), key=lambda r: r["workers"])
    cap = runs[0]["cpu_cap"]
    out: dict[str, Any] = {"cpu_cap_per_process": cap}
    texts = []
    for key, limit, what in (
        ("held_by_workers", None, f"< {LOSS_LIMIT} % loss"),
        ("held_by_workers_delay_p99_under_200ms", DELAY_LIMIT_MS, f"and delay p99 < {DELAY_LIMIT_MS:.0f} ms"),
    ):
        held_by = {r["workers"]: held(r["levels"], limit) for r in runs}
        out[key] = {str(k): v for k, v in held_by.items()}
        base = held_by.get(1)
        parts = [
            f"{k} worker(s) {n if n is not None else 'none'}"
            + (f" (x{n / base:.2f})" if base and n and k > 1 else "")
            for k, n in held_by.items()
        ]
        texts.append(f"{what}: " + ", ".join(parts))
    top = {r["workers"]: (r["levels"][-1]["players"] if r["levels"] else None) for r in runs}
    out["largest_n_run"] = {str(k): v for k, v in top.items()}
    out["line"] = (
        f"players held with every rtcdn process capped at {cap:g} core (cgroups): "
        + "; ".join(texts)
        + " (largest N run: "
        + ", ".join(f"{k} worker(s) {n}" for k, n in top.items())
        + ")"
    )
    return out


RATIO_KEYS = {
    "cpu_per_player": "cpu_per_player_pct",
    "cpu_per_player_over_baseline": "cpu_per_player_over_baseline_pct",
    "rss_per_player": "rss_per_player_mb",
    "hop_delay_p50": "hop_delay_p50_ms",
    "hop_delay_p99": "hop_delay_p99_ms",
    "first_keyframe": "first_keyframe_ms",
}


def _same_run(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> bool:
    """Levels of the same viewer kind and round (those are compared)."""
    return bool(a and b) and (a[0]["viewer"], a[0]["repeat"]) == (b[0]["viewer"], b[0]["repeat"])


def ratios(by_label: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """rtcdn / Janus per N both reached, for every rtcdn and Janus configuration played by the same
    viewer kind in the same round."""
    out = []
    for rl, rlevels in by_label.items():
        if not rl.startswith("rtcdn"):
            continue
        for jl, jlevels in by_label.items():
            if not jl.startswith("janus") or not _same_run(rlevels, jlevels):
                continue
            janus_at = {j["players"]: j for j in jlevels}
            for r in rlevels:
                j = janus_at.get(r["players"])
                if j is None:
                    continue
                row: dict[str, Any] = {"rtcdn": rl, "janus": jl, "players": r["players"]}
                row.update({name: ratio(r[key], j[key]) for name, key in RATIO_KEYS.items()})
                row["loss_pct"] = {"rtcdn": r["loss_pct"], "janus": j["loss_pct"]}
                out.append(row)
    return out


def ratio_table(rows: list[dict[str, Any]]) -> str:
    heads = [
        "rtcdn / Janus",
        "N",
        "CPU/pl",
        "ΔCPU/pl",
        "RSS/pl",
        "delay p50",
        "delay p99",
        "1st KF",
        "loss % rtcdn|janus",
    ]
    lines = [heads]
    for r in rows:
        loss = r["loss_pct"]
        lines.append(
            [
                f"{r['rtcdn']} / {r['janus']}",
                str(r["players"]),
                *(fmt(r[k], ".2f") for k in RATIO_KEYS),
                f"{fmt(loss['rtcdn'], '.3f')}|{fmt(loss['janus'], '.3f')}",
            ]
        )
    return render(lines, left=1)


def plot(by_label: dict[str, list[dict[str, Any]]], path: Path, subtitle: str) -> str:
    """CPU vs players (and CPU per player) for every configuration; '' or why there is no plot."""
    try:
        import matplotlib  # type: ignore[import-not-found, unused-ignore]

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return "matplotlib is not installed (.venv/bin/pip install matplotlib): no plot"
    if not any(by_label.values()):
        return "no results: no plot"
    fig, (total, per) = plt.subplots(1, 2, figsize=(12, 4.8))
    for label, levels in by_label.items():
        if not levels:
            continue
        style = "-o" if label.startswith("rtcdn") else "--s"
        n = [r["players"] for r in levels]
        total.plot(n, [r["server_cpu_pct"] for r in levels], style, label=label)
        per.plot(n, [r["cpu_per_player_pct"] for r in levels], style, label=label)
        lossy = [r for r in levels if (r["loss_pct"] or 0) >= LOSS_LIMIT]
        if lossy:
            total.plot(
                [r["players"] for r in lossy], [r["server_cpu_pct"] for r in lossy], "kx", markersize=10
            )
    total.plot([], [], "kx", label=f"loss >= {LOSS_LIMIT} %")
    total.set_xlabel("players")
    total.set_ylabel("server CPU, % of one core")
    total.axhline(100, color="grey", linewidth=0.8, linestyle=":")
    per.set_xlabel("players")
    per.set_ylabel("server CPU per player, % of one core")
    for ax in (total, per):
        ax.grid(True, alpha=0.3)
        ax.legend()
        ax.set_xlim(left=0)
        ax.set_ylim(bottom=0)
    fig.suptitle(f"Server CPU vs players: rtcdn and Janus (streaming plugin)\n{subtitle}", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return ""


def fit(levels: list[dict[str, Any]], baseline: dict[str, float], key: str, base_key: str) -> float | None:
    """Least-squares slope of ``level[key]`` over N, the feed-alone baseline as N=0 (per player)."""
    points = [(0, baseline[base_key])] if base_key in baseline else []
    points += [(lv["players"], lv[key]) for lv in levels if (lv["loss_pct"] or 0) < LOSS_LIMIT]
    if len(points) < 2:
        return None
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else None


def fits(results: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Per uncapped setup: CPU (% of a core) and RSS (MiB) per player, fitted over N = 0 (the feed
    alone) and every N without loss >= 0.5 %: what a player adds, the baseline left out."""
    return {
        r["label"]: {
            "cpu_pct_per_player": fit(r["levels"], r["baseline"], "server_cpu_pct", "server_cpu_pct"),
            "rss_mb_per_player": fit(r["levels"], r["baseline"], "server_rss_mb", "server_rss_mb"),
            "baseline_cpu_pct": r["baseline"].get("server_cpu_pct"),
            "baseline_rss_mb": r["baseline"].get("server_rss_mb"),
        }
        for r in results
        if not r["cpu_cap"]
    }


def fit_table(fitted: dict[str, dict[str, float | None]], results: list[dict[str, Any]]) -> str:
    """The fitted figures per setup, and rtcdn/Janus of them for the same viewer kind and round."""
    meta = {r["label"]: (r["server"], r["viewer"], r["repeat"]) for r in results}
    lines = [["fit over N (0 = feed alone)", "CPU%/pl", "KiB/pl", "CPU% N=0", "MiB N=0"]]
    for label, f in fitted.items():
        lines.append(
            [
                label,
                fmt(f["cpu_pct_per_player"], ".3f"),
                fmt(f["rss_mb_per_player"], ".0f", 1024),
                fmt(f["baseline_cpu_pct"], ".1f"),
                fmt(f["baseline_rss_mb"], ".0f"),
            ]
        )
    for rl, rf in fitted.items():
        for jl, jf in fitted.items():
            if meta[rl][0] != "rtcdn" or meta[jl][0] != "janus" or meta[rl][1:] != meta[jl][1:]:
                continue
            lines.append(
                [
                    f"{rl} / {jl}",
                    fmt(ratio(rf["cpu_pct_per_player"], jf["cpu_pct_per_player"]), ".2f"),
                    fmt(ratio(rf["rss_mb_per_player"], jf["rss_mb_per_player"]), ".2f"),
                    fmt(ratio(rf["baseline_cpu_pct"], jf["baseline_cpu_pct"]), ".2f"),
                    fmt(ratio(rf["baseline_rss_mb"], jf["baseline_rss_mb"]), ".2f"),
                ]
            )
    return render(lines, left=1)
