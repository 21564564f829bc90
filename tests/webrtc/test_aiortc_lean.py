"""webrtc._aiortc_lean: what a passthrough peer no longer carries, and that it still works.

The private aiortc/aioice names the cuts rely on still exist; peers share one certificate and DTLS
context; a player's receivers are empty and never receive; a passthrough sender leaves no task
running; an attached player runs only its transport's tasks (ICE consent and monitor, DTLS reader)
and sends its sender reports from one timer; its negotiation state is released.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import aiortc.rtcpeerconnection
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.rtcdtlstransport import SRTP_PROFILES, RTCCertificate
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpSendParameters
from OpenSSL import SSL

from rtcdn.server import Server
from rtcdn.webrtc import WebRtcPlayer, WebRtcPublisher, _aiortc_lean
from rtcdn.webrtc._aiortc_lean import EgressState, SenderReports, install_egress, never_receives
from wcs_client import WcsClient, count_frames


async def test_private_names_exist() -> None:
    pc = RTCPeerConnection()
    try:
        transceiver = pc.addTransceiver("video", direction="sendonly")
        sender, receiver = transceiver.sender, transceiver.receiver
        connection = receiver.transport.transport._connection
        mangled = "_RTCPeerConnection__"
        for obj, names in [
            (
                pc,
                [
                    f"{mangled}certificates",
                    f"{mangled}currentLocalDescription",
                    f"{mangled}currentRemoteDescription",
                    f"{mangled}pendingLocalDescription",
                    f"{mangled}pendingRemoteDescription",
                    f"{mangled}remoteDtls",
                    f"{mangled}remoteIce",
                ],
            ),
            (
                sender,
                [
                    "_RTCRtpSender__rtp_task",
                    "_RTCRtpSender__rtcp_task",
                    "_RTCRtpSender__rtp_started",
                    "_RTCRtpSender__rtp_exited",
                    "_RTCRtpSender__rtcp_started",
                    "_RTCRtpSender__rtcp_exited",
                    "_RTCRtpSender__cname",
                    "send",
                    "_run_rtp",
                    "_run_rtcp",
                ],
            ),
            (
                receiver,
                [
                    "_RTCRtpReceiver__jitter_buffer",
                    "_RTCRtpReceiver__nack_generator",
                    "_RTCRtpReceiver__remote_bitrate_estimator",
                    "_RTCRtpReceiver__decoder_queue",
                    "_RTCRtpReceiver__decoder_error",
                    "_RTCRtpReceiver__rtcp_started",
                    "_RTCRtpReceiver__rtcp_exited",
                    "_handle_rtp_packet",
                    "receive",
                ],
            ),
            (
                connection,
                [
                    "_check_list",
                    "_check_list_done",
                    "_check_list_state",
                    "_early_checks",
                    "_early_checks_done",
                ],
            ),
        ]:
            missing = [n for n in names if not hasattr(obj, n)]
            assert not missing, f"{type(obj).__name__} lost {missing}: aiortc/aioice changed"
    finally:
        await pc.close()
    assert aiortc.rtcpeerconnection.RTCCertificate is RTCCertificate  # the name new_peer_connection swaps
    assert hasattr(RTCCertificate, "_create_ssl_context")


async def test_peers_share_one_certificate_and_dtls_context(monkeypatch: pytest.MonkeyPatch) -> None:
    shared = _aiortc_lean.shared_certificate()

    def no_generation() -> RTCCertificate:
        raise AssertionError("a certificate was generated for a peer")

    monkeypatch.setattr(RTCCertificate, "generateCertificate", no_generation)
    pcs = [_aiortc_lean.new_peer_connection(RTCConfiguration(iceServers=[])) for _ in range(2)]
    try:
        assert aiortc.rtcpeerconnection.RTCCertificate is RTCCertificate  # swapped back
        assert [pc._RTCPeerConnection__certificates for pc in pcs] == [[shared], [shared]]  # type: ignore[attr-defined]
        context = shared._create_ssl_context(SRTP_PROFILES)
        assert shared._create_ssl_context(SRTP_PROFILES) is context
        assert context.get_session_cache_mode() == SSL.SESS_CACHE_OFF  # no cache growing per handshake
        assert SSL._lib.SSL_CTX_set_mode(context._context, 0) & SSL.MODE_RELEASE_BUFFERS  # reads the mode
        assert shared.getFingerprints() == shared.getFingerprints()
        assert shared.getFingerprints()[0] is not shared.getFingerprints()[0]  # copies: callers may keep them
    finally:
        for pc in pcs:
            await pc.close()


async def test_shared_certificate_is_renewed(monkeypatch: pytest.MonkeyPatch) -> None:
    old = _aiortc_lean.shared_certificate()
    monkeypatch.setattr(_aiortc_lean, "CERTIFICATE_LIFETIME", -1.0)
    new = _aiortc_lean.shared_certificate()
    assert new is not old and new.getFingerprints() != old.getFingerprints()


async def test_a_receiver_that_never_receives_is_empty() -> None:
    pc = RTCPeerConnection()
    try:
        receiver = pc.addTransceiver("video", direction="sendonly").receiver
        never_receives(receiver)
        mangled = "_RTCRtpReceiver__"
        for name in ("jitter_buffer", "nack_generator", "remote_bitrate_estimator", "decoder_queue"):
            assert getattr(receiver, mangled + name) is None, name
        await receiver.receive(None)  # type: ignore[arg-type]  # a no-op: no decoder thread, no RTCP task
        assert getattr(receiver, mangled + "decoder_thread") is None
        assert getattr(receiver, mangled + "rtcp_task") is None
    finally:
        await pc.close()


async def test_a_passthrough_sender_leaves_no_task() -> None:
    pc = RTCPeerConnection()
    try:
        sender = pc.addTransceiver("video", direction="sendonly").sender
        nacks: list[list[int]] = []
        install_egress(sender, "s", EgressState(), nacks.append, lambda: None)
        before = asyncio.all_tasks()
        params = RTCRtpSendParameters(codecs=[RTCRtpCodecParameters("video/VP8", 90000, 96)])
        params.rtcp.cname = "cname"
        await sender.send(params)
        await asyncio.sleep(0)  # the two tasks send() created return at their first step
        assert asyncio.all_tasks() == before
        await sender._retransmit(7)
        assert nacks == [[7]]
        await asyncio.wait_for(sender.stop(), 1)  # waits for nothing
    finally:
        await pc.close()


class _Pair:
    """The nominated ICE pair of a stand-in DTLS transport: records what is sent on it."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.remote_addr = ("127.0.0.1", 9)
        self.protocol = SimpleNamespace(transport=SimpleNamespace(sendto=self.sendto))

    def sendto(self, data: bytes, addr: object) -> None:
        self.sent.append(data)


