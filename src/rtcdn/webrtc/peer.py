"""WebRTC ends of a Stream: :class:`WebRtcPublisher` (media in) and :class:`WebRtcPlayer` (media out).

Each wraps one aiortc ``RTCPeerConnection`` used only for SDP, ICE and DTLS-SRTP; RTP goes
through the hooks in :mod:`rtcdn.webrtc._aiortc`. Neither knows about signaling: the WCS session
(or, later, a relay agent) gives them an SDP offer and gets an answer back.

Lifecycle of both: ``answer()`` once → ``wait_connected()`` → attached to a Stream →
``close()`` once (idempotent); a closed peer is never reused.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCBundlePolicy, RTCConfiguration, RTCSessionDescription
from aiortc.exceptions import InvalidAccessError, InvalidStateError, OperationError
from aiortc.rtcrtpparameters import RTCRtpCodecCapability, RTCRtpCodecParameters
from aiortc.sdp import candidate_from_sdp

from ..rtp import RtpRewriter, RtpSink, TrackInfo, extension_id_map
from ..stream import (
    BadDescription,
    ConnectTimeout,
    DtlsFailed,
    EndReason,
    FrameSink,
    NoCommonCodecs,
    Stream,
)
from . import _aiortc, _aiortc_ingest, _aiortc_lean, _rtcp_in
from ._aiortc import PortRange
from ._aiortc import WebRtcCounters as WebRtcCounters
from ._aiortc_ingest import IngestTrack, OnRtp, OnSenderReport
from ._aiortc_lean import EgressState, SenderReports

logger = logging.getLogger(__name__)

_CODEC_NAMES = {
    "opus": "audio/opus",
    "alaw": "audio/PCMA",
    "pcma": "audio/PCMA",
    "ulaw": "audio/PCMU",
    "pcmu": "audio/PCMU",
    "g722": "audio/G722",
    "vp8": "video/VP8",
    "vp9": "video/VP9",
    "h264": "video/H264",
}
KNOWN_CODECS = frozenset(_CODEC_NAMES)


@dataclass
class MediaConfig:
    """How peers gather candidates and which codecs publishers may use."""

    addresses: Sequence[str]
    ports: PortRange
    public_ip: str | None = None
    codecs: Sequence[str] = ("opus", "alaw", "ulaw", "g722", "vp8", "h264", "vp9")
    "Preference order, WCS names (``codecs=`` in flashphoner.properties); unknown names are ignored."
    connect_timeout: float = 15.0
    native_send: bool = True
    "Players' RTP through :mod:`._fastsend` when it is built (``webrtc_native_send``)."
    counters: WebRtcCounters = field(default_factory=WebRtcCounters)
    "Drops and connect failures of every peer made with this config (read by the metrics)."
    peers: set[_Peer] = field(default_factory=set)
    "Every open peer, for leak checks and shutdown."

    def preferred_mimes(self) -> list[str]:
        return [_CODEC_NAMES[c] for c in self.codecs if c in _CODEC_NAMES]


def _sink_counters(sink: RtpSink) -> tuple[int, int]:
    return sink.packets, sink.octets


def _is_rtx(codec: RTCRtpCodecParameters) -> bool:
    return bool(codec.mimeType.lower().endswith("/rtx"))


def reachable(address: str, local: Sequence[str]) -> bool:
    """Can a local candidate on ``local`` reach a remote candidate on ``address``? Loopback only
    talks to loopback, and only within one IP family; names (mDNS) are not resolved. Checks to
    candidates that can never work are never sent (and a loopback-only test never leaves the host)."""
    try:
        remote = ipaddress.ip_address(address)
    except ValueError:
        return False
    for text in local:
        try:
            mine = ipaddress.ip_address(text)
        except ValueError:
            continue
        if mine.version == remote.version and mine.is_loopback == remote.is_loopback:
            return True
    return False


def _usable_candidates(sdp: str, local: Sequence[str]) -> str:
    """``sdp`` without the ``a=candidate`` lines that :func:`reachable` rules out."""
    lines = sdp.splitlines(keepends=True)
    kept = [ln for ln in lines if not ln.startswith("a=candidate:") or _candidate_reachable(ln, local)]
    return "".join(kept)


def _candidate_reachable(line: str, local: Sequence[str]) -> bool:
    fields = line.split()
    return len(fields) > 4 and reachable(fields[4], local)


def _check_offer(sdp: object, what: str = "offer") -> None:
    if not isinstance(sdp, str) or not sdp.lstrip().startswith("v=") or "\nm=" not in sdp:
        raise BadDescription(f"SDP {what} is missing or not an SDP")


class _Peer:
    def __init__(self, media: MediaConfig, label: str, offerer: bool = False) -> None:
        _aiortc.register_codecs()
        self.label = label
        self._media = media
        # An offerer (a relay) bundles audio and video on one transport from the start. An
        # answerer must not: aiortc would drop the transport of the first transceiver it made
        # when the offer's BUNDLE group starts with the other kind.
        policy = RTCBundlePolicy.MAX_BUNDLE if offerer else RTCBundlePolicy.BALANCED
        self.pc = _aiortc_lean.new_peer_connection(RTCConfiguration(iceServers=[], bundlePolicy=policy))
        self._remote_ufrag: str | None = None
        self._was_connected = False
        self._ended = False
        self._settled: asyncio.Future[None] | None = None
        "What :meth:`wait_connected` waits on, while it waits: connected, failed or closed."
        self._remote_closed = False
        self.on_lost: Callable[[bool], None] | None = None
        """Called once if an established connection ends: True when the remote closed it cleanly
        (DTLS close_notify), False when ICE consent checks failed."""
        self.closed = False
        media.peers.add(self)
        self.pc.on("connectionstatechange", self._on_state)

    def _on_state(self) -> None:
        state = self.pc.connectionState
        logger.debug("%s: connection %s", self.label, state)
        if state == "connected":
            self._was_connected = True
            self._settle()
            _aiortc_lean.release_ice_checks(self.pc)
        elif state in ("failed", "closed"):
            self._ended = True
            self._settle()
            if self._was_connected and not self.closed and self.on_lost is not None:
                self.on_lost(self._remote_closed)

    def _on_dtls_state(self) -> None:
        # DTLS closing while ICE is still up means the remote sent close_notify: a clean stop;
        # otherwise ICE consent checks failed first
        dtls = self._dtls()
        if dtls.state == "closed" and dtls.transport.state not in ("failed", "closed"):
            self._remote_closed = True

    async def _negotiate(self, offer_sdp: str, prepare: Callable[[], None] | None = None) -> str:
        """Answerer: apply the offer, let ``prepare`` narrow the codecs, return the answer."""
        await self._set_remote(offer_sdp, "offer")
        if prepare is not None:
            prepare()
        return await self._set_local()

    async def _create_offer(self) -> str:
        """Offerer (relays): gather and return the offer."""
        return await self._set_local()

    async def _apply_answer(self, answer_sdp: str) -> None:
        await self._set_remote(answer_sdp, "answer")

    async def _set_remote(self, sdp: str, kind: str) -> None:
        _check_offer(sdp, kind)
        try:
            sdp = _usable_candidates(sdp, self._media.addresses)
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=kind))
        except OperationError as exc:
            raise NoCommonCodecs(str(exc)) from exc
        except (ValueError, InvalidAccessError, InvalidStateError, KeyError, IndexError) as exc:
            raise BadDescription(f"bad SDP {kind}: {exc}") from exc

    async def _set_local(self) -> str:
        """Create the offer or answer, gather candidates (inline in the SDP), watch DTLS."""
        _aiortc.patch_gathering(self.pc, self._media.addresses, self._media.ports, self._media.public_ip)
        answering = self.pc.signalingState == "have-remote-offer"
        description = await (self.pc.createAnswer() if answering else self.pc.createOffer())
        await self.pc.setLocalDescription(description)
        self._dtls().on("statechange", self._on_dtls_state)
        return str(self.pc.localDescription.sdp)

    def _settle(self) -> None:
        if self._settled is not None and not self._settled.done():
            self._settled.set_result(None)

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Wait for ICE + DTLS; :class:`ConnectTimeout` or :class:`DtlsFailed` on failure."""
        timeout = self._media.connect_timeout if timeout is None else timeout
        if not (self._was_connected or self._ended):
            if self._settled is None or self._settled.done():
                self._settled = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait({self._settled}, timeout=timeout)
            finally:
                self._settled = None
        if self._was_connected:
            return
        counted = not self.closed  # closed by us while connecting (its client left): no failure
        if self.pc.iceConnectionState == "completed":
            self._media.counters.dtls_failures += counted
            raise DtlsFailed(f"{self.label}: DTLS handshake failed")
        self._media.counters.ice_failures += counted
        raise ConnectTimeout(f"{self.label}: ICE did not connect within {timeout:.0f} s")

    async def add_remote_candidates(self, sdpfrag: str) -> int:
        """Trickled remote candidates (``a=candidate:`` lines of an RFC 8840 SDP fragment); returns
        how many were taken. Unparsable lines are dropped, as RFC 9725 asks."""
        added = 0
        for line in sdpfrag.splitlines():
            line = line.strip()
            if line == "a=end-of-candidates":
                await _aiortc.end_of_candidates(self.pc)
            elif line.startswith("a=candidate:") and _candidate_reachable(line, self._media.addresses):
                try:
                    candidate = candidate_from_sdp(line[2:].split(":", 1)[1])
                except (ValueError, IndexError):
                    continue
                added += await _aiortc.add_remote_candidate(self.pc, candidate)
        return added

    def remote_ice_ufrag(self) -> str | None:
        if self._remote_ufrag is not None:
            return self._remote_ufrag
        description = self.pc.remoteDescription
        if description is None:
            return None
        for line in str(description.sdp).splitlines():
            if line.startswith("a=ice-ufrag:"):
                self._remote_ufrag = line.split(":", 1)[1].strip()
                return self._remote_ufrag
        return None

    def _dtls(self) -> Any:
        return self.pc.getTransceivers()[0].receiver.transport

    def _on_close(self) -> None:
        """Stop what the subclass runs beside aiortc (before the peer connection closes)."""

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._on_close()
        try:
            await self.pc.close()
        finally:
            self._media.peers.discard(self)


