# mypy: disable-error-code="attr-defined,method-assign"
"""The publisher side of the aiortc adapter (aiortc's private API, like :mod:`._aiortc`).

:func:`install_ingest` takes a publisher connection's decrypted RTP at
``RTCDtlsTransport._handle_rtp_data`` and keeps aiortc's RTCP receiver reports, REMB and NACK
(with retries); :func:`watch_sender_reports` hands sender reports on; :func:`stop_decoder_on_receive`
keeps aiortc's receiver from starting a decoder.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

from aiortc import RTCRtpCodecParameters, RTCRtpReceiver
from aiortc.rate import RemoteBitrateEstimator
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcrtpreceiver import StreamStatistics
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_PLI,
    RtcpPsfbPacket,
    RtcpRtpfbPacket,
    RtcpSrPacket,
    RtpPacket,
    pack_remb_fci,
)

from ..rtp import RtpError, unwrap_rtx
from ..rtp.loss import LossTracker
from ._aiortc import fast_rtcp_transmit

logger = logging.getLogger(__name__)


class IngestTrack:
    """Per-kind receive state: stats for receiver reports, NACK generation, RTX mapping."""

    def __init__(self, kind: str, receiver: RTCRtpReceiver, codecs: Sequence[RTCRtpCodecParameters]) -> None:
        self.kind = kind
        self.receiver = receiver
        self.clock_rate = codecs[0].clockRate if codecs else 90000
        self.media_ssrc: int | None = None
        self.nack = LossTracker() if kind == "video" else None
        self.nack_tries: dict[int, int] = {}
        "Missing sequence numbers NACKed so far, and how often."
        self.nack_timer: asyncio.TimerHandle | None = None
        self.stats: dict[int, StreamStatistics] = receiver._RTCRtpReceiver__remote_streams


OnRtp = Callable[[str, bytes, int, int], None]
NACK_RETRY_INTERVAL = 0.1
"Seconds after a NACK before the packets still missing are asked for again (a resend may be lost too)."
NACK_TRIES = 3
"NACKs per missing packet at most; then the keyframe machinery takes over."
OnSenderReport = Callable[[str, float, int], None]
"``on_sr(kind, ntp_unix_seconds, rtp_timestamp)``: a publisher's RTCP sender report."
NTP_UNIX_OFFSET = 2208988800
"Seconds from the NTP epoch (1900) to the Unix epoch (1970)."


def install_ingest(
    dtls: RTCDtlsTransport,
    tracks: dict[int, tuple[IngestTrack, int | None]],
    on_rtp: OnRtp,
) -> Callable[[], None]:
    """Route the publisher's decrypted RTP to ``on_rtp(kind, data, seq, timestamp)``.

    ``tracks`` maps each negotiated payload type to its track and, for RTX payload types, the
    payload type it carries (``apt``). RTX is unwrapped; REMB is sent so the publisher's bitrate
    climbs; NACKs are sent for gaps. Returns ``request_keyframe()`` which sends a PLI.
    """
    extensions_map = dtls._rtp_header_extensions_map
    ssrc_table = dtls._rtp_router.ssrc_table
    estimator = RemoteBitrateEstimator()
    video = next((t for t, apt in tracks.values() if t.kind == "video" and apt is None), None)
    send_rtcp_holder: list[Callable[[bytes], None]] = []

    def rtcp_ssrc(track: IngestTrack) -> int | None:
        ssrc: int | None = track.receiver._RTCRtpReceiver__rtcp_ssrc
        return ssrc

    def send_rtcp(packet: Any) -> None:
        if not send_rtcp_holder:
            try:
                send_rtcp_holder.append(fast_rtcp_transmit(dtls))
            except (KeyError, AttributeError):
                return
        send_rtcp_holder[0](bytes(packet))

    async def handle_rtp_data(data: bytes, arrival_time_ms: int) -> None:
        try:
            packet = RtpPacket.parse(data, extensions_map)
        except ValueError:
            return
        entry = tracks.get(packet.payload_type)
        if entry is None:
            return
        track, apt = entry
        stats = track.stats.get(packet.ssrc)
        if stats is None:
            stats = track.stats[packet.ssrc] = StreamStatistics(track.clock_rate)
        stats.add(packet)
        if track is video and packet.extensions.abs_send_time is not None:
            remb = estimator.add(
                abs_send_time=packet.extensions.abs_send_time,
                arrival_time_ms=arrival_time_ms,
                payload_size=len(packet.payload) + packet.padding_size,
                ssrc=packet.ssrc,
            )
            ssrc = rtcp_ssrc(track)
            if remb is not None and ssrc is not None:
                send_rtcp(
                    RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=ssrc, media_ssrc=0, fci=pack_remb_fci(*remb))
                )
        if apt is not None:
            if track.media_ssrc is None or len(packet.payload) < 2:
                return
            try:
                data = unwrap_rtx(data, apt, track.media_ssrc)
            except RtpError:
                return
            packet = RtpPacket.parse(data, extensions_map)
        elif track.media_ssrc != packet.ssrc:
            track.media_ssrc = packet.ssrc
            # aiortc's router learns SSRCs in the _handle_rtp_data replaced here: teach it, so
            # the publisher's sender reports reach the receiver (watch_sender_reports)
            ssrc_table.setdefault(packet.ssrc, track.receiver)
        if not packet.payload:
            return  # padding-only probe
        if track.nack is not None and track.nack.add(packet.sequence_number):
            send_nack(track, packet.ssrc, [seq for seq in track.nack.missing if seq not in track.nack_tries])
        on_rtp(track.kind, data, packet.sequence_number, packet.timestamp)

    def send_nack(track: IngestTrack, media_ssrc: int, lost: list[int]) -> None:
        ssrc = rtcp_ssrc(track)
        if ssrc is None or not lost:
            return
        for seq in lost:
            track.nack_tries[seq] = track.nack_tries.get(seq, 0) + 1
        nack = RtcpRtpfbPacket(fmt=1, ssrc=ssrc, media_ssrc=media_ssrc)
        nack.lost = sorted(lost)
        send_rtcp(nack)
        if track.nack_timer is None:
            loop = asyncio.get_running_loop()
            track.nack_timer = loop.call_later(NACK_RETRY_INTERVAL, retry_nacks, track, media_ssrc)

    def retry_nacks(track: IngestTrack, media_ssrc: int) -> None:
        """Ask again for what is still missing (aiortc's NackGenerator reports only new gaps)."""
        track.nack_timer = None
        missing = track.nack.missing if track.nack is not None else set()
        for seq in [s for s in track.nack_tries if s not in missing]:
            del track.nack_tries[seq]  # arrived, or too old to track
        if dtls.state != "connected":
            return
        send_nack(track, media_ssrc, [seq for seq in missing if track.nack_tries.get(seq, 0) < NACK_TRIES])

    dtls._handle_rtp_data = handle_rtp_data

    def request_keyframe() -> None:
        if video is None or video.media_ssrc is None:
            return
        ssrc = rtcp_ssrc(video)
        if ssrc is not None:
            send_rtcp(RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=ssrc, media_ssrc=video.media_ssrc))

    return request_keyframe


def watch_sender_reports(receiver: RTCRtpReceiver, kind: str, on_sr: OnSenderReport) -> None:
    """Hand the publisher's sender reports to ``on_sr`` (aiortc still gets them for its reports)."""
    original = receiver._handle_rtcp_packet

    async def handle_rtcp_packet(packet: Any) -> None:
        if isinstance(packet, RtcpSrPacket):
            ntp = packet.sender_info.ntp_timestamp
            on_sr(
                kind,
                (ntp >> 32) - NTP_UNIX_OFFSET + (ntp & 0xFFFFFFFF) / 2**32,
                packet.sender_info.rtp_timestamp,
            )
        await original(packet)

    receiver._handle_rtcp_packet = handle_rtcp_packet


def stop_decoder_on_receive(receiver: RTCRtpReceiver) -> None:
    """aiortc starts a decoder thread in ``receive()``; rtcdn never decodes, so stop it at once."""
    original = receiver.receive

    async def receive(parameters: Any) -> None:
        await original(parameters)
        receiver._RTCRtpReceiver__stop_decoder()

    receiver.receive = receive


# --- negotiation state ------------------------------------------------------------------------
