"""wcs.messages: frames always carry a data array; parse errors are precise."""

from __future__ import annotations

import json

import pytest

from rtcdn.wcs.messages import ProtocolError, frame, parse_frame, text_field


def test_frame_always_has_data_array() -> None:
    assert json.loads(frame("ping")) == {"message": "ping", "data": []}
    assert json.loads(frame("setRemoteSDP", "id", "sdp")) == {
        "message": "setRemoteSDP",
        "data": ["id", "sdp"],
    }


def test_parse_frame() -> None:
    assert parse_frame('{"message":"pong","data":[null]}') == ("pong", None)
    assert parse_frame('{"message":"x","data":[{"a":1}]}') == ("x", {"a": 1})
    assert parse_frame('{"message":"x"}') == ("x", None)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("{", "malformed JSON"),
        ("[]", "not a JSON object"),
        ('{"data":[]}', "no 'message'"),
        ('{"message":1}', "no 'message'"),
    ],
)
def test_parse_errors(text: str, error: str) -> None:
    with pytest.raises(ProtocolError, match=error):
        parse_frame(text)


def test_text_field() -> None:
    assert text_field({"name": "a"}, "name") == "a"
    assert text_field({"name": ""}, "name") is None
    assert text_field({"name": 3}, "name") is None
    assert text_field(None, "name") is None
