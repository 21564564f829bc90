"""cdn.config: loadbalancing.xml parsing, every WCS spelling, errors naming file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from rtcdn.cdn.config import load_loadbalancing
from rtcdn.config import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "loadbalancing.xml"
    path.write_text(text)
    return path


def test_documented_example(tmp_path: Path) -> None:
    config = load_loadbalancing(
        write(
            tmp_path,
            """<?xml version="1.0"?>
<loadbalancer mode="roundrobin" stream_distribution="webrtc">
  <node id="1"><ip>edge1.mydomain.com</ip><wss>443</wss></node>
  <node id="2"><ip>edge2.mydomain.com</ip><wss>443</wss><ws>9080</ws><http>9081</http></node>
</loadbalancer>""",
        )
    )
    assert config.mode == "ROUNDROBIN" and config.stream_distribution == "webrtc"
    assert [(n.id, n.ip, n.ws, n.wss, n.http) for n in config.nodes] == [
        ("1", "edge1.mydomain.com", 8080, 443, 8081),
        ("2", "edge2.mydomain.com", 9080, 443, 9081),
    ]
    assert config.nodes[0].agent_uri(secure=True) == "wss://edge1.mydomain.com:443"


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("ROUNDROBIN", "ROUNDROBIN"),
        ("roundrobin", "ROUNDROBIN"),
        ("Random", "RANDOM"),
        ("FEWESTCALLS", "FEWESTCALLS"),
        ("least_loaded_node", "LEAST_LOADED_NODE"),
        ("LESS_LOADED_NODE", "LEAST_LOADED_NODE"),
    ],
)
def test_every_mode_spelling(tmp_path: Path, mode: str, expected: str) -> None:
    path = write(
        tmp_path, f'<loadbalancer mode="{mode}" randomize="true"><node><ip>e</ip></node></loadbalancer>'
    )
    config = load_loadbalancing(path)
    assert config.mode == expected and config.randomize and config.nodes[0].id == "1"


def test_rtmp_is_parsed(tmp_path: Path) -> None:
    path = write(tmp_path, '<loadbalancer stream_distribution="RTMP"><node><ip>e</ip></node></loadbalancer>')
    assert load_loadbalancing(path).stream_distribution == "rtmp"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<loadbalancer>\n<node><ip>e</ip></node>", ":2: invalid XML: no element found"),
        (
            '<loadbalancer mode="FASTEST"><node><ip>e</ip></node></loadbalancer>',
            ":1: mode='FASTEST' is not one of",
        ),
        (
            '<loadbalancer stream_distribution="hls"><node><ip>e</ip></node></loadbalancer>',
            ":1: stream_distribution='hls' must be webrtc or rtmp",
        ),
        ('<loadbalancer colour="red"><node><ip>e</ip></node></loadbalancer>', "unknown attribute 'colour'"),
        (
            "<loadbalancer>\n  <node id='1'>\n    <wss>443</wss>\n  </node>\n</loadbalancer>",
            ":2: <node> has no address",
        ),
        (
            "<loadbalancer><node><ip>e</ip><wss>https</wss></node></loadbalancer>",
            "<wss> must be a port number",
        ),
        (
            "<loadbalancer><node><ip>e</ip><weight>3</weight></node></loadbalancer>",
            "unknown element <weight>",
        ),
        ("<loadbalancer></loadbalancer>", "lists no <node>"),
        ("<balancer/>", "root element must be <loadbalancer>"),
        (
            '<loadbalancer randomize="sometimes"><node><ip>e</ip></node></loadbalancer>',
            "expected true or false",
        ),
        (
            '<!DOCTYPE lb [<!ENTITY a "aaaa">]>\n<loadbalancer><node><ip>&a;</ip></node></loadbalancer>',
            ":1: DOCTYPE and entity declarations are not allowed",
        ),
    ],
)
def test_bad_files_name_file_line_and_problem(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_loadbalancing(write(tmp_path, text))
    assert str(exc.value).startswith(str(tmp_path / "loadbalancing.xml"))
    assert message in str(exc.value)
