"""Server memory per WebRTC player: one VP8 + Opus publisher, N receive-only players, loopback only.

    .venv/bin/python bench/viewer_memory.py [--players 50,100,200] [--trace-players 20]

The rtcdn :class:`~rtcdn.server.Server` runs in this process, so its memory can be looked into
(``psutil`` RSS, ``gc`` object counts, ``tracemalloc``); the publisher and the players (the lean
counting players of ``bench/_wcs.py``, which play only and never decode) run in other processes,
so the RSS measured is the server's. Steps:

1. publisher alone (N=0): RSS, objects per type;
2. players join up to each N of ``--players`` (cumulative): RSS and objects per type again, so
   (RSS(N) - RSS(0)) / N is a player's cost; for one attached player the Python objects it retains,
   split by what holds them (peer connection, transceivers, DTLS, ICE, tasks, rtcdn sinks, ...);
3. the players leave (RSS and objects once more: what is left is a leak);
4. ``--trace-players`` more players join under ``tracemalloc``: Python allocations per player by
   file/line, by file and by package; RSS minus these is native memory (OpenSSL, libsrtp, malloc);
5. in a fresh child process, the native cost of a peer's OpenSSL/libsrtp objects, built K times:
   certificate (EC key + X.509), DTLS ``SSL.Context``, a completed DTLS handshake (one side), the
   two SRTP sessions.

Every address is on 127.0.0.0/8. Figures only, no pass/fail; ``--output FILE`` writes JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

from _media import encode_audio, encode_video
from _procs import free_port
from fanout import Worker, _summarize, players_main, publisher_main
from rtcdn.config import Settings
from rtcdn.server import Server

KiB = 1024


def _check_loopback(address: str) -> str:
    import ipaddress

    if not ipaddress.ip_address(address).is_loopback or ipaddress.ip_address(address).version != 4:
        raise SystemExit(f"{address}: only 127.0.0.0/8 addresses are allowed")
    return address


# --- measuring ------------------------------------------------------------------------------------


async def rss(samples: int = 5, interval: float = 0.5) -> int:
    """Median RSS of this process over a few samples, after a full collection."""
    gc.collect()
    me = psutil.Process()
    values = []
    for _ in range(samples):
        values.append(me.memory_info().rss)
        await asyncio.sleep(interval)
    return int(statistics.median(values))


def type_census() -> tuple[Counter[str], Counter[str]]:
    """Count and shallow bytes (``sys.getsizeof``) of the gc-tracked objects, per type."""
    gc.collect()
    counts: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    for obj in gc.get_objects():
        t = type(obj)
        name = f"{t.__module__}.{t.__qualname__}"
        counts[name] += 1
        try:
            sizes[name] += sys.getsizeof(obj)
        except TypeError:
            pass
    return counts, sizes


def task_census() -> Counter[str]:
    tasks: Counter[str] = Counter()
    for task in asyncio.all_tasks():
        coro = task.get_coro()
        tasks[getattr(coro, "__qualname__", type(coro).__name__)] += 1
    return tasks


def per_player(after: Counter[str], before: Counter[str], n: int, top: int = 40) -> list[tuple[str, float]]:
    diff = {k: (after[k] - before.get(k, 0)) / n for k in after}
    return sorted(((k, v) for k, v in diff.items() if abs(v) >= 0.05), key=lambda kv: -abs(kv[1]))[:top]


# --- what one attached player retains, object by object ----------------------------------------


def _reachable(roots: Iterable[object], stop: set[int]) -> dict[int, object]:
    """Objects reachable from ``roots`` through ``gc.get_referents``, never entering ``stop``."""
    seen: dict[int, object] = {}
    todo = [r for r in roots if id(r) not in stop]
    while todo:
        obj = todo.pop()
        if id(obj) in seen or id(obj) in stop:
            continue
        if isinstance(obj, type) or type(obj).__name__ in ("module", "code", "frame"):
            continue
        seen[id(obj)] = obj
        todo.extend(r for r in gc.get_referents(obj) if id(r) not in seen and id(r) not in stop)
    return seen


def _size(objs: Iterable[object]) -> int:
    total = 0
    for o in objs:
        try:
            total += sys.getsizeof(o)
        except TypeError:
            pass
    return total


def _components(peer: Any) -> list[tuple[str, list[object]]]:
    """What a WebRtcPlayer holds, in the order objects are attributed (first holder wins)."""
    pc = peer.pc
    ts = pc.getTransceivers()
    dtls = ts[0].receiver.transport
    ice = dtls.transport
    conn = ice._connection
    tasks: list[object] = []
    for t in ts:
        tasks += [
            getattr(t.sender, "_RTCRtpSender__rtp_task", None),
            getattr(t.sender, "_RTCRtpSender__rtcp_task", None),
        ]
        tasks += [getattr(t.receiver, "_RTCRtpReceiver__rtcp_task", None)]
    tasks += [dtls._task, getattr(ice, "_RTCIceTransport__monitor_task", None), conn._query_consent_task]
    tasks += list(getattr(peer, "_tasks", ()))
    return [
        ("asyncio tasks of the peer (+ coroutine frames)", [t for t in tasks if t is not None]),
        (
            "SDP: parsed local/remote descriptions",
            [
                getattr(pc, "_RTCPeerConnection__currentLocalDescription", None),
                getattr(pc, "_RTCPeerConnection__currentRemoteDescription", None),
                getattr(pc, "_RTCPeerConnection__pendingLocalDescription", None),
                getattr(pc, "_RTCPeerConnection__pendingRemoteDescription", None),
            ],
        ),
        (
            "certificate (RTCCertificate, key, x509 wrappers)",
            list(getattr(pc, "_RTCPeerConnection__certificates", [])),
        ),
        (f"RTCRtpSender x{len(ts)}", [t.sender for t in ts]),
        (f"RTCRtpReceiver x{len(ts)} (sendonly: never started)", [t.receiver for t in ts]),
        (f"RTCRtpTransceiver x{len(ts)}", list(ts)),
        ("aioice Connection (pairs, protocols, queue, transports)", [conn]),
        ("RTCIceTransport + RTCIceGatherer", [ice, ice.iceGatherer]),
        ("RTCDtlsTransport (SSL wrapper, SRTP sessions, router)", [dtls]),
        ("RTCPeerConnection (own state)", [pc]),
        ("rtcdn WebRtcPlayer (sinks, rewriters, plans)", [peer]),
    ]


def retained_breakdown(server: Server) -> dict[str, Any]:
    peers = [
        p
        for p in server.media.peers
        if type(p).__name__ == "WebRtcPlayer" and getattr(p, "stream", None) is not None
    ]
    if len(peers) < 2:
        return {}
    gc.collect()
    stop: set[int] = {id(server), id(server.media), id(server.streams), id(asyncio.get_running_loop())}
    stop |= {id(s) for s in getattr(server.streams, "_streams", {}).values()}
    stop |= {
        id(getattr(p, "stream", None)) for p in server.media.peers if getattr(p, "stream", None) is not None
    }
    stop |= {id(m.__dict__) for m in list(sys.modules.values()) if m is not None}

    def graph(peer: Any) -> dict[int, object]:
        others = {id(p) for p in server.media.peers if p is not peer} | {
            id(p.pc) for p in server.media.peers if p is not peer
        }
        return _reachable([peer], stop | others)

    mine, theirs = graph(peers[0]), graph(peers[1])
    exclusive = {k: v for k, v in mine.items() if k not in theirs}
    claimed: set[int] = set()
    rows = []
    components = [(label, [r for r in roots if r is not None]) for label, roots in _components(peers[0])]
    shared = set(mine) - set(exclusive)
    for label, roots in components:
        roots = [r for r in roots if id(r) in exclusive]
        others = {id(r) for other, rs in components if other != label for r in rs}
        part = _reachable(roots, stop | shared | claimed | others)
        part = {k: v for k, v in part.items() if k in exclusive}
        claimed |= set(part)
        kinds = Counter(type(o).__qualname__ for o in part.values())
        rows.append(
            {"what": label, "objects": len(part), "bytes": _size(part.values()), "top": kinds.most_common(6)}
        )
    rest = {k: v for k, v in exclusive.items() if k not in claimed}
    kinds = Counter(type(o).__qualname__ for o in rest.values())
    rows.append(
        {
            "what": "other (callbacks: WCS session, websocket, ...)",
            "objects": len(rest),
            "bytes": _size(rest.values()),
            "top": kinds.most_common(8),
        }
    )
    return {"rows": rows, "total_bytes": _size(exclusive.values()), "total_objects": len(exclusive)}


# --- native objects in a fresh process -----------------------------------------------------------


def malloc_in_use() -> int:
    """Bytes glibc's malloc has handed out (``mallinfo2``: arenas + mmapped chunks); 0 elsewhere."""
    import ctypes

    class MallInfo2(ctypes.Structure):
        _fields_ = [
            (name, ctypes.c_size_t)
            for name in "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()
        ]

    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = MallInfo2
    except (OSError, AttributeError):
        return 0
    info = libc.mallinfo2()
    return int(info.uordblks + info.hblkhd)


