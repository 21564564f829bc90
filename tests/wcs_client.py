"""A test client speaking the WCS WebSDK protocol with an aiortc peer, as the browser SDK does."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from typing import Any

import aiohttp
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, MediaStreamTrack, VideoStreamTrack

from rtcdn.webrtc._aiortc import PortRange, patch_gathering


class WcsClient:
    """One session. ``events[msid]`` is a queue of notifyStreamStatusEvent payloads."""

    def __init__(self, url: str, address: str = "127.0.0.1") -> None:
        self.url = url
        self.address = address
        self.http: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.user_data: dict[str, Any] | None = None
        self.frames: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.status: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        self.sdp: dict[str, asyncio.Future[str]] = {}
        self.other: list[dict[str, Any]] = []
        self.pcs: list[RTCPeerConnection] = []
        self._reader: asyncio.Task[None] | None = None
        self.closed = asyncio.Event()
        self.pings = 0

    async def __aenter__(self) -> WcsClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open_socket(self) -> None:
        self.http = aiohttp.ClientSession()
        self.ws = await self.http.ws_connect(self.url, max_msg_size=0)
        self._reader = asyncio.create_task(self._read())

    async def connect(self) -> dict[str, Any]:
        await self.open_socket()
        await self.send(
            "connection", {"appKey": "defaultApp", "mediaProviders": ["WebRTC"], "clientVersion": "2.0"}
        )
        frame = await self.wait_message("getUserData")
        self.user_data = frame["data"][0]
        return self.user_data

    async def send(self, message: str, payload: Any = None) -> None:
        assert self.ws is not None
        await self.ws.send_str(json.dumps({"message": message, "data": [payload]}))

    async def send_raw(self, text: str) -> None:
        assert self.ws is not None
        await self.ws.send_str(text)

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for msg in self.ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                assert isinstance(frame["data"], list), frame
                name = frame["message"]
                if name == "ping":
                    assert frame["data"] == [], frame
                    self.pings += 1
                    await self.send("pong", None)
                    continue
                if name == "setRemoteSDP":
                    msid, sdp = frame["data"]
                    self.sdp.setdefault(msid, asyncio.get_running_loop().create_future()).set_result(sdp)
                elif name == "notifyStreamStatusEvent":
                    payload = frame["data"][0]
                    self.status.setdefault(payload["mediaSessionId"], asyncio.Queue()).put_nowait(payload)
                self.frames.put_nowait(frame)
        finally:
            self.closed.set()

    async def wait_message(self, name: str, timeout: float = 10) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.frames.get()
                if frame["message"] == name:
                    return frame
                self.other.append(frame)

    async def wait_status(self, msid: str, timeout: float = 20) -> dict[str, Any]:
        queue = self.status.setdefault(msid, asyncio.Queue())
        async with asyncio.timeout(timeout):
            return await queue.get()

    def new_pc(self) -> RTCPeerConnection:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pcs.append(pc)
        return pc

    async def _offer(self, pc: RTCPeerConnection) -> str:
        offer = await pc.createOffer()
        patch_gathering(pc, [self.address], PortRange(0, 0), None)
        await pc.setLocalDescription(offer)
        return str(pc.localDescription.sdp)

    async def publish(
        self, name: str, tracks: list[MediaStreamTrack] | None = None, wait: bool = True
    ) -> tuple[str, RTCPeerConnection, dict[str, Any] | None]:
        pc = self.new_pc()
        for track in tracks if tracks is not None else [AudioStreamTrack(), VideoStreamTrack()]:
            pc.addTransceiver(track, direction="sendonly")
        msid = str(uuid.uuid1())
        sdp = await self._offer(pc)
        await self.send(
            "publishStream",
            {
                "mediaSessionId": msid,
                "name": name,
                "published": True,
                "hasVideo": True,
                "hasAudio": True,
                "status": "PENDING",
                "record": False,
                "mediaProvider": "WebRTC",
                "sdp": sdp,
            },
        )
        status = await self._answer_and_wait(pc, msid) if wait else None
        return msid, pc, status

    async def play(
        self, name: str, kinds: tuple[str, ...] = ("audio", "video"), wait: bool = True
    ) -> tuple[str, RTCPeerConnection, dict[str, Any] | None]:
        pc = self.new_pc()
        for kind in kinds:
            pc.addTransceiver(kind, direction="recvonly")
        msid = str(uuid.uuid1())
        sdp = await self._offer(pc)
        await self.send(
            "playStream",
            {
                "mediaSessionId": msid,
                "name": name,
                "published": False,
                "hasVideo": True,
                "hasAudio": True,
                "status": "PENDING",
                "record": False,
                "width": 0,
                "height": 0,
                "mediaProvider": "WebRTC",
                "sdp": sdp,
            },
        )
        status = await self._answer_and_wait(pc, msid) if wait else None
        return msid, pc, status

    async def _answer_and_wait(self, pc: RTCPeerConnection, msid: str) -> dict[str, Any]:
        future = self.sdp.setdefault(msid, asyncio.get_running_loop().create_future())
        status_task = asyncio.ensure_future(self.wait_status(msid))
        done, _ = await asyncio.wait({future, status_task}, timeout=20, return_when=asyncio.FIRST_COMPLETED)
        if status_task in done:  # FAILED before any SDP
            return status_task.result()
        await pc.setRemoteDescription(RTCSessionDescription(sdp=future.result(), type="answer"))
        return await status_task

    async def close(self) -> None:
        for pc in self.pcs:
            await pc.close()
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self.http is not None:
            await self.http.close()


async def count_frames(track: MediaStreamTrack, seconds: float) -> int:
    """Decode frames from a received track for ``seconds``; returns how many arrived."""
    frames = 0
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    with contextlib.suppress(asyncio.TimeoutError):
        while loop.time() < end:
            await asyncio.wait_for(track.recv(), timeout=max(0.01, end - loop.time()))
            frames += 1
    return frames
