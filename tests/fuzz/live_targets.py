"""Live fuzz targets: an in-process Server fed bad WCS frames, REST calls and RTMP byte streams while
a steady WebRTC stream (:class:`Steady`) keeps playing.

Each target is a class: ``await setup()``, then ``check(example)`` from the driver thread (it runs
the example on the server's loop, or for REST sends the request itself), then ``await close()``.
The tests (tests/fuzz/test_*.py) and bench/fuzz.py use the same classes with different budgets.
Pass: no exception escapes a handler (the log watch), every reply is well-formed, the bad client's
streams and peers are gone after each example, and the steady stream never stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
import fuzzkit  # noqa: F401  (sys.path)
from aiortc import RTCConfiguration, RTCPeerConnection
from fuzzkit import (
    Pool,
    closed_port,
    fuzz_bytes,
    json_values,
    mutated_sdp,
    odd_values,
    on_loop,
    safe_urls,
    sanitize_urls,
    strict_json,
)
from hypothesis import strategies as st

from rtcdn.server import Server
from rtcdn.wcs import messages as m
from rtcdn.wcs.session import HANDLERS
from rtcdn.webrtc._aiortc import PortRange, patch_gathering
from wcs_client import WcsClient

T = TypeVar("T")


class Finding(AssertionError):
    """The server broke a rule of the fuzz run."""


# --- the steady stream ------------------------------------------------------------------------------
class Steady:
    """A publisher and a viewer of ``name`` on the server; the viewer's video frames are counted."""

    def __init__(self, server: Server, name: str | None = None) -> None:
        self.server = server
        self.name = name or f"steady-{uuid.uuid4().hex[:6]}"
        self.url = f"ws://127.0.0.1:{server.settings.ws_port}/"
        self.pub = WcsClient(self.url)
        self.viewer = WcsClient(self.url)
        self.times: list[float] = []
        self.msids: list[str] = []
        self._counter: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Steady:
        await self.pub.connect()
        msid, _, status = await self.pub.publish(self.name)
        assert status is not None and status["status"] == m.PUBLISHING, status
        await self.viewer.connect()
        view_msid, pc, status = await self.viewer.play(self.name)
        assert status is not None and status["status"] == m.PLAYING, status
        self.msids = [msid, view_msid]
        video = next(r.track for r in pc.getReceivers() if r.track.kind == "video")
        self._counter = asyncio.ensure_future(self._count(video))
        assert await self.frames_within(1.0) > 3, "the steady stream does not play"
        return self

    async def _count(self, track: Any) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(Exception):
            while True:
                await track.recv()
                self.times.append(loop.time())

    async def frames_within(self, seconds: float) -> int:
        start = asyncio.get_running_loop().time()
        await asyncio.sleep(seconds)
        return sum(1 for t in self.times if t >= start)

    async def __aexit__(self, *exc: object) -> None:
        if self._counter is not None:
            self._counter.cancel()
            await asyncio.gather(self._counter, return_exceptions=True)
        await self.viewer.close()
        await self.pub.close()


async def make_offers() -> list[str]:
    """Real aiortc offers (publish audio+video, video only, play), host candidates on 127.0.0.1;
    the peers are closed at once: their candidates point at closed ports."""
    from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

    offers = []
    for plan in (("sendonly", True, True), ("sendonly", False, True), ("recvonly", True, True)):
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        direction, audio, video = plan
        if audio:
            pc.addTransceiver(AudioStreamTrack() if direction == "sendonly" else "audio", direction=direction)
        if video:
            pc.addTransceiver(VideoStreamTrack() if direction == "sendonly" else "video", direction=direction)
        offer = await pc.createOffer()
        patch_gathering(pc, ["127.0.0.1"], PortRange(0, 0), None)
        await pc.setLocalDescription(offer)
        offers.append(str(pc.localDescription.sdp))
        await pc.close()
    return offers


# --- WCS frames ---------------------------------------------------------------------------------------
MESSAGES = sorted(HANDLERS) + sorted(m.IGNORED) + sorted(m.SIP) + [
    "fooBar", "", "__init__", "__class__", "_end", "close", "run", "send", "text", "PublishStream", "publishstream",
]  # fmt: skip
RAW_FRAMES = [
    "{not json", "", " ", "null", "[]", '["a list"]', "42", '"str"', '{"data": [{}]}', '{"message": 5}',
    '{"message": ["connection"]}', '{"message": "connection", "data": {"appKey": "x"}}',
    '{"message": "ping", "data": [NaN]}', '{"message": "publishStream", "data": [{"mediaSessionId": -Infinity}]}',
    '{"message": "connection", "message": "ping"}', "\ufeff{}", '{"message": "\\ud800"}', "[" * 900 + "]" * 900,
]  # fmt: skip
# Not here (known bugs, each with its xfail test in test_wcs_frames.py): nesting deeper than the recursion
# limit (test_deeply_nested_frame_is_refused), NaN/Infinity in an echoed connection field
# (test_non_finite_numbers_are_not_echoed).


