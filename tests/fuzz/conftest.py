"""Fixtures of the fuzz tests: the hypothesis "ci" profile, the network guard, the log watch, and an
in-process server with a steady WebRTC stream that must keep flowing while bad clients misbehave.

The CI budget of the whole folder is about a minute on 2 cores (each test's ``max_examples`` is
small); bench/fuzz.py runs the same targets for minutes. ``HYPOTHESIS_PROFILE=explore`` makes the
tests draw new inputs each run instead of CI's fixed ones.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import fuzzkit
import pytest
from fuzzkit import LogWatch, NetGuard, Snapshot, fuzz_settings, settle, threads
from hypothesis import settings
from live_targets import Steady

from rtcdn.server import Server

settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
assert fuzzkit.TESTS.is_dir()


@pytest.fixture(autouse=True)
def net_guard() -> Iterator[list[str]]:
    """No fuzz test may reach anything but loopback: refused before the system call, and a failure."""
    with NetGuard.active() as violations:
        yield violations
    assert not violations, f"non-loopback network use: {violations[:5]}"


@pytest.fixture
def log_watch(request: pytest.FixtureRequest) -> Iterator[LogWatch]:
    """Every WARNING+ record; an error, a traceback or a crash word fails the test (an xfail test,
    a known bug's reproduction, checks ``log_watch.bad`` itself: a teardown failure is no xfail)."""
    with LogWatch.active() as watch:
        yield watch
    if request.node.get_closest_marker("xfail") is None:
        assert not watch.bad, "server log:\n" + "\n".join(watch.bad[:10])


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "default_settings: the fuzz server without relay_allowed_hosts (a known bug's reproduction)",
    )


@pytest.fixture
async def fuzz_server(
    tmp_path: Path, log_watch: LogWatch, request: pytest.FixtureRequest
) -> AsyncIterator[Server]:
    """An in-process server (quick ICE timeout); after it closes no thread is left behind."""
    before = threads()
    policy = request.node.get_closest_marker("default_settings") is None
    srv = Server(fuzz_settings(policy), tmp_path / "state")
    await srv.start()
    try:
        yield srv
    finally:
        await srv.close()
        await asyncio.sleep(0.2)
        for _ in range(50):
            if threads() <= before:
                break
            await asyncio.sleep(0.1)
        assert threads() <= before, f"threads left behind: {sorted(threads() - before)}"


@pytest.fixture
async def steady(fuzz_server: Server) -> AsyncIterator[Steady]:
    """A live stream and its viewer (frames counted all along); after the test it still plays, the
    server is back to where it was with only the steady stream, then empty once that ends."""
    empty = Snapshot.of(fuzz_server)
    async with Steady(fuzz_server) as live:
        baseline = Snapshot.of(fuzz_server)
        yield live
        assert await live.frames_within(1.5) > 3, "the steady stream stopped while bad input arrived"
        now = await settle(fuzz_server, baseline)
        assert now == baseline, f"leak: before={baseline} after={now}"
    now = await settle(fuzz_server, empty)
    assert now == empty, f"left after the steady stream ended: before={empty} after={now}"
