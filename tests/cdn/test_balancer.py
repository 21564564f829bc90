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
