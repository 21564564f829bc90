"""The REST API under ``/rest-api``: ``/pull/*`` relays and ``/stream/*``, as WCS documents them.

Every method takes POST with a JSON body (GET without one also works: the WebSDK's REST helper
sends ``find_all`` as GET). Answers are JSON; errors are ``{"status", "error", "message"}``.
Authentication, CORS and the body cap are :mod:`.middleware`'s (configured by :class:`RestOptions`);
relay and push targets are checked against ``relay_allowed_hosts`` (:mod:`.targets`). The contract
is ``openapi.json`` next to this file, served at ``/rest-api/openapi.json``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from ..rtmp.push import target_url
from ..stream import MediaState
from ..wcs.records import record_fields
from .backend import ApiBackend, CdnView
from .middleware import ApiError, RestOptions, error_response, rest_middleware

logger = logging.getLogger(__name__)

OPENAPI = Path(__file__).with_name("openapi.json")
PUSH_FIELDS = ("mediaSessionId", "streamName", "rtmpUrl", "status")
RELAY_FIELDS = (
    "localMediaSessionId",
    "remoteMediaSessionId",
    "localStreamName",
    "remoteStreamName",
    "uri",
    "status",
    "hasAudio",
    "hasVideo",
)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


async def body(request: web.Request) -> dict[str, Any]:
    """The JSON object body; an empty body is ``{}``; anything else is a 400."""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        obj = json.loads(raw, parse_constant=_no_constant)
    except ValueError as exc:
        raise ApiError(400, f"body is not valid JSON: {exc}") from None
    except RecursionError:
        raise ApiError(400, "body is not valid JSON: nested too deep") from None
    if not isinstance(obj, dict):
        raise ApiError(400, "body must be a JSON object")
    return obj


def required_text(obj: dict[str, Any], *names: str) -> list[str]:
    values = []
    for name in names:
        value = obj.get(name)
        if value is None:
            raise ApiError(400, f"field '{name}' is required")
        if not isinstance(value, str) or not value.strip():
            raise ApiError(400, f"field '{name}' must be a non-empty string")
        values.append(value.strip())
    return values


def matches(record: dict[str, Any], query: dict[str, Any]) -> bool:
    """Every field of the query equals the record's (compared as strings, so "true" == true)."""
    for key, wanted in query.items():
        if key not in record:
            raise ApiError(400, f"unknown filter field '{key}'")
        have = record[key]
        if have != wanted and str(have).lower() != str(wanted).lower():
            return False
    return True


