# mypy: disable-error-code="attr-defined,method-assign"
"""The rest of the aiortc adapter (:mod:`._aiortc`): aiortc's objects cut down to what a passthrough
peer uses. aiortc builds a peer connection for an endpoint that encodes and decodes; per player
that cost ~345 KiB of RSS (``bench/viewer_memory.py``), most of it for nothing rtcdn does:

* :func:`new_peer_connection` gives every peer one shared certificate (aiortc makes an EC key and
  a certificate per peer) and :class:`_SharedCertificate` one shared DTLS ``SSL.Context`` (aiortc
  makes one per DTLS start) that frees OpenSSL's record buffers while a connection is idle
  (``MODE_RELEASE_BUFFERS``) and keeps no session cache;
* :func:`never_receives` empties the receiver of a send-only transceiver (a player's): no jitter
  buffer, NACK generator, bitrate estimator (1000 rate buckets), decoder queue or events;
  :func:`ingest_receiver` drops the same receive pipeline from a publisher's receivers, whose RTP
  :func:`._aiortc_ingest.install_ingest` takes before aiortc would parse it;
* :func:`install_egress` makes an ``RTCRtpSender`` a passthrough sender without tasks or events:
  no encoder loop, and :class:`SenderReports` sends every sender's reports of a peer from one timer
  (aiortc: an RTP and an RTCP task per sender);
* :func:`release_descriptions` drops the parsed SDP of a connected player, and
  :func:`release_ice_checks` what aioice needs only until ICE completes.

``tests/webrtc/test_aiortc_lean.py`` checks the private names used here and what each cut leaves.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from typing import Any

from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpReceiver, RTCRtpSender
from aiortc import clock as aiortc_clock
from aiortc import rtcpeerconnection as aiortc_pc
from aiortc.rtcdtlstransport import RTCCertificate, RTCDtlsFingerprint
from aiortc.rtp import RtcpSdesPacket, RtcpSenderInfo, RtcpSourceInfo, RtcpSrPacket
from OpenSSL import SSL

from ._aiortc import fast_rtcp_transmit

logger = logging.getLogger(__name__)

# --- one certificate, one DTLS context -----------------------------------------------------------

CERTIFICATE_LIFETIME = 24 * 3600.0
"Seconds a shared certificate is handed to new peers (aiortc's are valid 30 days); then a new one."


class _SharedCertificate(RTCCertificate):
    """An aiortc certificate used by every peer: its DTLS context is built once, and its
    fingerprints are computed once."""

    def __init__(self, key: Any, cert: Any) -> None:
        super().__init__(key, cert)
        self.created = time.monotonic()
        self._contexts: dict[tuple[bytes, ...], SSL.Context] = {}
        self._fingerprints: list[RTCDtlsFingerprint] | None = None

    def getFingerprints(self) -> list[RTCDtlsFingerprint]:
        if self._fingerprints is None:
            self._fingerprints = super().getFingerprints()
        return [RTCDtlsFingerprint(f.algorithm, f.value) for f in self._fingerprints]

    def _create_ssl_context(self, srtp_profiles: Any) -> SSL.Context:
        key = tuple(p.openssl_profile for p in srtp_profiles)
        context = self._contexts.get(key)
        if context is None:
            context = super()._create_ssl_context(srtp_profiles)
            # shared by every connection: no session cache growing with each handshake (a context
            # per peer took its cache with it); record buffers only while a record is in flight
            context.set_session_cache_mode(SSL.SESS_CACHE_OFF)
            context.set_mode(SSL.MODE_RELEASE_BUFFERS)
            self._contexts[key] = context
        return context


_certificate: _SharedCertificate | None = None


def shared_certificate() -> _SharedCertificate:
    """The process's certificate for new peers, renewed every :data:`CERTIFICATE_LIFETIME`."""
    global _certificate
    if _certificate is None or time.monotonic() - _certificate.created > CERTIFICATE_LIFETIME:
        _certificate = _SharedCertificate.generateCertificate()
    return _certificate


