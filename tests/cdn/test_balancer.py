"""cdn.balancer: which live edge a player gets, per mode."""

from __future__ import annotations

from rtcdn.cdn.balancer import Balancer
from rtcdn.cdn.config import LoadBalancerConfig, Node

NODES = (Node("1", "e1"), Node("2", "e2"), Node("3", "e3"))


def balancer(mode: str, up: dict[str, tuple[int, float]]) -> Balancer:
    b = Balancer(LoadBalancerConfig(mode=mode, nodes=NODES))
    for node in NODES:
        if node.id in up:
            calls, cpu = up[node.id]
            b._mark_up(node, calls, cpu)
    return b


def test_round_robin_skips_edges_that_are_down() -> None:
    b = balancer("ROUNDROBIN", {"1": (0, 0), "2": (0, 0), "3": (0, 0)})
    assert [b.pick().ip for _ in range(4)] == ["e1", "e2", "e3", "e1"]  # type: ignore[union-attr]
    b.mark_down(NODES[1], "probe failed")
    assert [b.pick().ip for _ in range(3)] == ["e3", "e1", "e3"]  # type: ignore[union-attr]


def test_no_live_edge() -> None:
    assert balancer("ROUNDROBIN", {}).pick() is None


def test_fewest_calls_and_least_loaded() -> None:
    assert balancer("FEWESTCALLS", {"1": (5, 0.1), "2": (2, 0.9), "3": (7, 0.0)}).pick() == NODES[1]
    assert balancer("LEAST_LOADED_NODE", {"1": (5, 0.1), "2": (2, 0.9), "3": (7, 0.0)}).pick() == NODES[2]


def test_edge_coming_up_is_reported_once() -> None:
    seen: list[str] = []
    b = Balancer(LoadBalancerConfig(nodes=NODES), on_up=lambda node: seen.append(node.id))
    b._mark_up(NODES[0], 0, 0)
    b._mark_up(NODES[0], 1, 0)
    b.mark_down(NODES[0], "gone")
    b._mark_up(NODES[0], 0, 0)
    assert seen == ["1", "1"]


def test_least_loaded_process_weighs_each_worker_by_its_own_cpu() -> None:
    """--workers: worker 1 ingests and relays, so at equal players it is busier and gets fewer new
    ones; picks between two probes count at each worker's measured cost per call."""
    b = Balancer(LoadBalancerConfig(mode="LEAST_LOADED_PROCESS", nodes=NODES[:2]))
    b._mark_up(NODES[0], 20, 0.5, 0.12)  # 20 calls: 0.006 each
    b._mark_up(NODES[1], 20, 0.5, 0.08)  # 20 calls: 0.004 each
    picks = [b.pick().id for _ in range(30)]  # type: ignore[union-attr]
    # both end near the same predicted load: 0.12 + 0.006 a, 0.08 + 0.004 b, a + b = 30
    assert picks.count("2") - picks.count("1") in range(9, 16)
    b._mark_up(NODES[0], 30, 0.5, 0.18)  # a probe resets what was picked
    assert b.health["1"].picked == 0 and b.health["2"].picked > 0
    fresh = Balancer(LoadBalancerConfig(mode="LEAST_LOADED_PROCESS", nodes=NODES[:2]))
    fresh._mark_up(NODES[0], 0, 0.0, 0.0)
    fresh._mark_up(NODES[1], 0, 0.0, 0.0)
    assert sorted(fresh.pick().id for _ in range(10)) == ["1"] * 5 + ["2"] * 5  # type: ignore[union-attr]
