"""The WHIP/WHEP client harness itself (no WHIP server needed): the ffmpeg binary has the whip
muxer with the options the harness uses, and the test page and whip-whep's modules are served."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import aiohttp
import pytest

from whip_clients import (
    WHIP_WHEP_DIR,
    ffmpeg_path,
    ffmpeg_whip,
    ffmpeg_whip_command,
    serve_whip_page,
    wait_ffmpeg_publishing,
)


def test_ffmpeg_has_the_whip_muxer() -> None:
    ffmpeg = ffmpeg_path()
    assert ffmpeg.is_file() and os.access(ffmpeg, os.X_OK), ffmpeg
    muxers = subprocess.run([ffmpeg, "-hide_banner", "-muxers"], capture_output=True, text=True, timeout=10)
    assert any(line.split()[1:2] == ["whip"] for line in muxers.stdout.splitlines()), muxers.stdout
    help_ = subprocess.run(
        [ffmpeg, "-hide_banner", "-h", "muxer=whip"], capture_output=True, text=True, timeout=10
    )
    for option in ("-authorization", "-handshake_timeout"):
        assert option in help_.stdout, help_.stdout
    encoders = subprocess.run(
        [ffmpeg, "-hide_banner", "-encoders"], capture_output=True, text=True, timeout=10
    )
    assert " libx264 " in encoders.stdout and " libopus " in encoders.stdout


def test_ffmpeg_whip_command() -> None:
    cmd = ffmpeg_whip_command("http://127.0.0.1:1/whip/a", token="t0k", seconds=2.5)
    assert cmd[0] == str(ffmpeg_path())
    assert cmd[-3:] == ["-f", "whip", "http://127.0.0.1:1/whip/a"]
    assert cmd[cmd.index("-authorization") + 1] == "t0k"
    assert cmd[cmd.index("-t") + 1] == "2.5"
    assert cmd[cmd.index("-bf") + 1] == "0"  # the muxer refuses B-frames
    plain = ffmpeg_whip_command("http://127.0.0.1:1/whip/a")
    assert "-authorization" not in plain and "-t" not in plain


async def test_ffmpeg_whip_without_a_server_fails_fast(tmp_path: Path) -> None:
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path / "ffmpeg.log"
    async with ffmpeg_whip(f"http://127.0.0.1:{port}/whip/x", log=log) as proc:
        with pytest.raises(AssertionError, match="exited"):
            await wait_ffmpeg_publishing(proc, log, timeout=8)
    assert proc.returncode not in (None, 0)
    assert "Connection refused" in log.read_text(errors="replace")


async def test_page_and_whip_whep_are_served() -> None:
    async with serve_whip_page() as base, aiohttp.ClientSession() as http:
        assert base.startswith("http://127.0.0.1:")
        async with http.get(f"{base}/") as r:
            assert r.status == 200
            assert 'src="whip_page.js"' in await r.text()
        async with http.get(f"{base}/whip_page.js") as r:
            assert r.status == 200 and "javascript" in r.content_type
            assert 'from "/whip-whep/whip.js"' in await r.text()
        for name, cls in (("whip.js", "WHIPClient"), ("whep.js", "WHEPClient")):
            async with http.get(f"{base}/whip-whep/{name}") as r:
                assert r.status == 200 and "javascript" in r.content_type  # ES modules need a JS type
                body = await r.text()
                assert body == (WHIP_WHEP_DIR / name).read_text()
                assert f"export class {cls}" in body
        async with http.get(f"{base}/whip-whep/www/demo.js") as r:
            assert r.status == 404  # only the two modules
    with pytest.raises(aiohttp.ClientConnectionError):  # closed on exit
        async with aiohttp.ClientSession() as http, http.get(f"{base}/"):
            pass
