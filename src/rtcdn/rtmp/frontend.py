"""The RTMP front end: ``rtmp://host:1935/APP/NAME`` publish (OBS, ffmpeg) and play (ffmpeg, VLC).

It is the connection handler of :class:`~rtcdn.rtmp.server.RtmpServer` and a listener of the
Server. A publish becomes an :class:`~.ingest.RtmpIngest` (the publisher of a stream of that name;
the app name is not part of the stream name, as in WCS: ``live/cam`` and ``app2/cam`` are the same
stream ``cam``), a play an :class:`~.egress.RtmpEgress` (a frame player of a live stream, or one
still connecting). Refusals are the status codes RTMP clients show: ``NetStream.Publish.BadName``
(name taken), ``NetStream.Play.StreamNotFound``, ``NetStream.Play.Failed`` (no codec the player
can take, the stream has ``max_players_per_stream`` players).

Access control: the token is the ``token`` query parameter (``auth_token_property_name``) of the
stream key or of the connect URL (``rtmp://host/live/cam?token=JWT``, ``rtmp://host/live?token=JWT/cam``);
a refusal is ``NetStream.Publish.Unauthorized`` / ``NetStream.Play.Failed`` "Restricted access",
after the refusal delay.
"""

from __future__ import annotations

import logging

from ..access import AccessControl, Grant
from ..stream import (
    AccessDenied,
    EndReason,
    MediaState,
    NameInUse,
    NoCommonCodecs,
    StreamManager,
    StreamNotFound,
    TooManyPlayers,
)
from ..tasks import TaskSet
from .config import RtmpConfig
from .connection import PlayOutput, PublishSink, RtmpServerConnection
from .egress import RtmpEgress
from .errors import RtmpRefused
from .ingest import RtmpIngest
from .server import RtmpServer

logger = logging.getLogger(__name__)

CONFIG = RtmpConfig(video_fourccs=("avc1", "vp08", "vp09"), audio_fourccs=("Opus", "mp4a"))
"What rtcdn forwards to WebRTC without a video transcode (E-RTMP VP8/VP9/Opus: rtcdn to rtcdn)."
RESTRICTED_ACCESS = "Restricted access"
"WCS's info string for a refusal, as the description of the error status."


class RtmpFrontEnd:
    """Lifecycle: :meth:`start` listens on ``host:port``; :meth:`close` ends every publish and play
    and closes every connection."""

    def __init__(
        self,
        streams: StreamManager,
        host: str,
        port: int,
        play_wait: float = 10.0,
        transcode_video: bool = False,
        access: AccessControl | None = None,
    ) -> None:
        self.streams = streams
        self.access = access if access is not None else AccessControl()
        self.transcode_video = transcode_video
        self.host = host
        self.port = port
        self.play_wait = play_wait
        self.server = RtmpServer(self, CONFIG)
        self.publishers: set[RtmpIngest] = set()
        self.players: set[RtmpEgress] = set()
        self._tasks = TaskSet("rtmp")

    async def start(self) -> list[str]:
        await self.server.start(self.host, self.port)
        return [f"rtmp://{self.host}:{self.server.port}"]

    async def close(self) -> None:
        for player in list(self.players):
            player.end(MediaState.ENDED, EndReason.SHUTDOWN)
        await self.server.close()  # every publisher's on_end runs: their close is spawned
        for ingest in list(self.publishers):
            self._ingest_ended(ingest)
        await self._tasks.wait_idle(timeout=5.0)
        await self._tasks.close()

    # --- RtmpHandler ----------------------------------------------------------------------------
    async def on_connect(self, conn: RtmpServerConnection, app: str, query: dict[str, str]) -> None:
        if not app:
            raise RtmpRefused(
                "NetConnection.Connect.Rejected", "an application name is required (rtmp://host/live)"
            )

    async def on_publish(
        self, conn: RtmpServerConnection, app: str, name: str, query: dict[str, str]
    ) -> PublishSink:
        if not name:
            raise RtmpRefused("NetStream.Publish.BadName", "the stream name is empty")
        grant = await self._admit(conn, "publish", app, name, query)
        try:
            ingest = RtmpIngest(self.streams, name, app, conn.peer, conn.close, self._ingest_ended)
            await self.streams.claim(ingest.stream)
        except NameInUse:
            raise RtmpRefused("NetStream.Publish.BadName", f"Stream name is already in use: {name}") from None
        self.access.admitted(ingest.id, grant)
        self.streams.sessions.add(ingest)
        self.publishers.add(ingest)
        return ingest

    async def _admit(
        self, conn: RtmpServerConnection, action: str, app: str, name: str, query: dict[str, str]
    ) -> Grant | None:
        """Access control of a publish/play (the token in the query, the REST hook)."""
        if not self.access.active:
            return None
        payload = {
            "appKey": app,
            "sessionId": f"rtmp:{conn.peer}",
            "published": action == "publish",
            "status": "PENDING",
            "mediaProvider": "RTMP",
            "custom": query,
        }
        token = query.get(self.access.token_name) or None
        try:
            return await self.access.admit(action, name, token, None, payload, f"rtmp {conn.peer}")
        except AccessDenied:
            code = "NetStream.Publish.Unauthorized" if action == "publish" else "NetStream.Play.Failed"
            raise RtmpRefused(code, RESTRICTED_ACCESS) from None

    def _ingest_ended(self, ingest: RtmpIngest) -> None:
        self.streams.sessions.discard(ingest)
        if ingest in self.publishers:
            self.publishers.discard(ingest)
            self._tasks.spawn(ingest.close(), f"close:{ingest.name}")

    async def on_play(
        self, conn: RtmpServerConnection, app: str, name: str, query: dict[str, str], out: PlayOutput
    ) -> None:
        grant = await self._admit(conn, "play", app, name, query)
        try:
            stream = await self.streams.acquire(name, self.play_wait)
        except StreamNotFound:
            raise RtmpRefused("NetStream.Play.StreamNotFound", f"Stream not found: {name}") from None
        except TooManyPlayers:
            raise RtmpRefused("NetStream.Play.Failed", f"Too many players: {name}") from None
        try:
            player = RtmpEgress(
                stream,
                out,
                out.fourccs,
                conn.peer,
                on_end=self._player_ended,
                transcode_video=self.transcode_video,
            )
        except NoCommonCodecs as exc:
            raise RtmpRefused("NetStream.Play.Failed", str(exc)) from None
        out.on_close = lambda reason: player.end(MediaState.ENDED, EndReason.CLIENT_STOP, reason)
        self.players.add(player)
        self.streams.sessions.add(player)
        stream.add_player(player)  # acquire() checked the room, and nothing awaited since
        self.access.admitted(player.id, grant)
        logger.info("rtmp %r: playing to %s", name, conn.peer)

    def _player_ended(self, player: RtmpEgress, reason: EndReason) -> None:
        self.streams.sessions.discard(player)
        if player in self.players:
            self.players.discard(player)
            self._tasks.spawn(player.close(), f"close-player:{player.name}")
        if isinstance(player.output, PlayOutput):
            player.output.close("NetStream.Play.Stop", f"stream {player.name} ended: {reason.value}")
