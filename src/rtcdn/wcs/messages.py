"""WCS WebSDK wire format: frames, statuses and the exact info strings the SDK knows."""

from __future__ import annotations

import json
from typing import Any

# stream statuses (SDK constants.js STREAM_STATUS)
PENDING = "PENDING"
PUBLISHING = "PUBLISHING"
PLAYING = "PLAYING"
UNPUBLISHED = "UNPUBLISHED"
STOPPED = "STOPPED"
FAILED = "FAILED"

# info strings (SDK constants.js STREAM_STATUS_INFO)
STREAM_NOT_FOUND = "Stream not found"
NAME_IN_USE = "Stream name is already in use"
STOPPED_BY_USER = "Stopped by user"
STOPPED_BY_PUBLISHER_STOP = "Stopped by publisher stop"
STOPPED_BY_SESSION_DISCONNECT = "Stopped by session disconnect"
STOPPED_BY_REST_TERMINATE = "Stopped by rest /terminate"
MEDIASESSION_ID_NULL = "MediaSessionId is null"
MEDIASESSION_ID_IN_USE = "MediaSessionId is already in use"
SESSION_NOT_READY = "Session not ready"
FAILED_BY_ERROR = "Failed by error"
NO_COMMON_CODECS = "No common codecs"
FAILED_BY_ICE_TIMEOUT = "Failed by ICE timeout"
FAILED_BY_DTLS_ERROR = "Failed by DTLS error"
FAILED_BY_ICE_KEEP_ALIVE = "Failed by ICE keep alive"
RESTRICTED_ACCESS = "Restricted access"
SERVER_SHUTDOWN = "Server shutdown"
FAILED_BY_RTP_ACTIVITY = "Failed by RTP activity"
TERMINATED_BY_KEEP_ALIVE = "Terminated by keep-alive"
TOO_MANY_PLAYERS = "Too many players"
CDN_STREAM_NOT_FOUND = "CDN stream not found"
FAILED_TO_CONNECT_TO_ORIGIN_STREAM = "Failed to connect to origin stream"
AGENT_SERVICING_ORIGIN_STREAM_IS_SHUTTING_DOWN = "Agent servicing origin stream is shutting down"
"Not a WCS string: ``max_players_per_stream`` (WCS has no such cap)."
TOO_MANY_STREAMS = "Too many streams in the session"
"Not a WCS string: ``max_streams_per_session``."

# --- the message table: what a client may send besides the messages rtcdn answers
# (``session.HANDLERS``) ---------------------------------------------------------------------
IGNORED = frozenset(
    {"submitBugReport", "pushLogs", "sessionDebug", "webRTCMetricsClientDescription", "webRTCMetricsBatch"}
)
"Sent by the SDK, need no answer (logged at debug level)."
SIP = frozenset({"answer", "hangup", "hold", "unhold", "sendDtmf", "transfer"})
"SIP call control: rtcdn has no SIP; logged and ignored."
BEFORE_CONNECTION = frozenset({"connection", "ping", "pong"})
"Accepted before ``connection`` established the session; anything else is refused."
MUTE_EVENTS = {
    "audioMuted": ("audioState", True),
    "audioUnmuted": ("audioState", False),
    "videoMuted": ("videoState", True),
    "videoUnmuted": ("videoState", False),
}
"``sendStreamEvent`` types that change a stream's mute state."

MAX_FRAME_BYTES = 1 << 20
"Largest frame accepted; bigger ones close the socket with 1009 (an SDP is ~10 KB)."


class ProtocolError(ValueError):
    """A frame that is not a WCS message."""


def frame(message: str, *data: Any) -> str:
    """A server frame: ``{"message": ..., "data": [...]}`` (``data`` is always an array)."""
    return json.dumps({"message": message, "data": list(data)}, separators=(",", ":"))


def parse_frame(text: str) -> tuple[str, Any]:
    """Return ``(message, data[0])`` of a frame; raises :class:`ProtocolError`."""
    message, data = parse_frame_data(text)
    return message, data[0] if data else None


def _no_constant(name: str) -> Any:
    """NaN and Infinity are not JSON (Python's json reads them; the WebSDK's JSON.parse would not)."""
    raise ValueError(f"{name} is not a JSON value")


def parse_frame_data(text: str) -> tuple[str, list[Any]]:
    """Return ``(message, data)`` of a frame (``data`` as a list); raises :class:`ProtocolError`."""
    try:
        obj = json.loads(text, parse_constant=_no_constant)
    except ValueError as exc:
        raise ProtocolError(f"malformed JSON: {exc}") from None
    except RecursionError:
        raise ProtocolError("malformed JSON: nested too deep") from None
    if not isinstance(obj, dict):
        raise ProtocolError("frame is not a JSON object")
    message = obj.get("message")
    if not isinstance(message, str) or not message:
        raise ProtocolError("frame has no 'message'")
    data = obj.get("data")
    return message, data if isinstance(data, list) else []


def text_field(payload: Any, key: str) -> str | None:
    """A string field of a payload object, or None when absent or not a non-empty string."""
    if isinstance(payload, dict):
        value = payload.get(key)
        if isinstance(value, str) and value:
            return value
    return None


# --- client side: what the WebSDK sends (protocol §2.1, §3.2, §4.2) -----------------------------

TERMINAL_STATUSES = (UNPUBLISHED, STOPPED, FAILED)
"Statuses that end a stream: the SDK closes its peer and ignores later frames for the id."


def connection_payload(
    client: str, app_key: str = "defaultApp", custom: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The ``connection`` payload of a WebRTC-only WebSDK client; ``client`` is its user agent,
    ``custom`` what the SDK's ``createSession({custom})`` carries (e.g. ``{"token": ...}``)."""
    payload: dict[str, Any] = {
        "appKey": app_key,
        "mediaProviders": ["WebRTC"],
        "clientVersion": "2.0",
        "clientBrowserVersion": client,
        "msePacketizationVersion": 2,
    }
    if custom is not None:
        payload["custom"] = custom
    return payload


def stream_payload(
    msid: str, name: str, published: bool, sdp: str, has_audio: bool = True, has_video: bool = True
) -> dict[str, Any]:
    """A ``publishStream`` (``published``) or ``playStream`` payload with the SDP offer, fields in the
    SDK's order; a play asks for the published size and quality, as the SDK does (width, height 0)."""
    payload: dict[str, Any] = {
        "mediaSessionId": msid,
        "name": name,
        "published": published,
        "hasVideo": has_video,
        "hasAudio": has_audio,
        "status": PENDING,
        "record": False,
    }
    if not published:
        payload |= {"width": 0, "height": 0}
    payload |= {"mediaProvider": "WebRTC", "sdp": sdp, "bitrate": 0, "minBitrate": 0, "maxBitrate": 0}
    if not published:
        payload["quality"] = 0
    return payload