@dataclass
class WcsExample:
    frames: list[str]
    fresh: bool
    "On a new socket that never sent ``connection`` (else on the shared established session)."
    vanish: bool
    "Close the socket right after the frames, without stopping anything."


def _payload_template(
    draw: st.DrawFn, name: str, offers: list[str], names: list[str], msids: list[str]
) -> Any:
    msid = draw(st.sampled_from(msids) | st.text(min_size=1, max_size=8).map(lambda s: f"fz-{s}"))
    stream = draw(st.sampled_from(names))
    sdp = draw(st.one_of(mutated_sdp(offers), st.sampled_from(offers), odd_values))
    if name == "connection":
        payload: Any = m.connection_payload("rtcdn fuzz")
        if draw(st.booleans()):
            payload["custom"] = draw(json_values)
    elif name in ("publishStream", "playStream"):
        payload = m.stream_payload(msid, stream, name == "publishStream", sdp)
        if draw(st.integers(0, 4)) == 0:
            payload["rtmpUrl"] = draw(st.sampled_from(safe_urls(1)))
    elif name in ("stopStream", "unPublishStream", "availableStream", "snapshot"):
        payload = {"mediaSessionId": msid, "name": stream}
    elif name == "sendStreamEvent":
        payload = {"mediaSessionId": msid, "type": draw(st.sampled_from([*m.MUTE_EVENTS, "custom", ""])),
                   "payload": draw(json_values)}  # fmt: skip
    elif name == "sendData":
        payload = {"operationId": draw(json_values), "payload": draw(json_values)}
    elif name == "call":
        payload = {"callId": draw(json_values), "callee": draw(st.text(max_size=10))}
    else:
        payload = draw(json_values)
    return payload


@st.composite
def wcs_frame(draw: st.DrawFn, offers: list[str], names: list[str], msids: list[str]) -> str:
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(st.sampled_from(RAW_FRAMES))
    if kind == 1:
        return json.dumps(draw(json_values))
    name = draw(st.sampled_from(MESSAGES) | st.text(max_size=12))
    payload = _payload_template(draw, name, offers, names, msids)
    if isinstance(payload, dict):
        for _ in range(draw(st.integers(0, 3))):  # mutated fields: missing, null, wrong types, huge, nested
            keys = sorted(payload)
            op = draw(st.integers(0, 2))
            if op == 0 and keys:
                del payload[draw(st.sampled_from(keys))]
            elif op == 1 and keys:
                payload[draw(st.sampled_from(keys))] = draw(odd_values)
            else:
                payload[draw(st.text(max_size=10))] = draw(odd_values)
    shape = draw(st.integers(0, 9))
    frame: dict[str, Any] = {"message": name}
    if shape == 0:
        frame["data"] = payload  # not a list
    elif shape == 1:
        pass  # no data
    elif shape == 2:
        frame["data"] = [payload, draw(json_values)]
    elif shape == 3:
        frame["data"] = []
    else:
        frame["data"] = [payload]
    if draw(st.integers(0, 9)) == 0:
        frame[draw(st.sampled_from(["extra", "message2", "data "]))] = draw(odd_values)
    return json.dumps(frame)


@st.composite
def wcs_examples(draw: st.DrawFn, offers: list[str], names: list[str], msids: list[str]) -> WcsExample:
    frames = draw(st.lists(wcs_frame(offers, names, msids), min_size=1, max_size=4))
    return WcsExample(frames, fresh=draw(st.integers(0, 5)) == 0, vanish=draw(st.integers(0, 7)) == 0)


