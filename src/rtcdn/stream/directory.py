"""StreamDirectory: where the manager looks for a stream it does not have.

One node needs nothing (:class:`LocalDirectory`). A CDN edge asks its origin, a cluster asks a
shared registry; both are further implementations of the same protocol (later issues), and the
front ends never notice: they call :meth:`StreamManager.acquire <rtcdn.stream.StreamManager.acquire>`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .stream import Stream


class StreamDirectory(Protocol):
    def announce(self, stream: Stream) -> None:
        """A local stream went live: make it findable by other nodes."""

    def withdraw(self, stream: Stream) -> None:
        """A local stream ended."""

    async def fetch(self, name: str) -> bool:
        """Make a stream this node does not have exist locally (e.g. start a pull relay of it).
        True when a local stream of that name now exists (it may still be PENDING)."""


class LocalDirectory:
    """A single node: streams exist only where they are published."""

    def announce(self, stream: Stream) -> None:
        pass

    def withdraw(self, stream: Stream) -> None:
        pass

    async def fetch(self, name: str) -> bool:
        return False
