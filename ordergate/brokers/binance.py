"""Binance's dialect for the ccxt adapter: what Binance says on the wire, read in one place.

:mod:`ordergate.brokers.ccxt` drives any ccxt exchange through ccxt's unified calls; where
Binance answers with its own fields (exchangeInfo filters, ``executedQty``, ``availableBalance``)
or its own error codes (``{"code":-2019,"msg":"Margin is insufficient."}``), the adapter asks
this module. Every reader falls back to ccxt's unified view, so other exchanges pass through.
Nothing here makes a request or imports ccxt.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

from ordergate.pipeline.errors import (
    INSUFFICIENT_BALANCE,
    INVALID_PRECISION,
    INVALID_SYMBOL,
    ORDER_TOO_SMALL,
    BrokerAuthError,
    BrokerUnavailable,
    OrdergateError,
    OrderOutcomeUnknown,
    Rejection,
)
from ordergate.pipeline.money import ZERO, wire_decimal
from ordergate.pipeline.signal import Market, MarketType, Placement

# -- error bodies and codes ---------------------------------------------------------------------

_BINANCE = re.compile(r'\{\s*"code"\s*:\s*(-?\d+)\s*,\s*"msg"\s*:\s*"((?:[^"\\]|\\.)*)"')
_TOO_SMALL = ("NOTIONAL", "MIN_NOTIONAL", "-4164", "notional must be no smaller")
_PRECISION = ("LOT_SIZE", "MARKET_LOT_SIZE", "too much precision", "precision is over the maximum")

CLOCK_SKEW = -1021  # "Timestamp for this request is outside of the recvWindow."
ABSENT = -2013  # "Order does not exist." (spot and USD-M): the one proof an order is absent


def exchange_reason(exc: BaseException) -> tuple[int | None, str]:
    """The exchange's own code and message from a ccxt error (``binance {"code":-1013,...}``)."""
    text = str(exc)
    found = _BINANCE.search(text)
    if found:
        try:
            message = json.loads(f'"{found.group(2)}"')
        except ValueError:
            message = found.group(2)
        return int(found.group(1)), str(message)
    # ccxt prefixes messages with the exchange id; keep one short line, nothing more
    return None, text.split("\n", 1)[0][:160]


# Binance's own codes decide first: ccxt applies its per-market code tables only for Binance's
# real hosts, so behind ``api_url`` (a proxy, a compatible test exchange) e.g. -2019 would
# otherwise arrive as a bare ExchangeError.
_AUTH_CODES = {-1002, -1022, -2014, -2015}
_BEFORE_EXECUTION = {-1003: "rate limit reached", -1008: "is overloaded", -1015: "rate limit reached"}


def error_of(code: int, message: str, name: str, exchange: str, placing: bool) -> OrdergateError | None:
    """ordergate's error for Binance's ``code``, or None when the code alone does not decide."""
    lowered = message.lower()
    if code in (-2018, -2019) or (code == -2010 and "insufficient" in lowered):
        return Rejection(INSUFFICIENT_BALANCE, code="insufficient_balance")
    if code == -1121:
        return Rejection(INVALID_SYMBOL, code="symbol_not_listed")
    if code == -4164 or (code == -1013 and "notional" in lowered):
        return Rejection(ORDER_TOO_SMALL, code="below_min_notional")
    if code == -1111 or (code == -1013 and "lot_size" in lowered):
        return Rejection(INVALID_PRECISION, code="precision")
    if code in _AUTH_CODES:
        return BrokerAuthError("Unauthorized API key", broker=exchange)
    if code in _BEFORE_EXECUTION:
        return BrokerUnavailable(f"{name} {_BEFORE_EXECUTION[code]}: try again shortly", broker=exchange)
    if code == CLOCK_SKEW:
        return BrokerUnavailable(f"{name} refused the request timestamp (server clock skew)", broker=exchange)
    if code == -1007:
        if placing:
            return OrderOutcomeUnknown(broker=exchange)
        return BrokerUnavailable(f"{name} did not answer: try again shortly", broker=exchange)
    return None


def too_small(code: int | None, message: str) -> bool:
    """A refusal for the order's value: Binance's NOTIONAL / MIN_NOTIONAL filters, -4164."""
    text = f"{code} {message}"
    return any(word in text for word in _TOO_SMALL)


def bad_precision(code: int | None, message: str) -> bool:
    """A refusal for the order's step or digits: LOT_SIZE, MARKET_LOT_SIZE, -1111."""
    text = f"{code} {message}"
    return code == -1111 or any(word in text for word in _PRECISION)


def duplicate(code: int | None, message: str) -> bool:
    """Binance refused an order because its client order id is in use: spot -2010 "Duplicate
    order sent.", USD-M -4116 "ClientOrderId is duplicated."."""
    return code == -4116 or (code == -2010 and "duplicate" in message.lower())


# -- numbers and answers ------------------------------------------------------------------------


def _positive(*values: Decimal) -> list[Decimal]:
    return [v for v in values if v > 0]


