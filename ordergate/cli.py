"""``ordergate serve | check``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from ordergate.config import load_settings
from ordergate.pipeline.errors import ConfigError
from ordergate.pipeline.registry import build_service

log = logging.getLogger("ordergate")


def _check(args: argparse.Namespace) -> int:
    settings = load_settings(args.env, args.config_dir)
    service = build_service(settings)
    files = " + ".join(str(f) for f in settings.files)
    print(f"Configuration OK: environment {settings.environment} ({files})")
    width = max(len(name) for name in service.runners)
    for name, runner in service.runners.items():
        broker = runner.route.broker
        kind = broker.market_type
        aliases = [a for a, r in service.aliases.items() if r == name and a != name.upper()]
        also = f" (also {', '.join(aliases)})" if aliases else ""
        print(f"  {name.ljust(width)}  broker {broker.name} [{broker.label}, {kind}]{also}")
        print(f"  {' ' * width}  {runner.route.pipeline}: {' → '.join(runner.names)}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from ordergate.app import create_app
    from ordergate.logs import configure_logging
    from ordergate.server import GracefulServer, drain_seconds

    configure_logging(os.environ.get("LOG_LEVEL", "INFO"))
    settings = load_settings(args.env, args.config_dir)
    app = create_app(settings)
    app.start_reconciler()
    server_cfg = settings.data["server"]
    host = args.host or server_cfg["host"]
    port = args.port if args.port is not None else server_cfg["port"]
    server = GracefulServer(app, host, port, server_cfg["threads"])
    server.install_signal_handlers()
    routes = ", ".join(app.service.runners)
    log.info(
        "ordergate serving on http://%s:%s (environment %s; routes %s)", host, server.port, settings.environment, routes
    )
    server.serve(drain_seconds())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ordergate", description="TradingView webhooks to broker orders.")
    parser.add_argument("--env", help="environment (default: $ORDERGATE_ENV or development)")
    parser.add_argument("--config-dir", help="configuration folder (default: ./config)")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the webhook on $PORT (default 8080)")
    serve.add_argument("--host", help="address to listen on (default from config: 0.0.0.0)")
    serve.add_argument("--port", type=int, help="port (default: $PORT, then 8080)")
    commands.add_parser("check", help="validate the configuration and print every route's chain")
    args = parser.parse_args(argv)
    try:
        return _check(args) if args.command == "check" else _serve(args)
    except ConfigError as exc:
        print(f"ordergate: configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
