"""StreamDirectory: how the streams of one node meet those of other nodes.

One node needs nothing (:class:`LocalDirectory`). A CDN node claims the names published on it
cluster-wide and fetches streams it does not have from the node that does (:mod:`rtcdn.cluster`);
the front ends never notice: they call :meth:`StreamManager.open
<rtcdn.stream.StreamManager.open>` to publish and :meth:`StreamManager.acquire
<rtcdn.stream.StreamManager.acquire>` to play.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .stream import Stream


class StreamDirectory(Protocol):
    async def claim(self, stream: Stream) -> None:
        """A publisher took ``stream``'s name here: make the name this node's beyond it, or raise
        :class:`~rtcdn.stream.NameInUse` when another node holds it. Must not wait long."""

    def announce(self, stream: Stream) -> None:
        """A local stream went live: make it findable by other nodes."""

    def withdraw(self, stream: Stream) -> None:
        """A local stream ended (its claim, if any, is released)."""

    async def fetch(self, name: str) -> bool:
        """Make a stream this node does not have exist locally (e.g. start a pull relay of it).
        True when a local stream of that name now exists (it may still be PENDING); may raise a
        :class:`~rtcdn.stream.MediaError` saying why it cannot."""


class LocalDirectory:
    """A single node: streams exist only where they are published."""

    async def claim(self, stream: Stream) -> None:
        pass

    def announce(self, stream: Stream) -> None:
        pass

    def withdraw(self, stream: Stream) -> None:
        pass

    async def fetch(self, name: str) -> bool:
        return False
