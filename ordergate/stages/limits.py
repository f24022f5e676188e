"""``limits``: the environment's hard limits for the route (max value per order, order rate)."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any, ClassVar

from ordergate.pipeline.errors import Rejection
from ordergate.pipeline.signal import Signal
from ordergate.pipeline.stage import RouteContext
from ordergate.stages.notional import amount


class EnvironmentLimits:
    """Apply ``limits:`` from the environment's YAML (per route overrides under ``routes``).

    ``max_notional`` values the order at ``high`` of the prices ``notional`` set (the higher of
    a MARKET order's hint and the market price; a LIMIT buy's own price; the higher of a LIMIT
    sell's price and the market's): a wrong or stale price hint can only make it stricter.
    The rate counts the signals that passed this stage in the last 60 seconds on this route.
    """

    options_schema: ClassVar[dict[str, Any]] = {}
    requires: ClassVar[tuple[str, ...]] = ("schema", "notional")

    def __init__(self, options: dict[str, Any], route: RouteContext) -> None:
        self.route = route.name
        self.max_notional = route.limits.max_notional
        self.per_minute = route.limits.max_orders_per_minute
        self._recent: deque[float] = deque()
        self._lock = threading.Lock()

    def __call__(self, signal: Signal) -> Signal:
        order = signal.require_order()
        market = signal.require_market()
        prices = signal.prices
        assert prices is not None  # set by notional, which the registry puts first
        if self.max_notional is not None and order.quantity * prices.high > self.max_notional:
            limit = amount(self.max_notional, market.quote)
            raise Rejection(f"Order exceeds the limit of {limit} per order on {self.route}", code="max_notional")
        if self.per_minute is not None:
            now = time.monotonic()
            with self._lock:
                while self._recent and now - self._recent[0] >= 60:
                    self._recent.popleft()
                if len(self._recent) >= self.per_minute:
                    raise Rejection(
                        f"Too many orders: the limit is {self.per_minute} per minute on {self.route}",
                        kind="rate_limited",
                        code="rate_limited",
                    )
                self._recent.append(now)
        return signal
