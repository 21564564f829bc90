# mypy: disable-error-code="attr-defined,method-assign"
"""Every use of aiortc's and aioice's private API, in one place (aiortc==1.16.0, aioice==0.13.0).

aiortc's public API decodes what it receives and encodes what it sends; an SFU needs the RTP
below that. The hooks here:

* :func:`register_codecs` adds VP9 to aiortc's codec table (it is never decoded, only forwarded);
* :func:`gather_host_candidates` replaces aioice's gathering with host candidates on chosen
  addresses and a UDP port range;
* :func:`bound_receive_queue` caps aioice's receive queue (drop oldest) so overload means loss,
  not seconds of delay, and puts the test-only fault injector of :mod:`.faults` in front of it
  when one is set (``RTCDN_FAULTS``);
* :mod:`._aiortc_ingest`: ``install_ingest`` takes a publisher connection's decrypted RTP at
  ``RTCDtlsTransport._handle_rtp_data`` and keeps aiortc's RTCP receiver reports, REMB and NACK;
* :mod:`._aiortc_lean` (the rest of the adapter) cuts aiortc's peer objects down to what a
  passthrough peer uses, and turns an ``RTCRtpSender`` into a passthrough sender: no encoder, our
  sender reports, NACK and PLI handed to callbacks;
* :func:`fast_rtcp_transmit` sends SRTCP synchronously on the nominated ICE pair;
  :func:`fast_rtp_transmit` is the per-player hot path: template, sequence number and SSRC written
  straight into pylibsrtp's buffer, ``srtp_protect`` called on it, ``sendto`` on the raw socket.

``tests/webrtc/test_aiortc_adapter.py`` checks every private name used here still exists.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import struct
import sys
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aioice import ice as aioice_ice
from aioice.candidate import Candidate, candidate_foundation, candidate_priority
from aiortc import RTCRtpCodecParameters, RTCRtpSender
from aiortc import codecs as aiortc_codecs
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcpeerconnection import is_codec_compatible
from aiortc.rtcrtpparameters import RTCRtcpFeedback, RTCRtpCodecCapability, RTCRtpHeaderExtensionParameters
from pylibsrtp import SRTP_MAX_TRAILER_LEN
from pylibsrtp import _binding as srtp_binding

from ..rtp import Transmit
from .faults import Faults, faults_for

_fastsend: types.ModuleType | None
try:
    from . import _fastsend  # built by `pip install` (setup.py); optional
except ImportError:  # pragma: no cover - a machine without a C compiler or Python headers
    _fastsend = None

logger = logging.getLogger(__name__)

VIDEO_ORIENTATION = "urn:3gpp:video-orientation"
_registered = False


def register_codecs() -> None:
    """Let aiortc negotiate VP9 and the video-orientation extension (idempotent).

    aiortc keeps its codec table in module-level lists; rtcdn never decodes, so any codec can be
    negotiated and forwarded. PT 103/104 do not collide with aiortc's own (96-102).
    """
    global _registered
    if _registered:
        return
    _registered = True
    video = aiortc_codecs.CODECS["video"]
    feedback = [
        RTCRtcpFeedback(type="nack"),
        RTCRtcpFeedback(type="nack", parameter="pli"),
        RTCRtcpFeedback(type="goog-remb"),
    ]
    video += [
        RTCRtpCodecParameters(
            mimeType="video/VP9",
            clockRate=90000,
            payloadType=103,
            rtcpFeedback=feedback,
            parameters={"profile-id": "0"},
        ),
        RTCRtpCodecParameters(
            mimeType="video/rtx", clockRate=90000, payloadType=104, parameters={"apt": 103}
        ),
    ]
    aiortc_codecs.HEADER_EXTENSIONS["video"].append(
        RTCRtpHeaderExtensionParameters(id=4, uri=VIDEO_ORIENTATION)
    )


# --- ICE gathering --------------------------------------------------------------------------


class PortRange:
    """Hands out UDP ports from ``[low, high]`` round robin; 0/0 lets the OS choose."""

    def __init__(self, low: int, high: int) -> None:
        self.low, self.high = low, high
        self._next = low

    def bind(self, address: str) -> socket.socket:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            if not self.low:
                sock.bind((address, 0))
                return sock
            count = self.high - self.low + 1
            for _ in range(count):
                port = self._next
                self._next = self.low if port >= self.high else port + 1
                try:
                    sock.bind((address, port))
                    return sock
                except OSError as exc:
                    if exc.errno != errno.EADDRINUSE:
                        raise
            raise OSError(errno.EADDRINUSE, f"no free UDP port in {self.low}-{self.high} on {address}")
        except BaseException:
            sock.close()
            raise


def host_addresses() -> list[str]:
    """The machine's IPv4 addresses aioice would use (it leaves out 127.0.0.1)."""
    return aioice_ice.get_host_addresses(use_ipv4=True, use_ipv6=False) or ["127.0.0.1"]


