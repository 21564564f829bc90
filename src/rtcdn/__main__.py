"""``rtcdn serve``: run a server until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import textwrap
from pathlib import Path
from typing import Any

from . import __version__
from .config import ConfigError, help_text, load, option_help
from .config.keys import _ports


def _port_list(text: str) -> list[int]:
    try:
        return _ports(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _media_ports(text: str) -> tuple[int, int]:
    try:
        low, high = (int(x) for x in text.split("-", 1))
    except ValueError:
        raise argparse.ArgumentTypeError("expected LOW-HIGH, e.g. 31000-31999") from None
    return low, high


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rtcdn",
        description="WebRTC streaming server and CDN speaking the Flashphoner WCS WebSDK protocol.",
    )
    parser.add_argument("--version", action="version", version=f"rtcdn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = sub.add_parser(
        "serve",
        help="run the server",
        description=textwrap.fill(
            "Run the server. Settings come from the embedded defaults, then "
            "CONFIG_DIR/flashphoner.properties, then these options."
        ),
        epilog=help_text(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument(
        "--config-dir", type=Path, help="folder holding flashphoner.properties (and loadbalancing.xml)"
    )
    serve.add_argument(
        "--state-dir",
        type=Path,
        default=Path("state"),
        help="folder for generated state, e.g. the self-signed certificate (default: ./state)",
    )
    serve.add_argument(
        "--bind", help=f"address every listener and media socket binds ({option_help('--bind')})"
    )
    serve.add_argument("--ws-port", type=int, help=f"WebSocket port, 0 = off ({option_help('--ws-port')})")
    serve.add_argument(
        "--wss-port", type=int, help=f"secure WebSocket port, 0 = off ({option_help('--wss-port')})"
    )
    serve.add_argument("--rtmp-port", type=int, help=f"RTMP port, 0 = off ({option_help('--rtmp-port')})")
    serve.add_argument(
        "--http-ports", type=_port_list, help=f"HTTP ports, comma separated ({option_help('--http-ports')})"
    )
    serve.add_argument(
        "--https-ports",
        type=_port_list,
        help=f"HTTPS ports, comma separated ({option_help('--https-ports')})",
    )
    serve.add_argument(
        "--media-ports",
        type=_media_ports,
        help=f"UDP range for media, LOW-HIGH ({option_help('--media-ports')})",
    )
    serve.add_argument(
        "--websdk-dir", type=Path, help="the @flashphoner/websdk package served under /client2/"
    )
    serve.add_argument(
        "--workers", type=int, help=f"processes serving players, one per core ({option_help('--workers')})"
    )
    serve.add_argument("--worker-index", type=int, default=0, help=argparse.SUPPRESS)
    serve.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    # `rtcdn --help` documents every option too, not only the command names
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = "rtcdn serve:\n" + "\n".join("  " + line for line in serve.format_help().splitlines())
    return parser


async def _serve(args: argparse.Namespace) -> int:
    from .server import Server

    overrides: dict[str, Any] = {
        "bind": args.bind,
        "ws_port": args.ws_port,
        "wss_port": args.wss_port,
        "rtmp_port": args.rtmp_port,
        "http_ports": args.http_ports,
        "https_ports": args.https_ports,
        "workers": args.workers,
    }
    if args.worker_index:  # a child of --workers: one process, never an origin itself
        overrides.update(worker_index=args.worker_index, workers=1, load_balancing_enabled=False)
    if args.media_ports:
        overrides["media_port_from"], overrides["media_port_to"] = args.media_ports
    settings = load(args.config_dir, overrides)
    server = Server(settings, args.state_dir, args.websdk_dir)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    print(f"rtcdn {__version__} ready: {' '.join(server.urls)}", flush=True)
    await stop.wait()
    await server.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    worker = f" worker{args.worker_index}" if getattr(args, "worker_index", 0) else ""
    logging.basicConfig(
        level=args.log_level, format=f"%(asctime)s %(levelname)s{worker} %(name)s: %(message)s"
    )
    logging.getLogger("aioice").setLevel(logging.WARNING)
    logging.getLogger("aiortc").setLevel(logging.WARNING)
    try:
        return asyncio.run(_serve(args))
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"rtcdn: configuration error: {problem}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"rtcdn: cannot start: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
