"""Server: the root object. It builds and owns every component and closes them in order."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

from .access import AccessConfig, AccessControl, HookConfig
from .api.auth import RestAuth, warn_if_exposed
from .api.middleware import RestOptions
from .api.rest import RestApi
from .api.targets import TargetPolicy
from .api.users import UsersFile
from .cdn import (
    LOADBALANCING_FILE,
    Balancer,
    BalancerRoutes,
    CdnOrigin,
    CpuMeter,
    load_loadbalancing,
    node_stat,
)
from .cdn.origin import Distribution, RtmpDistribution, WebRtcDistribution
from .cdn.workers import WorkerPool, worker_nodes, workers_config
from .cluster import Address, Cluster, ClusterConfig
from .config import ConfigError, Settings
from .metrics import MetricsEndpoint
from .pages import Pages
from .relay import AgentError, RelayManager, agent_url
from .rtmp.frontend import RtmpFrontEnd
from .rtmp.push import PushManager, target_url
from .stream import AccessDenied, EndReason, StreamManager
from .tls import client_context, ensure_self_signed, server_context
from .wcs.handler import WcsFrontEnd
from .wcs.messages import SERVER_SHUTDOWN
from .wcs.session import SignalingSettings, WcsSession
from .webrtc import MediaConfig, PortRange, host_addresses
from .whip import WhipFrontEnd

logger = logging.getLogger(__name__)


class FrontEnd(Protocol):
    """A protocol or page set served on the HTTP(S) ports."""

    def add_routes(self, app: web.Application) -> None: ...

    async def close(self) -> None:
        """Shutdown: end what it serves (streams are already closed)."""


class Listener(Protocol):
    """A protocol on a port of its own (RTMP), outside the aiohttp applications."""

    async def start(self) -> list[str]:
        """Listen; returns the URLs it serves (for the start-up line)."""

    async def close(self) -> None:
        """Shutdown: close every connection and the listening socket."""


def access_config(s: Settings) -> AccessConfig:
    """Access control (issue 11) as the settings say: tokens, REST hooks, WebSocket caps."""
    hooks = None
    if s.rest_hooks_url and not s.disable_rest_requests:
        secret = s.rest_hook_secret_key if s.rest_hook_send_hash else None
        keepalive = s.streaming_sessions_keep_alive_interval / 1000
        hooks = HookConfig(
            url=s.rest_hooks_url,
            node_id=s.node_id or s.bind,
            timeout=s.rest_request_timeout,
            fail_on_error=s.rest_on_error == "FAIL",
            secret=secret.encode() if secret else None,
            keepalive_interval=keepalive if s.keep_alive_streaming_sessions_enabled else None,
        )
    low, high = s.auth_failure_delay_ms
    return AccessConfig(
        node_id=s.node_id or s.bind,
        jwt_keys=s.auth_jwt_keys,
        jwks_url=s.auth_jwt_jwks_url,
        jwks_refresh=s.auth_jwt_jwks_refresh,
        algorithms=tuple(s.auth_jwt_algorithms),
        audience=s.auth_jwt_audience,
        issuer=s.auth_jwt_issuer,
        token_name=s.auth_token_property_name,
        failure_delay=(low / 1000, high / 1000),
        hooks=hooks,
        allow_domains=tuple(s.allow_domains),
        max_sessions_per_ip=s.max_sessions_per_ip,
        connection_rate=s.connection_rate_per_ip,
        connection_burst=s.connection_burst_per_ip,
        limits_exempt=tuple(s.limits_exempt_ips),
        trusted_proxies=tuple(s.trusted_proxies),
    )


def cluster_config(s: Settings, media_addresses: Sequence[str]) -> ClusterConfig:
    """The dynamic CDN (issue 12) as the settings say; ConfigError for a bad ``cdn_point_of_entry``."""
    ip = s.cdn_ip or s.ip or (s.bind if s.bind not in ("", "0.0.0.0") else media_addresses[0])
    for key, value in (("cdn_point_of_entry", s.cdn_point_of_entry), ("cdn_upstream", s.cdn_upstream)):
        if value and (key == "cdn_point_of_entry" or "://" in value):
            try:
                agent_url(value, s.wcs_agent_ssl)
            except AgentError as exc:
                raise ConfigError(f"{key}: {exc.info}") from None
    return ClusterConfig(
        node_id=s.node_id or f"{ip}:{s.ws_port or s.wss_port}",
        role=s.cdn_role,
        address=Address(ip, s.ws_port, s.wss_port, s.http_ports[0] if s.http_ports else 0, s.rtmp_port),
        cluster=s.cdn_cluster,
        groups=tuple(s.cdn_groups),
        secure=s.wcs_agent_ssl,
        point_of_entry=s.cdn_point_of_entry,
        upstream=s.cdn_upstream,
        heartbeat=s.cdn_heartbeat_interval / 1000,
        ttl=s.cdn_node_ttl / 1000,
        nodes_timeout=float(s.cdn_nodes_timeout),
        pull_start_timeout=s.cdn_pull_start_timeout / 1000,
        pull_close_after=s.cdn_pull_close_after / 1000,
        stale_ok=s.cdn_directory_stale_ok / 1000,
    )


def default_websdk_dir() -> Path | None:
    """``web/node_modules/@flashphoner/websdk`` under the working dir or the source checkout."""
    for base in (Path.cwd(), Path(__file__).resolve().parents[2]):
        candidate = base / "web/node_modules/@flashphoner/websdk"
        if candidate.is_dir():
            return candidate
    return None


class Server:
    """One rtcdn node. ``start()`` opens every listener; ``close()`` tells clients, closes
    sessions, streams, peers and listeners, in that order (idempotent)."""

    def __init__(self, settings: Settings, state_dir: Path, websdk_dir: Path | None = None) -> None:
        self.settings = settings
        self.state_dir = state_dir
        self.websdk_dir = websdk_dir if websdk_dir is not None else default_websdk_dir()
        self.streams = StreamManager(
            max_players=settings.max_players_per_stream,
            rtp_activity_timeout=settings.rtp_activity_timeout,
            gop_cache=settings.gop_cache,
        )
        self.access = AccessControl(access_config(settings), self.streams.sessions, self._local_address)
        if settings.ip_local:
            addresses = [settings.ip_local]
        elif settings.bind not in ("0.0.0.0", ""):
            addresses = [settings.bind]
        else:
            addresses = host_addresses()
        self.media = MediaConfig(
            addresses=addresses,
            ports=PortRange(settings.media_port_from, settings.media_port_to),
            public_ip=settings.ip,
            codecs=settings.streaming_codecs,
            connect_timeout=settings.webrtc_connect_timeout_ms / 1000,
            native_send=settings.webrtc_native_send,
        )
        self.relays = RelayManager(
            self.streams,
            self.media,
            use_ssl=settings.wcs_agent_ssl,
            ssl_context=client_context(settings.wcs_agent_ssl_verify, settings.wcs_agent_ssl_ca_file),
            local_address=self._local_address,
            service_token=self.access.service_token,
            token_name=settings.auth_token_property_name,
        )
        self.pushes = PushManager(
            self.streams,
            transcode_video=settings.rtmp_transcode_video,
            service_token=self.access.service_token,
            token_name=settings.auth_token_property_name,
        )
        self.wcs = WcsFrontEnd(
            self.streams,
            self.media,
            SignalingSettings(
                node_id=settings.node_id or settings.bind,
                ping_interval=settings.keep_alive_interval_ms / 1000,
                ping_probes=settings.keep_alive_probes,
                keepalive_enabled=settings.keep_alive_enabled,
                max_streams_per_session=settings.max_streams_per_session,
            ),
            republish=self._republish,
            access=self.access,
        )
        self.cpu = CpuMeter()
        self._balancer_cpu = CpuMeter()
        self.balancer: Balancer | None = None
        self.cdn_origin: CdnOrigin | None = None
        self.workers: WorkerPool | None = None
        if settings.load_balancing_enabled:
            self._setup_cdn()
        elif settings.workers > 1:
            self.workers = WorkerPool(settings, state_dir)
            self.balancer = Balancer(
                workers_config(settings), local_address=self._local_address, local_stat=self._local_load
            )
            self.cdn_origin = CdnOrigin(
                self.streams, WebRtcDistribution(self.relays, secure=False), self.balancer
            )
        self.cluster: Cluster | None = None
        if settings.cdn_enabled:
            self.cluster = Cluster(
                cluster_config(settings, self.media.addresses),
                self.streams,
                self.relays,
                settings.cdn_registry_url,
            )
        self.rest_options = self._rest_options()
        self.rest_exposed: str | None = None
        "The start-up warning when the REST API is open to the network without auth (issue 11)."
        self.metrics = MetricsEndpoint(
            self.streams,
            self.media.counters,
            self.relays,
            self.balancer,
            self.wcs.sessions,
            worker_nodes(settings)[1:],
        )
        self.front_ends: list[FrontEnd] = [
            RestApi(self, self.rest_options),
            Pages(self.streams, self._stat, self.websdk_dir, settings.ws_port, settings.wss_port),
            WhipFrontEnd(
                self.streams,
                self.media,
                self.access.bearer,
                ice_servers=settings.ice_servers,
                client_of=self.access.clients.of,
            ),
            self.metrics,
        ]
        chooser = self.cluster if self.cluster is not None else self.balancer
        if chooser is not None:
            self.front_ends.append(
                BalancerRoutes(chooser, settings.ws_port, settings.wss_port, settings.bind)
            )
        if self.cluster is not None:
            self.metrics.registry.register(self.cluster)
        self.listeners: list[Listener] = []
        if settings.rtmp_port:
            rtmp = RtmpFrontEnd(
                self.streams,
                settings.bind,
                settings.rtmp_port,
                transcode_video=settings.rtmp_transcode_video,
                access=self.access,
            )
            self.listeners.append(rtmp)
        self._runners: list[web.AppRunner] = []
        self._closed = False
        self.urls: list[str] = []

    @property
    def cdn(self) -> Cluster | CdnOrigin | None:
        """The CDN this node is in, as the REST API shows it (``/rest-api/cdn/*``)."""
        return self.cluster if self.cluster is not None else self.cdn_origin

    @property
    def sessions(self) -> dict[str, WcsSession]:
        return self.wcs.sessions

    def _local_load(self) -> tuple[int, float]:
        """(calls, processCpuLoad) of this process for the workers' balancer (its own CPU meter)."""
        calls = sum(len(s.players) + 1 for s in self.streams if s.live)
        return calls, self._balancer_cpu.read()[0]

    def _stat(self) -> str:
        node_id = self.settings.node_id or self.settings.bind
        return node_stat(self.streams, len(self.wcs.sessions), self.cpu, node_id)

    def _http_app(self) -> web.Application:
        app = web.Application(client_max_size=1 << 20)
        for front_end in self.front_ends:
            front_end.add_routes(app)
        return app

    @property
    def _local_address(self) -> str | None:
        """Outgoing connections (relays, probes) come from the bind address when there is one."""
        bind = self.settings.bind
        return None if bind in ("", "0.0.0.0") else bind

    def _setup_cdn(self) -> None:
        """load_balancing_enabled=true: this node is a CDN 1.0 origin (loadbalancing.xml)."""
        if self.settings.config_dir is None:
            raise ConfigError(f"load_balancing_enabled=true needs --config-dir with {LOADBALANCING_FILE}")
        path = self.settings.config_dir / LOADBALANCING_FILE
        if not path.exists():
            raise ConfigError(f"{path}: missing (load_balancing_enabled=true needs it)")
        config = load_loadbalancing(path)
        distribution: Distribution = (
            RtmpDistribution(self.pushes)
            if config.stream_distribution == "rtmp"
            else WebRtcDistribution(self.relays, self.settings.wcs_agent_ssl)
        )
        self.balancer = Balancer(config, local_address=self._local_address)
        self.cdn_origin = CdnOrigin(self.streams, distribution, self.balancer)
        logger.info(
            "CDN origin: %d edge(s), mode %s, distribution %s: %s",
            len(config.nodes),
            config.mode,
            distribution.name,
            ", ".join(f"{n.id}={n.ip}" for n in config.nodes),
        )

    def _rest_options(self) -> RestOptions:
        """REST API access (issue 11): auth, CORS, body cap and the relay targets allowed (the CDN
        nodes and local workers always are, on their ws, wss and RTMP ports)."""
        s = self.settings
        auth = None
        if not s.disable_rest_auth:
            users = None
            if s.rest_users_file:
                try:
                    users = UsersFile((s.config_dir or Path()) / s.rest_users_file)
                except (OSError, ValueError) as exc:
                    raise ConfigError(
                        [f"rest_users_file: {line}" for line in str(exc).splitlines()]
                    ) from None
            low, high = s.rest_auth_failure_delay_ms
            auth = RestAuth(
                users, s.rest_api_tokens, verify_jwt=self._api_claims, failure_delay=(low / 1000, high / 1000)
            )
        nodes = self.balancer.config.nodes if self.balancer is not None else ()
        always = [(n.ip, port) for n in nodes for port in (n.ws, n.wss, n.flash)]
        return RestOptions(
            auth=auth,
            cors_origins=tuple(s.rest_cors_origins),
            max_body=s.rest_max_body_bytes,
            metrics_auth=s.metrics_auth and auth is not None,
            targets=TargetPolicy(s.relay_allowed_hosts, always),
            agent_ssl=s.wcs_agent_ssl,
            client_of=self.access.clients.of,
        )

    async def _api_claims(self, token: str) -> Mapping[str, Any] | None:
        """A Bearer JWT on the REST API, verified by rtcdn.access with the client-token keys; only
        ``"rtcdn": {"api": true}`` grants the API (the REST middleware checks that claim)."""
        if not self.access.tokens.enabled:
            return None
        try:
            return await self.access.tokens.claims(token)
        except AccessDenied:
            return None

    def _republish(self, name: str, url: str) -> object:
        """The ``rtmpUrl`` of a ``publishStream``: a push, if ``relay_allowed_hosts`` allows its target."""
        self.rest_options.targets.check_rtmp(target_url(url, name, False))
        return self.pushes.startup(name, url)

    def _log_access(self) -> None:
        s, access = self.settings, self.access
        if access.tokens.enabled:
            logger.info(
                "access: tokens required to publish and play (%d HMAC key(s)%s; %s)",
                len(s.auth_jwt_keys),
                f", JWKS {s.auth_jwt_jwks_url}" if s.auth_jwt_jwks_url else "",
                ", ".join(s.auth_jwt_algorithms),
            )
            if access.service_token() is None:
                logger.warning("access: no HMAC key, so relays and CDN pushes carry no service token")
        if access.hooks is not None:
            logger.info("access: REST hooks at %s", access.hooks.config.url)

    def _ssl_context(self) -> ssl.SSLContext:
        s = self.settings
        if s.tls_cert_file and s.tls_key_file:
            return server_context(Path(s.tls_cert_file), Path(s.tls_key_file))
        hosts = [h for h in (s.bind, s.ip, *self.media.addresses) if h and h != "0.0.0.0"]
        return server_context(*ensure_self_signed(self.state_dir, hosts))

    async def start(self) -> None:
        s = self.settings
        tls = self._ssl_context() if (s.wss_port or s.https_ports) else None
        ws_runner = web.AppRunner(self.wcs.app(), handle_signals=False, access_log=None)
        http_runner = web.AppRunner(self._http_app(), handle_signals=False, access_log=None)
        plan: list[tuple[web.AppRunner, int, ssl.SSLContext | None, str]] = []
        if s.ws_port:
            plan.append((ws_runner, s.ws_port, None, "ws"))
        if s.wss_port:
            plan.append((ws_runner, s.wss_port, tls, "wss"))
        plan += [(http_runner, p, None, "http") for p in s.http_ports]
        plan += [(http_runner, p, tls, "https") for p in s.https_ports]
        try:
            self.access.start()
            self._log_access()
            for runner in (ws_runner, http_runner):
                await runner.setup()
                self._runners.append(runner)
            for runner, port, ctx, scheme in plan:
                site = web.TCPSite(runner, s.bind, port, ssl_context=ctx, shutdown_timeout=1.0)
                try:
                    await site.start()
                except OSError as exc:
                    raise OSError(
                        exc.errno, f"cannot listen on {s.bind}:{port} ({scheme}): {exc.strerror}"
                    ) from exc
                self.urls.append(f"{scheme}://{s.bind}:{port}")
            for listener in self.listeners:
                self.urls += await listener.start()
        except BaseException:
            await self.close()
            raise
        if self.workers is not None:
            await self.workers.start()
        if self.balancer is not None and self.cdn_origin is not None:
            self.balancer.start()
            self.cdn_origin.start()
        if self.cluster is not None:
            await self.cluster.start()
        exposed = self.rest_exposed = warn_if_exposed(
            s.bind, self.rest_options.auth is not None, [*s.http_ports, *s.https_ports]
        )
        if self.rest_options.metrics_auth and self.workers is not None:
            logger.warning(
                "metrics_auth=true: worker 0 sends no credentials, so /metrics leaves the others out"
            )
        logger.info(
            "rtcdn listening: %s; media on %s ports %d-%d%s",
            ", ".join(self.urls),
            ",".join(self.media.addresses),
            s.media_port_from,
            s.media_port_to,
            "; WARNING: REST API open to the network without auth" if exposed else "",
        )

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        logger.info("shutting down: %d session(s), %d stream(s)", len(self.sessions), len(self.streams))
        if self.cdn_origin is not None:
            await self.cdn_origin.close()
        if self.cluster is not None:
            await self.cluster.close()  # leaves the registry before the streams end (no stale claims)
        if self.balancer is not None:
            await self.balancer.close()
        # streams first, so players hear "Server shutdown" rather than "Stopped by publisher stop"
        self.streams.close_all(EndReason.SHUTDOWN)
        await self.wcs.close(SERVER_SHUTDOWN)
        for front_end in self.front_ends:
            await front_end.close()
        for listener in self.listeners:
            await listener.close()
        await self.pushes.close()
        await self.relays.close()
        await self.access.close()  # after every session ended: their last statuses reach the hooks
        await asyncio.gather(*(p.close() for p in list(self.media.peers)), return_exceptions=True)
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners.clear()
        if self.workers is not None:
            await self.workers.close()
        logger.info("shutdown complete")


__all__ = ["Server"]
