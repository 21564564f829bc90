"""RTMP with Debian's ffmpeg (5.1) against real ``rtcdn serve`` processes, met by the unmodified
WebSDK demo pages in headless Chromium.

* ffmpeg publishes RTMP (libx264 baseline, no B-frames + AAC) → the Player and Embed Player pages
  play it over WebRTC (H.264 passed through, AAC transcoded to Opus); REST lists the publisher with
  ``mediaProvider`` RTMP; ffmpeg stopping (SIGTERM: FCUnpublish) or dying (SIGKILL) stops the pages.
* The Two Way Streaming page publishes H.264 → ffmpeg plays it over RTMP (Opus transcoded to AAC),
  ffprobe sees h264 + aac; the page unpublishing ends a reading ffmpeg (exit 0) within seconds.
* A VP8 publisher → an ffmpeg RTMP player is refused (``NetStream.Play.Failed`` with a description
  ffmpeg prints) and the stream's WebRTC players go on undisturbed.

Servers: H (127.0.0.111, ``codecs=opus,h264``) and V (127.0.0.112, the defaults: VP8), each with its
RTMP listener on the default port 1935. RTMP cannot ask the encoder for a keyframe, so ffmpeg
publishes with a keyframe every second (a WebRTC player starts at the next one).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import BrowserContext

from .conftest import rtcdn_process
from .pages import TIMEOUT_MS, DemoPage, EmbedPlayer, LiveServer, Player, TwoWayStreaming

pytestmark = pytest.mark.asyncio(loop_scope="session")

FFMPEG = shutil.which("ffmpeg") or "/usr/bin/ffmpeg"
FFPROBE = shutil.which("ffprobe") or "/usr/bin/ffprobe"
H, V = "127.0.0.111", "127.0.0.112"
AUDIO_STEP = 25
"Audio packets (Opus, 20 ms) a playing page must gain, twice in a row (~0.5 s)."

_AUDIO_STATS = """async () => {
  const out = { packets: 0, codecs: [] };
  for (const pc of window.__pcs || []) {
    if (pc.connectionState === "closed" || pc.signalingState === "closed") continue;
    const stats = await pc.getStats();
    stats.forEach((r) => {
      if (r.kind !== "audio" || r.type !== "inbound-rtp") return;
      out.packets += r.packetsReceived || 0;
      const codec = stats.get(r.codecId);
      if (codec) out.codecs.push(codec.mimeType);
    });
  }
  return out;
}"""


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, LiveServer]]:
    base = tmp_path_factory.mktemp("rtmp")
    with contextlib.ExitStack() as stack:
        h264 = stack.enter_context(rtcdn_process(H, base / "h264", "codecs=opus,h264\n", "H264"))
        vp8 = stack.enter_context(rtcdn_process(V, base / "vp8", None, "VP8"))
        yield {"H264": h264, "VP8": vp8}


# --- helpers -------------------------------------------------------------------------------------


def rtmp_url(server: LiveServer, name: str) -> str:
    return f"rtmp://{server.host}:1935/live/{name}"


def tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.splitlines()[-lines:])


@contextlib.asynccontextmanager
async def ffmpeg_publish(url: str, log: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """ffmpeg publishing H.264 (baseline, no B-frames, keyframe every 1 s) + AAC from lavfi sources
    to ``url`` while the block runs (or until the block stops it); SIGTERM, then SIGKILL, after it."""
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            FFMPEG, "-hide_banner", "-nostats", "-loglevel", "info", "-re",
            "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=15",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
            "-t", "90", "-c:v", "libx264", "-profile:v", "baseline", "-preset", "veryfast",
            "-tune", "zerolatency", "-bf", "0", "-g", "15", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-b:a", "96k", "-f", "flv", url,
            stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
    try:
        yield proc
    finally:
        await stop(proc)


async def stop(proc: asyncio.subprocess.Process, timeout: float = 10.0) -> None:
    """SIGTERM (ffmpeg then sends FCUnpublish/deleteStream and closes), SIGKILL after ``timeout``."""
    if proc.returncode is None:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def run(*cmd: str, timeout: float = 20.0) -> tuple[int, str]:
    """Run ``cmd``; (exit code, stdout + stderr). Killed after ``timeout`` s (exit code -9): ffmpeg
    may wait forever on a stream whose publisher left."""
    proc = await asyncio.create_subprocess_exec(
        *cmd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        out, _ = await proc.communicate()
        return -9, out.decode(errors="replace")
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


async def ffmpeg_play(url: str, frames: int, timeout: float = 20.0) -> tuple[int, str]:
    """ffmpeg playing ``url`` over RTMP, decoding ``frames`` video frames: (exit code, its log)."""
    return await run(
        FFMPEG, "-hide_banner", "-nostats", "-i", url, "-frames:v", str(frames), "-f", "null", "-",
        timeout=timeout,
    )  # fmt: skip


async def rest(server: LiveServer, method: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http:
        if body is None:
            request = http.get(f"{server.rest_url}/{method}")
        else:
            request = http.post(f"{server.rest_url}/{method}", json=body)
        async with request as resp:
            return resp.status, await resp.json()


async def records(server: LiveServer, name: str) -> list[dict[str, Any]]:
    """The records of ``name`` in ``GET /rest-api/stream/find_all`` (404 "no streams": none)."""
    code, found = await rest(server, "stream/find_all")
    assert code in (200, 404), (code, found)
    return [r for r in found if r["name"] == name] if code == 200 else []


async def published(server: LiveServer, name: str, timeout: float = 20.0) -> dict[str, Any]:
    """The one publish record of ``name``, once PUBLISHING (ffmpeg takes ~2 s to start sending)."""
    async with asyncio.timeout(timeout):
        while True:
            mine = [r for r in await records(server, name) if r["published"]]
            assert len(mine) <= 1, mine
            if mine and mine[0]["status"] == "PUBLISHING":
                return mine[0]
            await asyncio.sleep(0.2)


async def until_gone(server: LiveServer, name: str, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while await records(server, name):
            await asyncio.sleep(0.1)


async def expect_audio(page: DemoPage) -> None:
    """The page receives Opus and keeps receiving it: inbound-rtp audio packets rising."""
    deadline = asyncio.get_running_loop().time() + TIMEOUT_MS / 1000
    stats = await page.page.evaluate(_AUDIO_STATS)
    for _ in range(2):
        want = stats["packets"] + AUDIO_STEP
        while stats["packets"] < want and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.1)
            stats = await page.page.evaluate(_AUDIO_STATS)
        assert stats["packets"] >= want, f"audio packets stalled in {page.page.url}: {stats}, wanted {want}"
    assert stats["codecs"] == ["audio/opus"], stats


def input_streams(log: str) -> list[str]:
    """The ``Stream #0:n...: Video: ...`` / ``Audio: ...`` lines of ffmpeg's input section."""
    head = log.split("Stream mapping:")[0]
    return [line.strip() for line in head.splitlines() if line.strip().startswith("Stream #0:")]


