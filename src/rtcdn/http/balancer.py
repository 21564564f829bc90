"""Load-balancer endpoints of a CDN origin: where should a player go?

* ``GET /balancer`` answers ``{server, ws, wss, flash, node}`` for the WebSDK's
  ``createSession({urlServer, lbUrl})``: a live edge chosen by ``mode``, or this origin itself when
  no edge is up (``node`` is then ``"origin"``).
* ``GET /balancer/player?streamName=N`` and ``GET /balancer/embed_player?streamName=N&...``
  redirect to the demo Player / Embed Player page *on the chosen edge* (the pages themselves take
  no balancer URL), so an unmodified page plays from the edge.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlencode

from aiohttp import web

from ..cdn import Node
from .rest import CORS_HEADERS

if TYPE_CHECKING:
    from ..server import Server

PAGES = {
    "player": "/client2/examples/demo/streaming/player/player.html",
    "embed_player": "/client2/examples/demo/streaming/embed_player/player.html",
}


def _target(server: Server, request: web.Request) -> tuple[str, Node | None]:
    node = server.balancer.pick() if server.balancer is not None else None
    if node is not None:
        return (request.url.host or node.ip) if node.same_host else node.ip, node
    host = request.url.host or server.settings.bind
    return host, None


async def balancer(request: web.Request, server: Server) -> web.Response:
    host, node = _target(server, request)
    s = server.settings
    reply = (
        {"server": host, "ws": node.ws, "wss": node.wss, "flash": node.flash, "node": node.id}
        if node is not None
        else {"server": host, "ws": s.ws_port, "wss": s.wss_port, "flash": 1935, "node": "origin"}
    )
    return web.json_response(
        reply, headers={"Access-Control-Allow-Origin": CORS_HEADERS["Access-Control-Allow-Origin"]}
    )


async def redirect(request: web.Request, server: Server) -> web.Response:
    page = request.match_info["page"]
    if page not in PAGES:
        raise web.HTTPNotFound(text=f"no demo page {page!r}; use {', '.join(PAGES)}\n")
    host, node = _target(server, request)
    query = dict(request.query)
    if node is not None:
        base, ws = f"http://{node.ip}:{node.http}", f"ws://{node.ip}:{node.ws}"
    else:
        port = request.url.port or 9091
        base, ws = f"{request.url.scheme}://{host}:{port}", f"ws://{host}:{server.settings.ws_port}"
    if page == "embed_player":
        query.setdefault("urlServer", ws)
    raise web.HTTPFound(f"{base}{PAGES[page]}" + (f"?{urlencode(query)}" if query else ""))


def add_routes(app: web.Application, server: Server) -> None:
    async def lb(request: web.Request) -> web.Response:
        return await balancer(request, server)

    async def go(request: web.Request) -> web.Response:
        return await redirect(request, server)

    app.router.add_get("/balancer", lb)
    app.router.add_get("/balancer/{page}", go)
