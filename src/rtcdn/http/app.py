"""aiohttp applications: the WebSocket signaling endpoint and the HTTP side (pages, REST)."""

from __future__ import annotations

import html
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from ..cdn.stats import format_stat
from ..signaling.messages import MAX_FRAME_BYTES
from ..signaling.session import WcsSession
from .balancer import add_routes as add_balancer_routes
from .rest import RestApi, add_routes, rest_middleware

if TYPE_CHECKING:
    from ..server import Server

logger = logging.getLogger(__name__)

SERVER_KEY: web.AppKey[Server] = web.AppKey("server")
DEMOS = {
    "Two Way Streaming": "examples/demo/streaming/two_way_streaming/two_way_streaming.html",
    "Player": "examples/demo/streaming/player/player.html",
    "Embed Player": "examples/demo/streaming/embed_player/player.html",
}
EMBED_PLAYER = "/client2/" + DEMOS["Embed Player"]


async def websocket_handler(request: web.Request) -> web.StreamResponse:
    server: Server = request.app[SERVER_KEY]
    ws = web.WebSocketResponse(max_msg_size=MAX_FRAME_BYTES, autoping=True)
    if not ws.can_prepare(request).ok:
        return web.Response(status=426, text="rtcdn: this port speaks WebSocket (WCS WebSDK protocol)\n")
    await ws.prepare(request)
    peer = request.transport.get_extra_info("peername") if request.transport else None
    remote = f"{peer[0]}:{peer[1]}" if peer else "unknown"
    session = WcsSession(server, ws, remote)
    await session.run()
    return ws


def create_ws_app(server: Server) -> web.Application:
    app = web.Application()
    app[SERVER_KEY] = server
    app.router.add_get("/{tail:.*}", websocket_handler)
    return app


async def index(request: web.Request) -> web.Response:
    server: Server = request.app[SERVER_KEY]
    if request.query.get("action") == "stat":  # WCS's node statistics, read by CDN balancers
        return web.Response(text=format_stat(server.stat()), headers={"Access-Control-Allow-Origin": "*"})
    links = "".join(
        f'<li><a href="/client2/{html.escape(path)}">{html.escape(name)}</a></li>'
        for name, path in DEMOS.items()
    )
    streams = "".join(f"<li>{html.escape(s.name)}</li>" for s in server.streams if s.live) or "<li>none</li>"
    body = (
        "<!doctype html><title>rtcdn</title><h1>rtcdn</h1>"
        f"<p>WebSocket: ws port {server.settings.ws_port}, wss port {server.settings.wss_port}</p>"
        f"<h2>Demo pages</h2><ul>{links}</ul><h2>Live streams</h2><ul>{streams}</ul>"
    )
    return web.Response(text=body, content_type="text/html")


async def embed_player(request: web.Request) -> web.Response:
    raise web.HTTPFound(EMBED_PLAYER + (f"?{request.query_string}" if request.query_string else ""))


def _no_websdk(websdk_dir: Path) -> web.Response:
    return web.Response(
        status=404,
        text=f"rtcdn: the WebSDK is not installed in {websdk_dir} (run `make run`)\n",
    )


def create_http_app(server: Server) -> web.Application:
    app = web.Application(middlewares=[rest_middleware], client_max_size=1 << 20)
    app[SERVER_KEY] = server
    add_routes(app, RestApi(server))
    if server.balancer is not None:
        add_balancer_routes(app, server)
    app.router.add_get("/", index)
    app.router.add_get("/embed_player", embed_player)
    websdk = server.websdk_dir
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
            return _no_websdk(missing)

        app.router.add_get("/client2/{tail:.*}", not_installed)
    return app
