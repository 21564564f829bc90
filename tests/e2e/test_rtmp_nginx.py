"""Republishing (``/rest-api/push/*``) to a third-party RTMP server: Debian's nginx with
libnginx-mod-rtmp, run by the test as a child process on its own loopback address.

* The Two Way Streaming page publishes H.264 to a real ``rtcdn serve`` (127.0.0.122,
  ``codecs=opus,h264``) → ``/push/startup`` to nginx (127.0.0.121:1935, ``application live``) →
  Debian's ffmpeg plays ``rtmp://127.0.0.121:1935/live/NAME`` from nginx: H.264 (passed through)
  + AAC (the page's Opus transcoded: nginx announces no Enhanced RTMP, so no Opus for it).
* ``/push/terminate`` ends the push (record UNPUBLISHED) and the stream on nginx: an ffmpeg still
  reading it gets to its end.
* A push while nginx is down stays PENDING with the connection failure in ``info``, and gets
  through by itself (PUBLISHING, ffmpeg plays it) once nginx is started again on the same address.

``make nginx-rtmp`` installs nginx (its own service stays disabled: only the test's nginx runs).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import BrowserContext

from .conftest import rtcdn_process
from .pages import LiveServer, TwoWayStreaming

pytestmark = pytest.mark.asyncio(loop_scope="session")

FFMPEG = shutil.which("ffmpeg") or "/usr/bin/ffmpeg"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
RTCDN, NGINX_HOST, NGINX_PORT = "127.0.0.122", "127.0.0.121", 1935
NGINX_APP = f"rtmp://{NGINX_HOST}:{NGINX_PORT}/live"
MODULE_CONFS = (Path("/etc/nginx/modules-enabled"), Path("/usr/share/nginx/modules-available"))
MODULE_DIR = Path("/usr/lib/nginx/modules")

NGINX_CONF = """\
load_module {module};
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 64; }}
rtmp {{
    server {{
        listen {host}:{port};
        application live {{
            live on;
            idle_streams off;
        }}
    }}
}}
"""


def rtmp_module() -> Path:
    """The ``ngx_rtmp_module.so`` Debian's libnginx-mod-rtmp installs, as its module conf names it."""
    for conf_dir in MODULE_CONFS:
        for conf in sorted(conf_dir.glob("*rtmp*.conf")):
            found = re.search(r"load_module\s+(\S+?);", conf.read_text())
            if found:
                path = Path(found.group(1))
                return path if path.is_absolute() else MODULE_DIR.parent / path
    path = MODULE_DIR / "ngx_rtmp_module.so"
    if not path.exists():
        pytest.fail("libnginx-mod-rtmp is not installed (run `make nginx-rtmp`)")
    return path


class Nginx:
    """nginx in the foreground (``daemon off``) with its own config, pid and logs in ``prefix``."""

    def __init__(self, prefix: Path) -> None:
        self.prefix = prefix
        self.conf = prefix / "nginx.conf"
        self.log = prefix / "error.log"
        self.proc: subprocess.Popen[bytes] | None = None
        prefix.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(
            NGINX_CONF.format(module=rtmp_module(), prefix=prefix, host=NGINX_HOST, port=NGINX_PORT)
        )

    def start(self, timeout: float = 10.0) -> None:
        assert self.proc is None, "nginx is already running"
        cmd = [NGINX, "-c", str(self.conf), "-p", str(self.prefix), "-e", str(self.log), "-g", "daemon off;"]
        with (self.prefix / "stdout.log").open("ab") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"nginx exited with {self.proc.returncode}:\n{self.tail()}")
            with contextlib.suppress(OSError), socket.create_connection((NGINX_HOST, NGINX_PORT), 0.2):
                return
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"nginx does not listen on {NGINX_HOST}:{NGINX_PORT} after {timeout} s")
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM (fast shutdown: the master ends its worker and every connection), then SIGKILL."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@pytest.fixture(scope="module")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    server = Nginx(tmp_path_factory.mktemp("nginx"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def rtcdn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with rtcdn_process(RTCDN, tmp_path_factory.mktemp("rtcdn-push"), "codecs=opus,h264\n", "H264") as server:
        yield server


# --- helpers -------------------------------------------------------------------------------------


def tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.splitlines()[-lines:])


async def run(*cmd: str, timeout: float = 20.0) -> tuple[int, str]:
    """Run ``cmd``: (exit code, stdout + stderr); killed after ``timeout`` s (exit code -9)."""
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


async def ffmpeg_play(name: str, frames: int, timeout: float = 20.0) -> tuple[int, str]:
    """Debian's ffmpeg playing ``name`` from nginx, decoding ``frames`` video frames."""
    return await run(
        FFMPEG, "-hide_banner", "-nostats", "-i", f"{NGINX_APP}/{name}", "-frames:v", str(frames),
        "-f", "null", "-", timeout=timeout,
    )  # fmt: skip


def input_streams(log: str) -> list[str]:
    head = log.split("Stream mapping:")[0]
    return [line.strip() for line in head.splitlines() if line.strip().startswith("Stream #0:")]