class _Issuer:
    """Stands in for ``RTCCertificate`` while aiortc's ``RTCPeerConnection.__init__`` runs."""

    def __init__(self, certificate: RTCCertificate) -> None:
        self._certificate = certificate

    def generateCertificate(self) -> RTCCertificate:
        return self._certificate


def new_peer_connection(configuration: RTCConfiguration) -> RTCPeerConnection:
    """An ``RTCPeerConnection`` using :func:`shared_certificate` (none generated for it).

    aiortc's constructor calls ``RTCCertificate.generateCertificate()`` from its module; that name
    is swapped for the duration of the (synchronous) call only."""
    original = aiortc_pc.RTCCertificate
    aiortc_pc.RTCCertificate = _Issuer(shared_certificate())  # type: ignore[assignment]
    try:
        return RTCPeerConnection(configuration)
    finally:
        aiortc_pc.RTCCertificate = original


# --- receivers that do not receive ---------------------------------------------------------------


def _set_event() -> asyncio.Event:
    event = asyncio.Event()
    event.set()
    return event


_DONE = _set_event()
"""Stands in for the started/exited events of senders and receivers whose tasks never run: waiting
on a set event returns at once, on any loop (it never binds one)."""


class _Finished:
    """Stands in for a sender's finished RTP/RTCP task (``stop()`` only cancels it)."""

    def cancel(self, msg: object = None) -> bool:
        return False


_FINISHED = _Finished()


async def _ignore(*args: object, **kwargs: object) -> None:
    return None


def ingest_receiver(receiver: RTCRtpReceiver) -> None:
    """A publisher's receiver, whose RTP :func:`._aiortc_ingest.install_ingest` takes at the DTLS transport:
    no jitter buffer, NACK generator or bitrate estimator (rtcdn keeps its own), and a
    ``_handle_rtp_packet`` that would ignore RTP (only they used them). RTCP stays aiortc's."""
    receiver._RTCRtpReceiver__jitter_buffer = None
    receiver._RTCRtpReceiver__nack_generator = None
    receiver._RTCRtpReceiver__remote_bitrate_estimator = None
    receiver._handle_rtp_packet = _ignore


def never_receives(receiver: RTCRtpReceiver) -> None:
    """The receiver of a send-only transceiver (a player's): aiortc never starts it, so its whole
    receive side goes: the pipeline of :func:`ingest_receiver`, the decoder queue and error flag,
    its RTCP events; ``receive()`` does nothing (even for a remote answering ``sendrecv``)."""
    ingest_receiver(receiver)
    receiver._RTCRtpReceiver__decoder_queue = None
    receiver._RTCRtpReceiver__decoder_error = None
    receiver._RTCRtpReceiver__rtcp_started = _DONE
    receiver._RTCRtpReceiver__rtcp_exited = _DONE
    receiver.receive = _ignore


# --- passthrough senders --------------------------------------------------------------------------


class EgressState:
    """What a passthrough sender needs for its sender reports."""

    def __init__(self) -> None:
        self.clock_rate = 90000
        self.last_rtp_time: Callable[[], tuple[int, float] | None] = lambda: None
        self.counters: Callable[[], tuple[int, int]] = lambda: (0, 0)


def install_egress(
    sender: RTCRtpSender,
    stream_id: str,
    state: EgressState,
    on_nack: Callable[[list[int]], None],
    on_keyframe_request: Callable[[], None],
) -> None:
    """Make ``sender`` a passthrough sender: no track/encoder loop, no RTCP task (its reports come
    from :class:`SenderReports`), feedback to callbacks; its four events and two tasks are
    stand-ins, so ``send()`` leaves nothing running and ``stop()`` waits for nothing."""
    sender._stream_id = stream_id
    for name in ("rtp_started", "rtp_exited", "rtcp_started", "rtcp_exited"):
        setattr(sender, f"_RTCRtpSender__{name}", _DONE)
    original_send = sender.send

    async def send(parameters: Any) -> None:
        await original_send(parameters)  # registers with the transport, creates both tasks ...
        sender._RTCRtpSender__rtp_task = _FINISHED  # ... which return at their first step
        sender._RTCRtpSender__rtcp_task = _FINISHED

    async def retransmit(sequence_number: int) -> None:
        on_nack([sequence_number])

    sender.send = send
    sender._run_rtp = _ignore
    sender._run_rtcp = _ignore
    sender._retransmit = retransmit
    sender._send_keyframe = on_keyframe_request


