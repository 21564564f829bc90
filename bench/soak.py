"""Soak: publish/play/stop cycles with churn on one in-process server; does anything leak?

    .venv/bin/python bench/soak.py [--cycles 10000] [--concurrency 4] [--json out.json]

One rtcdn Server and its clients share this process and one asyncio loop (aiortc peers, WCS over
WebSocket, WHIP/WHEP over HTTP, all on 127.0.0.1). Cycles rotate through four kinds, so every way in
and out is taken:

0. WCS publish, WCS play; the player sends ``stopStream``, then the publisher ``unPublishStream``.
1. WCS publish, WHEP play; the publisher's socket just closes (no unpublish), then the WHEP DELETE.
2. WHIP publish, WCS play; the WHIP DELETE ends the stream (the WCS player is told STOPPED).
3. WHIP publish, WHEP play; the player DELETEs first, then the publisher.

Each cycle waits until the player's media is connected (WCS ``PLAYING``, WHEP ``connected``), and
``--concurrency`` cycles run at once. After a warm-up (``--warmup`` cycles, not counted) the process's
asyncio tasks, file descriptors, UDP sockets and RSS and the server's peers, WCS sessions, media
sessions, streams and WHIP/WHEP resources are sampled; again every ``--sample`` cycles and at the end,
once the server is idle. ``tests/faults/test_soak.py`` runs a few hundred cycles of this and asserts
the end equals the start (RSS within a slack).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil  # type: ignore[import-untyped]
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

from _procs import free_port
from rtcdn.config import Settings
from rtcdn.server import Server
from rtcdn.wcs import messages as m
from rtcdn.wcs.client import WcsAgent
from rtcdn.webrtc._aiortc import PortRange, patch_gathering
from rtcdn.whip import WhipFrontEnd

SDP = {"Content-Type": "application/sdp"}
KINDS = (
    "wcs→wcs, stop then unpublish",
    "wcs→whep, publisher socket drops",
    "whip→wcs, whip delete",
    "whip→whep",
)


def soak_settings() -> Settings:
    return Settings(
        bind="127.0.0.1",
        ws_port=free_port(),
        wss_port=0,
        rtmp_port=0,
        http_ports=[free_port()],
        https_ports=[],
        media_port_from=0,
        media_port_to=0,
        keep_alive_interval_ms=1000,
        keep_alive_probes=3,
        webrtc_connect_timeout_ms=5000,
    )


@dataclass
class Sample:
    cycle: int
    seconds: float
    tasks: int
    fds: int
    udp: int
    rss_mib: float
    blocks: int
    "Python's allocated memory blocks after a collection: the heap without the allocator's noise."
    peers: int
    wcs_sessions: int
    media_sessions: int
    streams: int
    whip_resources: int


@dataclass
class Report:
    cycles: int
    concurrency: int
    failures: list[str] = field(default_factory=list)
    start: Sample | None = None
    end: Sample | None = None
    curve: list[Sample] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def cycles_per_second(self) -> float:
        return self.cycles / self.seconds if self.seconds else 0.0

    def rss_slope_kib_per_1000(self) -> float:
        """Least-squares slope of RSS over the second half of the curve, KiB per 1000 cycles."""
        points = self.curve[len(self.curve) // 2 :]
        if len(points) < 2:
            return 0.0
        xs, ys = [p.cycle for p in points], [p.rss_mib * 1024 for p in points]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        den = sum((x - mx) ** 2 for x in xs)
        return 1000 * sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0

    def summary(self) -> str:
        assert self.start is not None and self.end is not None
        rss = [p.rss_mib for p in self.curve]
        lines = [
            f"{self.cycles} cycles ({self.concurrency} at a time) in {self.seconds:.1f} s: "
            f"{self.cycles_per_second:.1f} cycles/s, {len(self.failures)} failed",
            f"{'':>16} {'start':>8} {'end':>8}",
        ]
        for name in (
            "tasks",
            "fds",
            "udp",
            "peers",
            "wcs_sessions",
            "media_sessions",
            "streams",
            "whip_resources",
        ):
            lines.append(f"{name:>16} {getattr(self.start, name):>8} {getattr(self.end, name):>8}")
        lines.append(f"{'rss_mib':>16} {self.start.rss_mib:>8.1f} {self.end.rss_mib:>8.1f}")
        lines.append(f"{'blocks':>16} {self.start.blocks:>8} {self.end.blocks:>8}")
        lines.append(
            f"RSS curve ({len(rss)} samples): min {min(rss):.1f}, max {max(rss):.1f}, last {rss[-1]:.1f} MiB; "
            f"slope over the second half {self.rss_slope_kib_per_1000():+.0f} KiB per 1000 cycles; "
            f"Python blocks {', '.join(str(p.blocks) for p in self.curve)}"
        )
        lines += [f"failure: {f}" for f in self.failures[:10]]
        return "\n".join(lines)


class Soak:
    """The server, the cycle kinds and the sampling."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.ws_url = f"ws://127.0.0.1:{server.settings.ws_port}"
        self.base = f"http://127.0.0.1:{server.settings.http_ports[0]}"
        self.whip = next(f for f in server.front_ends if isinstance(f, WhipFrontEnd))
        self.process = psutil.Process()
        self.http: aiohttp.ClientSession | None = None
        self.t0 = time.monotonic()

    # --- clients ----------------------------------------------------------------------------
    @staticmethod
    async def _offer(pc: RTCPeerConnection) -> str:
        description = await pc.createOffer()
        patch_gathering(pc, ["127.0.0.1"], PortRange(0, 0), None)
        await pc.setLocalDescription(description)
        return str(pc.localDescription.sdp)

    @staticmethod
    def _publisher_pc() -> RTCPeerConnection:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
        pc.addTransceiver(VideoStreamTrack(), direction="sendonly")
        return pc

    @staticmethod
    def _player_pc() -> RTCPeerConnection:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.addTransceiver("audio", direction="recvonly")
        pc.addTransceiver("video", direction="recvonly")
        return pc

    async def _wcs(self, pc: RTCPeerConnection, name: str, publish: bool) -> tuple[WcsAgent, str]:
        agent = WcsAgent(self.ws_url, label="soak", client="rtcdn soak")
        await agent.connect()
        msid = str(uuid.uuid1())
        payload = m.stream_payload(msid, name, publish, await self._offer(pc))

        async def accept(sdp: str) -> None:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))

        wanted = m.PUBLISHING if publish else m.PLAYING
        status = await agent.negotiate("publishStream" if publish else "playStream", payload, wanted, accept)
        if status.get("status") != wanted:
            raise RuntimeError(f"{name}: {wanted} expected, got {status}")
        return agent, msid

    async def _whip(self, pc: RTCPeerConnection, kind: str, name: str) -> str:
        assert self.http is not None
        async with self.http.post(
            f"{self.base}/{kind}/{name}", data=await self._offer(pc), headers=SDP
        ) as resp:
            if resp.status != 201:
                raise RuntimeError(f"{kind} {name}: {resp.status} {await resp.text()}")
            await pc.setRemoteDescription(RTCSessionDescription(await resp.text(), "answer"))
            return self.base + resp.headers["Location"]

    async def _delete(self, url: str) -> None:
        assert self.http is not None
        async with self.http.delete(url) as resp:
            if resp.status not in (200, 404):
                raise RuntimeError(f"DELETE {url}: {resp.status}")

    async def _until(self, predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
        try:
            async with asyncio.timeout(timeout):
                while not predicate():  # noqa: ASYNC110  # polls the server state
                    await asyncio.sleep(0.02)
        except TimeoutError:
            raise RuntimeError(f"{what}: not within {timeout} s") from None

    def _live(self, name: str) -> bool:
        stream = self.server.streams.find(name)
        return stream is not None and stream.live

    # --- cycles -----------------------------------------------------------------------------
    async def cycle(self, i: int) -> None:
        name = f"soak-{i}"
        pub_pc, play_pc = self._publisher_pc(), self._player_pc()
        agents: list[WcsAgent] = []
        try:
            kind = i % 4
            if kind in (0, 1):
                pub, pub_msid = await self._wcs(pub_pc, name, publish=True)
                agents.append(pub)
            else:
                whip = await self._whip(pub_pc, "whip", name)
                await self._until(lambda: self._live(name), f"{name} live")
            if kind in (0, 2):
                player, play_msid = await self._wcs(play_pc, name, publish=False)
                agents.append(player)
            else:
                whep = await self._whip(play_pc, "whep", name)
                await self._until(lambda: play_pc.connectionState == "connected", f"{name} WHEP connected")
            if kind == 0:
                await player.send("stopStream", {"mediaSessionId": play_msid, "name": name})
                await pub.send("unPublishStream", {"mediaSessionId": pub_msid, "name": name})
                await self._until(lambda: self.server.streams.find(name) is None, f"{name} ended")
            elif kind == 1:
                await pub.close()
                await self._until(lambda: self.server.streams.find(name) is None, f"{name} ended")
                await self._delete(whep)
            elif kind == 2:
                queue = player.watch(play_msid)
                await self._delete(whip)
                async with asyncio.timeout(10):
                    while True:
                        message, item = await queue.get()
                        if message == "notifyStreamStatusEvent" and item.get("status") == m.STOPPED:
                            break
            else:
                await self._delete(whep)
                await self._delete(whip)
        finally:
            for pc in (pub_pc, play_pc):
                await pc.close()
            for agent in agents:
                await agent.close()

    # --- figures ----------------------------------------------------------------------------
    def sample(self, cycle: int) -> Sample:
        gc.collect()
        return Sample(
            cycle=cycle,
            seconds=round(time.monotonic() - self.t0, 2),
            tasks=len(asyncio.all_tasks()),
            fds=self.process.num_fds(),
            udp=len(self.process.net_connections(kind="udp")),
            rss_mib=round(self.process.memory_info().rss / 2**20, 1),
            blocks=sys.getallocatedblocks(),
            peers=len(self.server.media.peers),
            wcs_sessions=len(self.server.sessions),
            media_sessions=len(self.server.streams.sessions),
            streams=len(self.server.streams),
            whip_resources=len(self.whip.resources),
        )

    def idle(self) -> bool:
        s = self.server
        return not (
            s.media.peers or s.sessions or len(s.streams.sessions) or len(s.streams) or self.whip.resources
        )

    async def settle(self, timeout: float = 15.0) -> None:
        """Wait until the server holds nothing (closing peers finish in the background)."""
        try:
            await self._until(self.idle, "server idle", timeout)
        except RuntimeError:
            pass  # the sample shows what is left
        await asyncio.sleep(0.3)  # aioice/aiortc tasks of closed peers end just after


async def soak(
    cycles: int,
    concurrency: int = 4,
    warmup: int = 8,
    sample_every: int = 50,
    state_dir: Path | None = None,
    progress: Callable[[Sample], None] | None = None,
) -> Report:
    """Run ``cycles`` counted cycles (after ``warmup``) on a fresh in-process server."""
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(soak_settings(), state_dir or Path(tmp) / "state")
        await server.start()
        report = Report(cycles=cycles, concurrency=concurrency)
        try:
            run = Soak(server)
            next_cycle = 0

            async def worker(limit: int) -> None:
                nonlocal next_cycle
                while next_cycle < limit:
                    i = next_cycle
                    next_cycle += 1
                    try:
                        await run.cycle(i)
                    except Exception as exc:  # counted; the figures say whether it leaked
                        report.failures.append(f"cycle {i} ({KINDS[i % 4]}): {type(exc).__name__}: {exc}")

            # each phase has its own HTTP client, closed before the figures: its pooled keep-alive
            # connection (2 fds, the server's handler task) is not counted
            async with aiohttp.ClientSession() as run.http:
                await asyncio.gather(*(worker(warmup) for _ in range(concurrency)))
            await run.settle()
            report.start = run.sample(0)
            report.curve.append(report.start)
            report.failures.clear()
            started = time.monotonic()
            counted = 0
            async with aiohttp.ClientSession() as run.http:
                while counted < cycles:
                    batch = min(sample_every, cycles - counted)
                    target = next_cycle + batch
                    await asyncio.gather(*(worker(target) for _ in range(concurrency)))
                    counted += batch
                    sample = run.sample(counted)
                    report.curve.append(sample)
                    if progress is not None:
                        progress(sample)
                report.seconds = time.monotonic() - started
            await run.settle()
            report.end = run.sample(counted)
            report.curve.append(report.end)
        finally:
            await server.close()
        return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=8)
    parser.add_argument("--sample", type=int, default=250, help="cycles between two samples")
    parser.add_argument("--json", type=Path, help="write the report (every sample) there")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)

    def progress(s: Sample) -> None:
        print(
            f"  {s.cycle:>6} cycles {s.seconds:>7.1f} s  rss {s.rss_mib:>7.1f} MiB  tasks {s.tasks:>4}  "
            f"fds {s.fds:>4}  udp {s.udp:>3}  peers {s.peers:>3}",
            file=sys.stderr,
            flush=True,
        )

    report = asyncio.run(soak(args.cycles, args.concurrency, args.warmup, args.sample, progress=progress))
    print(report.summary())
    if args.json:
        data: dict[str, Any] = asdict(report) | {"cycles_per_second": report.cycles_per_second}
        args.json.write_text(json.dumps(data, indent=1))


if __name__ == "__main__":
    main()
