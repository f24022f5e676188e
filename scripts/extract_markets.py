"""Extract the market rules ordergate's paper broker needs from a Binance ``exchangeInfo`` dump.

Usage: python scripts/extract_markets.py SNAPSHOT.json > config/markets/binance-spot.json

Keeps, for every symbol that is TRADING, only what the checks use: base and quote asset,
tick size (PRICE_FILTER), step size and min/max quantity (LOT_SIZE), and min notional
(NOTIONAL, or the legacy MIN_NOTIONAL). Values stay strings, exactly as Binance sends them.
"""

from __future__ import annotations

import json
import sys
from decimal import Decimal


def _plain(value: str) -> str:
    """'0.01000000' -> '0.01', '5.00000000' -> '5' (exact, no float)."""
    return format(Decimal(value).normalize(), "f")


def extract(info: dict) -> dict:
    markets = {}
    for sym in info["symbols"]:
        if sym.get("status") != "TRADING":
            continue
        filters = {f["filterType"]: f for f in sym["filters"]}
        price = filters.get("PRICE_FILTER", {})
        lot = filters.get("LOT_SIZE", {})
        notional = filters.get("NOTIONAL") or filters.get("MIN_NOTIONAL") or {}
        markets[sym["symbol"]] = {
            "base": sym["baseAsset"],
            "quote": sym["quoteAsset"],
            "tick_size": _plain(price.get("tickSize", "0")),
            "step_size": _plain(lot.get("stepSize", "0")),
            "min_qty": _plain(lot.get("minQty", "0")),
            "max_qty": _plain(lot.get("maxQty", "0")),
            "min_notional": _plain(notional.get("minNotional", "0")),
        }
    return {
        "source": "Binance spot GET /api/v3/exchangeInfo",
        "server_time": info.get("serverTime"),
        "markets": markets,
    }


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as fh:
        data = extract(json.load(fh))
    # One market per line: small diffs when the snapshot is refreshed.
    out = sys.stdout
    source, server_time = json.dumps(data["source"]), json.dumps(data["server_time"])
    out.write(f'{{"source": {source},\n "server_time": {server_time},\n "markets": {{\n')
    rows = [f"  {json.dumps(k)}: {json.dumps(v, sort_keys=True)}" for k, v in sorted(data["markets"].items())]
    out.write(",\n".join(rows))
    out.write("\n }\n}\n")
