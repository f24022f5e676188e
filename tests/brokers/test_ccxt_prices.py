"""Price hints against the exchange's prices, on the testnet environment, through the real app.

Cassettes in ``cassettes/test_ccxt_prices/`` are built from documented Binance bodies by
``scripts/build_cassettes.py`` (not recorded): spot BTCUSDT trades at 73369.84 and ETHUSDT at
2500; USD-M BTCUSDT at 43500. The testnet environment's own limits apply: $1,000 per order on
the Binance routes, ₹100,000 on FLATTRADE (paper there).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from tests.brokers.test_ccxt_binance import WEBHOOK
from tests.brokers.test_ccxt_binance import binance as testnet_app  # noqa: F401  (a fixture, used by name)


@pytest.fixture
def binance(testnet_app: Any) -> Any:  # noqa: F811  (the imported fixture, by name)
    """``binance(market_type, **broker_options)``: the testnet app, as in test_ccxt_binance.py."""
    return testnet_app


ETH = {"symbol": "ETHUSDT", "side": "buy", "quantity": "0.5", "type": "MARKET"}  # $1,250 at 2500


@pytest.mark.vcr
def test_testnet_a_low_hint_does_not_pass_the_max_notional(binance: Any) -> None:
    ex = binance("spot")
    refused = {"error": "Order exceeds the limit of $1,000 per order on BINANCE", "code": "max_notional"}

    status, body, cost = ex.send(id="eth-no-hint", **ETH)
    assert (status, {k: body[k] for k in refused}) == (422, refused), body

    # Before: the hint was the price of every check, and this order was placed for $1,250.
    status, body, cost = ex.send(id="eth-hint-100", price="100", **ETH)
    assert (status, {k: body[k] for k in refused}) == (422, refused), body
    assert body["notes"] == ["price hint 100 ignored: 96% away from the market price 2500 (tolerance 1%)"]
    assert cost == []  # the market price came from the startup read: no request, no order

    # a hint within 1 % of the market counts, and only ever makes a check stricter: $1,000 at
    # the market, $1,008 at the hint
    status, body, cost = ex.send(id="eth-hint-2520", price="2520", **{**ETH, "quantity": "0.4"})
    assert (status, {k: body[k] for k in refused}) == (422, refused), body
    assert "notes" not in body
    assert cost == []


@pytest.mark.vcr
def test_testnet_flattrade_a_low_hint_does_not_pass_the_rupee_limit(binance: Any) -> None:
    ex = binance("spot")
    signal = '{"broker":"FLATTRADE","symbol":"CIPLA","side":"buy","quantity":500,"type":"MARKET","price":1}'
    result = ex.client.simulate_post(WEBHOOK, body=signal)
    # Before: valued at the hint, ₹500; at CIPLA's 1,500 it is ₹750,000.
    assert (result.status_code, result.json["code"]) == (422, "max_notional"), result.json
    assert result.json["error"] == "Order exceeds the limit of ₹100,000 per order on FLATTRADE"
    assert result.json["notes"] == ["price hint 1 ignored: 100% away from the market price 1500 (tolerance 1%)"]


@pytest.mark.vcr(allow_playback_repeats=True)
def test_all_prices_are_read_in_the_background(binance: Any) -> None:
    ex = binance("spot", ticker_ttl_s=1)  # all prices re-read every 0.8 s
    read_again = threading.Event()

    def watch(response: Any, *args: Any, **kwargs: Any) -> Any:
        if response.request.url.endswith("/api/v3/ticker/price"):
            read_again.set()
        return response

    ex.broker.exchange.session.hooks["response"].append(watch)  # after the startup read
    assert read_again.wait(timeout=30), "no background price read"
    ex.broker.close()
    # one request for every symbol, never a ticker per symbol
    assert "GET /api/v3/ticker/price" in ex.requests
    assert "GET /api/v3/ticker/24hr" not in ex.requests


@pytest.mark.vcr
def test_without_a_recent_price_a_signal_reads_its_ticker(binance: Any) -> None:
    ex = binance("spot", ticker_ttl_s=0)  # nothing cached counts as recent
    btc = {"symbol": "BTCUSDT", "side": "buy", "quantity": "0.001", "type": "MARKET"}
    status, body, cost = ex.send(id="fresh-1", **btc)
    assert (status, body["status"]) == (200, "FILLED"), body
    assert cost == ["GET /api/v3/ticker/24hr", "POST /api/v3/order"]
    # a hint never replaces the exchange's price: the ticker is read all the same
    status, body, cost = ex.send(id="fresh-2", price="73369.84", **btc)
    assert (status, body["status"]) == (200, "FILLED"), body
    assert cost == ["GET /api/v3/ticker/24hr", "POST /api/v3/order"]


@pytest.mark.vcr
def test_futures_good_hint_one_round_trip(binance: Any) -> None:
    ex = binance("future", leverage=5)  # the recorded account holds 31.02 USDT: 26.1 of margin
    status, body, cost = ex.send(
        id="fut-hint", price="43480", symbol="BTCUSDT", side="buy", quantity="0.003", type="MARKET"
    )
    assert (status, body["status"]) == (200, "FILLED"), body
    assert cost == ["POST /fapi/v1/leverage", "POST /fapi/v1/order"]  # leverage: once per symbol
    assert "notes" not in body
