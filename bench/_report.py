"""Figures and reports the benchmarks share: percentiles, spreads, text tables, the JSON results file,
and the command-line options every benchmark has (clip, client address, output, logs)."""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

RESULTS = Path(__file__).resolve().parent / "results"
"Where every benchmark writes its JSON (``bench/results/<name>.json``)."
MIB = 2**20


# --- numbers -----------------------------------------------------------------------------------------


def percentile_sorted(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of sorted, non-empty values (``q`` in 0..100)."""
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..100); None without values."""
    return percentile_sorted(sorted(values), q) if values else None


def quantiles(values: Sequence[float], prefix: str) -> dict[str, float | int | None]:
    """``{prefix}_samples``, ``{prefix}_p50_ms``/``p90``/``p99`` and ``{prefix}_max_ms`` of values in ms."""
    ordered = sorted(values)
    out: dict[str, float | int | None] = {f"{prefix}_samples": len(ordered)}
    for q in (50, 90, 99):
        out[f"{prefix}_p{q}_ms"] = percentile_sorted(ordered, q) if ordered else None
    out[f"{prefix}_max_ms"] = ordered[-1] if ordered else None
    return out


def spread(values_ns: Sequence[int]) -> dict[str, float] | None:
    """count, then min/p50/p90/p99/max/mean in ms, of values in ns; None without values."""
    if not values_ns:
        return None
    ordered = sorted(v / 1e6 for v in values_ns)
    return {
        "count": len(ordered),
        "min": ordered[0],
        "p50": percentile_sorted(ordered, 50),
        "p90": percentile_sorted(ordered, 90),
        "p99": percentile_sorted(ordered, 99),
        "max": ordered[-1],
        "mean": sum(ordered) / len(ordered),
    }


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b, None if either is unknown or b is 0."""
    return a / b if a is not None and b else None


def player_summary(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What players saw over the whole time they played (``asdict(PlayerResult)``-like records: ``ok``,
    ``expected``, ``lost``, ``srtp_errors``, ``t_playing``, ``t_keyframe`` and, if they have it,
    ``t_keyframe_packet``; times in seconds)."""
    ok = [r for r in results if r["ok"]]
    keyframes = [r["t_keyframe"] for r in ok if r["t_keyframe"] is not None]
    expected = sum(r["expected"] for r in ok)
    lost = sum(r["lost"] for r in ok)
    out = {
        "packets_expected": expected,
        "packets_lost": lost,
        "loss_percent": 100 * lost / expected if expected else None,
        "worst_player_loss_percent": max(
            (100 * r["lost"] / r["expected"] for r in ok if r["expected"]), default=None
        ),
        "srtp_errors": sum(r["srtp_errors"] for r in ok),
        "players_without_keyframe": len(ok) - len(keyframes),
        "keyframe_p50": percentile(keyframes, 50),
        "keyframe_p95": percentile(keyframes, 95),
        "keyframe_max": max(keyframes, default=None),
        "keyframe_ms": sorted(round(t * 1000) for t in keyframes),
        "playing_p50": percentile([r["t_playing"] for r in ok], 50),
        "playing_p95": percentile([r["t_playing"] for r in ok], 95),
    }
    if any("t_keyframe_packet" in r for r in ok):
        first = [r["t_keyframe_packet"] for r in ok if r.get("t_keyframe_packet") is not None]
        out["keyframe_packet_p50"] = percentile(first, 50)
        out["keyframe_packet_p95"] = percentile(first, 95)
    return out


# --- text tables -------------------------------------------------------------------------------------


def fmt(value: float | None, spec: str = ".0f", scale: float = 1) -> str:
    """``value * scale`` formatted, ``-`` for None."""
    return "-" if value is None else format(value * scale, spec)


def cell(key: str, spec: str, scale: float = 1) -> Callable[[Mapping[str, Any]], str]:
    """A table column: ``row[key] * scale`` formatted (``-`` when missing)."""

    def column(row: Mapping[str, Any]) -> str:
        return fmt(row.get(key), spec, scale)

    return column


def render(rows: Sequence[Sequence[str]], left: int = 0) -> str:
    """Rows of cells as aligned columns: the first ``left`` left-aligned, the others right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(
            c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    )


Columns = Sequence[tuple[str, Callable[[Mapping[str, Any]], str]]]


def table(rows: Sequence[Mapping[str, Any]], columns: Columns, left: int = 0) -> str:
    """One line per row, one column per ``(heading, cell)``."""
    return render([[head for head, _ in columns]] + [[c(r) for _, c in columns] for r in rows], left)


# --- results -----------------------------------------------------------------------------------------


def rounded(value: Any) -> Any:
    """``value`` with every float rounded to 4 decimals (stable, readable diffs)."""
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


def write_results(path: Path, report: dict[str, Any]) -> None:
    """``report`` as JSON (floats rounded) to ``path``, then say so."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rounded(report), indent=1) + "\n")
    print(f"\nwritten: {os.path.relpath(path)}")


def machine() -> dict[str, Any]:
    """The machine a report was made on."""
    return {
        "cores": psutil.cpu_count() or 1,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def config(args: argparse.Namespace, leave_out: Sequence[str] = ()) -> dict[str, Any]:
    """The options of a run, for its report (paths as strings)."""
    return {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k not in leave_out}


# --- command lines -------------------------------------------------------------------------------------


def parser(doc: str | None) -> argparse.ArgumentParser:
    """An argument parser described by the first paragraph of a script's docstring."""
    return argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])


def add_clip_options(parser: argparse.ArgumentParser, bitrate: int = 1_000_000) -> None:
    """``--size``, ``--fps``, ``--bitrate``: the VP8 clip every benchmark encodes."""
    add = parser.add_argument
    add("--size", default="1280x720", help="video size (default 1280x720)")
    add("--fps", type=int, default=30)
    add("--bitrate", type=int, default=bitrate, help=f"video bits/s (default {bitrate})")


def clip_size(args: argparse.Namespace) -> tuple[int, int]:
    """(width, height) of ``--size``."""
    width, height = (int(x) for x in args.size.split("x"))
    return width, height


def add_client_options(
    parser: argparse.ArgumentParser, client_address: str, media_ports: bool = True
) -> None:
    """``--client-address`` (where publishers and players gather) and ``--media-ports``."""
    parser.add_argument(
        "--client-address",
        default=client_address,
        help=f"address publisher and players gather on (default {client_address})",
    )
    if media_ports:
        parser.add_argument("--media-ports", default="31000-31999")


def add_output_options(
    parser: argparse.ArgumentParser, output: Path, logs: str = "keep the server logs in this folder"
) -> None:
    """``--output`` (the JSON results) and ``--logs``."""
    parser.add_argument(
        "--output", type=Path, default=output, help=f"JSON results (default {os.path.relpath(output)})"
    )
    parser.add_argument("--logs", type=Path, help=logs)


def counts(
    parser: argparse.ArgumentParser, option: str, text: str, why: str = "", ordered: bool = True
) -> list[int]:
    """Comma-separated counts >= 1 (sorted without repeats, unless not ``ordered``), or the parser's error."""
    values = [int(x) for x in text.split(",") if x.strip()]
    if ordered:
        values = sorted(set(values))
    if not values or min(values) < 1:
        parser.error(f"{option}: counts must be >= 1{why}")
    return values
