# Types of the C module built from _fastsend.c (see its header); absent where it did not build.
from collections.abc import Callable
from socket import socket

BUFFER_SIZE: int
TRAILER_ROOM: int

class Sender:
    @property
    def sent(self) -> int: ...
    @property
    def dropped(self) -> int: ...
    def __init__(
        self,
        sock: socket,
        address: bytes,
        protect: int,
        ctx: int,
        keepalive: object,
        ssrc: int,
        limit: int,
        on_drop: Callable[[], None] | None,
    ) -> None: ...
    def __call__(self, template: bytes | bytearray | memoryview, seq: int, /) -> None: ...
