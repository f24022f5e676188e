"""market_of: how an exchange's market (Binance's exchangeInfo filters, else ccxt's parsed
precision and limits) becomes an ordergate Market. Whole-Market equality, so that every
filter, fallback and min/max choice is pinned; plus rewrite_urls, the small pure
helpers around it."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ordergate.brokers.binance import market_of
from ordergate.brokers.ccxt import rewrite_urls
from ordergate.pipeline.signal import Market, MarketType

RESPONSES = Path(__file__).parent / "responses"
D = Decimal


def _symbol(file: str, symbol: str) -> dict[str, Any]:
    """One symbol of a documented exchangeInfo body (built from Binance's docs)."""
    info = json.loads((RESPONSES / file).read_text())
    found: dict[str, Any] = next(s for s in info["symbols"] if s["symbol"] == symbol)
    return found


def _raw(info: dict[str, Any] | None, **unified: Any) -> dict[str, Any]:
    """A ccxt market as ccxt hands it over: unified fields plus the exchange's own ``info``."""
    return {"id": "btcusdt", "symbol": "BTC/USDT", "base": "BTC", "quote": "USDT", "info": info, **unified}


def _filters(*filters: dict[str, Any]) -> dict[str, Any]:
    return {"filters": list(filters)}


# ccxt's parsed numbers, deliberately unlike every filter below: a market that reads them
# where a filter exists (or the reverse) shows up as a wrong number
PARSED: dict[str, Any] = {
    "precision": {"amount": 0.5, "price": 0.25},
    "limits": {"amount": {"min": 0.75, "max": 55.0}, "cost": {"min": 3.0}},
}


def _market(
    tick: str = "0",
    step: str = "0",
    min_qty: str = "0",
    max_qty: str = "0",
    notional: str = "0",
    market_type: MarketType = "spot",
) -> Market:
    return Market(
        symbol="BTCUSDT",
        base="BTC",
        quote="USDT",
        type=market_type,
        tick_size=D(tick),
        step_size=D(step),
        min_qty=D(min_qty),
        max_qty=D(max_qty),
        min_notional=D(notional),
        broker_symbol="BTC/USDT",
    )


def test_binance_spot_exchange_info() -> None:
    # MARKET_LOT_SIZE's step and minimum are 0 on spot (meaning LOT_SIZE's); its max is smaller
    raw = _raw(_symbol("spot-exchangeInfo.json", "BTCUSDT"), **PARSED)
    assert market_of(raw, "spot") == _market("0.01", "0.00001", "0.00001", "168.82682004", "5")


def test_binance_usdm_exchange_info() -> None:
    # futures' MIN_NOTIONAL carries ``notional``, not ``minNotional``
    raw = _raw(_symbol("usdm-exchangeInfo.json", "BTCUSDT"), **PARSED)
    assert market_of(raw, "future") == _market("0.10", "0.001", "0.001", "120", "100", "future")


PRICE = {"filterType": "PRICE_FILTER", "tickSize": "0.01"}
LOT = {"filterType": "LOT_SIZE", "stepSize": "0.001", "minQty": "0.002", "maxQty": "900"}


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        # LOT_SIZE alone
        ((PRICE, LOT), _market("0.01", "0.001", "0.002", "900", "3")),
        # MARKET_LOT_SIZE stricter everywhere: coarser step, larger minimum, smaller maximum
        (
            (PRICE, LOT, {"filterType": "MARKET_LOT_SIZE", "stepSize": "0.01", "minQty": "0.02", "maxQty": "90"}),
            _market("0.01", "0.01", "0.02", "90", "3"),
        ),
        # LOT_SIZE stricter everywhere: the same choice the other way round
        (
            (
                PRICE,
                {"filterType": "LOT_SIZE", "stepSize": "0.1", "minQty": "0.2", "maxQty": "9"},
                {"filterType": "MARKET_LOT_SIZE", "stepSize": "0.01", "minQty": "0.02", "maxQty": "90"},
            ),
            _market("0.01", "0.1", "0.2", "9", "3"),
        ),
        # MARKET_LOT_SIZE alone (a step under 1 and over 0 each way)
        (
            ({"filterType": "MARKET_LOT_SIZE", "stepSize": "0.5", "minQty": "0.5", "maxQty": "0.5"},),
            _market("0.25", "0.5", "0.75", "0.5", "3"),
        ),
        # NOTIONAL wins over MIN_NOTIONAL when both are there
        (
            (
                PRICE,
                LOT,
                {"filterType": "NOTIONAL", "minNotional": "5"},
                {"filterType": "MIN_NOTIONAL", "minNotional": "10"},
            ),
            _market("0.01", "0.001", "0.002", "900", "5"),
        ),
        # older spot symbols: MIN_NOTIONAL's minNotional
        (
            (PRICE, LOT, {"filterType": "MIN_NOTIONAL", "minNotional": "10"}),
            _market("0.01", "0.001", "0.002", "900", "10"),
        ),
        # USD-M: MIN_NOTIONAL's notional
        (
            (PRICE, LOT, {"filterType": "MIN_NOTIONAL", "notional": "20"}),
            _market("0.01", "0.001", "0.002", "900", "20"),
        ),
        # NOTIONAL with notional (no minNotional)
        (
            (PRICE, LOT, {"filterType": "NOTIONAL", "notional": "7"}),
            _market("0.01", "0.001", "0.002", "900", "7"),
        ),
        # (rows without a notional filter take ccxt's cost minimum, 3)
        # no filters at all: ccxt's parsed precision and limits
        ((), _market("0.25", "0.5", "0.75", "55", "3")),
        # filters that are no dict, or name no type, are ignored
        (("PRICE_FILTER", {"tickSize": "9"}, PRICE, LOT), _market("0.01", "0.001", "0.002", "900", "3")),
        # empty filter values fall back to ccxt's
        (
            (
                {"filterType": "PRICE_FILTER", "tickSize": ""},
                {"filterType": "LOT_SIZE", "stepSize": "", "minQty": "", "maxQty": ""},
                {"filterType": "NOTIONAL", "minNotional": ""},
            ),
            _market("0.25", "0.5", "0.75", "55", "3"),
        ),
    ],
)
def test_filters(filters: tuple[Any, ...], expected: Market) -> None:
    assert market_of(_raw(_filters(*filters), **PARSED), "spot") == expected


