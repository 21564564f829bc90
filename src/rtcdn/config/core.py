"""The settings of one node: listeners, media, relays, the static CDN, workers."""

# ruff: noqa: RUF009  (setting() is dataclasses.field with the declaration in its metadata)

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .keys import (
    SELF_SIGNED,
    UNSET,
    Key,
    _bool,
    _codecs,
    _ice_servers,
    _keepalive_on,
    _optional,
    _port,
    _positive,
    _seconds,
    setting,
)


@dataclass(frozen=True)
class CoreKeys:
    bind: str = setting(
        "0.0.0.0",
        Key("bind", str.strip, "address every listener and media socket binds", "--bind", file=False),
    )
    ws_port: int = setting(8080, Key("ws.port", _port, "WebSocket signaling (0 = off)", "--ws-port"))
    wss_port: int = setting(
        8443, Key("wss.port", _port, "secure WebSocket signaling (0 = off)", "--wss-port")
    )
    rtmp_port: int = setting(
        1935,
        Key(
            "rtmp.port", _port, "RTMP: publish from OBS/ffmpeg, play with ffmpeg/VLC (0 = off)", "--rtmp-port"
        ),
    )
    rtmp_transcode_video: bool = setting(
        False,
        Key(
            "rtmp_transcode_video",
            _bool,
            "VP8/VP9 streams go to RTMP players and pushes transcoded to H.264 (CPU: see README) "
            "instead of being refused",
        ),
    )
    http_ports: list[int] = setting(
        [8081, 9091],
        Key(
            "http.rest.port",
            _port,
            "HTTP: REST (`/rest-api/`), demo pages (`/client2/`), index (`/`); 0 = off",
            "--http-ports",
            index=0,
        ),
        Key("http.port", _port, "a second HTTP port serving the same (0 = off)", "--http-ports", index=1),
    )
    https_ports: list[int] = setting(
        [8444, 8888],
        Key("https.rest.port", _port, "`http.rest.port` over HTTPS (0 = off)", "--https-ports", index=0),
        Key("https.port", _port, "`http.port` over HTTPS (0 = off)", "--https-ports", index=1),
    )
    media_port_from: int = setting(
        31000, Key("media_port_from", _port, "lowest UDP media port", "--media-ports")
    )
    media_port_to: int = setting(
        31999, Key("media_port_to", _port, "highest UDP media port", "--media-ports")
    )
    ip: str | None = setting(
        None, Key("ip", _optional, "address written in ICE candidates (public address of a 1:1 NAT)")
    )
    ip_local: str | None = setting(
        None, Key("ip_local", _optional, "address media sockets bind", shown="`--bind`, or every interface")
    )
    codecs: list[str] = setting(
        ["opus", "alaw", "ulaw", "g722", "vp8", "h264", "vp9"],
        Key(
            "codecs",
            _codecs,
            "codecs accepted from publishers, in preference order; a publisher gets the first one it offers",
        ),
    )
    codecs_exclude_streaming: list[str] = setting(
        [], Key("codecs_exclude_streaming", _codecs, "codecs removed from `codecs`")
    )
    keep_alive_interval_ms: int = setting(
        5000, Key("keep_alive.server_interval", _positive, "ms between server pings")
    )
    keep_alive_probes: int = setting(
        10, Key("keep_alive.probes", _positive, "unanswered pings before the session is closed")
    )
    keep_alive_enabled: bool = setting(
        True, Key("keep_alive.algorithm", _keepalive_on, "`NONE` turns pings off", shown=UNSET)
    )
    rtp_activity_timeout: float = setting(
        6.0,
        Key(
            "rtp_activity_timeout",
            _seconds,
            "seconds without a packet from a live stream's publisher before it ends (a hung publisher "
            "or origin): players get `Failed by RTP activity`; 0 = never",
        ),
    )
    gop_cache: bool = setting(
        True,
        Key(
            "gop_cache",
            _bool,
            "keep each video track's current GOP (up to 5 s, 3000 packets): a joining player starts on "
            "it at once instead of waiting for a keyframe the publisher is asked for",
        ),
    )
    webrtc_native_send: bool = setting(
        True,
        Key(
            "webrtc_native_send",
            _bool,
            "send players' RTP through the small C module `rtcdn.webrtc._fastsend` built by the install "
            "(copy, stamp, `srtp_protect`, `sendto` in one call); `false`, or a machine where it did "
            "not build, uses the same steps in Python",
        ),
    )
    webrtc_connect_timeout_ms: int = setting(
        15000,
        Key(
            "webrtc_connect_timeout",
            _positive,
            "ms for ICE+DTLS before a stream goes `FAILED` / `Failed by ICE timeout`",
        ),
    )
    wcs_agent_ssl: bool = setting(
        False,
        Key(
            "wcs_agent_ssl",
            _bool,
            "relays (and CDN pushes) connect to other servers over `wss://` (port 8443); "
            "set it on both ends, as WCS documents",
        ),
    )
    wcs_agent_ssl_verify: bool = setting(
        True,
        Key(
            "wcs_agent_ssl_verify",
            _bool,
            "check the remote's certificate; `false` only for self-signed test servers",
        ),
    )
    wcs_agent_ssl_ca_file: str | None = setting(
        None,
        Key(
            "wcs_agent_ssl_ca_file",
            _optional,
            "PEM file of extra trusted certificates, e.g. another node's `state/cert.pem`",
        ),
    )
    load_balancing_enabled: bool = setting(
        False,
        Key(
            "load_balancing_enabled",
            _bool,
            "this node is a CDN origin: reads `loadbalancing.xml` from `--config-dir`",
        ),
    )
    tls_cert_file: str | None = setting(
        None, Key("ssl.cert_file", _optional, "PEM certificate for wss/https", shown=SELF_SIGNED)
    )
    tls_key_file: str | None = setting(
        None, Key("ssl.key_file", _optional, "PEM private key of `ssl.cert_file`", shown=SELF_SIGNED)
    )
    config_dir: Path | None = setting(
        None,
        Key(
            "config_dir",
            Path,
            "folder holding flashphoner.properties and loadbalancing.xml",
            "--config-dir",
            file=False,
        ),
    )
    workers: int = setting(
        1, Key("workers", _positive, "processes serving players; 1 = this process only", "--workers")
    )
    worker_index: int = setting(
        0, Key("worker_index", int, "set by worker 0 on the workers it starts", "--worker-index", file=False)
    )
    node_id: str = setting(
        "", Key("node_id", str.strip, "name reported in `getUserData` and stats", shown="the bind address")
    )
    ice_servers: list[str] = setting(
        [],
        Key(
            "ice_servers",
            _ice_servers,
            'STUN/TURN servers for WHIP/WHEP clients (`Link: rel="ice-server"`): `URL` or '
            "`URL|username|credential`, comma separated",
            shown="none",
        ),
    )
