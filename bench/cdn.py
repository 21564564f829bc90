"""CDN benchmark: how fast a stream published on an origin becomes playable on its edges, what each
edge costs the origin, and how much later the media reaches an edge's players than the origin's, for each
way the origin can distribute streams (``stream_distribution`` in ``loadbalancing.xml``).

    .venv/bin/python bench/cdn.py [--edges 1,2,4] [--distribution webrtc,rtmp] [--repeats 3] [--seconds 15]

Distributions (``--distribution``, default both, measured side by side in one run):

- ``webrtc``: a WebRTC relay per (stream, edge), ``/pull/push`` to the edge's WebSocket port: the
  publisher's RTP packets are forwarded as they come, over UDP; the edge asks the origin for keyframes.
- ``rtmp``: an RTMP push per (stream, edge) to the edge's ``<flash>`` port (1935: each edge has a loopback
  address of its own). Between rtcdn nodes Enhanced RTMP carries VP8 and Opus unchanged; the origin sends
  whole frames (depacketized) over TCP and the edge packetizes them again. RTMP cannot ask for a keyframe,
  so an edge's players start on the next keyframe the origin's publisher sends: the origin's RTMP egress
  asks its publisher for one every 2 s (here every request restarts the clip at its first frame, a
  keyframe, as a browser would send a fresh one). ``--gop`` sets the clip's own keyframe interval: the
  default 2 s coincides with those requests, a longer one shows which of the two an RTMP edge starts on.

For each of ``--repeats`` rounds: a publisher-only origin (E=0, no CDN), then for each E each distribution
(which distribution goes first alternates between rounds, so that a machine getting busier or quieter
does not favour one). Every run has a fresh origin (``--origin-address``, ``load_balancing_enabled=true``,
``loadbalancing.xml`` listing E edges) and E fresh edges (the next addresses: 127.0.0.72, .73, ...; plain
``rtcdn serve`` on the default ports); the origin pushes every live stream to every edge. The fan-out
benchmark's publisher (pre-encoded VP8 720p ~1 Mbps replayed in real time, with Opus of pink noise rather
than the fan-out clip's tone, so that no two audio frames of the loop are alike) publishes on the origin
while one lean player per edge, started at the same moment, asks its edge for the stream, sending
``playStream`` again every ``--retry`` s while the edge answers FAILED "Stream not found". Publisher,
players and a poller of the origin's ``/rest-api/cdn/streams`` share this process, one asyncio loop and
one monotonic clock.

Propagation, from ``publishStream`` being sent to the origin (and from the origin's PUBLISHING):

- the origin's ``/rest-api/cdn/streams`` shows the edge's push PUBLISHING (polled every ``--poll`` s);
- the edge's player gets its first complete VP8 keyframe: the stream is playable there. Max over edges;
  the comparison gives its p50 and max over the rounds.

Once every edge player has its keyframe, one more lean player plays the stream on the origin itself (in
every run, E=0 too, so the origin's CPU figures all include it; it joins only now so as not to cause a
keyframe the edges would start on). Added delay, origin → edge: during the window every player notes each
complete frame it gets: for VP8 its RTP payloads without their payload descriptors, in sequence order (the
same bytes whether the edge forwarded the origin's packets or packetized the frame again), for Opus the
payload; a frame is named by a hash of those bytes (RTP timestamps and sequence numbers differ per hop and
per distribution). Times are the kernel's receive timestamps of the datagrams as in bench/relay_hop.py
(``SIOCGSTAMPNS`` on each player's ICE socket, CLOCK_REALTIME): on loopback they say when the sending server
called ``sendto``, whatever this process's event loop was doing. Per frame an edge player got: added delay
= its last packet at the edge player - its last packet at the origin player (the frame complete), and the
same for the first packet; the origin player's copy is the nearest one in time (the clip loops, and
restarts at every keyframe request). The publisher's send path is timed too, as bench/relay_hop.py does
(``time.time_ns()`` just before aiortc protects a packet and hands it to the socket), which gives publisher
→ origin player and publisher → edge player for the same frames. The origin forwards a packet to its RTP
consumers in the order they joined (the edges' relays, then the origin player) and hands a frame to its
RTMP pushes only after its last packet went to them all, so "edge player - origin player" starts a little
earlier for webrtc than for rtmp; publisher → edge player has no such bias. Servers are not pinned to CPUs
(bench/relay_hop.py does that to mimic two machines; here three or more servers share the cores as they
would on one box).

Cost: once every edge player has its keyframe (and ``--settle`` s more), the origin's CPU (% of one core)
and RSS over ``--seconds``, against the same round's publisher-only origin: per edge = (CPU(E) - CPU(0))
/ E. Packets lost: sequence gaps per SSRC at the edge players (they send no NACKs), in the window and over
their whole play. Each edge's own CPU, the load generator's and the keyframe requests the publisher got in
the window are given too.

After the window the players leave, then the publisher (the time until every edge has no stream left is
noted), and every server gets SIGTERM (origin first); exit codes and shutdown times are reported.
Figures only, no pass/fail. Results also go to ``bench/results/cdn.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import ipaddress
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import av
import psutil  # type: ignore[import-untyped]
from av.filter import Graph

from _linux import kernel_stamp, udp_counters
from _media import AUDIO_CLOCK, AUDIO_FRAME, Clip, ClipTrack, encode_video
from _procs import ServerProcess, cpu_seconds
from _report import (
    RESULTS,
    add_client_options,
    add_clip_options,
    add_output_options,
    clip_size,
    fmt,
    machine,
    parser,
    percentile,
    render,
    spread,
    write_results,
)
from _rtp import payload_kinds, rtp_header_length, vp8_descriptor_length
from _wcs import NOT_FOUND, EdgePlayer, Publisher, Receive, TimedSignaling, WcsError, close_all

RESULTS_FILE = RESULTS / "cdn.json"
STREAM = "cdn"
DISTRIBUTIONS = ("webrtc", "rtmp")
MATCH_LIMIT_NS = 1_000_000_000
"An edge frame whose nearest copy at the origin player is further away in time is left unmatched."
AMBIGUOUS_NS = 200_000_000
"A match is ambiguous when another copy of the frame reached the origin player this close to the edge's."


# --- the clip's audio --------------------------------------------------------------------------------


def encode_noise_audio(seconds: float, bitrate: int = 48000) -> Clip:
    """Opus, stereo 48 kHz, 20 ms frames, of pink noise: unlike ``_media.encode_audio``'s 440 Hz tone,
    whose Opus frames repeat every 100 ms, every frame of the loop differs, so its payload names it."""
    graph = Graph()
    src = graph.add(
        "anoisesrc", f"color=pink:amplitude=0.2:seed=7:sample_rate={AUDIO_CLOCK}:nb_samples={AUDIO_FRAME}"
    )
    fmt = graph.add("aformat", "sample_fmts=s16:channel_layouts=stereo")
    sink = graph.add("abuffersink")
    src.link_to(fmt)
    fmt.link_to(sink)
    graph.configure()

    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate, codec.layout, codec.format = AUDIO_CLOCK, "stereo", "s16"
    codec.bit_rate = bitrate
    codec.time_base = fractions.Fraction(1, AUDIO_CLOCK)
    frames: list[bytes] = []
    for i in range(round(seconds * AUDIO_CLOCK / AUDIO_FRAME)):
        frame = sink.pull()
        assert isinstance(frame, av.AudioFrame)
        frame.pts, frame.time_base = i * AUDIO_FRAME, codec.time_base
        frames += [bytes(p) for p in codec.encode(frame)]
    return Clip(frames, [True] * len(frames), AUDIO_CLOCK, AUDIO_FRAME)


# --- clients ---------------------------------------------------------------------------------------


Frames = list[tuple[int, int, int]]
"(hash of the frame's bytes, time of its first packet, of its last packet; ns), in the order completed."


class FrameLog:
    """Complete frames out of RTP packets, per kind.

    A VP8 frame's bytes are its RTP payloads without their VP8 payload descriptors, in sequence order (the
    same whether the edge forwarded the origin's packets or packetized the frame again); an Opus frame's,
    its RTP payload.
    """

    def __init__(self) -> None:
        self.frames: dict[str, Frames] = {"video": [], "audio": []}
        self.incomplete = 0
        "VP8 frames with a packet missing (or without their first packet)."
        self._partial: dict[bytes, dict[int, tuple[int, bytes]]] = {}
        "RTP timestamp → sequence number → (time, payload) of the VP8 frames not complete yet."

    def add(self, kind: str, rtp: bytes, stamp: int) -> None:
        payload = rtp[rtp_header_length(rtp) : len(rtp) - (rtp[-1] if rtp[0] & 0x20 else 0)]
        if kind == "audio":
            self.frames["audio"].append((hash(payload), stamp, stamp))
            return
        seq = (rtp[2] << 8) | rtp[3]
        parts = self._partial.setdefault(rtp[4:8], {})
        parts[seq] = (stamp, payload)
        if not rtp[1] & 0x80:  # not the frame's last packet
            if len(self._partial) > 16:  # frames whose last packet never came
                del self._partial[next(iter(self._partial))]
                self.incomplete += 1
            return
        del self._partial[rtp[4:8]]
        back = sorted((seq - s) & 0xFFFF for s in parts)  # 0: this last packet
        ordered = [parts[(seq - b) & 0xFFFF] for b in reversed(back)]
        first = ordered[0][1]
        if back[-1] + 1 != len(parts) or not first or not first[0] & 0x10:  # a gap, or no start
            self.incomplete += 1
            return
        data = b"".join(p[vp8_descriptor_length(p) :] for _, p in ordered)
        self.frames["video"].append((hash(data), ordered[0][0], stamp))


class FramePlayer(EdgePlayer):
    """An :class:`EdgePlayer` that, while ``recording``, keeps a :class:`FrameLog` of what it gets.

    Times are the kernel's receive timestamps (``SIOCGSTAMPNS``, CLOCK_REALTIME ns, as bench/relay_hop.py
    takes them); ``time.time_ns()`` for a datagram without one (``unstamped``).
    """

    def __init__(self, http: aiohttp.ClientSession, url: str, address: str) -> None:
        super().__init__(http, url, address)
        self.recording = False
        self.log = FrameLog()
        self.unstamped = 0
        self._fd = -1
        self._opus_pt: int | None = None

    def _on_answer(self, sdp: str, negotiated: str | None = None) -> None:
        super()._on_answer(sdp, negotiated)
        for line in sdp.splitlines():
            if line.startswith("a=rtpmap:") and " opus/" in line.lower():
                self._opus_pt = int(line[9:].split()[0])

    def _make_receiver(self, dtls: Any, original: Receive) -> Receive:
        inner = super()._make_receiver(dtls, original)
        protocol = getattr(original, "__self__", None)  # the aioice StunProtocol of the candidate
        sock = protocol.transport.get_extra_info("socket") if protocol is not None else None
        if sock is not None:
            self._fd = sock.fileno()
            kernel_stamp(self._fd)  # nothing received yet: this only turns time-stamping on
        return inner

    def _on_rtp(self, rtp: bytes) -> None:
        super()._on_rtp(rtp)
        if not self.recording:
            return
        pt = rtp[1] & 0x7F
        if pt != self._vp8_pt and pt != self._opus_pt:
            return  # retransmissions
        stamp = kernel_stamp(self._fd) if self._fd >= 0 else 0  # still the datagram being handled
        if not stamp:
            self.unstamped += 1
            stamp = time.time_ns()
        self.log.add("video" if pt == self._vp8_pt else "audio", rtp, stamp)


class PublisherClock:
    """Wraps the publisher's SRTP send path (as bench/relay_hop.py's ``SendClock``): while ``recording``, a
    :class:`FrameLog` of what it sends, each packet at ``time.time_ns()`` (CLOCK_REALTIME, the clock of the
    kernel's receive timestamps) taken just before aiortc protects it and hands it to the socket."""

    def __init__(self, pc: Any) -> None:
        self.recording = False
        self.log = FrameLog()
        self.kinds = payload_kinds(str(pc.remoteDescription.sdp))
        transports = {id(t.sender.transport): t.sender.transport for t in pc.getTransceivers()}
        for dtls in transports.values():
            dtls._send_rtp = self._wrap(dtls._send_rtp)

    def _wrap(self, original: Callable[[bytes], Coroutine[Any, Any, None]]) -> Callable[[bytes], Any]:
        async def send_rtp(data: bytes) -> None:
            now = time.time_ns()
            await original(data)  # protects and hands the datagram to the socket, without suspending
            if self.recording and not 191 < data[1] < 224:  # RTCP
                kind = self.kinds.get(data[1] & 0x7F)
                if kind is not None:
                    self.log.add(kind, data, now)

        return send_rtp


def match(reference: Frames, frames: Frames) -> tuple[list[tuple[int, int]], int, int]:
    """Each of ``frames`` against its nearest copy (by last packet) in ``reference``: (last - reference's last,
    first - reference's first) in ns per match; then the frames without a copy within MATCH_LIMIT_NS, and
    the matches with another copy within AMBIGUOUS_NS."""
    copies: dict[int, list[tuple[int, int]]] = {}
    for key, first, last in reference:
        copies.setdefault(key, []).append((first, last))
    out: list[tuple[int, int]] = []
    unmatched = ambiguous = 0
    for key, first, last in frames:
        found = sorted(copies.get(key, []), key=lambda c: abs(last - c[1]))
        if not found or abs(last - found[0][1]) > MATCH_LIMIT_NS:
            unmatched += 1
            continue
        ambiguous += len(found) > 1 and abs(last - found[1][1]) < AMBIGUOUS_NS
        out.append((last - found[0][1], first - found[0][0]))
    return out, unmatched, ambiguous


@dataclass
class DelayFigures:
    """One kind of frame over the window, ms: the edge players' copies against the origin player's, and
    every player's against the publisher's."""

    publisher_frames: int = 0
    origin_frames: int = 0
    edge_frames: int = 0
    "Over every edge player."
    matched: int = 0
    "Edge frames with a copy at the origin player."
    unmatched: int = 0
    "Edge frames without a copy at the origin player (within MATCH_LIMIT_NS)."
    ambiguous: int = 0
    "Matched frames with another copy at the origin player within AMBIGUOUS_NS (clip restarts)."
    negative: int = 0
    "Frames complete at an edge player before the origin player."
    complete: dict[str, float] | None = None
    "Added delay, edge player - origin player, of the frame's last packet: count, min/p50/p90/p99/max/mean."
    first_packet: dict[str, float] | None = None
    "Added delay of the frame's first packet."
    per_edge_p50: dict[str, float | None] = field(default_factory=dict)
    "Of ``complete``."
    via_origin: dict[str, float] | None = None
    "Publisher sent the frame's last packet → the origin player got it."
    via_edge: dict[str, float] | None = None
    "Publisher sent the frame's last packet → an edge player got it (every edge)."


def frame_delays(
    publisher: Frames, origin: Frames, edges: dict[str, Frames]
) -> tuple[DelayFigures, dict[str, list[int]]]:
    """The figures of one kind, then the delays (ns) behind them: ``added`` (complete frame), ``added_first``
    (first packet), ``via_origin``, ``via_edge``."""
    figures = DelayFigures(publisher_frames=len(publisher), origin_frames=len(origin))
    samples: dict[str, list[int]] = {"added": [], "added_first": [], "via_origin": [], "via_edge": []}
    for node, frames in edges.items():
        figures.edge_frames += len(frames)
        found, unmatched, ambiguous = match(origin, frames)
        figures.matched += len(found)
        figures.unmatched += unmatched
        figures.ambiguous += ambiguous
        figures.negative += sum(last < 0 for last, _ in found)
        samples["added"] += [last for last, _ in found]
        samples["added_first"] += [first for _, first in found]
        stats = spread([last for last, _ in found])
        figures.per_edge_p50[node] = None if stats is None else stats["p50"]
        samples["via_edge"] += [last for last, _ in match(publisher, frames)[0]]
    samples["via_origin"] = [last for last, _ in match(publisher, origin)[0]]
    figures.complete, figures.first_packet = spread(samples["added"]), spread(samples["added_first"])
    figures.via_origin, figures.via_edge = spread(samples["via_origin"]), spread(samples["via_edge"])
    return figures, samples


# --- the origin's view: /rest-api/cdn/streams --------------------------------------------------------


async def _get_json(http: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    async with http.get(url) as response:
        status = response.status
        body = await response.json() if response.content_type == "application/json" else await response.text()
    return status, body


async def watch_routes(
    http: aiohttp.ClientSession, origin: ServerProcess, nodes: list[str], interval: float, timeout: float
) -> dict[str, list[tuple[float, str, str, bool]]]:
    """Poll the origin's ``/cdn/streams`` until every edge's push of the stream is PUBLISHING.

    Per node id, the changes seen: (monotonic time of the reply, status, info, edgeUp). Gives up after
    ``timeout`` s with what it saw.
    """
    seen: dict[str, list[tuple[float, str, str, bool]]] = {n: [] for n in nodes}
    url = f"{origin.rest_url}/cdn/streams"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, routes = await _get_json(http, url)
        now = time.monotonic()
        mine = next((r for r in routes if r["name"] == STREAM), None) if status == 200 else None
        for edge in mine["edges"] if mine is not None else []:
            history = seen.setdefault(str(edge["node"]), [])
            state = (str(edge["status"]), str(edge["info"]), bool(edge["edgeUp"]))
            if not history or history[-1][1:] != state:
                history.append((now, *state))
        if all(h and h[-1][1] == "PUBLISHING" for h in seen.values()):
            break
        await asyncio.sleep(interval)
    return seen


def _publishing_at(history: list[tuple[float, str, str, bool]]) -> float | None:
    return next((t for t, status, _, _ in history if status == "PUBLISHING"), None)


async def wait_edges_empty(
    http: aiohttp.ClientSession, edges: list[ServerProcess], timeout: float
) -> float | None:
    """Seconds until no edge lists a stream (``/stream/find_all`` 404 everywhere); None on timeout."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        codes = [(await _get_json(http, f"{e.rest_url}/stream/find_all"))[0] for e in edges]
        if all(code == 404 for code in codes):
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    return None


# --- one run -----------------------------------------------------------------------------------------


@dataclass
class Run:
    """One run (a round, a distribution, an E): times in seconds; ``*_from_sent`` from ``publishStream``
    sent, ``*_from_publishing`` from the publisher's PUBLISHING; CPU in % of one core over the window."""

    edges: int
    distribution: str = "-"
    "webrtc or rtmp; - for E=0."
    repeat: int = 0
    publishing_seconds: float = 0.0
    "publishStream sent → the publisher's PUBLISHING."
    routes_from_sent: dict[str, float | None] = field(default_factory=dict)
    "Per edge: /cdn/streams first showing its push PUBLISHING."
    routes_all_from_sent: float | None = None
    routes_all_from_publishing: float | None = None
    keyframe_from_sent: dict[str, float | None] = field(default_factory=dict)
    "Per edge: its player's first complete VP8 keyframe."
    keyframe_all_from_sent: float | None = None
    keyframe_all_from_publishing: float | None = None
    route_history: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    "Per edge: the statuses /cdn/streams showed until all were PUBLISHING (t from publishStream sent)."
    players: dict[str, dict[str, Any]] = field(default_factory=dict)
    origin_player: dict[str, Any] = field(default_factory=dict)
    "The player on the origin (joined once every edge had its keyframe)."
    delay: dict[str, DelayFigures] = field(default_factory=dict)
    "Per kind: edge players' frames against the origin player's, over the window."
    samples: dict[str, list[float]] = field(default_factory=dict, repr=False)
    """The delays behind ``delay`` in ms (``KIND_added``, ``KIND_added_first``, ``KIND_via_origin``,
    ``KIND_via_edge``), for the comparison; not written out."""
    window_seconds: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    "origin, each edge, load_generator."
    rss: dict[str, int] = field(default_factory=dict)
    "At the end of the window, bytes."
    others_cpu: float = 0.0
    "Every other process on the machine, % of one core."
    box_cpu: float = 0.0
    "Whole machine, % of all cores."
    lost_window: int = 0
    expected_window: int = 0
    lost_total: int = 0
    expected_total: int = 0
    udp_errors: dict[str, int] = field(default_factory=dict)
    "The kernel's UDP error counters over the run, machine-wide."
    keyframe_requests: int = 0
    "PLIs/FIRs the publisher got."
    keyframe_requests_window: int = 0
    "Of those, in the window."
    clip_restarts: int = 0
    routes_after_window: list[dict[str, Any]] = field(default_factory=list)
    relays_after_window: list[dict[str, Any]] = field(default_factory=list)
    "The origin's /pull/find_all (webrtc) or /push/find_all (rtmp) once the window was over."
    edges_empty_seconds: float | None = None
    "Publisher gone → no edge lists a stream."
    errors: list[str] = field(default_factory=list)
    servers: dict[str, dict[str, Any]] = field(default_factory=dict)


def _last(times: dict[str, float | None]) -> float | None:
    """The latest of the times; None if one is missing."""
    present = [t for t in times.values() if t is not None]
    return max(present) if present and len(present) == len(times) else None


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def _since(t: float | None, origin: float) -> float | None:
    return None if t is None else t - origin


async def drive(
    args: argparse.Namespace,
    run: Run,
    origin: ServerProcess,
    edges: list[ServerProcess],
    video: Clip,
    audio: Clip,
) -> None:
    """Publish (edge players asking from the start), wait for every edge, play on the origin too,
    measure, leave."""
    me = psutil.Process()
    udp_before = udp_counters()
    async with aiohttp.ClientSession() as http:
        video_track, audio_track = ClipTrack("video", video), ClipTrack("audio", audio)
        publisher = Publisher(http, origin.ws_url, args.client_address)
        signaling = publisher.signaling = TimedSignaling(http, origin.ws_url)
        players = {str(i): FramePlayer(http, e.ws_url, args.client_address) for i, e in enumerate(edges, 1)}
        at_origin = FramePlayer(http, origin.ws_url, args.client_address)
        left = False
        try:
            joins = {
                node: asyncio.create_task(p.play_when_there(STREAM, args.retry, args.timeout))
                for node, p in players.items()
            }
            watcher = (  # E=0: no CDN to watch
                asyncio.create_task(watch_routes(http, origin, list(players), args.poll, args.timeout))
                if players
                else None
            )
            try:
                await publisher.publish(STREAM, [video_track, audio_track])
            except BaseException:
                for task in [*joins.values(), *([watcher] if watcher is not None else [])]:
                    task.cancel()
                raise
            published_at = time.monotonic()
            sent_at = signaling.sent["publishStream"]
            run.publishing_seconds = published_at - sent_at

            if watcher is not None:
                history = await watcher
                await asyncio.wait(joins.values())
                for node, join in joins.items():
                    exc = join.exception()
                    if exc is not None:
                        run.errors.append(f"edge {node} player: {type(exc).__name__}: {exc}")
                waits = [p.keyframe.wait() for p in players.values() if p.result.ok]
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.gather(*waits), args.timeout)

                route_at = {node: _publishing_at(history.get(node, [])) for node in players}
                run.routes_from_sent = {n: _since(t, sent_at) for n, t in route_at.items()}
                run.route_history = {
                    node: [
                        {"t": t - sent_at, "status": status, "info": info, "edgeUp": up}
                        for t, status, info, up in changes
                    ]
                    for node, changes in history.items()
                }
                keyframe_at = {node: p.keyframe_at for node, p in players.items()}
                run.keyframe_from_sent = {n: _since(t, sent_at) for n, t in keyframe_at.items()}
                last_route, last_keyframe = _last(route_at), _last(keyframe_at)
                if last_route is not None:
                    run.routes_all_from_sent = last_route - sent_at
                    run.routes_all_from_publishing = last_route - published_at
                else:
                    run.errors.append(f"not every push was PUBLISHING within {args.timeout:.0f} s")
                if last_keyframe is not None:
                    run.keyframe_all_from_sent = last_keyframe - sent_at
                    run.keyframe_all_from_publishing = last_keyframe - published_at
                else:
                    run.errors.append(f"not every edge player had a keyframe within {args.timeout:.0f} s")

            # the origin's own player, for the added delay; now, so that its keyframe request comes after
            # the edges' first keyframes
            joined_at = time.monotonic()
            try:
                await at_origin.play_when_there(STREAM, args.retry, args.timeout)
                await asyncio.wait_for(at_origin.keyframe.wait(), args.timeout)
            except (WcsError, TimeoutError) as exc:
                run.errors.append(f"origin player: {type(exc).__name__}: {exc}")
            clock = PublisherClock(publisher.pc)
            clock.recording = at_origin.recording = True  # from before the window: copies come later
            await asyncio.sleep(args.settle)
            groups: dict[str, Callable[[], float]] = {
                "origin": origin.cpu_seconds,
                **{e.name: e.cpu_seconds for e in edges},
                "load_generator": lambda: cpu_seconds(me),
            }
            counts_before = {node: p.counts() for node, p in players.items()}
            requests_before = video_track.keyframe_requests
            psutil.cpu_percent()
            before = {k: f() for k, f in groups.items()}
            started = time.monotonic()
            for p in players.values():
                p.recording = True
            await asyncio.sleep(args.seconds)
            for p in players.values():
                p.recording = False
            after = {k: f() for k, f in groups.items()}
            run.window_seconds = elapsed = time.monotonic() - started
            run.box_cpu = psutil.cpu_percent()
            clock.recording = at_origin.recording = False
            run.keyframe_requests_window = video_track.keyframe_requests - requests_before
            counts_after = {node: p.counts() for node, p in players.items()}
            run.cpu = {k: 100 * (after[k] - before[k]) / elapsed for k in groups}
            run.others_cpu = max(0.0, run.box_cpu * (psutil.cpu_count() or 1) - sum(run.cpu.values()))
            for server in (origin, *edges):
                assert server.ps is not None
                run.rss[server.name] = int(server.ps.memory_info().rss)

            for kind in ("video", "audio"):
                edge_frames = {node: p.log.frames[kind] for node, p in players.items()}
                figures, samples = frame_delays(
                    clock.log.frames[kind], at_origin.log.frames[kind], edge_frames
                )
                run.delay[kind] = figures
                run.samples.update({f"{kind}_{k}": [ns / 1e6 for ns in v] for k, v in samples.items()})
            result = at_origin.finish()
            run.origin_player = {
                "ok": result.ok,
                "playing_after_join": _since(at_origin.playing_at, joined_at),
                "keyframe_after_join": _since(at_origin.keyframe_at, joined_at),
                "packets": result.packets,
                "expected": result.expected,
                "lost": result.lost,
                "srtp_errors": result.srtp_errors,
                "unstamped": at_origin.unstamped,
                "incomplete_frames": at_origin.log.incomplete,
            }
            for node, p in players.items():
                (e0, r0), (e1, r1) = counts_before[node], counts_after[node]
                result = p.finish()
                run.players[node] = {
                    "address": edges[int(node) - 1].address,
                    "ok": result.ok,
                    "not_found": p.not_found,
                    "first_play_from_sent": _since(p.first_sent_at, sent_at),
                    "accepted_from_sent": _since(p.accepted_at, sent_at),
                    "playing_from_sent": _since(p.playing_at, sent_at),
                    "first_packet_from_sent": _since(p.first_packet_at, sent_at),
                    "keyframe_from_sent": run.keyframe_from_sent.get(node),
                    "keyframe_from_accepted": result.t_keyframe,
                    "packets": result.packets,
                    "expected": result.expected,
                    "lost": result.lost,
                    "expected_window": e1 - e0,
                    "lost_window": max(0, (e1 - e0) - (r1 - r0)),
                    "srtp_errors": result.srtp_errors,
                    "unstamped": p.unstamped,
                    "incomplete_frames": p.log.incomplete,
                    "per_ssrc": result.per_ssrc,
                }
            run.lost_window = sum(p["lost_window"] for p in run.players.values())
            run.expected_window = sum(p["expected_window"] for p in run.players.values())
            run.lost_total = sum(p["lost"] for p in run.players.values())
            run.expected_total = sum(p["expected"] for p in run.players.values())
            if edges:
                run.routes_after_window = (await _get_json(http, f"{origin.rest_url}/cdn/streams"))[1]
                kind = "push" if run.distribution == "rtmp" else "pull"
                code, relays = await _get_json(http, f"{origin.rest_url}/{kind}/find_all")
                run.relays_after_window = relays if code == 200 else []

            await close_all([*players.values(), at_origin])
            await publisher.close()
            left = True
            run.keyframe_requests, run.clip_restarts = video_track.keyframe_requests, video_track.restarts
            if edges:
                run.edges_empty_seconds = await wait_edges_empty(http, edges, 15)
        finally:
            if not left:
                await close_all([*players.values(), at_origin, publisher])
    udp_after = udp_counters()
    run.udp_errors = {k: udp_after[k] - udp_before[k] for k in ("InErrors", "RcvbufErrors") if k in udp_after}


def _edge_address(args: argparse.Namespace, i: int) -> str:
    return str(ipaddress.ip_address(args.origin_address) + i)


def start_servers(
    args: argparse.Namespace, n: int, distribution: str, folder: Path
) -> tuple[ServerProcess, list[ServerProcess]]:
    """E edges, then the origin (a plain server for E=0) listing them in loadbalancing.xml."""
    edges = [
        ServerProcess(f"edge{i}", _edge_address(args, i), folder / f"edge{i}", args.media_ports)
        for i in range(1, n + 1)
    ]
    cdn = {"load_balancing_enabled": "true"} if n else {}
    origin = ServerProcess("origin", args.origin_address, folder / "origin", args.media_ports, properties=cdn)
    if n:  # every edge on the default ports, RTMP (<flash>) 1935 included
        nodes = "".join(f'<node id="{i}"><ip>{e.address}</ip></node>' for i, e in enumerate(edges, 1))
        Path(origin.options["--config-dir"], "loadbalancing.xml").write_text(
            f'<loadbalancer mode="roundrobin" stream_distribution="{distribution}">{nodes}</loadbalancer>\n'
        )
    started: list[ServerProcess] = []
    try:
        for server in [*edges, origin]:
            server.start()
            started.append(server)
    except BaseException:
        for server in started:
            server.stop()
        raise
    return origin, edges


def run_one(
    n: int, distribution: str, repeat: int, args: argparse.Namespace, video: Clip, audio: Clip
) -> Run:
    """One run with fresh servers, all stopped with SIGTERM (origin first) whatever happens."""
    run = Run(edges=n, distribution=distribution if n else "-", repeat=repeat)
    with tempfile.TemporaryDirectory(prefix="rtcdn-cdn-") as tmp:
        origin, edges = start_servers(args, n, distribution, Path(tmp))
        servers = [origin, *edges]
        try:
            asyncio.run(drive(args, run, origin, edges, video, audio))
        except (WcsError, RuntimeError, TimeoutError, aiohttp.ClientError) as exc:
            run.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            for server in servers:
                server.stop()
            where = f"r{repeat}-E{n}" + (f"-{distribution}" if n else "")
            for server in servers:
                server.keep_log(args.logs / where if args.logs else None)
        run.servers = {
            s.name: {
                "address": s.address,
                "exit_code": s.exit_code,
                "shutdown_seconds": s.shutdown_seconds,
                "log_problems": s.problems()[:20],
            }
            for s in servers
        }
    return run


# --- report ------------------------------------------------------------------------------------------


def _pair(from_sent: float | None, from_publishing: float | None) -> str:
    return f"{fmt(_ms(from_sent))} / {fmt(_ms(from_publishing))}"


def _stat(stats: dict[str, float] | None, q: str, spec: str = ".2f") -> str:
    return "-" if stats is None else format(stats[q], spec)


def _baseline(run: Run, runs: list[Run]) -> Run | None:
    """The publisher-only run of ``run``'s round."""
    return next((r for r in runs if r.edges == 0 and r.repeat == run.repeat and r.cpu), None)


def _per_edge_cpu(run: Run, runs: list[Run]) -> float | None:
    base = _baseline(run, runs)
    if not run.edges or not run.cpu or base is None:
        return None
    return (run.cpu["origin"] - base.cpu["origin"]) / run.edges


def _edge_cpu(run: Run) -> float | None:
    values = [v for k, v in run.cpu.items() if k.startswith("edge")]
    return sum(values) / len(values) if values else None


def print_run(run: Run, baseline: Run | None) -> None:
    if run.edges:
        print(
            f"  publishStream → PUBLISHING at the origin {run.publishing_seconds * 1000:.0f} ms; "
            f"from publishStream sent / from PUBLISHING, ms:"
        )
        routes = ", ".join(f"{n} {fmt(_ms(t))}" for n, t in run.routes_from_sent.items())
        print(
            f"  /cdn/streams PUBLISHING: {_pair(run.routes_all_from_sent, run.routes_all_from_publishing)} "
            f"(per edge: {routes})"
        )
        keyframes = ", ".join(f"{n} {fmt(_ms(t))}" for n, t in run.keyframe_from_sent.items())
        print(
            f"  keyframe at every edge:  {_pair(run.keyframe_all_from_sent, run.keyframe_all_from_publishing)} "
            f"(per edge: {keyframes})"
        )
        for node, p in run.players.items():
            print(
                f"  edge {node} {p['address']}: {p['not_found']} x {NOT_FOUND}, then playStream sent at "
                f"{fmt(_ms(p['accepted_from_sent']))}, PLAYING {fmt(_ms(p['playing_from_sent']))}, first packet "
                f"{fmt(_ms(p['first_packet_from_sent']))}, keyframe {fmt(_ms(p['keyframe_from_sent']))} ms; "
                f"lost {p['lost_window']} of {p['expected_window']} in the window, {p['lost']} of "
                f"{p['expected']} in all; SRTP errors {p['srtp_errors']}; edge CPU "
                f"{run.cpu.get(f'edge{node}', 0):.1f} %, RSS {run.rss.get(f'edge{node}', 0) / 2**20:.1f} MiB"
            )
        for kind, d in run.delay.items():
            per_edge = ", ".join(f"{n} {fmt(v, '.2f')}" for n, v in d.per_edge_p50.items())
            print(
                f"  added delay origin → edge, {kind}: frame complete p50 {_stat(d.complete, 'p50')} p90 "
                f"{_stat(d.complete, 'p90')} p99 {_stat(d.complete, 'p99')} max {_stat(d.complete, 'max')} "
                f"ms, first packet p50 {_stat(d.first_packet, 'p50')} ms (p50 per edge: {per_edge}); "
                f"{d.matched} of {d.edge_frames} edge frames matched ({d.ambiguous} ambiguous, "
                f"{d.negative} < 0), origin player {d.origin_frames}; publisher → origin player p50 "
                f"{_stat(d.via_origin, 'p50')}, → edge players p50 {_stat(d.via_edge, 'p50')} ms"
            )
    else:
        print(f"  publishStream → PUBLISHING {run.publishing_seconds * 1000:.0f} ms; publisher only, no CDN")
    o = run.origin_player
    if o:
        via = ", ".join(f"{k} {_stat(d.via_origin, 'p50')}" for k, d in run.delay.items())
        print(
            f"  origin player: keyframe {fmt(_ms(o['keyframe_after_join']))} ms after joining; lost "
            f"{o['lost']} of {o['expected']}; publisher → origin player p50 ms: {via}"
        )
    if run.cpu:
        line = f"  origin CPU {run.cpu['origin']:.2f} %, RSS {run.rss['origin'] / 2**20:.1f} MiB"
        if baseline is not None and baseline.cpu and run.edges:
            line += (
                f"; per edge over E=0: {(run.cpu['origin'] - baseline.cpu['origin']) / run.edges:+.2f} % CPU, "
                f"{(run.rss['origin'] - baseline.rss['origin']) / run.edges / 2**20:+.2f} MiB"
            )
        print(line)
        print(
            f"  load generator CPU {run.cpu['load_generator']:.1f} %, other processes {run.others_cpu:.0f} %, "
            f"machine {run.box_cpu:.0f} %; keyframe requests at the publisher {run.keyframe_requests} "
            f"({run.keyframe_requests_window} in the window; clip restarts {run.clip_restarts}); kernel UDP "
            f"errors {run.udp_errors}"
        )
    if run.edges:
        print(f"  publisher gone → no stream left on any edge: {fmt(_ms(run.edges_empty_seconds))} ms")
    for name, s in run.servers.items():
        print(f"  {name}: exit code {s['exit_code']} in {fmt(s['shutdown_seconds'], '.1f')} s")
        for line in s["log_problems"][:5]:
            print(f"      {line}")
    for error in run.errors:
        print(f"  ! {error}")


def table(runs: list[Run]) -> str:
    """Every run."""
    heads = [
        "round",
        "dist",
        "E",
        "pub ms",
        "all pushes PUBLISHING ms",
        "keyframe on all edges ms",
        "video +ms p50",
        "origin CPU%",
        "Δ/edge",
        "RSS MiB",
        "ΔRSS/edge MiB",
        "edge CPU%",
        "lost/expected",
    ]
    rows = [heads]
    for r in runs:
        base = _baseline(r, runs)
        per_edge = _per_edge_cpu(r, runs)
        video = r.delay.get("video")
        rows.append(
            [
                str(r.repeat),
                r.distribution,
                str(r.edges),
                fmt(_ms(r.publishing_seconds)),
                _pair(r.routes_all_from_sent, r.routes_all_from_publishing) if r.edges else "-",
                _pair(r.keyframe_all_from_sent, r.keyframe_all_from_publishing) if r.edges else "-",
                _stat(video.complete if video else None, "p50"),
                fmt(r.cpu.get("origin"), ".2f"),
                fmt(per_edge, "+.2f"),
                fmt(r.rss.get("origin"), ".1f", 2**-20),
                fmt((r.rss["origin"] - base.rss["origin"]) / r.edges, "+.2f", 2**-20)
                if r.edges and r.rss and base is not None
                else "-",
                fmt(_edge_cpu(r), ".2f"),
                f"{r.lost_window}/{r.expected_window}" if r.edges else "-",
            ]
        )
    return render(rows)


def _p50_max(values: list[float | None]) -> dict[str, float | None]:
    present = [v for v in values if v is not None]
    return {
        "p50": percentile(present, 50),
        "max": max(present) if present else None,
        "runs": len(present),
    }


def compare(runs: list[Run]) -> list[dict[str, Any]]:
    """Per (distribution, E), over the rounds: times and CPU p50/max (or p50/min/max), delays pooled."""
    groups: dict[tuple[str, int], list[Run]] = {}
    for r in runs:
        if r.edges:
            groups.setdefault((r.distribution, r.edges), []).append(r)
    out = []
    for (distribution, edges), group in sorted(groups.items(), key=lambda g: (g[0][1], g[0][0] != "webrtc")):
        per_edge = [v for v in (_per_edge_cpu(r, runs) for r in group) if v is not None]
        origin_cpu = [r.cpu["origin"] for r in group if r.cpu]
        edge_cpu = [v for v in (_edge_cpu(r) for r in group) if v is not None]
        windows = [r for r in group if r.window_seconds]
        pooled: dict[str, list[float]] = {}
        for r in group:
            for k, v in r.samples.items():
                pooled.setdefault(k, []).extend(v)
        out.append(
            {
                "distribution": distribution,
                "edges": edges,
                "runs": len(group),
                "failed_runs": sum(bool(r.errors) for r in group),
                "keyframe_all_from_sent": _p50_max([r.keyframe_all_from_sent for r in group]),
                "keyframe_all_from_publishing": _p50_max([r.keyframe_all_from_publishing for r in group]),
                "routes_all_from_sent": _p50_max([r.routes_all_from_sent for r in group]),
                "delay_ms": {
                    k: spread([round(v * 1e6) for v in values]) for k, values in sorted(pooled.items())
                },
                "delay_frames": {
                    kind: {
                        name: sum(getattr(r.delay[kind], name) for r in group if kind in r.delay)
                        for name in ("edge_frames", "matched", "ambiguous", "negative")
                    }
                    for kind in ("video", "audio")
                },
                "origin_cpu": {"p50": percentile(origin_cpu, 50), "values": origin_cpu},
                "origin_cpu_per_edge": {
                    "p50": percentile(per_edge, 50),
                    "min": min(per_edge, default=None),
                    "max": max(per_edge, default=None),
                    "values": per_edge,
                },
                "edge_cpu": {"p50": percentile(edge_cpu, 50), "values": edge_cpu},
                "keyframe_requests_per_second": sum(r.keyframe_requests_window for r in windows)
                / sum(r.window_seconds for r in windows)
                if windows
                else None,
                "lost_window": sum(r.lost_window for r in group),
                "expected_window": sum(r.expected_window for r in group),
            }
        )
    return out


def comparison_table(rows: list[dict[str, Any]]) -> str:
    heads = [
        "dist",
        "E",
        "runs",
        "keyframe all edges ms p50/max",
        "from PUBLISHING",
        "video +ms p50/p99",
        "1st pkt p50",
        "audio +ms p50/p99",
        "pub→origin/edge p50",
        "origin CPU%",
        "Δ/edge % p50 [min..max]",
        "edge CPU%",
        "PLI/s",
        "lost/expected",
    ]
    out = [heads]
    for c in rows:
        sent, pub, d = c["keyframe_all_from_sent"], c["keyframe_all_from_publishing"], c["delay_ms"]
        per_edge = c["origin_cpu_per_edge"]
        out.append(
            [
                c["distribution"],
                str(c["edges"]),
                f"{c['runs'] - c['failed_runs']}/{c['runs']}",
                f"{fmt(_ms(sent['p50']))} / {fmt(_ms(sent['max']))}",
                f"{fmt(_ms(pub['p50']))} / {fmt(_ms(pub['max']))}",
                f"{_stat(d.get('video_added'), 'p50')} / {_stat(d.get('video_added'), 'p99')}",
                _stat(d.get("video_added_first"), "p50"),
                f"{_stat(d.get('audio_added'), 'p50')} / {_stat(d.get('audio_added'), 'p99')}",
                f"{_stat(d.get('video_via_origin'), 'p50')} / {_stat(d.get('video_via_edge'), 'p50')}",
                fmt(c["origin_cpu"]["p50"], ".2f"),
                f"{fmt(per_edge['p50'], '+.2f')} [{fmt(per_edge['min'], '+.2f')}..{fmt(per_edge['max'], '+.2f')}]",
                fmt(c["edge_cpu"]["p50"], ".2f"),
                fmt(c["keyframe_requests_per_second"], ".2f"),
                f"{c['lost_window']}/{c['expected_window']}",
            ]
        )
    return render(out)


def cpu_fit(runs: list[Run]) -> dict[str, float] | None:
    """Least squares over the runs with edges: origin CPU = fixed + per_edge * E (None with < 2 E values)."""
    points = [(float(r.edges), r.cpu["origin"]) for r in runs if r.edges and r.cpu]
    if len({x for x, _ in points}) < 2:
        return None
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    slope = sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x, _ in points)
    return {"fixed": my - slope * mx, "per_edge": slope}


