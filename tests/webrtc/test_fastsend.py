"""webrtc._fastsend (the C send) and its Python fallback: the same packets on the wire, the same
drops counted, hostile arguments refused or skipped without a crash; the C module once more built
with AddressSanitizer + UBSan and driven by hypothesis in a child process (fastsend_asan.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import sysconfig
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pylibsrtp import Policy, Session

from rtcdn.rtp import stamp
from rtcdn.server import Server
from rtcdn.webrtc import _aiortc
from rtcdn.webrtc._aiortc import WebRtcCounters
from testkit import drain_datagrams, make_settings
from wcs_client import WcsClient, count_frames

KEY = bytes(range(30))
SSRC = bytes.fromhex("01020304")
SOURCE = Path(__file__).resolve().parents[2] / "src" / "rtcdn" / "webrtc" / "_fastsend.c"


def tx_session() -> Session:
    policy = Policy(key=KEY, ssrc_type=Policy.SSRC_ANY_OUTBOUND)
    policy.allow_repeat_tx = True  # as aiortc sets it: NACKed packets are sent again
    return Session(policy)


def unprotect(data: bytes) -> bytes:  # a receiver per packet: its replay check refuses the resend
    return bytes(Session(Policy(key=KEY, ssrc_type=Policy.SSRC_ANY_INBOUND)).unprotect(data))


def stand_in_dtls(sock: socket.socket, remote: Any, tx: Session) -> Any:
    """aiortc's object graph around a real socket and SRTP session, as far as the send reads it."""
    pair = SimpleNamespace(
        protocol=SimpleNamespace(transport=SimpleNamespace(_sock=sock)), remote_addr=remote
    )
    return SimpleNamespace(
        transport=SimpleNamespace(_connection=SimpleNamespace(_nominated={1: pair})), _tx_srtp=tx
    )


def test_the_install_built_the_native_module() -> None:
    assert _aiortc._fastsend is not None, (
        "rtcdn.webrtc._fastsend was not built: `pip install -e .` needs a C compiler and Python's headers"
    )


@pytest.mark.parametrize("native", [True, False], ids=["native", "python"])
@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_INET6])
def test_sends_what_stamp_describes(native: bool, family: int) -> None:
    host = "127.0.0.1" if family == socket.AF_INET else "::1"
    with (
        socket.socket(family, socket.SOCK_DGRAM) as sock,
        socket.socket(family, socket.SOCK_DGRAM) as receiver,
    ):
        try:
            receiver.bind((host, 0))
        except OSError:
            pytest.skip(f"{host} is not usable here")
        sock.setblocking(False)
        receiver.settimeout(2)
        tx = tx_session()
        send = _aiortc.fast_rtp_transmit(
            stand_in_dtls(sock, receiver.getsockname(), tx), 0x01020304, native=native
        )
        assert (type(send).__name__ == "Sender") == native
        tx.protect_rtcp(bytes.fromhex("80c80006") + bytes(24))  # the session's RTCP is protected too
        templates = [bytes.fromhex("80e0") + bytes(10) + bytes([k]) * (100 + 500 * k) for k in range(3)]
        sent = [(t, 1000 + k) for k, t in enumerate(templates)] + [
            (templates[1], 1001),
            (templates[0], 0xFFFF),
        ]
        for template, seq in sent:
            send(template, seq)
        got = [unprotect(receiver.recv(2048)) for _ in sent]
        assert got == [stamp(t, seq, SSRC) for t, seq in sent]
        limit = len(tx._buffer) - 144  # what pylibsrtp's own protect() leaves room for
        edge = bytes.fromhex("80e0") + bytes(limit - 2)
        send(edge, 0xFFF0)  # exactly the limit: sent (before the wrap: a fresh receiver has ROC 0)
        assert unprotect(receiver.recv(4096)) == stamp(edge, 0xFFF0, SSRC)
        for hostile in (
            edge + b"x",
            bytes(1490),
            bytes(11),
            b"",
        ):  # longer than the limit; shorter than a header
            send(hostile, 7)  # skipped, nothing raised
        receiver.settimeout(0.2)
        with pytest.raises(TimeoutError):
            receiver.recv(2048)