def decoded_frames(log: str) -> int:
    """The last ``frame=`` count ffmpeg printed (its summary line: ``-nostats`` prints only that)."""
    counts = re.findall(r"frame=\s*(\d+)", log)
    return int(counts[-1]) if counts else 0


# --- ffmpeg publishes, the pages play ------------------------------------------------------------


async def test_ffmpeg_rtmp_publisher_plays_on_player_pages_until_it_stops(
    context: BrowserContext, servers: dict[str, LiveServer], tmp_path: Path
) -> None:
    server, name = servers["H264"], "rtmp-cam"
    log = tmp_path / "ffmpeg-publish.log"
    async with ffmpeg_publish(rtmp_url(server, name), log) as proc:
        record = await published(server, name)
        assert (record["mediaProvider"], record["videoCodec"], record["audioCodec"]) == (
            "RTMP",
            "H264",
            "opus",  # AAC became Opus
        ), record
        players = [await Player.load(context, server, name), await EmbedPlayer.load(context, server, name)]
        for player in players:
            await player.play()
        await asyncio.gather(*(player.expect_playing() for player in players))  # H264 frames rising
        await asyncio.gather(*(expect_audio(player) for player in players))
        # REST, while it runs: the RTMP publisher and the two WebRTC players
        mine = await records(server, name)
        providers = sorted((r["published"], r["mediaProvider"], r["status"]) for r in mine)
        assert providers == [(False, "WebRTC", "PLAYING")] * 2 + [(True, "RTMP", "PUBLISHING")], mine
        assert proc.returncode is None, tail(log.read_text(errors="replace"))
        await stop(proc)  # SIGTERM: ffmpeg unpublishes
    await asyncio.gather(*(player.expect_stopped() for player in players))
    await until_gone(server, name)


