"""Real third-party WHIP/WHEP clients for the WHIP/WHEP tests.

* :func:`ffmpeg_whip`: ffmpeg's ``whip`` muxer (the static ffmpeg 9 shipped in the ``imageio-ffmpeg``
  wheel) publishing H.264 (baseline, no B-frames) + Opus from lavfi test sources.
* :class:`WhipWhepPage`: the npm package ``whip-whep`` (medooze; ``WHIPClient`` / ``WHEPClient``,
  unmodified, loaded as ES modules from ``web/node_modules/whip-whep``) in headless Chromium with the
  fake camera, on the page ``tests/e2e/whip/`` that :func:`serve_whip_page` serves.

What the clients do (seen against an aiortc WHIP/WHEP server; ffmpeg n9.0.2, whip-whep 1.2.0):

ffmpeg
  * POSTs with ``Content-Type: application/sdp``, ``Cache-Control: no-cache``, ``Connection: close``
    and, with ``-authorization``, ``Authorization: Bearer <token>``. Its offer has no candidates, no
    ``a=ice-options:trickle``, ``a=setup:passive``, Opus PT 111 (stereo, 48 kHz only), H.264 PT 106
    (baseline, no B-frames) + RTX 105 (``ssrc-group:FID``, ``rtcp-fb nack``). It never PATCHes.
  * The answer needs a Content-Length: a chunked answer fails the publish ("Failed to read response
    from url=...", exit code 251). It uses the first ``udp ... typ host`` candidate of the answer
    and no other. A relative ``Location`` is resolved against the POST URL; ETag and Link are ignored.
  * ICE takes ~30 ms; DTLS (ffmpeg is the DTLS server) ~1 s with aiortc as the client: one
    retransmission timeout, the first ClientHello comes before ffmpeg listens. While ICE/DTLS are
    going on ffmpeg ignores ``q`` and signals: it leaves only after ``-handshake_timeout`` (ms).
  * It sends DELETE (``Cache-Control: no-cache``, the token, no body) whenever it exits with a
    Location: after ``-t``, on ``q`` on its stdin (exit code 0), on a SIGINT/SIGTERM (exit code
    255), after a failed handshake. Whatever the answer (200 with ``Content-Length: 0``, 204, 200
    with a body) it logs "Failed to read response from DELETE url=..." and "Failed to dispose
    resource, ret=-5", and its exit code is unchanged: do not assert on those lines.
  * A rejected POST ends it at once: "Server returned 401 Unauthorized (authorization failed)",
    exit code 8 (connection refused: 145).

whip-whep (Chromium)
  * It POSTs the offer *before* ``setLocalDescription``: the offer holds no candidates; they all
    come by PATCH (``application/trickle-ice-sdpfrag``; ``a=ice-ufrag``/``a=ice-pwd``, then
    ``m=audio 9 UDP/TLS/RTP/SAVPF 0`` + ``a=mid:0`` + the first m-line's candidates), one or more
    (timer-batched), the last with ``a=end-of-candidates``. Chromium's candidates include the
    machine's other addresses (non-loopback IPv4, ``::1``, IPv6): a test server must ignore them.
  * WHIPClient sends ``If-Match: <ETag>`` when the POST answer had an ETag (nothing otherwise);
    WHEPClient never reads the ETag, so its PATCHes have no If-Match. A PATCH answered with
    anything but 2xx/405/501 throws from a timer (recorded by this page as an error).
  * The page is on another origin than the server: it needs CORS answers to the preflights of
    POST (Content-Type, Authorization) and PATCH (If-Match) (its DELETE came without one: it reused
    the cached PATCH preflight), and ``Access-Control-Expose-Headers: Location`` (without it
    publish fails with "Response missing location header" and the resource is left behind),
    ``ETag`` (else no If-Match) and ``Link``. A relative Location is resolved against the POST URL.
  * ``Link: <...>; rel="ice-server"`` is applied with ``pc.setConfiguration``.
  * A rejected POST: "Request rejected with status 401". ``stop()`` closes the peer connection,
    then sends DELETE (with the token) and ignores the answer.
  * publish(): POST answered and applied after ~0.25 s, connected after ~0.3 s (DTLS is quick).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from playwright.async_api import BrowserContext, Page

REPO = Path(__file__).resolve().parents[1]
WHIP_PAGE_DIR = REPO / "tests" / "e2e" / "whip"
"The page :class:`WhipWhepPage` drives (index.html + whip_page.js)."
WHIP_WHEP_DIR = REPO / "web" / "node_modules" / "whip-whep"
"The npm package (``npm ci --prefix web``): plain ES modules whip.js and whep.js, no dependencies."
WHIP_WHEP_FILES = ("whip.js", "whep.js")

FFMPEG_READY = "Muxer state="
"""ffmpeg's WHIP muxer logs this (at info level) once ICE, DTLS and SRTP are up and it starts sending."""


