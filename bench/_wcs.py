"""Lean WCS WebSDK protocol clients for benchmarks: a publisher and counting players.

Both speak the WebSocket protocol through rtcdn's own client, :class:`rtcdn.wcs.client.WcsAgent`, as
``tests/wcs_client.py`` does (``connection`` → ``getUserData``, ``publishStream``/``playStream`` with an
SDP offer → ``setRemoteSDP`` answer → ``notifyStreamStatusEvent``), over aiortc peers that gather one
host candidate on a chosen address.

:class:`LeanPlayer` does not decode: it takes over its ICE socket's ``datagram_received`` and, once
DTLS-SRTP is up, unprotects each SRTP packet with libsrtp and only looks at the RTP header (sequence
gaps per SSRC) and, until the first one is found, at the VP8 payload descriptor for a keyframe.
STUN, DTLS and SRTCP still go the usual aiortc way. ``viewer="chromium"`` makes it look like a
Chromium viewer to the server (Chromium's SDP, Chromium's RTCP: ``_chromium.py``); ``"lean"`` keeps
aiortc's own offer and sends no RTCP. :class:`EdgePlayer` asks again while a stream is not there yet.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
import aioice.ice
import pylibsrtp
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription

from _chromium import CONSENT_INTERVAL, VIEWERS, ChromiumFeedback, chromium_offer, negotiated_feedback
from _media import ClipTrack
from _rtp import StreamCounts, payload_kinds, rtp_header_length, rtx_payload_types, vp8_keyframe_start
from rtcdn.wcs.client import AgentError, WcsAgent
from rtcdn.wcs.messages import stream_payload
from rtcdn.webrtc._aiortc import PortRange, patch_gathering

WcsError = AgentError
"The server refused or failed a request, or could not be reached (the client's :class:`AgentError`)."
NOT_FOUND = "Stream not found"


class Signaling:
    """One WCS session on a WebSocket (:class:`~rtcdn.wcs.client.WcsAgent`, which answers the pings)."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self.agent = WcsAgent(url, label=f"bench {url}", http=http, client="rtcdn bench")

    async def connect(self) -> None:
        await self.agent.connect()

    async def send(self, message: str, payload: Any = None) -> None:
        await self.agent.send(message, payload)

    async def negotiate(
        self,
        message: str,
        payload: dict[str, Any],
        pc: RTCPeerConnection,
        expect: str,
        on_answer: Callable[[str], None] | None = None,
        timeout: float = 30,
    ) -> None:
        """Send ``publishStream``/``playStream`` with ``pc``'s offer; apply the answer; wait for ``expect``.

        ``on_answer(sdp)`` runs before the answer is applied, so before any media can arrive.
        """

        async def accept(sdp: str) -> None:
            if on_answer is not None:
                on_answer(sdp)
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))

        try:
            status = await self.agent.negotiate(message, payload, expect, accept, timeout)
        except TimeoutError:
            raise WcsError(f"{message}: no {expect} within {timeout:.0f} s") from None
        if status.get("status") != expect:
            raise WcsError(f"{message}: {status.get('status')} {status.get('info', '')}".strip())

    async def close(self) -> None:
        await self.agent.close()


class TimedSignaling(Signaling):
    """:class:`Signaling` that notes when each kind of message was first sent (monotonic seconds)."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        super().__init__(http, url)
        self.sent: dict[str, float] = {}
        self.agent.on_send = self._note

    def _note(self, message: str, payload: Any) -> None:
        self.sent.setdefault(message, time.monotonic())


async def local_offer(pc: RTCPeerConnection, address: str) -> str:
    """``pc``'s offer with one host candidate on ``address`` (gathered before it returns)."""
    offer = await pc.createOffer()
    patch_gathering(pc, [address], PortRange(0, 0), None)
    await pc.setLocalDescription(offer)
    return str(pc.localDescription.sdp)


