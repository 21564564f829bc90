"""Parser fuzz targets: pure functions of hostile bytes, each with the errors its code documents.

A target is ``(name, strategy, check)``: ``check(value)`` raises on a finding. The seeds are real:
libx264/libvpx/libopus output packetized by rtcdn's own Packetizer (tests/rtp/rtp_media.py), RTCP
compounds built by aiortc, and RTMP sessions written by rtcdn's ChunkWriter around real H.264/AAC/
Opus from PyAV (tests/rtmp/rtmp_media.py). tests/fuzz/test_parsers.py runs every target with a
small budget; bench/fuzz.py with a long one.

What each parser promises (read from its code and docstring):

* RTP ``header_length``: :class:`RtpError` only; ``unwrap_rtx``: :class:`RtpError` only, and its
  output parses again (aiortc re-parses it without a ``try`` in ``install_ingest``). ``RtpRewriter.
  rewrite`` / ``rewrite_extensions`` / keyframe detectors: never raise on a packet aiortc's
  ``RtpPacket.parse`` accepted (that is how the stream calls them) and keep the payload as it is.
* ``Depacketizer.push``/``flush``: never raise ("nothing in hostile input raises out of push").
* ``install_ingest``'s RTP handler (aiortc awaits it for every decrypted packet: an exception kills
  the DTLS transport) and ``Stream.forward`` on what it passes on: never raise.
* RTCP ``RtcpPacket.parse`` (aiortc; what ``RTCDtlsTransport._handle_rtcp_data`` catches): ValueError.
* ``amf0.decode``/``decode_one``: :class:`AmfError`; ``ChunkReader.feed``: :class:`RtmpProtocolError`,
  and the same messages however the bytes are cut; ``flv.parse_video``/``parse_audio`` and the
  codec records (``AvcConfig``, ``AudioSpecificConfig``, ``OpusHead``, ``split_avcc``): FlvError;
  ``parse_data``/``parse_metadata``: AmfError or FlvError; ``parse_command``: AmfError or
  RtmpProtocolError, ``Capabilities.of`` of its command object never raises; ``split_aggregate``,
  ``parse_user_control``: RtmpProtocolError; ``parse_url``: RtmpError; ``split_name``: nothing.
* WCS ``parse_frame_data``: ProtocolError; ``agent_url``: AgentError.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import struct
from collections.abc import Callable, Mapping
from functools import lru_cache
from types import SimpleNamespace
from typing import Any

import fuzzkit  # noqa: F401  (sys.path for rtp_media / rtmp_media)
from fuzzkit import fuzz_bytes, json_values, known_exception, mutated
from hypothesis import strategies as st

Target = tuple[str, st.SearchStrategy[Any], Callable[[Any], None]]


class Finding(AssertionError):
    """A parser broke its promise."""


def expect(fn: Callable[[], Any], *allowed: type[BaseException]) -> Any:
    """``fn()``; an exception not in ``allowed`` is a :class:`Finding` (with the original as cause)."""
    try:
        return fn()
    except allowed:
        return None
    except Exception as exc:
        if known_exception(exc) is not None:
            return None  # a known bug (fuzzkit.known_exception names its xfail test)
        raise Finding(f"{type(exc).__name__}: {exc}") from exc


# --- RTP seeds --------------------------------------------------------------------------------------
EXT_IDS = {1: "urn:ietf:params:rtp-hdrext:sdes:mid",
           2: "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
           3: "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
           4: "urn:3gpp:video-orientation",
           5: "urn:ietf:params:rtp-hdrext:ssrc-audio-level"}  # fmt: skip


def _with_extension(packet: bytes, body: bytes, profile: bytes = b"\xbe\xde") -> bytes:
    body += b"\x00" * (-len(body) % 4)
    head = bytes((packet[0] | 0x10,)) + packet[1:12]
    return head + profile + struct.pack("!H", len(body) // 4) + body + packet[12:]


@lru_cache
def rtp_streams() -> dict[str, list[bytes]]:
    """Real packet sequences per codec (a few frames each), some packets with header extensions."""
    from rtp_media import opus_frames, vpx_frames, x264_access_units

    from rtcdn.rtp.frame import Frame
    from rtcdn.rtp.packetize import Packetizer

    out: dict[str, list[bytes]] = {}
    sources: dict[str, list[tuple[tuple[bytes, ...], bool]]] = {
        "h264": [(tuple(nals), key) for nals, key in x264_access_units(6, keyframes=(0, 4))],
        "vp8": [((f,), key) for f, key in vpx_frames("libvpx", 5, keyframes=(0, 3))],
        "vp9": [((f,), key) for f, key in vpx_frames("libvpx-vp9", 4, keyframes=(0,))],
        "opus": [((f,), True) for f in opus_frames(6)],
    }
    for codec, frames in sources.items():
        kind = "audio" if codec == "opus" else "video"
        rate = 48000 if kind == "audio" else 90000
        packer = Packetizer(codec, 111 if kind == "audio" else 96, 0x1234, rate, mtu=1200)
        packets: list[bytes] = []
        for i, (payload, key) in enumerate(frames):
            frame = Frame(kind, codec, payload, i * (960 if kind == "audio" else 3000), rate, key, i / 30)
            packets += packer.packetize(frame)
        for i in range(0, len(packets), 3):  # one-byte and two-byte header extensions
            if i % 2:
                packets[i] = _with_extension(packets[i], b"\x10\x01" + b"\x22\x12\x34\x56" + b"\x30\xab\xcd")
            else:
                packets[i] = _with_extension(packets[i], b"\x02\x03\xaa\xbb\xcc\x04\x01\x07", b"\x10\x00")
        out[codec] = packets
    return out


def rtp_seeds() -> list[bytes]:
    return [p for packets in rtp_streams().values() for p in packets[:12]]


@lru_cache
def rtcp_seeds() -> list[bytes]:
    from aiortc.rtp import (
        RTCP_PSFB_APP,
        RTCP_PSFB_PLI,
        RtcpByePacket,
        RtcpPsfbPacket,
        RtcpReceiverInfo,
        RtcpRrPacket,
        RtcpRtpfbPacket,
        RtcpSdesPacket,
        RtcpSenderInfo,
        RtcpSourceInfo,
        RtcpSrPacket,
        pack_remb_fci,
    )

    report = RtcpReceiverInfo(
        ssrc=7, fraction_lost=3, packets_lost=2, highest_sequence=999, jitter=5, lsr=1, dlsr=2
    )
    sr = RtcpSrPacket(
        ssrc=0x1234, sender_info=RtcpSenderInfo(0xE0000000_80000000, 9000, 10, 1000), reports=[report]
    )
    sdes = RtcpSdesPacket(chunks=[RtcpSourceInfo(ssrc=0x1234, items=[(1, b"cname@fuzz")])])
    nack = RtcpRtpfbPacket(fmt=1, ssrc=1, media_ssrc=0x1234)
    nack.lost = [5, 6, 9, 40]
    pli = RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=1, media_ssrc=0x1234)
    remb = RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=1, media_ssrc=0, fci=pack_remb_fci(300000, [0x1234]))
    rr = RtcpRrPacket(ssrc=1, reports=[report])
    bye = RtcpByePacket(sources=[0x1234])
    singles = [bytes(p) for p in (sr, sdes, nack, pli, remb, rr, bye)]  # type: ignore[call-overload]
    return [*singles, singles[0] + singles[1], singles[5] + singles[2] + singles[3], b"".join(singles)]


# --- RTP targets ------------------------------------------------------------------------------------
def _rtp_parses(data: bytes) -> bool:
    from aiortc.rtp import RtpPacket

    try:
        RtpPacket.parse(data)
    except ValueError:
        return False
    return True


def check_header_length(data: bytes) -> None:
    from rtcdn.rtp import RtpError, header_length

    n = expect(lambda: header_length(data), RtpError)
    if n is not None and not 12 <= n <= len(data):
        raise Finding(f"header_length {n} for {len(data)} bytes")


@st.composite
def rewrite_inputs(draw: st.DrawFn) -> tuple[bytes, int, dict[int, int]]:
    data = draw(fuzz_bytes(rtp_seeds()))
    pt = draw(st.integers(0, 127))
    id_map = draw(st.dictionaries(st.integers(0, 255), st.integers(-1, 300), max_size=6))
    return data, pt, id_map


def check_rewrite(value: tuple[bytes, int, dict[int, int]]) -> None:
    from rtcdn.rtp import RtpError, RtpRewriter, header_length, keyframe_detector, rewrite_extensions

    data, pt, id_map = value
    if not _rtp_parses(data):  # the stream only sees packets aiortc parsed
        return
    hlen = expect(lambda: header_length(data))
    if hlen is None:
        raise Finding("aiortc parses a packet header_length refuses")
    out = expect(lambda: RtpRewriter(pt, id_map).rewrite(data))
    if out[1] != ((data[1] & 0x80) | pt) or out[2:12] != data[2:12]:
        raise Finding("rewrite changed more than the payload type and extensions")
    out_hlen = expect(lambda: header_length(out), RtpError)
    if out_hlen is None:
        raise Finding(f"the rewritten packet is not RTP: {out.hex()}")
    if out[out_hlen:] != data[hlen:]:
        raise Finding("rewrite changed the payload")
    if data[0] & 0x10:
        off = 12 + 4 * (data[0] & 0x0F)
        block = rewrite_extensions(data[off:hlen], id_map)
        if block and (len(block) % 4 or int.from_bytes(block[2:4], "big") * 4 + 4 != len(block)):
            raise Finding(f"rewrite_extensions gave a block of a wrong length: {block.hex()}")
    for mime in ("video/VP8", "video/VP9", "video/H264"):
        detect = keyframe_detector(mime)
        assert detect is not None
        if type(expect(lambda detect=detect: detect(data, hlen))) is not bool:
            raise Finding(f"{mime} keyframe detector returned a non-bool")


def check_unwrap_rtx(value: tuple[bytes, int, int]) -> None:
    from aiortc.rtp import RtpPacket

    from rtcdn.rtp import RtpError, unwrap_rtx

    data, pt, ssrc = value
    out = expect(lambda: unwrap_rtx(data, pt, ssrc), RtpError)
    if out is not None and _rtp_parses(data):
        if expect(lambda: RtpPacket.parse(out), ValueError) is None:
            raise Finding("unwrap_rtx of a valid RTX packet does not parse (install_ingest re-parses it)")


@st.composite
def packet_sequences(draw: st.DrawFn, codec: str) -> list[bytes]:
    """A real packet sequence with packets dropped, duplicated, reordered, mutated or replaced."""
    packets = list(rtp_streams()[codec])
    for _ in range(draw(st.integers(0, 6))):
        op = draw(st.integers(0, 5))
        i = draw(st.integers(0, len(packets) - 1)) if packets else 0
        if not packets:
            packets.append(draw(st.binary(max_size=40)))
        elif op == 0:
            del packets[i]
        elif op == 1:
            packets.insert(i, packets[i])
        elif op == 2:
            j = draw(st.integers(0, len(packets) - 1))
            packets[i], packets[j] = packets[j], packets[i]
        elif op == 3:
            packets[i] = draw(mutated([packets[i]], max_ops=3))
        elif op == 4:  # a sequence number jump (sender restart, or garbage)
            seq = draw(st.integers(0, 0xFFFF))
            packets[i:] = [
                p[:2] + struct.pack("!H", (seq + k) & 0xFFFF) + p[4:] for k, p in enumerate(packets[i:])
            ]
        elif op == 5:
            packets.insert(i, draw(fuzz_bytes(rtp_seeds())))
    return packets


def check_depacketizer(value: tuple[str, list[bytes], int]) -> None:
    from rtcdn.rtp.depacketize import Depacketizer

    codec, packets, max_reorder = value
    rate = 48000 if codec == "opus" else 90000
    dep = Depacketizer(codec, rate, max_reorder=max_reorder)
    frames = []
    for i, packet in enumerate(packets):
        frames += expect(lambda packet=packet, i=i: dep.push(packet, i * 0.01))
    if dep.packets:  # known bug: flush() before any packet (test_depacketizer_flush_before_any_packet)
        frames += expect(dep.flush)
    for frame in frames:
        if frame.codec != codec or not all(isinstance(p, bytes) for p in frame.payload):
            raise Finding(f"odd frame {frame!r:.200}")
        if not math.isfinite(frame.pts):
            raise Finding(f"frame pts {frame.pts}")


def check_rtcp(data: bytes) -> None:
    from aiortc.rtp import RtcpPacket, RtcpSrPacket

    from rtcdn.rtp.frame import RtpClock

    packets = expect(lambda: RtcpPacket.parse(data), ValueError) or []
    clock = RtpClock(90000)
    for packet in packets:
        if isinstance(packet, RtcpSrPacket):  # what watch_sender_reports hands on
            ntp = packet.sender_info.ntp_timestamp
            expect(
                lambda ntp=ntp, p=packet: clock.on_sender_report(
                    RtpClock.ntp_to_unix(ntp), p.sender_info.rtp_timestamp
                )
            )
            expect(lambda: clock.pts(12345, 0.0))


class _IngestHarness:
    """``install_ingest`` on a stand-in DTLS transport (no network), feeding a real Stream."""

    def __init__(self) -> None:
        from aiortc import RTCRtpCodecParameters
        from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
        from aiortc.rtp import HeaderExtensionsMap

        from rtcdn.rtp import RtpRewriter, RtpSink, TrackInfo
        from rtcdn.stream import StreamManager
        from rtcdn.webrtc._aiortc_ingest import IngestTrack, install_ingest

        ext_map = HeaderExtensionsMap()
        ext_map.configure(
            RTCRtpParameters(
                headerExtensions=[RTCRtpHeaderExtensionParameters(id=k, uri=v) for k, v in EXT_IDS.items()]
            )
        )
        self.dtls = SimpleNamespace(
            _rtp_header_extensions_map=ext_map, _rtp_router=SimpleNamespace(ssrc_table={})
        )

        def receiver() -> Any:
            r = SimpleNamespace()
            setattr(r, "_RTCRtpReceiver__remote_streams", {})  # noqa: B010
            setattr(r, "_RTCRtpReceiver__rtcp_ssrc", 42)  # noqa: B010
            return r

        video_codec = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
        audio_codec = RTCRtpCodecParameters(
            mimeType="audio/opus", clockRate=48000, payloadType=111, channels=2
        )
        video = IngestTrack("video", receiver(), [video_codec])
        audio = IngestTrack("audio", receiver(), [audio_codec])
        self.tracks = {96: (video, None), 97: (video, 96), 111: (audio, None), 98: (video, None)}
        self.stream = StreamManager().create(
            "fuzz", SimpleNamespace(request_keyframe=lambda: None, on_stream_end=lambda r: None)
        )
        ext = {k: v for k, v in EXT_IDS.items()}
        self.stream.set_tracks([
            TrackInfo("video", "video/VP8", 90000, 96, extensions=ext),
            TrackInfo("audio", "audio/opus", 48000, 111, 2, extensions=ext),
        ])  # fmt: skip
        self.stream.go_live()
        self.sent: list[bytes] = []
        self.frames: list[Any] = []

        def transmit(template: bytes, seq: int) -> None:
            self.sent.append(template)

        sinks = {
            "video": RtpSink("video", 9, RtpRewriter(100, {2: 3, 3: 5, 4: 14}), transmit),
            "audio": RtpSink("audio", 10, RtpRewriter(109, {5: 1}), transmit),
        }
        player = SimpleNamespace(
            sinks=lambda: sinks,
            frame_sinks=lambda: {"video": self.frames.append, "audio": self.frames.append},
            on_stream_end=lambda r: None,
            on_stream_event=lambda e: None,
        )
        self.stream.add_player(player)

        def on_rtp(kind: str, data: bytes, seq: int, ts: int) -> None:
            self.stream.forward(kind, data, seq, ts)

        install_ingest(self.dtls, self.tracks, on_rtp)  # type: ignore[arg-type]
        self.handle = self.dtls._handle_rtp_data


def check_ingest(packets: list[bytes]) -> None:
    from rtcdn.stream import EndReason

    async def run() -> None:
        harness = _IngestHarness()
        for i, data in enumerate(packets):
            await harness.handle(data, 1000 + i * 10)
        harness.stream.close(EndReason.PUBLISHER_STOP)

    try:
        asyncio.run(run())
    except Exception as exc:
        raise Finding(f"{type(exc).__name__}: {exc}") from exc


def _retarget(pt: int) -> Callable[[bytes], bytes]:
    return lambda p: p[:1] + bytes(((p[1] & 0x80) | pt,)) + p[2:] if len(p) > 2 else p


@st.composite
def ingest_inputs(draw: st.DrawFn) -> list[bytes]:
    """Packets for the ingest handler: VP8 on 96, its RTX on 97 (an original sequence number
    in front of the payload), Opus on 111, mutated and random ones."""
    streams = rtp_streams()
    vp8 = draw(packet_sequences("vp8"))
    opus = [_retarget(111)(p) for p in streams["opus"][:4]]
    rtx = []
    for p in streams["vp8"][:4]:
        hlen = 12 + 4 * (p[0] & 0x0F) + (4 + 4 * int.from_bytes(p[14:16], "big") if p[0] & 0x10 else 0)
        rtx.append(
            p[:1]
            + bytes(((p[1] & 0x80) | 97,))
            + p[2:8]
            + b"\x00\x00\x99\x99"
            + p[12:hlen]
            + p[2:4]
            + p[hlen:]
        )
    pool = vp8 + opus + rtx
    extra = draw(st.lists(fuzz_bytes(pool, max_random=40), max_size=8))
    order = draw(st.permutations(range(len(pool) + len(extra)))) if draw(st.booleans()) else None
    items = pool + extra
    return [items[i] for i in order] if order is not None else items


# --- RTMP seeds -------------------------------------------------------------------------------------
CONNECT = {
    "app": "live", "type": "nonprivate", "flashVer": "FMLE/3.0 (compatible; FMSc/1.0)", "tcUrl": "rtmp://127.0.0.1:1935/live",
    "fpad": False, "capabilities": 15.0, "audioCodecs": 4071.0, "videoCodecs": 252.0, "videoFunction": 1.0,
    "fourCcList": ["av01", "vp09", "hvc1", "avc1"], "capsEx": 1.0,
    "videoFourCcInfoMap": {"avc1": 4.0, "vp08": 4.0}, "audioFourCcInfoMap": {"Opus": 4.0},
}  # fmt: skip


@lru_cache
def amf_seeds() -> list[bytes]:
    from datetime import UTC, datetime

    from rtcdn.rtmp import amf0

    return [
        amf0.encode("connect", 1.0, CONNECT),
        amf0.encode("createStream", 4.0, None),
        amf0.encode("publish", 5.0, None, "cam?token=a", "live"),
        amf0.encode("play", 5.0, None, "cam", -2000.0, -1.0, True),
        amf0.encode("deleteStream", 6.0, None, 1.0),
        amf0.encode(
            "@setDataFrame",
            "onMetaData",
            amf0.EcmaArray(
                {"width": 160.0, "height": 120.0, "videocodecid": 7.0, "encoder": "Lavf", "stereo": True}
            ),
        ),
        amf0.encode(
            "_result",
            1.0,
            {"fmsVer": "FMS/3,5,7,7009"},
            {"level": "status", "code": "NetConnection.Connect.Success"},
        ),
        amf0.encode(
            [1.0, "two", [None, {"x": [True]}]], datetime(2024, 1, 2, tzinfo=UTC), "x" * 70000, amf0.UNDEFINED
        ),
    ]


@lru_cache
def media_tags() -> dict[str, list[bytes]]:
    """Real FLV video/audio tag bodies: H.264 (legacy and enhanced), AAC, Opus (enhanced)."""
    from rtmp_media import audio, h264

    from rtcdn.rtmp.flv import AudioTag, VideoTag, build_audio, build_video

    video = h264(count=6, gop=3)
    aac = audio("aac", duration_ms=200)
    opus = audio("libopus", duration_ms=200)
    vtags = [build_video(VideoTag("avc1", 1, 0, 0, video.config))]
    vtags += [build_video(VideoTag("avc1", 1 if key else 2, 1, 40, au)) for _, key, au in video.frames[:4]]
    vtags += [build_video(VideoTag("avc1", 1, 0, 0, video.config, enhanced=True))]
    vtags += [build_video(VideoTag("avc1", 1, 1, 0, video.frames[0][2], enhanced=True))]
    vtags += [build_video(VideoTag("vp09", 1, 1, 0, b"\x82\x49\x83\x42\x00", enhanced=True))]
    atags = [
        build_audio(AudioTag("mp4a", 0, aac.config)),
        *(build_audio(AudioTag("mp4a", 1, f)) for _, f in aac.frames[:3]),
    ]
    atags += [build_audio(AudioTag("Opus", 0, opus.config, enhanced=True)),
              *(build_audio(AudioTag("Opus", 1, f, enhanced=True)) for _, f in opus.frames[:2])]  # fmt: skip
    return {
        "video": vtags,
        "audio": atags,
        "avc_config": [video.config],
        "asc": [aac.config],
        "opus_head": [opus.config],
    }


@lru_cache
def chunk_seeds() -> list[bytes]:
    """Whole publish sessions as a client writes them (after the handshake)."""
    from rtcdn.rtmp import chunk
    from rtcdn.rtmp.chunk import ChunkWriter, Message

    tags = media_tags()
    out = []
    for size, ts0 in ((128, 0), (4096, 0xFFFFF0), (60, 1 << 31)):
        w = ChunkWriter()
        parts = [w.set_chunk_size(size) if size != 128 else b""]
        seeds = amf_seeds()
        parts += [
            w.write(Message(chunk.COMMAND_AMF0, 0, 0, seeds[0])),
            w.write(Message(chunk.COMMAND_AMF0, 0, 0, seeds[1])),
        ]
        parts += [
            w.write(chunk.window_ack_size(2_500_000)),
            w.write(chunk.user_control(chunk.SET_BUFFER_LENGTH, 1, 3000)),
        ]
        parts += [
            w.write(Message(chunk.COMMAND_AMF0, 1, 0, seeds[2])),
            w.write(Message(chunk.DATA_AMF0, 1, 0, seeds[5])),
        ]
        for i, body in enumerate(tags["video"][:5]):
            parts.append(w.write(Message(chunk.VIDEO, 1, ts0 + 40 * i, body)))
        for i, body in enumerate(tags["audio"][:4]):
            parts.append(w.write(Message(chunk.AUDIO, 1, ts0 + 21 * i, body)))
        parts.append(w.write(chunk.abort(6)))
        out.append(b"".join(parts))
    return out


def _feed_all(pieces: list[bytes]) -> tuple[list[Any], bool]:
    from rtcdn.rtmp.chunk import ChunkReader
    from rtcdn.rtmp.errors import RtmpProtocolError

    reader = ChunkReader(max_message_size=1 << 20, max_buffered=2 << 20)
    got: list[Any] = []
    for piece in pieces:
        try:
            got += reader.feed(piece)
        except RtmpProtocolError:
            return got, True
    return got, False


@st.composite
def chunk_inputs(draw: st.DrawFn) -> tuple[bytes, list[int]]:
    data = draw(fuzz_bytes(chunk_seeds(), max_random=200))
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=12)))
    return data, cuts


def check_chunks(value: tuple[bytes, list[int]]) -> None:
    data, cuts = value
    whole, whole_err = expect(lambda: _feed_all([data]))
    bounds = [0, *cuts, len(data)]
    pieces = [data[a:b] for a, b in itertools.pairwise(bounds)]
    cut, cut_err = expect(lambda: _feed_all(pieces))
    if (
        whole_err != cut_err
        or (not whole_err and whole != cut)
        or (whole_err and whole[: len(cut)] != cut[: len(whole)])
    ):
        raise Finding(
            f"ChunkReader depends on how the bytes are cut at {cuts}: {len(whole)}/{whole_err} vs {len(cut)}/{cut_err}"
        )


def check_amf(data: bytes) -> None:
    from rtcdn.rtmp import amf0

    values = expect(lambda: amf0.decode(data), amf0.AmfError)
    expect(lambda: amf0.decode_one(data, 0), amf0.AmfError)
    if values is not None:  # what decodes encodes again (a relay re-sends commands and metadata)
        expect(lambda: amf0.encode(*values))


def check_command(value: tuple[int, bytes]) -> None:
    from rtcdn.rtmp import amf0
    from rtcdn.rtmp.chunk import Message
    from rtcdn.rtmp.commands import Capabilities, parse_command, split_name
    from rtcdn.rtmp.errors import RtmpProtocolError

    type_id, payload = value
    cmd = expect(lambda: parse_command(Message(type_id, 1, 0, payload)), amf0.AmfError, RtmpProtocolError)
    if cmd is None:
        return
    expect(lambda: Capabilities.of(cmd.obj))
    for arg in cmd.args:
        if isinstance(arg, str):
            expect(lambda arg=arg: split_name(arg))


def check_flv(value: tuple[str, bytes]) -> None:
    from rtcdn.rtmp import amf0, flv
    from rtcdn.rtmp.codecs import AudioSpecificConfig, AvcConfig, OpusHead, split_avcc
    from rtcdn.rtmp.errors import FlvError

    what, data = value
    if what == "video":
        tag = expect(lambda: flv.parse_video(data), FlvError)
        expect(lambda: flv.classify_video(data))
        if tag is not None and tag.codec == "avc1" and not tag.sequence_header:
            expect(lambda: split_avcc(tag.data), FlvError)
    elif what == "audio":
        expect(lambda: flv.parse_audio(data), FlvError)
        expect(lambda: flv.audio_is_config(data))
    elif what == "avc_config":
        config = expect(lambda: AvcConfig.parse(data), FlvError)
        if config is not None and len(config.sps) <= 31 and len(config.pps) <= 255:
            expect(lambda: AvcConfig.parse(config.build()))
    elif what == "asc":
        expect(lambda: AudioSpecificConfig.parse(data), FlvError)
    elif what == "opus_head":
        expect(lambda: OpusHead.parse(data), FlvError)
    elif what == "data":
        expect(lambda: flv.parse_data(data), amf0.AmfError, FlvError)
        expect(lambda: flv.parse_metadata(data), amf0.AmfError, FlvError)


def check_control(value: tuple[int, bytes]) -> None:
    from rtcdn.rtmp import chunk
    from rtcdn.rtmp.errors import RtmpProtocolError

    type_id, payload = value
    msg = chunk.Message(type_id, 1, 1000, payload)
    expect(lambda: chunk.split_aggregate(msg), RtmpProtocolError)
    expect(lambda: chunk.parse_user_control(payload), RtmpProtocolError)
    expect(lambda: chunk.parse_u32(msg), RtmpProtocolError)


def check_rtmp_url(url: str) -> None:
    from rtcdn.rtmp.commands import parse_url
    from rtcdn.rtmp.errors import RtmpError

    expect(lambda: parse_url(url), RtmpError)


def check_wcs_frame(text: str) -> None:
    from rtcdn.wcs import messages as m
    from rtcdn.wcs.client import AgentError, agent_url

    expect(lambda: m.parse_frame_data(text), m.ProtocolError)
    expect(lambda: agent_url(text, False), AgentError)


# --- the table --------------------------------------------------------------------------------------
def _pick(seeds: Mapping[str, list[bytes]]) -> st.SearchStrategy[tuple[str, bytes]]:
    return st.sampled_from(sorted(seeds)).flatmap(lambda k: st.tuples(st.just(k), fuzz_bytes(seeds[k])))


def _urls() -> st.SearchStrategy[str]:
    pieces = st.sampled_from(["rtmp://", "ws://", "wss://", "127.0.0.1", "[::1]", "[", "]", ":", "1935", "99999", "/", "live",
                              "?", "&a=b", "#", "@", "%", "x", " ", "\u00e9", "\\"])  # fmt: skip
    return st.one_of(st.text(max_size=30), st.lists(pieces, max_size=10).map("".join))


def targets() -> list[Target]:
    """Every parser target; strategies are built lazily (the seeds encode real media)."""
    rtp = st.deferred(lambda: fuzz_bytes(rtp_seeds()))
    return [
        ("rtp.header_length", rtp, check_header_length),
        ("rtp.rewrite+detectors", st.deferred(rewrite_inputs), check_rewrite),
        ("rtp.unwrap_rtx", st.tuples(rtp, st.integers(0, 127), st.integers(0, 0xFFFFFFFF)), check_unwrap_rtx),
        (
            "rtp.Depacketizer",
            st.sampled_from(["h264", "vp8", "vp9", "opus"]).flatmap(
                lambda c: st.tuples(st.just(c), packet_sequences(c), st.sampled_from([1, 4, 32]))
            ),
            check_depacketizer,
        ),
        ("webrtc.install_ingest+Stream.forward", st.deferred(ingest_inputs), check_ingest),
        ("rtcp.RtcpPacket.parse", st.deferred(lambda: fuzz_bytes(rtcp_seeds())), check_rtcp),
        ("rtmp.amf0.decode", st.deferred(lambda: fuzz_bytes(amf_seeds())), check_amf),
        ("rtmp.ChunkReader.feed", st.deferred(chunk_inputs), check_chunks),
        (
            "rtmp.parse_command",
            st.tuples(
                st.sampled_from([20, 17]),
                st.deferred(lambda: fuzz_bytes([*amf_seeds(), *(b"\x00" + s for s in amf_seeds())])),
            ),
            check_command,
        ),
        (
            "rtmp.flv+codecs",
            st.deferred(
                lambda: st.one_of(_pick(media_tags()), st.tuples(st.just("data"), fuzz_bytes(amf_seeds())))
            ),
            check_flv,
        ),
        (
            "rtmp.control+aggregate",
            st.tuples(st.sampled_from([4, 5, 22]), st.deferred(lambda: fuzz_bytes(chunk_seeds()))),
            check_control,
        ),
        ("rtmp.parse_url", _urls(), check_rtmp_url),
        ("wcs.parse_frame+agent_url", st.one_of(_urls(), json_values.map(json.dumps)), check_wcs_frame),
    ]
