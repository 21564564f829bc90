"""relay_allowed_hosts: the entry syntax, the matching rules, and the REST methods (and a
publishStream rtmpUrl) refused with 403 for a target not listed, while CDN nodes always pass.
Every target is a closed port on 127.0.0.x: nothing is listening there, and refusals never connect."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from rtcdn.api.targets import TargetPolicy, TargetRefused, parse_entry
from rtcdn.server import Server
from testkit import free_port, make_settings


@pytest.mark.parametrize(
    "entry",
    [
        "edge1.example.com",
        "Edge1.Example.COM.",
        "edge:8080",
        "203.0.113.5",
        "203.0.113.5:1935",
        "::1",
        "[::1]:8080",
        "[fd00::1]",
        "203.0.113.0/24",
        "fd00::/8",
        "localhost",
    ],
)
def test_entries_parse(entry: str) -> None:
    parse_entry(entry)


@pytest.mark.parametrize(
    "entry", ["203.0.113.0/33", "host:0", "host:99999", "host:x", "[::1]x", "a b", "http://h", "h/x"]
)
def test_bad_entries(entry: str) -> None:
    with pytest.raises(ValueError):
        parse_entry(entry)


def test_matching() -> None:
    policy = TargetPolicy(
        ["Edge1.example.com", "edge2.example.com:8443", "127.0.0.2", "203.0.113.0/24", "[::1]:8080"],
        always=[("127.0.0.9", 9000)],
    )
    assert policy.restricted
    allowed = [
        ("edge1.example.com", 1),
        ("EDGE1.example.com.", 8080),
        ("edge2.example.com", 8443),
        ("127.0.0.2", 5),
        ("203.0.113.7", 8080),
        ("::ffff:203.0.113.7", 1),
        ("::1", 8080),
        ("127.0.0.9", 9000),
    ]
    refused = [
        ("edge2.example.com", 8080),
        ("edge3.example.com", 8080),
        ("127.0.0.3", 5),
        ("198.51.100.1", 1),
        ("::1", 8081),
        ("127.0.0.9", 9001),
        ("203.evil.example", 1),
        ("2130706433", 1),
        ("127.1", 1),
    ]
    assert [t for t in allowed if not policy.allows(*t)] == []
    assert [t for t in refused if policy.allows(*t)] == []
    assert TargetPolicy().allows("anything", 1) and not TargetPolicy().restricted


def test_relay_and_rtmp_targets_are_the_urls_opened() -> None:
    policy = TargetPolicy(["127.0.0.2:8443", "127.0.0.3:1935"])
    policy.check_relay("wss://127.0.0.2:8443/websocket", use_ssl=False)
    policy.check_relay("127.0.0.2", use_ssl=True)  # wcs_agent_ssl: a bare host is wss://host:8443
    with pytest.raises(TargetRefused, match=r"relay target 127\.0\.0\.2:8080 is not allowed") as info:
        policy.check_relay("127.0.0.2", use_ssl=False)
    assert info.value.status == 403
    with pytest.raises(TargetRefused, match="not allowed"):
        policy.check_relay("ws://127.0.0.3:8443@127.0.0.4:8443", use_ssl=False)  # userinfo is not the host
    with pytest.raises(TargetRefused) as info:
        policy.check_relay("http://127.0.0.2:8443", use_ssl=False)
    assert info.value.status == 400
    policy.check_rtmp("rtmp://127.0.0.3/live/s")  # the default RTMP port
    with pytest.raises(TargetRefused, match=r"push target 127\.0\.0\.3:1936"):
        policy.check_rtmp("rtmp://127.0.0.3:1936/live/s")


@pytest.fixture
async def origin(tmp_path: Path) -> Any:
    """A CDN origin whose one edge, 127.0.0.4, listens nowhere; only 127.0.0.2 is listed."""
    node = {"ws": free_port("127.0.0.4"), "http": free_port("127.0.0.4"), "flash": free_port("127.0.0.4")}
    config = tmp_path / "conf"
    config.mkdir()
    (config / "loadbalancing.xml").write_text(
        f'<loadbalancer><node id="1"><ip>127.0.0.4</ip><ws>{node["ws"]}</ws><http>{node["http"]}</http>'
        f"<flash>{node['flash']}</flash></node></loadbalancer>"
    )
    settings = make_settings(
        load_balancing_enabled=True, config_dir=config, relay_allowed_hosts=["127.0.0.2"]
    )
    server = Server(settings, tmp_path / "state")
    await server.start()
    try:
        yield server, node
    finally:
        await server.close()


async def call(server: Server, method: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    url = f"http://127.0.0.1:{server.settings.http_ports[0]}/rest-api/{method}"
    async with aiohttp.ClientSession() as http, http.post(url, json=body) as resp:
        return resp.status, await resp.json()


async def test_rest_refuses_unlisted_targets_and_allows_cdn_nodes(origin: Any) -> None:
    server, node = origin
    closed = free_port("127.0.0.3")
    code, err = await call(server, "pull/pull", {"uri": f"ws://127.0.0.3:{closed}", "remoteStreamName": "s"})
    assert (code, err["error"]) == (403, "Forbidden")
    assert f"127.0.0.3:{closed}" in err["message"] and "relay_allowed_hosts" in err["message"]
    code, err = await call(
        server,
        "pull/push",
        {"uri": f"ws://127.0.0.3:{closed}", "localStreamName": "s", "remoteStreamName": "s"},
    )
    assert code == 403  # refused before anything else is looked at
    code, err = await call(
        server, "push/startup", {"streamName": "s", "rtmpUrl": f"rtmp://127.0.0.3:{closed}/live"}
    )
    assert code == 403 and f"127.0.0.3:{closed}" in err["message"]
    assert not list(server.relays) and not list(server.pushes)  # nothing was started
    # listed, and the CDN node on its ws and RTMP ports: accepted (the relays then fail: nobody listens)
    code, relay = await call(
        server, "pull/pull", {"uri": f"ws://127.0.0.2:{free_port('127.0.0.2')}", "remoteStreamName": "a"}
    )
    assert code == 200 and relay["status"] in ("NEW", "PENDING", "FAILED")
    code, relay = await call(
        server, "pull/pull", {"uri": f"ws://127.0.0.4:{node['ws']}", "remoteStreamName": "b"}
    )
    assert code == 200
    code, _ = await call(
        server, "pull/pull", {"uri": f"ws://127.0.0.4:{node['http']}", "remoteStreamName": "c"}
    )
    assert code == 403  # a node is allowed on its media ports only
    code, err = await call(
        server, "push/startup", {"streamName": "s", "rtmpUrl": f"rtmp://127.0.0.4:{node['flash']}/live"}
    )
    assert code == 404 and "not published" in err["message"]  # past the allow-list


async def test_publish_stream_rtmp_url_is_checked(origin: Any) -> None:
    server, node = origin
    with pytest.raises(TargetRefused, match=r"127\.0\.0\.3"):
        server._republish("s", "rtmp://127.0.0.3:1/live")
    with pytest.raises(Exception, match="not published"):  # allowed: the push manager decides
        server._republish("s", f"rtmp://127.0.0.4:{node['flash']}/live")


async def test_no_list_allows_any_target(server: Server) -> None:
    closed = free_port("127.0.0.3")
    code, _ = await call(server, "pull/pull", {"uri": f"ws://127.0.0.3:{closed}", "remoteStreamName": "s"})
    assert code == 200
