"""What a Chromium viewer sends: its SDP (offer to rtcdn, answer to Janus) and its RTCP, for lean players.

A lean player (:class:`_wcs.LeanPlayer`) is an aiortc peer that counts packets instead of decoding
them. Left as aiortc makes it, it looks little like a browser: its offer carries two header
extensions (mid, abs-send-time) where Chromium offers 4 for audio and 11 for video (transport-cc
among them), it lists no ``transport-cc``/``ccm fir`` feedback, and, since it never hands RTP to
aiortc's receiver, it sends no RTCP at all. With ``viewer="chromium"`` the player instead

* sends :data:`CHROMIUM_OFFER` (rtcdn) or :func:`chromium_answer` (Janus, which offers): the SDP
  Chromium produces, with only the player's ICE credentials, DTLS fingerprint and candidates put in;
* runs :class:`ChromiumFeedback`, the RTCP a Chromium receiver sends at Chromium's rates, measured
  on this machine against both servers (Chromium 156, 3 viewers, 15 s, server-side counts by RTCP
  type): per viewer and second 4.46 compound RR + REMB (video), 0.22 RR (audio), 0.33 STUN consent
  checks; PLIs every 200 ms until the first keyframe (10 per viewer on Janus, which caches none);
  NACKs only for gaps. Neither server's answer makes transport-wide congestion control possible:
  rtcdn (aiortc) answers no ``transport-cc``, and Janus's streaming plugin offers the feedback but
  not the header extension, so Chromium falls back to REMB with both (as measured).

:data:`CHROMIUM_OFFER` was captured from Debian's Chromium 156.0.8078.114 (headless, playwright,
``new RTCPeerConnection()``, ``addTransceiver('audio'|'video', {direction: 'recvonly'})``,
``createOffer()``) and is kept verbatim, its ICE and DTLS lines included (they are replaced).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    RtcpPsfbPacket,
    RtcpReceiverInfo,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    pack_remb_fci,
)

from _rtp import StreamCounts

VIEWERS = ("lean", "chromium")
"What the players look like to the server: ``lean`` (aiortc's own SDP, no RTCP) or ``chromium``."

CHROMIUM_OFFER = """\
v=0
o=- 4351398879803869432 2 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0 1
a=extmap-allow-mixed
a=msid-semantic: WMS
m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126
c=IN IP4 0.0.0.0
a=rtcp:9 IN IP4 0.0.0.0
a=ice-ufrag:tlpC
a=ice-pwd:5b/bivqWmD0ZDdzmWjE1hvuK
a=ice-options:trickle
a=fingerprint:sha-256 8F:69:8C:DD:E0:DF:C2:36:00:A6:1F:02:B9:47:5A:02:4C:B2:DF:19:82:F7:23:77:17:17:DF:BA:43:9A:13:25
a=setup:actpass
a=mid:0
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid
a=recvonly
a=rtcp-mux
a=rtcp-rsize
a=rtcp-xr:rcvr-rtt=all
a=rtpmap:111 opus/48000/2
a=rtcp-fb:111 transport-cc
a=fmtp:111 minptime=10;useinbandfec=1
a=rtpmap:63 red/48000/2
a=fmtp:63 111/111
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:13 CN/8000
a=rtpmap:110 telephone-event/48000
a=rtpmap:126 telephone-event/8000
m=video 9 UDP/TLS/RTP/SAVPF 96 97 98 99 100 101 35 36 37 38 102 103 104 107 108 109 114 115 116 117 39 40 41 42 43 44 45 46 47 48 118 119 120 49
c=IN IP4 0.0.0.0
a=rtcp:9 IN IP4 0.0.0.0
a=ice-ufrag:tlpC
a=ice-pwd:5b/bivqWmD0ZDdzmWjE1hvuK
a=ice-options:trickle
a=fingerprint:sha-256 8F:69:8C:DD:E0:DF:C2:36:00:A6:1F:02:B9:47:5A:02:4C:B2:DF:19:82:F7:23:77:17:17:DF:BA:43:9A:13:25
a=setup:actpass
a=mid:1
a=extmap:14 urn:ietf:params:rtp-hdrext:toffset
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time
a=extmap:13 urn:3gpp:video-orientation
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01
a=extmap:5 http://www.webrtc.org/experiments/rtp-hdrext/playout-delay
a=extmap:6 http://www.webrtc.org/experiments/rtp-hdrext/video-content-type
a=extmap:7 http://www.webrtc.org/experiments/rtp-hdrext/video-timing
a=extmap:8 http://www.webrtc.org/experiments/rtp-hdrext/color-space
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid
a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id
a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id
a=recvonly
a=rtcp-mux
a=rtcp-rsize
a=rtcp-xr:rcvr-rtt=all
a=rtpmap:96 VP8/90000
a=rtcp-fb:96 goog-remb
a=rtcp-fb:96 transport-cc
a=rtcp-fb:96 ccm fir
a=rtcp-fb:96 nack
a=rtcp-fb:96 nack pli
a=rtpmap:97 rtx/90000
a=fmtp:97 apt=96
a=rtpmap:98 VP9/90000
a=rtcp-fb:98 goog-remb
a=rtcp-fb:98 transport-cc
a=rtcp-fb:98 ccm fir
a=rtcp-fb:98 nack
a=rtcp-fb:98 nack pli
a=fmtp:98 profile-id=0
a=rtpmap:99 rtx/90000
a=fmtp:99 apt=98
a=rtpmap:100 VP9/90000
a=rtcp-fb:100 goog-remb
a=rtcp-fb:100 transport-cc
a=rtcp-fb:100 ccm fir
a=rtcp-fb:100 nack
a=rtcp-fb:100 nack pli
a=fmtp:100 profile-id=2
a=rtpmap:101 rtx/90000
a=fmtp:101 apt=100
a=rtpmap:35 VP9/90000
a=rtcp-fb:35 goog-remb
a=rtcp-fb:35 transport-cc
a=rtcp-fb:35 ccm fir
a=rtcp-fb:35 nack
a=rtcp-fb:35 nack pli
a=fmtp:35 profile-id=1
a=rtpmap:36 rtx/90000
a=fmtp:36 apt=35
a=rtpmap:37 VP9/90000
a=rtcp-fb:37 goog-remb
a=rtcp-fb:37 transport-cc
a=rtcp-fb:37 ccm fir
a=rtcp-fb:37 nack
a=rtcp-fb:37 nack pli
a=fmtp:37 profile-id=3
a=rtpmap:38 rtx/90000
a=fmtp:38 apt=37
a=rtpmap:102 H264/90000
a=rtcp-fb:102 goog-remb
a=rtcp-fb:102 transport-cc
a=rtcp-fb:102 ccm fir
a=rtcp-fb:102 nack
a=rtcp-fb:102 nack pli
a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f
a=rtpmap:103 rtx/90000
a=fmtp:103 apt=102
a=rtpmap:104 H264/90000
a=rtcp-fb:104 goog-remb
a=rtcp-fb:104 transport-cc
a=rtcp-fb:104 ccm fir
a=rtcp-fb:104 nack
a=rtcp-fb:104 nack pli
a=fmtp:104 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f
a=rtpmap:107 rtx/90000
a=fmtp:107 apt=104
a=rtpmap:108 H264/90000
a=rtcp-fb:108 goog-remb
a=rtcp-fb:108 transport-cc
a=rtcp-fb:108 ccm fir
a=rtcp-fb:108 nack
a=rtcp-fb:108 nack pli
a=fmtp:108 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f
a=rtpmap:109 rtx/90000
a=fmtp:109 apt=108
a=rtpmap:114 H264/90000
a=rtcp-fb:114 goog-remb
a=rtcp-fb:114 transport-cc
a=rtcp-fb:114 ccm fir
a=rtcp-fb:114 nack
a=rtcp-fb:114 nack pli
a=fmtp:114 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f
a=rtpmap:115 rtx/90000
a=fmtp:115 apt=114
a=rtpmap:116 H264/90000
a=rtcp-fb:116 goog-remb
a=rtcp-fb:116 transport-cc
a=rtcp-fb:116 ccm fir
a=rtcp-fb:116 nack
a=rtcp-fb:116 nack pli
a=fmtp:116 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f
a=rtpmap:117 rtx/90000
a=fmtp:117 apt=116
a=rtpmap:39 H264/90000
a=rtcp-fb:39 goog-remb
a=rtcp-fb:39 transport-cc
a=rtcp-fb:39 ccm fir
a=rtcp-fb:39 nack
a=rtcp-fb:39 nack pli
a=fmtp:39 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=4d001f
a=rtpmap:40 rtx/90000
a=fmtp:40 apt=39
a=rtpmap:41 H264/90000
a=rtcp-fb:41 goog-remb
a=rtcp-fb:41 transport-cc
a=rtcp-fb:41 ccm fir
a=rtcp-fb:41 nack
a=rtcp-fb:41 nack pli
a=fmtp:41 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=f4001f
a=rtpmap:42 rtx/90000
a=fmtp:42 apt=41
a=rtpmap:43 H264/90000
a=rtcp-fb:43 goog-remb
a=rtcp-fb:43 transport-cc
a=rtcp-fb:43 ccm fir
a=rtcp-fb:43 nack
a=rtcp-fb:43 nack pli
a=fmtp:43 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=f4001f
a=rtpmap:44 rtx/90000
a=fmtp:44 apt=43
a=rtpmap:45 AV1/90000
a=rtcp-fb:45 goog-remb
a=rtcp-fb:45 transport-cc
a=rtcp-fb:45 ccm fir
a=rtcp-fb:45 nack
a=rtcp-fb:45 nack pli
a=fmtp:45 level-idx=5;profile=0;tier=0
a=rtpmap:46 rtx/90000
a=fmtp:46 apt=45
a=rtpmap:47 AV1/90000
a=rtcp-fb:47 goog-remb
a=rtcp-fb:47 transport-cc
a=rtcp-fb:47 ccm fir
a=rtcp-fb:47 nack
a=rtcp-fb:47 nack pli
a=fmtp:47 level-idx=5;profile=1;tier=0
a=rtpmap:48 rtx/90000
a=fmtp:48 apt=47
a=rtpmap:118 red/90000
a=rtpmap:119 rtx/90000
a=fmtp:119 apt=118
a=rtpmap:120 ulpfec/90000
a=rtpmap:49 flexfec-03/90000
a=rtcp-fb:49 goog-remb
a=rtcp-fb:49 transport-cc
a=fmtp:49 repair-window=10000000
"""
"""A Chromium receive-only offer (audio + video transceivers), as captured; lines end with ``\\n`` here."""

# --- SDP -------------------------------------------------------------------------------------------


def _sections(sdp: str) -> tuple[list[str], list[list[str]]]:
    """(session lines, m-sections' lines) of an SDP."""
    session: list[str] = []
    media: list[list[str]] = []
    for line in sdp.replace("\r\n", "\n").strip("\n").split("\n"):
        if line.startswith("m="):
            media.append([line])
        elif media:
            media[-1].append(line)
        else:
            session.append(line)
    return session, media


def _transport(sdp: str) -> dict[str, Any]:
    """ICE credentials, sha-256 fingerprint, candidates and default address:port of aiortc's SDP."""
    ufrag = pwd = fingerprint = ""
    candidates: list[str] = []
    end = False
    port, address = 9, "0.0.0.0"
    session, media = _sections(sdp)
    first = media[0] if media else []
    for line in session + first:
        if line.startswith("a=ice-ufrag:"):
            ufrag = line[len("a=ice-ufrag:") :]
        elif line.startswith("a=ice-pwd:"):
            pwd = line[len("a=ice-pwd:") :]
        elif line.startswith("a=fingerprint:sha-256 "):
            fingerprint = line[len("a=fingerprint:sha-256 ") :]
        elif line.startswith("a=candidate:"):
            candidates.append(line)
        elif line == "a=end-of-candidates":
            end = True
        elif line.startswith("m="):
            port = int(line.split()[1])
        elif line.startswith("c=IN IP4 "):
            address = line.split()[2]
    if not (ufrag and pwd and fingerprint):
        raise ValueError("no ICE credentials or sha-256 fingerprint in the local SDP")
    return {
        "ufrag": ufrag,
        "pwd": pwd,
        "fingerprint": fingerprint,
        "candidates": candidates + (["a=end-of-candidates"] if end else []),
        "port": port,
        "address": address,
    }


def _dress(lines: list[str], transport: Mapping[str, Any], setup: str) -> Iterator[str]:
    """One m-section with the player's transport: Chromium's line order (candidates after a=rtcp)."""
    for line in lines:
        if line.startswith("m="):
            fields = line.split()
            fields[1] = str(transport["port"])
            yield " ".join(fields)
        elif line.startswith("c=IN IP4 "):
            yield f"c=IN IP4 {transport['address']}"
        elif line.startswith("a=rtcp:"):
            yield line
            yield from transport["candidates"]
        elif line.startswith("a=ice-ufrag:"):
            yield f"a=ice-ufrag:{transport['ufrag']}"
        elif line.startswith("a=ice-pwd:"):
            yield f"a=ice-pwd:{transport['pwd']}"
        elif line.startswith("a=fingerprint:"):
            yield f"a=fingerprint:sha-256 {transport['fingerprint']}"
        elif line.startswith("a=setup:"):
            yield f"a=setup:{setup}"
        else:
            yield line


def _session_id() -> str:
    return str(random.randrange(10**18, 10**19))


def chromium_offer(local_sdp: str) -> str:
    """:data:`CHROMIUM_OFFER` with the ICE credentials, fingerprint and candidates of ``local_sdp``
    (the aiortc offer of a receive-only audio + video peer connection, mids ``0`` and ``1``)."""
    transport = _transport(local_sdp)
    session, media = _sections(CHROMIUM_OFFER)
    lines = [f"o=- {_session_id()} 2 IN IP4 127.0.0.1" if s.startswith("o=") else s for s in session]
    for section in media:
        lines += _dress(section, transport, "actpass")
    return "\r\n".join(lines) + "\r\n"


class _Capabilities:
    """What Chromium supports for one kind, from :data:`CHROMIUM_OFFER`: header extension URIs (in
    its order), and per codec name the feedback (in its order) and fmtp it offers."""

    def __init__(self, section: list[str]) -> None:
        self.extensions: list[str] = []
        names: dict[str, str] = {}
        self.feedback: dict[str, list[str]] = {}
        self.fmtp: dict[str, str] = {}
        for line in section:
            if line.startswith("a=extmap:"):
                self.extensions.append(line.split()[1])
            elif line.startswith("a=rtpmap:"):
                pt, codec = line[len("a=rtpmap:") :].split(" ", 1)
                names[pt] = codec.lower()
                self.feedback.setdefault(codec.lower(), [])
            elif line.startswith("a=rtcp-fb:"):
                pt, fb = line[len("a=rtcp-fb:") :].split(" ", 1)
                if fb not in self.feedback[names[pt]]:
                    self.feedback[names[pt]].append(fb)
            elif line.startswith("a=fmtp:"):
                pt, fmtp = line[len("a=fmtp:") :].split(" ", 1)
                self.fmtp.setdefault(names[pt], fmtp)


_CAPABILITIES = {
    section[0][2:].split()[0]: _Capabilities(section) for section in _sections(CHROMIUM_OFFER)[1]
}


def chromium_answer(remote_offer: str, local_answer: str) -> str:
    """The answer Chromium gives to ``remote_offer`` (a server's sendonly offer, e.g. Janus's), with
    the ICE credentials, fingerprint and candidates of ``local_answer`` (aiortc's answer to it).

    Per m-section, as Chromium answers: the offered codecs it supports, in the offer's order, each
    with the offered feedback Chromium supports in Chromium's order and Chromium's fmtp (Opus:
    ``minptime=10;useinbandfec=1``; RTX: the offered ``apt``); the offered header extensions it
    supports, with the offered ids; ``recvonly``; no ``a=ssrc`` (a receive-only Chromium sends none).
    """
    transport = _transport(local_answer)
    session, media = _sections(remote_offer)
    mids = [line[len("a=mid:") :] for section in media for line in section if line.startswith("a=mid:")]
    lines = ["v=0", f"o=- {_session_id()} 2 IN IP4 127.0.0.1", "s=-", "t=0 0"]
    lines.append("a=group:BUNDLE " + " ".join(mids))
    if "a=extmap-allow-mixed" in session + [line for section in media for line in section]:
        lines.append("a=extmap-allow-mixed")
    lines.append("a=msid-semantic: WMS")
    for section in media:
        lines += _dress(_answer_section(section), transport, "active")
    return "\r\n".join(lines) + "\r\n"


def _answer_section(offered: list[str]) -> list[str]:
    kind = offered[0][2:].split()[0]
    caps = _CAPABILITIES.get(kind)
    mid = next((line for line in offered if line.startswith("a=mid:")), "")
    if caps is None:
        return [offered[0].split()[0] + " 0 " + " ".join(offered[0].split()[2:]), mid]
    codecs: dict[str, str] = {}
    feedback: dict[str, set[str]] = {}
    fmtp: dict[str, str] = {}
    extensions: list[tuple[int, str]] = []
    for line in offered:
        if line.startswith("a=rtpmap:"):
            pt, codec = line[len("a=rtpmap:") :].split(" ", 1)
            codecs[pt] = codec
        elif line.startswith("a=rtcp-fb:"):
            pt, fb = line[len("a=rtcp-fb:") :].split(" ", 1)
            feedback.setdefault(pt, set()).add(fb)
        elif line.startswith("a=fmtp:"):
            pt, value = line[len("a=fmtp:") :].split(" ", 1)
            fmtp[pt] = value
        elif line.startswith("a=extmap:"):
            ext_id, uri = line[len("a=extmap:") :].split()[:2]
            if uri in caps.extensions:
                extensions.append((int(ext_id.split("/")[0]), uri))
    offered_pts = offered[0].split()[3:]
    pts = [pt for pt in offered_pts if pt in codecs and codecs[pt].lower() in caps.feedback]
    m_fields = offered[0].split()[:3]
    out = [
        " ".join([*m_fields, *pts]),
        "c=IN IP4 0.0.0.0",
        "a=rtcp:9 IN IP4 0.0.0.0",
        "a=ice-ufrag:",
        "a=ice-pwd:",
        "a=ice-options:trickle",
        "a=fingerprint:",
        "a=setup:active",
        mid,
        *(f"a=extmap:{ext_id} {uri}" for ext_id, uri in extensions),
        "a=recvonly",
        "a=rtcp-mux",
    ]
    if "a=rtcp-rsize" in offered:
        out.append("a=rtcp-rsize")
    for pt in pts:
        name = codecs[pt].lower()
        out.append(f"a=rtpmap:{pt} {codecs[pt]}")
        out += [f"a=rtcp-fb:{pt} {fb}" for fb in caps.feedback[name] if fb in feedback.get(pt, set())]
        if name.startswith("rtx/"):
            if pt in fmtp:
                out.append(f"a=fmtp:{pt} {fmtp[pt]}")
        elif name in caps.fmtp and not name.startswith(("h264/", "vp9/", "av1/")):
            out.append(f"a=fmtp:{pt} {caps.fmtp[name]}")
        elif pt in fmtp:
            out.append(f"a=fmtp:{pt} {fmtp[pt]}")
    return out


def negotiated_feedback(sdp: str) -> dict[str, set[str]]:
    """kind → the rtcp-fb values an SDP gives its codecs (``nack``, ``nack pli``, ``goog-remb``, ...)."""
    out: dict[str, set[str]] = {}
    for section in _sections(sdp)[1]:
        kind = section[0][2:].split()[0]
        for line in section:
            if line.startswith("a=rtcp-fb:"):
                out.setdefault(kind, set()).add(line.split(" ", 1)[1])
    return out


# --- RTCP --------------------------------------------------------------------------------------------

REMB_INTERVAL = (0.2, 0.25)
"""Seconds between two video RR + REMB compounds (uniform): libwebrtc's REMB throttle is 200 ms
(``RembThrottler``); measured 4.46 per second."""
AUDIO_RR_INTERVAL = 5.0
"libwebrtc's audio RTCP interval, randomised over [0.5, 1.5] x (measured 0.22 per second)."
PLI_INTERVAL = 0.2
"Until the first keyframe, a PLI this often (libwebrtc's 200 ms keyframe wait; 10 PLIs measured on Janus)."
NACK_RETRY = 0.1
"A missing packet is NACKed again after this (libwebrtc's default RTT: a receive-only peer measures none)."
NACK_TRIES = 10
"libwebrtc's ``kMaxNackRetries``."
NACK_HORIZON = 1000
"Sequence numbers a missing packet may fall behind the highest before it is given up."
REMB_BITRATE = 2_500_000
"The estimate a REMB carries (bits/s); neither server acts on it for this feed."
VIDEO_RTCP_SSRC = 1
"libwebrtc's ``kDefaultRtcpReceiverReportSsrc``: the sender SSRC of a receive-only video stream's RTCP."
AUDIO_RTCP_SSRC = 0xFA17FA17
"The sender SSRC libwebrtc gives a receive-only audio stream's RTCP."
CONSENT_INTERVAL = 3
"Seconds between STUN consent checks (Chromium: 0.33 per second measured; aioice's default is 5)."


SendRtcp = Callable[[bytes], None]


class ChromiumFeedback:
    """The RTCP a Chromium receiver sends for one peer connection, at Chromium's rates.

    ``kinds`` maps the negotiated payload types to ``audio``/``video`` (RTX ones to ``rtx``);
    ``feedback`` is :func:`negotiated_feedback` of the server's SDP: REMB, PLI and NACK go out only
    if negotiated. ``streams`` are the player's :class:`StreamCounts` by SSRC, ``kind_of`` their kind.
    ``last_sr(ssrc)`` gives (LSR, seconds since) of the last sender report, for the report blocks.
    The player calls :meth:`on_gap` and :meth:`on_late` from its datagram hook and :meth:`start`
    once DTLS is up with a synchronous SRTCP sender.
    """

    def __init__(
        self,
        streams: dict[int, StreamCounts],
        kind_of: dict[int, str],
        feedback: Mapping[str, set[str]],
        last_sr: Callable[[int], tuple[int, float] | None],
    ) -> None:
        self.streams, self.kind_of, self.last_sr = streams, kind_of, last_sr
        video = feedback.get("video", set())
        self.remb, self.pli, self.nack = "goog-remb" in video, "nack pli" in video, "nack" in video
        self.keyframe_done = False
        self.missing: dict[int, dict[int, list[float]]] = {}
        "video SSRC → missing sequence number (extended) → [next NACK time, tries]."
        self.sent: dict[str, int] = {"rr_remb": 0, "rr_audio": 0, "pli": 0, "nack": 0, "nacked": 0}
        self.rtx_received = 0
        self._send: SendRtcp | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    # called from the datagram hook ----------------------------------------------------------------
    def on_gap(self, ssrc: int, stats: StreamCounts, delta: int) -> None:
        """``stats.highest`` just jumped ``delta`` > 1 ahead: the packets in between are missing."""
        if not self.nack or self.kind_of.get(ssrc) != "video" or delta >= NACK_HORIZON:
            return
        missing = self.missing.setdefault(ssrc, {})
        now = time.monotonic()
        for seq in range(stats.highest - delta + 1, stats.highest):
            missing[seq] = [now, 0]
        self._wake.set()

    def on_late(self, ssrc: int, stats: StreamCounts, seq: int) -> None:
        """A packet at or behind the highest sequence number: a repaired one if it was NACKed."""
        missing = self.missing.get(ssrc)
        if not missing:
            return
        extended = stats.highest - ((stats.highest - seq) & 0xFFFF)
        if missing.pop(extended, None) is not None:
            stats.repaired += 1

    # the sender -----------------------------------------------------------------------------------
    def start(self, send: SendRtcp) -> None:
        self._send = send
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    def _blocks(self, kind: str) -> list[RtcpReceiverInfo]:
        blocks = []
        for ssrc, stats in self.streams.items():
            if self.kind_of.get(ssrc) != kind:
                continue
            sr = self.last_sr(ssrc)
            lsr, dlsr = (sr[0], int(sr[1] * 65536)) if sr else (0, 0)
            blocks.append(stats.report(ssrc, lsr, dlsr))
        return blocks

    def _media_ssrc(self, kind: str) -> int | None:
        return next((ssrc for ssrc, k in self.kind_of.items() if k == kind and ssrc in self.streams), None)

    def _compound(self, kind: str, *tail: Any) -> None:
        assert self._send is not None
        sender = VIDEO_RTCP_SSRC if kind == "video" else AUDIO_RTCP_SSRC
        data = bytes(RtcpRrPacket(ssrc=sender, reports=self._blocks(kind)))
        for packet in tail:
            data += bytes(packet)
        try:
            self._send(data)
        except (OSError, KeyError, AttributeError):  # the connection is going away
            pass

    async def _run(self) -> None:
        now = time.monotonic()
        next_video = now + random.uniform(*REMB_INTERVAL)
        next_audio = now + AUDIO_RR_INTERVAL * random.uniform(0.5, 1.5) / 2  # libwebrtc: first after half
        next_pli = now
        while True:
            now = time.monotonic()
            video = self._media_ssrc("video")
            if video is not None and self.pli and not self.keyframe_done and now >= next_pli:
                self._compound(
                    "video", RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=VIDEO_RTCP_SSRC, media_ssrc=video)
                )
                self.sent["pli"] += 1
                next_pli = now + PLI_INTERVAL
            if now >= next_video:
                tail = []
                if self.remb and video is not None:
                    fci = pack_remb_fci(REMB_BITRATE, [video])
                    tail.append(
                        RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=VIDEO_RTCP_SSRC, media_ssrc=0, fci=fci)
                    )
                if video is not None:
                    self._compound("video", *tail)
                    self.sent["rr_remb"] += 1
                next_video = now + random.uniform(*REMB_INTERVAL)
            if now >= next_audio:
                if self._media_ssrc("audio") is not None:
                    self._compound("audio")
                    self.sent["rr_audio"] += 1
                next_audio = now + AUDIO_RR_INTERVAL * random.uniform(0.5, 1.5)
            next_nack = self._nacks(now)
            due = min(next_video, next_audio, next_nack)
            if self.pli and not self.keyframe_done:
                due = min(due, next_pli)
            self._wake.clear()
            try:
                async with asyncio.timeout(max(0.0, due - time.monotonic())):
                    await self._wake.wait()
            except TimeoutError:
                pass

    def _nacks(self, now: float) -> float:
        """Send the NACKs due (one compound RR + NACK per SSRC); returns when the next one is due."""
        due = now + 3600.0
        for ssrc, missing in self.missing.items():
            stats = self.streams.get(ssrc)
            if stats is None:
                continue
            lost = []
            for seq, entry in list(missing.items()):
                if entry[1] >= NACK_TRIES or stats.highest - seq >= NACK_HORIZON:
                    del missing[seq]
                elif entry[0] <= now:
                    lost.append(seq & 0xFFFF)
                    entry[0] = now + NACK_RETRY
                    entry[1] += 1
                    due = min(due, entry[0])
                else:
                    due = min(due, entry[0])
            if lost:
                nack = RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=VIDEO_RTCP_SSRC, media_ssrc=ssrc)
                nack.lost = sorted(lost)
                self._compound("video", nack)
                self.sent["nack"] += 1
                self.sent["nacked"] += len(lost)
        return due
