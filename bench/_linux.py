"""Linux specifics of the benchmarks: UDP counters, kernel receive timestamps, CPU pinning and CPU caps.

* :func:`udp_counters` reads the kernel's machine-wide UDP counters (``/proc/net/snmp``);
* :func:`kernel_stamp` is the receive time of the last datagram read from a socket (``SIOCGSTAMPNS``);
* :func:`pin` confines this process (and what it starts afterwards) to some CPUs;
* :class:`CpuCaps` caps processes at a fraction of a core with cgroups, so a 2-core machine can show
  how capacity grows with workers.

On this machine the load generator needs about as much CPU as the server it drives, so two rtcdn
workers cannot be given a core each *and* be driven to their limit. Capping every server process at
the same fraction of a core (each in a cgroup of its own) makes "one worker = one small core": the
players held by 1, 2, ... workers can then be compared with CPU to spare for the generator. Both
hierarchies are handled: cgroup v1 (``/sys/fs/cgroup/cpu/<group>/cpu.cfs_quota_us``) and v2
(``/sys/fs/cgroup/<group>/cpu.max``). Needs write access to the cgroup tree (root); without it
:func:`caps_unavailable` says why and the benchmark skips the capped runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

SIOCGSTAMPNS = 0x8907
"Linux ioctl: the receive timestamp (struct timespec) of the last datagram read from a socket."
UDP_ERRORS = ("InErrors", "RcvbufErrors", "SndbufErrors")


def udp_counters() -> dict[str, int]:
    """The kernel's UDP counters (/proc/net/snmp), machine-wide; {} where there is no /proc."""
    try:
        text = Path("/proc/net/snmp").read_text()
    except OSError:
        return {}
    lines = [line.split() for line in text.splitlines() if line.startswith("Udp:")]
    return dict(zip(lines[0][1:], map(int, lines[1][1:]), strict=True))


def udp_errors(
    before: Mapping[str, int], after: Mapping[str, int], keys: Sequence[str] = UDP_ERRORS
) -> dict[str, int]:
    """How much each of the UDP error counters ``keys`` grew (0 where unknown)."""
    return {k: after.get(k, 0) - before.get(k, 0) for k in keys}


def kernel_stamp(fd: int) -> int:
    """The kernel's receive time (CLOCK_REALTIME, ns) of the datagram last read from ``fd``; 0 if none.

    The first call also turns time-stamping on for the socket.
    """
    try:
        seconds, nanoseconds = struct.unpack("qq", fcntl.ioctl(fd, SIOCGSTAMPNS, bytes(16)))
    except OSError:
        return 0
    return int(seconds * 1_000_000_000 + nanoseconds)


def pin(cpus: Sequence[int] | None) -> None:
    """Confine this process to ``cpus`` (nothing if None or empty); children inherit it."""
    if cpus:
        os.sched_setaffinity(0, cpus)


# --- CPU caps (cgroups) --------------------------------------------------------------------------


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


def caps_unavailable() -> str:
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
            raise RuntimeError(caps_unavailable())
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