class RawWcs:
    """A raw WebSocket client: frames out as they are, every frame in checked (strict JSON, a
    non-empty ``message``, ``data`` a list), server pings answered."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, findings: list[str]) -> None:
        self.ws = ws
        self.findings = findings
        self.frames: list[dict[str, Any]] = []

    @classmethod
    async def open(cls, http: aiohttp.ClientSession, url: str, findings: list[str]) -> RawWcs:
        ws = await http.ws_connect(url, heartbeat=None, max_msg_size=0)
        return cls(ws, findings)

    def _check(self, text: str) -> dict[str, Any] | None:
        try:
            frame = strict_json(text)
        except ValueError as exc:
            self.findings.append(f"server frame is not JSON ({exc}): {text[:300]!r}")
            return None
        if not isinstance(frame, dict) or not isinstance(frame.get("message"), str) or not frame["message"]:
            self.findings.append(f"server frame without a message: {text[:300]!r}")
            return None
        if not isinstance(frame.get("data"), list):
            self.findings.append(f"server frame whose data is not a list: {text[:300]!r}")
        self.frames.append(frame)
        return frame

    async def sync(self, timeout: float = 10.0) -> bool:
        """Ping, then read (checking) until the pong: every frame sent before is handled. False if
        the socket closed instead (its close code is in ``self.close_code``)."""
        if self.ws.closed:
            return False
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.ws.send_str(m.frame("ping"))
        async with asyncio.timeout(timeout):
            while True:
                msg = await self.ws.receive()
                if msg.type != aiohttp.WSMsgType.TEXT:
                    return False
                frame = self._check(msg.data)
                if frame is None:
                    continue
                if frame["message"] == "ping":
                    await self.ws.send_str(m.frame("pong"))
                elif frame["message"] == "pong":
                    return True

    async def send(self, text: str) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.ws.send_str(text)

    async def close(self) -> None:
        await self.ws.close()


def _sanitize_frame(text: str, port: int) -> str:
    """A frame's ``uri``/``rtmpUrl`` values made safe (a frame that is not JSON cannot carry one)."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return text
    safe = sanitize_urls(value, port)
    return text if safe == value else json.dumps(safe)


