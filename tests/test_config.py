"""config: properties parsing, WCS key names, errors naming file and line."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from rtcdn.config import ConfigError, iter_properties, load


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "flashphoner.properties").write_text(text)
    return tmp_path


def test_defaults_are_wcs_ports() -> None:
    s = load(None)
    assert (s.ws_port, s.wss_port, s.http_ports, s.https_ports) == (8080, 8443, [8081, 9091], [8444, 8888])
    assert (s.media_port_from, s.media_port_to) == (31000, 31999)
    assert s.keep_alive_interval_ms == 5000 and s.keep_alive_probes == 10


def test_properties_syntax() -> None:
    text = "# comment\n! also\nws.port = 1\nwss.port:2\nip_local 10.0.0.1\ncodecs=opus,\\\n   h264\n\n"
    assert list(iter_properties(text)) == [
        (3, "ws.port", "1"),
        (4, "wss.port", "2"),
        (5, "ip_local", "10.0.0.1"),
        (6, "codecs", "opus,h264"),
    ]


def test_wcs_keys_apply(tmp_path: Path) -> None:
    s = load(
        write(
            tmp_path,
            "ws.port=9080\nhttp.port=0\ncodecs=opus,h264,vp8\ncodecs_exclude_streaming=vp8\n"
            "keep_alive.algorithm=NONE\nwcs_agent_ssl=true\nmedia_port_from=40000\nmedia_port_to=40010\n",
        )
    )
    assert s.ws_port == 9080 and s.http_ports == [8081]
    assert s.streaming_codecs == ["opus", "h264"]
    assert not s.keep_alive_enabled and s.wcs_agent_ssl
    assert (s.media_port_from, s.media_port_to) == (40000, 40010)


def test_overrides_win(tmp_path: Path) -> None:
    s = load(write(tmp_path, "ws.port=9080\n"), {"ws_port": 7000, "bind": None})
    assert s.ws_port == 7000 and s.bind == "0.0.0.0"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("\n\nws.port=abc\n", "flashphoner.properties:3: ws.port: invalid literal"),
        ("wss.port=70000\n", ":1: wss.port: port out of range"),
        ("wcs_agent_ssl=maybe\n", ":1: wcs_agent_ssl: expected true or false"),
        ("keep_alive.probes=0\n", ":1: keep_alive.probes: expected a positive integer"),
        ("media_port_from=5000\nmedia_port_to=4000\n", "media_port_from (5000) is above media_port_to"),
        ("codecs=g729,speex16\n", "no codec rtcdn can forward"),
    ],
)
def test_bad_values_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load(write(tmp_path, text))


def test_unknown_key_is_a_warning_with_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        load(write(tmp_path, "ws.port=8080\nrtmp_transponder_full_url=true\n"))
    assert "flashphoner.properties:2: unknown setting 'rtmp_transponder_full_url'" in caplog.text


def test_missing_config_dir(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load(tmp_path / "nope")