def patch_gathering(pc: Any, addresses: Sequence[str], ports: PortRange, public_ip: str | None) -> None:
    """Make every ICE gatherer of ``pc`` use :func:`gather_host_candidates`."""
    for transceiver in pc.getTransceivers():
        conn = transceiver.receiver.transport.transport.iceGatherer._connection

        async def gather(conn: Any = conn) -> None:
            await gather_host_candidates(conn, addresses, ports, public_ip)

        conn.gather_candidates = gather
        bound_receive_queue(conn, faults=faults_for(ports))


RECEIVE_QUEUE_LIMIT = 256
"""Datagrams waiting for the event loop per ICE connection (~1.2 s of a 1.5 Mbps stream). aioice's
queue is unbounded: under CPU overload delay would grow without end; past this the oldest go."""


def bound_receive_queue(conn: Any, limit: int = RECEIVE_QUEUE_LIMIT, faults: Faults | None = None) -> None:
    """Keep at most ``limit`` datagrams queued, dropping the oldest (loss, not seconds of delay).
    With ``faults`` (tests: :mod:`.faults`, ``RTCDN_FAULTS``) datagrams go through them first."""
    queue = conn._queue
    conn.dropped = 0
    conn.rtcp_input = None
    "A player's synchronous RTCP reader (:mod:`._rtcp_in`): offered every RTCP datagram first."

    def data_received(data: bytes, component: int) -> None:
        rtcp_input = conn.rtcp_input
        if rtcp_input is not None and 127 < data[0] < 192 and 191 < data[1] < 224 and rtcp_input(data):
            return
        if queue.qsize() >= limit:  # drop the oldest: the freshest media is worth the most
            queue.get_nowait()
            conn.dropped += 1
            if conn.dropped % 1000 == 1:
                logger.warning(
                    "ICE %s: event loop behind, %d datagram(s) dropped", conn.local_username, conn.dropped
                )
        queue.put_nowait((data, component))

    conn.data_received = data_received if faults is None else faults.wrap(data_received)


async def gather_host_candidates(
    conn: Any, addresses: Sequence[str], ports: PortRange, public_ip: str | None
) -> None:
    """Gather one UDP host candidate per address, bound inside the port range."""
    if conn._local_candidates_start:
        return
    conn._local_candidates_start = True
    loop = asyncio.get_running_loop()
    for address in addresses:
        try:
            sock = ports.bind(address)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            _, protocol = await loop.create_datagram_endpoint(
                lambda: aioice_ice.StunProtocol(conn), sock=sock
            )
        except OSError as exc:
            logger.warning("ICE: cannot bind %s: %s", address, exc)
            continue
        host, port = protocol.transport.get_extra_info("sockname")[:2]
        host = public_ip or host
        protocol.local_candidate = Candidate(
            foundation=candidate_foundation("host", "udp", host),
            component=1,
            transport="udp",
            priority=candidate_priority(1, "host"),
            host=host,
            port=port,
            type="host",
        )
        conn._protocols.append(protocol)
        conn._local_candidates.append(protocol.local_candidate)
    conn._local_candidates_end = True


# --- sending ----------------------------------------------------------------------------------


def _nominated(dtls: RTCDtlsTransport) -> tuple[Any, tuple[str, int]]:
    """The asyncio transport and remote address of the connection's nominated ICE pair."""
    pair = dtls.transport._connection._nominated[1]
    return pair.protocol.transport, pair.remote_addr


