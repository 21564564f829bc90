"""Soak (short): a few hundred publish/play/stop cycles over WCS and WHIP/WHEP with churn on one
in-process server (``bench/soak.py``, which does 10,000): nothing is left at the end."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

CYCLES = 200
WARMUP = 40
"Cycles before the start figures: the executor's codec threads get their malloc arenas."
RSS_SLACK_MIB = 80
"""RSS may grow this much in all (allocator arenas, the WHIP endpoint's bounded table of ended
resources; samples vary by ±25 MiB; a process that ran the whole suite before starts with more
arenas to fill): bench/soak.py shows RSS climbing for ~1,500 cycles with glibc's default arenas
(~250 with MALLOC_ARENA_MAX=2), then flat to 10,000. A leaked peer is caught by the counts."""
PLATEAU_BLOCKS = 20_000
"""...and Python's heap (allocated blocks after a collection, which the allocator's arenas do not
blur as they blur RSS: ±25 MiB between samples in a process that ran the suite) may not climb in
the second half past the first half's highest sample by more: it moves by ~2,500 blocks over 200
clean cycles; an aiortc peer connection kept per cycle adds ~3,000 a cycle (measured: 150,000
per 50 cycles), so 20,000 catches a leak of ~200 blocks a cycle."""


def bench_soak() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "bench" / "soak.py"
    if str(path.parent) not in sys.path:  # what `python bench/soak.py` does: its helpers import
        sys.path.append(str(path.parent))
    spec = importlib.util.spec_from_file_location("rtcdn_bench_soak", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


async def test_cycles_leave_nothing_behind(tmp_path: Path) -> None:
    soak = bench_soak()
    report = await soak.soak(
        CYCLES, concurrency=4, warmup=WARMUP, sample_every=50, state_dir=tmp_path / "state"
    )
    print("\n" + report.summary())
    start, end = report.start, report.end
    assert not report.failures, report.failures
    assert (end.peers, end.wcs_sessions, end.media_sessions, end.streams, end.whip_resources) == (
        0,
        0,
        0,
        0,
        0,
    )
    assert (end.tasks, end.fds, end.udp) == (start.tasks, start.fds, start.udp), (start, end)
    curve = [s.rss_mib for s in report.curve]
    assert end.rss_mib <= start.rss_mib + RSS_SLACK_MIB, curve
    blocks = [s.blocks for s in report.curve]
    assert blocks[-1] - max(blocks[: len(blocks) // 2 + 1]) <= PLATEAU_BLOCKS, blocks  # no new high later
