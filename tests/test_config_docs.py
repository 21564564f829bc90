"""The README's configuration table says what the code declares: the same keys, the same defaults."""

from __future__ import annotations

import re
from pathlib import Path

from rtcdn.config import FILE_KEYS, default_text, markdown_table

README = Path(__file__).resolve().parents[1] / "README.md"
REGENERATE = "regenerate it with `python -m rtcdn.config --markdown`"


def readme_table() -> list[str]:
    """The lines of the first table under the README's "## Configuration" heading."""
    lines = README.read_text(encoding="utf-8").splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith("## Configuration"))
    table: list[str] = []
    for line in lines[start + 1 :]:
        if line.startswith("#"):
            break
        if line.startswith("|"):
            table.append(line)
        elif table:
            break
    assert table, "README.md: no table under '## Configuration'"
    return table


def cells(row: str) -> list[str]:
    return [c.strip().replace(r"\|", "|") for c in re.split(r"(?<!\\)\|", row.strip().strip("|"))]


def readme_defaults() -> dict[str, str]:
    header, _rule, *rows = readme_table()
    assert cells(header)[:2] == ["key", "default"], header
    return {cells(row)[0].strip("`"): cells(row)[1] for row in rows}


def test_readme_lists_every_key_with_its_default() -> None:
    readme = readme_defaults()
    code = {name: default_text(attr, key) for name, (attr, key) in FILE_KEYS.items()}
    assert sorted(code.keys() - readme.keys()) == [], f"keys missing from README.md; {REGENERATE}"
    assert sorted(readme.keys() - code.keys()) == [], (
        f"README.md lists keys rtcdn does not read; {REGENERATE}"
    )
    wrong = {name: (readme[name], code[name]) for name in code if readme[name] != code[name]}
    assert wrong == {}, f"README.md default != code default (README, code); {REGENERATE}"


def test_readme_table_is_the_generated_one() -> None:
    assert "\n".join(readme_table()) + "\n" == markdown_table(), f"README.md is stale; {REGENERATE}"


def test_the_table_parses_back() -> None:
    rows = markdown_table().splitlines()[2:]
    assert [cells(row)[0].strip("`") for row in rows] == list(FILE_KEYS)
    assert all(len(cells(row)) == 4 for row in rows)