class Publisher:
    """Publishes :class:`~_media.ClipTrack`s; a PLI or FIR from the server restarts the clip at a keyframe."""

    def __init__(self, http: aiohttp.ClientSession, url: str, address: str) -> None:
        self.signaling = Signaling(http, url)
        self.address = address
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.tracks: list[ClipTrack] = []

    async def publish(
        self, name: str, tracks: list[ClipTrack], mimes: Sequence[str] = ("video/VP8",)
    ) -> None:
        """Publish ``tracks`` as ``name``, video offered as the first of ``mimes`` aiortc has, audio as Opus."""
        await self.signaling.connect()
        self.tracks = tracks
        for track in tracks:
            transceiver = self.pc.addTransceiver(track, direction="sendonly")
            wanted = (*mimes, "audio/opus")
            codecs = [c for c in RTCRtpSender.getCapabilities(track.kind).codecs if c.mimeType in wanted]
            transceiver.setCodecPreferences(codecs)
            transceiver.sender._send_keyframe = track.request_keyframe  # type: ignore[method-assign]
        sdp = await local_offer(self.pc, self.address)
        kinds = {track.kind for track in tracks}
        payload = stream_payload(str(uuid.uuid1()), name, True, sdp, "audio" in kinds, "video" in kinds)
        await self.signaling.negotiate("publishStream", payload, self.pc, "PUBLISHING")

    async def close(self) -> None:
        await self.pc.close()
        await self.signaling.close()


@dataclass
class PlayerResult:
    """What one player saw; times in seconds from sending ``playStream``."""

    ok: bool
    error: str = ""
    started: float = 0.0
    "Wall-clock time ``playStream`` was sent (to line players of several processes up)."
    t_playing: float | None = None
    t_first_packet: float | None = None
    t_keyframe: float | None = None
    "The first complete VP8 keyframe (its last packet, marker bit set)."
    packets: int = 0
    lost: int = 0
    expected: int = 0
    srtp_errors: int = 0
    per_ssrc: dict[str, dict[str, int]] = field(default_factory=dict)


Receive = Callable[[bytes, Any], None]


