"""The command line and process lifecycle: help, config errors, clean SIGTERM shutdown."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp

from rtcdn.config import FILE_KEYS
from testkit import free_port

RTCDN = [sys.executable, "-m", "rtcdn"]


def test_help_documents_every_option() -> None:
    serve_help = subprocess.run(
        [*RTCDN, "serve", "--help"], capture_output=True, text=True, check=True
    ).stdout
    top_help = subprocess.run([*RTCDN, "--help"], capture_output=True, text=True, check=True).stdout
    for option in (
        "--config-dir",
        "--bind",
        "--ws-port",
        "--wss-port",
        "--http-ports",
        "--https-ports",
        "--media-ports",
        "--state-dir",
        "--websdk-dir",
        "--log-level",
        "--workers",
    ):
        assert option in serve_help and option in top_help, option
    for key in FILE_KEYS:  # the configuration keys, with their defaults
        assert f"\n  {key} (default: " in serve_help, key
    assert "  ws.port (default: 8080; --ws-port)\n" in serve_help
    assert "WebSocket port, 0 = off (ws.port; default 8080)" in " ".join(serve_help.split())


def test_bad_config_is_a_clear_startup_error(tmp_path: Path) -> None:
    (tmp_path / "flashphoner.properties").write_text(
        "ws.port=8080\nmedia_port_to=lots\nkeep_alive.probes=0\nssl.key_file=key.pem\n"
    )
    proc = subprocess.run(
        [*RTCDN, "serve", "--config-dir", str(tmp_path)], capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 2
    path = tmp_path / "flashphoner.properties"
    assert proc.stderr.splitlines()[-3:] == [  # every problem, one a line
        f"rtcdn: configuration error: {path}:2: media_port_to: invalid literal for int() with base 10: 'lots'",
        f"rtcdn: configuration error: {path}:3: keep_alive.probes: expected a positive integer, got 0",
        "rtcdn: configuration error: ssl.key_file: set without ssl.cert_file; set both or neither",
    ]


async def test_sigterm_tells_clients_and_exits_zero(tmp_path: Path) -> None:
    ws_port = free_port()
    proc = await asyncio.create_subprocess_exec(
        *RTCDN,
        "serve",
        "--bind",
        "127.0.0.1",
        "--ws-port",
        str(ws_port),
        "--wss-port",
        "0",
        "--http-ports",
        str(free_port()),
        "--https-ports",
        "",
        "--state-dir",
        str(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 20)
        assert b"ready:" in line
        async with aiohttp.ClientSession() as http, http.ws_connect(f"ws://127.0.0.1:{ws_port}/") as ws:
            await ws.send_str(json.dumps({"message": "connection", "data": [{}]}))
            assert json.loads((await ws.receive()).data)["message"] == "getUserData"
            proc.send_signal(signal.SIGTERM)
            msg = await asyncio.wait_for(ws.receive(), 5)
            assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 1001 and msg.extra == "Server shutdown"
        assert await asyncio.wait_for(proc.wait(), 5) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def test_cdn_config_errors_stop_startup(tmp_path: Path) -> None:
    (tmp_path / "flashphoner.properties").write_text("load_balancing_enabled=true\n")
    proc = subprocess.run(
        [*RTCDN, "serve", "--config-dir", str(tmp_path)], capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 2 and "loadbalancing.xml: missing" in proc.stderr
    (tmp_path / "loadbalancing.xml").write_text(
        '<loadbalancer stream_distribution="hls"><node><ip>e</ip></node></loadbalancer>'
    )
    proc = subprocess.run(
        [*RTCDN, "serve", "--config-dir", str(tmp_path)], capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 2 and "stream_distribution='hls' must be webrtc or rtmp" in proc.stderr
    (tmp_path / "loadbalancing.xml").write_text("<loadbalancer>\n  <node id='1'/>\n</loadbalancer>")
    proc = subprocess.run(
        [*RTCDN, "serve", "--config-dir", str(tmp_path)], capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 2 and "loadbalancing.xml:2: <node> has no address" in proc.stderr
