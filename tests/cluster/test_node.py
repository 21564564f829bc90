"""cluster.node: which edge /balancer picks (live edges, group, stickiness, two random choices), the
WCS shape of /cdn/show_routes, node states; and the cdn_* settings that do not fit together."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from rtcdn.cluster import Address, ClusterConfig, NodeRecord
from rtcdn.cluster.node import Cluster
from rtcdn.config import ConfigError, load
from rtcdn.relay import RelayManager
from rtcdn.stream import StreamManager
from rtcdn.webrtc import MediaConfig, PortRange


def cluster(**extra: object) -> Cluster:
    config = ClusterConfig("self", "origin", Address("127.0.0.1", 8080), ttl=10.0, **extra)  # type: ignore[arg-type]
    streams = StreamManager()
    relays = RelayManager(streams, MediaConfig(["127.0.0.1"], PortRange(0, 0)), False, False)
    return Cluster(config, streams, relays, None)


def edge(id: str, players: int = 0, age: float = 0.0, **extra: object) -> NodeRecord:
    return NodeRecord(
        id, "b", "edge", Address(f"127.0.0.{len(id)}", 8080), players=players, ts=time.time() - age, **extra
    )  # type: ignore[arg-type]


def test_only_live_edges_are_picked_and_the_origin_answers_when_there_is_none() -> None:
    c = cluster()
    assert c.pick() is None
    c.directory.nodes = [edge("stale", age=30), NodeRecord("o", "b", "origin", Address("x"), ts=time.time())]
    assert c.pick() is None
    c.directory.nodes.append(edge("fresh"))
    assert {c.pick().id for _ in range(20)} == {"fresh"}  # type: ignore[union-attr]


def test_edges_carrying_the_stream_come_first_then_groups() -> None:
    c = cluster()
    c.directory.nodes = [
        edge("a", players=50, carrying=("cam",)),
        edge("b"),
        edge("c", groups=("eu",)),
    ]
    assert {c.pick("cam").id for _ in range(20)} == {"a"}  # type: ignore[union-attr]
    assert {c.pick("cam", "eu").id for _ in range(20)} == {"c"}  # type: ignore[union-attr]
    assert c.pick(group="us") is None


def test_two_random_choices_spread_players_without_a_herd() -> None:
    c = cluster()
    c.directory.nodes = [edge(f"e{i}", players=i) for i in range(10)]
    picks = Counter(c.pick().id for _ in range(2000))  # type: ignore[union-attr]
    assert picks["e9"] == 0  # the most loaded edge never wins a pair
    assert picks["e0"] < 500  # the least loaded wins only the pairs it is in (~1/5), not every pick
    assert len(picks) == 9


def test_show_routes_in_wcs_shape_and_node_states() -> None:
    c = cluster(nodes_timeout=60.0)
    c.directory.nodes = [
        edge("e1", carrying=("cam", "mic"), upstreams={"cam": "origin1", "mic": "origin2"}),
        edge("e2", age=20, carrying=("cam",), upstreams={"cam": "origin1"}),  # not live: no route
    ]
    assert c.show_routes() == {"1-origin1-e1": "cam", "2-origin2-e1": "mic"}
    states = {n["id"]: n["state"] for n in c.nodes()}
    assert states == {"self": "ACTIVE", "e1": "ACTIVE", "e2": "PASSIVE"}


@pytest.mark.parametrize(
    ("properties", "message"),
    [
        ("cdn_role=transcoder", "transcoder nodes are not supported"),
        ("cdn_role=relay", "expected origin or edge"),
        ("cdn_enabled=true\ncdn_role=edge", "an edge needs cdn_registry_url or cdn_point_of_entry"),
        ("cdn_enabled=true\ncdn_role=origin\ncdn_node_ttl=1000\ncdn_heartbeat_interval=1000", "must exceed"),
        ("cdn_registry_url=http://127.0.0.1:6379", "expected redis://"),
        ("cdn_enabled=true\ncdn_role=origin\ncdn_upstream=mid", "only an edge pulls from an upstream"),
    ],
)
def test_settings_that_do_not_fit_are_refused(tmp_path: Path, properties: str, message: str) -> None:
    (tmp_path / "flashphoner.properties").write_text(properties + "\n")
    with pytest.raises(ConfigError, match=message):
        load(tmp_path)


def test_a_documented_edge_config_loads(tmp_path: Path) -> None:
    (tmp_path / "flashphoner.properties").write_text(
        "cdn_enabled=true\ncdn_ip=127.0.0.9\ncdn_point_of_entry=127.0.0.8\ncdn_role=edge\n"
        "cdn_groups=EU, GPU\ncdn_nodes_timeout=60\n"
    )
    s = load(tmp_path)
    assert (s.cdn_role, s.cdn_groups, s.cdn_nodes_timeout) == ("edge", ["EU", "GPU"], 60)
