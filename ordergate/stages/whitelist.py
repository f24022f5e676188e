"""``whitelist``: only symbols the route trades and the broker lists."""

from __future__ import annotations

from typing import Any, ClassVar

from ordergate.pipeline.errors import INVALID_SYMBOL, Rejection
from ordergate.pipeline.signal import Signal
from ordergate.pipeline.stage import RouteContext


class SymbolWhitelist:
    """Allow a symbol when its quote asset is allowed, it passes allow/deny, and it is listed.

    ``quote_assets`` defaults to the seed's USDT/USDC/BUSD; an empty list switches the quote
    rule off (equities). ``allow`` (if given) and ``deny`` are lists of symbols.
    """

    options_schema: ClassVar[dict[str, Any]] = {
        "quote_assets": {"type": "list", "schema": {"type": "string"}, "default": ["USDT", "USDC", "BUSD"]},
        "allow": {"type": "list", "schema": {"type": "string"}, "nullable": True, "default": None},
        "deny": {"type": "list", "schema": {"type": "string"}, "default": []},
    }
    requires: ClassVar[tuple[str, ...]] = ("schema",)

    def __init__(self, options: dict[str, Any], route: RouteContext) -> None:
        self.broker = route.broker
        self.quotes = tuple(q.upper() for q in options["quote_assets"])
        allow = options["allow"]
        self.allow = frozenset(s.upper() for s in allow) if allow is not None else None
        self.deny = frozenset(s.upper() for s in options["deny"])

    def __call__(self, signal: Signal) -> Signal:
        symbol = signal.require_order().symbol
        if self.quotes and not symbol.endswith(self.quotes):
            raise Rejection(INVALID_SYMBOL, code="quote_asset_not_allowed")
        market = self.broker.market(symbol)
        if market is None:
            raise Rejection(INVALID_SYMBOL, code="symbol_not_listed")
        if self.quotes and market.quote.upper() not in self.quotes:
            raise Rejection(INVALID_SYMBOL, code="quote_asset_not_allowed")
        names = {symbol, market.symbol}  # the signal may use the broker's own name (CIPLA-EQ)
        if names & self.deny or (self.allow is not None and not names & self.allow):
            raise Rejection(INVALID_SYMBOL, code="symbol_not_allowed")
        signal = signal.replace(market=market)
        return signal if symbol == market.symbol else signal.with_order(symbol=market.symbol)
