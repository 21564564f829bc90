"""webrtc.faults: the RTCDN_FAULTS syntax, what the injector does to datagrams (seeded, counted),
that it is installed per MediaConfig or per process, and not at all when no faults are set."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from aiortc import RTCPeerConnection

from rtcdn.webrtc import MediaConfig, PortRange, faults
from rtcdn.webrtc._aiortc import bound_receive_queue, patch_gathering
from rtcdn.webrtc.faults import Faults, FaultSpec, FaultSyntaxError


@pytest.fixture(autouse=True)
def process_state() -> Iterator[None]:
    """Each test starts with no process faults and RTCDN_FAULTS not read yet; restored after."""
    saved = faults._process, faults._process_read
    faults._process, faults._process_read = None, False
    yield
    faults._process, faults._process_read = saved


def test_syntax() -> None:
    spec = FaultSpec.parse("loss=0.05, delay=40ms,jitter=10,reorder=1,dup=1%,seed=7,blackhole=2s@5s,burst=3")
    assert spec == FaultSpec(
        loss=0.05, burst=3, delay=0.04, jitter=0.01, reorder=True, dup=0.01, blackhole=(2.0, 5.0), seed=7
    )
    assert FaultSpec.parse(str(spec)) == spec
    assert FaultSpec.parse("blackhole=0.5s").blackhole == (0.5, 0.0)
    assert FaultSpec.parse("") == FaultSpec() and not FaultSpec.parse("seed=3").active
    for bad in (
        "loss=2",
        "loss=x",
        "delay=5min",
        "reorder=2",
        "burst=0",
        "nope=1",
        "loss",
        "loss=0.1,loss=0.2",
    ):
        with pytest.raises(FaultSyntaxError):
            FaultSpec.parse(bad)


def run(spec: str, n: int = 2000, seed_conn: int = 0) -> tuple[list[int], Faults]:
    """Push ``n`` numbered datagrams through a fresh injector (no delay allowed); the delivered numbers."""
    injector = faults._make(spec)
    assert injector is not None
    for _ in range(seed_conn):
        injector.wrap(lambda data, component: None)
    out: list[int] = []
    receive = injector.wrap(lambda data, component: out.append(int.from_bytes(data, "big")))
    for i in range(n):
        receive(i.to_bytes(4, "big"), 1)
    return out, injector


def test_loss_is_seeded_and_counted() -> None:
    delivered, injector = run("loss=0.1,seed=7")
    assert 150 < injector.stats.dropped < 250 and injector.stats.dropped + len(delivered) == 2000
    assert injector.stats.received == 2000 and injector.stats.delivered == len(delivered)
    assert run("loss=0.1,seed=7")[0] == delivered  # same seed, same losses
    assert run("loss=0.1,seed=8")[0] != delivered
    assert run("loss=0.1,seed=7", seed_conn=1)[0] != delivered  # each connection its own generator


def test_bursts_and_duplicates() -> None:
    delivered, injector = run("loss=0.05,burst=3,seed=1")
    lost = sorted(set(range(2000)) - set(delivered))
    runs, start = [], lost[0]
    for a, b in zip(lost, [*lost[1:], None], strict=True):
        if b != a + 1:
            runs.append(a - start + 1)
            start = b
    assert all(r % 3 == 0 for r in runs) and injector.stats.dropped == len(lost)
    delivered, injector = run("dup=0.1,seed=1")
    assert len(delivered) == 2000 + injector.stats.duplicated and 150 < injector.stats.duplicated < 250


def test_blackhole_window() -> None:
    injector = faults._make("blackhole=1s@5s")
    assert injector is not None
    out: list[bytes] = []
    receive = injector.wrap(lambda data, component: out.append(data))
    receive(b"before", 1)
    injector.started = time.monotonic() - 5.5  # inside the window
    receive(b"inside", 1)
    injector.started = time.monotonic() - 6.5
    receive(b"after", 1)
    assert out == [b"before", b"after"] and injector.stats.blackholed == 1


async def delays(spec: str, n: int = 200) -> tuple[list[tuple[int, float]], Faults]:
    injector = faults._make(spec)
    assert injector is not None
    loop = asyncio.get_running_loop()
    out: list[tuple[int, float]] = []
    sent: dict[int, float] = {}
    receive = injector.wrap(lambda data, c: out.append((int.from_bytes(data, "big"), loop.time())))
    for i in range(n):
        sent[i] = loop.time()
        receive(i.to_bytes(4, "big"), 1)
        await asyncio.sleep(0.001)
    await asyncio.sleep(0.1)
    return [(i, t - sent[i]) for i, t in out], injector


async def test_delay_and_jitter_reorder() -> None:
    out, injector = await delays("delay=40ms,jitter=10ms,seed=3")
    assert len(out) == 200 and injector.stats.delayed == 200
    spread = sorted(d for _, d in out)  # 40 ± 10 ms, plus the loop's lateness (a busy machine's)
    assert spread[0] >= 0.029 and spread[len(spread) // 2] <= 0.06 and spread[-1] <= 0.5, out
    order = [i for i, _ in out]
    assert order != sorted(order) and injector.stats.reordered > 0
    out, injector = await delays("delay=40ms,jitter=10ms,reorder=0,seed=3")
    assert [i for i, _ in out] == list(range(200)) and injector.stats.reordered == 0


def fake_connection() -> object:
    class Conn:
        _queue: asyncio.Queue[object] = asyncio.Queue()
        local_username = "x"

    return Conn()


def test_nothing_is_installed_when_off() -> None:
    conn = fake_connection()
    bound_receive_queue(conn)
    assert conn.data_received.__qualname__ == "bound_receive_queue.<locals>.data_received"  # type: ignore[attr-defined]
    bound_receive_queue(conn, faults=faults._make("loss=0.5"))
    assert conn.data_received.__qualname__ == "_Connection.data_received"  # type: ignore[attr-defined]


async def test_attach_is_per_media_config_and_the_process_faults_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    impaired, clean = (MediaConfig(addresses=["127.0.0.1"], ports=PortRange(0, 0)) for _ in range(2))
    attached = faults.attach(impaired, "loss=0.1")
    assert attached is not None

    def installed(media: MediaConfig) -> str:
        pc = RTCPeerConnection()
        pc.addTransceiver("video")
        patch_gathering(pc, media.addresses, media.ports, None)
        conn = pc.getTransceivers()[0].receiver.transport.transport.iceGatherer._connection
        return str(conn.data_received.__qualname__)

    monkeypatch.setenv("RTCDN_FAULTS", "delay=10ms,seed=2")
    assert installed(impaired) == "_Connection.data_received" and attached.stats.connections == 1
    # the clean server's connections get the process faults: RTCDN_FAULTS, read at that first use
    assert installed(clean) == "_Connection.data_received"
    process = faults.process_faults()
    assert (
        process is not None
        and process.spec == FaultSpec(delay=0.01, seed=2)
        and process.stats.connections == 1
    )
    monkeypatch.setenv("RTCDN_FAULTS", "loss=0.5")
    assert faults.process_faults() is process  # read once
    faults.set_process_faults(None)
    assert installed(clean) == "bound_receive_queue.<locals>.data_received"
    assert faults.attach(impaired, None) is None
    assert installed(impaired) == "bound_receive_queue.<locals>.data_received"
    with pytest.raises(FaultSyntaxError):
        faults.set_process_faults("loss=7")