def fast_rtcp_transmit(dtls: RTCDtlsTransport) -> Callable[[bytes], None]:
    """Synchronous RTCP sender: SRTCP-protect and ``sendto`` on the nominated pair."""
    transport, addr = _nominated(dtls)
    sendto, protect_rtcp = transport.sendto, dtls._tx_srtp.protect_rtcp

    def send_rtcp(data: bytes) -> None:
        sendto(protect_rtcp(data), addr)

    return send_rtcp


@dataclass(slots=True)
class WebRtcCounters:
    """Event counters of a node's WebRTC layer, read by the metrics at scrape time. One object per
    :class:`~rtcdn.webrtc.MediaConfig`, shared by all its peers; only ever incremented."""

    send_dropped: int = 0
    "RTP packets to players dropped because the socket's send buffer was full."
    ice_failures: int = 0
    "Peers whose ICE did not connect in time (:class:`~rtcdn.stream.ConnectTimeout`)."
    dtls_failures: int = 0
    "Peers whose ICE connected but DTLS failed (:class:`~rtcdn.stream.DtlsFailed`)."


def sockaddr(family: int, addr: Any) -> bytes | None:
    """``addr`` as Linux's C ``struct sockaddr`` of ``family`` (for :mod:`._fastsend`); None for what
    it does not know (the sender then stays in Python)."""
    if sys.platform != "linux":
        return None
    try:
        head = struct.pack("=H", family)
        if family == socket.AF_INET:
            return head + struct.pack("!H", addr[1]) + socket.inet_pton(socket.AF_INET, addr[0]) + bytes(8)
        if family == socket.AF_INET6:
            flow, scope = (addr[2] if len(addr) >= 3 else 0), (addr[3] if len(addr) >= 4 else 0)
            packed = socket.inet_pton(socket.AF_INET6, addr[0])
            return head + struct.pack("!HI", addr[1], flow) + packed + struct.pack("=I", scope)
        if family == socket.AF_UNIX and isinstance(addr, str | bytes):
            path = os.fsencode(addr)
            path += b"" if path.startswith(b"\0") else b"\0"
            return head + path if len(path) <= 108 else None  # sun_path
    except (OSError, TypeError, IndexError, ValueError, struct.error):
        return None
    return None


def fast_rtp_transmit(
    dtls: RTCDtlsTransport, ssrc: int, counters: WebRtcCounters | None = None, native: bool = True
) -> Transmit:
    """The per-player hot path: one copy, one ``srtp_protect``, one ``sendto`` per packet.

    The template is copied into a buffer, where sequence number and SSRC are patched; libsrtp
    protects it in place and the result is sent on the raw socket of the nominated pair. A full
    socket buffer drops the packet, as UDP would, instead of queueing it in asyncio's transport,
    and counts it in ``counters.send_dropped``; so does a template shorter than an RTP header or too
    long for the buffer, or one libsrtp refuses (neither comes from a WebRTC publisher; not counted).

    With ``native`` and :mod:`._fastsend` built, all of that is one call into C (the same
    ``srtp_protect`` of pylibsrtp's libsrtp, on the same session); otherwise the Python below does
    the same steps in pylibsrtp's own buffer. Synchronous either way, so a buffer is never used by
    two sends at once.
    """
    counters = counters if counters is not None else WebRtcCounters()
    transport, addr = _nominated(dtls)
    sock = transport._sock
    session = dtls._tx_srtp
    ctx, cdata, buf = session._srtp, session._cdata, session._buffer
    limit = len(buf) - SRTP_MAX_TRAILER_LEN  # the room pylibsrtp's own protect() leaves
    fastsend = _fastsend if native else None
    address = sockaddr(sock.family, addr) if fastsend is not None else None
    if fastsend is not None and address is not None and limit <= fastsend.BUFFER_SIZE - fastsend.TRAILER_ROOM:

        def dropped() -> None:
            counters.send_dropped += 1

        ffi = srtp_binding.ffi
        try:
            sender: Transmit = fastsend.Sender(
                sock,
                address,
                int(ffi.cast("uintptr_t", ffi.addressof(srtp_binding.lib, "srtp_protect"))),
                int(ffi.cast("uintptr_t", ctx[0])),
                session,  # keeps the srtp_t alive as long as the sender
                ssrc,
                limit,
                dropped,
            )
        except ValueError as exc:  # not what this build takes: the Python send below does it
            logger.warning("native send refused (%s): sending from Python", exc)
        else:
            return sender
    view = memoryview(buf)
    protect = srtp_binding.lib.srtp_protect
    length = srtp_binding.ffi.new("int *")
    ssrc_bytes = ssrc.to_bytes(4, "big")
    sendto = sock.sendto
    seq_into = struct.Struct("!H").pack_into

    def send_rtp(template: bytes, seq: int) -> None:
        n = len(template)
        if n < 12 or n > limit:
            return
        buf[0:n] = template
        seq_into(buf, 2, seq & 0xFFFF)
        buf[8:12] = ssrc_bytes
        length[0] = n
        if protect(ctx[0], cdata, length):
            return
        try:
            sendto(view[: length[0]], addr)
        except (BlockingIOError, InterruptedError):
            counters.send_dropped += 1
        except OSError as exc:  # the ICE connection is going away; its owner closes the peer
            logger.debug("send to %s failed: %s", addr, exc)

    return send_rtp


