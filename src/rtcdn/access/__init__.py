"""Access control: client tokens (JWT), node-to-node service tokens, the WCS REST hooks and the
admission caps of WebSocket connections.

It knows no protocol: the WCS session, WHIP/WHEP and RTMP front ends ask :class:`AccessControl`
and word its refusals (:class:`~rtcdn.stream.AccessDenied`) for their clients. It imports only the
media core's vocabulary (:mod:`rtcdn.stream`) and :mod:`rtcdn.tasks`.
"""

from .control import AccessConfig, AccessControl
from .hooks import HookConfig, RestHooks, sign
from .limits import ConnectionLimits, OriginPolicy
from .tokens import SERVICE_TOKEN_LIFETIME, Grant, TokenVerifier

__all__ = [
    "SERVICE_TOKEN_LIFETIME",
    "AccessConfig",
    "AccessControl",
    "ConnectionLimits",
    "Grant",
    "HookConfig",
    "OriginPolicy",
    "RestHooks",
    "TokenVerifier",
    "sign",
]
