"""Node statistics in WCS's ``/?action=stat`` form: section headers, then ``key=value`` lines."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping

from ..stream import StreamManager


class CpuMeter:
    """CPU load of this process and of the machine (0..1) since the previous reading."""

    def __init__(self) -> None:
        self._last = (time.monotonic(), time.process_time(), _system_times())

    def read(self) -> tuple[float, float]:
        now, proc, system = time.monotonic(), time.process_time(), _system_times()
        last_now, last_proc, last_system = self._last
        self._last = (now, proc, system)
        wall = max(now - last_now, 1e-6)
        cpus = os.cpu_count() or 1
        process_load = min(1.0, (proc - last_proc) / wall / cpus)
        if system is None or last_system is None:
            system_load = min(1.0, os.getloadavg()[0] / cpus)
        else:
            busy = system[0] - last_system[0]
            total = system[1] - last_system[1]
            system_load = busy / total if total > 0 else 0.0
        return process_load, system_load


def _system_times() -> tuple[int, int] | None:
    """(busy, total) jiffies from /proc/stat, or None where there is no /proc."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


def format_stat(sections: Mapping[str, Mapping[str, object]]) -> str:
    """``-----Name-----`` headers (the WebSDK's stat parser needs them) and ``key=value`` lines."""
    lines = []
    for section, values in sections.items():
        lines.append(f"-----{section}-----")
        lines += [f"{key}={value}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def parse_stat(text: str) -> dict[str, str]:
    """Every ``key=value`` line of a stat page (headers and other lines are skipped)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() and not key.startswith("-"):
            out[key.strip()] = value.strip()
    return out


def node_stat(streams: StreamManager, connections: int, cpu: CpuMeter, node_id: str) -> str:
    """This node's ``/?action=stat`` page (what CDN balancers read)."""
    publishers = sum(1 for s in streams if s.live)
    players = sum(len(s.players) for s in streams)
    process_load, system_load = cpu.read()
    return format_stat(
        {
            "Connection": {"connections": connections, "connections_websocket": connections},
            "Streams": {
                "streams": publishers,
                "publishers": publishers,
                "players": players,
                "calls": publishers + players,
                "streams_webrtc_in": publishers,
                "streams_webrtc_out": players,
            },
            "Core": {
                "processCpuLoad": f"{process_load:.3f}",
                "systemCpuLoad": f"{system_load:.3f}",
                "availableProcessors": os.cpu_count() or 1,
                "nodeId": node_id,
            },
        }
    )