LEGEND = """\
Every run: pub: publishStream sent -> the origin's PUBLISHING. Pushes PUBLISHING: the origin's
/rest-api/cdn/streams shows every edge's push PUBLISHING; keyframe on all edges: the last edge player's first
complete VP8 keyframe (players ask from the start, again while the edge says Stream not found); both as
"from publishStream sent / from the origin's PUBLISHING". video +ms: added delay origin -> edge of a video
frame (complete at the edge player - complete at the origin player, kernel receive timestamps), p50 over
the window and the edges. CPU in % of one core over the window, RSS at its end; Δ/edge = (origin at E -
origin at E=0 of the same round, publisher and the origin player only, no CDN) / E; edge CPU: mean over
the edges; lost/expected: RTP sequence gaps at the edge players over the window (no NACKs).
Comparison, per distribution and E over the rounds: keyframe on all edges p50 / max over the rounds;
added delays pooled over rounds and edges (1st pkt: of a video frame's first packet; audio: of an Opus
packet); pub→origin/edge: the publisher's send of a video frame's last packet -> the origin player / an
edge player got it (user-space send time against kernel receive times); origin CPU and Δ/edge p50 (with min..max) over the rounds; edge CPU p50 of the rounds' means;
PLI/s: keyframe requests the publisher got in the windows, per second."""


