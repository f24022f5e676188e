"""``execute``: place the order through the route's broker."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from ordergate.pipeline.money import plain
from ordergate.pipeline.signal import Signal
from ordergate.pipeline.stage import RouteContext

log = logging.getLogger("ordergate")


class OrderExecution:
    """Place the order exactly once, tagged with its client order id, and log the seed's lines."""

    options_schema: ClassVar[dict[str, Any]] = {}
    requires: ClassVar[tuple[str, ...]] = ("schema", "whitelist")
    unique: ClassVar[bool] = True

    def __init__(self, options: dict[str, Any], route: RouteContext) -> None:
        self.broker = route.broker

    def __call__(self, signal: Signal) -> Signal:
        order = signal.require_order()
        market = signal.require_market()
        log.info("Order params: %s", self.broker.order_params(order, market))
        placement = self.broker.place_order(order, market)
        log.info("✅ Order placed successfully: %s", placement.order_id)
        log.info("Status: %s, Executed: %s %s", placement.status, plain(placement.filled), market.base)
        return signal.replace(placement=placement)
