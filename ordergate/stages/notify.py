"""``notify``: an outcome observer; one readable line per outcome (chat targets come later)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, ClassVar

from ordergate.pipeline.money import money, plain
from ordergate.pipeline.stage import RouteContext

if TYPE_CHECKING:
    from ordergate.pipeline.runner import Outcome

log = logging.getLogger("ordergate.notify")

OUTCOMES = ["filled", "open", "rejected", "error", "unknown"]


def message(outcome: Outcome) -> str:
    """``BUY 0.001 BTCUSDT filled @ 43,500 — BINANCE (paper)`` and friends."""
    where = f"{outcome.route.name} ({outcome.route.broker.label})"
    order = outcome.signal.order
    what = f"{order.side.upper()} {plain(order.quantity)} {order.symbol}" if order else "signal"
    placement = outcome.placement
    if placement is not None:
        if placement.average_price is not None:
            return f"{what} {outcome.status} @ {money(placement.average_price)} — {where}"
        at = f" @ {money(placement.price)}" if placement.price is not None else ""
        return f"{what} {outcome.status}{at} (order {placement.order_id}) — {where}"
    stage = f" at {outcome.failed_stage}" if outcome.failed_stage else ""
    return f"{what} {outcome.status}{stage}: {outcome.reason} — {where}"


class OutcomeNotifier:
    """Log every outcome of the chosen kinds (default: all) as one line."""

    options_schema: ClassVar[dict[str, Any]] = {
        "outcomes": {"type": "list", "allowed": OUTCOMES, "default": list(OUTCOMES)},
    }
    requires: ClassVar[tuple[str, ...]] = ()
    observer: ClassVar[bool] = True

    def __init__(self, options: dict[str, Any], route: RouteContext) -> None:
        self.outcomes = frozenset(options["outcomes"])

    def observe(self, outcome: Outcome) -> None:
        if outcome.status in self.outcomes:
            level = logging.INFO if outcome.placement is not None or outcome.status == "rejected" else logging.WARNING
            log.log(level, "%s", message(outcome))