# --- ffmpeg --------------------------------------------------------------------------------------


def ffmpeg_path() -> Path:
    """The static ffmpeg binary inside the ``imageio-ffmpeg`` wheel (it has the ``whip`` muxer)."""
    import imageio_ffmpeg  # type: ignore[import-untyped]

    return Path(imageio_ffmpeg.get_ffmpeg_exe())


def ffmpeg_whip_command(
    url: str,
    *,
    token: str | None = None,
    seconds: float | None = None,
    size: str = "640x360",
    rate: int = 30,
    handshake_timeout_ms: int = 5_000,
    loglevel: str = "verbose",
    extra: Sequence[str] = (),
) -> list[str]:
    """The ffmpeg command line publishing testsrc2 (H.264 baseline) + a 440 Hz sine (Opus) to ``url``.

    ``loglevel="verbose"`` logs the offer, the answer and the ICE/DTLS timings; ``extra`` goes
    right before ``-f whip``. ffmpeg cannot be stopped during ICE/DTLS: ``handshake_timeout_ms``
    bounds how long a failing handshake keeps it.
    """
    cmd = [str(ffmpeg_path()), "-hide_banner", "-nostats", "-loglevel", loglevel]
    cmd += ["-re", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}"]
    cmd += ["-re", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]
    cmd += ["-c:v", "libx264", "-profile:v", "baseline", "-tune", "zerolatency", "-preset", "veryfast"]
    cmd += ["-g", str(rate), "-bf", "0", "-pix_fmt", "yuv420p"]
    cmd += ["-c:a", "libopus", "-ar", "48000", "-ac", "2"]
    if seconds is not None:
        cmd += ["-t", f"{seconds:g}"]
    cmd += ["-handshake_timeout", str(handshake_timeout_ms)]
    if token is not None:
        cmd += ["-authorization", token]
    cmd += [*extra, "-f", "whip", url]
    return cmd


@contextlib.asynccontextmanager
async def ffmpeg_whip(
    url: str,
    *,
    token: str | None = None,
    seconds: float | None = None,
    log: Path,
    stop_timeout: float = 10.0,
    **options: Any,
) -> AsyncIterator[asyncio.subprocess.Process]:
    """ffmpeg publishing to the WHIP endpoint ``url`` while the block runs (output in ``log``).

    On exit a still running ffmpeg gets ``q`` on its stdin (SIGINT if that fails), so it ends
    cleanly and sends its DELETE; it is killed if it has not exited after ``stop_timeout`` s.
    With ``seconds`` it stops by itself after that much media. ``options`` go to
    :func:`ffmpeg_whip_command`. The process's ``returncode`` is set after the block.
    """
    cmd = ffmpeg_whip_command(url, token=token, seconds=seconds, **options)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            *cmd, stdin=asyncio.subprocess.PIPE, stdout=out, stderr=asyncio.subprocess.STDOUT
        )
    try:
        yield proc
    finally:
        await stop_ffmpeg(proc, stop_timeout)


