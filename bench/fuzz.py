"""Fuzzing, the long run: the targets of tests/fuzz (parsers, WCS frames, REST via schemathesis, live
RTMP connections) for minutes instead of CI's minute, with fresh random inputs.

    .venv/bin/python bench/fuzz.py [--seconds 180] [--examples N] [--targets rtp,rtmp.amf0,wcs,rest,rtmp]

``--seconds`` is shared out among the targets (a live target gets three parser targets' share);
``--examples`` caps the inputs per target. Parsers run in this process with no server; the live
targets share one in-process server (relays and pushes limited to loopback) with a steady WebRTC
stream that must keep playing. Every fuzzed ``uri``/``rtmpUrl`` points at a closed port on 127.0.0.x
and tests/fuzz/fuzzkit.NetGuard refuses any other address before the system call.

A failure: a parser raising what it does not document, a server reply that is not JSON, a 500 or an
answer off the OpenAPI schema, an error or traceback in the server's log, a leaked peer, stream,
session, task or thread, a non-loopback network call, or the steady stream stopping. Failures are
counted and the run goes on (the first few are printed with their input); known bugs, each with an
xfail test in tests/fuzz, are filtered as in the tests (fuzzkit.known_exception, Depacketizer.flush
before any packet; the WCS inputs leave out the known bugs' frames). Asserts nothing; exits 1 if a failure was found.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "fuzz"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # fuzzkit imports testkit

import fuzzkit
from fuzzkit import (
    LogWatch,
    NetGuard,
    Snapshot,
    Tally,
    fuzz_settings,
    in_thread,
    known_record,
    run_examples,
    settle,
    threads,
)
from hypothesis import settings

settings.load_profile("explore")
CHUNK = 100
"Examples per hypothesis run (each run starts from a new random seed)."
LIVE_WEIGHT = 3


def run_budget(
    tally: Tally, strategy: Any, check: Callable[[Any], None], seconds: float, examples: int | None
) -> None:
    """Run chunks of examples until ``seconds`` pass or ``examples`` are tried (failures collected)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and (examples is None or tally.tried < examples):
        left = CHUNK if examples is None else min(CHUNK, examples - tally.tried)
        before = tally.tried
        try:
            run_examples(tally, strategy, check, left, collect=True, deadline=deadline)
        except Exception as exc:  # the strategy itself, or hypothesis giving up
            tally.failures.append(f"driver: {type(exc).__name__}: {exc}")
            return
        if tally.tried == before:
            return


def parser_phase(names: list[str] | None, share: float, examples: int | None) -> list[Tally]:
    from parser_targets import targets

    out = []
    for name, strategy, check in targets():
        if names is not None and not any(name.startswith(n) for n in names):
            continue
        tally = Tally(name)
        with LogWatch.active() as watch:
            watch.ignore.append(known_record)
            run_budget(tally, strategy, check, share, examples)
        tally.failures += [f"log: {b}" for b in watch.bad]
        out.append(tally)
        report(tally)
    return out


async def live_phase(names: list[str], share: float, examples: int | None) -> list[Tally]:
    from live_targets import RestTarget, RtmpTarget, Steady, WcsTarget

    from rtcdn.server import Server

    out: list[Tally] = []
    before_threads = threads()
    with tempfile.TemporaryDirectory() as state, LogWatch.active() as watch:
        watch.ignore.append(known_record)
        server = Server(fuzz_settings(), Path(state))
        await server.start()
        try:
            empty = Snapshot.of(server)
            async with Steady(server) as steady:
                baseline = Snapshot.of(server)
                classes = {"wcs": WcsTarget, "rest": RestTarget, "rtmp": RtmpTarget}
                for name in names:
                    tally = Tally(name)
                    target = classes[name](server, steady)
                    await target.setup()
                    seen = len(watch.bad)
                    try:
                        await in_thread(
                            lambda t=target, ta=tally: run_budget(ta, t.strategy(), t.check, share, examples)
                        )
                    finally:
                        await target.close()
                    now = await settle(server, baseline)
                    if now != baseline:
                        tally.failures.append(f"leak: before={baseline} after={now}")
                        baseline = now  # the next target is judged on what it leaves itself
                    frames = await steady.frames_within(1.0)
                    if frames <= 3:
                        tally.failures.append(f"the steady stream stopped: {frames} frames in 1 s")
                    tally.failures += [f"log: {b}" for b in watch.bad[seen:]]
                    out.append(tally)
                    report(tally)
            now = await settle(server, empty)
            if now != empty and out:
                out[-1].failures.append(f"left after the steady stream ended: before={empty} after={now}")
        finally:
            await server.close()
    await asyncio.sleep(0.5)
    if threads() - before_threads and out:
        out[-1].failures.append(f"threads left behind: {sorted(threads() - before_threads)}")
    return out


def report(tally: Tally) -> None:
    rate = tally.tried / tally.seconds if tally.seconds else 0.0
    print(f"{tally.name:38s} {tally.tried:8d} inputs {len(tally.failures):4d} failures {tally.seconds:7.1f} s "
          f"({rate:.0f}/s)", flush=True)  # fmt: skip
    for failure in tally.failures[:3]:
        print("    " + failure[:1500].replace("\n", "\n    "), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--seconds", type=float, default=180.0, help="total time, shared out among the targets"
    )
    parser.add_argument("--examples", type=int, default=None, help="at most this many inputs per target")
    parser.add_argument(
        "--targets", default="", help="comma separated prefixes (parser names, wcs, rest, rtmp)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the counts to this file")
    args = parser.parse_args()
    logging.getLogger().addHandler(logging.NullHandler())  # the log watch sees every record; none printed

    from parser_targets import targets

    wanted = [t for t in args.targets.split(",") if t] or None
    live = [n for n in ("wcs", "rest", "rtmp") if wanted is None or n in wanted]
    parsers = [name for name, _, _ in targets() if wanted is None or any(name.startswith(w) for w in wanted)]
    weight = len(parsers) + LIVE_WEIGHT * len(live)
    share = args.seconds / max(1, weight)
    print(f"fuzzing {len(parsers)} parser and {len(live)} live targets, {share:.0f} s per parser target, "
          f"{LIVE_WEIGHT * share:.0f} s per live target", flush=True)  # fmt: skip
    start = time.monotonic()
    tallies: list[Tally] = []
    with NetGuard.active() as violations:
        if parsers:
            tallies += parser_phase(parsers, share, args.examples)
        if live:
            tallies += asyncio.run(live_phase(live, LIVE_WEIGHT * share, args.examples))
    if violations:
        tallies.append(Tally("network guard", failures=[f"non-loopback: {v}" for v in violations]))
    total = sum(t.tried for t in tallies)
    failures = sum(len(t.failures) for t in tallies)
    print("\n| target | bad inputs tried | failures |\n| --- | ---: | ---: |")
    for t in tallies:
        print(f"| {t.name} | {t.tried} | {len(t.failures)} |")
    print(f"| total ({time.monotonic() - start:.0f} s) | {total} | {failures} |")
    if args.json is not None:
        rows = [{"target": t.name, "tried": t.tried, "failures": len(t.failures), "seconds": round(t.seconds, 1)}
                for t in tallies]  # fmt: skip
        args.json.write_text(json.dumps({"seconds": args.seconds, "targets": rows}, indent=1) + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    assert fuzzkit.TESTS.is_dir()
    sys.exit(main())