def market_of(raw: dict[str, Any], market_type: MarketType) -> Market:
    """An ordergate Market from a ccxt market, its numbers from the exchange's raw filters.

    Read exactly as ``scripts/extract_markets.py`` reads them for the paper twin (a test holds
    the two together): one Market serves both order types, so where Binance has two filters it
    takes the stricter. LOT_SIZE binds limit orders, MARKET_LOT_SIZE market orders (spot sends
    its step as 0, meaning LOT_SIZE's): the coarser step, the larger minimum, the smaller
    maximum. The minimum notional is spot's NOTIONAL / MIN_NOTIONAL ``minNotional`` or futures'
    MIN_NOTIONAL ``notional``. ccxt's parsed precision and limits stand in for exchanges
    without Binance's filters.
    """
    info = raw.get("info") or {}
    filters = {f.get("filterType"): f for f in info.get("filters", []) if isinstance(f, dict)}
    price_filter = filters.get("PRICE_FILTER", {})
    lot = filters.get("LOT_SIZE", {})
    market_lot = filters.get("MARKET_LOT_SIZE", {})
    notional = filters.get("NOTIONAL") or filters.get("MIN_NOTIONAL") or {}
    limits = raw.get("limits") or {}
    precision = raw.get("precision") or {}
    amount = limits.get("amount") or {}
    steps = _positive(
        wire_decimal(lot.get("stepSize") or precision.get("amount")), wire_decimal(market_lot.get("stepSize"))
    )
    minimums = _positive(wire_decimal(lot.get("minQty") or amount.get("min")), wire_decimal(market_lot.get("minQty")))
    maximums = _positive(wire_decimal(lot.get("maxQty") or amount.get("max")), wire_decimal(market_lot.get("maxQty")))
    return Market(
        symbol=str(raw["id"]).upper(),
        base=str(raw["base"]),
        quote=str(raw["quote"]),
        type=market_type,
        tick_size=wire_decimal(price_filter.get("tickSize") or precision.get("price")),
        step_size=max(steps, default=ZERO),
        min_qty=max(minimums, default=ZERO),
        max_qty=min(maximums, default=ZERO),
        min_notional=wire_decimal(
            notional.get("minNotional") or notional.get("notional") or (limits.get("cost") or {}).get("min")
        ),
        broker_symbol=str(raw["symbol"]),
    )


def order_api(market_type: MarketType) -> str:
    """The key of Binance's ``urls['api']`` entry that orders of ``market_type`` go to."""
    return "fapiPrivate" if market_type == "future" else "private"


def ticker_price(ticker: dict[str, Any]) -> Decimal:
    """A ticker's last price: Binance's own string (24 h ticker or price ticker), else ccxt's."""
    info = ticker.get("info") or {}
    return wire_decimal(info.get("lastPrice") or info.get("price") or ticker.get("last"))


def last_prices(raw: dict[str, Any]) -> dict[str, Decimal]:
    """ccxt ``fetch_last_prices``: every symbol's price by the exchange's own symbol."""
    fresh: dict[str, Decimal] = {}
    for entry in (raw or {}).values():
        info = entry.get("info") or {}
        symbol = str(info.get("symbol") or "").upper()
        # the exchange's own string, exact; ccxt's float only when there is none
        last = wire_decimal(info.get("price") or entry.get("price"))
        if symbol and last > 0:
            fresh[symbol] = last
    return fresh


def free_balances(balance: dict[str, Any], market_type: MarketType) -> dict[str, Decimal]:
    """Free amounts by asset: USD-M ``availableBalance``, spot ``free``, else ccxt's unified view."""
    info = balance.get("info") or {}
    free: dict[str, Decimal] = {}
    if market_type == "future" and isinstance(info.get("assets"), list):
        for entry in info["assets"]:
            free[str(entry.get("asset")).upper()] = wire_decimal(entry.get("availableBalance"))
    elif isinstance(info.get("balances"), list):
        for entry in info["balances"]:
            free[str(entry.get("asset")).upper()] = wire_decimal(entry.get("free"))
    else:  # another exchange: ccxt's unified view
        for asset, amount in (balance.get("free") or {}).items():
            free[str(asset).upper()] = wire_decimal(amount)
    return free


def placement_of(raw: dict[str, Any], market: Market, client_order_id: str, broker: str) -> Placement:
    """A ccxt order as a Placement: Binance's own fields first (exact strings), else ccxt's."""
    info = raw.get("info") or {}
    filled = wire_decimal(info.get("executedQty") if "executedQty" in info else raw.get("filled"))
    average = wire_decimal(info.get("avgPrice")) if info.get("avgPrice") else ZERO
    if average <= 0 and filled > 0:
        quote = wire_decimal(info.get("cummulativeQuoteQty") or info.get("cumQuote"))
        average = quote / filled if quote > 0 else wire_decimal(raw.get("average"))
    status = str(info.get("status") or raw.get("status") or "NEW").upper()
    order_id: str | int = info.get("orderId") or raw.get("id") or ""
    return Placement(
        order_id=order_id,
        client_order_id=str(info.get("clientOrderId") or raw.get("clientOrderId") or client_order_id),
        status={"CLOSED": "FILLED", "OPEN": "NEW", "CANCELED": "CANCELED"}.get(status, status),
        symbol=market.symbol,
        side="buy" if str(info.get("side") or raw.get("side") or "").lower() == "buy" else "sell",
        type="LIMIT" if str(info.get("type") or raw.get("type") or "").upper() == "LIMIT" else "MARKET",
        quantity=wire_decimal(info.get("origQty") or raw.get("amount")),
        filled=filled,
        average_price=average if average > 0 else None,
        price=wire_decimal(info.get("price")) or None,
        base=market.base,
        broker=broker,
    )