async def stop_ffmpeg(proc: asyncio.subprocess.Process, timeout: float = 10.0) -> int:
    """End ffmpeg the way that makes it send DELETE; kill it after ``timeout`` s. Its exit code."""
    if proc.returncode is None:
        try:
            assert proc.stdin is not None
            proc.stdin.write(b"q")
            await proc.stdin.drain()
        except (AssertionError, ConnectionError):
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
    try:
        await asyncio.wait_for(proc.wait(), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
    if proc.stdin is not None:
        proc.stdin.close()
    assert proc.returncode is not None
    return proc.returncode


async def wait_ffmpeg_publishing(proc: asyncio.subprocess.Process, log: Path, timeout: float = 15.0) -> None:
    """Wait until ffmpeg has ICE + DTLS up and sends media (:data:`FFMPEG_READY` in its log)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while FFMPEG_READY not in log.read_text(errors="replace"):
        if proc.returncode is not None:
            raise AssertionError(f"ffmpeg exited with {proc.returncode} before publishing:\n{log_tail(log)}")
        if loop.time() > deadline:
            raise AssertionError(f"ffmpeg not publishing after {timeout} s:\n{log_tail(log)}")
        await asyncio.sleep(0.05)


def log_tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


# --- the whip-whep page --------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def serve_whip_page(host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """A static HTTP server for :class:`WhipWhepPage`; yields its base URL (``http://host:port``).

    ``/`` is ``tests/e2e/whip/index.html``, ``/whip-whep/whip.js`` and ``/whip-whep/whep.js`` the
    package's modules. On another origin than the server under test, so CORS is exercised.
    """
    missing = [name for name in WHIP_WHEP_FILES if not (WHIP_WHEP_DIR / name).is_file()]
    if missing:
        raise FileNotFoundError(f"whip-whep is not installed in {WHIP_WHEP_DIR} (run `npm ci --prefix web`)")

    def file(path: Path) -> Any:
        async def handler(request: web.Request) -> web.FileResponse:
            return web.FileResponse(path, headers={"Cache-Control": "no-store"})

        return handler

    app = web.Application()
    app.router.add_get("/", file(WHIP_PAGE_DIR / "index.html"))
    for path in sorted(WHIP_PAGE_DIR.iterdir()):
        if path.is_file():
            app.router.add_get(f"/{path.name}", file(path))
    for name in WHIP_WHEP_FILES:
        app.router.add_get(f"/whip-whep/{name}", file(WHIP_WHEP_DIR / name))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    try:
        server = site._server
        assert isinstance(server, asyncio.Server) and server.sockets
        bound = server.sockets[0].getsockname()[1]
        yield f"http://{host}:{bound}"
    finally:
        await runner.cleanup()


class WhipClientError(Exception):
    """What whip-whep's ``publish()`` / ``view()`` threw (e.g. "Request rejected with status 401")."""


@dataclass
class WhipRequest:
    """One HTTP request whip-whep made; ``response_headers`` are those CORS let it read."""

    method: str
    url: str
    headers: dict[str, str]
    body: str | None
    status: int | None
    response_headers: dict[str, str]
    error: str | None


@dataclass
class WhipStats:
    frames_decoded: int
    "inbound video frames decoded by the WHEP peer connection"
    bytes_sent: int
    "outbound RTP bytes (audio + video) of the WHIP peer connection"
    packets_sent: int
    frames_encoded: int
    sent: list[str]
    "codec MIME types sent (WHIP)"
    received: list[str]
    "codec MIME types received (WHEP)"


class WhipWhepPage:
    """``tests/e2e/whip/index.html`` in a browser context: at most one WHIPClient (the fake camera
    and microphone) and one WHEPClient (into ``#remote``) at a time."""

    def __init__(self, page: Page) -> None:
        self.page = page

    @classmethod
    async def open(cls, context: BrowserContext, base_url: str) -> WhipWhepPage:
        """``base_url`` is what :func:`serve_whip_page` yields."""
        page = await context.new_page()
        await page.goto(f"{base_url}/")
        await page.wait_for_function("() => !!window.whipPage")
        return cls(page)

    async def publish(self, whip_url: str, token: str | None = None, video_codec: str | None = None) -> None:
        """``WHIPClient.publish()``: returns once the answer is applied (ICE/DTLS may still be going
        on; see :meth:`wait_connected`). ``video_codec`` ("H264", "VP8", ...) narrows the offer.
        Raises :class:`WhipClientError` with what the client threw."""
        error = await self.page.evaluate(
            "([u, t, c]) => window.whipPage.publish(u, t, c)", [whip_url, token, video_codec]
        )
        if error:
            raise WhipClientError(error)

    async def play(self, whep_url: str, token: str | None = None) -> None:
        """``WHEPClient.view()`` with recvonly audio + video; the video goes to ``#remote``."""
        error = await self.page.evaluate("([u, t]) => window.whipPage.play(u, t)", [whep_url, token])
        if error:
            raise WhipClientError(error)

    async def stop(self) -> None:
        """``stop()`` of every client: closes its peer connection, then DELETEs its resource."""
        await self.page.evaluate("() => window.whipPage.stop()")

    async def connection_state(self, kind: str = "whip") -> str | None:
        """The RTCPeerConnection state of the ``"whip"`` or ``"whep"`` client (None when stopped)."""
        state: str | None = await self.page.evaluate("k => window.whipPage.connectionState(k)", kind)
        return state

    async def wait_connected(self, kind: str = "whip", timeout: float = 15.0) -> None:
        await self.page.wait_for_function(
            "k => window.whipPage.connectionState(k) === 'connected'", arg=kind, timeout=timeout * 1000
        )

    async def stats(self) -> WhipStats:
        """Summed getStats() of the live clients (the last numbers once they stopped)."""
        s = await self.page.evaluate("() => window.whipPage.stats()")
        return WhipStats(
            frames_decoded=s["framesDecoded"],
            bytes_sent=s["bytesSent"],
            packets_sent=s["packetsSent"],
            frames_encoded=s["framesEncoded"],
            sent=s["sent"],
            received=s["received"],
        )

    async def frames_decoded(self) -> int:
        return (await self.stats()).frames_decoded

    async def bytes_sent(self) -> int:
        return (await self.stats()).bytes_sent

    async def wait_frames(self, frames: int, timeout: float = 15.0) -> int:
        """Wait until the WHEP client decoded at least ``frames`` frames; the count reached."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (decoded := await self.frames_decoded()) < frames:
            if loop.time() > deadline:
                raise AssertionError(
                    f"{decoded} frames decoded after {timeout} s, wanted {frames}: {await self.errors()}"
                )
            await asyncio.sleep(0.1)
        return decoded

    async def errors(self) -> list[str]:
        """What went wrong in the page: rejected publish/view, failed PATCH (thrown from a timer),
        failed connection, failed stop, uncaught errors."""
        errors: list[str] = await self.page.evaluate("() => window.whipPage.state().errors")
        return errors

    async def requests(self) -> list[WhipRequest]:
        """Every HTTP request the clients made, in order."""
        raw = await self.page.evaluate("() => window.whipPage.state().requests")
        return [
            WhipRequest(
                method=r["method"],
                url=r["url"],
                headers=r["headers"],
                body=r["body"],
                status=r["status"],
                response_headers=r["responseHeaders"],
                error=r["error"],
            )
            for r in raw
        ]

    async def connection_states(self, kind: str = "whip") -> list[str]:
        """Every connectionState the client's peer connection went through."""
        states: list[str] = await self.page.evaluate("k => window.whipPage.state().states[k]", kind)
        return states

    async def resource_url(self, kind: str = "whip") -> str | None:
        """The resource URL the client resolved from Location (absolute)."""
        url: str | None = await self.page.evaluate("k => window.whipPage.state().resources[k] ?? null", kind)
        return url

    async def close(self) -> None:
        await self.page.close()
