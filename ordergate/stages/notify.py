"""``notify``: an outcome observer; one readable line per outcome in the log, and to chat targets.

Targets are apprise URLs (Telegram, Discord, Slack, e-mail, ``json://host/path``...), each with
the outcomes it receives::

    - notify:
        targets:
          - urls: "${NOTIFY_URLS:-}"        # comma-separated, or a list; empty = no target
            on: [filled, open, rejected, error, unknown]   # the default: every outcome
            attempts: 3                     # per target, exponential backoff from backoff_s
            backoff_s: 1

Sending happens off the request path (see :mod:`ordergate.notifications`): ``observe`` only
queues, so a slow or down receiver can neither delay nor change an answer.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, ClassVar

from ordergate.notifications import Level, Notice, NotificationDispatcher, build_targets, check_urls, dispatcher
from ordergate.pipeline.money import money, plain
from ordergate.pipeline.stage import RouteContext

if TYPE_CHECKING:
    from ordergate.pipeline.runner import Outcome

log = logging.getLogger("ordergate.notify")

OUTCOMES = ["filled", "open", "rejected", "error", "unknown"]
LEVELS: dict[str, Level] = {
    "filled": "success",
    "open": "info",
    "rejected": "warning",
    "error": "failure",
    "unknown": "failure",
}

TARGET_SCHEMA: dict[Any, Any] = {
    "urls": {
        "type": ["string", "list"],
        "nullable": True,  # an unquoted "${NOTIFY_URLS:-}" that is empty reads as null
        "required": True,
        "schema": {"type": "string"},
        "check_with": check_urls,  # a URL apprise cannot use fails at startup, naming only its scheme
    },
    # YAML 1.1 reads a bare `on` key as the boolean true (as GitHub Actions users know): take it back.
    True: {"rename": "on"},
    "on": {"type": "list", "allowed": OUTCOMES, "default": list(OUTCOMES)},
    "attempts": {"type": "integer", "min": 1, "max": 10, "default": 3},
    "backoff_s": {"type": ["integer", "decimal"], "min": 0, "max": 60, "default": 1},
}


def where(outcome: Outcome) -> str:
    """``BINANCE (paper)``, as the log lines say it."""
    return f"{outcome.route.name} ({outcome.route.broker.label})"


def message(outcome: Outcome) -> str:
    """``BUY 0.001 BTCUSDT filled @ 43,500 — BINANCE (paper)`` and friends: the log line."""
    order = outcome.signal.order
    what = f"{order.side.upper()} {plain(order.quantity)} {order.symbol}" if order else "signal"
    placement = outcome.placement
    if placement is not None and outcome.rejection is None:
        if placement.average_price is not None:
            return f"{what} {outcome.status} @ {money(placement.average_price)} — {where(outcome)}"
        at = f" @ {money(placement.price)}" if placement.price is not None else ""
        return f"{what} {outcome.status}{at} (order {placement.order_id}) — {where(outcome)}"
    stage = f" at {outcome.failed_stage}" if outcome.failed_stage else ""
    return f"{what} {outcome.status}{stage}: {outcome.reason} — {where(outcome)}"


def notice(outcome: Outcome) -> Notice:
    """What a chat target receives: a title, ``ordergate: BINANCE filled``, and one line,
    ``BUY 0.001 BTCUSDT filled @ 43,500 — BINANCE development (paper)`` or
    ``BUY 10 BTCUSDT rejected: Insufficient balance (balance) — BINANCE development (paper)``."""
    route = outcome.route
    at = f"{route.name} {route.environment} ({route.broker.label})"
    placement = outcome.placement
    if placement is not None and outcome.rejection is None:
        partial = placement.status == "PARTIALLY_FILLED"
        amount = f"{plain(placement.filled)} of {plain(placement.quantity)}" if partial else plain(placement.quantity)
        what = f"{placement.side.upper()} {amount} {placement.symbol}"
        status = "partially filled" if partial else outcome.status
        if placement.average_price is not None:
            body = f"{what} {status} @ {money(placement.average_price)} — {at}"
        else:
            price = f" @ {money(placement.price)}" if placement.price is not None else ""
            body = f"{what} {status}{price} (order {placement.order_id}) — {at}"
    else:
        order = outcome.signal.order
        what = f"{order.side.upper()} {plain(order.quantity)} {order.symbol}" if order else "signal"
        stage = f" ({outcome.failed_stage})" if outcome.failed_stage else ""
        look_up = ""
        if outcome.status == "unknown" and order is not None:
            look_up = f"; client order id {order.client_order_id}"
        body = f"{what} {outcome.status}: {outcome.reason}{stage}{look_up} — {at}"
    return Notice(
        title=f"ordergate: {route.name} {outcome.status}",
        body=body,
        level=LEVELS[outcome.status],
        signal_id=outcome.signal.id,
    )


class OutcomeNotifier:
    """Log every outcome of the chosen kinds (default: all) as one line; queue it for each target
    that wants it."""

    options_schema: ClassVar[dict[str, Any]] = {
        "outcomes": {"type": "list", "allowed": OUTCOMES, "default": list(OUTCOMES)},
        "targets": {"type": "list", "default": [], "schema": {"type": "dict", "schema": TARGET_SCHEMA}},
    }
    requires: ClassVar[tuple[str, ...]] = ()
    observer: ClassVar[bool] = True

    def __init__(self, options: dict[str, Any], route: RouteContext) -> None:
        self.outcomes = frozenset(options["outcomes"])
        self.targets = build_targets(options["targets"])
        self.dispatcher: NotificationDispatcher = dispatcher()

    def observe(self, outcome: Outcome) -> None:
        if outcome.status in self.outcomes:
            level = logging.INFO if outcome.placement is not None or outcome.status == "rejected" else logging.WARNING
            log.log(level, "%s", message(outcome))
        wanted = [t for t in self.targets if outcome.status in t.outcomes]
        if wanted:
            self.dispatcher.submit(wanted, notice(outcome))