class WebRtcPublisher(_Peer):
    """Receives a publisher's media and hands raw RTP to ``on_rtp`` (a Stream's ``forward``).
    ``offerer=True`` for a pull relay, which makes the offer (:meth:`offer`, :meth:`accept`)."""

    def __init__(self, media: MediaConfig, label: str, offerer: bool = False) -> None:
        super().__init__(media, label, offerer)
        self.tracks: list[TrackInfo] = []
        self._request_keyframe: Callable[[], None] = lambda: None
        self.on_end: Callable[[EndReason], None] | None = None

    async def answer(self, offer_sdp: str, on_rtp: OnRtp, on_sr: OnSenderReport | None = None) -> str:
        """Answer a sendonly offer with one codec per kind (the best by preference)."""
        sdp = await self._negotiate(offer_sdp, self._narrow_codecs)
        self._start_ingest(on_rtp, on_sr)
        return sdp

    async def offer(self) -> str:
        """A recvonly offer (rtcdn pulls from another server), codecs in preference order."""
        preferred = self._media.preferred_mimes()
        for kind in ("audio", "video"):
            transceiver = self.pc.addTransceiver(kind, direction="recvonly")
            _aiortc.prefer_codecs(transceiver, _aiortc.codec_capabilities(kind, preferred))
        return await self._create_offer()

    async def accept(self, answer_sdp: str, on_rtp: OnRtp, on_sr: OnSenderReport | None = None) -> None:
        """Apply the remote's answer to :meth:`offer`; the answer's first codec is what comes."""
        await self._apply_answer(answer_sdp)
        self._start_ingest(on_rtp, on_sr)

    def _narrow_codecs(self) -> None:
        preferred = self._media.preferred_mimes()
        for transceiver in self.pc.getTransceivers():
            negotiated = _aiortc.negotiated_codecs(transceiver)
            usable = [c for c in negotiated if not _is_rtx(c) and c.mimeType in preferred]
            if not usable:
                raise NoCommonCodecs(f"no usable {transceiver.kind} codec in the offer")
            best = min(usable, key=lambda c: preferred.index(c.mimeType))
            rtx = [c for c in negotiated if _is_rtx(c) and c.parameters.get("apt") == best.payloadType]
            _aiortc.set_negotiated_codecs(transceiver, [best, *rtx[:1]])

    def _start_ingest(self, on_rtp: OnRtp, on_sr: OnSenderReport | None) -> None:
        payload_types: dict[int, tuple[IngestTrack, int | None]] = {}
        for transceiver in self.pc.getTransceivers():
            negotiated = _aiortc.negotiated_codecs(transceiver)
            media = [c for c in negotiated if not _is_rtx(c)]
            if not media or transceiver.currentDirection in ("sendonly", "inactive"):
                continue
            best = media[0]
            best_pt = int(best.payloadType or 0)
            track = IngestTrack(transceiver.kind, transceiver.receiver, [best])
            payload_types[best_pt] = (track, None)
            for codec in negotiated:
                if _is_rtx(codec) and codec.parameters.get("apt") == best_pt:
                    payload_types[int(codec.payloadType or 0)] = (track, best_pt)
            self.tracks.append(
                TrackInfo(
                    kind=transceiver.kind,
                    mime_type=best.mimeType,
                    clock_rate=best.clockRate,
                    payload_type=best_pt,
                    channels=best.channels,
                    parameters={k: v for k, v in best.parameters.items() if v is not None},
                    extensions=_aiortc.negotiated_extensions(transceiver),
                )
            )
            _aiortc_ingest.stop_decoder_on_receive(transceiver.receiver)
            _aiortc_lean.ingest_receiver(transceiver.receiver)
            if on_sr is not None:
                _aiortc_ingest.watch_sender_reports(transceiver.receiver, transceiver.kind, on_sr)
        if not self.tracks:
            raise NoCommonCodecs("no audio or video to receive")
        self._request_keyframe = _aiortc_ingest.install_ingest(self._dtls(), payload_types, on_rtp)

    def request_keyframe(self) -> None:
        self._request_keyframe()

    def on_stream_end(self, reason: EndReason) -> None:
        if self.on_end is not None:
            self.on_end(reason)


