"""``notional``: quantity x price must reach the minimum order value.

It also decides the prices every later check values the order at (``Signal.prices``): never
more favourable than the market's, whatever the signal's price says.
"""

from __future__ import annotations

import logging
from decimal import ROUND_UP, Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from ordergate.pipeline.errors import ORDER_TOO_SMALL, Rejection
from ordergate.pipeline.money import money, plain
from ordergate.pipeline.signal import CheckPrices, Order, Signal
from ordergate.pipeline.stage import RouteContext

if TYPE_CHECKING:
    from ordergate.brokers.base import Broker

log = logging.getLogger("ordergate")

_SYMBOLS = {"USDT": "$", "USDC": "$", "BUSD": "$", "USD": "$", "FDUSD": "$", "INR": "₹"}


def amount(value: Decimal, quote: str) -> str:
    """``$43,500`` for dollar-like quotes, ``₹1,500`` for rupees, ``0.5 BTC`` otherwise."""
    sign = _SYMBOLS.get(quote.upper())
    return f"{sign}{money(value)}" if sign else f"{money(value)} {quote}"


def percent(value: Decimal) -> str:
    """``25`` or ``1.25``, rounded away from zero so a distance over the tolerance never reads as equal to it."""
    return plain(value.quantize(Decimal(1) if value >= 10 else Decimal("0.01"), rounding=ROUND_UP))


def check_prices(order: Order, symbol: str, broker: Broker, tolerance_pct: Decimal) -> tuple[CheckPrices, str | None]:
    """The prices the checks value ``order`` (on the broker's ``symbol``) at, and a note for
    the trader when its price hint was ignored.

    The rule (``low`` decides "is it large enough", ``high`` "is it too large"):

    * MARKET: the market price ``M`` is the broker's recent price (ccxt: the all-symbols read
      refreshed in the background, else one ticker; paper: its table; FlatTrade: GetQuotes).
      A price hint (``{{close}}``) within ``tolerance_pct`` of ``M`` widens the pair to
      ``low = min(hint, M)``, ``high = max(hint, M)``; a hint further away (a stale or wrong
      ``{{close}}``) is ignored and said so in the answer's notes. The fill is near ``M`` either way.
      A broker that sends MARKET as a protected LIMIT (FlatTrade: last + 0.5 % for a buy) may
      fill anywhere up to that limit, so the pair widens to it too.
    * LIMIT buy at ``P``: ``low = high = P``. A buy never pays more than its limit, and a buy
      limit far above the market may spend all of ``P`` (Binance locks ``P x quantity``).
    * LIMIT sell at ``P``: ``low = P`` (the exchange checks its minimum at the limit price),
      ``high = max(P, M)``: a sell fills at ``P`` or better, so a sell limit far below the
      market (a "price": 1 sell) fills at the market and is valued there for the limits.
    """
    if order.type == "LIMIT" and order.price is not None:
        if order.side == "buy":
            return CheckPrices.at(order.price), None
        return CheckPrices(order.price, max(order.price, broker.price(symbol))), None
    market = broker.price(symbol)
    prices, note = _with_hint(order.price_hint, market, tolerance_pct)
    bound = broker.market_order_limit(symbol, order.side)
    if bound is not None:
        prices = CheckPrices(min(prices.low, bound), max(prices.high, bound))
    return prices, note


def _with_hint(hint: Decimal | None, market: Decimal, tolerance_pct: Decimal) -> tuple[CheckPrices, str | None]:
    """The market price, widened by a hint within the tolerance; a note when the hint is ignored."""
    if hint is None:
        return CheckPrices.at(market), None
    if market > 0 and hint > 0:
        distance = abs(hint - market) / market * 100
        if distance <= tolerance_pct:
            return CheckPrices(min(hint, market), max(hint, market)), None
        away = f"{percent(distance)}% away from"
    else:
        away = "not comparable with"
    note = (
        f"price hint {plain(hint)} ignored: {away} the market price {plain(market)} (tolerance {plain(tolerance_pct)}%)"
    )
    return CheckPrices.at(market), note


class NotionalCheck:
    """Refuse orders worth less than ``min`` (default 10, the seed's rule, in the quote asset)
    or than the market's own minimum, valued at ``low`` of :func:`check_prices`.

    ``price_tolerance_pct`` (default 1) is how far a MARKET order's price hint may be from the
    market price and still count. The prices are kept on the signal for ``limits`` and ``balance``.
    """

    options_schema: ClassVar[dict[str, Any]] = {
        "min": {"type": "decimal", "min": 0, "default": Decimal(10)},
        "price_tolerance_pct": {"type": "decimal", "min": 0, "max": 100, "default": Decimal(1)},
    }
    requires: ClassVar[tuple[str, ...]] = ("schema", "whitelist")

    def __init__(self, options: dict[str, Any], route: RouteContext) -> None:
        self.broker = route.broker
        self.min: Decimal = Decimal(options["min"])
        self.tolerance_pct: Decimal = Decimal(options["price_tolerance_pct"])

    def __call__(self, signal: Signal) -> Signal:
        order = signal.require_order()
        market = signal.require_market()
        prices, note = check_prices(order, market.symbol, self.broker, self.tolerance_pct)
        if note is not None:
            log.warning("Order %s: %s", order.client_order_id, note)
            signal = signal.note(note)
        notional = order.quantity * prices.low
        log.info("Current price: %s, Notional: %s", amount(prices.low, market.quote), amount(notional, market.quote))
        # Exchanges exempt reduce-only futures orders from their minimum, so a small position
        # can always be closed; the route's own minimum still applies.
        exempt = order.reduce_only and market.type == "future"
        if notional < (self.min if exempt else max(self.min, market.min_notional)):
            raise Rejection(ORDER_TOO_SMALL, code="below_min_notional", notes=(note,) if note else ())
        return signal.replace(prices=prices)
