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


def parse_frame_data(text: str) -> tuple[str, list[Any]]:
    """Return ``(message, data)`` of a frame (``data`` as a list); raises :class:`ProtocolError`."""
    try:
        obj = json.loads(text)
    except ValueError as exc:
        raise ProtocolError(f"malformed JSON: {exc}") from None
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
