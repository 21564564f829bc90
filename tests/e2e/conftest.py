"""End-to-end fixtures: a real ``rtcdn serve`` process per codec and one headless Chromium.

Each server binds its own loopback address with the default ports, so the demo pages find the
WebSocket by themselves (ws://<page host>:8080). The VP8 server runs on the embedded defaults;
the H264 one gets ``codecs=opus,h264`` from a flashphoner.properties.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, async_playwright

from .pages import RECORD_PEER_CONNECTIONS, TIMEOUT_MS, LiveServer

REPO = Path(__file__).resolve().parents[2]
WEBSDK = REPO / "web" / "node_modules" / "@flashphoner" / "websdk"
CHROMIUM = os.environ.get("RTCDN_E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SERVERS = {"VP8": ("127.0.0.21", None), "H264": ("127.0.0.22", "codecs=opus,h264\n")}
"codec -> (bind address, flashphoner.properties or None for the defaults)"


def _log_tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def _wait_ready(proc: subprocess.Popen[bytes], log: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while "ready:" not in log.read_text(errors="replace"):
        if proc.poll() is not None:
            pytest.fail(f"rtcdn exited with {proc.returncode} before it was ready:\n{_log_tail(log)}")
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            pytest.fail(f"rtcdn not ready after {timeout} s:\n{_log_tail(log)}")
        time.sleep(0.05)


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if " ERROR " in line or "Traceback" in line]


@contextlib.contextmanager
def supervised(cmd: list[str], log: Path, who: str) -> Iterator[int]:
    """Run ``cmd`` (an ``rtcdn serve``) with its output in ``log`` until it says ``ready:``; yield
    its pid. At the end SIGTERM must shut it down cleanly (exit 0 within 15 s) and the log must hold
    no ERROR or traceback; a process the test SIGKILLed on purpose is only reaped."""
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=log.parent)
    try:
        _wait_ready(proc, log)
        yield proc.pid
    finally:
        killed = proc.poll() == -signal.SIGKILL
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            pytest.fail(f"{who} ignored SIGTERM for 15 s:\n{_log_tail(log)}")
    if killed:
        return
    assert code == 0, f"{who} exited with {code} after SIGTERM:\n{_log_tail(log)}"
    problems = error_lines(log.read_text(errors="replace"))
    assert not problems, f"{who} logged errors:\n" + "\n".join(problems)


@contextlib.contextmanager
def rtcdn_process(
    host: str, workdir: Path, properties: str | None, codec: str = "VP8"
) -> Iterator[LiveServer]:
    """``rtcdn serve`` on ``host`` (default ports) as a subprocess; its state (the self-signed
    certificate) lives in ``workdir/state``. SIGTERM at the end must shut it down cleanly (exit 0)
    and the log must hold no ERROR or traceback."""
    if not (WEBSDK / "package.json").exists():
        pytest.fail(f"the WebSDK is not installed in {WEBSDK} (run `make install`)")
    workdir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "rtcdn", "serve", "--bind", host, "--state-dir", str(workdir / "state")]
    cmd += ["--websdk-dir", str(WEBSDK)]
    if properties is not None:
        (workdir / "flashphoner.properties").write_text(properties)
        cmd += ["--config-dir", str(workdir)]
    with supervised(cmd, workdir / "rtcdn.log", "rtcdn") as pid:
        yield LiveServer(host, codec, workdir, pid)


@pytest.fixture(scope="session", params=list(SERVERS))
def live_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """One server per codec for the demo-page tests."""
    codec: str = request.param
    host, properties = SERVERS[codec]
    with rtcdn_process(host, tmp_path_factory.mktemp(f"rtcdn-{codec}"), properties, codec) as server:
        yield server


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM} (run `make chromium`)")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        await browser.close()


@pytest_asyncio.fixture(loop_scope="session")
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    """A fresh browser context per test; uncaught JavaScript errors in any of its pages fail the test."""
    context = await browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    await context.add_init_script(RECORD_PEER_CONNECTIONS)
    errors: list[str] = []
    context.on("page", lambda page: page.on("pageerror", lambda exc: errors.append(f"{page.url}: {exc}")))
    yield context
    await context.close()
    assert not errors, errors
