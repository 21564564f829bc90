"""GET /metrics: the series exist from the first scrape and follow real publishes and plays; the
WebRTC counters (full-socket drops, ICE failures) count; worker 0 sums its workers' samples."""

from __future__ import annotations

import asyncio
import socket
import uuid
from pathlib import Path
from types import SimpleNamespace

import aiohttp
from aiohttp import web
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from rtcdn.metrics import MetricsEndpoint, merge_families
from rtcdn.server import Server
from rtcdn.stream import StreamManager
from rtcdn.webrtc import _aiortc
from rtcdn.webrtc.peer import WebRtcCounters
from testkit import drain_datagrams, free_port, make_settings
from wcs_client import WcsClient

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
FAMILIES = {
    "rtcdn_streams": "gauge",
    "rtcdn_publishers": "gauge",
    "rtcdn_players": "gauge",
    "rtcdn_wcs_sessions": "gauge",
    "rtcdn_rtp_packets_in": "counter",
    "rtcdn_rtp_bytes_in": "counter",
    "rtcdn_rtp_packets_out": "counter",
    "rtcdn_rtp_bytes_out": "counter",
    "rtcdn_nack_resent_packets": "counter",
    "rtcdn_plis_sent": "counter",
    "rtcdn_keyframes_spared": "counter",
    "rtcdn_first_keyframe_seconds": "histogram",
    "rtcdn_rtp_packets_dropped": "counter",
    "rtcdn_ice_failures": "counter",
    "rtcdn_dtls_failures": "counter",
    "rtcdn_relays": "gauge",
}