def _no_steady_msid(text: str, steady: list[str]) -> str:
    """Known bug (test_foreign_media_session_id_keeps_the_owner_listed): a publishStream/playStream
    reusing another session's mediaSessionId evicts that session's entry from the REST registry; such
    a frame gets a fresh id instead."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return text
    if not isinstance(value, dict) or value.get("message") not in ("publishStream", "playStream"):
        return text
    data = value.get("data")
    items = data if isinstance(data, list) else [data]
    hit = False
    for item in items:
        if isinstance(item, dict) and item.get("mediaSessionId") in steady:
            item["mediaSessionId"] = f"fz-not-{item['mediaSessionId']}"
            hit = True
    return json.dumps(value) if hit else text


def _msids_of(text: str) -> list[str]:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return []
    data = value.get("data") if isinstance(value, dict) else None
    items = data if isinstance(data, list) else [data]
    return [
        i["mediaSessionId"] for i in items if isinstance(i, dict) and isinstance(i.get("mediaSessionId"), str)
    ]


class WcsTarget:
    """Bad frames on a shared established session and on fresh ones; the server answers each, ends
    what the example started when told (stopStream/unPublishStream), and closes nothing else."""

    def __init__(self, server: Server, steady: Steady) -> None:
        self.server = server
        self.steady = steady
        self.url = steady.url
        self.port = closed_port()
        self.findings: list[str] = []
        self.offers: list[str] = []
        self.http: aiohttp.ClientSession | None = None
        self.shared: RawWcs | None = None
        self.run: Callable[[Coroutine[Any, Any, Any]], Any] | None = None

    async def setup(self) -> None:
        self.offers = Pool(await make_offers())
        self.http = aiohttp.ClientSession()
        await self._open_shared()
        self.run = on_loop(asyncio.get_running_loop())

    def strategy(self) -> st.SearchStrategy[WcsExample]:
        names = [self.steady.name, "fz-a", "fz-b", "", " ", "fz-\u00e9\u2028"]
        msids = [*self.steady.msids, "fz-1", "fz-2"]
        return wcs_examples(self.offers, Pool(names), Pool(msids))

    async def _open_shared(self) -> None:
        assert self.http is not None
        self.shared = await RawWcs.open(self.http, self.url, self.findings)
        await self.shared.send(m.frame("connection", m.connection_payload("rtcdn fuzz")))
        assert await self.shared.sync(), "the shared session did not open"
        assert any(f["message"] == "getUserData" for f in self.shared.frames)

    async def example(self, ex: WcsExample) -> None:
        assert self.http is not None and self.shared is not None
        frames = [_no_steady_msid(_sanitize_frame(f, self.port), self.steady.msids) for f in ex.frames]
        client = await RawWcs.open(self.http, self.url, self.findings) if ex.fresh else self.shared
        too_big = any(len(f.encode("utf-8", "surrogatepass")) > m.MAX_FRAME_BYTES for f in frames)
        for text in frames:
            await client.send(text)
        msids = sorted({msid for f in frames for msid in _msids_of(f)} - set(self.steady.msids))
        if ex.vanish or ex.fresh:
            if not ex.vanish:
                await client.sync()
            await client.close()
            if client is self.shared:
                await self._open_shared()
        else:
            for msid in msids:  # end what the example may have started
                for name in ("stopStream", "unPublishStream"):
                    await client.send(m.frame(name, {"mediaSessionId": msid}))
            if not await client.sync():
                if not too_big:
                    self.findings.append(
                        f"the server closed the session (code {client.ws.close_code}) after {frames!r:.500}"
                    )
                await self._open_shared()
        if self.findings:
            found, self.findings[:] = list(self.findings), []
            raise Finding("; ".join(found)[:3000])

    def check(self, ex: WcsExample) -> None:
        assert self.run is not None
        self.run(self.example(ex))

    async def close(self) -> None:
        if self.shared is not None:
            await self.shared.close()
        if self.http is not None:
            await self.http.close()


# --- REST (schemathesis) ------------------------------------------------------------------------------
REST_CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
)


@dataclass
class RestTarget:
    """Every operation of ``/rest-api/openapi.json``, positive and negative cases (schemathesis);
    ``uri``/``rtmpUrl`` values in a body become :func:`fuzzkit.safe_urls` ones before sending, and
    the steady stream's name is put in some bodies so pushes and relays of a live stream run too."""

    server: Server
    steady: Steady
    port: int = field(default_factory=closed_port)
    base: str = ""
    schema: Any = None
    session: Any = None

    async def setup(self) -> None:
        import requests
        import schemathesis

        self.base = f"http://127.0.0.1:{self.server.settings.http_ports[0]}"
        async with aiohttp.ClientSession() as http, http.get(f"{self.base}/rest-api/openapi.json") as resp:
            doc = await resp.json()
        self.schema = schemathesis.openapi.from_dict(doc)
        self.session = requests.Session()

    def strategy(self) -> st.SearchStrategy[Any]:
        from schemathesis import GenerationMode

        return st.one_of(
            self.schema.as_strategy(generation_mode=GenerationMode.POSITIVE),
            self.schema.as_strategy(generation_mode=GenerationMode.NEGATIVE),
        )

    def _prepare(self, case: Any) -> None:
        body = case.body
        if isinstance(body, dict):
            body = sanitize_urls(body, self.port)
            h = sum(map(ord, json.dumps(body, default=str)[:200]))
            for key in ("streamName", "localStreamName"):  # never "name": /stream/terminate would end it
                if key in body and isinstance(body[key], str) and h % 3 == 0:
                    body[key] = self.steady.name
            case.body = body
        elif isinstance(body, list):
            case.body = sanitize_urls(body, self.port)
        elif isinstance(body, str) and ("uri" in body or "rtmpUrl" in body):
            case.body = ""

    def check(self, case: Any) -> None:
        from schemathesis import checks

        self._prepare(case)
        wanted = [getattr(checks, name) for name in REST_CHECKS]
        response = case.call(base_url=self.base, session=self.session, timeout=15)
        case.validate_response(response, checks=wanted)

    async def cleanup(self) -> None:
        """End every push and relay the fuzz started (they retry while the steady stream lives)."""
        for push in list(self.server.pushes):
            self.server.pushes.terminate(push)
        for relay in list(self.server.relays):
            self.server.relays.terminate(relay)

    async def close(self) -> None:
        await self.cleanup()
        if self.session is not None:
            self.session.close()


# --- RTMP -----------------------------------------------------------------------------------------
@dataclass
class RtmpExample:
    handshake: int
    "0 none (raw bytes first), 1 real, 2 a bad version byte, 3 cut short."
    data: bytes
    half_close: bool


@st.composite
def rtmp_examples(draw: st.DrawFn, seeds: list[bytes]) -> RtmpExample:
    handshake = draw(st.sampled_from([1, 1, 1, 1, 1, 0, 2, 3]))
    data = draw(st.one_of(fuzz_bytes(seeds, max_random=300), st.sampled_from(seeds)))
    return RtmpExample(handshake, data, half_close=draw(st.booleans()))


