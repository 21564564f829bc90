"""webrtc.peer: which remote candidates are worth checking (loopback stays on loopback)."""

from __future__ import annotations

from rtcdn.webrtc.peer import _usable_candidates, reachable


def test_loopback_talks_only_to_loopback_of_its_family() -> None:
    assert reachable("127.0.0.1", ["127.0.0.1"])
    assert reachable("127.0.0.5", ["127.0.0.91"])
    assert not reachable("192.0.2.2", ["127.0.0.1"])
    assert not reachable("::1", ["127.0.0.1"])
    assert not reachable("fd00::2", ["127.0.0.1"])
    assert not reachable("abcd.local", ["127.0.0.1"])
    assert reachable("192.0.2.2", ["203.0.113.3", "127.0.0.1"])
    assert not reachable("127.0.0.1", ["203.0.113.3"])


def test_unreachable_candidate_lines_are_dropped_from_an_sdp() -> None:
    sdp = (
        "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
        "a=candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host\r\n"
        "a=candidate:2 1 udp 2122194687 192.0.2.2 50001 typ host\r\n"
        "a=candidate:3 1 udp 2122194687 x.local 50002 typ host\r\n"
        "a=mid:0\r\n"
    )
    out = _usable_candidates(sdp, ["127.0.0.1"])
    assert "127.0.0.1 50000" in out and "192.0.2.2" not in out and "x.local" not in out
    assert out.endswith("a=mid:0\r\n")
