"""bench/perf.py's load generator: counting players in groups per process, and the feed process.

Players are receive-only WebRTC peers that do not decode (:class:`_wcs.LeanPlayer`'s core): once a
player's first VP8 keyframe has arrived it stops unprotecting SRTP and only reads the RTP header,
which SRTP leaves in clear. A ``chromium`` viewer also sends Chromium's SDP and RTCP (``_chromium.py``).
Player processes run :func:`players_main`, the feed process :func:`feed_main` (a WCS publisher for
rtcdn, plain RTP for Janus, and the timed players, which unprotect every packet and match it against
the feed's :class:`SendLog`). Both answer the parent over a pipe (:class:`_procs.Worker`).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import aiohttp
import pylibsrtp

from _janus import JanusPlayer, RtpFeed
from _linux import kernel_stamp, pin
from _media import Clip, ClipTrack
from _procs import Handler, serve_commands
from _rtp import rtp_header_length
from _wcs import LeanPlayer, Publisher, Receive

STREAM = "perf"


class SendLog:
    """Send times of the feed's RTP payloads: ``hash(payload)`` → ``time.time_ns()``.

    A payload sent twice within 5 s (a repeated Opus frame) is ambiguous and left out of the delays;
    the clip's loop repeats payloads only after 10 s (VP8 payloads never: the picture id runs on).
    """

    def __init__(self) -> None:
        self.sent: dict[int, int] = {}
        self.ambiguous: set[int] = set()
        self.count = 0

    def mark(self, payload: bytes, ns: int) -> None:
        self.count += 1
        key = hash(payload)
        previous = self.sent.get(key)
        if previous is not None and ns - previous < 5_000_000_000:
            self.ambiguous.add(key)
        self.sent[key] = ns


class CountingPlayer(LeanPlayer):
    """The lean player, leaner: after the first complete keyframe only the clear RTP header is read.

    With :meth:`time_against` it instead unprotects every packet and, while ``recording``, keeps
    ``delays``: kernel receive time - the feed's send time of the same payload (ns).
    """

    send_log: SendLog | None = None
    recording = False
    unmatched = 0
    other_datagrams = 0
    "STUN, DTLS and SRTCP datagrams (aiortc handles those)."
    played_url = ""
    "The server (worker) this player plays from."
    _fd = -1

    def time_against(self, log: SendLog) -> None:
        self.send_log = log
        self.delays: list[int] = []

    def _make_receiver(self, dtls: Any, original: Receive) -> Receive:
        if self.send_log is not None:
            protocol = getattr(original, "__self__", None)  # aioice's StunProtocol of the candidate
            sock = protocol.transport.get_extra_info("socket") if protocol is not None else None
            if sock is not None:
                self._fd = sock.fileno()
                kernel_stamp(self._fd)  # turns receive time-stamping on
        header_only = self.send_log is None
        count = self._count

        def datagram_received(data: bytes, addr: Any) -> None:
            srtp = dtls._rx_srtp
            if srtp is None or len(data) < 12 or not 127 < data[0] < 192 or 191 < data[1] < 209:
                self.other_datagrams += 1
                original(data, addr)  # STUN, DTLS, SRTCP
                return
            if header_only and self._keyframe_done:
                count(data)
                return
            try:
                rtp = srtp.unprotect(data)
            except pylibsrtp.Error:
                self.srtp_errors += 1
                return
            self._on_rtp(rtp)

        return datagram_received

    def _on_rtp(self, rtp: bytes) -> None:
        super()._on_rtp(rtp)
        log = self.send_log
        if log is None or not self.recording:
            return
        key = hash(rtp[rtp_header_length(rtp) :])
        sent = log.sent.get(key)
        if sent is None or key in log.ambiguous:
            self.unmatched += 1
            return
        kernel = kernel_stamp(self._fd) if self._fd >= 0 else 0  # still the datagram being handled
        if kernel:
            self.delays.append(kernel - sent)
        else:
            self.unmatched += 1


class JanusCountingPlayer(CountingPlayer, JanusPlayer):
    """:class:`CountingPlayer` over the Janus HTTP API."""


@dataclass(frozen=True)
class Target:
    """Where players go: ``server`` is ``rtcdn`` (``url`` a ws:// URL) or ``janus`` (``url`` its API)."""

    server: str
    url: str
    stream: str
    address: str
    "The address players gather their ICE candidate on."
    balancer: str = ""
    "rtcdn with workers: ask this URL which worker to play from."
    viewer: str = "chromium"
    "What the players look like: ``lean`` or ``chromium`` (``_chromium.VIEWERS``)."


async def new_player(http: aiohttp.ClientSession, target: Target) -> tuple[CountingPlayer, str]:
    """A player for ``target`` and the URL it plays from (asks the balancer first if there is one)."""
    if target.server == "janus":
        return JanusCountingPlayer(http, target.url, target.address, target.viewer), target.url
    url = target.url
    if target.balancer:
        async with http.get(target.balancer) as response:
            choice = await response.json(content_type=None)
        url = f"ws://{choice['server']}:{choice['ws']}"
    return CountingPlayer(http, url, target.address, target.viewer), url


class Group:
    """Players of one process: joins in batches, counters, keyframe times of the last batch."""

    def __init__(self, http: aiohttp.ClientSession, target: Target, concurrency: int) -> None:
        self.http, self.target = http, target
        self.players: list[CountingPlayer] = []
        self.batch: list[CountingPlayer] = []
        self.errors: list[str] = []
        self.servers: Counter[str] = Counter()
        self._gate = asyncio.Semaphore(concurrency)

    async def _start(self, prepare: Callable[[CountingPlayer], None] | None) -> CountingPlayer | None:
        async with self._gate:
            try:
                player, url = await new_player(self.http, self.target)
            except (aiohttp.ClientError, OSError, KeyError, ValueError) as exc:
                self.errors.append(f"balancer: {type(exc).__name__}: {exc}")
                return None
            if prepare is not None:
                prepare(player)
            try:
                async with asyncio.timeout(45):
                    await player.play(self.target.stream)
                self.servers[url] += 1
                player.played_url = url
            except Exception as exc:
                player.result.error = f"{type(exc).__name__}: {exc}"
                self.errors.append(player.result.error)
            return player

    async def join(
        self, count: int, prepare: Callable[[CountingPlayer], None] | None = None
    ) -> dict[str, Any]:
        errors = len(self.errors)
        started = await asyncio.gather(*(self._start(prepare) for _ in range(count)))
        self.batch = [p for p in started if p is not None]
        self.players += self.batch
        return {
            "playing": sum(p.result.ok for p in self.batch),
            "errors": self.errors[errors:],
            "t_playing": [p.result.t_playing for p in self.batch if p.result.ok],
        }

    def snapshot(self) -> dict[str, Any]:
        received = expected = repaired = 0
        rtcp: Counter[str] = Counter()
        for p in self.players:
            r, e = p.counters()
            received += r
            expected += e
            repaired += sum(s.repaired for s in p.ssrcs.values())
            if p.feedback is not None:
                rtcp.update(p.feedback.sent)
                repaired += p.feedback.rtx_received
        return {
            "received": received,
            "expected": expected,
            "repaired": repaired,
            "rtcp_sent": dict(rtcp),
            "srtp_errors": sum(p.srtp_errors for p in self.players),
            "other_datagrams": sum(p.other_datagrams for p in self.players),
            "servers": dict(self.servers),
        }

    def keyframes(self) -> list[float | None]:
        """Seconds from playStream to the first complete keyframe, per player of the last batch."""
        return [p.result.t_keyframe for p in self.batch if p.result.ok]

    async def close(self) -> None:
        if self.players:
            await asyncio.wait([asyncio.ensure_future(p.close()) for p in self.players], timeout=15)


def has_uvloop() -> bool:
    try:
        import uvloop  # type: ignore[import-not-found, unused-ignore]  # noqa: F401
    except ImportError:
        return False
    return True


def players_main(
    conn: Connection, target: Target, concurrency: int, cpus: list[int] | None, fast_loop: bool
) -> None:
    """A process of players; commands: join K, snapshot, keyframes, stop.

    With ``fast_loop`` the process runs on uvloop: asyncio's own loop costs ~16 µs of CPU per datagram
    received, uvloop ~3 µs, and the players are mostly that. (The timed players, which read kernel
    receive timestamps, stay on asyncio's loop, whose datagram path is known to read one at a time.)
    """
    pin(cpus)

    async def main() -> None:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            group = Group(http, target, concurrency)
            conn.send({"ok": True})
            await serve_commands(
                conn,
                {
                    "join": group.join,
                    "snapshot": lambda _: group.snapshot(),
                    "keyframes": lambda _: group.keyframes(),
                    "stop": lambda _: None,
                },
            )
            await group.close()

    if fast_loop:
        import uvloop  # type: ignore[import-not-found, unused-ignore]

        uvloop.run(main())
    else:
        asyncio.run(main())


@dataclass(frozen=True)
class Feed:
    """What the feed process publishes and how: a WCS publisher on ``target`` or RTP to Janus.

    ``players`` is where the feed process's timed players go (as every other player).
    """

    target: Target
    players: Target
    video: Clip
    audio: Clip
    rtp_address: str = ""
    video_port: int = 0
    audio_port: int = 0


def log_sends(pc: Any, log: SendLog) -> None:
    """Log every RTP payload the aiortc publisher ``pc`` sends, just before SRTP and ``sendto``."""
    transports = {id(t.sender.transport): t.sender.transport for t in pc.getTransceivers()}
    for dtls in transports.values():
        original = dtls._send_rtp

        async def send_rtp(data: bytes, original: Callable[[bytes], Awaitable[None]] = original) -> None:
            if not 191 < data[1] < 224:  # RTP, not RTCP
                log.mark(data[rtp_header_length(data) :], time.time_ns())
            await original(data)  # protects and sends without suspending

        dtls._send_rtp = send_rtp


def feed_main(conn: Connection, feed: Feed, concurrency: int, cpus: list[int] | None) -> None:
    """The feed (publisher or RTP) and the timed players; commands: join, record, snapshot, stop."""
    pin(cpus)
    asyncio.run(_feed(conn, feed, concurrency))


async def _feed(conn: Connection, feed: Feed, concurrency: int) -> None:
    log = SendLog()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        publisher: Publisher | None = None
        rtp: RtpFeed | None = None
        tracks: list[ClipTrack] = []
        try:
            if feed.target.server == "janus":
                rtp = RtpFeed(
                    feed.rtp_address, feed.video_port, feed.audio_port, feed.video, feed.audio, log.mark
                )
                rtp.start()
            else:
                tracks = [ClipTrack("video", feed.video), ClipTrack("audio", feed.audio)]
                publisher = Publisher(http, feed.target.url, feed.target.address)
                await publisher.publish(STREAM, tracks)
                log_sends(publisher.pc, log)
        except Exception as exc:
            conn.send({"ok": False, "error": f"{type(exc).__name__}: {exc}"})
            if publisher is not None:
                await publisher.close()
            return
        conn.send({"ok": True})
        group = Group(http, feed.players, concurrency)

        async def join(count: int) -> dict[str, Any]:
            return await group.join(count, lambda p: p.time_against(log))

        marks = [0.0, time.monotonic()]

        def record(on: bool) -> dict[str, Any]:
            for p in group.players:
                p.recording = on
                if on:
                    p.delays.clear()
                    p.unmatched = 0
            if on:
                marks[:] = [log.count, time.monotonic()]
                return {}
            sent_per_second = (log.count - marks[0]) / (time.monotonic() - marks[1])
            by_url: dict[str, list[float]] = {}
            for p in group.players:
                by_url.setdefault(p.played_url, []).extend(d / 1e6 for d in p.delays)
            return {
                "delays_ms": by_url,
                "unmatched": sum(p.unmatched for p in group.players),
                "sent_per_second": sent_per_second,
            }

        def stop(_: Any) -> dict[str, Any]:
            if tracks:
                return {"keyframe_requests": tracks[0].keyframe_requests, "clip_restarts": tracks[0].restarts}
            return {"rtp_packets_sent": rtp.packets_sent if rtp else 0}

        handlers: dict[str, Handler] = {
            "join": join,
            "record": record,
            "snapshot": lambda _: group.snapshot(),
            "keyframes": lambda _: group.keyframes(),
            "stop": stop,
        }
        await serve_commands(conn, handlers)
        await group.close()
        if publisher is not None:
            await publisher.close()
        if rtp is not None:
            await rtp.stop()
