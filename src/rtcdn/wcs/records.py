"""The core's words in WCS's: media records as WCS REST/status fields, errors and endings as the
info strings the WebSDK knows (``constants.js`` STREAM_STATUS_INFO)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..rtp import TrackInfo
from ..stream import (
    AccessDenied,
    BadDescription,
    ConnectTimeout,
    DtlsFailed,
    EndReason,
    MediaError,
    MediaRecord,
    MediaState,
    NameInUse,
    NoCommonCodecs,
    NotInDirectory,
    StreamEnded,
    StreamNotFound,
    TooManyPlayers,
    UpstreamFailed,
)
from . import messages as m

ERROR_INFO: dict[type[MediaError], str] = {
    StreamNotFound: m.STREAM_NOT_FOUND,
    NotInDirectory: m.CDN_STREAM_NOT_FOUND,
    UpstreamFailed: m.FAILED_TO_CONNECT_TO_ORIGIN_STREAM,
    NameInUse: m.NAME_IN_USE,
    NoCommonCodecs: m.NO_COMMON_CODECS,
    BadDescription: m.FAILED_BY_ERROR,
    ConnectTimeout: m.FAILED_BY_ICE_TIMEOUT,
    DtlsFailed: m.FAILED_BY_DTLS_ERROR,
    StreamEnded: m.STOPPED_BY_PUBLISHER_STOP,
    AccessDenied: m.RESTRICTED_ACCESS,
    TooManyPlayers: m.TOO_MANY_PLAYERS,
}

END_INFO: dict[EndReason, str] = {
    EndReason.PUBLISHER_STOP: m.STOPPED_BY_PUBLISHER_STOP,
    EndReason.CLIENT_STOP: m.STOPPED_BY_USER,
    EndReason.DISCONNECT: m.STOPPED_BY_SESSION_DISCONNECT,
    EndReason.CONNECTION_LOST: m.FAILED_BY_ICE_KEEP_ALIVE,
    EndReason.TERMINATED: m.STOPPED_BY_REST_TERMINATE,
    EndReason.SHUTDOWN: m.SERVER_SHUTDOWN,
    EndReason.RTP_INACTIVE: m.FAILED_BY_RTP_ACTIVITY,
    EndReason.REVOKED: m.TERMINATED_BY_KEEP_ALIVE,
    EndReason.UPSTREAM_LOST: m.AGENT_SERVICING_ORIGIN_STREAM_IS_SHUTTING_DOWN,
}


def error_info(exc: MediaError) -> str:
    """The WCS info string for a core error (its class, or the nearest base class)."""
    for cls in type(exc).__mro__:
        if issubclass(cls, MediaError) and cls in ERROR_INFO:
            return ERROR_INFO[cls]
    return m.FAILED_BY_ERROR


def status(state: MediaState, published: bool) -> str:
    """A media state as a WCS stream status."""
    if state is MediaState.ENDED:
        return m.UNPUBLISHED if published else m.STOPPED
    return str(state.value)


def media_fields(tracks: Mapping[str, TrackInfo]) -> dict[str, object]:
    """``hasAudio``/``hasVideo``/``audioCodec``/``videoCodec`` of a track set, as WCS reports them."""
    fields: dict[str, object] = {"hasAudio": "audio" in tracks, "hasVideo": "video" in tracks}
    for kind in ("audio", "video"):
        if kind in tracks:
            fields[f"{kind}Codec"] = tracks[kind].codec_name
    return fields


def record_fields(rec: MediaRecord, tracks: Mapping[str, TrackInfo]) -> dict[str, Any]:
    """A media record in ``/rest-api/stream/find`` form (and the core of a status event)."""
    return {
        "mediaSessionId": rec.id,
        "name": rec.name,
        "published": rec.published,
        "status": status(rec.state, rec.published),
        "info": rec.info,
        **media_fields(tracks),
        "sessionId": rec.session,
        "appKey": rec.app,
        "mediaProvider": rec.transport,
        "createDate": int(rec.created * 1000),
    }
