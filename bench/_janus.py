"""Janus as the performance anchor: the server process, a plain-RTP feed and a lean Janus player.

:class:`JanusServer` runs Debian's ``janus`` (``apt-get install janus``) with a configuration written
into a folder of its own: only the streaming plugin and the HTTP transport are loaded, the HTTP API
listens on loopback, the admin API is off, ICE gathers on one chosen interface (Janus, like libnice,
never offers a loopback candidate), no STUN/TURN, and one RTP mountpoint takes Opus and VP8 on two
loopback ports. ``event_loops`` picks between one shared media loop (``1``) and Janus's default, one
loop thread per handle (``None``).

:class:`RtpFeed` sends pre-encoded :class:`~_media.Clip`s to those ports as plain RTP in real time:
VP8 cut into RTP payloads by aiortc's own packetizer (the same payloads an aiortc sender produces),
Opus one frame per packet, continuous sequence numbers and timestamps across the clip's loops.

:class:`JanusPlayer` is :class:`~_wcs.LeanPlayer`'s counting core behind the Janus HTTP API: create a
session, attach ``janus.plugin.streaming``, ``watch`` (the offer arrives on the long poll), answer
with ``start``; PLAYING once Janus says ``webrtcup``. A keep-alive every 25 s holds the session. A
``chromium`` viewer answers what Chromium answers (``_chromium.chromium_answer``) and sends its RTCP.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import psutil  # type: ignore[import-untyped]
from aiortc import RTCSessionDescription
from aiortc.codecs.vpx import Vp8Encoder

from _chromium import chromium_answer
from _media import Clip
from _procs import cpu_seconds, stop_process
from _wcs import LeanPlayer, WcsError
from rtcdn.webrtc._aiortc import PortRange, patch_gathering

JANUS = "/usr/bin/janus"
LIBDIR = Path("/usr/lib/x86_64-linux-gnu/janus")
MOUNTPOINT = 1
VIDEO_PT = 96
AUDIO_PT = 111
KEEPALIVE_SECONDS = 25
RTP_ADDRESS = "127.0.0.1"
"""Where the mountpoint takes RTP. Janus 1.1.2 binds only addresses an interface carries, so not
127.0.0.x for x > 1: its HTTP transport refuses to start, its streaming plugin crashes (SIGSEGV)."""


def janus_available() -> str:
    """'' if Debian's janus with the streaming plugin and HTTP transport is installed, else why not."""
    if shutil.which("janus") is None and not Path(JANUS).exists():
        return "janus is not installed (apt-get install janus)"
    for lib in ("plugins/libjanus_streaming.so", "transports/libjanus_http.so"):
        if not (LIBDIR / lib).exists():
            return f"{LIBDIR / lib} is missing"
    return ""


