"""The import directions of the layout (README "Architecture"): the core knows no protocol, the
API never reaches for the server, aiortc stays inside the WebRTC layer."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "rtcdn"
THIRD_PARTY_WEBRTC = ("aiortc", "aioice", "pylibsrtp", "av")

# package → the rtcdn packages it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    "rtp": set(),
    "stream": {"rtp"},
    "webrtc": {"rtp", "stream"},
    "wcs": {"rtp", "stream", "webrtc", "tasks", "access"},
    "relay": {"rtp", "stream", "webrtc", "wcs", "tasks"},
    "api": {"rtp", "stream", "wcs", "relay", "rtmp"},
    "pages": {"stream"},
    "cdn": {"stream", "relay", "rtmp", "tasks", "config"},
    "whip": {"rtp", "stream", "webrtc", "tasks"},
    "metrics": {"stream", "rtp", "webrtc"},
    "transcode": {"rtp"},
    "rtmp": {"rtp", "stream", "transcode", "tasks", "access"},
    "access": {"stream", "tasks"},
    "cluster": {"stream", "relay", "cdn", "tasks"},
}


def _imports(path: Path) -> list[str]:
    """Absolute module names ``path`` imports (relative imports resolved)."""
    package = path.relative_to(SRC.parent).with_suffix("").parts
    if package[-1] == "__init__":
        package = package[:-1]
    else:
        package = package[:-1]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                out.append(".".join((*base, node.module)) if node.module else ".".join(base))
            elif node.module:
                out.append(node.module)
    return out


def _modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py"))


def _package_of(path: Path) -> str:
    rel = path.relative_to(SRC).parts
    return rel[0] if len(rel) > 1 else rel[0].removesuffix(".py")


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_imports_follow_the_layout(path: Path) -> None:
    package = _package_of(path)
    for name in _imports(path):
        top = name.split(".")[0]
        if top in THIRD_PARTY_WEBRTC:
            assert package == "webrtc" or (package == "transcode" and top == "av"), (
                f"{path.relative_to(SRC)} imports {name}: aiortc and friends only under webrtc/, "
                "PyAV also in transcode/"
            )
        if top != "rtcdn":
            continue
        parts = name.split(".")
        target = parts[1] if len(parts) > 1 else ""
        assert target != "server" or package == "__main__", (
            f"{path.relative_to(SRC)} imports the server: only __main__ may (components get what they need)"
        )
        if package in ALLOWED and target and target != package:
            assert target in ALLOWED[package], (
                f"{path.relative_to(SRC)} ({package}/) imports {name}; {package}/ may import only "
                f"{sorted(ALLOWED[package]) or 'nothing of rtcdn'}"
            )


def test_the_layout_test_sees_the_packages() -> None:
    packages = {_package_of(p) for p in _modules()}
    assert {"rtp", "stream", "webrtc", "wcs", "relay", "api", "pages", "cdn"} <= packages
    assert "rtcdn.rtp" in _imports(SRC / "stream" / "fanout.py")  # relative imports are resolved
