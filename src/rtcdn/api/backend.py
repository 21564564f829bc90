"""What the REST API needs from the node, declared here so that ``api/`` never imports the server:
the media core (streams and their media sessions), relay control and, on a CDN origin, its routes.
:class:`rtcdn.server.Server` satisfies :class:`ApiBackend` structurally; tests may pass a fake."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from ..stream import StreamManager


class RelayView(Protocol):
    """One relay as the API sees it."""

    @property
    def finished(self) -> bool: ...

    def record(self) -> dict[str, Any]:
        """The fields of WCS's ``/pull/find_all``."""


class RelayControl(Protocol):
    def push(self, uri: str, local_name: str, remote_name: str) -> RelayView: ...

    def pull(self, uri: str, remote_name: str, local_name: str) -> RelayView: ...

    def __iter__(self) -> Iterator[Any]: ...

    def terminate(self, relay: Any) -> None: ...


class PushView(Protocol):
    @property
    def finished(self) -> bool: ...

    def record(self) -> dict[str, Any]:
        """The fields of WCS's ``/push/find``."""


class PushControl(Protocol):
    def startup(
        self,
        stream_name: str,
        rtmp_url: str,
        full_url: bool = False,
        retry: bool = True,
        options: dict[str, Any] | None = None,
    ) -> PushView: ...

    def __iter__(self) -> Iterator[Any]: ...

    def terminate(self, push: Any) -> None: ...


class CdnView(Protocol):
    """A CDN as REST shows it: the static origin (:class:`rtcdn.cdn.CdnOrigin`) or a dynamic CDN
    node (:class:`rtcdn.cluster.Cluster`)."""

    async def streams(self) -> list[dict[str, Any]]:
        """``/cdn/streams``; RuntimeError when it cannot be read now (registry down)."""

    def show_routes(self) -> dict[str, str]: ...

    def nodes(self) -> list[dict[str, Any]]: ...


class ApiBackend(Protocol):
    @property
    def streams(self) -> StreamManager: ...

    @property
    def relays(self) -> RelayControl: ...

    @property
    def pushes(self) -> PushControl: ...

    @property
    def cdn(self) -> CdnView | None: ...