async def add_remote_candidate(pc: Any, candidate: Any) -> int:
    """Give a trickled candidate to every ICE transport of ``pc`` (the transceivers that are not
    bundled onto another's); aiortc's own ``addIceCandidate`` needs a matching mid. Returns how
    many transports took it."""
    added = 0
    for transceiver in pc.getTransceivers():
        if not transceiver._bundled:
            await transceiver.receiver.transport.transport.addRemoteCandidate(candidate)
            added += 1
    return added


async def end_of_candidates(pc: Any) -> None:
    for transceiver in pc.getTransceivers():
        if not transceiver._bundled:
            await transceiver.receiver.transport.transport.addRemoteCandidate(None)


def negotiated_codecs(transceiver: Any) -> list[RTCRtpCodecParameters]:
    """The codecs aiortc agreed on for a transceiver (set by ``setRemoteDescription``)."""
    codecs: list[RTCRtpCodecParameters] = transceiver._codecs
    return codecs


def set_negotiated_codecs(transceiver: Any, codecs: list[RTCRtpCodecParameters]) -> None:
    """Narrow what ``createAnswer`` will put in the answer."""
    transceiver._codecs = codecs


def negotiated_extensions(transceiver: Any) -> dict[int, str]:
    """Header extension id → URI, with the remote's ids."""
    return {e.id: e.uri for e in transceiver._headerExtensions}


def prefer_codecs(transceiver: Any, codecs: list[RTCRtpCodecCapability]) -> None:
    """Codec preferences without aiortc's capability check (VP9 etc. are not in its table)."""
    transceiver._preferred_codecs = codecs


def table_codec(capability: RTCRtpCodecCapability) -> RTCRtpCodecCapability:
    """The entry of aiortc's codec table that ``capability`` is compatible with (same H.264 profile
    and packetization mode, any level), or ``capability`` itself when there is none. aiortc accepts
    a preferred codec only with exactly a table entry's fmtp, so a stream whose H.264 level differs
    (an encoder's SPS) is offered to players with the table's parameters (level-asymmetry-allowed)."""
    kind = capability.mimeType.split("/")[0].lower()
    wanted = RTCRtpCodecParameters(
        mimeType=capability.mimeType,
        clockRate=capability.clockRate,
        channels=capability.channels,
        parameters=dict(capability.parameters),
    )
    for codec in aiortc_codecs.CODECS.get(kind, []):
        if is_codec_compatible(codec, wanted):
            return RTCRtpCodecCapability(
                mimeType=codec.mimeType,
                clockRate=codec.clockRate,
                channels=codec.channels,
                parameters=dict(codec.parameters),
            )
    return capability


def codec_capabilities(kind: str, mimes: Sequence[str]) -> list[RTCRtpCodecCapability]:
    """aiortc's own codecs of ``kind`` in the order of ``mimes``, plus RTX (for offers)."""
    table = aiortc_codecs.CODECS[kind]
    caps = [
        RTCRtpCodecCapability(
            mimeType=c.mimeType, clockRate=c.clockRate, channels=c.channels, parameters=c.parameters
        )
        for mime in mimes
        for c in table
        if c.mimeType == mime
    ]
    if kind == "video":
        caps.append(RTCRtpCodecCapability(mimeType="video/rtx", clockRate=90000))
    return caps


def sender_ssrc(sender: RTCRtpSender) -> int:
    ssrc: int = sender._ssrc
    return ssrc
