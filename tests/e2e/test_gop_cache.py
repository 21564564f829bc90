"""The GOP cache with real clients: Chromium's Player page joining a running stream (published by
Chromium's Two Way Streaming page) decodes at once from the cached GOP — no keyframe is asked of the
publisher for it, and its picture keeps going (a GOP Chromium could not decode would make it ask for
one). Run against the VP8 and the H264 server; the time from PLAYING to the first decoded frame is
printed (bench/perf.py and bench/cluster.py measure it; nothing is timed here)."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from playwright.async_api import BrowserContext

from .pages import LiveServer, Player, TwoWayStreaming

pytestmark = pytest.mark.asyncio(loop_scope="session")

FIRST_FRAME = """() => { window.__firstFrame = new Promise(resolve => {
  const t = {}; const status = document.querySelector('#status');
  const check = () => {
    if (t.playing === undefined && status.textContent === 'PLAYING') t.playing = performance.now();
    const v = document.querySelector('#remoteVideo video');
    if (t.frame === undefined && v && v.webkitDecodedFrameCount > 0) t.frame = performance.now();
    if (t.playing !== undefined && t.frame !== undefined) resolve(t.frame - t.playing);
    else setTimeout(check, 2);
  };
  check();
}); }"""


async def counters(server: LiveServer) -> dict[str, float]:
    async with aiohttp.ClientSession() as http, http.get(f"http://{server.host}:8081/metrics") as r:
        text = await r.text()
    out = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in ("rtcdn_plis_sent_total", "rtcdn_keyframes_spared_total"):
            out[name] = float(value)
    return out


async def test_a_player_joining_a_running_stream_decodes_from_the_cached_gop(
    context: BrowserContext, live_server: LiveServer
) -> None:
    publisher = await TwoWayStreaming.connect(context, live_server)
    await publisher.publish()
    await publisher.expect_publishing()
    await asyncio.sleep(1.5)  # a keyframe (the publish's own) and a GOP behind it
    before = await counters(live_server)
    player = await Player.load(context, live_server, publisher.name)
    await player.page.evaluate(FIRST_FRAME)
    await player.play()
    await player.expect_playing()  # PLAYING, the server's codec, decoded frames that keep increasing
    ms = await player.page.evaluate("window.__firstFrame")
    after = await counters(live_server)
    print(f"\n{live_server.codec}: PLAYING -> first decoded frame {ms:.0f} ms")
    assert after["rtcdn_keyframes_spared_total"] == before["rtcdn_keyframes_spared_total"] + 1
    assert after["rtcdn_plis_sent_total"] == before["rtcdn_plis_sent_total"]  # nobody asked for one
    await player.stop()
    await publisher.unpublish()
