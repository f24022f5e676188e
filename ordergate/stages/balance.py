"""``balance``: the account must hold enough to pay for the order."""

from __future__ import annotations

from typing import Any, ClassVar

from ordergate.pipeline.errors import INSUFFICIENT_BALANCE, Rejection
from ordergate.pipeline.funds import required_funds
from ordergate.pipeline.signal import Signal
from ordergate.pipeline.stage import RouteContext


class BalanceCheck:
    """Refuse with "Insufficient balance" when free balance or margin cannot cover the order.

    The order is valued at ``high`` of the prices ``notional`` set (see ``check_prices``
    there): never below the market price, so a low price hint cannot pass an order the
    account cannot pay for. ``enabled: false`` switches it off (an environment can do so
    under ``stages:``). Futures
    margin is counted as if the order opened a position, so it errs on the safe side for an
    order that reduces one; mark closing orders ``reduceOnly``.

    What passes is *reserved* (see ordergate.pipeline.reservations): the balance is read
    first, outside any lock (it may be a round trip), then the ledger decides under a short
    lock whether that balance, less what other signals in flight hold, covers the order. Two
    signals can never both pass on the same funds; the runner settles the reservation when
    the placement ends. An order that spends nothing (reduce-only futures) reserves nothing.
    """

    options_schema: ClassVar[dict[str, Any]] = {"enabled": {"type": "boolean", "default": True}}
    requires: ClassVar[tuple[str, ...]] = ("schema", "notional")

    def __init__(self, options: dict[str, Any], route: RouteContext) -> None:
        self.broker = route.broker
        self.reservations = route.reservations
        self.enabled: bool = options["enabled"]

    def __call__(self, signal: Signal) -> Signal:
        if not self.enabled:
            return signal
        order = signal.require_order()
        market = signal.require_market()
        prices = signal.prices
        assert prices is not None  # set by notional, which the registry puts first
        leverage = self.broker.leverage(market.symbol)
        asset, needed = required_funds(
            market,
            order.side,
            order.quantity,
            prices.high,
            leverage,
            reduce_only=order.reduce_only,
            product=order.product,
        )
        if needed <= 0:
            return signal
        asked = self.reservations.clock()  # when the read began: holds settled after it still count
        free = self.broker.free_balance(asset)
        if not self.reservations.reserve(self.broker.name, asset, needed, signal.id, free=free, asked=asked):
            raise Rejection(INSUFFICIENT_BALANCE, code="insufficient_balance")
        return signal