class JanusServer:
    """``janus`` with the streaming plugin and the HTTP API on ``address:http_port``, config in ``folder``.

    The mountpoint takes RTP on :data:`RTP_ADDRESS` ports ``audio_port`` and ``video_port``.
    """

    def __init__(
        self,
        name: str,
        folder: Path,
        *,
        interface: str,
        event_loops: int | None,
        address: str = "127.0.0.1",
        http_port: int = 8088,
        rtp_ports: str = "40000-44999",
        audio_port: int = 5002,
        video_port: int = 5004,
        cpus: set[int] | None = None,
    ) -> None:
        self.name, self.address, self.http_port = name, address, http_port
        self.audio_port, self.video_port = audio_port, video_port
        self.event_loops = event_loops
        self.api_url = f"http://{address}:{http_port}/janus"
        self.cpus = cpus
        self.folder = folder
        self.log_path = folder / "janus.log"
        conf = folder / "conf"
        self.config = {
            "janus.jcfg": _janus_jcfg(folder, interface, event_loops, rtp_ports),
            "janus.transport.http.jcfg": _http_jcfg(address, http_port),
            "janus.plugin.streaming.jcfg": _streaming_jcfg(RTP_ADDRESS, audio_port, video_port),
        }
        for sub, lib in (("plugins", "libjanus_streaming.so"), ("transports", "libjanus_http.so")):
            (folder / sub).mkdir(parents=True)
            (folder / sub / lib).symlink_to(LIBDIR / sub / lib)
        for sub in ("events", "loggers"):
            (folder / sub).mkdir()
        conf.mkdir()
        for file, text in self.config.items():
            (conf / file).write_text(text)
        self.command = [JANUS, "-C", str(conf / "janus.jcfg"), "-F", str(conf), "-o"]
        self.process: subprocess.Popen[bytes] | None = None
        self.ps: psutil.Process | None = None
        self.exit_code: int | None = None
        self.shutdown_seconds: float | None = None

    def start(self, timeout: float = 30) -> None:
        """Start Janus (on ``cpus`` if given, threads included) and wait until its HTTP API answers."""
        cpus = self.cpus

        def pin() -> None:
            if cpus:
                os.sched_setaffinity(0, cpus)

        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.command, stdout=log, stderr=subprocess.STDOUT, preexec_fn=pin, cwd=self.folder
            )
        self.ps = psutil.Process(self.process.pid)
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"janus {self.name} did not start:\n{self.log()[-3000:]}")
            if "Streaming plugin initialized" in self.log() and _answers(self.address, self.http_port):
                return
            time.sleep(0.1)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def keep_log(self, folder: Path | None) -> None:
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"janus-{self.name}.log").write_text(self.log())

    def cpu_seconds(self) -> float:
        assert self.ps is not None
        return cpu_seconds(self.ps)

    def rss(self) -> int:
        assert self.ps is not None
        return int(self.ps.memory_info().rss)

    def threads(self) -> int:
        assert self.ps is not None
        return int(self.ps.num_threads())

    def stop(self, timeout: float = 15) -> None:
        """SIGINT (Janus's clean shutdown), then wait (SIGKILL after ``timeout``)."""
        if self.process is None or self.exit_code is not None:
            return
        self.exit_code, self.shutdown_seconds = stop_process(self.process, signal.SIGINT, timeout)

    def problems(self) -> list[str]:
        """Log lines Janus marks as errors or warnings (``[ERR]``, ``[WARN]``)."""
        return [line for line in self.log().splitlines() if "[ERR]" in line or "[WARN]" in line]


