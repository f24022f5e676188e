"""``notional``: quantity x price must reach the minimum order value."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any, ClassVar

from ordergate.pipeline.errors import ORDER_TOO_SMALL, Rejection
from ordergate.pipeline.money import money
from ordergate.pipeline.signal import Signal
from ordergate.pipeline.stage import RouteContext

log = logging.getLogger("ordergate")

_SYMBOLS = {"USDT": "$", "USDC": "$", "BUSD": "$", "USD": "$", "FDUSD": "$", "INR": "₹"}


def amount(value: Decimal, quote: str) -> str:
    """``$43,500`` for dollar-like quotes, ``₹1,500`` for rupees, ``0.5 BTC`` otherwise."""
    sign = _SYMBOLS.get(quote.upper())
    return f"{sign}{money(value)}" if sign else f"{money(value)} {quote}"


class NotionalCheck:
    """Refuse orders worth less than ``min`` (default 10, the seed's rule, in the quote asset)
    or than the market's own minimum. The price is the limit price, else the market order's
    price hint, else the broker's current price; it is kept on the signal for later stages."""

    options_schema: ClassVar[dict[str, Any]] = {"min": {"type": "decimal", "min": 0, "default": Decimal(10)}}
    requires: ClassVar[tuple[str, ...]] = ("schema", "whitelist")

    def __init__(self, options: dict[str, Any], route: RouteContext) -> None:
        self.broker = route.broker
        self.min: Decimal = Decimal(options["min"])

    def __call__(self, signal: Signal) -> Signal:
        order = signal.require_order()
        market = signal.require_market()
        # A limit price, else the signal's price hint ({{close}}), else the broker's price.
        price = order.price or order.price_hint or self.broker.price(market.symbol)
        notional = order.quantity * price
        log.info("Current price: %s, Notional: %s", amount(price, market.quote), amount(notional, market.quote))
        # Exchanges exempt reduce-only futures orders from their minimum, so a small position
        # can always be closed; the route's own minimum still applies.
        exempt = order.reduce_only and market.type == "future"
        if notional < (self.min if exempt else max(self.min, market.min_notional)):
            raise Rejection(ORDER_TOO_SMALL, code="below_min_notional")
        return signal.replace(reference_price=price)
