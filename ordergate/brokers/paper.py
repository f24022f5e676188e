"""The paper broker: a simulated account on real market rules, the embedded default.

Markets come from a real exchange snapshot (``config/markets/``), prices from a table in the
YAML. Market orders fill at the table price; limit orders fill at the table price when
marketable and rest otherwise. ``market_type: future`` simulates a USD-M futures account in
one-way mode (a sell opens or extends a short; margin = notional / leverage; closing releases
margin and books the realised PnL); ``spot`` and ``equity`` move cash and holdings.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from ordergate.brokers.base import binance_params, load_markets
from ordergate.brokers.endpoints import Money
from ordergate.config import validate
from ordergate.pipeline.errors import INSUFFICIENT_BALANCE, BrokerError, ConfigError, Rejection
from ordergate.pipeline.funds import required_funds
from ordergate.pipeline.money import ZERO
from ordergate.pipeline.signal import Market, MarketType, Order, Placement

OPTIONS_SCHEMA: dict[str, Any] = {
    "adapter": {"type": "string", "allowed": ["paper"]},
    "label": {"type": "string", "default": "paper"},
    "market_type": {"type": "string", "allowed": ["spot", "future", "equity"], "default": "spot"},
    # one market file, or one per market type ({spot: ..., future: ...}): the file that follows
    # market_type, so ${BINANCE_MARKET_TYPE} switches rules and account together
    "markets": {
        "type": ["string", "dict"],
        "required": True,
        "keysrules": {"type": "string", "allowed": ["spot", "future", "equity"]},
        "valuesrules": {"type": "string"},
    },
    "leverage": {"type": "decimal", "min": 1, "max": 125, "default": 1},
    "balances": {"type": "dict", "valuesrules": {"type": "decimal", "min": 0}, "default": {}},
    "prices": {"type": "dict", "valuesrules": {"type": "decimal", "min": 0}, "default": {}},
}


@dataclass
class _Position:
    quantity: Decimal = ZERO  # signed: > 0 long, < 0 short
    entry: Decimal = ZERO


class PaperBroker:
    """A thread-safe simulated account; see the module docstring for its semantics."""

    def __init__(
        self,
        name: str,
        *,
        markets: dict[str, Market],
        prices: dict[str, Decimal],
        balances: dict[str, Decimal],
        market_type: MarketType = "spot",
        leverage: Decimal = Decimal(1),
        label: str = "paper",
    ) -> None:
        self.name = name
        self.label = label
        self.market_type = market_type
        self.live = False  # simulated money
        self.money: Money = "paper"
        self.missing_credentials = False
        self._markets = markets
        self._prices = {k.upper(): Decimal(v) for k, v in prices.items()}
        self._balances = {k.upper(): Decimal(v) for k, v in balances.items()}
        self._leverage = Decimal(leverage)
        self._aliases = {m.broker_symbol.upper(): m for m in markets.values() if m.broker_symbol}
        self._positions: dict[str, _Position] = {}
        self._orders: dict[str, Placement] = {}
        self._reserved: dict[str, tuple[str, Decimal]] = {}  # client order id -> (asset, held by a resting order)
        self._ids = itertools.count(int(time.time() * 1000))
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, name: str, options: dict[str, Any], *, config_dir: Path, file: str) -> PaperBroker:
        opts = validate(options, OPTIONS_SCHEMA, file=file, path=f"brokers.{name}")
        market_type: MarketType = opts["market_type"]
        markets_file = opts["markets"]
        if isinstance(markets_file, dict):
            if market_type not in markets_file:
                given = ", ".join(markets_file) or "none"
                raise ConfigError(
                    f"no market file for market_type {market_type} (given: {given})",
                    file=file,
                    path=f"brokers.{name}.markets",
                )
            markets_file = markets_file[market_type]
        markets = load_markets((config_dir / markets_file).resolve(), market_type)
        return cls(
            name,
            markets=markets,
            prices=opts["prices"],
            balances=opts["balances"],
            market_type=market_type,
            leverage=opts["leverage"],
            label=opts["label"],
        )

    # -- reads ----------------------------------------------------------------------------------

    def session_error(self) -> BrokerError | None:
        return None  # nothing to log in to

    def market(self, symbol: str) -> Market | None:
        return self._markets.get(symbol) or self._aliases.get(symbol)

    def price(self, symbol: str) -> Decimal:
        price = self._prices.get(symbol)
        if price is None:
            raise Rejection(f"No paper price for {symbol}: add it under the broker's prices", code="no_price")
        return price

    def leverage(self, symbol: str) -> Decimal:
        return self._leverage if self.market_type == "future" else Decimal(1)

    def free_balance(self, asset: str) -> Decimal:
        with self._lock:
            return self._free(asset.upper())

    def find_order(self, client_order_id: str, symbol: str) -> Placement | None:
        with self._lock:
            return self._orders.get(client_order_id)

    def market_order_limit(self, symbol: str, side: str) -> Decimal | None:
        return None  # a MARKET order is filled at the market price

    def forget_balance(self) -> None:
        """Nothing is cached: the paper account is its own record."""

    def order_params(self, order: Order, market: Market) -> dict[str, Any]:
        return binance_params(order, market.broker_symbol or market.symbol)

    def placements(self) -> list[Placement]:
        """Every order this paper account has accepted, oldest first."""
        with self._lock:
            return list(self._orders.values())

    def set_price(self, symbol: str, price: Decimal) -> None:
        """Move the paper price of ``symbol`` (the YAML table is only where prices start)."""
        if not price.is_finite() or price <= 0:
            raise ValueError(f"price must be a positive number, not {price}")
        with self._lock:
            self._prices[symbol.upper()] = price

    def position(self, symbol: str) -> Decimal:
        """The signed futures position in ``symbol`` (0 when flat)."""
        with self._lock:
            return self._positions.get(symbol, _Position()).quantity

    # -- placement --------------------------------------------------------------------------

    def place_order(self, order: Order, market: Market) -> Placement:
        last = self.price(market.symbol)
        with self._lock:
            previous = self._orders.get(order.client_order_id)
            if previous is not None and previous.status == "NEW":
                # Binance keeps client order ids unique among open orders (-2010).
                raise Rejection("Duplicate order sent.", code="duplicate_client_order_id")
            marketable = (
                order.price is None
                or (order.side == "buy" and order.price >= last)
                or (order.side == "sell" and order.price <= last)
            )
            fill_price = last if marketable else order.price
            assert fill_price is not None
            asset, needed, credit = self._requirement(order, market, fill_price)
            if needed > self._free(asset) + credit:
                raise Rejection(INSUFFICIENT_BALANCE, code="insufficient_balance")
            if marketable:
                self._fill(order, market, fill_price)
                status, filled, average = "FILLED", order.quantity, fill_price
            else:
                self._reserved[order.client_order_id] = (asset, needed)
                status, filled, average = "NEW", ZERO, None
            placement = Placement(
                order_id=next(self._ids),
                client_order_id=order.client_order_id,
                status=status,
                symbol=market.symbol,
                side=order.side,
                type=order.type,
                quantity=order.quantity,
                filled=filled,
                average_price=average,
                price=order.price,
                base=market.base,
                broker=self.name,
            )
            self._orders[order.client_order_id] = placement
            return placement

    # -- account arithmetic (callers hold the lock) -------------------------------------------

    def _free(self, asset: str) -> Decimal:
        free = self._balances.get(asset, ZERO)
        if self.market_type == "future":
            for symbol, position in self._positions.items():
                if self._markets[symbol].quote == asset:
                    free -= abs(position.quantity) * position.entry / self._leverage
        return free - sum((held for a, held in self._reserved.values() if a == asset), ZERO)

    def _requirement(self, order: Order, market: Market, price: Decimal) -> tuple[str, Decimal, Decimal]:
        """``(asset, needed, credit)``: what the order spends (:func:`required_funds`), and what
        closing frees first.

        Futures: only the part that opens or extends a position needs margin; the part that
        closes one releases its margin and books its PnL (a reversal needs only the margin of
        the new position). A reduce-only order that would not only reduce is refused, as
        Binance does (-2022). Spot and equity: a cash account, a sell spends what it sells
        whatever its product (the paper account does not simulate intraday shorts).
        """
        if self.market_type != "future":
            asset, needed = required_funds(market, order.side, order.quantity, price, self._leverage)
            return asset, needed, ZERO
        position = self._positions.get(market.symbol, _Position())
        signed = order.quantity if order.side == "buy" else -order.quantity
        closing = min(order.quantity, abs(position.quantity)) if position.quantity * signed < 0 else ZERO
        if order.reduce_only and closing < order.quantity:
            raise Rejection("ReduceOnly Order is rejected.", code="reduce_only_rejected")
        direction = 1 if position.quantity > 0 else -1
        credit = closing * position.entry / self._leverage + closing * (price - position.entry) * direction
        asset, needed = required_funds(market, order.side, order.quantity - closing, price, self._leverage)
        return asset, needed, credit

    def _fill(self, order: Order, market: Market, price: Decimal) -> None:
        if self.market_type != "future":
            cost = order.quantity * price
            sign = 1 if order.side == "buy" else -1
            self._balances[market.quote] = self._balances.get(market.quote, ZERO) - sign * cost
            self._balances[market.base] = self._balances.get(market.base, ZERO) + sign * order.quantity
            return
        position = self._positions.setdefault(market.symbol, _Position())
        signed = order.quantity if order.side == "buy" else -order.quantity
        if position.quantity * signed >= 0:  # opening or extending
            total = position.quantity + signed
            position.entry = (abs(position.quantity) * position.entry + order.quantity * price) / abs(total)
            position.quantity = total
            return
        closing = min(abs(signed), abs(position.quantity))
        direction = 1 if position.quantity > 0 else -1
        pnl = closing * (price - position.entry) * direction
        self._balances[market.quote] = self._balances.get(market.quote, ZERO) + pnl
        position.quantity += signed
        if position.quantity == 0:
            position.entry = ZERO
        elif position.quantity * signed > 0:  # flipped: the rest opened a new position at price
            position.entry = price
