"""Parsers fuzzed with hypothesis: random and mutated real bytes (RTP, RTCP, RTMP, WCS); only the
error types each parser documents may come out (see parser_targets.py). Known bugs: the xfail tests."""

from __future__ import annotations

import math
from typing import Any

import pytest
from fuzzkit import Tally, run_examples
from parser_targets import check_command, check_rtmp_url, check_wcs_frame, targets

BUDGET = {"rtp.Depacketizer": 120, "webrtc.install_ingest+Stream.forward": 60, "rtmp.ChunkReader.feed": 150}
"max_examples per target in CI (default 200): the whole folder runs in about a minute."

TARGETS = targets()


@pytest.mark.parametrize(("name", "strategy", "check"), TARGETS, ids=[t[0] for t in TARGETS])
def test_parser(name: str, strategy: Any, check: Any) -> None:
    tally = Tally(name)
    run_examples(tally, strategy, check, BUDGET.get(name, 200))
    assert tally.tried > 0


# --- bugs the fuzzers found (fixed: now regressions) --------------------------------------------------
@pytest.mark.parametrize("obj", [{"capsEx": math.inf}, {"videoFourCcInfoMap": {"vp08": math.nan}}])
def test_capabilities_non_finite_numbers(obj: dict[str, object]) -> None:
    """A connect command object with a non-finite capsEx / FourCC info value (int() raised)."""
    from rtcdn.rtmp import amf0

    check_command((20, amf0.encode("connect", 1.0, obj)))


@pytest.mark.parametrize("url", ["rtmp://[x/live/a", "rtmp://127.0.0.1:99999/live/a", "rtmp://h:x/live/a"])
def test_rtmp_url_bad_ipv6_or_port(url: str) -> None:
    """parse_url let urlsplit's ValueError out (a bad [IPv6] literal)."""
    check_rtmp_url(url)


@pytest.mark.parametrize("uri", ["ws://127.0.0.1:99999", "ws://[x", "127.0.0.1:x"])
def test_agent_url_bad_port_or_ipv6(uri: str) -> None:
    """agent_url let ValueError out: a port out of range or not a number, a bad [IPv6] literal."""
    check_wcs_frame(uri)


# --- known bugs: minimal reproductions (strict: they fail loudly once fixed) --------------------------
def test_depacketizer_flush_before_any_packet() -> None:
    from rtcdn.rtp.depacketize import Depacketizer

    assert Depacketizer("opus", 48000).flush() == []


@pytest.mark.parametrize("ms", [1e15, -1e15, 2.6e14])
def test_amf0_date_out_of_datetime_range(ms: float) -> None:
    import struct

    from rtcdn.rtmp import amf0

    with pytest.raises(amf0.AmfError):
        amf0.decode(b"\x0b" + struct.pack("!d", ms) + b"\x00\x00")
