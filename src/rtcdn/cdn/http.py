"""Load-balancer endpoints of a CDN origin: where should a player go?

* ``GET /balancer[?streamName=N][&group=G]`` answers ``{server, ws, wss, flash, node}`` for the
  WebSDK's ``createSession({urlServer, lbUrl})``: a live edge (by ``mode`` of loadbalancing.xml, or
  as the dynamic CDN picks), or this node itself when no edge is up (``node`` is then ``"origin"``).
* ``GET /balancer/player?streamName=N`` and ``GET /balancer/embed_player?streamName=N&...``
  redirect to the demo Player / Embed Player page *on the chosen edge* (the pages themselves take
  no balancer URL), so an unmodified page plays from the edge.
"""

from __future__ import annotations

from typing import Protocol
from urllib.parse import urlencode

from aiohttp import web

from .config import Node


class Chooser(Protocol):
    """Picks the edge for a player: the static :class:`~.balancer.Balancer`, or a dynamic CDN's
    cluster (:class:`rtcdn.cluster.Cluster`)."""

    def pick(self, stream: str | None = None, group: str | None = None) -> Node | None: ...


PAGES = {
    "player": "/client2/examples/demo/streaming/player/player.html",
    "embed_player": "/client2/examples/demo/streaming/embed_player/player.html",
}


class BalancerRoutes:
    """The HTTP front end of a balancer; ``ws_port``/``wss_port``/``bind`` describe this node, the
    answer when no edge is up."""

    def __init__(self, balancer: Chooser, ws_port: int, wss_port: int, bind: str) -> None:
        self.balancer = balancer
        self.ws_port = ws_port
        self.wss_port = wss_port
        self.bind = bind

    async def close(self) -> None:
        pass

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/balancer", self.choose)
        app.router.add_get("/balancer/{page}", self.redirect)

    def _target(self, request: web.Request) -> tuple[str, Node | None]:
        query = request.query
        node = self.balancer.pick(query.get("streamName") or None, query.get("group") or None)
        if node is not None:
            return (request.url.host or node.ip) if node.same_host else node.ip, node
        return request.url.host or self.bind, None

    async def choose(self, request: web.Request) -> web.Response:
        host, node = self._target(request)
        reply = (
            {"server": host, "ws": node.ws, "wss": node.wss, "flash": node.flash, "node": node.id}
            if node is not None
            else {"server": host, "ws": self.ws_port, "wss": self.wss_port, "flash": 1935, "node": "origin"}
        )
        return web.json_response(reply, headers={"Access-Control-Allow-Origin": "*"})

    async def redirect(self, request: web.Request) -> web.Response:
        page = request.match_info["page"]
        if page not in PAGES:
            raise web.HTTPNotFound(text=f"no demo page {page!r}; use {', '.join(PAGES)}\n")
        host, node = self._target(request)
        query = dict(request.query)
        if node is not None:
            base, ws = f"http://{node.ip}:{node.http}", f"ws://{node.ip}:{node.ws}"
        else:
            port = request.url.port or 9091
            base, ws = f"{request.url.scheme}://{host}:{port}", f"ws://{host}:{self.ws_port}"
        if page == "embed_player":
            query.setdefault("urlServer", ws)
        raise web.HTTPFound(f"{base}{PAGES[page]}" + (f"?{urlencode(query)}" if query else ""))
