"""Debian's real Prometheus scrapes a real ``rtcdn serve`` every second; the series are read back
through Prometheus' HTTP API while the aiortc WCS client publishes and plays.

rtcdn runs on 127.0.0.41 (one process) and 127.0.0.43 (``workers=2``: one scrape target for the
node, worker 0 summing worker 1's samples); Prometheus listens on 127.0.0.42. Install it with
``make prometheus``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from testkit import free_port
from wcs_client import WcsClient

from .conftest import rtcdn_process

RTCDN, PROMETHEUS_HOST, RTCDN_WORKERS = "127.0.0.41", "127.0.0.42", "127.0.0.43"
PROMETHEUS = os.environ.get("RTCDN_E2E_PROMETHEUS") or shutil.which("prometheus") or "/usr/bin/prometheus"
CONFIG = """\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: rtcdn
    static_configs:
      - targets: ["{target}"]
"""


@contextlib.contextmanager
def prometheus(workdir: Path, target: str) -> Iterator[str]:
    """A Prometheus server scraping ``target`` every second, its data in ``workdir``; yields its URL.
    SIGTERM at the end (SIGKILL after 10 s)."""
    if not Path(PROMETHEUS).exists():
        pytest.fail(f"no Prometheus at {PROMETHEUS} (run `make prometheus`)")
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "prometheus.yml"
    config.write_text(CONFIG.format(target=target))
    address = f"{PROMETHEUS_HOST}:{free_port(PROMETHEUS_HOST)}"
    cmd = [
        PROMETHEUS,
        f"--config.file={config}",
        f"--storage.tsdb.path={workdir / 'tsdb'}",
        f"--web.listen-address={address}",
    ]
    log = workdir / "prometheus.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=workdir)
    try:
        yield f"http://{address}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def query(http: aiohttp.ClientSession, base: str, promql: str) -> list[dict[str, Any]]:
    """The instant vector ``promql`` evaluates to now (empty while Prometheus is starting)."""
    try:
        async with http.get(f"{base}/api/v1/query", params={"query": promql}) as resp:
            if resp.status != 200:
                return []
            reply = await resp.json()
    except aiohttp.ClientConnectionError:
        return []
    assert reply["status"] == "success", reply
    result: list[dict[str, Any]] = reply["data"]["result"]
    return result


async def wait_value(
    http: aiohttp.ClientSession,
    base: str,
    promql: str,
    wanted: Callable[[float], bool],
    timeout: float = 20,
) -> float:
    """Poll ``promql`` (a single series) until ``wanted(value)``; its value then."""
    deadline = time.monotonic() + timeout
    last: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        last = await query(http, base, promql)
        if len(last) == 1 and wanted(value := float(last[0]["value"][1])):
            return value
        await asyncio.sleep(0.25)
    pytest.fail(f"{promql}: still {last} after {timeout} s")


async def target_health(http: aiohttp.ClientSession, base: str) -> list[str]:
    async with http.get(f"{base}/api/v1/targets") as resp:
        reply = await resp.json()
    return [t["health"] for t in reply["data"]["activeTargets"]]


async def test_prometheus_scrapes_rtcdn(tmp_path: Path) -> None:
    with (
        rtcdn_process(RTCDN, tmp_path / "rtcdn", None),
        prometheus(tmp_path / "prometheus", f"{RTCDN}:8081") as prom,
    ):
        async with aiohttp.ClientSession() as http:
            await wait_value(http, prom, 'up{job="rtcdn"}', lambda v: v == 1)
            await wait_value(http, prom, 'rtcdn_players{protocol="wcs"}', lambda v: v == 0)
            async with WcsClient(f"ws://{RTCDN}:8080/") as pub, WcsClient(f"ws://{RTCDN}:8080/") as viewer:
                _, _, status = await pub.publish("scraped")
                assert status is not None and status["status"] == "PUBLISHING"
                _, _, status = await viewer.play("scraped")
                assert status is not None and status["status"] == "PLAYING"
                await wait_value(http, prom, 'rtcdn_players{protocol="wcs"}', lambda v: v == 1)
                await wait_value(http, prom, 'rtcdn_publishers{protocol="wcs"}', lambda v: v == 1)
                await wait_value(http, prom, 'rtcdn_streams{state="live"}', lambda v: v == 1)
                await wait_value(http, prom, "rate(rtcdn_rtp_packets_out_total[5s])", lambda v: v > 10)
                await wait_value(http, prom, "rate(rtcdn_rtp_bytes_in_total[5s])", lambda v: v > 1000)
                await wait_value(http, prom, "rtcdn_first_keyframe_seconds_count", lambda v: v >= 1)
                await wait_value(http, prom, "rtcdn_wcs_sessions", lambda v: v == 2)
            await wait_value(http, prom, 'rtcdn_players{protocol="wcs"}', lambda v: v == 0)
            assert await target_health(http, prom) == ["up"]


async def test_prometheus_sees_the_sum_of_two_workers(tmp_path: Path) -> None:
    """One target (worker 0's http port): players on worker 0 and worker 1 are counted once each."""
    with (
        rtcdn_process(RTCDN_WORKERS, tmp_path / "rtcdn", "workers=2\n"),
        prometheus(tmp_path / "prometheus", f"{RTCDN_WORKERS}:8081") as prom,
    ):
        async with aiohttp.ClientSession() as http:
            await wait_value(http, prom, 'rtcdn_worker_up{worker="1"}', lambda v: v == 1)
            async with contextlib.AsyncExitStack() as stack:
                pub = await stack.enter_async_context(WcsClient(f"ws://{RTCDN_WORKERS}:8080/"))
                await pub.publish("summed")
                here = await stack.enter_async_context(WcsClient(f"ws://{RTCDN_WORKERS}:8080/"))
                _, _, status = await here.play("summed")
                assert status is not None and status["status"] == "PLAYING"
                async with asyncio.timeout(15):  # worker 1 gets the stream once worker 0 pushed it there
                    while True:
                        there = await stack.enter_async_context(WcsClient(f"ws://{RTCDN_WORKERS}:9080/"))
                        _, _, status = await there.play("summed")
                        if status is not None and status["status"] == "PLAYING":
                            break
                        await asyncio.sleep(0.3)
                async with http.get(f"http://{RTCDN_WORKERS}:9081/metrics") as resp:
                    assert 'rtcdn_players{protocol="wcs"} 1.0' in await resp.text()  # worker 1 alone
                await wait_value(http, prom, 'rtcdn_players{protocol="wcs"}', lambda v: v == 2)
                # worker 0 pushes the stream to worker 1 (a relay player there, a publisher here)
                await wait_value(http, prom, 'rtcdn_players{protocol="relay-push"}', lambda v: v == 1)
                await wait_value(http, prom, "rate(rtcdn_rtp_packets_out_total[5s])", lambda v: v > 10)
                await wait_value(http, prom, 'rtcdn_worker_up{worker="0"}', lambda v: v == 1)
                await wait_value(http, prom, 'rtcdn_cdn_edges{state="up"}', lambda v: v == 1)
                assert await target_health(http, prom) == ["up"]
