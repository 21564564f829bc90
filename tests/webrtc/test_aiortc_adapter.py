"""webrtc._aiortc: the private aiortc/aioice names the adapter relies on still exist and behave."""

from __future__ import annotations

import asyncio
import errno
import re
import socket
from pathlib import Path

import aioice
import aioice.ice
import pytest
from aiortc import RTCPeerConnection
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtcrtpsender import RTCRtpSender
from aiortc.rtcrtptransceiver import RTCRtpTransceiver

from rtcdn.server import Server
from rtcdn.webrtc import _aiortc
from testkit import make_settings
from wcs_client import WcsClient


async def test_private_names_exist() -> None:
    pc = RTCPeerConnection()
    try:
        transceiver = pc.addTransceiver("video", direction="sendonly")
        sender, receiver = transceiver.sender, transceiver.receiver
        dtls = sender.transport
        for obj, names in [
            (
                sender,
                [
                    "_RTCRtpSender__rtp_started",
                    "_RTCRtpSender__rtp_exited",
                    "_RTCRtpSender__rtcp_started",
                    "_RTCRtpSender__rtcp_exited",
                    "_RTCRtpSender__cname",
                    "_ssrc",
                    "_stream_id",
                    "_run_rtp",
                    "_run_rtcp",
                    "_retransmit",
                    "_send_keyframe",
                ],
            ),
            (
                receiver,
                [
                    "_RTCRtpReceiver__remote_streams",
                    "_RTCRtpReceiver__rtcp_ssrc",
                    "_RTCRtpReceiver__stop_decoder",
                    "_handle_rtcp_packet",
                    "receive",
                ],
            ),
            (dtls, ["_handle_rtp_data", "_rtp_header_extensions_map", "_rtp_router", "transport"]),
            (transceiver, ["_codecs", "_headerExtensions", "_preferred_codecs", "_bundled"]),
            (
                dtls.transport.iceGatherer._connection,
                [
                    "_nominated",
                    "_protocols",
                    "_local_candidates",
                    "_local_candidates_end",
                    "_local_candidates_start",
                ],
            ),
        ]:
            missing = [n for n in names if not hasattr(obj, n)]
            assert not missing, f"{type(obj).__name__} lost {missing}: aiortc/aioice changed"
    finally:
        await pc.close()
    assert isinstance(dtls, RTCDtlsTransport) and isinstance(sender, RTCRtpSender)
    assert isinstance(receiver, RTCRtpReceiver) and isinstance(transceiver, RTCRtpTransceiver)
    assert hasattr(RTCDtlsTransport, "_send_rtp") and hasattr(aioice.ice, "StunProtocol")


def test_port_range_round_robin_and_exhaustion() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        low = probe.getsockname()[1]
    ports = _aiortc.PortRange(low, low + 1)
    a, b = ports.bind("127.0.0.1"), ports.bind("127.0.0.1")
    try:
        assert {a.getsockname()[1], b.getsockname()[1]} == {low, low + 1}
        with pytest.raises(OSError) as exc:
            ports.bind("127.0.0.1")
        assert exc.value.errno == errno.EADDRINUSE
    finally:
        a.close()
        b.close()


def test_codecs_registered_once() -> None:
    from aiortc import codecs

    _aiortc.register_codecs()
    _aiortc.register_codecs()
    assert [c.mimeType for c in codecs.CODECS["video"]].count("video/VP9") == 1


async def test_answer_candidates_use_the_media_port_range(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        low = probe.getsockname()[1]
    server = Server(make_settings(media_port_from=low, media_port_to=low + 9), tmp_path)
    await server.start()
    try:
        async with WcsClient(f"ws://127.0.0.1:{server.settings.ws_port}/") as client:
            msid, _, status = await client.publish("ranged")
            assert status is not None and status["status"] == "PUBLISHING"
            answer = client.sdp[msid].result()
            ports = {
                int(p) for p in re.findall(r"a=candidate:\S+ 1 udp \d+ 127\.0\.0\.1 (\d+) typ host", answer)
            }
            assert ports and all(low <= p <= low + 9 for p in ports), answer
    finally:
        await server.close()


async def test_receive_queue_is_bounded() -> None:
    conn = aioice.Connection(ice_controlling=False)
    _aiortc.bound_receive_queue(conn, limit=10)
    for i in range(25):
        conn.data_received(bytes([i]), 1)
    assert conn._queue.qsize() == 10 and conn.dropped == 15
    assert conn._queue.get_nowait() == (b"\x0f", 1)  # the oldest went; the rest stay in order
    await conn.close()


async def test_fast_rtp_transmit_sends_what_stamp_describes() -> None:
    """Real SRTP sessions and sockets; only aiortc's object graph around them is stood in for."""
    from types import SimpleNamespace

    from pylibsrtp import Policy, Session

    from rtcdn.rtp import stamp

    key = bytes(range(30))
    tx_policy = Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND)
    tx_policy.allow_repeat_tx = True  # as aiortc sets it: NACKed packets are sent again
    tx = Session(tx_policy)

    def unprotect(data: bytes) -> bytes:  # a receiver per packet: its replay check refuses the resend
        return Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND)).unprotect(data)

    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(2)
    try:
        pair = SimpleNamespace(
            protocol=SimpleNamespace(transport=transport), remote_addr=receiver.getsockname()
        )
        connection = SimpleNamespace(_nominated={1: pair})
        dtls = SimpleNamespace(transport=SimpleNamespace(_connection=connection), _tx_srtp=tx)
        send = _aiortc.fast_rtp_transmit(dtls, 0x01020304)  # type: ignore[arg-type]
        tx.protect_rtcp(bytes.fromhex("80c80006") + bytes(24))  # the session's RTCP shares the buffer
        templates = [bytes.fromhex("80e0") + bytes(10) + bytes([k]) * (100 + 500 * k) for k in range(3)]
        sent = [(t, 1000 + k) for k, t in enumerate(templates)] + [(templates[1], 1001)]  # a resend
        for template, seq in sent:
            send(template, seq)
        got = [unprotect(receiver.recv(2048)) for _ in sent]
        assert got == [stamp(t, seq, bytes.fromhex("01020304")) for t, seq in sent]
        send(bytes(1490), 7)  # too long for the SRTP buffer with its trailer: dropped, nothing raised
        with pytest.raises(TimeoutError):
            receiver.settimeout(0.2)
            receiver.recv(2048)
    finally:
        transport.close()
        receiver.close()
