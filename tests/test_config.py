"""config: properties parsing, WCS key names, every error at once naming file and line, frozen settings."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest

from rtcdn.config import FILE_KEYS, ConfigError, Settings, declared_keys, iter_properties, load


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "flashphoner.properties").write_text(text)
    return tmp_path


def test_defaults_are_wcs_ports() -> None:
    s = load(None)
    assert (s.ws_port, s.wss_port, s.http_ports, s.https_ports) == (8080, 8443, [8081, 9091], [8444, 8888])
    assert (s.media_port_from, s.media_port_to) == (31000, 31999)
    assert s.keep_alive_interval_ms == 5000 and s.keep_alive_probes == 10


def test_properties_syntax() -> None:
    text = "# comment\n! also\nws.port = 1\nwss.port:2\nip_local 203.0.113.1\ncodecs=opus,\\\n   h264\n\n"
    assert list(iter_properties(text)) == [
        (3, "ws.port", "1"),
        (4, "wss.port", "2"),
        (5, "ip_local", "203.0.113.1"),
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
        ("media_port_from=5000\nmedia_port_to=4000\n", "media_port_from: 5000 is above media_port_to (4000)"),
        ("codecs=g729,speex16\n", "no codec rtcdn can forward"),
    ],
)
def test_bad_values_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load(write(tmp_path, text))


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = (
        "ws.port=abc\nwss.port=70000\nws.port=9080\nwcs_agent_ssl=maybe\n"
        "media_port_from=5000\nmedia_port_to=4000\nssl.cert_file=cert.pem\n"
    )
    with pytest.raises(ConfigError) as caught:
        load(write(tmp_path, text))
    path = tmp_path / "flashphoner.properties"
    assert caught.value.problems == [
        f"{path}:1: ws.port: invalid literal for int() with base 10: 'abc'",
        f"{path}:2: wss.port: port out of range: 70000",
        f"{path}:4: wcs_agent_ssl: expected true or false, got 'maybe'",
        "media_port_from: 5000 is above media_port_to (4000)",
        "ssl.cert_file: set without ssl.key_file; set both or neither",
    ]
    assert str(caught.value) == "\n".join(caught.value.problems)


def test_a_malformed_value_is_not_checked_against_others(tmp_path: Path) -> None:
    # media_port_from keeps its default 31000: "31000 is above 4000" would only confuse
    with pytest.raises(ConfigError) as caught:
        load(write(tmp_path, "media_port_from=lots\nmedia_port_to=4000\n"))
    assert [p.split(": ", 1)[1] for p in caught.value.problems] == [
        "media_port_from: invalid literal for int() with base 10: 'lots'"
    ]


def test_an_option_replacing_a_malformed_value_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(write(tmp_path, "media_port_from=lots\n"), {"media_port_from": 32000})
    assert caught.value.problems[0].endswith(
        ":1: media_port_from: invalid literal for int() with base 10: 'lots'"
    )
    assert caught.value.problems[1:] == ["media_port_from: 32000 is above media_port_to (31999)"]


def test_one_message_is_one_problem() -> None:
    assert ConfigError("x.xml:3: bad").problems == ["x.xml:3: bad"]


@pytest.mark.parametrize(
    ("text", "ports"),
    [
        ("http.rest.port=0\n", [9091]),
        ("http.port=0\n", [8081]),
        ("http.rest.port=0\nhttp.port=0\n", []),
        ("http.rest.port=0\nhttp.port=7001\n", [7001]),
        ("http.port=0\nhttp.rest.port=7000\n", [7000]),
        ("http.port=7001\nhttp.rest.port=7000\n", [7000, 7001]),
    ],
)
def test_both_http_keys_feed_http_ports(tmp_path: Path, text: str, ports: list[int]) -> None:
    assert load(write(tmp_path, text)).http_ports == ports


def test_settings_are_frozen(tmp_path: Path) -> None:
    s = load(None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.ws_port = 1  # type: ignore[misc]
    changed = dataclasses.replace(s, ws_port=1)
    assert (changed.ws_port, s.ws_port) == (1, 8080)
    assert load(None).http_ports is not s.http_ports  # list defaults are not shared


def test_every_field_is_declared() -> None:
    declared = {attr for attr, _ in declared_keys()}
    assert declared == {f.name for f in dataclasses.fields(Settings)}
    assert len(FILE_KEYS) == len([key for _, key in declared_keys() if key.file])  # no key declared twice
    assert {"config_dir", "worker_index", "bind"}.isdisjoint(FILE_KEYS)


def test_unknown_key_is_a_warning_with_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        load(write(tmp_path, "ws.port=8080\nrtmp_transponder_full_url=true\nworker_index=3\n"))
    assert "flashphoner.properties:2: unknown setting 'rtmp_transponder_full_url'" in caplog.text
    assert "flashphoner.properties:3: unknown setting 'worker_index'" in caplog.text  # command line only


def test_missing_config_dir(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load(tmp_path / "nope")
