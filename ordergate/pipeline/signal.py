"""The values that flow through a pipeline: the signal in flight, its order, its market."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

Side = Literal["buy", "sell"]
OrderType = Literal["MARKET", "LIMIT"]
MarketType = Literal["spot", "future", "equity"]


@dataclass(frozen=True)
class Market:
    """A tradable instrument's rules, as the broker publishes them."""

    symbol: str
    base: str
    quote: str
    type: MarketType = "spot"
    tick_size: Decimal = Decimal(0)
    step_size: Decimal = Decimal(0)
    min_qty: Decimal = Decimal(0)
    max_qty: Decimal = Decimal(0)
    min_notional: Decimal = Decimal(0)
    broker_symbol: str = ""  # the broker's own name, e.g. FlatTrade's "CIPLA-EQ"


@dataclass(frozen=True)
class Order:
    """What the trader asked for, typed and normalised by the ``schema`` stage."""

    symbol: str
    side: Side
    type: OrderType
    quantity: Decimal
    price: Decimal | None = None  # the limit price; None for market orders
    price_hint: Decimal | None = None  # a market order's "price" ({{close}}): for checks, never a limit
    reduce_only: bool = False
    client_order_id: str = ""
    product: str | None = None  # equities: CNC (delivery), MIS (intraday) or NRML; None = the broker's default

    def describe(self) -> str:
        """``BUY BTCUSDT 0.001 @ MARKET`` / ``SELL ETHUSDT 0.1 @ 2500``, the seed's log shape."""
        at = self.type if self.price is None else format(self.price.normalize(), "f")
        return f"{self.side.upper()} {self.symbol} {format(self.quantity.normalize(), 'f')} @ {at}"


@dataclass(frozen=True)
class CheckPrices:
    """The prices the checks value an order at, never more favourable than the market's.

    Each check takes the side that is conservative for its question: ``low`` for "is it large
    enough" (the minimum notional), ``high`` for "is it too large" (``max_notional``, the
    balance). ``stages/notional.py`` sets them and documents the rule.
    """

    low: Decimal
    high: Decimal

    @classmethod
    def at(cls, price: Decimal) -> CheckPrices:
        """One price for every check."""
        return cls(price, price)


@dataclass(frozen=True)
class Signal:
    """One webhook request in flight. Stages return a changed copy, never mutate.

    ``payload`` is the parsed JSON body with numbers as ``Decimal``. ``order`` is set by the
    ``schema`` stage, ``market`` by ``whitelist``, ``prices`` by ``notional`` (what the checks
    value the order at, reused by ``limits`` and ``balance``), ``placement`` by ``execute``.
    """

    id: str
    route: str
    payload: Mapping[str, Any]
    received_at: float
    order: Order | None = None
    market: Market | None = None
    prices: CheckPrices | None = None
    placement: Placement | None = None
    notes: tuple[str, ...] = field(default=())

    def replace(self, **changes: Any) -> Signal:
        return dataclasses.replace(self, **changes)

    def with_order(self, **changes: Any) -> Signal:
        """A copy whose order has ``changes`` applied."""
        return dataclasses.replace(self, order=dataclasses.replace(self.require_order(), **changes))

    def note(self, text: str) -> Signal:
        """A copy with one more human note (e.g. 'quantity truncated to step 0.00001')."""
        return dataclasses.replace(self, notes=(*self.notes, text))

    def require_order(self) -> Order:
        if self.order is None:  # the registry rejects chains where this can happen
            raise RuntimeError("stage needs the schema stage before it")
        return self.order

    def require_market(self) -> Market:
        if self.market is None:
            raise RuntimeError("stage needs the whitelist stage before it")
        return self.market


@dataclass(frozen=True)
class Placement:
    """The broker's answer to a placed order."""

    order_id: str | int
    client_order_id: str
    status: str  # FILLED, PARTIALLY_FILLED, NEW (resting), REJECTED ...
    symbol: str
    side: Side
    type: OrderType
    quantity: Decimal
    filled: Decimal
    average_price: Decimal | None
    price: Decimal | None = None
    base: str = ""
    broker: str = ""
    notes: tuple[str, ...] = ()  # what the broker changed, e.g. a MARKET order sent as a protected LIMIT
