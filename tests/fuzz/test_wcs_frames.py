"""WCS frames fuzzed against an in-process server while a steady stream plays: random JSON, valid
messages with mutated fields and types, mutated real SDP offers, on established and fresh sessions,
some closed abruptly. Every reply is strict JSON with a ``message``; the bad client's streams and
peers end when it stops them or goes; the steady stream never stops (fixtures in conftest.py)."""

from __future__ import annotations

import asyncio

from fuzzkit import LogWatch, Tally, in_thread, run_examples
from live_targets import RawWcs, Steady, WcsTarget

from rtcdn.server import Server
from rtcdn.wcs import messages as m

EXAMPLES = 100


async def test_wcs_frames(fuzz_server: Server, steady: Steady) -> None:
    target = WcsTarget(fuzz_server, steady)
    await target.setup()
    tally = Tally("wcs")
    try:
        await in_thread(lambda: run_examples(tally, target.strategy(), target.check, EXAMPLES))
    finally:
        await target.close()
    assert tally.tried == EXAMPLES


async def test_non_finite_numbers_are_not_echoed(fuzz_server: Server, steady: Steady) -> None:
    import aiohttp

    findings: list[str] = []
    async with aiohttp.ClientSession() as http:
        client = await RawWcs.open(http, steady.url, findings)
        await client.send('{"message": "connection", "data": [{"appKey": "a", "custom": Infinity}]}')
        assert await client.sync()
        await client.close()
    # refused as what it is, not JSON: a `fail` frame, and no reply carries NaN/Infinity
    assert any(f["message"] == "fail" and "Infinity" in str(f["data"]) for f in client.frames), client.frames
    assert not any(f["message"] == "getUserData" for f in client.frames)
    assert not findings, findings


async def test_deeply_nested_frame_is_refused(fuzz_server: Server, log_watch: LogWatch) -> None:
    import aiohttp

    findings: list[str] = []
    url = f"ws://127.0.0.1:{fuzz_server.settings.ws_port}/"
    async with aiohttp.ClientSession() as http:
        client = await RawWcs.open(http, url, findings)
        await client.send(m.frame("connection", m.connection_payload("rtcdn fuzz")))
        assert await client.sync()
        await client.send("[" * 5000 + "]" * 5000)
        survived = await client.sync()
        await client.close()
    assert not log_watch.bad, log_watch.bad[0][:500]
    assert survived and any(f["message"] == "fail" for f in client.frames)


async def test_foreign_media_session_id_keeps_the_owner_listed(fuzz_server: Server) -> None:
    import aiohttp
    from live_targets import make_offers

    offer = (await make_offers())[0]
    async with Steady(fuzz_server) as live, aiohttp.ClientSession() as http:
        owner = live.msids[0]
        findings: list[str] = []
        client = await RawWcs.open(http, live.url, findings)
        await client.send(m.frame("connection", m.connection_payload("rtcdn fuzz")))
        await client.send(m.frame("publishStream", m.stream_payload(owner, "fz-dup", True, offer)))
        await client.send(m.frame("stopStream", {"mediaSessionId": owner}))
        await client.send(m.frame("unPublishStream", {"mediaSessionId": owner}))
        assert await client.sync()
        await client.close()
        await asyncio.sleep(0.3)
        assert set(live.msids) <= {s.id for s in fuzz_server.streams.sessions}, "the owner's entry is gone"