async def test_sender_reports_one_timer_per_peer() -> None:
    pair = _Pair()
    dtls: Any = SimpleNamespace(
        state="connected",
        transport=SimpleNamespace(_connection=SimpleNamespace(_nominated={1: pair})),
        _tx_srtp=SimpleNamespace(protect_rtcp=lambda data: data),
    )
    senders = []
    for ssrc in (1111, 2222):
        state = EgressState()
        state.last_rtp_time = lambda: (1000, 0.0)
        state.counters = lambda: (5, 500)
        senders.append((SimpleNamespace(_ssrc=ssrc, _RTCRtpSender__cname="c"), state))
    reports = SenderReports(dtls, senders)  # type: ignore[arg-type]
    reports.start()
    assert reports.running
    reports._tick()  # what the timer runs: one SR + SDES per sender, then the next tick
    assert [int.from_bytes(r[4:8], "big") for r in pair.sent] == [1111, 2222]
    assert all(r[1] == 200 and r[29] == 202 for r in pair.sent)  # SR, then SDES
    assert reports.running
    dtls.state = "closed"
    reports._tick()
    assert not reports.running and len(pair.sent) == 2  # stops by itself once DTLS is closed
    reports.start()
    reports.stop()
    assert not reports.running


def _tasks_of(objects: list[object]) -> list[str]:
    """The pending tasks whose coroutine runs a method of one of ``objects``."""
    ids = {id(o) for o in objects}
    names = []
    for task in asyncio.all_tasks():
        coro: Any = task.get_coro()
        frame = getattr(coro, "cr_frame", None)
        if frame is not None and id(frame.f_locals.get("self")) in ids:
            names.append(coro.__qualname__)
    return sorted(names)


async def test_an_attached_player_carries_only_what_it_uses(server: Server, ws_url: str) -> None:
    async with WcsClient(ws_url) as pub, WcsClient(ws_url) as viewer:
        _, _, status = await pub.publish("lean")
        assert status is not None and status["status"] == "PUBLISHING"
        _, pc, status = await viewer.play("lean")
        assert status is not None and status["status"] == "PLAYING", status
        video = next(r.track for r in pc.getReceivers() if r.track.kind == "video")
        assert await count_frames(video, 1.5) > 5  # media flows through the cut-down peers

        player = next(p for p in server.media.peers if isinstance(p, WebRtcPlayer))
        publisher = next(p for p in server.media.peers if isinstance(p, WebRtcPublisher))
        transceivers = player.pc.getTransceivers()
        dtls = transceivers[0].receiver.transport
        ice = dtls.transport
        objects: list[object] = [player, player.pc, dtls, ice, ice._connection]
        objects += [t.sender for t in transceivers] + [t.receiver for t in transceivers]
        assert _tasks_of(objects) == [
            "Connection.query_consent",
            "RTCDtlsTransport.__run",
            "RTCIceTransport._monitor",
        ]
        for t in transceivers:
            assert t.receiver._RTCRtpReceiver__jitter_buffer is None  # type: ignore[attr-defined]
            assert t.receiver._RTCRtpReceiver__decoder_thread is None  # type: ignore[attr-defined]
        for t in publisher.pc.getTransceivers():
            assert t.receiver._RTCRtpReceiver__remote_bitrate_estimator is None  # type: ignore[attr-defined]
            assert t.receiver._RTCRtpReceiver__jitter_buffer is None  # type: ignore[attr-defined]
        assert player.pc.localDescription is None and player.pc.remoteDescription is None
        ufrag = next(ln for ln in pc.localDescription.sdp.splitlines() if ln.startswith("a=ice-ufrag:"))
        assert player.remote_ice_ufrag() == ufrag.split(":", 1)[1]
        assert ice._connection._check_list_state is None  # aioice's check-list state: ICE is done

        # sender reports reach the viewer for both senders (its receivers note the last SR)
        ssrcs = {t.sender._ssrc for t in transceivers}
        async with asyncio.timeout(5):
            while {s for r in pc.getReceivers() for s in r._RTCRtpReceiver__lsr} < ssrcs:  # type: ignore[attr-defined]
                await asyncio.sleep(0.1)
        reports = player._reports
        assert reports is not None and reports.running
        await player.close()
        assert not reports.running