def sender_report(sender: RTCRtpSender, state: EgressState) -> bytes | None:
    """SR (+ SDES CNAME) of a passthrough sender, from the stream's last RTP time; None before any."""
    last = state.last_rtp_time()
    if last is None:
        return None
    rtp_ts, wall = last
    rtp_now = (rtp_ts + int((time.time() - wall) * state.clock_rate)) & 0xFFFFFFFF
    packets, octets = state.counters()
    report = bytes(
        RtcpSrPacket(
            ssrc=sender._ssrc,
            sender_info=RtcpSenderInfo(
                ntp_timestamp=aiortc_clock.current_ntp_time(),
                rtp_timestamp=rtp_now,
                packet_count=packets & 0xFFFFFFFF,
                octet_count=octets & 0xFFFFFFFF,
            ),
        )
    )
    cname: str | None = sender._RTCRtpSender__cname
    if cname:
        report += bytes(
            RtcpSdesPacket(chunks=[RtcpSourceInfo(ssrc=sender._ssrc, items=[(1, cname.encode())])])
        )
    return report


class SenderReports:
    """The RTCP sender reports of one peer's passthrough senders, every 0.5-1.5 s (aiortc's RTCP
    interval) from a single timer, sent synchronously on the nominated pair. Stops by itself once
    the DTLS transport is closed or failed, or on :meth:`stop`."""

    def __init__(self, dtls: Any, senders: list[tuple[RTCRtpSender, EgressState]]) -> None:
        self._dtls = dtls
        self._senders = senders
        self._send: Callable[[bytes], None] | None = None
        self._timer: asyncio.TimerHandle | None = None

    @property
    def running(self) -> bool:
        return self._timer is not None

    def start(self) -> None:
        if self._timer is None:
            self._schedule()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _schedule(self) -> None:
        self._timer = asyncio.get_running_loop().call_later(0.5 + random.random(), self._tick)

    def _tick(self) -> None:
        self._timer = None
        state = self._dtls.state
        if state in ("closed", "failed"):
            return
        if state == "connected":
            try:
                self.send_now()
            except Exception:  # a report never takes the timer down
                logger.exception("sender report failed")
        self._schedule()

    def send_now(self) -> None:
        if self._send is None:
            try:
                self._send = fast_rtcp_transmit(self._dtls)
            except (KeyError, AttributeError):  # no nominated pair (any more)
                return
        for sender, egress in self._senders:
            report = sender_report(sender, egress)
            if report is not None:
                self._send(report)


# --- negotiation state ---------------------------------------------------------------------------


def release_descriptions(pc: RTCPeerConnection) -> None:
    """Drop the parsed local and remote SDP and the remote ICE/DTLS parameters of a connected peer
    whose transceivers only send: aiortc reads them again only to start receivers and for a
    renegotiation (rtcdn does neither). ``pc.localDescription``/``remoteDescription`` are None then."""
    for name in ("current", "pending"):
        setattr(pc, f"_RTCPeerConnection__{name}LocalDescription", None)
        setattr(pc, f"_RTCPeerConnection__{name}RemoteDescription", None)
    pc._RTCPeerConnection__remoteDtls.clear()
    pc._RTCPeerConnection__remoteIce.clear()


def release_ice_checks(pc: RTCPeerConnection) -> None:
    """Once ICE has completed (``connect()`` returned): drop what each aioice connection of ``pc``
    needs only until then: the check-list state queue and the early-check buffer, which only
    ``connect()`` reads and nothing fills once the check list is done, and the finished check
    tasks the candidate pairs keep."""
    for transceiver in pc.getTransceivers():
        connection: Any = transceiver.receiver.transport.transport._connection
        if not connection._check_list_done or not connection._early_checks_done:
            continue
        connection._check_list_state = None
        connection._early_checks = None
        for pair in connection._check_list:
            if pair.task is not None and pair.task.done():
                pair.task = None