class LeanPlayer:
    """A receive-only player that counts SRTP packets instead of decoding them.

    ``viewer``: ``lean`` (aiortc's offer, no RTCP) or ``chromium`` (Chromium's offer and RTCP).
    """

    def __init__(self, http: aiohttp.ClientSession, url: str, address: str, viewer: str = "lean") -> None:
        if viewer not in VIEWERS:
            raise ValueError(f"viewer {viewer!r}: one of {', '.join(VIEWERS)}")
        self.signaling = Signaling(http, url)
        self.address = address
        self.viewer = viewer
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.packets = 0
        self.srtp_errors = 0
        self.ssrcs: dict[int, StreamCounts] = {}
        self.kind_of: dict[int, str] = {}
        "SSRC → ``audio``/``video`` (``rtx``: retransmissions), from its first packet's payload type."
        self.result = PlayerResult(ok=False)
        self.feedback: ChromiumFeedback | None = None
        "A Chromium viewer's RTCP (set by the answer's negotiation)."
        self._t0 = 0.0
        self._vp8_pt: int | None = None
        self._pt_kinds: dict[int, str] = {}
        self._keyframe_ts: bytes | None = None  # RTP timestamp of the first keyframe, while incomplete
        self._keyframe_done = False
        if viewer == "chromium":
            aioice.ice.CONSENT_INTERVAL = CONSENT_INTERVAL  # process-wide: every peer of the process

    async def offer(self) -> str:
        """Add the receive-only transceivers, gather, hook the socket; the SDP to send the server."""
        for kind in ("audio", "video"):
            self.pc.addTransceiver(kind, direction="recvonly")
        sdp = await local_offer(self.pc, self.address)
        self._hook_datagrams()
        return chromium_offer(sdp) if self.viewer == "chromium" else sdp

    async def play(self, name: str) -> None:
        """Connect, play ``name`` and return once the server says PLAYING; raises :class:`WcsError`."""
        await self.signaling.connect()
        sdp = await self.offer()
        msid = str(uuid.uuid1())
        self._t0 = time.monotonic()
        self.result.started = time.time()
        payload = stream_payload(msid, name, False, sdp)
        await self.signaling.negotiate("playStream", payload, self.pc, "PLAYING", on_answer=self._on_answer)
        self.result.t_playing = time.monotonic() - self._t0
        self.result.ok = True
        await self.start_feedback()

    def _on_answer(self, sdp: str, negotiated: str | None = None) -> None:
        """Payload types of the server's SDP; ``negotiated``: the SDP whose feedback applies (default ``sdp``)."""
        self._pt_kinds = payload_kinds(sdp)
        self._pt_kinds.update(dict.fromkeys(rtx_payload_types(sdp), "rtx"))
        for line in sdp.splitlines():
            if line.startswith("a=rtpmap:") and " VP8/" in line:
                self._vp8_pt = int(line[9:].split()[0])
        if self.viewer == "chromium":
            feedback = negotiated_feedback(negotiated or sdp)
            self.feedback = ChromiumFeedback(self.ssrcs, self.kind_of, feedback, self._last_sr)

    def _last_sr(self, ssrc: int) -> tuple[int, float] | None:
        """(LSR, seconds since) of the last sender report for ``ssrc`` aiortc's receivers saw."""
        for transceiver in self.pc.getTransceivers():
            receiver: Any = transceiver.receiver
            lsr = receiver._RTCRtpReceiver__lsr.get(ssrc)
            if lsr is not None:
                return lsr, max(0.0, time.time() - receiver._RTCRtpReceiver__lsr_time[ssrc])
        return None

    async def start_feedback(self, timeout: float = 10) -> None:
        """Start the Chromium viewer's RTCP once DTLS is up (nothing for a lean viewer)."""
        if self.feedback is None:
            return
        dtls = self.pc.getTransceivers()[0].receiver.transport
        deadline = time.monotonic() + timeout
        while dtls.state != "connected" or dtls._tx_srtp is None:
            if time.monotonic() > deadline:
                return
            await asyncio.sleep(0.05)
        self.feedback.keyframe_done = self._keyframe_done
        self.feedback.start(srtcp_sender(dtls))

    def _hook_datagrams(self) -> None:
        dtls = self.pc.getTransceivers()[0].receiver.transport  # BUNDLE: one transport for both kinds
        protocols: list[Any] = dtls.transport.iceGatherer._connection._protocols
        for protocol in protocols:
            protocol.datagram_received = self._make_receiver(dtls, protocol.datagram_received)

    def _make_receiver(self, dtls: Any, original: Receive) -> Receive:
        def datagram_received(data: bytes, addr: Any) -> None:
            srtp = dtls._rx_srtp
            if srtp is None or len(data) < 12 or not 127 < data[0] < 192 or 191 < data[1] < 209:
                original(data, addr)  # STUN, DTLS, SRTCP
                return
            try:
                rtp = srtp.unprotect(data)
            except pylibsrtp.Error:
                self.srtp_errors += 1
                return
            self._on_rtp(rtp)

        return datagram_received

    def _count(self, data: bytes) -> None:
        """Sequence accounting of one RTP packet (its clear header: SRTP or RTP)."""
        self.packets += 1
        seq = (data[2] << 8) | data[3]
        ssrc = int.from_bytes(data[8:12], "big")
        stats = self.ssrcs.get(ssrc)
        if stats is None:
            kind = self._pt_kinds.get(data[1] & 0x7F, "")
            if kind == "rtx":  # a retransmission (RFC 4588): repairs, not the stream's own packets
                if self.feedback is not None:
                    self.feedback.rtx_received += 1
                return
            stats = self.ssrcs[ssrc] = StreamCounts(seq)
            self.kind_of[ssrc] = kind
            if self.result.t_first_packet is None:
                self.result.t_first_packet = time.monotonic() - self._t0
        delta = stats.add(seq)
        feedback = self.feedback
        if feedback is not None and delta != 1:
            if delta:
                feedback.on_gap(ssrc, stats, delta)
            else:
                feedback.on_late(ssrc, stats, seq)

    def _on_rtp(self, rtp: bytes) -> None:
        self._count(rtp)
        if self._keyframe_done or (rtp[1] & 0x7F) != self._vp8_pt:
            return
        if self._keyframe_ts is None:
            if vp8_keyframe_start(rtp[rtp_header_length(rtp) :]):
                self._keyframe_ts = rtp[4:8]
            else:
                return
        if rtp[1] & 0x80 and rtp[4:8] == self._keyframe_ts:  # marker: last packet of the frame
            self._keyframe_done = True
            self.result.t_keyframe = time.monotonic() - self._t0
            if self.feedback is not None:
                self.feedback.keyframe_done = True

    def counters(self) -> tuple[int, int]:
        """(received, expected) packets so far, over every SSRC (received: first transmissions)."""
        received = sum(s.received - s.repaired for s in self.ssrcs.values())
        return received, sum(s.expected for s in self.ssrcs.values())

    def finish(self) -> PlayerResult:
        result = self.result
        result.packets = self.packets
        result.srtp_errors = self.srtp_errors
        result.lost = sum(s.lost for s in self.ssrcs.values())
        result.expected = sum(s.expected for s in self.ssrcs.values())
        result.per_ssrc = {
            str(k): {"received": s.received, "expected": s.expected, "lost": s.lost}
            for k, s in self.ssrcs.items()
        }
        return result

    async def close(self) -> None:
        if self.feedback is not None:
            await self.feedback.stop()
        await self.pc.close()
        await self.signaling.close()


