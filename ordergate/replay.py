"""``ordergate replay FILE --dry-run``: recorded signals through the configured chains, on paper.

Every route keeps its configured pipeline, but a route whose broker is not a paper broker gets
a paper stand-in built from the first paper broker of the same market type in the YAML
(futures -> ``paper_binance``, spot -> ``paper_binance_spot``, equities -> ``paper_nse``), so
no exchange is ever contacted. A stand-in for a real-money broker keeps the live guard:
where the real route would answer "Live trading is disabled", so does the replay.

What a dry run leaves out, on purpose: HTTP and authentication (passphrases in the file are
ignored), the journal (nothing is written), outcome observers (no notification is sent),
broker credentials and logins. What it keeps from the server: unknown brokers are refused
with the server's words, and a repeated signal ``id`` on a route runs once (the rest count as
``duplicate``); the time-window dedupe of id-less signals is not replayed.

Signals are evaluated as of now: each is received at the moment it is replayed, so a route
with ``max_age_s`` refuses recorded signals whose ``time`` is older than that, and
``market_hours`` judges the current time; ``--as-sent`` receives each signal at its own
``time`` instead. The ``limits`` stage counts orders per minute of real time, so a fast replay
meets ``max_orders_per_minute`` far sooner than the recorded signals did: the CLI lifts it
unless ``--rate-limit`` is given. Paper balances deplete as orders fill: it is a simulation of one account.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from ordergate.brokers import broker_money
from ordergate.brokers.base import Broker
from ordergate.brokers.paper import PaperBroker
from ordergate.compose import build_service
from ordergate.config import Settings
from ordergate.gateway import idempotency_key, new_signal_id, route_of
from ordergate.parse import parse_body, refuse_unstorable_text
from ordergate.pipeline.errors import ConfigError, Rejection
from ordergate.pipeline.runner import Runner, signal_time
from ordergate.pipeline.signal import Signal

STATUSES = ("filled", "open", "rejected", "error", "unknown", "duplicate", "invalid")
NO_ROUTE = "?"
SHOWN_INVALID = 5

# The market type of a non-paper adapter's account, when its options do not name one.
ADAPTER_MARKET = {"flattrade": "equity", "ccxt": "spot"}


@dataclass(frozen=True)
class Item:
    """One recorded signal: where it was in the file, and its payload or why it is unreadable."""

    where: str  # "line 12" or "item 12"
    payload: dict[str, Any] | None
    problem: str | None = None


@dataclass
class Tally:
    """What a replay counted."""

    counts: Counter[tuple[str, str]] = field(default_factory=Counter)  # (route, status) -> n
    reasons: Counter[tuple[str, str]] = field(default_factory=Counter)  # (reason, stage) -> n
    invalid: list[str] = field(default_factory=list)  # "line 3: Invalid JSON ..." (every one)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def add(self, route: str, status: str, reason: str | None = None, stage: str | None = None) -> None:
        self.counts[(route, status)] += 1
        if reason is not None and status != "invalid":
            self.reasons[(reason, stage or "-")] += 1


class UnreadableFile(Exception):
    """The signals file cannot be read at all (missing, not UTF-8, a broken JSON array)."""


def read_items(path: str) -> list[Item]:
    """JSON Lines (one payload per line, blank lines skipped), or one JSON array of payloads."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise UnreadableFile(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UnreadableFile(f"{path} is not UTF-8 text") from None
    if text.lstrip().startswith("["):
        return _array_items(text, path)
    items = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(Item(f"line {number}", parse_body(line.encode())))
        except Rejection as exc:
            items.append(Item(f"line {number}", None, exc.reason))
    return items


def _array_items(text: str, path: str) -> list[Item]:
    try:
        values = json.loads(text, parse_float=Decimal, parse_int=Decimal)
    except (json.JSONDecodeError, ValueError, RecursionError) as exc:
        raise UnreadableFile(f"{path}: not JSON Lines, and not a JSON array: {exc}") from None
    if not isinstance(values, list):
        raise UnreadableFile(f"{path}: expected a JSON array of signals")
    items = []
    for number, value in enumerate(values, start=1):
        try:
            if not isinstance(value, dict):
                raise Rejection("Invalid payload: expected a JSON object", kind="invalid")
            refuse_unstorable_text(value)  # as the webhook would: 400 invalid_text
            items.append(Item(f"item {number}", value))
        except Rejection as exc:
            items.append(Item(f"item {number}", None, exc.reason))
    return items


def _market_type(options: Mapping[str, Any]) -> str:
    given = options.get("market_type")
    return str(given) if given else ADAPTER_MARKET.get(str(options.get("adapter")), "spot")


def _is_live(name: str, options: Mapping[str, Any], file: str) -> bool:
    """Whether the real broker trades real money (as its adapter decides: where its orders go)."""
    return broker_money(name, dict(options), file=file) == "live"