async def test_ffmpeg_rtmp_publisher_killed_stops_player_page(
    context: BrowserContext, servers: dict[str, LiveServer], tmp_path: Path
) -> None:
    """No FCUnpublish: the server sees the TCP connection close."""
    server, name = servers["H264"], "rtmp-killed"
    async with ffmpeg_publish(rtmp_url(server, name), tmp_path / "ffmpeg-publish.log") as proc:
        await published(server, name)
        player = await Player.load(context, server, name)
        await player.play()
        await player.expect_playing()
        proc.kill()
        await proc.wait()
    await player.expect_stopped()
    await until_gone(server, name)


# --- the Two Way Streaming page publishes, ffmpeg plays ------------------------------------------


async def test_two_way_streaming_h264_plays_in_ffmpeg_over_rtmp(
    context: BrowserContext, servers: dict[str, LiveServer]
) -> None:
    server = servers["H264"]
    page = await TwoWayStreaming.connect(context, server)
    await page.publish()
    await page.expect_publishing()  # the page sends H.264
    url = rtmp_url(server, page.name)

    code, log = await ffmpeg_play(url, 30)
    assert code == 0, tail(log)
    streams = input_streams(log)
    assert any("Video: h264" in s for s in streams) and any("Audio: aac" in s for s in streams), streams
    assert decoded_frames(log) == 30, tail(log)

    code, out = await run(
        FFPROBE, "-v", "error", "-show_entries", "stream=codec_type,codec_name,width,height,sample_rate",
        "-of", "json", url,
    )  # fmt: skip
    assert code == 0, out
    probed = {s["codec_type"]: s for s in json.loads(out[out.index("{") :])["streams"]}
    assert (probed["video"]["codec_name"], probed["audio"]["codec_name"]) == ("h264", "aac"), probed
    assert probed["video"]["width"] > 0 and probed["audio"]["sample_rate"] == "48000", probed

    # the WebRTC publisher leaving ends an RTMP player that is still reading (end of stream: exit 0)
    player = asyncio.create_task(ffmpeg_play(url, 100_000, timeout=30))
    async with asyncio.timeout(15):
        while not [r for r in await records(server, page.name) if r["mediaProvider"] == "RTMP"]:
            await asyncio.sleep(0.1)
    await asyncio.sleep(2)  # ffmpeg is decoding by now
    await page.unpublish()
    left = asyncio.get_running_loop().time()
    code, log = await player
    assert code == 0, f"ffmpeg did not end cleanly after the publisher left:\n{tail(log)}"
    assert asyncio.get_running_loop().time() - left < 5, tail(log)
    assert decoded_frames(log) >= 20, tail(log)
    await until_gone(server, page.name)


# --- VP8: refused to RTMP players, WebRTC players undisturbed ------------------------------------


async def test_vp8_stream_is_refused_to_rtmp_player_and_webrtc_players_go_on(
    context: BrowserContext, servers: dict[str, LiveServer]
) -> None:
    server = servers["VP8"]
    page = await TwoWayStreaming.connect(context, server)
    await page.publish()
    await page.expect_publishing()  # the page sends VP8
    await page.play(page.name)
    player = await Player.load(context, server, page.name)
    await player.play()
    await asyncio.gather(page.expect_playing(), player.expect_playing())

    code, log = await ffmpeg_play(rtmp_url(server, page.name), 5)
    assert code not in (0, -9), tail(log)
    assert "video/VP8 cannot be sent over RTMP" in log and "publish H.264 for RTMP players" in log, tail(log)

    await page.expect_publishing()
    await asyncio.gather(page.expect_video(), player.expect_video())  # frames keep rising
    mine = await records(server, page.name)
    assert sorted((r["published"], r["mediaProvider"]) for r in mine) == [
        (False, "WebRTC"),
        (False, "WebRTC"),
        (True, "WebRTC"),
    ], mine