@pytest.mark.parametrize("info", [None, {}, {"filters": []}])
def test_no_filters_and_no_ccxt_numbers_is_all_zero(info: dict[str, Any] | None) -> None:
    assert market_of(_raw(info), "spot") == _market()
    assert market_of(_raw(info, limits=None, precision=None), "future") == _market(market_type="future")


def test_ccxt_limits_without_cost_or_amount() -> None:
    raw = _raw(None, precision={"price": "0.5"}, limits={"amount": None, "cost": None})
    assert market_of(raw, "spot") == _market("0.5")


def test_symbol_is_the_exchange_id_upper_cased_and_broker_symbol_ccxt_s() -> None:
    raw = {"id": "ethbtc", "symbol": "ETH/BTC", "base": "ETH", "quote": "BTC", "info": _filters(PRICE)}
    assert market_of(raw, "spot") == Market(
        symbol="ETHBTC", base="ETH", quote="BTC", type="spot", tick_size=D("0.01"), broker_symbol="ETH/BTC"
    )


@pytest.mark.parametrize("base", ["http://127.0.0.1:8080", "http://127.0.0.1:8080/", "http://127.0.0.1:8080//"])
def test_rewrite_urls(base: str) -> None:
    urls = {
        "public": "https://testnet.binance.vision/api/v3",
        "nested": {"fapiPrivate": "https://demo-fapi.binance.com/fapi/v1", "port": "wss://stream.x.com:9443/ws"},
        "count": 3,
        "none": None,
    }
    assert rewrite_urls(urls, base) == {
        "public": "http://127.0.0.1:8080/api/v3",
        "nested": {"fapiPrivate": "http://127.0.0.1:8080/fapi/v1", "port": "http://127.0.0.1:8080/ws"},
        "count": 3,
        "none": None,
    }
    assert rewrite_urls("https://api.binance.com", base) == "http://127.0.0.1:8080"


def test_rewrite_urls_keeps_a_path_prefix_and_drops_only_trailing_slashes() -> None:
    # api_url may be a proxy under a path: only the slashes at its end go
    assert (
        rewrite_urls("https://api.binance.com/api/v3", "http://proxy:9/binanceX//") == "http://proxy:9/binanceX/api/v3"
    )