def paper_stand_ins(settings: Settings) -> dict[str, Broker]:
    """A paper broker for every routed broker that is not one, keyed by the real broker's name."""
    brokers = settings.data["brokers"]
    papers: dict[str, str] = {}  # market type -> first paper broker of that type
    for name, options in brokers.items():
        if options.get("adapter") == "paper":
            papers.setdefault(str(options.get("market_type") or "spot"), name)
    stand_ins: dict[str, Broker] = {}
    for route_name, route in settings.data["routes"].items():
        name = route["broker"]
        options = brokers.get(name)
        if options is None or options.get("adapter") == "paper" or name in stand_ins:
            continue  # a missing broker is reported by build_service, naming the route
        kind = _market_type(options)
        paper = papers.get(kind)
        if paper is None:
            where = f"routes.{route_name}.broker"
            raise ConfigError(
                f"no paper broker with market_type {kind} to stand in for {name!r} in a replay",
                file=settings.origin(where),
                path=where,
            )
        file = settings.origin(f"brokers.{paper}")
        broker = PaperBroker.from_config(name, dict(brokers[paper]), config_dir=settings.config_dir, file=file)
        broker.label = f"paper for {name}"
        broker.live = _is_live(name, options, settings.origin(f"brokers.{name}"))  # keep the real route's guard
        stand_ins[name] = broker
    return stand_ins


def without_rate_limits(settings: Settings) -> None:
    """Lift ``max_orders_per_minute`` everywhere (the settings are changed in place)."""
    limits = settings.data["limits"]
    limits["max_orders_per_minute"] = None
    for own in limits["routes"].values():
        own["max_orders_per_minute"] = None


class Replay:
    """The configured chains on paper brokers, without observers; counts every outcome."""

    def __init__(self, settings: Settings, *, as_sent: bool = False) -> None:
        try:
            stand_ins = paper_stand_ins(settings)
        except ConfigError as error:
            raise settings.explain(error) from None
        service = build_service(settings, stand_ins)
        # No observers: a replay must not notify anyone of 10,000 simulated outcomes.
        self.runners = {n: Runner(r.route, r.stages) for n, r in service.runners.items()}
        self.service = service
        self.as_sent = as_sent
        self.seen: set[str] = set()

    def one(self, payload: Mapping[str, Any], tally: Tally) -> None:
        try:  # the gateway's routing, and its words for a signal that names no route
            runner = self.runners[route_of(self.service, payload).route.name]
        except Rejection as exc:
            tally.add(NO_ROUTE, "rejected", exc.reason)
            return
        name = runner.route.name
        key = idempotency_key(name, dict(payload))
        if key is not None:
            if key in self.seen:
                tally.add(name, "duplicate")
                return
            self.seen.add(key)
        received = time.time()
        if self.as_sent:
            received = signal_time(payload.get("time")) or received
        outcome = runner.run(Signal(id=new_signal_id(), route=name, payload=payload, received_at=received))
        tally.add(name, outcome.status, outcome.reason, outcome.failed_stage)

    def run(self, items: list[Item], progress: Callable[[int, int], None] | None = None) -> Tally:
        tally = Tally()
        started = time.perf_counter()
        with _quiet("ordergate"):
            for done, item in enumerate(items, start=1):
                if item.payload is None:
                    tally.add(NO_ROUTE, "invalid")
                    tally.invalid.append(f"{item.where}: {item.problem}")
                else:
                    self.one(item.payload, tally)
                if progress is not None:
                    progress(done, len(items))
        tally.seconds = time.perf_counter() - started
        return tally


@contextmanager
def _quiet(name: str) -> Iterator[None]:
    """Only errors from ``name`` while replaying: the per-signal INFO lines would drown the table."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def render(tally: Tally, *, top: int = 10) -> str:
    """The outcome table: routes x statuses, the top rejection reasons, invalid lines, speed."""
    routes = sorted({r for r, _ in tally.counts}, key=lambda r: (r == NO_ROUTE, r))
    statuses = [s for s in STATUSES if any(st == s for _, st in tally.counts)]
    header = ["route", *statuses, "total"]
    rows = [
        [route, *(f"{tally.counts[(route, s)]:,}" for s in statuses), f"{_route_total(tally, route):,}"]
        for route in routes
    ]
    rows.append(["total", *(f"{_status_total(tally, s):,}" for s in statuses), f"{tally.total:,}"])
    lines = _table(header, rows)
    if tally.reasons:
        lines += ["", f"Reasons (top {min(top, len(tally.reasons))} of {len(tally.reasons)}):"]
        width = max(len(f"{n:,}") for n in tally.reasons.values())
        for (reason, stage), n in tally.reasons.most_common(top):
            lines.append(f"  {n:>{width},}  {reason}  [{stage}]")
    if tally.invalid:
        shown = "; ".join(tally.invalid[:SHOWN_INVALID])
        more = f"; and {len(tally.invalid) - SHOWN_INVALID:,} more" if len(tally.invalid) > SHOWN_INVALID else ""
        lines += ["", f"Invalid: {len(tally.invalid):,} ({shown}{more})"]
    rate = tally.total / tally.seconds if tally.seconds > 0 else 0.0
    lines += ["", f"{tally.total:,} signals in {tally.seconds:.2f} s ({rate:,.0f} signals/s)"]
    return "\n".join(lines)


def _route_total(tally: Tally, route: str) -> int:
    return sum(n for (r, _), n in tally.counts.items() if r == route)


def _status_total(tally: Tally, status: str) -> int:
    return sum(n for (_, s), n in tally.counts.items() if s == status)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        return "  ".join([first, *(c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))]).rstrip()

    return [line(header), *(line(r) for r in rows)]