def main(argv: list[str] | None = None) -> int:
    options = parser(__doc__)
    add = options.add_argument
    add("--edges", default="1,2,4", help="comma-separated edge counts (default 1,2,4; E=0 always runs first)")
    add(
        "--distribution",
        default=",".join(DISTRIBUTIONS),
        help="comma-separated stream_distribution values to compare (default webrtc,rtmp)",
    )
    add("--repeats", type=int, default=3, help="rounds of every run (default 3)")
    add("--seconds", type=float, default=15, help="CPU window per run (default 15)")
    add(
        "--settle", type=float, default=2, help="seconds after the origin player's keyframe before the window"
    )
    add("--retry", type=float, default=0.02, help="seconds between playStream retries (default 0.02)")
    add("--poll", type=float, default=0.02, help="seconds between /cdn/streams polls (default 0.02)")
    add("--timeout", type=float, default=30, help="seconds for every edge to get there (default 30)")
    add("--origin-address", default="127.0.0.71", help="origin; edge i is this address + i (default .71)")
    add_client_options(options, "127.0.0.70")
    add_clip_options(options)
    add(
        "--gop",
        type=float,
        default=2,
        help="seconds between the clip's own keyframes (default 2, as the RTMP egress's requests); the clip is 10 s",
    )
    add_output_options(options, RESULTS_FILE, "keep every server log in this folder (one subfolder per run)")
    args = options.parse_args(argv)
    counts = [int(x) for x in args.edges.split(",") if x.strip()]
    if not counts or any(n < 1 for n in counts):
        options.error("--edges: counts must be >= 1 (E=0, the publisher-only baseline, always runs)")
    distributions = [x.strip().lower() for x in args.distribution.split(",") if x.strip()]
    if not distributions or any(d not in DISTRIBUTIONS for d in distributions):
        options.error(f"--distribution: comma-separated, of {', '.join(DISTRIBUTIONS)}")
    if args.repeats < 1:
        options.error("--repeats must be >= 1")
    servers = [_edge_address(args, i) for i in range(max(counts) + 1)]
    if args.client_address in servers or not all(ipaddress.ip_address(a).is_loopback for a in servers):
        options.error("--edges: edge addresses must stay on loopback and not meet --client-address")

    width, height = clip_size(args)
    started = time.monotonic()
    video = encode_video(width, height, args.fps, 10, args.bitrate, gop_seconds=args.gop)
    audio = encode_noise_audio(10)
    cores = psutil.cpu_count() or 1
    print(
        f"clip: VP8 {width}x{height}@{args.fps} {video.bitrate / 1e6:.2f} Mbps, keyframe every {args.gop:g} s + Opus "
        f"(pink noise) {audio.bitrate / 1e3:.0f} kbps, {video.seconds:.0f} s loop (encoded in "
        f"{time.monotonic() - started:.1f} s); machine: {cores} cores; origin {args.origin_address}, edges "
        f"from {_edge_address(args, 1)}, clients on {args.client_address}; distributions "
        f"{', '.join(distributions)}, {args.repeats} round(s)",
        flush=True,
    )

    runs: list[Run] = []
    for repeat in range(1, args.repeats + 1):
        order = distributions if repeat % 2 else distributions[::-1]
        baseline: Run | None = None
        for n, distribution in [(0, "-"), *((n, d) for n in counts for d in order)]:
            label = f"E={n}" + (f" {distribution}" if n else " (publisher and origin player only)")
            print(f"\nround {repeat}, {label}: running ...", flush=True)
            run = run_one(n, distribution, repeat, args, video, audio)
            if n == 0 and run.cpu:
                baseline = run
            print_run(run, baseline)
            runs.append(run)

    print()
    print(table(runs))
    fits = {d: cpu_fit([r for r in runs if r.distribution == d]) for d in distributions}
    for distribution, fit in fits.items():
        if fit is not None:
            print(
                f"least squares over E >= 1, {distribution}: origin CPU = {fit['fixed']:.2f} + "
                f"{fit['per_edge']:.2f} x E % (the marginal cost of one more edge is the slope)"
            )
    comparison = compare(runs)
    print()
    print(comparison_table(comparison))
    print()
    print(LEGEND)
    report = {
        "benchmark": "cdn",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(),
        "config": {k: v for k, v in vars(args).items() if k not in ("output", "logs")},
        "clip": {
            "video_bitrate": round(video.bitrate),
            "video_frames": len(video.frames),
            "audio": "Opus of pink noise",
            "audio_bitrate": round(audio.bitrate),
        },
        "comparison": comparison,
        "origin_cpu_fit": fits,
        "runs": [{k: v for k, v in asdict(r).items() if k != "samples"} for r in runs],
    }
    write_results(args.output, report)
    return 1 if any(r.errors for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