def parse(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


async def scrape(url: str, accept: str | None = None) -> tuple[str, str]:
    """(content type, body) of ``GET url``."""
    headers = {"Accept": accept} if accept else {}
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        return resp.headers["Content-Type"], await resp.text()


def metrics_url(server: Server) -> str:
    return f"http://127.0.0.1:{server.settings.http_ports[0]}/metrics"


async def test_every_family_is_there_from_the_start(server: Server) -> None:
    content_type, text = await scrape(metrics_url(server))
    assert content_type.startswith("text/plain; version=0.0.4")
    types = {f.name: f.type for f in text_string_to_metric_families(text)}
    assert types == FAMILIES  # no CDN edges, no workers on a single node
    samples = parse(text)
    assert value(samples, "rtcdn_players", protocol="whep") == 0
    assert value(samples, "rtcdn_publishers", protocol="whip") == 0
    assert value(samples, "rtcdn_first_keyframe_seconds_bucket", le="+Inf") == 0
    assert "_created" not in text


async def test_openmetrics_when_asked(server: Server) -> None:
    content_type, text = await scrape(metrics_url(server), "application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    assert text.endswith("# EOF\n") and "# TYPE rtcdn_rtp_packets_out counter" in text


async def test_series_follow_publish_and_play(server: Server, ws_url: str) -> None:
    url = metrics_url(server)
    async with WcsClient(ws_url) as pub, WcsClient(ws_url) as v1, WcsClient(ws_url) as v2:
        await pub.publish("watched")
        for viewer in (v1, v2):
            _, _, status = await viewer.play("watched")
            assert status is not None and status["status"] == "PLAYING"
        await asyncio.sleep(0.5)
        first = parse((await scrape(url))[1])
        await asyncio.sleep(0.5)
        second = parse((await scrape(url))[1])
        assert value(second, "rtcdn_streams", state="live") == 1
        assert value(second, "rtcdn_publishers", protocol="wcs") == 1
        assert value(second, "rtcdn_players", protocol="wcs") == 2
        assert value(second, "rtcdn_players", protocol="whep") == 0
        assert value(second, "rtcdn_wcs_sessions") == 3
        for name in (
            "rtcdn_rtp_packets_in_total",
            "rtcdn_rtp_packets_out_total",
            "rtcdn_rtp_bytes_out_total",
        ):
            assert value(second, name) > value(first, name) > 0, name
        assert value(second, "rtcdn_rtp_bytes_in_total") > 10 * value(second, "rtcdn_rtp_packets_in_total")
        assert value(second, "rtcdn_first_keyframe_seconds_count") >= 2  # one per video player
        assert value(second, "rtcdn_first_keyframe_seconds_sum") > 0
        # each player either asked the publisher for a keyframe or started on the cached GOP
        assert value(second, "rtcdn_plis_sent_total") + value(second, "rtcdn_keyframes_spared_total") >= 2
        await v1.close()
        async with asyncio.timeout(5):
            while value(parse((await scrape(url))[1]), "rtcdn_players", protocol="wcs") != 1:
                await asyncio.sleep(0.1)
    async with asyncio.timeout(5):
        while value(after := parse((await scrape(url))[1]), "rtcdn_wcs_sessions") != 0:
            await asyncio.sleep(0.1)
    # counters keep what ended streams and players sent: they never go down
    for name in ("rtcdn_rtp_packets_in_total", "rtcdn_rtp_packets_out_total", "rtcdn_plis_sent_total"):
        assert value(after, name) >= value(second, name), name
    assert value(after, "rtcdn_players", protocol="wcs") == value(after, "rtcdn_streams", state="live") == 0


async def test_full_socket_drops_are_counted(server: Server) -> None:
    """fast_rtp_transmit on a real SRTP session and a datagram socket nobody reads: once the
    receiver's queue is full, sendto raises BlockingIOError and the packet is counted as dropped."""
    from pylibsrtp import Policy, Session

    policy = Policy(key=bytes(range(30)), ssrc_type=Policy.SSRC_ANY_OUTBOUND)
    address = f"\0rtcdn-test-{uuid.uuid4().hex}"  # abstract AF_UNIX name: no file, no network
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(address)
    sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sender.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    sender.setblocking(False)
    try:
        pair = SimpleNamespace(
            protocol=SimpleNamespace(transport=SimpleNamespace(_sock=sender)), remote_addr=address
        )
        connection = SimpleNamespace(_nominated={1: pair})
        dtls = SimpleNamespace(transport=SimpleNamespace(_connection=connection), _tx_srtp=Session(policy))
        counters = server.media.counters
        send = _aiortc.fast_rtp_transmit(dtls, 0x01020304, counters)  # type: ignore[arg-type]
        template = bytes.fromhex("80e0") + bytes(10) + bytes(1000)
        for seq in range(200):
            send(template, seq)
        received = drain_datagrams(receiver)
        assert counters.send_dropped > 0 and received + counters.send_dropped == 200
        dropped = value(parse((await scrape(metrics_url(server)))[1]), "rtcdn_rtp_packets_dropped_total")
        assert dropped == counters.send_dropped
    finally:
        sender.close()
        receiver.close()


async def test_ice_timeout_is_counted(tmp_path: Path) -> None:
    server = Server(make_settings(webrtc_connect_timeout_ms=1000), tmp_path)
    await server.start()
    try:
        async with WcsClient(f"ws://127.0.0.1:{server.settings.ws_port}/") as silent:
            msid, _, _ = await silent.publish("silent", wait=False)  # never applies the answer
            status = await silent.wait_status(msid, timeout=10)
            assert status["status"] == "FAILED", status
        samples = parse((await scrape(metrics_url(server)))[1])
        assert value(samples, "rtcdn_ice_failures_total") == 1
        assert value(samples, "rtcdn_dtls_failures_total") == 0
    finally:
        await server.close()


def test_merge_sums_same_names_and_labels() -> None:
    def families(text: str) -> list[Metric]:
        return list(text_string_to_metric_families(text))

    mine = families(
        '# TYPE rtcdn_players gauge\nrtcdn_players{protocol="wcs"} 1\n'
        "# TYPE rtcdn_plis_sent_total counter\nrtcdn_plis_sent_total 2\n"
        '# TYPE rtcdn_h histogram\nrtcdn_h_bucket{le="1.0"} 1\nrtcdn_h_bucket{le="+Inf"} 1\n'
        "rtcdn_h_count 1\nrtcdn_h_sum 0.5\n"
    )
    merge_families(
        mine,
        families(
            '# TYPE rtcdn_players gauge\nrtcdn_players{protocol="wcs"} 2\nrtcdn_players{protocol="whep"} 1\n'
            "# TYPE rtcdn_plis_sent_total counter\nrtcdn_plis_sent_total 3\n"
            '# TYPE rtcdn_h histogram\nrtcdn_h_bucket{le="1.0"} 0\nrtcdn_h_bucket{le="+Inf"} 2\n'
            "rtcdn_h_count 2\nrtcdn_h_sum 4.5\n"
            "# TYPE rtcdn_new gauge\nrtcdn_new 7\n"
        ),
    )
    merge_families(
        mine, families("# TYPE rtcdn_players_total counter\nrtcdn_players_total 5\n")
    )  # another type
    assert {f.name: f.type for f in mine}["rtcdn_plis_sent"] == "counter"
    merged = {(s.name, frozenset(s.labels.items())): s.value for f in mine for s in f.samples}
    assert merged == {
        ("rtcdn_players", frozenset({("protocol", "wcs")})): 3,
        ("rtcdn_players", frozenset({("protocol", "whep")})): 1,
        ("rtcdn_plis_sent_total", frozenset()): 5,
        ("rtcdn_h_bucket", frozenset({("le", "1.0")})): 1,
        ("rtcdn_h_bucket", frozenset({("le", "+Inf")})): 3,
        ("rtcdn_h_count", frozenset()): 3,
        ("rtcdn_h_sum", frozenset()): 5.0,
        ("rtcdn_new", frozenset()): 7,
    }


async def test_worker_zero_adds_its_workers(server: Server, ws_url: str) -> None:
    """An endpoint whose worker 1 is the in-process ``server`` and worker 2 answers nothing."""
    child = SimpleNamespace(id="1", ip="127.0.0.1", http=server.settings.http_ports[0])
    dead = SimpleNamespace(id="2", ip="127.0.0.1", http=free_port())
    endpoint = MetricsEndpoint(StreamManager(), WebRtcCounters(send_dropped=3), workers=[child, dead])
    server.media.counters.send_dropped = 4
    app = web.Application()
    endpoint.add_routes(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with WcsClient(ws_url) as pub, WcsClient(ws_url) as viewer:
            await pub.publish("summed")
            await viewer.play("summed")
            text = (await scrape(f"http://127.0.0.1:{port}/metrics"))[1]
            names = [f.name for f in text_string_to_metric_families(text)]
            assert len(names) == len(set(names)) == len(FAMILIES) + 1  # merged, plus rtcdn_worker_up
            samples = parse(text)
            assert value(samples, "rtcdn_rtp_packets_dropped_total") == 7
            assert value(samples, "rtcdn_worker_up", worker="0") == 1
            assert value(samples, "rtcdn_worker_up", worker="1") == 1
            assert value(samples, "rtcdn_worker_up", worker="2") == 0
            assert value(samples, "rtcdn_players", protocol="wcs") == 1
            assert value(samples, "rtcdn_wcs_sessions") == 2
            assert value(samples, "rtcdn_rtp_packets_in_total") > 0
            # the child answers for itself only
            assert ("rtcdn_worker_up", frozenset({("worker", "0")})) not in parse(
                (await scrape(metrics_url(server)))[1]
            )
    finally:
        await endpoint.close()
        await runner.cleanup()
