"""The RTMP errors: every protocol failure of :mod:`rtcdn.rtmp` is an :class:`RtmpError`.

Bad AMF0 raises :class:`~rtcdn.rtmp.amf0.AmfError` and a bad FLV body :class:`FlvError` (both
``ValueError``); the connection turns the first into a protocol error and drops tags for the second."""

from __future__ import annotations


class RtmpError(Exception):
    """Base class of the RTMP errors; the message says what happened in plain words."""


class RtmpProtocolError(RtmpError):
    """The peer broke the protocol (handshake, chunk stream, command order, limits): the connection closes."""


class RtmpTimeout(RtmpError):
    """The peer did not answer in time (handshake, a command, an idle connection)."""


class RtmpConnectError(RtmpError):
    """The TCP connection could not be opened (refused, unreachable, DNS failure)."""


class RtmpClosed(RtmpError):
    """The connection is closed (by the peer or by us) and cannot carry the request."""


class RtmpRefused(RtmpError):
    """A refusal with an RTMP status ``code`` and ``description``.

    A :class:`~rtcdn.rtmp.connection.RtmpHandler` raises it to refuse a connect/publish/play, e.g.
    ``RtmpRefused("NetStream.Publish.BadName", "name in use")``; :class:`~rtcdn.rtmp.client.RtmpClient`
    raises it when the server answers ``_error`` or an error ``onStatus``.
    """

    def __init__(self, code: str, description: str = "") -> None:
        super().__init__(f"{code}: {description}" if description else code)
        self.code = code
        self.description = description


class FlvError(ValueError):
    """A truncated or inconsistent FLV tag body or codec configuration record (the publisher's
    data, not the RTMP protocol: the connection drops such a tag and counts it)."""