class EdgePlayer(LeanPlayer):
    """A :class:`LeanPlayer` that asks again while the edge does not have the stream yet.

    One WebSocket session and one offer: each ``playStream`` gets a new mediaSessionId (a refused one
    brings no answer, so the peer connection still waits for one). Times are monotonic seconds.
    """

    def __init__(self, http: aiohttp.ClientSession, url: str, address: str, viewer: str = "lean") -> None:
        super().__init__(http, url, address, viewer)
        self.not_found = 0
        "``playStream`` requests the edge answered FAILED / Stream not found."
        self.first_sent_at: float | None = None
        self.accepted_at: float | None = None
        "When the ``playStream`` that was accepted was sent."
        self.playing_at: float | None = None
        self.keyframe = asyncio.Event()
        "Set on the first complete VP8 keyframe."

    async def play_when_there(self, name: str, retry: float, timeout: float) -> None:
        """Play ``name``, asking again every ``retry`` s while it is not found, for up to ``timeout`` s."""
        await self.signaling.connect()
        sdp = await self.offer()
        deadline = time.monotonic() + timeout
        while True:
            self._t0 = time.monotonic()
            self.result.started = time.time()
            if self.first_sent_at is None:
                self.first_sent_at = self._t0
            payload = stream_payload(str(uuid.uuid1()), name, False, sdp)
            try:
                await self.signaling.negotiate(
                    "playStream", payload, self.pc, "PLAYING", on_answer=self._on_answer
                )
                break
            except WcsError as exc:
                if NOT_FOUND not in str(exc) or time.monotonic() + retry > deadline:
                    raise
                self.not_found += 1
                await asyncio.sleep(retry)
        self.accepted_at = self._t0
        self.playing_at = time.monotonic()
        self.result.t_playing = self.playing_at - self._t0
        self.result.ok = True
        await self.start_feedback()

    def _on_rtp(self, rtp: bytes) -> None:
        super()._on_rtp(rtp)
        if self.result.t_keyframe is not None and not self.keyframe.is_set():
            self.keyframe.set()

    def _since_accepted(self, offset: float | None) -> float | None:
        return None if offset is None or self.accepted_at is None else self.accepted_at + offset

    @property
    def first_packet_at(self) -> float | None:
        return self._since_accepted(self.result.t_first_packet)

    @property
    def keyframe_at(self) -> float | None:
        return self._since_accepted(self.result.t_keyframe)

    def counts(self) -> tuple[int, int]:
        """(expected, received) RTP packets so far, over every SSRC."""
        received, expected = self.counters()
        return expected, received


def srtcp_sender(dtls: Any) -> Callable[[bytes], None]:
    """Synchronous RTCP sending on a connected aiortc DTLS transport: SRTCP-protect, ``sendto`` on the
    nominated ICE pair (aiortc's own ``_send_rtp`` is a coroutine, and one more task per packet)."""
    pair = dtls.transport._connection._nominated[1]
    sendto, addr, protect = pair.protocol.transport.sendto, pair.remote_addr, dtls._tx_srtp.protect_rtcp

    def send(data: bytes) -> None:
        sendto(protect(data), addr)

    return send


class Closable(Protocol):
    async def close(self) -> None: ...


async def close_all(clients: Sequence[Closable], timeout: float = 10) -> None:
    """Close every client at once, waiting at most ``timeout`` seconds."""
    if clients:
        await asyncio.wait([asyncio.ensure_future(c.close()) for c in clients], timeout=timeout)
