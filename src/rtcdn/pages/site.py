"""Pages: ``/`` (index: demo pages, live streams with links that play them), ``/?action=stat``,
``/client2/`` (the installed @flashphoner/websdk package) and ``/embed_player``."""

from __future__ import annotations

import html
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import quote

from aiohttp import web

from ..stream import StreamManager

DEMOS = {
    "Two Way Streaming": "examples/demo/streaming/two_way_streaming/two_way_streaming.html",
    "Player": "examples/demo/streaming/player/player.html",
    "Embed Player": "examples/demo/streaming/embed_player/player.html",
}
EMBED_PLAYER = "/client2/" + DEMOS["Embed Player"]

StatSource = Callable[[], str]
"Returns the node statistics page (WCS ``key=value`` sections)."


class Pages:
    def __init__(
        self,
        streams: StreamManager,
        stat: StatSource,
        websdk_dir: Path | None,
        ws_port: int,
        wss_port: int,
    ) -> None:
        self.streams = streams
        self.stat = stat
        self.websdk_dir = websdk_dir
        self.ws_port = ws_port
        self.wss_port = wss_port

    async def close(self) -> None:
        pass

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/", self.index)
        app.router.add_get("/embed_player", self.embed_player)
        websdk = self.websdk_dir
        if websdk is not None and websdk.is_dir():
            clip = websdk / "examples/demo/streaming/embed_player/copy-to-clipboard@latest"

            async def copy_to_clipboard(request: web.Request) -> web.StreamResponse:
                return web.FileResponse(clip, headers={"Content-Type": "application/javascript"})

            app.router.add_get(
                "/client2/examples/demo/streaming/embed_player/copy-to-clipboard@latest", copy_to_clipboard
            )
            app.router.add_static("/client2/", websdk, follow_symlinks=False)
        else:
            missing = websdk or Path("web/node_modules/@flashphoner/websdk")

            async def not_installed(request: web.Request) -> web.Response:
                return web.Response(
                    status=404, text=f"rtcdn: the WebSDK is not installed in {missing} (run `make run`)\n"
                )

            app.router.add_get("/client2/{tail:.*}", not_installed)

    async def index(self, request: web.Request) -> web.Response:
        if request.query.get("action") == "stat":  # WCS's node statistics, read by CDN balancers
            return web.Response(text=self.stat(), headers={"Access-Control-Allow-Origin": "*"})
        links = "".join(
            f'<li><a href="/client2/{html.escape(path)}">{html.escape(name)}</a></li>'
            for name, path in DEMOS.items()
        )
        body = (
            "<!doctype html><meta charset=utf-8><title>rtcdn</title><h1>rtcdn</h1>"
            f"<p>WebSocket: ws port {self.ws_port}, wss port {self.wss_port}</p>"
            f"<h2>Demo pages</h2><ul>{links}</ul><h2>Live streams</h2>{self._streams_table(request)}"
        )
        return web.Response(text=body, content_type="text/html")

    def _streams_table(self, request: web.Request) -> str:
        ws = f"ws://{request.url.host or '127.0.0.1'}:{self.ws_port}"
        rows = []
        now = time.time()
        for stream in self.streams:
            if not stream.live:
                continue
            octets = sum(fan.octets for fan in stream.tracks.values())
            kbps = octets * 8 / 1000 / max(now - stream.created, 1.0)
            name = quote(stream.name, safe="")
            player = f"/client2/{DEMOS['Player']}?{_query({'streamName': stream.name, 'urlServer': ws})}"
            embed = (
                f"{EMBED_PLAYER}?{_query({'streamName': stream.name, 'urlServer': ws, 'autoplay': 'true'})}"
            )
            rows.append(
                f"<tr><td>{html.escape(stream.name)}</td>"
                f"<td>{', '.join(html.escape(t.mime_type) for t in stream.track_infos().values())}</td>"
                f"<td class=players>{len(stream.players)}</td><td class=kbps>{kbps:.0f}</td>"
                f'<td><a href="{html.escape(player)}">Player</a> · <a href="{html.escape(embed)}">Embed</a>'
                f' · <a href="/whep/{name}" title="WHEP: POST an SDP offer here">WHEP</a></td></tr>'
            )
        if not rows:
            return "<p>none</p>"
        return (
            "<table><tr><th>stream</th><th>codecs</th><th>players</th><th>kbit/s (avg)</th><th>play</th></tr>"
            + "".join(rows)
            + "</table>"
        )

    async def embed_player(self, request: web.Request) -> web.Response:
        raise web.HTTPFound(EMBED_PLAYER + (f"?{request.query_string}" if request.query_string else ""))


def _query(params: Mapping[str, str]) -> str:
    return "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items())
