"""CPU caps per process with Linux cgroups, so a 2-core machine can show how capacity grows with workers.

On this machine the load generator needs about as much CPU as the server it drives, so two rtcdn
workers cannot be given a core each *and* be driven to their limit. Capping every server process at
the same fraction of a core (each in a cgroup of its own) makes "one worker = one small core": the
players held by 1, 2, ... workers can then be compared with CPU to spare for the generator.

Both hierarchies are handled: cgroup v1 (``/sys/fs/cgroup/cpu/<group>/cpu.cfs_quota_us``) and v2
(``/sys/fs/cgroup/<group>/cpu.max``). Needs write access to the cgroup tree (root); without it
:func:`unavailable` says why and the benchmark skips the capped runs.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")
PERIOD_US = 10_000
"CFS period: a capped process waits at most (1 - fraction) x 10 ms when its budget is spent."


def _v1_root() -> Path | None:
    for name in ("cpu", "cpu,cpuacct"):
        root = CGROUP / name
        if (root / "cpu.cfs_quota_us").exists():
            return root
    return None


def _v2_root() -> Path | None:
    controllers = CGROUP / "cgroup.controllers"
    if controllers.exists() and "cpu" in controllers.read_text().split():
        return CGROUP
    return None


def unavailable() -> str:
    """Why CPU caps cannot be set here ('' when they can)."""
    root = _v1_root() or _v2_root()
    if root is None:
        return f"no cgroup cpu controller under {CGROUP}"
    if not os.access(root, os.W_OK):
        return f"{root} is not writable (needs root)"
    return ""


class CpuCaps:
    """One cgroup per confined process, each capped at ``fraction`` of a core; :meth:`close` removes them."""

    def __init__(self, fraction: float, tag: str) -> None:
        if not 0 < fraction <= 64:
            raise ValueError(f"CPU cap {fraction} is not a fraction of a core")
        self.fraction, self.tag = fraction, tag
        self.v1 = _v1_root()
        self.root = self.v1 or _v2_root()
        if self.root is None:
            raise RuntimeError(unavailable())
        self.groups: list[Path] = []

    def confine(self, pid: int) -> None:
        """Move process ``pid`` (all its threads) into a new group capped at ``fraction`` of a core."""
        assert self.root is not None
        group = self.root / f"{self.tag}-{pid}"
        if self.v1 is None:  # v2: the parent must hand the cpu controller down
            with contextlib.suppress(OSError):
                (self.root / "cgroup.subtree_control").write_text("+cpu")
        group.mkdir()
        self.groups.append(group)
        quota = round(self.fraction * PERIOD_US)
        if self.v1 is not None:
            (group / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (group / "cpu.cfs_quota_us").write_text(str(quota))
        else:
            (group / "cpu.max").write_text(f"{quota} {PERIOD_US}")
        (group / "cgroup.procs").write_text(str(pid))

    def throttled_seconds(self) -> float:
        """Time the confined processes spent waiting for budget so far (summed over groups)."""
        total = 0
        for group in self.groups:
            with contextlib.suppress(OSError):
                for line in (group / "cpu.stat").read_text().splitlines():
                    key, _, value = line.partition(" ")
                    if key == "throttled_time":  # v1, ns
                        total += int(value) // 1000
                    elif key == "throttled_usec":  # v2
                        total += int(value)
        return total / 1e6

    def close(self) -> None:
        """Remove the groups (their processes must have exited; retried briefly while they finish)."""
        for group in self.groups:
            for _ in range(50):
                try:
                    group.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)
        self.groups.clear()
