"""A test client speaking the WCS WebSDK protocol with aiortc peers, as the browser SDK does.

The protocol (frames, payloads, pings, routing by mediaSessionId) is :class:`rtcdn.wcs.client.WcsAgent`;
this adds the peers and what the tests wait on: every frame, each stream's answer and statuses.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, MediaStreamTrack, VideoStreamTrack

from rtcdn.wcs import messages as m
from rtcdn.wcs.client import AgentError, WcsAgent
from rtcdn.webrtc._aiortc import PortRange, patch_gathering


class WcsClient:
    """One session. ``sdp[msid]`` is a future of the answer; :meth:`wait_status` gives the statuses.
    ``custom``: the ``connection``'s ``custom`` (``createSession({custom})``, e.g. ``{"token": jwt}``)."""

    def __init__(self, url: str, address: str = "127.0.0.1", custom: dict[str, Any] | None = None) -> None:
        self.url = url
        self.address = address
        self.agent = WcsAgent(
            url, label=f"test client {url}", watch_all=True, client="rtcdn test client", custom=custom
        )
        self.agent.on_frame = self._on_frame
        self.user_data: dict[str, Any] | None = None
        self.frames: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        'Every frame received but pings, as {"message": ..., "data": [...]}.'
        self.sdp: dict[str, asyncio.Future[str]] = {}
        self.pcs: list[RTCPeerConnection] = []

    @property
    def closed(self) -> asyncio.Event:
        return self.agent.closed

    @property
    def pings(self) -> int:
        return self.agent.pings

    async def __aenter__(self) -> WcsClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open_socket(self) -> None:
        await self.agent.open()

    async def connect(self) -> dict[str, Any]:
        self.user_data = await self.agent.connect()
        return self.user_data

    async def send(self, message: str, payload: Any = None) -> None:
        await self.agent.send(message, payload)

    async def send_raw(self, text: str) -> None:
        await self.agent.send_raw(text)

    def _on_frame(self, message: str, data: list[Any]) -> None:
        if message == "setRemoteSDP" and len(data) >= 2:
            future = self.sdp.setdefault(str(data[0]), asyncio.get_running_loop().create_future())
            if not future.done():
                future.set_result(str(data[1]))
        self.frames.put_nowait({"message": message, "data": data})

    async def wait_message(self, name: str, timeout: float = 10) -> dict[str, Any]:
        """The next frame called ``name`` (the frames before it are passed over)."""
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.frames.get()
                if frame["message"] == name:
                    return frame

    async def wait_status(self, msid: str, timeout: float = 20) -> dict[str, Any]:
        """The next notifyStreamStatusEvent payload for ``msid``."""
        queue = self.agent.watch(msid)
        async with asyncio.timeout(timeout):
            while True:
                message, item = await queue.get()
                if message == "notifyStreamStatusEvent":
                    return dict(item)
                if message == "closed":
                    raise AgentError(f"socket closed while waiting for a status of {msid}: {item}")

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
        self,
        name: str,
        tracks: list[MediaStreamTrack] | None = None,
        wait: bool = True,
        custom: dict[str, Any] | None = None,
    ) -> tuple[str, RTCPeerConnection, dict[str, Any] | None]:
        pc = self.new_pc()
        tracks = tracks if tracks is not None else [AudioStreamTrack(), VideoStreamTrack()]
        for track in tracks:
            pc.addTransceiver(track, direction="sendonly")
        kinds = {track.kind for track in tracks}
        msid = str(uuid.uuid1())
        sdp = await self._offer(pc)
        payload = m.stream_payload(msid, name, True, sdp, "audio" in kinds, "video" in kinds)
        if custom is not None:
            payload["custom"] = custom
        return msid, pc, await self._request("publishStream", payload, pc, m.PUBLISHING, wait)

    async def play(
        self,
        name: str,
        kinds: tuple[str, ...] = ("audio", "video"),
        wait: bool = True,
        custom: dict[str, Any] | None = None,
    ) -> tuple[str, RTCPeerConnection, dict[str, Any] | None]:
        pc = self.new_pc()
        for kind in kinds:
            pc.addTransceiver(kind, direction="recvonly")
        msid = str(uuid.uuid1())
        payload = m.stream_payload(msid, name, False, await self._offer(pc))
        if custom is not None:
            payload["custom"] = custom
        return msid, pc, await self._request("playStream", payload, pc, m.PLAYING, wait)

    async def _request(
        self, message: str, payload: dict[str, Any], pc: RTCPeerConnection, wanted: str, wait: bool
    ) -> dict[str, Any] | None:
        """Send the request; with ``wait``, apply the answer and return the status that settles it."""
        if not wait:
            await self.send(message, payload)
            return None

        async def accept(sdp: str) -> None:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))

        return await self.agent.negotiate(message, payload, wanted, accept, timeout=20)

    async def close(self) -> None:
        for pc in self.pcs:
            await pc.close()
        await self.agent.close()


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