class WebRtcPlayer(_Peer):
    """Sends a Stream's RTP to one player; implements :class:`rtcdn.stream.Player`."""

    def __init__(self, media: MediaConfig, label: str, offerer: bool = False) -> None:
        super().__init__(media, label, offerer)
        self._sinks: dict[str, RtpSink] = {}
        self._plans: dict[str, tuple[Any, TrackInfo, dict[str, int], EgressState]] = {}
        self._reports: SenderReports | None = None
        self._rtcp: _rtcp_in.RtcpInput | None = None
        self.stream: Stream | None = None
        "The stream it plays, set by :meth:`attach` (NACKs, PLIs and sender reports go there)."
        self.on_end: Callable[[EndReason], None] | None = None
        self.on_event: Callable[[dict[str, object]], None] | None = None

    async def answer(self, offer_sdp: str, tracks: Mapping[str, TrackInfo]) -> str:
        """Answer a recvonly offer with exactly the publisher's codecs."""
        _check_offer(offer_sdp)
        offered = [line.split()[0][2:] for line in offer_sdp.splitlines() if line.startswith("m=")]
        self._plan({kind: tracks[kind] for kind in dict.fromkeys(offered) if kind in tracks})
        sdp = await self._negotiate(offer_sdp)
        self._check_negotiated()
        return sdp

    async def offer(self, tracks: Mapping[str, TrackInfo]) -> str:
        """A sendonly offer of the stream's codecs (rtcdn pushes to another server)."""
        self._plan(tracks)
        return await self._create_offer()

    async def accept(self, answer_sdp: str) -> None:
        await self._apply_answer(answer_sdp)
        self._check_negotiated()

    def _plan(self, tracks: Mapping[str, TrackInfo]) -> None:
        stream_id = f"rtcdn-{uuid.uuid4().hex[:12]}"
        for kind, info in tracks.items():
            transceiver = self.pc.addTransceiver(kind, direction="sendonly")
            _aiortc_lean.never_receives(transceiver.receiver)
            capability = RTCRtpCodecCapability(
                mimeType=info.mime_type,
                clockRate=info.clock_rate,
                channels=info.channels,
                parameters=dict(info.parameters),
            )
            _aiortc.prefer_codecs(transceiver, [_aiortc.table_codec(capability)])
            state = EgressState()
            state.clock_rate = info.clock_rate
            self._plans[kind] = (transceiver, info, {}, state)
            _aiortc_lean.install_egress(
                transceiver.sender,
                stream_id,
                state,
                on_nack=functools.partial(self._on_nack, kind),
                on_keyframe_request=self._on_keyframe_request,
            )
        if not self._plans:
            raise NoCommonCodecs("the offer asks for no kind the stream has")

    def _check_negotiated(self) -> None:
        for transceiver, info, ext_ids, _ in self._plans.values():
            codecs = _aiortc.negotiated_codecs(transceiver)
            if not codecs or codecs[0].mimeType.lower() != info.mime_type.lower():
                raise NoCommonCodecs(f"the player cannot take {info.mime_type}")
            ext_ids.update({uri: i for i, uri in _aiortc.negotiated_extensions(transceiver).items()})

    def attach(self, stream: Stream) -> None:
        """Once connected: one sink per track on the nominated ICE pair, sender reports from one
        timer, the negotiation state released, then join ``stream``."""
        self._build_sinks()
        self.remote_ice_ufrag()  # kept for WHIP's ICE restart check
        _aiortc_lean.release_descriptions(self.pc)
        senders = [(transceiver.sender, state) for transceiver, _, _, state in self._plans.values()]
        self._reports = SenderReports(self._dtls(), senders)
        self._reports.start()
        feedback = {
            _aiortc.sender_ssrc(transceiver.sender): _rtcp_in.Feedback(
                functools.partial(self._on_nack, kind), self._on_keyframe_request
            )
            for kind, (transceiver, _, _, _) in self._plans.items()
        }
        self._rtcp = _rtcp_in.install(self._dtls(), feedback)
        self.stream = stream
        stream.add_player(self)

    def _on_close(self) -> None:
        if self._reports is not None:
            self._reports.stop()

    def _build_sinks(self) -> None:
        dtls = self._dtls()
        for kind, (transceiver, info, ext_ids, state) in self._plans.items():
            rewriter = RtpRewriter(
                int(_aiortc.negotiated_codecs(transceiver)[0].payloadType or 0),
                extension_id_map(info.extensions, ext_ids),
            )
            ssrc = _aiortc.sender_ssrc(transceiver.sender)
            sink = RtpSink(
                kind,
                ssrc,
                rewriter,
                _aiortc.fast_rtp_transmit(dtls, ssrc, self._media.counters, self._media.native_send),
            )
            state.counters = functools.partial(_sink_counters, sink)
            state.last_rtp_time = functools.partial(self._last_rtp_time, kind)
            self._sinks[kind] = sink

    def _last_rtp_time(self, kind: str) -> tuple[int, float] | None:
        stream = self.stream
        if stream is None:
            return None
        fan = stream.tracks.get(kind)
        return fan.last_rtp_time if fan is not None else None

    def sinks(self) -> Mapping[str, RtpSink]:
        return self._sinks

    def frame_sinks(self) -> Mapping[str, FrameSink]:
        return {}

    def _on_nack(self, kind: str, seqs: list[int]) -> None:
        sink = self._sinks.get(kind)
        if self.stream is not None and sink is not None:
            self.stream.retransmit(sink, seqs)

    def _on_keyframe_request(self) -> None:
        if self.stream is not None:
            self.stream.request_keyframe()

    def on_stream_end(self, reason: EndReason) -> None:
        self.stream = None
        if self.on_end is not None:
            self.on_end(reason)

    def on_stream_event(self, event: dict[str, object]) -> None:
        if self.on_event is not None:
            self.on_event(event)
