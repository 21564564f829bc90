"""Drivers for the unmodified WebSDK demo pages (Two Way Streaming, Player, Embed Player).

Every page gets :data:`RECORD_PEER_CONNECTIONS` as an init script, so the tests can read the
RTCPeerConnection stats the pages keep to themselves: ``window.__videoStats()`` sums the decoded
frames of every live inbound video stream and lists the codecs negotiated in both directions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Self
from urllib.parse import urlencode

from playwright.async_api import BrowserContext, Page, expect
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

TIMEOUT_MS = 15_000
"How long a status or a video may take to show up (a publish or play takes well under a second)."

FRAMES_STEP = 10
"Decoded frames a playing video must gain, twice in a row, to count as flowing (~0.5 s at 20 fps)."

RECORD_PEER_CONNECTIONS = """
(() => {
  const Native = window.RTCPeerConnection;
  if (!Native) return;
  const pcs = (window.__pcs = []);
  window.RTCPeerConnection = class extends Native {
    constructor(...args) { super(...args); pcs.push(this); }
  };
  window.__videoStats = async () => {
    const out = { frames: 0, received: [], sent: [] };
    for (const pc of pcs) {
      if (pc.connectionState === "closed" || pc.signalingState === "closed") continue;
      const stats = await pc.getStats();
      stats.forEach((r) => {
        if (r.kind !== "video" || (r.type !== "inbound-rtp" && r.type !== "outbound-rtp")) return;
        if (r.type === "inbound-rtp") out.frames += r.framesDecoded || 0;
        const codec = stats.get(r.codecId); // listed once known
        if (codec) (r.type === "inbound-rtp" ? out.received : out.sent).push(codec.mimeType);
      });
    }
    return out;
  };
  // resolves with the stats once they reach `want` ({frames, sent, received}: minimum decoded
  // frames and numbers of outgoing / incoming video streams), or with the last stats after `ms`
  window.__waitVideoStats = async (want, ms) => {
    const deadline = Date.now() + ms;
    for (;;) {
      const s = await window.__videoStats();
      const done = s.frames >= want.frames && s.sent.length >= want.sent && s.received.length >= want.received;
      if (done || Date.now() > deadline) return s;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };
})();
"""

expect.set_options(timeout=TIMEOUT_MS)

_VIDEO_SHOWN = "sel => { const v = document.querySelector(sel); return !!v && v.videoWidth > 0; }"
_VIDEOS = """[...document.querySelectorAll("video")].map((v) => ({
  id: v.id, width: v.videoWidth, readyState: v.readyState, paused: v.paused, src: !!v.srcObject,
  tracks: v.srcObject ? v.srcObject.getTracks().map((t) => `${t.kind}:${t.readyState}:${t.muted}`) : [],
}))"""


@dataclass(frozen=True)
class LiveServer:
    """A running ``rtcdn serve``; ``codec`` is the video codec its publishers get."""

    host: str
    codec: str
    workdir: Path | None = None
    pid: int = 0

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:8080"

    @property
    def wss_url(self) -> str:
        return f"wss://{self.host}:8443"

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:8081/rest-api"

    def demo(self, path: str, https: bool = False, **query: str) -> str:
        base = f"https://{self.host}:8888" if https else f"http://{self.host}:9091"
        url = f"{base}/client2/examples/demo/streaming/{path}"
        return f"{url}?{urlencode(query)}" if query else url


@dataclass
class VideoStats:
    frames: int
    received: list[str]
    sent: list[str]


class DemoPage:
    """What every demo page shares: a ``<video>`` under ``video_parent`` fed by a peer connection."""

    video_parent = "#remoteVideo"

    def __init__(self, page: Page, server: LiveServer) -> None:
        self.page = page
        self.server = server

    @classmethod
    async def open(cls, context: BrowserContext, server: LiveServer, url: str) -> Self:
        page = await context.new_page()
        await page.goto(url)
        return cls(page, server)

    # the player interface every page implements
    async def play(self) -> None:
        raise NotImplementedError

    async def expect_playing(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def expect_stopped(self) -> None:
        raise NotImplementedError

    async def click(self, selector: str) -> None:
        # Chromium runs requestAnimationFrame slowly in background tabs, and Playwright's
        # click waits for a few animation frames: without this a click takes ~1 s
        await self.page.bring_to_front()
        await self.page.click(selector)

    async def video_stats(self, frames: int = 0, sent: int = 0, received: int = 0) -> VideoStats:
        """The page's video stats, once they reach the given minimums (or after TIMEOUT_MS)."""
        want = {"frames": frames, "sent": sent, "received": received}
        stats = await self.page.evaluate("([w, ms]) => window.__waitVideoStats(w, ms)", [want, TIMEOUT_MS])
        return VideoStats(**stats)

    async def expect_text(self, selector: str, text: str) -> None:
        await expect(self.page.locator(selector)).to_have_text(text)

    async def expect_video(self) -> None:
        """A ``<video>`` with a size, the server's codec, and decoded frames that keep increasing."""
        try:
            await self.page.wait_for_function(_VIDEO_SHOWN, arg=f"{self.video_parent} video")
        except PlaywrightTimeoutError:
            videos = await self.page.evaluate(_VIDEOS)
            stats = await self.video_stats()
            raise AssertionError(f"no video shown in {self.page.url}: {videos}, {stats}") from None
        stats = await self.video_stats(received=1)
        assert stats.received == [f"video/{self.server.codec}"], stats
        for _ in range(2):
            want = stats.frames + FRAMES_STEP
            stats = await self.video_stats(frames=want)
            assert stats.frames >= want, f"decoded frames stalled: {stats}, wanted {want}"


class TwoWayStreaming(DemoPage):
    """two_way_streaming.html: connect, then publish and play a stream named in the page."""

    name = ""

    @classmethod
    async def connect(cls, context: BrowserContext, server: LiveServer) -> TwoWayStreaming:
        self = await cls.open(context, server, server.demo("two_way_streaming/two_way_streaming.html"))
        await self.click("#connectBtn")
        await self.expect_text("#connectStatus", "ESTABLISHED")
        self.name = await self.page.input_value("#publishStream")  # prefilled with a random name
        return self

    async def publish(self, name: str | None = None) -> None:
        if name is not None:
            await self.page.fill("#publishStream", name)
            self.name = name
        await self.click("#publishBtn")

    async def expect_publishing(self) -> None:
        await self.expect_text("#publishStatus", "PUBLISHING")
        await expect(self.page.locator("#publishBtn")).to_have_text("Stop")
        stats = await self.video_stats(sent=1)
        assert stats.sent == [f"video/{self.server.codec}"], stats

    async def expect_publish_failed(self, info: str) -> None:
        await self.expect_text("#publishStatus", "FAILED")
        await self.expect_text("#publishInfo", info)
        await expect(self.page.locator("#publishBtn")).to_have_text("Publish")

    async def unpublish(self) -> None:
        await self.click("#publishBtn")
        await self.expect_text("#publishStatus", "UNPUBLISHED")

    async def play(self, name: str | None = None) -> None:
        if name is not None:
            await self.page.fill("#playStream", name)
        await self.click("#playBtn")

    async def expect_playing(self) -> None:
        await self.expect_text("#playStatus", "PLAYING")
        await self.expect_video()

    async def stop(self) -> None:
        await self.click("#playBtn")
        await self.expect_stopped()

    async def expect_stopped(self) -> None:
        await self.expect_text("#playStatus", "STOPPED")
        await expect(self.page.locator("#playBtn")).to_have_text("Play")

    async def expect_play_failed(self, info: str) -> None:
        await self.expect_text("#playStatus", "FAILED")
        await self.expect_text("#playInfo", info)


class Player(DemoPage):
    """player/player.html: the WCS URL is prefilled from the page's host, the name from ?streamName=."""

    @classmethod
    async def load(
        cls, context: BrowserContext, server: LiveServer, name: str, https: bool = False
    ) -> Player:
        """The page over http (it connects to ws://host:8080) or https (wss://host:8443)."""
        self = await cls.open(
            context, server, server.demo("player/player.html", https=https, streamName=name)
        )
        await expect(self.page.locator("#url")).to_have_value(server.wss_url if https else server.ws_url)
        return self

    async def play(self) -> None:
        await self.click("#playBtn")

    async def expect_playing(self) -> None:
        await self.expect_text("#status", "PLAYING")
        await self.expect_video()

    async def stop(self) -> None:
        await self.click("#playBtn")
        await self.expect_stopped()

    async def expect_stopped(self) -> None:
        await self.expect_text("#status", "STOPPED")
        await expect(self.page.locator("#playBtn")).to_have_text("Start")

    async def expect_failed(self, info: str) -> None:
        await self.expect_text("#status", "FAILED")
        await self.expect_text("#info", info)


class EmbedPlayer(DemoPage):
    """embed_player/player.html: a central #play button; #status stays empty while PLAYING or
    STOPPED (the button shows the state) and reads "FAILED: <info>" on failure."""

    @classmethod
    async def load(cls, context: BrowserContext, server: LiveServer, name: str) -> EmbedPlayer:
        url = server.demo(
            "embed_player/player.html", urlServer=server.ws_url, streamName=name, autoplay="false"
        )
        self = await cls.open(context, server, url)
        await expect(self.page.locator("#play")).to_be_visible()
        return self

    async def play(self) -> None:
        await self.click("#play")

    async def expect_playing(self) -> None:
        await self.expect_video()
        button = self.page.locator("#play")
        await expect(button).to_have_class(re.compile(r"\bstop\b"))
        await expect(button).to_be_hidden()
        await self.expect_text("#status", "")

    async def stop(self) -> None:
        # the page stops the stream when its <video> is paused (the standard controls' pause button)
        await self.page.evaluate(f"document.querySelector('{self.video_parent} video').pause()")
        await self.expect_stopped()

    async def expect_stopped(self) -> None:
        button = self.page.locator("#play")
        await expect(button).to_have_class(re.compile(r"\bplay\b"))
        await expect(button).to_be_visible()
        await self.expect_text("#status", "")

    async def expect_failed(self, info: str) -> None:
        await self.expect_text("#status", f"FAILED: {info}")
        await expect(self.page.locator("#play")).to_be_visible()