def _answers(address: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((address, port), timeout=0.5):
        return True
    return False


def _janus_jcfg(folder: Path, interface: str, event_loops: int | None, rtp_ports: str) -> str:
    loops = "" if event_loops is None else f"\tevent_loops = {event_loops}\n"
    return (
        "general: {\n"
        f'\tconfigs_folder = "{folder / "conf"}"\n'
        f'\tplugins_folder = "{folder / "plugins"}"\n'
        f'\ttransports_folder = "{folder / "transports"}"\n'
        f'\tevents_folder = "{folder / "events"}"\n'
        f'\tloggers_folder = "{folder / "loggers"}"\n'
        "\tdebug_level = 4\n"
        '\tserver_name = "rtcdn-bench-anchor"\n'
        f"{loops}"
        "}\n"
        "certificates: {\n}\n"
        "media: {\n"
        f'\trtp_port_range = "{rtp_ports}"\n'
        "}\n"
        "nat: {\n"
        "\tnice_debug = false\n"
        f'\tice_enforce_list = "{interface}"\n'
        "\tignore_mdns = true\n"
        "}\n"
        "plugins: {\n}\n"
        "transports: {\n}\n"
        "loggers: {\n}\n"
        "events: {\n\tbroadcast = false\n}\n"
    )


def _http_jcfg(address: str, port: int) -> str:
    return (
        "general: {\n"
        '\tjson = "compact"\n'
        '\tbase_path = "/janus"\n'
        "\thttp = true\n"
        f"\tport = {port}\n"
        f'\tip = "{address}"\n'
        "\thttps = false\n"
        "}\n"
        "admin: {\n\tadmin_http = false\n\tadmin_https = false\n}\n"
        "cors: {\n}\n"
    )


def _streaming_jcfg(address: str, audio_port: int, video_port: int) -> str:
    return (
        "general: {\n}\n"
        "bench: {\n"
        '\ttype = "rtp"\n'
        f"\tid = {MOUNTPOINT}\n"
        '\tdescription = "rtcdn benchmark feed: VP8 + Opus over plain RTP"\n'
        "\taudio = true\n"
        "\tvideo = true\n"
        f"\taudioport = {audio_port}\n"
        f'\taudioiface = "{address}"\n'
        f"\taudiopt = {AUDIO_PT}\n"
        '\taudiocodec = "opus"\n'
        f"\tvideoport = {video_port}\n"
        f'\tvideoiface = "{address}"\n'
        f"\tvideopt = {VIDEO_PT}\n"
        '\tvideocodec = "vp8"\n'
        "}\n"
    )


# --- the feed ---------------------------------------------------------------------------------------


class _RtpStream:
    """Sequence numbers, timestamps and SSRC of one RTP stream, plain (unencrypted) packets."""

    def __init__(self, pt: int, clip: Clip) -> None:
        self.pt = pt
        self.clip = clip
        self.ssrc = random.getrandbits(32)
        self.seq = random.getrandbits(16)
        self.ts0 = random.getrandbits(32)
        self.index = 0  # position in the clip
        self.count = 0  # frames sent

    def due(self, start: float) -> float:
        return start + self.count * self.clip.step / self.clip.clock

    def packets(self, payloads: list[bytes]) -> list[bytes]:
        timestamp = (self.ts0 + self.count * self.clip.step) & 0xFFFFFFFF
        out = []
        for i, payload in enumerate(payloads):
            marker = 0x80 if self.pt == VIDEO_PT and i == len(payloads) - 1 else 0
            header = struct.pack("!BBHII", 0x80, marker | self.pt, self.seq, timestamp, self.ssrc)
            out.append(header + payload)
            self.seq = (self.seq + 1) & 0xFFFF
        self.index = (self.index + 1) % len(self.clip.frames)
        self.count += 1
        return out


class RtpFeed:
    """Sends ``video`` (VP8) and ``audio`` (Opus) clips in a loop, in real time, as plain RTP.

    ``on_send(payload, ns)`` runs just before each packet's ``sendto`` (``ns`` = ``time.time_ns()``).
    """

    def __init__(
        self,
        address: str,
        video_port: int,
        audio_port: int,
        video: Clip,
        audio: Clip | None,
        on_send: Callable[[bytes, int], None] | None = None,
    ) -> None:
        self._targets = {VIDEO_PT: (address, video_port), AUDIO_PT: (address, audio_port)}
        self._streams = [_RtpStream(VIDEO_PT, video)] + ([_RtpStream(AUDIO_PT, audio)] if audio else [])
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        self._picture_id = random.getrandbits(15)
        self._on_send = on_send
        self.packets_sent = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        start = time.monotonic()
        while True:
            stream = min(self._streams, key=lambda s: s.due(start))
            delay = stream.due(start) - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            frame = stream.clip.frames[stream.index]
            if stream.pt == VIDEO_PT:
                payloads = Vp8Encoder._packetize(frame, self._picture_id)
                self._picture_id = (self._picture_id + 1) & 0x7FFF
            else:
                payloads = [frame]
            target = self._targets[stream.pt]
            for packet, payload in zip(stream.packets(payloads), payloads, strict=True):
                if self._on_send is not None:
                    self._on_send(payload, time.time_ns())
                self._sock.sendto(packet, target)
                self.packets_sent += 1

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._sock.close()


# --- the player -------------------------------------------------------------------------------------


class JanusError(WcsError):
    """Janus refused or failed a request."""


class JanusApi:
    """One Janus session and one streaming-plugin handle over the HTTP API."""

    def __init__(self, http: aiohttp.ClientSession, api_url: str) -> None:
        self._http = http
        self._url = api_url
        self.session: int | None = None
        self.handle: int | None = None

    async def request(self, body: dict[str, Any], path: str = "") -> dict[str, Any]:
        body = {**body, "transaction": uuid.uuid4().hex[:12]}
        async with self._http.post(self._url + path, json=body) as response:
            reply: dict[str, Any] = await response.json(content_type=None)
        if reply.get("janus") == "error":
            raise JanusError(f"{body['janus']}: {reply['error'].get('reason', reply['error'])}")
        return reply

    async def attach(self) -> None:
        self.session = (await self.request({"janus": "create"}))["data"]["id"]
        reply = await self.request(
            {"janus": "attach", "plugin": "janus.plugin.streaming"}, f"/{self.session}"
        )
        self.handle = reply["data"]["id"]

    async def message(self, body: dict[str, Any], jsep: dict[str, Any] | None = None) -> dict[str, Any]:
        payload: dict[str, Any] = {"janus": "message", "body": body}
        if jsep is not None:
            payload["jsep"] = jsep
        return await self.request(payload, f"/{self.session}/{self.handle}")

    async def event(self, timeout: float = 30) -> dict[str, Any]:
        """The next event of the session (long poll)."""
        async with asyncio.timeout(timeout):
            while True:
                async with self._http.get(f"{self._url}/{self.session}?maxev=1") as response:
                    event: dict[str, Any] = await response.json(content_type=None)
                if event.get("janus") != "keepalive":
                    return event

    async def keepalive(self) -> None:
        await self.request({"janus": "keepalive"}, f"/{self.session}")

    async def destroy(self) -> None:
        if self.session is not None:
            with contextlib.suppress(aiohttp.ClientError, JanusError, TimeoutError):
                async with asyncio.timeout(5):
                    await self.request({"janus": "destroy"}, f"/{self.session}")
            self.session = None


class JanusPlayer(LeanPlayer):
    """:class:`~_wcs.LeanPlayer` playing a streaming-plugin mountpoint over the Janus HTTP API.

    ``play(name)``: ``name`` is the mountpoint id. Times count from sending ``watch`` (the
    counterpart of ``playStream``); ``t_playing`` is Janus's ``webrtcup`` event.
    """

    def __init__(self, http: aiohttp.ClientSession, api_url: str, address: str, viewer: str = "lean") -> None:
        super().__init__(http, "", address, viewer)
        self.api = JanusApi(http, api_url)
        self._keepalive: asyncio.Task[None] | None = None

    async def play(self, name: str) -> None:
        api = self.api
        await api.attach()
        self._t0 = time.monotonic()
        self.result.started = time.time()
        await api.message({"request": "watch", "id": int(name)})
        offer = await self._wait_for(lambda e: "jsep" in e, "an offer")
        sdp = offer["jsep"]["sdp"]
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        answer = await self.pc.createAnswer()
        patch_gathering(self.pc, [self.address], PortRange(0, 0), None)
        await self.pc.setLocalDescription(answer)
        self._hook_datagrams()
        local = str(self.pc.localDescription.sdp)
        if self.viewer == "chromium":
            local = chromium_answer(sdp, local)
        self._on_answer(sdp, negotiated=local)  # payload types from Janus's offer, feedback as answered
        await api.message({"request": "start"}, {"type": "answer", "sdp": local})
        await self._wait_for(lambda e: e.get("janus") == "webrtcup", "webrtcup")
        self.result.t_playing = time.monotonic() - self._t0
        self.result.ok = True
        self._keepalive = asyncio.create_task(self._keep_alive())
        await self.start_feedback()

    async def _wait_for(self, wanted: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        try:
            async with asyncio.timeout(30):
                while True:
                    event = await self.api.event()
                    if event.get("janus") == "hangup":
                        raise JanusError(f"hangup: {event.get('reason', '')}")
                    error = event.get("plugindata", {}).get("data", {}).get("error")
                    if error:
                        raise JanusError(f"streaming: {error}")
                    if wanted(event):
                        return event
        except TimeoutError:
            raise JanusError(f"no {what} within 30 s") from None

    async def _keep_alive(self) -> None:
        while True:
            await asyncio.sleep(KEEPALIVE_SECONDS)
            with contextlib.suppress(aiohttp.ClientError, JanusError):
                await self.api.keepalive()

    async def close(self) -> None:
        if self._keepalive is not None:
            self._keepalive.cancel()
        if self.feedback is not None:
            await self.feedback.stop()
        await self.pc.close()
        await self.api.destroy()