def rtmp_sessions(steady: str) -> list[bytes]:
    """Client byte streams after the handshake: publishing real H.264/AAC/Opus (parser_targets'
    seeds), playing the steady stream as a legacy and as an Enhanced RTMP (vp08) client, bad orders."""
    from parser_targets import CONNECT, chunk_seeds

    from rtcdn.rtmp import amf0, chunk
    from rtcdn.rtmp.chunk import ChunkWriter, Message

    def session(*msgs: Message) -> bytes:
        w = ChunkWriter()
        return b"".join(w.write(msg) for msg in msgs)

    def cmd(stream: int, *values: object) -> Message:
        return Message(chunk.COMMAND_AMF0, stream, 0, amf0.encode(*values))

    legacy = {"app": "live", "flashVer": "LNX 9,0,124,2", "tcUrl": "rtmp://127.0.0.1/live"}
    return [
        *chunk_seeds(),
        session(
            cmd(0, "connect", 1.0, legacy),
            cmd(0, "createStream", 2.0, None),
            cmd(1, "play", 3.0, None, steady),
        ),
        session(
            cmd(0, "connect", 1.0, CONNECT),
            cmd(0, "createStream", 2.0, None),
            cmd(1, "play", 3.0, None, steady),
            cmd(1, "receiveVideo", 0.0, None, False),
            cmd(1, "closeStream", 0.0, None),
        ),
        session(cmd(0, "publish", 1.0, None, "x"), cmd(0, "connect", 1.0, legacy)),
        session(
            cmd(0, "connect", 1.0, legacy),
            cmd(0, "createStream", 2.0, None),
            cmd(1, "publish", 3.0, None, steady),
        ),
        session(
            cmd(0, "connect", 1.0, legacy),
            Message(chunk.VIDEO, 1, 0, b"\x17\x01"),
            cmd(0, "FCUnpublish", 4.0, None, "x"),
        ),
    ]


class RtmpTarget:
    """Raw TCP clients on the RTMP port: a handshake (or not), then mutated chunk streams and AMF
    commands; the server closes only that connection, and ends what it started."""

    def __init__(self, server: Server, steady: Steady) -> None:
        self.server = server
        self.steady = steady
        frontend = next(li for li in server.listeners if hasattr(li, "play_wait"))
        frontend.play_wait = 1.0  # a play of a missing stream waits 1 s, not 10, for it
        self.port = server.settings.rtmp_port
        self.seeds: list[bytes] = []
        self.run: Callable[[Coroutine[Any, Any, Any]], Any] | None = None
        self.closed_by_server = 0

    async def setup(self) -> None:
        self.seeds = Pool(rtmp_sessions(self.steady.name))
        self.run = on_loop(asyncio.get_running_loop())

    def strategy(self) -> st.SearchStrategy[RtmpExample]:
        return rtmp_examples(self.seeds)

    async def example(self, ex: RtmpExample) -> None:
        from rtcdn.rtmp.handshake import client_handshake

        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            if ex.handshake == 1:
                await client_handshake(reader, writer, 5.0)
            elif ex.handshake == 2:
                writer.write(b"\x06" + bytes(1536))
            elif ex.handshake == 3:
                writer.write(b"\x03" + bytes(700))
            writer.write(ex.data)
            if ex.half_close:
                writer.write_eof()
            async with asyncio.timeout(0.5 if ex.half_close else 0.15):
                with contextlib.suppress(ConnectionError):
                    while await reader.read(65536):
                        pass
                    self.closed_by_server += 1
        except TimeoutError:
            pass  # the server waits for more: fine, we hang up
        finally:
            writer.transport.abort()
        await self._quiet()

    async def _quiet(self) -> None:
        """Wait until the server has torn the connection down (streams of it ended)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + 5
        rtmp = next(li for li in self.server.listeners if hasattr(li, "play_wait"))
        while loop.time() < end and (rtmp.server.connections or len(self.server.streams) > 1):
            await asyncio.sleep(0.02)
        if rtmp.server.connections or len(self.server.streams) > 1:
            raise Finding(
                f"RTMP connection or stream left: {rtmp.server.connections} {[s.name for s in self.server.streams]}"
            )

    def check(self, ex: RtmpExample) -> None:
        assert self.run is not None
        self.run(self.example(ex))

    async def close(self) -> None:
        pass


__all__ = ["RestTarget", "RtmpTarget", "Steady", "WcsTarget"]
