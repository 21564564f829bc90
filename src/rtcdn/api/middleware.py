"""The middleware of the REST API: authentication, CORS, the body cap and JSON errors.

Which paths: everything under ``/rest-api/`` except ``/rest-api/openapi.json`` (the contract stays
readable) needs credentials when ``disable_rest_auth=false``; ``/metrics`` too with
``metrics_auth=true``. Everything else (pages, the balancer, ``/?action=stat`` that CDN balancers
probe, WHIP) is left alone. CORS preflights (OPTIONS) never need credentials: browsers send none.

CORS (``rest_cors_origins``): ``*`` answers ``Access-Control-Allow-Origin: *`` (WCS); a list echoes
an ``Origin`` found in it (with ``Vary: Origin``) and gives others no ``Allow-Origin``; an empty list
sends no CORS headers at all. ``Access-Control-Allow-Credentials`` is never sent: scripts pass
``Authorization`` explicitly, which ``Allow-Headers`` permits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from ..relay import RelayError
from ..rtmp.push import PushError
from .auth import CHALLENGE, RestAuth, Verdict
from .targets import TargetPolicy, TargetRefused

logger = logging.getLogger(__name__)

OPENAPI_PATH = "/rest-api/openapi.json"
METRICS_PATH = "/metrics"
MAX_BODY = 64 * 1024
PREFLIGHT = {
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, Authorization",
    "Access-Control-Max-Age": "86400",
}


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Payload Too Large",
    500: "Internal Server Error",
}


def error_response(status: int, message: str) -> web.Response:
    return web.json_response(
        {"status": status, "error": _REASONS.get(status, "Error"), "message": message}, status=status
    )


@dataclass(frozen=True)
class RestOptions:
    """How the REST API is guarded (built by the server from the settings)."""

    auth: RestAuth | None = None
    "None: ``disable_rest_auth=true``, no credentials needed."
    cors_origins: tuple[str, ...] = ("*",)
    max_body: int = MAX_BODY
    "Largest request body, bytes (``rest_max_body_bytes``); larger ones get 413."
    metrics_auth: bool = False
    targets: TargetPolicy = field(default_factory=TargetPolicy)
    "``relay_allowed_hosts`` (empty: any target)."
    agent_ssl: bool = False
    "``wcs_agent_ssl``: how a relay ``uri`` becomes the URL actually opened (checked by ``targets``)."
    client_of: Callable[[str, Sequence[str]], str] | None = None
    "``client_of(peer, x_forwarded_for)``: who a refusal is logged for (``trusted_proxies``)."


def cors_headers(origins: tuple[str, ...], origin: str | None) -> dict[str, str]:
    """The CORS headers for a request from ``origin`` (the request's Origin header)."""
    if not origins:
        return {}
    if "*" in origins:
        return {"Access-Control-Allow-Origin": "*"}
    if origin is not None and origin in origins:
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
    return {"Vary": "Origin"}


def _route(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else ""


def rest_middleware(options: RestOptions) -> Middleware:
    """The middleware for the HTTP application that serves the REST API."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        route = _route(request)
        rest = request.path.startswith("/rest-api") or route.startswith("/rest-api")
        metrics = options.metrics_auth and (request.path == METRICS_PATH or route == METRICS_PATH)
        if not (rest or metrics):
            return await handler(request)
        cors = cors_headers(options.cors_origins, request.headers.get("Origin")) if rest else {}
        if rest and request.method == "OPTIONS":
            extra = PREFLIGHT if "Access-Control-Allow-Origin" in cors else {}
            return web.Response(status=204, headers={**cors, **extra})
        try:
            response = await _guarded(options, request, handler, public=route == OPENAPI_PATH)
        except Exception as exc:  # never escapes: the answer is a JSON 500
            logger.exception("REST %s failed", request.path)
            response = error_response(500, f"internal error: {type(exc).__name__}: {exc}")
        response.headers.update(cors)
        return response

    return middleware


async def _guarded(
    options: RestOptions, request: web.Request, handler: Handler, public: bool
) -> web.StreamResponse:
    if options.auth is not None and not public:
        outcome = await options.auth.check(request.headers.get("Authorization"))
        if outcome.verdict is not Verdict.OK:
            peer = request.remote or "unknown"
            if options.client_of is not None:
                peer = options.client_of(peer, request.headers.getall("X-Forwarded-For", []))
            await options.auth.refuse(outcome, peer, request.path)
            if outcome.verdict is Verdict.MISSING:
                response = error_response(401, "credentials required (HTTP Basic or Bearer)")
                response.headers["WWW-Authenticate"] = CHALLENGE
                return response
            return error_response(403, "wrong credentials")
    if request.path == METRICS_PATH:
        return await handler(request)
    if request.content_length is not None and request.content_length > options.max_body:
        return _too_big(options)
    try:
        return await handler(request.clone(client_max_size=options.max_body))
    except web.HTTPRequestEntityTooLarge:
        return _too_big(options)
    except (ApiError, RelayError, PushError, TargetRefused) as exc:
        return error_response(exc.status, str(exc))
    except web.HTTPException as exc:
        return error_response(exc.status, exc.reason)


def _too_big(options: RestOptions) -> web.Response:
    return error_response(413, f"request body over {options.max_body} bytes (rest_max_body_bytes)")