def decoded_frames(log: str) -> int:
    counts = re.findall(r"frame=\s*(\d+)", log)
    return int(counts[-1]) if counts else 0


async def push_rest(server: LiveServer, method: str, body: dict[str, Any]) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{server.rest_url}/push/{method}", json=body) as resp,
    ):
        return resp.status, await resp.json()


async def push_record(server: LiveServer, push_id: str) -> dict[str, Any]:
    code, found = await push_rest(server, "find", {"mediaSessionId": push_id})
    assert code == 200 and len(found) == 1, (code, found)
    record: dict[str, Any] = found[0]
    return record


async def until_status(
    server: LiveServer, push_id: str, status: str, timeout: float = 10.0, info: str = ""
) -> dict[str, Any]:
    """The push's record once its status is ``status`` (and its info holds ``info``)."""
    record: dict[str, Any] = {}
    try:
        async with asyncio.timeout(timeout):
            while True:
                record = await push_record(server, push_id)
                if record["status"] == status and info in record["info"]:
                    return record
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"push not {status} ({info!r}) after {timeout} s: {record}") from None


def assert_h264_aac(code: int, log: str, frames: int) -> None:
    assert code == 0, tail(log)
    assert "NGINX RTMP" in log, tail(log)  # the onMetaData nginx sends its players
    streams = input_streams(log)
    assert any("Video: h264" in s for s in streams), streams
    assert any("Audio: aac" in s for s in streams), streams  # the page's Opus, transcoded
    assert decoded_frames(log) == frames, tail(log)


async def publish_h264(context: BrowserContext, server: LiveServer) -> TwoWayStreaming:
    page = await TwoWayStreaming.connect(context, server)
    await page.publish()
    await page.expect_publishing()  # the page sends H.264
    return page


# --- tests ---------------------------------------------------------------------------------------


async def test_push_to_nginx_plays_in_ffmpeg_until_terminated(
    context: BrowserContext, rtcdn: LiveServer, nginx: Nginx
) -> None:
    page = await publish_h264(context, rtcdn)
    code, record = await push_rest(rtcdn, "startup", {"streamName": page.name, "rtmpUrl": NGINX_APP})
    assert code == 200, record
    assert (record["streamName"], record["rtmpUrl"]) == (page.name, NGINX_APP), record
    assert record["status"] in ("NEW", "PENDING", "PUBLISHING"), record
    push_id = record["mediaSessionId"]
    await until_status(rtcdn, push_id, "PUBLISHING")

    code, log = await ffmpeg_play(page.name, 30)
    assert_h264_aac(code, log, 30)
    assert re.search(r"Audio: aac \S*, 48000 Hz", log), input_streams(log)

    # a reader on nginx while the push is terminated: nginx ends the stream for it
    reader = asyncio.create_task(ffmpeg_play(page.name, 100_000, timeout=40))
    await asyncio.sleep(4)  # decoding by now
    assert not reader.done(), tail(reader.result()[1])
    code, ended = await push_rest(rtcdn, "terminate", {"mediaSessionId": push_id})
    assert code == 200 and [r["mediaSessionId"] for r in ended] == [push_id], ended
    left = asyncio.get_running_loop().time()
    record = await until_status(rtcdn, push_id, "UNPUBLISHED")
    assert record["info"] == "Stopped by rest /terminate", record
    code, log = await asyncio.wait_for(reader, 15)
    assert code != -9, f"ffmpeg still reading from nginx 15 s after /push/terminate:\n{tail(log)}"
    assert asyncio.get_running_loop().time() - left < 5, tail(log)
    assert decoded_frames(log) >= 10, tail(log)  # from its first keyframe (one every 2 s) on
    code, log = await ffmpeg_play(page.name, 1, timeout=10)  # and a new player finds no stream there
    assert code not in (0, -9) and decoded_frames(log) == 0, tail(log)
    await page.expect_publishing()  # the publisher itself is not touched
    await page.unpublish()


async def test_push_retries_until_nginx_comes_up(
    context: BrowserContext, rtcdn: LiveServer, nginx: Nginx
) -> None:
    nginx.stop()
    page = await publish_h264(context, rtcdn)
    code, record = await push_rest(rtcdn, "startup", {"streamName": page.name, "rtmpUrl": NGINX_APP})
    assert code == 200, record
    push_id = record["mediaSessionId"]
    record = await until_status(rtcdn, push_id, "PENDING", info="RtmpConnectError")
    assert f"cannot connect to {NGINX_HOST}:{NGINX_PORT}" in record["info"], record
    await asyncio.sleep(1.5)  # a retry or two later: still pending, the failure kept
    record = await push_record(rtcdn, push_id)
    assert record["status"] == "PENDING" and "RtmpConnectError" in record["info"], record

    nginx.start()  # the same address: the next retry (backoff ≤ 4 s by now) gets through
    await until_status(rtcdn, push_id, "PUBLISHING", timeout=10)
    code, log = await ffmpeg_play(page.name, 30)
    assert_h264_aac(code, log, 30)

    await page.unpublish()  # the publisher leaving ends the push
    record = await until_status(rtcdn, push_id, "UNPUBLISHED")
    assert record["info"] == "Stopped by publisher stop", record