def native_main(conn: Any, count: int) -> None:
    """Memory per object for what tracemalloc cannot see, OpenSSL and libsrtp (one side of a peer):
    RSS and malloc'd bytes per object, ``count`` objects kept alive at once."""
    import os

    from aiortc.rtcdtlstransport import SRTP_PROFILES, RTCCertificate
    from OpenSSL import SSL
    from pylibsrtp import Policy, Session

    me = psutil.Process()
    out: dict[str, tuple[float, float]] = {}

    def measure(name: str, build: Any, per: int = 1) -> list[Any]:
        [build(i) for i in range(5)]  # warm up: first-use allocations of the libraries
        gc.collect()
        rss0, heap0 = me.memory_info().rss, malloc_in_use()
        kept = [build(i) for i in range(count)]
        gc.collect()
        out[name] = ((me.memory_info().rss - rss0) / count / per, (malloc_in_use() - heap0) / count / per)
        return kept

    certs = measure(
        "certificate: RTCCertificate.generateCertificate()", lambda i: RTCCertificate.generateCertificate()
    )
    ctxs = measure(
        "SSL.Context of a DTLS start (cert + key copied in)",
        lambda i: certs[i]._create_ssl_context(SRTP_PROFILES),
    )
    del ctxs
    shared = certs[0]._create_ssl_context(SRTP_PROFILES)
    shared.set_session_cache_mode(SSL.SESS_CACHE_OFF)
    lean = certs[1]._create_ssl_context(SRTP_PROFILES)
    lean.set_session_cache_mode(SSL.SESS_CACHE_OFF)
    lean.set_mode(SSL.MODE_RELEASE_BUFFERS)

    def handshake(i: int, ctx: Any = None) -> tuple[Any, Any]:
        a = SSL.Connection(ctx or certs[i % count]._create_ssl_context(SRTP_PROFILES))
        b = SSL.Connection(ctx or certs[(i + 1) % count]._create_ssl_context(SRTP_PROFILES))
        a.set_accept_state()
        b.set_connect_state()
        for _ in range(20):
            for x, y in ((b, a), (a, b)):
                try:
                    x.do_handshake()
                except SSL.WantReadError:
                    pass
                try:
                    data = x.bio_read(65536)
                except SSL.WantReadError:
                    data = b""
                if data:
                    y.bio_write(data)
        a.export_keying_material(b"EXTRACTOR-dtls_srtp", 60)
        return a, b

    pairs = measure("DTLS connection after handshake, own context each (aiortc)", handshake, per=2)
    del pairs
    pairs = measure(
        "DTLS connection after handshake, one shared context", lambda i: handshake(i, shared), per=2
    )
    del pairs
    pairs = measure(
        "DTLS connection after handshake, shared context, MODE_RELEASE_BUFFERS",
        lambda i: handshake(i, lean),
        per=2,
    )
    del pairs

    def srtp(i: int) -> tuple[Any, Any]:
        key = os.urandom(30)
        sessions = []
        for direction in (Policy.SSRC_ANY_INBOUND, Policy.SSRC_ANY_OUTBOUND):
            policy = Policy(key=key, ssrc_type=direction, srtp_profile=Policy.SRTP_PROFILE_AES128_CM_SHA1_80)
            policy.allow_repeat_tx = True
            policy.window_size = 1024
            sessions.append(Session(policy))
        rx, tx = sessions
        for ssrc in (1000 + i, 2000 + i):  # a player's two outbound streams (audio, video) ...
            rtp = bytes([0x80, 96, 0, 1, 0, 0, 0, 1]) + ssrc.to_bytes(4, "big") + bytes(1000)
            tx.protect(rtp)
        rtcp = bytes([0x81, 201, 0, 7]) + (3000 + i).to_bytes(4, "big") + bytes(24)
        rx.unprotect_rtcp(tx.protect_rtcp(rtcp))  # ... and its receiver reports (one inbound stream)
        return rx, tx

    measure("SRTP: rx + tx pylibsrtp Session, 2 outbound + 1 inbound stream", srtp)
    conn.send(out)


