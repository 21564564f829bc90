"""Helpers of the fault tests: in-process CDN pieces, polling, packet-arrival recorders."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiortc import RTCPeerConnection
from aiortc.mediastreams import MediaStreamTrack

from rtcdn.server import Server
from rtcdn.wcs.messages import TERMINAL_STATUSES as TERMINAL
from rtcdn.webrtc import faults
from testkit import make_settings
from wcs_client import WcsClient


async def until(
    predicate: Callable[[], bool | Awaitable[bool]], timeout: float = 10, step: float = 0.05
) -> float:
    """Poll ``predicate`` until it holds; returns the seconds it took (TimeoutError after ``timeout``)."""
    start = time.monotonic()
    async with asyncio.timeout(timeout):
        while True:
            value = predicate()
            if not isinstance(value, bool):
                value = await value
            if value:
                return time.monotonic() - start
            await asyncio.sleep(step)


async def get_json(url: str) -> Any:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return await resp.json()


async def post_json(url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.post(url, json=body) as resp:
        return resp.status, await resp.json(content_type=None)


def loadbalancing_xml(edges: list[tuple[str, int, int]]) -> str:
    """A static CDN of ``(ip, ws port, http port)`` edges, pushed over WebRTC."""
    nodes = "".join(
        f'<node id="{i}"><ip>{ip}</ip><ws>{ws}</ws><http>{http}</http></node>'
        for i, (ip, ws, http) in enumerate(edges, 1)
    )
    return f'<loadbalancer mode="roundrobin" stream_distribution="webrtc">{nodes}</loadbalancer>'


async def start_origin(tmp_path: Path, edges: list[Server]) -> Server:
    """An in-process CDN origin pushing every stream to ``edges`` (in-process too)."""
    config = tmp_path / "origin-conf"
    config.mkdir(exist_ok=True)
    (config / "loadbalancing.xml").write_text(
        loadbalancing_xml([("127.0.0.1", e.settings.ws_port, e.settings.http_ports[0]) for e in edges])
    )
    origin = Server(make_settings(load_balancing_enabled=True, config_dir=config), tmp_path / "origin")
    await origin.start()
    return origin


@contextlib.asynccontextmanager
async def cdn_pair(
    tmp_path: Path, spec: str | None, drop: faults.DropFilter | None = None
) -> AsyncIterator[tuple[Server, Server, faults.Faults | None]]:
    """An in-process origin pushing to one in-process edge whose ICE connections get ``spec`` and
    ``drop`` (the origin's and the test clients' are not impaired)."""
    edge = Server(make_settings(), tmp_path / "edge")
    await edge.start()
    impaired = faults.attach(edge.media, spec, drop)
    try:
        origin = await start_origin(tmp_path, [edge])
        try:
            yield origin, edge, impaired
        finally:
            await origin.close()
    finally:
        await edge.close()
        faults.attach(edge.media, None)


def video_track(pc: RTCPeerConnection) -> MediaStreamTrack:
    return next(r.track for r in pc.getReceivers() if r.track.kind == "video")


def ice_connection(pc: RTCPeerConnection) -> Any:
    """The aioice Connection carrying ``pc``'s media (the first transceiver's: bundled)."""
    return pc.getTransceivers()[0].receiver.transport.transport._connection


class ArrivalRecorder:
    """Arrival times of every datagram (DTLS/SRTP/SRTCP, not STUN) an aiortc peer receives, and of
    each RTP packet of payload type ``pt`` with its sequence number (SRTP keeps the header clear)."""

    def __init__(self, pc: RTCPeerConnection, pt: int | None = None) -> None:
        self.times: list[float] = []
        self.rtp: list[tuple[float, int]] = []
        conn = ice_connection(pc)
        inner = conn.data_received

        def data_received(data: bytes, component: int) -> None:
            now = time.monotonic()
            self.times.append(now)
            if pt is not None and len(data) >= 12 and data[0] >> 6 == 2 and data[1] & 0x7F == pt:
                self.rtp.append((now, int.from_bytes(data[2:4], "big")))
            inner(data, component)

        conn.data_received = data_received

    def max_gap(self, since: float = 0.0, until: float = float("inf")) -> float:
        """The longest silence between two datagrams that arrived in ``[since, until]``."""
        times = [t for t in self.times if since <= t <= until]
        return max((b - a for a, b in itertools.pairwise(times)), default=float("inf"))

    def count(self, since: float = 0.0, until: float = float("inf")) -> int:
        return sum(1 for t in self.times if since <= t <= until)

    def lateness(self) -> list[float]:
        """For each RTP packet that came after a later one (reordered or resent): how long after the
        first later packet it came."""
        out = []
        first_after: dict[int, float] = {}
        highest: int | None = None
        for t, seq in self.rtp:
            if highest is None or (seq - highest) & 0xFFFF < 0x8000:
                if highest is not None:
                    for missing in range(1, (seq - highest) & 0xFFFF):
                        first_after[(highest + missing) & 0xFFFF] = t
                highest = seq
            elif seq in first_after:
                out.append(t - first_after.pop(seq))
        return out


class FrameCounter:
    """Decodes a received video track in the background and keeps each frame's arrival time."""

    def __init__(self, track: MediaStreamTrack) -> None:
        self.times: list[float] = []
        self.ended: str | None = None
        "Why decoding stopped early (the track ended: MediaStreamError, or another error), for reports."
        self._task = asyncio.ensure_future(self._run(track))

    async def _run(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                await track.recv()
            except Exception as exc:  # MediaStreamError: the track ended
                self.ended = f"{type(exc).__name__}: {exc} (track state {track.readyState})"
                return
            self.times.append(time.monotonic())

    def frozen(self, since: float, until: float, threshold: float = 0.2) -> float:
        """Seconds of ``[since, until]`` spent in gaps between frames longer than ``threshold``."""
        times = [since, *(t for t in self.times if since < t < until), until]
        return sum(b - a for a, b in itertools.pairwise(times) if b - a > threshold)

    def per_second(self, since: float, until: float) -> list[int]:
        """Frames decoded in each whole second of ``[since, until)``."""
        seconds = int(until - since)
        counts = [0] * seconds
        for t in self.times:
            i = int(t - since)
            if 0 <= i < seconds:
                counts[i] += 1
        return counts

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


# --- real processes -------------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[2]


class RtcdnProcess:
    """``rtcdn serve --bind host`` (default ports) as a subprocess, started and waited for without
    blocking the event loop (the test's players keep running). ``env`` is added to the environment
    (e.g. ``RTCDN_FAULTS``); ``loadbalancing`` makes it a static CDN origin."""

    def __init__(
        self,
        host: str,
        workdir: Path,
        loadbalancing: str | None = None,
        properties: str = "",
        env: dict[str, str] | None = None,
    ) -> None:
        self.host = host
        self.workdir = workdir
        self.env = env or {}
        self.proc: asyncio.subprocess.Process | None = None
        self.log = workdir / "rtcdn.log"
        workdir.mkdir(parents=True, exist_ok=True)
        if loadbalancing is not None:
            (workdir / "loadbalancing.xml").write_text(loadbalancing)
            properties = "load_balancing_enabled=true\n" + properties
        (workdir / "flashphoner.properties").write_text(properties)
        self.runs = 0

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:8080"

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:8081"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def start(self, timeout: float = 20.0) -> float:
        """Start it; returns when it logged ``ready:`` (the seconds that took)."""
        assert not self.alive
        self.runs += 1
        self.log = self.workdir / f"rtcdn.{self.runs}.log"
        cmd = [sys.executable, "-m", "rtcdn", "serve", "--bind", self.host, "--config-dir", str(self.workdir)]
        cmd += ["--state-dir", str(self.workdir / "state")]
        env = {k: v for k, v in os.environ.items() if k != "RTCDN_FAULTS"} | self.env
        with self.log.open("wb") as out:
            self.proc = await asyncio.create_subprocess_exec(
                *cmd, stdout=out, stderr=subprocess.STDOUT, cwd=self.workdir, env=env
            )
        start = time.monotonic()
        while "ready:" not in self.log.read_text(errors="replace"):
            if self.proc.returncode is not None:
                raise AssertionError(f"rtcdn exited with {self.proc.returncode}:\n{self.tail()}")
            if time.monotonic() - start > timeout:
                self.proc.kill()
                await self.proc.wait()
                raise AssertionError(f"rtcdn not ready after {timeout} s:\n{self.tail()}")
            await asyncio.sleep(0.05)
        return time.monotonic() - start

    async def kill9(self) -> float:
        """SIGKILL; returns the time it was sent (monotonic) once the process is gone."""
        assert self.proc is not None
        when = time.monotonic()
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()
        return when

    async def stop(self) -> int | None:
        """SIGTERM and wait (SIGKILL after 15 s); the exit code, None if it was not running."""
        if self.proc is None or self.proc.returncode is not None:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(15):
                return await self.proc.wait()
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            return None

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def problems(self) -> list[str]:
        """Tracebacks and ERROR lines of every run's log."""
        out = []
        for log in sorted(self.workdir.glob("rtcdn.*.log")):
            out += [
                f"{log.name}: {ln}"
                for ln in log.read_text(errors="replace").splitlines()
                if " ERROR " in ln or "Traceback" in ln
            ]
        return out

    async def metric(self, name: str) -> float:
        async with aiohttp.ClientSession() as http, http.get(f"{self.http_url}/metrics") as resp:
            text = await resp.text()
        match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
        return float(match.group(1)) if match else 0.0

    async def streams(self) -> list[dict[str, Any]]:
        """``/rest-api/stream/find_all`` (empty when there are none or it does not answer)."""
        try:
            async with (
                aiohttp.ClientSession() as http,
                http.post(f"{self.http_url}/rest-api/stream/find_all") as resp,
            ):
                body = await resp.json(content_type=None)
        except (aiohttp.ClientError, OSError):
            return []
        return body if resp.status == 200 and isinstance(body, list) else []

    async def publishing(self, name: str) -> bool:
        """Is ``name`` published here (by a client or a relay)?"""
        return any(r.get("name") == name and r.get("published") for r in await self.streams())


class Watcher:
    """A WCS player (aiortc, in this process) of ``name`` on ``url``, recording packet arrivals."""

    def __init__(self, url: str, name: str) -> None:
        self.url = url
        self.name = name
        self.client = WcsClient(url)
        self.msid = ""
        self.arrivals: ArrivalRecorder | None = None

    async def start(self) -> Watcher:
        await self.client.connect()
        self.msid, pc, status = await self.client.play(self.name)
        assert status is not None and status["status"] == "PLAYING", (self.url, status)
        self.arrivals = ArrivalRecorder(pc)
        return self

    async def flowing(self, seconds: float = 1.0) -> bool:
        """Did packets arrive in the last ``seconds``?"""
        assert self.arrivals is not None
        return self.arrivals.count(time.monotonic() - seconds) > 0

    async def terminal_status(self, timeout: float = 15) -> tuple[dict[str, Any] | None, float]:
        """The first STOPPED/FAILED/UNPUBLISHED of this play (None if the socket closed first) and
        when it came (monotonic)."""
        queue = self.client.agent.watch(self.msid)
        async with asyncio.timeout(timeout):
            while True:
                message, item = await queue.get()
                if message == "closed":
                    return None, time.monotonic()
                if message == "notifyStreamStatusEvent" and item.get("status") in TERMINAL:
                    return dict(item), time.monotonic()

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.client.close()


def drain(pc: RTCPeerConnection) -> list[FrameCounter]:
    """Consume every received track of ``pc`` (aiortc queues decoded frames without bound)."""
    return [FrameCounter(r.track) for r in pc.getReceivers() if r.track is not None]
