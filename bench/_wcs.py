"""Lean WCS WebSDK protocol clients for benchmarks: a publisher and a counting player.

Both speak the WebSocket protocol through rtcdn's own client, :class:`rtcdn.wcs.client.WcsAgent`, as
``tests/wcs_client.py`` does (``connection`` → ``getUserData``, ``publishStream``/``playStream`` with an
SDP offer → ``setRemoteSDP`` answer → ``notifyStreamStatusEvent``), over aiortc peers that gather one
host candidate on a chosen address.

:class:`LeanPlayer` does not decode: it takes over its ICE socket's ``datagram_received`` and, once
DTLS-SRTP is up, unprotects each SRTP packet with libsrtp and only looks at the RTP header (sequence
gaps per SSRC) and, until the first one is found, at the VP8 payload descriptor for a keyframe.
STUN, DTLS and SRTCP still go the usual aiortc way.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pylibsrtp
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription

from _media import ClipTrack
from rtcdn.wcs.client import AgentError, WcsAgent
from rtcdn.wcs.messages import stream_payload
from rtcdn.webrtc._aiortc import PortRange, patch_gathering

WcsError = AgentError
"The server refused or failed a request, or could not be reached (the client's :class:`AgentError`)."


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


async def _local_offer(pc: RTCPeerConnection, address: str) -> str:
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

    async def publish(self, name: str, tracks: list[ClipTrack]) -> None:
        await self.signaling.connect()
        self.tracks = tracks
        for track in tracks:
            transceiver = self.pc.addTransceiver(track, direction="sendonly")
            codecs = [
                c
                for c in RTCRtpSender.getCapabilities(track.kind).codecs
                if c.mimeType in ("video/VP8", "audio/opus")
            ]
            transceiver.setCodecPreferences(codecs)
            transceiver.sender._send_keyframe = track.request_keyframe  # type: ignore[method-assign]
        sdp = await _local_offer(self.pc, self.address)
        kinds = {track.kind for track in tracks}
        payload = stream_payload(str(uuid.uuid1()), name, True, sdp, "audio" in kinds, "video" in kinds)
        await self.signaling.negotiate("publishStream", payload, self.pc, "PUBLISHING")

    async def close(self) -> None:
        await self.pc.close()
        await self.signaling.close()


class _SsrcStats:
    """Sequence accounting for one SSRC: packets received against the extended sequence range."""

    __slots__ = ("first", "highest", "received")

    def __init__(self, seq: int) -> None:
        self.first = seq
        self.highest = seq  # extended (with wrap-around cycles)
        self.received = 0

    def add(self, seq: int) -> None:
        self.received += 1
        delta = (seq - self.highest) & 0xFFFF
        if 0 < delta < 0x8000:
            self.highest += delta

    @property
    def expected(self) -> int:
        return self.highest - self.first + 1

    @property
    def lost(self) -> int:
        return max(0, self.expected - self.received)


def vp8_keyframe_start(payload: bytes) -> bool:
    """Whether an RTP payload starts a VP8 keyframe (RFC 7741 payload descriptor + RFC 6386 P bit)."""
    if len(payload) < 2:
        return False
    b0 = payload[0]
    if not b0 & 0x10 or b0 & 0x07:  # S (start of partition) and partition index 0
        return False
    off = 1
    if b0 & 0x80:  # X: extension byte follows
        ext = payload[1]
        off = 2
        if ext & 0x80:  # I: picture id, 7 or 15 bits
            off += 2 if payload[off] & 0x80 else 1
        if ext & 0x40:  # L: TL0PICIDX
            off += 1
        if ext & 0x30:  # T or K: TID/Y/KEYIDX
            off += 1
    return off < len(payload) and not payload[off] & 0x01


def _rtp_header_length(data: bytes) -> int:
    off = 12 + 4 * (data[0] & 0x0F)
    if data[0] & 0x10:
        off += 4 + 4 * ((data[off + 2] << 8) | data[off + 3])
    return off


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


class LeanPlayer:
    """A receive-only player that counts SRTP packets instead of decoding them."""

    def __init__(self, http: aiohttp.ClientSession, url: str, address: str) -> None:
        self.signaling = Signaling(http, url)
        self.address = address
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.packets = 0
        self.srtp_errors = 0
        self.ssrcs: dict[int, _SsrcStats] = {}
        self.result = PlayerResult(ok=False)
        self._t0 = 0.0
        self._vp8_pt: int | None = None
        self._keyframe_ts: bytes | None = None  # RTP timestamp of the first keyframe, while incomplete
        self._keyframe_done = False

    async def play(self, name: str) -> None:
        """Connect, play ``name`` and return once the server says PLAYING; raises :class:`WcsError`."""
        await self.signaling.connect()
        for kind in ("audio", "video"):
            self.pc.addTransceiver(kind, direction="recvonly")
        sdp = await _local_offer(self.pc, self.address)
        self._hook_datagrams()
        msid = str(uuid.uuid1())
        self._t0 = time.monotonic()
        self.result.started = time.time()
        payload = stream_payload(msid, name, False, sdp)
        await self.signaling.negotiate("playStream", payload, self.pc, "PLAYING", on_answer=self._on_answer)
        self.result.t_playing = time.monotonic() - self._t0
        self.result.ok = True

    def _on_answer(self, sdp: str) -> None:
        for line in sdp.splitlines():
            if line.startswith("a=rtpmap:") and " VP8/" in line:
                self._vp8_pt = int(line[9:].split()[0])

    def _hook_datagrams(self) -> None:
        dtls = self.pc.getTransceivers()[0].receiver.transport  # BUNDLE: one transport for both kinds
        for protocol in dtls.transport.iceGatherer._connection._protocols:
            protocol.datagram_received = self._make_receiver(dtls, protocol.datagram_received)  # type: ignore

    def _make_receiver(
        self, dtls: Any, original: Callable[[bytes, Any], None]
    ) -> Callable[[bytes, Any], None]:
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

    def _on_rtp(self, rtp: bytes) -> None:
        self.packets += 1
        seq = (rtp[2] << 8) | rtp[3]
        ssrc = int.from_bytes(rtp[8:12], "big")
        stats = self.ssrcs.get(ssrc)
        if stats is None:
            stats = self.ssrcs[ssrc] = _SsrcStats(seq)
            if self.result.t_first_packet is None:
                self.result.t_first_packet = time.monotonic() - self._t0
        stats.add(seq)
        if self._keyframe_done or (rtp[1] & 0x7F) != self._vp8_pt:
            return
        if self._keyframe_ts is None:
            if vp8_keyframe_start(rtp[_rtp_header_length(rtp) :]):
                self._keyframe_ts = rtp[4:8]
            else:
                return
        if rtp[1] & 0x80 and rtp[4:8] == self._keyframe_ts:  # marker: last packet of the frame
            self._keyframe_done = True
            self.result.t_keyframe = time.monotonic() - self._t0

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
        await self.pc.close()
        await self.signaling.close()
