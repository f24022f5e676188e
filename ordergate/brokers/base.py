"""What adapters share: the market-file reader, Binance's parameter names; the contract itself
(:class:`Broker`) is ``ordergate.pipeline.broker``'s, re-exported here."""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from ordergate.config import json_object, read_yaml
from ordergate.pipeline.broker import Broker as Broker  # the contract lives with the pipeline that calls it
from ordergate.pipeline.errors import ConfigError
from ordergate.pipeline.money import plain
from ordergate.pipeline.signal import Market, MarketType, Order


def binance_params(order: Order, symbol: str) -> dict[str, Any]:
    """An order as Binance's ``POST /order`` names its parameters (for the seed's log line)."""
    params: dict[str, Any] = {
        "symbol": symbol,
        "side": order.side.upper(),
        "type": order.type,
        "quantity": plain(order.quantity),
    }
    if order.price is not None:
        params["price"] = plain(order.price)
        params["timeInForce"] = "GTC"
    if order.reduce_only:
        params["reduceOnly"] = "true"
    params["newClientOrderId"] = order.client_order_id
    return params


def decimal_field(entry: Mapping[str, Any], key: str, *, file: str, path: str) -> Decimal:
    """Read one number of a market file exactly (strings and ints; floats were never let in)."""
    value = entry.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise ConfigError(f"{key} must be a number written as a string", file=file, path=path)
    try:
        result = Decimal(value)
    except ArithmeticError:
        raise ConfigError(f"{key}: {value!r} is not a number", file=file, path=path) from None
    if not result.is_finite() or result < 0:
        raise ConfigError(f"{key}: {value!r} must be a finite number >= 0", file=file, path=path)
    return result


def load_markets(path: Path, market_type: MarketType) -> dict[str, Market]:
    """Read a market file (JSON or YAML: ``{markets: {SYMBOL: {base, quote, tick_size, ...}}}``)."""
    file = str(path)
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=json_object)
        except OSError as exc:
            raise ConfigError(f"cannot read: {exc.strerror}", file=file) from None
        except ValueError as exc:
            raise ConfigError(f"invalid JSON: {exc}", file=file) from None
    else:
        data = read_yaml(path)
    entries = data.get("markets") if isinstance(data, dict) else None
    if not isinstance(entries, dict) or not entries:
        raise ConfigError("expected a non-empty 'markets' mapping", file=file)
    markets: dict[str, Market] = {}
    for symbol, entry in entries.items():
        where = f"markets.{symbol}"
        if not isinstance(entry, dict) or not entry.get("quote"):
            raise ConfigError("each market needs at least a quote asset", file=file, path=where)
        markets[str(symbol).upper()] = Market(
            symbol=str(symbol).upper(),
            base=str(entry.get("base", symbol)),
            quote=str(entry["quote"]),
            type=market_type,
            tick_size=decimal_field(entry, "tick_size", file=file, path=where),
            step_size=decimal_field(entry, "step_size", file=file, path=where),
            min_qty=decimal_field(entry, "min_qty", file=file, path=where),
            max_qty=decimal_field(entry, "max_qty", file=file, path=where),
            min_notional=decimal_field(entry, "min_notional", file=file, path=where),
            broker_symbol=str(entry.get("broker_symbol", symbol)),
        )
    return markets
