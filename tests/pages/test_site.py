"""pages.site: the index lists live streams with links that play them; stat page; embed redirect."""

from __future__ import annotations

import aiohttp

from rtcdn.server import Server
from wcs_client import WcsClient


async def test_index_lists_live_streams_with_play_links(server: Server, ws_url: str) -> None:
    base = f"http://127.0.0.1:{server.settings.http_ports[0]}"
    async with aiohttp.ClientSession() as http:
        async with http.get(base + "/") as resp:
            assert resp.status == 200
            assert "<p>none</p>" in await resp.text()
        async with WcsClient(ws_url) as pub, WcsClient(ws_url) as viewer:
            await pub.publish("lobby cam")
            await viewer.play("lobby cam")
            async with http.get(base + "/") as resp:
                page = await resp.text()
        assert "<td>lobby cam</td>" in page
        assert "<td class=players>1</td>" in page
        assert "streamName=lobby%20cam" in page and 'href="/whep/lobby%20cam"' in page
        assert f"urlServer=ws%3A%2F%2F127.0.0.1%3A{server.settings.ws_port}" in page
        kbps = float(page.split("<td class=kbps>")[1].split("<")[0])
        assert kbps > 0
        async with http.get(base + "/?action=stat") as resp:
            stat = await resp.text()
        assert "-----Streams-----" in stat and "nodeId=" in stat
        async with http.get(base + "/embed_player?streamName=x", allow_redirects=False) as resp:
            assert resp.status == 302 and "embed_player/player.html?streamName=x" in resp.headers["Location"]
