"""rest_users_file and ``python -m rtcdn.api.users``: the documented line format, the tool's round trip
(add, replace, remove, print), parse errors with line numbers."""

from __future__ import annotations

import base64
import hashlib
import io
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from rtcdn.api.users import UsersFile, hash_password, main, parse_hash, parse_users

LINE = re.compile(
    r"^(?P<name>[^:\s]+):scrypt\$n=16384,r=8,p=1\$(?P<salt>[A-Za-z0-9+/=]+)\$(?P<hash>[A-Za-z0-9+/=]+)$"
)


def run(monkeypatch: pytest.MonkeyPatch, stdin: str, *argv: str) -> int:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    return main(list(argv))


def test_the_tool_round_trip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "rest_users"
    assert run(monkeypatch, "first pw\n", "add", "ops", "--file", str(path)) == 0
    assert "added 'ops'" in capsys.readouterr().err
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    (line,) = path.read_text().splitlines()
    match = LINE.match(line)
    assert match and match["name"] == "ops"
    # the documented format: hash = scrypt(password, salt, n, r, p, dklen=len(hash))
    salt, digest = base64.b64decode(match["salt"]), base64.b64decode(match["hash"])
    assert hashlib.scrypt(b"first pw", salt=salt, n=16384, r=8, p=1, dklen=len(digest)) == digest
    assert run(monkeypatch, "second\n", "add", "dev", "--file", str(path)) == 0
    assert run(monkeypatch, "new pw\n", "add", "ops", "--file", str(path)) == 0
    assert "replaced 'ops'" in capsys.readouterr().err
    users = UsersFile(path)
    assert len(users) == 2
    ops, dev = users.get("ops"), users.get("dev")
    assert ops is not None and ops.verify("new pw") and not ops.verify("first pw")
    assert dev is not None and dev.verify("second")
    assert run(monkeypatch, "", "remove", "ops", "--file", str(path)) == 0
    assert run(monkeypatch, "", "remove", "ops", "--file", str(path)) == 1
    assert [line.split(":")[0] for line in path.read_text().splitlines()] == ["dev"]


def test_print_mode_and_refusals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(monkeypatch, "pw\n", "add", "ops") == 0
    printed = capsys.readouterr().out.strip()
    assert LINE.match(printed) and parse_users(printed)["ops"].verify("pw")
    assert run(monkeypatch, "\n", "add", "ops") == 1  # empty password
    assert run(monkeypatch, "pw\n", "add", "a:b") == 1  # a name with ':'
    assert "error:" in capsys.readouterr().err
    bad = tmp_path / "bad"
    bad.write_text("oops\n")
    assert run(monkeypatch, "pw\n", "add", "ops", "--file", str(bad)) == 1  # never writes a broken file
    assert bad.read_text() == "oops\n"


def test_as_a_module(tmp_path: Path) -> None:
    path = tmp_path / "users"
    done = subprocess.run(
        [sys.executable, "-m", "rtcdn.api.users", "add", "ci", "--file", str(path)],
        input="pw from stdin\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert parse_users(path.read_text())["ci"].verify("pw from stdin")


def test_parse_errors_name_the_line() -> None:
    good = f"ops:{hash_password('x', n=1 << 10)}"
    text = "\n".join(
        [
            "# comment",
            "",
            good,
            "nocolon",
            good,
            "dev:md5$x",
            "big:scrypt$n=1048576,r=32,p=1$AAAAAAAAAAA=$" + "A" * 44,
        ]
    )
    with pytest.raises(ValueError) as info:
        parse_users(text, "users")
    problems = str(info.value).splitlines()
    assert [p.split(":")[1] for p in problems] == ["4", "5", "6", "7"], problems
    assert "listed twice" in problems[1] and "out of range" in problems[3]
    for stored in (
        "scrypt$n=1024,r=8$AAAAAAAAAAA=$" + "A" * 44,
        "scrypt$n=1000,r=8,p=1$AAAAAAAAAAA=$" + "A" * 44,
        "scrypt$n=1024,r=8,p=1$!!$" + "A" * 44,
        "scrypt$n=1024,r=8,p=1,x=1$AAAAAAAAAAA=$" + "A" * 44,
    ):
        with pytest.raises(ValueError):
            parse_hash(stored)
    assert str(parse_hash(good.split(":", 1)[1])) == good.split(":", 1)[1]
