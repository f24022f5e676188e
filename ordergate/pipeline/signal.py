"""The values that flow through a pipeline: the signal in flight, its order, its market."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from ordergate.pipeline.money import plain

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


def normalize_symbol(raw: str) -> str:
    """``binance:btcusdt`` / ``BTCUSDT.P`` / ``BTC/USDT:USDT`` / `` btcusdt `` -> ``BTCUSDT``."""
    symbol = raw.strip().upper()
    if "/" in symbol:  # ccxt unified: BASE/QUOTE[:SETTLE]
        symbol = symbol.split(":", 1)[0].replace("/", "")
    elif ":" in symbol:  # TradingView {{exchange}}:{{ticker}}
        symbol = symbol.rsplit(":", 1)[1]
    if symbol.endswith(".P"):  # TradingView's perpetual suffix
        symbol = symbol[:-2]
    return symbol


MAX_ID = 200  # characters of an id kept as written; a longer one is kept as its digest


def given_id(payload: Mapping[str, Any]) -> str | None:
    """The signal's own ``id`` (``{{strategy.order.id}}-{{timenow}}``), if it carries a usable one.

    One id, one text, wherever it is read: a numeric id is written plainly (``1.50`` and the
    journal's ``"1.5"`` are the same id, so recovery derives the same client order id), and an
    id too long to keep whole becomes its SHA-256, so two ids differing after character 200
    stay two signals.
    """
    given = payload.get("id")
    if isinstance(given, Decimal):
        text = plain(given)
    elif isinstance(given, str):
        text = given.strip()
    else:
        return None
    if not text:
        return None
    if len(text) > MAX_ID:
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    return text


def client_order_id(route: str, payload: Mapping[str, Any], signal_id: str) -> str:
    """The order's client id: stable for a signal that carries an ``id`` (so a re-sent alert
    maps to the same order), else unique per request. ``og-`` + hex, 27 characters at most:
    within Binance's ``^[a-zA-Z0-9-_]{1,36}$``."""
    given = given_id(payload)
    if given is None:
        return f"og-{signal_id}"
    return "og-" + hashlib.sha256(f"{route}\x00{given}".encode()).hexdigest()[:24]