# --- the run --------------------------------------------------------------------------------------


class Run:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.workers: list[Worker] = []
        self.report: dict[str, Any] = {"steps": []}

    async def join(self, count: int) -> int:
        sizes = [self.args.per_worker] * (count // self.args.per_worker)
        if count % self.args.per_worker:
            sizes.append(count % self.args.per_worker)
        new = [
            Worker(players_main, self.ws_url, self.args.client_address, k, self.args.join_concurrency)
            for k in sizes
        ]
        self.workers += new
        joins = await asyncio.gather(
            *(asyncio.to_thread(w.receive, 120 + 3 * k) for w, k in zip(new, sizes, strict=True))
        )
        for j in joins:
            for e in j["errors"][:3]:
                print(f"    join error: {e}", flush=True)
        return sum(int(j["playing"]) for j in joins)

    async def leave(self) -> list[dict[str, Any]]:
        results = []
        for w in self.workers:
            results += await asyncio.to_thread(w.request, "stop", 60)
        for w in self.workers:
            await asyncio.to_thread(w.join)
        self.workers = []
        return results

    async def main(self) -> dict[str, Any]:
        a = self.args
        with tempfile.TemporaryDirectory(prefix="rtcdn-viewer-memory-") as tmp:
            settings = Settings(
                bind=a.address,
                ws_port=free_port(a.address),
                wss_port=0,
                rtmp_port=0,
                http_ports=[],
                https_ports=[],
                media_port_from=0,
                media_port_to=0,
                webrtc_connect_timeout_ms=30000,
            )
            self.ws_url = f"ws://{a.address}:{settings.ws_port}"
            server = Server(settings, Path(tmp) / "state")
            await server.start()
            video = encode_video(a.width, a.height, a.fps, 10, a.bitrate, gop_seconds=2)
            audio = encode_audio(10)
            publisher = Worker(publisher_main, self.ws_url, a.client_address, video, audio)
            try:
                ready = await asyncio.to_thread(publisher.receive, 60)
                if not ready["ok"]:
                    raise RuntimeError(f"publisher failed: {ready['error']}")
                await asyncio.sleep(a.settle)
                await self.steps(server)
                await asyncio.to_thread(publisher.request, "stop")
            finally:
                for w in [*self.workers, publisher]:
                    if w.process.is_alive():
                        w.process.kill()
                    w.join()
                await server.close()
        return self.report

    async def steps(self, server: Server) -> None:
        a = self.args
        base_rss = await rss()
        base_heap = malloc_in_use()
        base_counts, base_sizes = type_census()
        base_tasks = task_census()
        print(
            f"N=0: server RSS {base_rss / 2**20:.1f} MiB, {sum(base_counts.values())} gc objects, {sum(base_tasks.values())} tasks",
            flush=True,
        )
        self.report["baseline"] = {
            "rss": base_rss,
            "gc_objects": sum(base_counts.values()),
            "tasks": sum(base_tasks.values()),
        }
        playing = 0
        for n in a.players:
            started = time.monotonic()
            playing += await self.join(n - playing)
            joined = time.monotonic() - started
            await asyncio.sleep(a.settle)
            value = await rss()
            heap = malloc_in_use()
            counts, sizes = type_census()
            tasks = task_census()
            step = {
                "players": n,
                "playing": playing,
                "join_seconds": joined,
                "rss": value,
                "rss_per_player": (value - base_rss) / n,
                "malloc_per_player": (heap - base_heap) / n,
                "objects_per_player": per_player(counts, base_counts, n),
                "bytes_per_player_by_type": per_player(sizes, base_sizes, n, top=25),
                "tasks_per_player": per_player(tasks, base_tasks, n, top=15),
                "gc_objects_per_player": (sum(counts.values()) - sum(base_counts.values())) / n,
            }
            step["retained"] = retained_breakdown(server)
            self.report["steps"].append(step)
            print(
                f"N={n}: {playing}/{n} playing (joined in {joined:.0f} s), server RSS {value / 2**20:.1f} MiB, "
                f"{step['rss_per_player'] / KiB:.0f} KiB/player (malloc'd {step['malloc_per_player'] / KiB:.0f}), {step['gc_objects_per_player']:.0f} gc objects/player, "
                f"{sum(tasks.values()) - sum(base_tasks.values())} tasks more",
                flush=True,
            )
        results = await self.leave()
        self.report["players"] = _summarize(results)
        await asyncio.sleep(a.settle)
        left = await rss()
        counts, _ = type_census()
        self.report["after_leave"] = {
            "rss": left,
            "gc_objects_more_than_baseline": sum(counts.values()) - sum(base_counts.values()),
            "objects_left": per_player(counts, base_counts, 1, top=15),
            "peers_open": len(server.media.peers),
        }
        s = self.report["players"]
        print(
            f"players left: server RSS {left / 2**20:.1f} MiB, {len(server.media.peers)} peers open, "
            f"{self.report['after_leave']['gc_objects_more_than_baseline']} gc objects more than at N=0; "
            f"players saw loss {s['loss_percent'] or 0:.3f} % ({s['packets_lost']}/{s['packets_expected']})",
            flush=True,
        )
        if a.trace_players:
            await self.trace(a.trace_players)

    async def trace(self, k: int) -> None:
        tracemalloc.start(8)
        # the stream's NACK history (1024 packets) is replaced meanwhile, so that what it holds is
        # traced in both snapshots and cancels out
        await asyncio.sleep(self.args.trace_warmup)
        gc.collect()
        before = tracemalloc.take_snapshot()
        playing = await self.join(k)
        await asyncio.sleep(self.args.settle)
        gc.collect()
        after = tracemalloc.take_snapshot()
        overhead = tracemalloc.get_tracemalloc_memory()
        tracemalloc.stop()
        results = await self.leave()
        filters = [
            tracemalloc.Filter(False, tracemalloc.__file__),
            tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
        ]
        after, before = after.filter_traces(filters), before.filter_traces(filters)

        def top(key: str, count: int) -> list[tuple[str, float, float]]:
            stats = after.compare_to(before, key)
            return [
                (
                    str(st.traceback[0]) if key != "filename" else st.traceback[0].filename,
                    st.size_diff / k,
                    st.count_diff / k,
                )
                for st in stats[:count]
            ]

        total = sum(st.size_diff for st in after.compare_to(before, "filename")) / k
        packages: Counter[str] = Counter()  # bytes, over the k players
        for st in after.compare_to(before, "filename"):
            packages[_package(st.traceback[0].filename)] += st.size_diff
        self.report["tracemalloc"] = {
            "players": k,
            "playing": playing,
            "python_bytes_per_player": total,
            "tracemalloc_overhead": overhead,
            "by_line": top("lineno", 45),
            "by_file": top("filename", 25),
            "by_package": [(name, size / k) for name, size in packages.most_common()],
            "loss": _summarize(results)["loss_percent"],
        }
        print(
            f"tracemalloc, {playing}/{k} players: {total / KiB:.0f} KiB of Python allocations per player",
            flush=True,
        )


def _package(filename: str) -> str:
    parts = Path(filename).parts
    for marker in ("site-packages", "src"):
        if marker in parts:
            i = parts.index(marker)
            rest = parts[i + 1 :]
            if rest and rest[0] == "rtcdn" and len(rest) > 2:
                return f"rtcdn.{rest[1]}"
            return rest[0].removesuffix(".py") if rest else filename
    if "asyncio" in parts:
        return "asyncio"
    return Path(filename).name.removesuffix(".py") if "python3" in filename else filename


# --- report ---------------------------------------------------------------------------------------


def print_report(report: dict[str, Any]) -> None:
    def kib(x: float) -> str:
        return f"{x / KiB:8.1f}"

    print("\n== server RSS ==")
    print(f"N=0 {report['baseline']['rss'] / 2**20:.1f} MiB")
    for s in report["steps"]:
        print(
            f"N={s['players']:<4} {s['rss'] / 2**20:7.1f} MiB  {s['rss_per_player'] / KiB:6.0f} KiB/player  (malloc'd {s['malloc_per_player'] / KiB:.0f} KiB/player; {s['playing']} playing)"
        )
    last = report["steps"][-1]
    print(f"\n== gc objects per player (N={last['players']}): count, then shallow bytes per type ==")
    for name, v in last["objects_per_player"]:
        print(f"  {v:7.2f}  {name}")
    print("  -- bytes (sys.getsizeof) --")
    for name, v in last["bytes_per_player_by_type"]:
        print(f"  {kib(v)} KiB  {name}")
    print("  -- asyncio tasks per player --")
    for name, v in last["tasks_per_player"]:
        print(f"  {v:7.2f}  {name}")
    retained = last.get("retained")
    if retained:
        print(
            f"\n== one attached player, Python objects it alone retains: {retained['total_objects']} objects, {retained['total_bytes'] / KiB:.1f} KiB (shallow sizes) =="
        )
        for row in retained["rows"]:
            top = ", ".join(f"{n} {c}" for n, c in row["top"])
            print(f"  {kib(row['bytes'])} KiB {row['objects']:5d} obj  {row['what']}: {top}")
    t = report.get("tracemalloc")
    if t:
        print(
            f"\n== tracemalloc, {t['players']} more players: {t['python_bytes_per_player'] / KiB:.1f} KiB Python allocations per player =="
        )
        print("  -- by package --")
        for name, v in t["by_package"][:15]:
            print(f"  {kib(v)} KiB  {name}")
        print("  -- by file --")
        for name, v, c in t["by_file"]:
            print(f"  {kib(v)} KiB {c:7.1f} blocks  {name}")
        print("  -- by line --")
        for name, v, c in t["by_line"]:
            print(f"  {kib(v)} KiB {c:7.1f} blocks  {name}")
    native = report.get("native")
    if native:
        print("\n== native (fresh process, RSS per object) ==")
        print("       RSS    malloc'd  (KiB per object)")
        for name, (r, m) in native.items():
            print(f"  {kib(r)} {kib(m)}  {name}")
    after = report["after_leave"]
    print(
        f"\nafter the players left: RSS {after['rss'] / 2**20:.1f} MiB, peers open {after['peers_open']}, gc objects +{after['gc_objects_more_than_baseline']}"
    )
    p = report["players"]
    print(
        f"players: loss {p['loss_percent'] or 0:.3f} %, worst player {p['worst_player_loss_percent'] or 0:.3f} %, without keyframe {p['players_without_keyframe']}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    add = parser.add_argument
    add("--players", default="50,100,200", help="cumulative player counts (default 50,100,200; N=0 always)")
    add(
        "--trace-players", type=int, default=20, help="players joining under tracemalloc at the end (0: none)"
    )
    add("--trace-warmup", type=float, default=30, help="seconds traced before the cohort joins (default 30)")
    add("--native", type=int, default=100, help="objects per native measurement in a fresh process (0: none)")
    add("--address", type=_check_loopback, default="127.0.0.41", help="server bind address (127.0.0.0/8)")
    add(
        "--client-address",
        type=_check_loopback,
        default="127.0.0.42",
        help="publisher and players (127.0.0.0/8)",
    )
    add("--per-worker", type=int, default=25, help="players per worker process (default 25)")
    add("--join-concurrency", type=int, default=5)
    add("--settle", type=float, default=5, help="seconds after joins before measuring (default 5)")
    add("--size", default="640x360")
    add("--fps", type=int, default=30)
    add("--bitrate", type=int, default=500_000)
    add("--output", type=Path, help="write the report as JSON here")
    args = parser.parse_args(argv)
    args.players = sorted({int(x) for x in args.players.split(",") if x.strip() and int(x) > 0})
    args.width, args.height = (int(x) for x in args.size.split("x"))

    report = asyncio.run(Run(args).main())
    if args.native:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=native_main, args=(child, args.native))
        proc.start()
        report["native"] = parent.recv()
        proc.join()
    print_report(report)
    if args.output:
        args.output.write_text(json.dumps(report, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
