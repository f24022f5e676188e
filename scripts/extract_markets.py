"""Extract the market rules ordergate's paper broker needs from Binance ``exchangeInfo`` dumps.

Usage:
  python scripts/extract_markets.py SNAPSHOT.json > config/markets/binance-spot.json
  python scripts/extract_markets.py --source "..." USDM.json [MORE.json ...] > config/markets/binance-usdm.json

Spot (``/api/v3/exchangeInfo``) and USD-M futures (``/fapi/v1/exchangeInfo``) have the same
shape; what differs is read the same way. With several files, a later file's symbol replaces
an earlier one's. Keeps, for every symbol that is TRADING, only what the checks use, read as
``ordergate.brokers.binance.market_of`` reads a live exchange (tests/brokers/test_markets_twin.py holds
the two together). One market serves both order types, so where Binance has two filters the
stricter wins:

* tick size: PRICE_FILTER ``tickSize``;
* step size, min and max quantity: LOT_SIZE binds limit orders, MARKET_LOT_SIZE market orders
  (spot sends its step as 0, meaning LOT_SIZE's): the coarser step, the larger minimum, the
  smaller maximum;
* min notional: spot's NOTIONAL (or legacy MIN_NOTIONAL) ``minNotional``, futures' MIN_NOTIONAL
  ``notional``.

Values stay exact decimal strings (no float).
"""

from __future__ import annotations

import argparse
import json
import sys
from decimal import Decimal
from typing import Any


def _plain(value: Decimal) -> str:
    """Decimal('0.01000000') -> '0.01', Decimal('5.00000000') -> '5' (exact, no float)."""
    return format(value.normalize(), "f")


def _positive(*values: Any) -> list[Decimal]:
    return [d for d in (Decimal(str(v)) for v in values if v not in (None, "")) if d > 0]


def rules(sym: dict[str, Any]) -> dict[str, str]:
    """One symbol's paper market entry from its exchangeInfo entry."""
    filters = {f["filterType"]: f for f in sym["filters"]}
    price = filters.get("PRICE_FILTER", {})
    lot = filters.get("LOT_SIZE", {})
    market_lot = filters.get("MARKET_LOT_SIZE", {})
    notional = filters.get("NOTIONAL") or filters.get("MIN_NOTIONAL") or {}
    zero = Decimal(0)
    return {
        "base": sym["baseAsset"],
        "quote": sym["quoteAsset"],
        "tick_size": _plain(Decimal(price.get("tickSize", "0"))),
        "step_size": _plain(max(_positive(lot.get("stepSize"), market_lot.get("stepSize")), default=zero)),
        "min_qty": _plain(max(_positive(lot.get("minQty"), market_lot.get("minQty")), default=zero)),
        "max_qty": _plain(min(_positive(lot.get("maxQty"), market_lot.get("maxQty")), default=zero)),
        "min_notional": _plain(Decimal(notional.get("minNotional") or notional.get("notional") or "0")),
    }


def extract(infos: list[dict[str, Any]], source: str) -> dict[str, Any]:
    markets: dict[str, dict[str, str]] = {}
    for info in infos:
        for sym in info["symbols"]:
            if sym.get("status") == "TRADING":
                markets[sym["symbol"]] = rules(sym)
    return {"source": source, "server_time": infos[-1].get("serverTime"), "markets": markets}


def write(data: dict[str, Any], out: Any) -> None:
    """One market per line: small diffs when the snapshot is refreshed."""
    source, server_time = json.dumps(data["source"]), json.dumps(data["server_time"])
    out.write(f'{{"source": {source},\n "server_time": {server_time},\n "markets": {{\n')
    rows = [f"  {json.dumps(k)}: {json.dumps(v, sort_keys=True)}" for k, v in sorted(data["markets"].items())]
    out.write(",\n".join(rows))
    out.write("\n }\n}\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("snapshots", nargs="+", help="exchangeInfo JSON files; later ones win per symbol")
    parser.add_argument("--source", default="Binance spot GET /api/v3/exchangeInfo", help="the file's source note")
    args = parser.parse_args(argv)
    infos = []
    for path in args.snapshots:
        with open(path, encoding="utf-8") as fh:
            infos.append(json.load(fh))
    write(extract(infos, args.source), sys.stdout)


if __name__ == "__main__":
    main()
