"""Run by test_fastsend.test_under_address_sanitizer in a child Python with libasan preloaded:
the ASan + UBSan build of _fastsend (``FASTSEND_SO``) on a real SRTP session and loopback sockets,
fed hypothesis' templates and sequence numbers and the hostile calls; every packet that should
arrive is unprotected and compared with ``stamp``. Prints "fastsend under ASan: ok"."""

from __future__ import annotations

import importlib.util
import os
import socket
import sys

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pylibsrtp import Policy, Session
from pylibsrtp import _binding as srtp_binding

from rtcdn.rtp import stamp
from rtcdn.webrtc._aiortc import sockaddr

spec = importlib.util.spec_from_file_location("_fastsend", os.environ["FASTSEND_SO"])
assert spec is not None and spec.loader is not None
fastsend = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fastsend)

KEY = bytes(range(30))
policy = Policy(key=KEY, ssrc_type=Policy.SSRC_ANY_OUTBOUND)
policy.allow_repeat_tx = True
tx = Session(policy)
rx = Session(Policy(key=KEY, ssrc_type=Policy.SSRC_ANY_INBOUND))
ffi = srtp_binding.ffi
receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
receiver.bind(("127.0.0.1", 0))
receiver.settimeout(2)
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setblocking(False)
drops: list[int] = []
LIMIT = len(tx._buffer) - 144
send = fastsend.Sender(
    sock,
    sockaddr(socket.AF_INET, receiver.getsockname()),
    int(ffi.cast("uintptr_t", ffi.addressof(srtp_binding.lib, "srtp_protect"))),
    int(ffi.cast("uintptr_t", tx._srtp[0])),
    tx,
    0x0A0B0C0D,
    LIMIT,
    lambda: drops.append(1),
)
state = {"seq": 0}


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    payload=st.binary(min_size=0, max_size=LIMIT + 64),
    seq=st.integers(min_value=-(1 << 80), max_value=1 << 80),
)
def check(payload: bytes, seq: int) -> None:
    template = b"\x80\x60" + b"\x00" * 10 + payload  # a valid RTP header: libsrtp protects it
    state["seq"] = (state["seq"] + 1) & 0xFFFF  # unique per packet for the replay check
    send(template, state["seq"] + (seq & ~0xFFFF))
    if len(template) > LIMIT:
        return
    got = bytes(rx.unprotect(receiver.recv(4096)))
    assert got == stamp(template, state["seq"], bytes.fromhex("0a0b0c0d")), "wrong packet on the wire"


check()
for hostile in (b"", b"\x80", bytes(11), bytes(LIMIT + 1), bytes(100_000)):
    send(hostile, 1)
for args in [("x", 1), (b"x" * 20,), (1, 1), (None, None)]:
    try:
        send(*args)
    except TypeError:
        pass
    else:
        sys.exit(f"{args!r} was accepted")
try:
    send(memoryview(bytes(40))[::2], 1)
except BufferError:
    pass
else:
    sys.exit("a non-contiguous buffer was accepted")
uninitialised = fastsend.Sender.__new__(fastsend.Sender)
try:
    uninitialised(b"\x80" * 20, 1)
except TypeError:
    pass
else:
    sys.exit("an uninitialised sender sent")
try:
    fastsend.Sender(sock, sockaddr(socket.AF_INET, receiver.getsockname()), 1, 1, None, 1, sys.maxsize, None)
except ValueError:
    pass
else:
    sys.exit("limit=sys.maxsize was accepted")
# the largest limit the module takes: templates up to the end of its buffer (minus the trailer room)
TOP = fastsend.BUFFER_SIZE - fastsend.TRAILER_ROOM
big_tx = Session(policy)
big = fastsend.Sender(
    sock,
    sockaddr(socket.AF_INET, receiver.getsockname()),
    int(ffi.cast("uintptr_t", ffi.addressof(srtp_binding.lib, "srtp_protect"))),
    int(ffi.cast("uintptr_t", big_tx._srtp[0])),
    big_tx,
    1,
    TOP,
    None,
)
for size in (TOP - 1, TOP, TOP + 1, fastsend.BUFFER_SIZE, fastsend.BUFFER_SIZE + 1):
    big(b"\x80\x60" + bytes(size - 2), 9)
    if size <= TOP:
        assert len(receiver.recv(8192)) == size + 10, "auth tag"  # AES-CM + HMAC-SHA1-80
receiver.settimeout(0.2)
try:
    receiver.recv(8192)
except TimeoutError:
    pass
else:
    sys.exit("a template longer than the limit was sent")
sock.close()
send(b"\x80\x60" + bytes(30), 5)  # closed: skipped
big(b"\x80\x60" + bytes(30), 5)
print("fastsend under ASan: ok", flush=True)