@pytest.mark.parametrize("native", [True, False], ids=["native", "python"])
def test_full_socket_drops_are_counted(native: bool) -> None:
    """A datagram socket nobody reads (AF_UNIX: sendto raises EAGAIN once the receiver is full)."""
    address = f"\0rtcdn-test-{uuid.uuid4().hex}"  # abstract name: no file, no network
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.bind(address)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            sock.setblocking(False)
            counters = WebRtcCounters()
            send = _aiortc.fast_rtp_transmit(stand_in_dtls(sock, address, tx_session()), 7, counters, native)
            assert (type(send).__name__ == "Sender") == native
            for seq in range(200):
                send(bytes.fromhex("80e0") + bytes(1010), seq)
            received = drain_datagrams(receiver)
            assert counters.send_dropped > 0 and received + counters.send_dropped == 200
            if native:
                assert send.dropped == counters.send_dropped and send.sent == received  # type: ignore[attr-defined]


def test_native_sender_refuses_or_skips_hostile_arguments() -> None:
    fastsend = _aiortc._fastsend
    assert fastsend is not None
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver,
    ):
        receiver.bind(("127.0.0.1", 0))
        tx = tx_session()
        send = _aiortc.fast_rtp_transmit(stand_in_dtls(sock, receiver.getsockname(), tx), 1)
        for args in [("x", 1), (b"\x80" * 20,), (b"\x80" * 20, 1, 2), (b"\x80" * 20, "1"), (1, 1), (None, 1)]:
            with pytest.raises(TypeError):
                send(*args)
        with pytest.raises(TypeError):
            send(template=b"\x80" * 20, seq=1)
        send(bytearray(b"\x80" * 20), -1)  # any buffer; seq is masked to 16 bits
        send(memoryview(b"\x80" * 20), (1 << 70) + 0xFFFE)  # (not past the wrap: a fresh receiver's ROC is 0)
        receiver.settimeout(2)
        assert unprotect(receiver.recv(2048))[2:4] == b"\xff\xff"
        assert unprotect(receiver.recv(2048))[2:4] == b"\xff\xfe"
        with pytest.raises(BufferError):  # a non-contiguous view is refused, not read past
            send(memoryview(b"\x80" * 40)[::2], 1)
        before = send.sent, send.dropped  # type: ignore[attr-defined]
        sock.close()
        send(b"\x80" * 20, 1)  # a closed socket (fileno -1): nothing sent, nothing raised
        assert (send.sent, send.dropped) == before  # type: ignore[attr-defined]
        uninitialised = fastsend.Sender.__new__(fastsend.Sender)
        with pytest.raises(TypeError):
            uninitialised(b"\x80" * 20, 1)
        good: dict[str, Any] = {
            "sock": sock,
            "address": _aiortc.sockaddr(socket.AF_INET, ("127.0.0.1", 9)),
            "protect": 1,
            "ctx": 1,
            "keepalive": None,
            "ssrc": 1,
            "limit": 1200,
            "on_drop": None,
        }
        fastsend.Sender(**good)  # constructs (never called: protect/ctx are not real addresses)
        for bad in [
            {"limit": 11},
            {"limit": 4000},
            {"address": b"\x02"},
            {"address": bytes(200)},
            {"protect": 0},
            {"ctx": 0},
        ]:
            with pytest.raises(ValueError):
                fastsend.Sender(**{**good, **bad})
        with pytest.raises(TypeError):
            fastsend.Sender(**{**good, "on_drop": 3})
        with pytest.raises(TypeError):
            fastsend.Sender(**{**good, "address": "127.0.0.1"})


def test_the_sender_keeps_the_srtp_session_alive() -> None:
    """The only reference to the pylibsrtp session left is the sender's: it still protects."""
    import gc

    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver,
    ):
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(2)
        send = _aiortc.fast_rtp_transmit(stand_in_dtls(sock, receiver.getsockname(), tx_session()), 9)
        gc.collect()
        template = bytes.fromhex("80e0") + bytes(10) + b"payload"
        send(template, 3)
        assert unprotect(receiver.recv(2048)) == stamp(template, 3, bytes.fromhex("00000009"))


