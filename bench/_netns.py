"""A network namespace of the benchmark's own, so Janus has an interface that is not the machine's.

Janus (like libnice) never offers a loopback ICE candidate: it needs an interface with an address.
Rather than use the machine's own (eth0), :func:`run_inside` creates a namespace with ``lo`` up and a
veth pair whose one end carries ``198.18.0.1/24`` (RFC 2544's benchmarking range), re-runs the
benchmark inside it with ``nsenter --net`` (unlike ``ip netns exec`` it leaves the mounts alone, so
the cgroups of the capped runs stay reachable) and deletes the namespace afterwards. Inside, traffic
to the veth's address goes over the namespace's own loopback device, like every other address here.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence

NAMESPACE = "rtcdn-bench"
INTERFACE = "bench0"
ADDRESS = "198.18.0.1"
ENV = "RTCDN_BENCH_NETNS"


def inside() -> bool:
    """Whether this process runs in the namespace :func:`run_inside` made."""
    return os.environ.get(ENV) == NAMESPACE


def unavailable() -> str:
    """Why the namespace cannot be made here ('' when it can)."""
    if os.geteuid() != 0:
        return "creating a network namespace needs root"
    for tool in ("ip", "nsenter"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed"
    return ""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


def _create() -> None:
    _delete()  # a namespace left by a killed run
    _ip("netns", "add", NAMESPACE)
    _ip("-n", NAMESPACE, "link", "set", "lo", "up")
    _ip("-n", NAMESPACE, "link", "add", INTERFACE, "type", "veth", "peer", "name", f"{INTERFACE}p")
    _ip("-n", NAMESPACE, "addr", "add", f"{ADDRESS}/24", "dev", INTERFACE)
    _ip("-n", NAMESPACE, "link", "set", f"{INTERFACE}p", "up")
    _ip("-n", NAMESPACE, "link", "set", INTERFACE, "up")


def _delete() -> None:
    subprocess.run(["ip", "netns", "delete", NAMESPACE], capture_output=True, timeout=10)


def run_inside(argv: Sequence[str]) -> int:
    """Run ``python argv`` in a fresh namespace; its exit code. The namespace is gone afterwards."""
    _create()
    env = {**os.environ, ENV: NAMESPACE}
    command = ["nsenter", f"--net=/run/netns/{NAMESPACE}", sys.executable, *argv]
    print(
        f"network namespace {NAMESPACE}: {INTERFACE} {ADDRESS}/24 for Janus's ICE; re-running inside",
        flush=True,
    )
    # its own process group: a terminal's Ctrl-C reaches this process only, which passes it (or a
    # SIGTERM) on once, so the child stops as if interrupted: its servers and players are stopped
    child = subprocess.Popen(command, env=env, process_group=0)

    def forward(signum: int, _frame: object) -> None:
        child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _delete()