class RestApi:
    """Handlers on an :class:`ApiBackend`; ``add_routes`` mounts them."""

    def __init__(self, backend: ApiBackend, options: RestOptions | None = None) -> None:
        self.backend = backend
        self.options = options if options is not None else RestOptions()

    def add_routes(self, app: web.Application) -> None:
        app.middlewares.append(rest_middleware(self.options))
        add_routes(app, self)

    async def close(self) -> None:
        pass

    # --- /pull ------------------------------------------------------------------------------
    async def pull_push(self, request: web.Request) -> web.Response:
        obj = await body(request)
        uri, local, remote = required_text(obj, "uri", "localStreamName", "remoteStreamName")
        self.options.targets.check_relay(uri, self.options.agent_ssl)
        relay = self.backend.relays.push(uri, local, remote)
        return web.json_response(relay.record())

    async def pull_pull(self, request: web.Request) -> web.Response:
        obj = await body(request)
        uri, remote = required_text(obj, "uri", "remoteStreamName")
        local = required_text(obj, "localStreamName")[0] if obj.get("localStreamName") is not None else remote
        self.options.targets.check_relay(uri, self.options.agent_ssl)
        relay = self.backend.relays.pull(uri, remote, local)
        return web.json_response(relay.record())

    def _relays(self, query: dict[str, Any]) -> list[dict[str, Any]]:
        return [r.record() for r in self.backend.relays if matches(r.record(), query)]

    async def pull_find_all(self, request: web.Request) -> web.Response:
        records = self._relays({})
        if not records:
            raise ApiError(404, "no relays")
        return web.json_response(records)

    async def pull_find(self, request: web.Request) -> web.Response:
        records = self._relays(await body(request))
        if not records:
            raise ApiError(404, "no relay matches")
        return web.json_response(records)

    async def pull_terminate(self, request: web.Request) -> web.Response:
        query = {k: v for k, v in (await body(request)).items() if k in RELAY_FIELDS}
        if not query:
            raise ApiError(400, "give uri, localStreamName, remoteStreamName or localMediaSessionId")
        found = [r for r in self.backend.relays if matches(r.record(), query)]
        if not found:
            raise ApiError(404, "no relay matches")
        for relay in found:
            self.backend.relays.terminate(relay)
        return web.json_response([r.record() for r in found])

    # --- /push --------------------------------------------------------------------------------
    async def push_startup(self, request: web.Request) -> web.Response:
        obj = await body(request)
        name, url = required_text(obj, "streamName", "rtmpUrl")
        full = obj.get("rtmpTransponderFullUrl", False)
        options = obj.get("options") or {}
        if not isinstance(full, bool) or not isinstance(options, dict):
            raise ApiError(400, "rtmpTransponderFullUrl must be a boolean and options an object")
        self.options.targets.check_rtmp(target_url(url, name, full))
        push = self.backend.pushes.startup(name, url, full_url=full, options=options)
        return web.json_response(push.record())

    def _pushes(self, query: dict[str, Any]) -> list[Any]:
        return [p for p in self.backend.pushes if matches(p.record(), query)]

    async def push_find_all(self, request: web.Request) -> web.Response:
        found = self._pushes({})
        if not found:
            raise ApiError(404, "no pushes")
        return web.json_response([p.record() for p in found])

    async def push_find(self, request: web.Request) -> web.Response:
        found = self._pushes(await body(request))
        if not found:
            raise ApiError(404, "no push matches")
        return web.json_response([p.record() for p in found])

    async def push_terminate(self, request: web.Request) -> web.Response:
        query = {k: v for k, v in (await body(request)).items() if k in PUSH_FIELDS}
        if not query:
            raise ApiError(400, "give mediaSessionId, streamName or rtmpUrl")
        found = self._pushes(query)
        if not found:
            raise ApiError(404, "no push matches")
        for push in found:
            self.backend.pushes.terminate(push)
        return web.json_response([p.record() for p in found])

    # --- /stream ----------------------------------------------------------------------------
    def _streams(self, query: dict[str, Any]) -> list[dict[str, Any]]:
        streams = self.backend.streams
        records = []
        for rec in streams.sessions.records():
            if rec.state in (MediaState.ENDED, MediaState.FAILED):
                continue
            stream = streams.find(rec.name)
            tracks = stream.track_infos() if stream is not None else {}
            records.append(record_fields(rec, tracks))
        return [rec for rec in records if matches(rec, query)]

    async def stream_find_all(self, request: web.Request) -> web.Response:
        records = self._streams({})
        if not records:
            raise ApiError(404, "no streams")
        return web.json_response(records)

    async def stream_find(self, request: web.Request) -> web.Response:
        query = await body(request)
        query.pop("display", None)  # the WebSDK's helper may add display:["metrics"]
        records = self._streams(query)
        if not records:
            raise ApiError(404, "no stream matches")
        return web.json_response(records)

    async def stream_terminate(self, request: web.Request) -> web.Response:
        query = await body(request)
        if not (query.get("mediaSessionId") or query.get("name")):
            raise ApiError(400, "give mediaSessionId or name")
        records = self._streams(query)
        if not records:
            raise ApiError(404, "no stream matches")
        for rec in records:
            self.backend.streams.sessions.terminate(rec["mediaSessionId"])
        return web.json_response(records)

    # --- /cdn --------------------------------------------------------------------------------
    def _cdn(self) -> CdnView:
        cdn = self.backend.cdn
        if cdn is None:
            raise ApiError(404, "this node is in no CDN (load_balancing_enabled=false, cdn_enabled=false)")
        return cdn

    async def cdn_streams(self, request: web.Request) -> web.Response:
        try:
            return web.json_response(await self._cdn().streams())
        except RuntimeError as exc:
            raise ApiError(503, str(exc)) from None

    async def cdn_show_routes(self, request: web.Request) -> web.Response:
        return web.json_response(self._cdn().show_routes())

    async def cdn_nodes(self, request: web.Request) -> web.Response:
        return web.json_response(self._cdn().nodes())

    async def openapi(self, request: web.Request) -> web.Response:
        return web.Response(body=OPENAPI.read_bytes(), content_type="application/json")


def add_routes(app: web.Application, api: RestApi) -> None:
    routes: dict[str, Handler] = {
        "/rest-api/pull/push": api.pull_push,
        "/rest-api/pull/pull": api.pull_pull,
        "/rest-api/pull/find": api.pull_find,
        "/rest-api/pull/find_all": api.pull_find_all,
        "/rest-api/pull/terminate": api.pull_terminate,
        "/rest-api/stream/find": api.stream_find,
        "/rest-api/stream/find_all": api.stream_find_all,
        "/rest-api/stream/terminate": api.stream_terminate,
        "/rest-api/push/startup": api.push_startup,
        "/rest-api/push/find": api.push_find,
        "/rest-api/push/find_all": api.push_find_all,
        "/rest-api/push/terminate": api.push_terminate,
        "/rest-api/cdn/streams": api.cdn_streams,
        "/rest-api/cdn/show_routes": api.cdn_show_routes,
        "/rest-api/cdn/nodes": api.cdn_nodes,
    }
    for path, handler in routes.items():
        app.router.add_post(path, handler)
        app.router.add_get(path, handler)
        app.router.add_route("OPTIONS", path, handler)
    app.router.add_get("/rest-api/openapi.json", api.openapi)

    async def not_found(request: web.Request) -> web.Response:
        raise ApiError(404, f"no REST method {request.path}")

    app.router.add_route("*", "/rest-api/{tail:.*}", not_found)


__all__ = ["OPENAPI", "ApiError", "RestApi", "RestOptions", "error_response"]
