"""What a WCS session asks access control, with which token and which REST hook payload.

The token of a session is ``connection``'s ``custom[auth_token_property_name]`` (the SDK's
``createSession({custom: {token}})``); a ``publishStream``/``playStream`` may carry its own in its
``custom``, which wins for that stream. Hook payloads have WCS's shape: ``connect`` gets the
``connection`` fields plus ``nodeId``, ``sessionId``, ``origin`` and WCS's tunnel flags;
``publishStream``/``playStream`` get the client's request (``mediaSessionId``, ``name``,
``published``, ``hasAudio``/``hasVideo``, ``sdp``, ``custom``...) plus ``nodeId``, ``appKey`` and
``sessionId``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..access import Grant
from . import messages as m

if TYPE_CHECKING:
    from .handle import MediaHandle
    from .session import WcsSession

CONNECT_FIELDS = (
    "appKey",
    "mediaProviders",
    "keepAlive",
    "clientVersion",
    "clientOSVersion",
    "clientBrowserVersion",
    "msePacketizationVersion",
    "custom",
)


def token_of(payload: Any, name: str) -> str | None:
    """The token in a payload's ``custom`` object, or None."""
    return m.text_field(payload.get("custom") if isinstance(payload, dict) else None, name)


def connect_payload(session: WcsSession, obj: dict[str, Any]) -> dict[str, Any]:
    """The ``connect`` hook's fields (WCS's, ``nodeId`` is added by access control)."""
    payload = {k: obj[k] for k in CONNECT_FIELDS if k in obj}
    payload.update(
        appKey=session.app_key,
        sessionId=session.id,
        useWsTunnel=False,
        useWsTunnelPacketization2=False,
        useBase64BinaryEncoding=False,
    )
    if session.origin is not None:
        payload["origin"] = session.origin
    return payload


async def connect(session: WcsSession, obj: dict[str, Any]) -> Grant | None:
    """Check a ``connection``: the session's grant; raises AccessDenied."""
    access = session.host.access
    token = token_of(obj, access.token_name)
    return await access.connect(token, connect_payload(session, obj), f"session {session.id}")


async def admit(session: WcsSession, h: MediaHandle, payload: Any) -> Grant | None:
    """Check a ``publishStream``/``playStream``: the grant that let it; raises AccessDenied."""
    access = session.host.access
    request = payload if isinstance(payload, dict) else {}
    hook = {
        **request,
        "appKey": session.app_key,
        "sessionId": session.id,
        "mediaSessionId": h.id,
        "name": h.name,
        "published": h.published,
    }
    action = "publish" if h.published else "play"
    token = token_of(request, access.token_name)
    return await access.admit(action, h.name, token, session.grant, hook, f"session {session.id}")
