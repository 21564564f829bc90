"""The media core's vocabulary for refusals, failures and endings, free of any protocol.

Front ends translate: the WCS session maps each class to a WCS info string
(:mod:`rtcdn.wcs.messages`), the HTTP front ends (WHIP/WHEP, REST) to a status code.
"""

from __future__ import annotations

import enum


class MediaError(Exception):
    """A publish or play was refused or failed; ``str(exc)`` is a detail for logs and bodies."""

    http_status = 500


class StreamNotFound(MediaError):
    """No live stream of that name (here, or anywhere the directory knows)."""

    http_status = 404


class NotInDirectory(StreamNotFound):
    """Not here, and the directory (a CDN's registry or origin) knows no node that has it."""


class UpstreamFailed(MediaError):
    """The node a stream is fetched from could not be reached, or did not deliver it in time."""

    http_status = 502


class NameInUse(MediaError):
    """Another publisher holds the name."""

    http_status = 409


class NoCommonCodecs(MediaError):
    """The offer has no codec this server forwards, or none the stream's publisher sends."""

    http_status = 422


class BadDescription(MediaError):
    """An SDP offer or answer that is missing or malformed."""

    http_status = 400


class ConnectTimeout(MediaError):
    """ICE did not connect in time."""

    http_status = 504


class DtlsFailed(MediaError):
    """ICE connected but the DTLS handshake failed."""

    http_status = 502


class StreamEnded(MediaError):
    """The stream ended while the player was still connecting."""

    http_status = 410


class AccessDenied(MediaError):
    """The authorization hook refused the publisher or player."""

    http_status = 403


class TooManyPlayers(MediaError):
    """The stream has ``max_players_per_stream`` players already."""

    http_status = 503


class EndReason(enum.Enum):
    """Why a publish or play ended; front ends word it for their clients."""

    PUBLISHER_STOP = "the publisher stopped"
    CLIENT_STOP = "the client stopped it"
    DISCONNECT = "the client's session closed"
    CONNECTION_LOST = "the media connection was lost"
    TERMINATED = "terminated by the REST API"
    SHUTDOWN = "the server is shutting down"
    REVOKED = "access revoked by the keep-alive hook"
    RTP_INACTIVE = "no media from the publisher"
    UPSTREAM_LOST = "the node the stream came from was lost"
