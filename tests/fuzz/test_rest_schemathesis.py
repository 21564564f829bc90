"""The REST API fuzzed with schemathesis (its Python API, driven by hypothesis in a worker thread)
against ``/rest-api/openapi.json`` of an in-process server while a steady stream plays: every
operation, positive and negative cases; answers must conform to the schema (status, content type,
body, headers) and never be a 500. ``uri``/``rtmpUrl`` values go to a closed port on 127.0.0.x
(fuzzkit.safe_urls); pushes and relays started on the steady stream are ended afterwards."""

from __future__ import annotations

import json

import aiohttp
import pytest
from fuzzkit import LogWatch, Tally, closed_port, in_thread, run_examples
from live_targets import RestTarget, Steady

from rtcdn.server import Server

EXAMPLES = 250


async def test_rest_api(fuzz_server: Server, steady: Steady) -> None:
    target = RestTarget(fuzz_server, steady)
    await target.setup()
    tally = Tally("rest")
    try:
        await in_thread(lambda: run_examples(tally, target.strategy(), target.check, EXAMPLES))
    finally:
        await target.close()
    assert tally.tried == EXAMPLES


async def _post(server: Server, path: str, body: str) -> tuple[int, str]:
    base = f"http://127.0.0.1:{server.settings.http_ports[0]}/rest-api"
    async with aiohttp.ClientSession() as http, http.post(base + path, data=body) as resp:
        return resp.status, await resp.text()


# --- bugs the fuzzers found (fixed: now regressions), with the default (any target) relay policy ---
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/pull/pull", {"uri": "ws://127.0.0.1:99999", "remoteStreamName": "a"}),
        ("/pull/pull", {"uri": "ws://[x", "remoteStreamName": "a"}),
        ("/push/startup", {"streamName": "a", "rtmpUrl": "rtmp://[x/live"}),
    ],
)
@pytest.mark.default_settings
async def test_bad_target_url_is_a_400(fuzz_server: Server, path: str, body: object) -> None:
    """A relay uri or rtmpUrl with a bad port or [IPv6] literal was a 500 (urlsplit's ValueError)."""
    status, text = await _post(fuzz_server, path, json.dumps(body))
    assert status == 400, text


@pytest.mark.default_settings
async def test_relay_push_bad_uri(fuzz_server: Server, steady: Steady) -> None:
    import asyncio

    body = {
        "uri": f"ws://[127.0.0.1:{closed_port()}",
        "localStreamName": steady.name,
        "remoteStreamName": "b",
    }
    """/pull/push of a live stream with uri ws://[x: was a 500 (urlsplit's ValueError)."""
    status, text = await _post(fuzz_server, "/pull/push", json.dumps(body))
    await asyncio.sleep(0.5)
    for relay in list(fuzz_server.relays):
        fuzz_server.relays.terminate(relay)
    assert status == 400, text


# --- known bugs: minimal reproductions (strict: they fail loudly once fixed) --------------------------


async def test_deeply_nested_body_is_a_400(fuzz_server: Server, log_watch: LogWatch) -> None:
    status, text = await _post(fuzz_server, "/stream/find", "[" * 5000 + "]" * 5000)
    assert not log_watch.bad, log_watch.bad[0][:300]
    assert status == 400, text
