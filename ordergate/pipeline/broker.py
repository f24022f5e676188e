"""The broker contract every adapter implements: what the pipeline asks of one account."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

from ordergate.pipeline.errors import BrokerError
from ordergate.pipeline.signal import Market, MarketType, Order, Placement


@runtime_checkable
class Broker(Protocol):
    """A narrow adapter between ordergate and one account at one broker.

    Every method may raise :class:`~ordergate.pipeline.errors.BrokerError` subclasses and
    :class:`~ordergate.pipeline.errors.Rejection` (the broker refused the order with a reason
    the trader should read) and nothing else: adapters translate their library's errors in one
    place. Amounts are ``Decimal`` in and out.
    """

    name: str  # the key under ``brokers:`` in the YAML
    label: str  # for people: "paper", "Binance testnet"
    market_type: MarketType  # spot, future or equity
    live: bool  # trades real money: only with ORDERGATE_ENV=live and LIVE_TRADING=yes
    missing_credentials: bool  # keys are needed and not configured: nothing can be placed

    def session_error(self) -> BrokerError | None:
        """Why no order can be placed now although keys are set (an expired daily login), or None."""
        ...

    def market(self, symbol: str) -> Market | None:
        """The market's rules, or None when the broker does not list ``symbol``."""
        ...

    def price(self, symbol: str) -> Decimal:
        """The current price of ``symbol`` in its quote asset."""
        ...

    def free_balance(self, asset: str) -> Decimal:
        """What can be spent now: free quote/base balance (spot) or free margin (futures)."""
        ...

    def leverage(self, symbol: str) -> Decimal:
        """The leverage orders on ``symbol`` use (1 for spot and cash equities)."""
        ...

    def order_params(self, order: Order, market: Market) -> dict[str, Any]:
        """The parameters ``place_order`` will send, as the broker names them (for the log)."""
        ...

    def place_order(self, order: Order, market: Market) -> Placement:
        """Place ``order`` exactly once, tagged with ``order.client_order_id``."""
        ...

    def find_order(self, client_order_id: str, symbol: str) -> Placement | None:
        """Look an order up by its client order id; None when the broker has no such order."""
        ...

    def market_order_limit(self, symbol: str, side: str) -> Decimal | None:
        """The limit a MARKET order on ``symbol`` is sent with, when the broker sends MARKET as a
        protected LIMIT (FlatTrade); None when it is sent as a MARKET order. The checks value a
        MARKET order at this price too: it is what the order may spend."""
        ...

    def forget_balance(self) -> None:
        """Drop any cached balance: an order settled outside a placement (or may have) moved it."""
        ...
