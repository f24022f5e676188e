"""``ordergate serve | check | send | signals | replay``."""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from ordergate.compose import build_service, route_summary
from ordergate.config import Settings, load_settings
from ordergate.pipeline.errors import ConfigError

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
    for line in route_summary(service):
        print(line)
    return 0


def _serve(args: argparse.Namespace) -> int:
    from ordergate.app import create_app
    from ordergate.logs import configure_logging
    from ordergate.server import EdgeLimits, GracefulServer, drain_seconds

    configure_logging(os.environ.get("LOG_LEVEL", "INFO"), os.environ.get("LOG_FORMAT", "text"))
    settings = load_settings(args.env, args.config_dir)
    app = create_app(settings)
    reconciler = app.start_reconciler()
    server_cfg = settings.data["server"]
    host = args.host or server_cfg["host"]
    port = args.port if args.port is not None else server_cfg["port"]
    server = GracefulServer(app, host, port, server_cfg["threads"], EdgeLimits.from_settings(server_cfg))
    server.install_signal_handlers()
    routes = ", ".join(app.service.runners)
    log.info(
        "ordergate serving on http://%s:%s (environment %s; routes %s; %s threads)",
        host,
        server.port,
        settings.environment,
        routes,
        server.server.adj.threads,  # what waitress itself was given: WAITRESS_THREADS, default 64
    )
    for line in route_summary(app.service):
        log.info(line)
    server.serve(drain_seconds())
    reconciler.stop(timeout_s=2)  # a pass in progress ends before the process does
    from ordergate.notifications import shutdown

    if not shutdown(timeout=3.0):  # what is still queued gets a moment, within Railway's window
        log.warning("Some notifications were not sent before exit")
    return 0


def _send(args: argparse.Namespace) -> int:
    from ordergate.send import send

    return send(args.signal, args.url, args.secret, args.timeout)


def _route_name(settings: Settings, given: str | None) -> str | None:
    """The journal's name for ``given`` (any case, or an alias); as given when no route has it."""
    if given is None:
        return None
    for name, route in settings.data["routes"].items():
        if given.upper() in (name.upper(), *(a.upper() for a in route["aliases"])):
            return str(name)
    return given


def _signals(args: argparse.Namespace) -> int:
    from ordergate.app import open_journal
    from ordergate.pipeline.text import unstorable
    from ordergate.tail import Tail, follow, line

    for name, given in (("--route", args.route), ("--status", args.status)):
        problem = unstorable(given) if given is not None else None
        if problem is not None:  # e.g. a non-UTF-8 argument, which Python spells with surrogates
            print(f"ordergate signals: {name} holds {problem}", file=sys.stderr)
            return 2
    if isinstance(sys.stdout, io.TextIOWrapper):  # a terminal that cannot show a character gets its escape
        sys.stdout.reconfigure(errors="backslashreplace")
    settings = load_settings(args.env, args.config_dir)
    journal = open_journal(settings)
    try:
        tail = Tail(journal, status=args.status, route=_route_name(settings, args.route))
        for entry in tail.latest(args.limit):
            print(line(entry), flush=True)
        if args.follow:
            with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how following ends
                follow(tail, sys.stdout)
    finally:
        journal.close()
    return 0


def _replay(args: argparse.Namespace) -> int:
    from ordergate.replay import Replay, UnreadableFile, read_items, render, without_rate_limits

    if not args.dry_run:
        print("ordergate replay: only dry runs are supported for now: add --dry-run", file=sys.stderr)
        return 2
    settings = load_settings(args.env, args.config_dir)
    if not args.rate_limit:  # a replay runs in seconds: per-minute limits would refuse most of it
        without_rate_limits(settings)
    try:
        items = read_items(args.file)
    except UnreadableFile as exc:
        print(f"ordergate replay: {exc}", file=sys.stderr)
        return 2
    replay = Replay(settings, as_sent=args.as_sent)
    when = "as sent" if args.as_sent else "as of now"
    print(
        f"Replaying {len(items):,} signals from {args.file} on paper brokers"
        f" (environment {settings.environment}, {when}; dry run: nothing journaled, nothing sent)",
        flush=True,
    )
    tally = replay.run(items, _progress(sys.stderr) if len(items) >= PROGRESS_EVERY else None)
    print(render(tally))
    return 0


PROGRESS_EVERY = 1000


def _progress(stream: TextIO) -> Callable[[int, int], None]:
    """A percentage line rewritten in place on a terminal; a plain line per 1,000 otherwise."""
    tty = stream.isatty()

    def report(done: int, total: int) -> None:
        if done % PROGRESS_EVERY and done != total:
            return
        if tty:
            end = "\n" if done == total else ""
            print(f"\r  {done:,}/{total:,} ({done * 100 // total}%)", end=end, file=stream, flush=True)
        elif done % PROGRESS_EVERY == 0:
            print(f"  replayed {done:,} of {total:,}", file=stream, flush=True)

    return report


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "check": _check,
    "serve": _serve,
    "send": _send,
    "signals": _signals,
    "replay": _replay,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ordergate", description="TradingView webhooks to broker orders.")
    parser.add_argument("--env", help="environment (default: $ORDERGATE_ENV or development)")
    parser.add_argument("--config-dir", help="configuration folder (default: ./config)")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the webhook on $PORT (default 8080)")
    serve.add_argument("--host", help="address to listen on (default from config: 0.0.0.0)")
    serve.add_argument("--port", type=int, help="port (default: $PORT, then 8080)")
    commands.add_parser("check", help="validate the configuration and print every route's chain")
    send = commands.add_parser("send", help="post a signal to a running ordergate and show its answer and trace")
    send.add_argument("signal", nargs="?", help="a JSON file, inline JSON, or - for stdin (the default)")
    send.add_argument("--url", help="the webhook (default: http://127.0.0.1:$PORT/webhook, PORT 8080)")
    send.add_argument("--secret", help="the passphrase to add when the signal has none (default: $WEBHOOK_SECRET)")
    send.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the answer (default 10)")
    signals = commands.add_parser("signals", help="the latest signals in the journal, oldest first")
    signals.add_argument("-f", "--follow", action="store_true", help="keep showing new signals until Ctrl-C")
    signals.add_argument("-n", "--limit", type=int, default=20, help="how many to show first (default 20)")
    signals.add_argument("--status", help="only this status: received, filled, open, rejected, error, ...")
    signals.add_argument("--route", help="only this route (any case, or an alias)")
    replay = commands.add_parser(
        "replay",
        help="run recorded signals through the chains on paper brokers",
        description="Run recorded signals (JSON Lines, or a JSON array) through the configured chains with a "
        "paper broker standing in for every real one. Signals are evaluated as of now: a route's max_age_s "
        "refuses recorded signals whose time is older (see --as-sent), market_hours judges the current time. "
        "Nothing is journaled and no notification is sent.",
    )
    replay.add_argument("file", help="the signals: one JSON payload per line, or a JSON array")
    replay.add_argument("--dry-run", action="store_true", help="required: simulate on paper, contact nothing")
    replay.add_argument("--as-sent", action="store_true", help="receive each signal at its own time field")
    replay.add_argument(
        "--rate-limit",
        action="store_true",
        help="keep max_orders_per_minute (counted in real time: a replay that runs in seconds meets it at once)",
    )
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ConfigError as exc:
        print(f"ordergate: configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