def test_sockaddr_packs_what_the_kernel_reads() -> None:
    import ctypes

    class SockaddrIn6(ctypes.Structure):  # <netinet/in.h>, laid out by ctypes, not by hand
        _fields_ = [
            ("family", ctypes.c_ushort),
            ("port", ctypes.c_uint16),
            ("flowinfo", ctypes.c_uint32),
            ("addr", ctypes.c_ubyte * 16),
            ("scope_id", ctypes.c_uint32),
        ]

    expected = SockaddrIn6(
        socket.AF_INET6,
        socket.htons(5004),
        socket.htonl(0x12345),
        (ctypes.c_ubyte * 16)(*socket.inet_pton(socket.AF_INET6, "fe80::1")),
        7,
    )
    assert _aiortc.sockaddr(socket.AF_INET6, ("fe80::1", 5004, 0x12345, 7)) == bytes(expected)
    assert _aiortc.sockaddr(socket.AF_INET, ("127.1", 1)) is None  # inet_pton: no shorthand
    assert _aiortc.sockaddr(socket.AF_UNIX, "x" * 200) is None  # longer than sun_path
    assert _aiortc.sockaddr(socket.AF_INET, ("bad", 1)) is None
    assert _aiortc.sockaddr(socket.AF_INET, "x") is None
    assert _aiortc.sockaddr(999, ("127.0.0.1", 1)) is None
    assert len(_aiortc.sockaddr(socket.AF_INET, ("127.0.0.1", 5004)) or b"") == 16
    assert len(_aiortc.sockaddr(socket.AF_INET6, ("::1", 5004, 0, 0)) or b"") == 28
    assert _aiortc.sockaddr(socket.AF_UNIX, "\0abc") == socket.AF_UNIX.to_bytes(2, sys.byteorder) + b"\0abc"


@pytest.mark.parametrize("native", [True, False], ids=["native", "python"])
async def test_a_player_plays_on_either_path(tmp_path: Path, native: bool) -> None:
    """A real publisher and player through the server, with ``webrtc_native_send`` on and off."""
    server = Server(make_settings(webrtc_native_send=native), tmp_path)
    await server.start()
    try:
        url = f"ws://127.0.0.1:{server.settings.ws_port}/"
        async with WcsClient(url) as pub, WcsClient(url) as viewer:
            await pub.publish("s")
            _, pc, status = await viewer.play("s")
            assert status is not None and status["status"] == "PLAYING"
            video = next(r.track for r in pc.getReceivers() if r.track.kind == "video")
            assert await count_frames(video, 1.0) > 5
            stream = server.streams.find("s")
            assert stream is not None
            kinds = {
                type(sink.transmit).__name__
                for fan in stream.tracks.values()
                for _, sinks in fan.groups.values()
                for sink in sinks
            }
            assert kinds == ({"Sender"} if native else {"function"})
    finally:
        await server.close()


def test_under_address_sanitizer(tmp_path: Path) -> None:
    """The C module built with -fsanitize=address,undefined (and -Werror), loaded into a child
    Python with libasan preloaded, fed hypothesis' templates, sequence numbers and hostile calls."""
    libasan = subprocess.run(
        ["gcc", "-print-file-name=libasan.so"], capture_output=True, text=True
    ).stdout.strip()
    if not os.path.isabs(libasan):
        pytest.fail("gcc has no libasan (apt-get install gcc)")
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    built = tmp_path / f"_fastsend{suffix}"
    flags = [
        "-shared",
        "-fPIC",
        "-g",
        "-O1",
        "-fno-omit-frame-pointer",
        "-fsanitize=address,undefined",
        "-fno-sanitize-recover=undefined",
        "-Wall",
        "-Wextra",
        "-Wno-unused-parameter",
        "-Werror",
    ]
    subprocess.run(
        ["gcc", *flags, f"-I{sysconfig.get_paths()['include']}", str(SOURCE), "-o", str(built)],
        check=True,
        timeout=120,
    )
    env = {
        **os.environ,
        "LD_PRELOAD": libasan,
        "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=0:exitcode=99",
        "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
        "FASTSEND_SO": str(built),
    }
    script = Path(__file__).with_name("fastsend_asan.py")
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    assert "fastsend under ASan: ok" in done.stdout
