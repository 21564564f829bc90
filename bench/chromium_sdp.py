"""Is ``_chromium.CHROMIUM_OFFER`` still what this machine's Chromium offers? Capture it and compare.

    .venv/bin/python bench/chromium_sdp.py [--chromium /usr/bin/chromium] [--write FILE]

Runs Debian's Chromium headless (playwright, never a downloaded browser) on a page this script
serves on 127.0.0.1, makes the receive-only offer the players copy (``new RTCPeerConnection()``,
``addTransceiver('audio'|'video', {direction: 'recvonly'})``, ``createOffer()``) and prints the lines
that differ from ``CHROMIUM_OFFER`` (ICE credentials, fingerprint and session id left out). Exits 1
when the codecs, header extensions or feedback changed; ``--write`` saves the captured offer.
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import sys
from pathlib import Path

from aiohttp import web

from _chromium import CHROMIUM_OFFER

PAGE = """<!doctype html><html><body><script>
async function offer() {
  const pc = new RTCPeerConnection();
  pc.addTransceiver('audio', {direction: 'recvonly'});
  pc.addTransceiver('video', {direction: 'recvonly'});
  const o = await pc.createOffer();
  pc.close();
  return o.sdp;
}
</script></body></html>"""
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
ADDRESS, PORT = "127.0.0.1", 18731
VOLATILE = ("o=", "a=ice-ufrag:", "a=ice-pwd:", "a=fingerprint:")


def _stable(sdp: str) -> list[str]:
    return [line for line in sdp.replace("\r\n", "\n").strip().split("\n") if not line.startswith(VOLATILE)]


async def capture(chromium: str) -> tuple[str, str]:
    """(browser version, Chromium's receive-only offer)."""
    from playwright.async_api import async_playwright

    async def index(_: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", index)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, ADDRESS, PORT).start()
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=chromium, args=ARGS, headless=True)
            page = await browser.new_page()
            await page.goto(f"http://{ADDRESS}:{PORT}/")
            sdp = str(await page.evaluate("offer()"))
            version = browser.version
            await browser.close()
    finally:
        await runner.cleanup()
    return version, sdp


def main(argv: list[str] | None = None) -> int:
    options = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    options.add_argument(
        "--chromium", default="/usr/bin/chromium", help="the browser (default /usr/bin/chromium)"
    )
    options.add_argument("--write", type=Path, help="save the captured offer here")
    args = options.parse_args(argv)
    version, sdp = asyncio.run(capture(args.chromium))
    if args.write:
        args.write.write_text(sdp.replace("\r\n", "\n"))
    diff = list(
        difflib.unified_diff(_stable(CHROMIUM_OFFER), _stable(sdp), "CHROMIUM_OFFER", version, lineterm="")
    )
    print("\n".join(diff) if diff else f"Chromium {version}: the same offer as CHROMIUM_OFFER")
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main())
