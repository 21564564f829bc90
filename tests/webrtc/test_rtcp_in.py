"""webrtc._rtcp_in: a player's RTCP read synchronously (real SRTCP from pylibsrtp, a real aiortc
viewer): NACK and PLI/FIR reach the sender they name, the rest is dropped, hostile bytes cost
nothing but a count."""

from __future__ import annotations

import asyncio
import os
import struct

import pylibsrtp

from rtcdn.server import Server
from rtcdn.webrtc import WebRtcPlayer
from rtcdn.webrtc._rtcp_in import Feedback, RtcpInput, is_rtcp
from wcs_client import WcsClient, count_frames

KEY = os.urandom(30)


def sessions() -> tuple[pylibsrtp.Session, pylibsrtp.Session]:
    tx = pylibsrtp.Session(pylibsrtp.Policy(key=KEY, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND))
    rx = pylibsrtp.Session(pylibsrtp.Policy(key=KEY, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND))
    return tx, rx


def rtcp(pt: int, fmt: int, body: bytes) -> bytes:
    return struct.pack("!BBH", 0x80 | fmt, pt, (4 + len(body)) // 4 - 1) + body


def test_feedback_reaches_the_sender_it_names_and_the_rest_is_dropped() -> None:
    tx, rx = sessions()
    nacks: list[list[int]] = []
    keyframes: list[str] = []
    reader = RtcpInput(
        rx,
        {
            1111: Feedback(nacks.append, lambda: keyframes.append("video")),
            2222: Feedback(nacks.append, lambda: keyframes.append("audio")),
        },
    )
    rr = rtcp(201, 1, struct.pack("!I", 9) + bytes(24))
    remb = rtcp(206, 15, struct.pack("!II", 9, 0) + b"REMB" + bytes(8))
    nack = rtcp(205, 1, struct.pack("!II", 9, 1111) + struct.pack("!HH", 100, 0b101))
    pli = rtcp(206, 1, struct.pack("!II", 9, 1111))
    fir = rtcp(206, 4, struct.pack("!II", 9, 0) + struct.pack("!IB3x", 2222, 1))
    stranger = rtcp(206, 1, struct.pack("!II", 9, 3333))
    packet = tx.protect_rtcp(rr + remb + nack + pli + fir + stranger)
    assert is_rtcp(packet) and reader.read(packet)
    assert nacks == [[100, 101, 103]] and keyframes == ["video", "audio"]
    # replayed, forged or truncated: counted and dropped, never raised
    assert reader.read(packet) and reader.read(packet[:-4] + b"xxxx") and reader.read(b"\x80\xc9\x00\x01")
    assert reader.failures == 3 and reader.packets == 1
    broken = tx.protect_rtcp(rr + struct.pack("!BBH", 0x81, 205, 200) + bytes(8))  # length past the end
    assert reader.read(broken) and nacks == [[100, 101, 103]]


async def test_a_real_viewer_s_rtcp_takes_the_fast_path(server: Server, ws_url: str) -> None:
    async with WcsClient(ws_url) as pub, WcsClient(ws_url) as viewer:
        await pub.publish("fast")
        _, pc, status = await viewer.play("fast")
        assert status is not None and status["status"] == "PLAYING"
        video = next(r.track for r in pc.getReceivers() if r.track.kind == "video")
        assert await count_frames(video, 1.0) > 5
        player = next(p for p in server.media.peers if isinstance(p, WebRtcPlayer))
        reader = player._rtcp
        assert reader is not None
        async with asyncio.timeout(5):  # aiortc's viewer sends receiver reports every ~1 s
            while reader.packets < 2:
                await asyncio.sleep(0.1)
        await asyncio.sleep(0.4)  # past the keyframe requests' rate limit
        plis = server.streams.totals().plis
        video_sender = next(t.sender for t in player.pc.getTransceivers() if t.kind == "video")
        receiver = next(r for r in pc.getReceivers() if r.track.kind == "video")
        await receiver._send_rtcp_pli(video_sender._ssrc)  # the viewer asks for a keyframe
        async with asyncio.timeout(5):
            while server.streams.totals().plis == plis:
                await asyncio.sleep(0.05)
        assert reader.failures == 0
