"""--workers: extra processes are local edges of the first; the balancer spreads players over all."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from wcs_client import WcsClient, count_frames

HOST = "127.0.0.81"


async def balancer(http: aiohttp.ClientSession) -> dict[str, Any]:
    async with http.get(f"http://{HOST}:8081/balancer") as resp:
        reply: dict[str, Any] = await resp.json()
        return reply


async def test_two_workers(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "rtcdn",
        "serve",
        "--bind",
        HOST,
        "--workers",
        "2",
        "--wss-port",
        "0",
        "--http-ports",
        "8081",
        "--https-ports",
        "",
        "--state-dir",
        str(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        assert b"ready:" in await asyncio.wait_for(proc.stdout.readline(), 20)
        children = psutil.Process(proc.pid).children()
        assert len(children) == 1
        async with aiohttp.ClientSession() as http, WcsClient(f"ws://{HOST}:8080") as pub:
            await pub.publish("shared")
            async with asyncio.timeout(10):  # worker 1 answers its probe and gets the stream
                while {(await balancer(http))["ws"] for _ in range(2)} != {8080, 9080}:
                    await asyncio.sleep(0.2)
            for _ in range(2):
                reply = await balancer(http)
                async with WcsClient(f"ws://{reply['server']}:{reply['ws']}") as viewer:
                    _, pc, status = await viewer.play("shared")
                    assert status is not None and status["status"] == "PLAYING", (reply, status)
                    video = next(r.track for r in pc.getReceivers() if r.track.kind == "video")
                    assert await count_frames(video, 1.0) > 3
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
        assert not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
