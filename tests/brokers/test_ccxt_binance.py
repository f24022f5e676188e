"""Binance through ccxt, end to end through the app, replaying cassettes built from documented bodies.

Each test builds the real app for ``ORDERGATE_ENV=testnet`` inside its cassette, so market
loading is replayed too, then posts signals and counts the requests each one cost. Cassettes
live in ``cassettes/test_ccxt_binance/``. They are not recordings: ``scripts/build_cassettes.py``
builds them from Binance's documented examples and ccxt's recorded fixtures
(``responses/SOURCES.md``), with the exact order parameters each request must carry in its body
(matched by ``conftest.order_params``). ``make record`` can replace the ``recordable`` ones with
real recordings against Binance's test endpoints, given keys.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from falcon import testing

from ordergate.app import OrdergateApp, create_app
from ordergate.brokers import build_broker
from ordergate.brokers.ccxt import CcxtBroker
from ordergate.config import load_settings
from ordergate.pipeline.errors import BrokerUnavailable
from ordergate.pipeline.signal import Order
from ordergate.stages.schema import client_order_id
from tests.conftest import CONFIG_DIR

RECORDING = bool(os.environ.get("ORDERGATE_RECORD"))
KEYS = {
    "BINANCE_API_KEY": os.environ.get("BINANCE_API_KEY", "") if RECORDING else "test-key-not-a-secret",
    "BINANCE_API_SECRET": os.environ.get("BINANCE_API_SECRET", "") if RECORDING else "test-secret-not-a-secret",
}
# testnet refuses to start without a webhook secret; these signals carry it in the URL path.
WEBHOOK_SECRET = "hook-secret-not-a-secret"
WEBHOOK = f"/webhook/{WEBHOOK_SECRET}"


@dataclass
class Binance:
    """The app on the testnet environment, its ccxt broker, and a count of exchange requests."""

    app: OrdergateApp
    broker: CcxtBroker
    client: testing.TestClient
    requests: list[str] = field(default_factory=list)

    def send(self, **payload: Any) -> tuple[int, dict[str, Any], list[str]]:
        """Post one signal; return status, body and the exchange requests it cost."""
        before = len(self.requests)
        body = json.dumps({"broker": "BINANCE", **payload})
        result = self.client.simulate_post(WEBHOOK, body=body, headers={"Content-Type": "text/plain"})
        return result.status_code, result.json, self.requests[before:]


def _count(requests: list[str]) -> Any:
    def hook(response: Any, *args: Any, **kwargs: Any) -> Any:
        url = response.request.url.split("?")[0]
        requests.append(f"{response.request.method} {url.split('.com', 1)[-1].split('.vision', 1)[-1]}")
        return response

    return hook


@pytest.fixture
def binance(tmp_path: Path) -> Iterator[Any]:
    """A factory: ``binance(market_type, pipeline=..., **broker_options)``; closes what it built."""
    built: list[CcxtBroker] = []

    def make(market_type: str, *, pipeline: list[Any] | None = None, **options: Any) -> Binance:
        environ = {**KEYS, "WEBHOOK_SECRET": WEBHOOK_SECRET, "BINANCE_MARKET_TYPE": market_type}
        environ["ORDERGATE_DB"] = str(tmp_path / f"{len(built)}.db")
        settings = load_settings("testnet", CONFIG_DIR, environ=environ)
        # ticker_ttl_s: the prices read at startup stay recent for the whole test, so no
        # background price read lands in the middle of a test's request count
        settings.data["brokers"]["binance"].update({"lookup_delay_s": 0, "ticker_ttl_s": 3600, **options})
        if pipeline is not None:
            settings.data["pipelines"]["crypto"] = pipeline
        app = create_app(settings)  # loads the markets, inside the cassette
        broker = app.service.brokers["binance"]
        assert isinstance(broker, CcxtBroker)
        built.append(broker)
        requests: list[str] = []
        broker.exchange.session.hooks["response"].append(_count(requests))
        return Binance(app, broker, testing.TestClient(app), requests)

    yield make
    for broker in built:
        broker.close()


BTC = {"symbol": "BTCUSDT", "side": "buy", "quantity": "0.001", "type": "MARKET"}
LAST = Decimal(json.loads((Path(__file__).parent / "responses" / "spot-ticker-24hr.json").read_text())["lastPrice"])
EXCHANGE_DECIDES = [{"schema": {"file": "signal.schema.json"}}, "whitelist", "execute"]


# -- spot testnet ---------------------------------------------------------------------------


@pytest.mark.vcr
@pytest.mark.recordable
def test_spot_market_orders_cost_one_round_trip_in_steady_state(binance: Any) -> None:
    ex = binance("spot")
    assert ex.broker.market("BTCUSDT") is not None  # markets warm before the first signal

    # markets, every symbol's price (BTCUSDT 73369.84) and the balance were read at startup
    status, body, cost = ex.send(id="spot-1", **BTC)
    assert (status, body["success"], body["status"]) == (200, True, "FILLED"), body
    assert cost == ["POST /api/v3/order"]
    assert body["executedQty"] == "0.001"
    assert body["clientOrderId"].startswith("og-")

    status, body, cost = ex.send(id="spot-2", price="73400", **BTC)  # a good hint: still one request
    assert (status, body["status"]) == (200, "FILLED"), body
    assert cost == ["POST /api/v3/order"]
    assert "notes" not in body or not any("hint" in note for note in body["notes"])

    status, body, cost = ex.send(id="spot-3", price="43500", **BTC)  # a stale hint: said so, same cost
    assert (status, body["status"]) == (200, "FILLED"), body
    assert cost == ["POST /api/v3/order"]
    assert "price hint 43500 ignored: 41% away from the market price 73369.84 (tolerance 1%)" in body["notes"]


@pytest.mark.vcr
@pytest.mark.recordable
def test_spot_limit_order_rests_on_the_book(binance: Any) -> None:
    ex = binance("spot")
    status, body, cost = ex.send(
        id="spot-limit-1", symbol="BTCUSDT", side="buy", quantity="0.001", type="LIMIT", price="30000"
    )
    assert (status, body["success"], body["status"]) == (200, True, "NEW"), body
    assert (body["executedQty"], body["avgPrice"], body["price"]) == ("0", None, "30000")
    assert cost == ["POST /api/v3/order"]  # the limit price needs no ticker, the balance is warm


@pytest.mark.vcr
@pytest.mark.parametrize(
    ("signal", "words"),
    [
        ({"id": "too-small", "quantity": "0.00001"}, "Order size too small"),
        ({"id": "lot-size", "quantity": "200"}, "Invalid quantity precision"),
        ({"id": "no-funds", "quantity": "5"}, "Insufficient balance"),
        ({"id": "delisted", "quantity": "0.001"}, "Invalid symbol"),
    ],
    ids=["notional", "lot-size", "insufficient", "invalid-symbol"],
)
def test_spot_exchange_reports_the_seed_errors(binance: Any, signal: dict[str, str], words: str) -> None:
    ex = binance("spot", pipeline=EXCHANGE_DECIDES)  # no local checks: the exchange decides
    status, body, cost = ex.send(**{**BTC, **signal})
    assert (status, body["error"], body["stage"]) == (422, words, "execute")
    assert cost == ["POST /api/v3/order"]


@pytest.mark.vcr
def test_spot_rate_limit_before_placement_is_503_and_places_nothing(binance: Any) -> None:
    ex = binance("spot")
    status, body, cost = ex.send(id="rate-limited", price="43500", **BTC)
    assert (status, body["error"]) == (503, "Binance rate limit reached: try again shortly")
    assert cost == ["POST /api/v3/order"]


@pytest.mark.vcr
def test_spot_timeout_then_lookup_finds_the_order_and_sends_nothing_more(binance: Any) -> None:
    ex = binance("spot")
    status, body, cost = ex.send(id="lost-response", price="43500", **BTC)
    assert (status, body["success"], body["status"]) == (200, True, "FILLED"), body
    assert cost == ["POST /api/v3/order", "GET /api/v3/order"]  # one POST: one order


@pytest.mark.vcr
def test_spot_timeout_then_lookup_not_found_sends_it_once_more(binance: Any) -> None:
    ex = binance("spot")
    status, body, cost = ex.send(id="never-arrived", price="43500", **BTC)
    assert (status, body["success"], body["status"]) == (200, True, "FILLED"), body
    assert cost == [
        "POST /api/v3/order",
        "GET /api/v3/order",  # not there yet ...
        "GET /api/v3/order",  # ... nor a moment later: it never arrived
        "POST /api/v3/order",
    ]


@pytest.mark.vcr
def test_spot_timeout_twice_answers_unknown_never_5xx(binance: Any) -> None:
    ex = binance("spot")
    status, body, cost = ex.send(id="still-unknown", price="43500", **BTC)
    assert (status, body["status"]) == (202, "unknown"), body
    assert body["clientOrderId"].startswith("og-")
    assert cost.count("POST /api/v3/order") == 2  # the first, and once more after "not found" twice
    assert cost.count("GET /api/v3/order") == 3


@pytest.mark.vcr
def test_missing_keys_answer_422_and_the_rest_keeps_working(binance: Any) -> None:
    ex = binance("spot", api_key="", api_secret="")
    status, body, cost = ex.send(id="no-keys", **BTC)
    assert (status, body["error"]) == (422, "API keys not configured for BINANCE")
    assert cost == []
    paper = ex.client.simulate_post(
        WEBHOOK, body='{"broker":"FLATTRADE","symbol":"CIPLA","side":"buy","quantity":10,"type":"MARKET"}'
    )
    assert paper.status_code == 200


@pytest.mark.vcr
def test_failed_market_refresh_keeps_the_last_good_markets(binance: Any) -> None:
    ex = binance("spot")
    before = ex.broker.market("BTCUSDT")
    with pytest.raises(BrokerUnavailable, match="try again shortly"):
        ex.broker.refresh_markets(attempts=1)
    assert ex.broker.market("BTCUSDT") == before


@pytest.mark.vcr
def test_a_spot_sell_moves_the_cached_balance_by_exactly_the_fill(binance: Any) -> None:
    ex = binance("spot")  # the account (BTC 1, USDT 10,000) was read at startup and is cached
    market = ex.broker.market("BTCUSDT")
    assert market is not None
    cid = client_order_id("BINANCE", {"id": "spot-sell"}, "")
    sell = Order("BTCUSDT", "sell", "MARKET", Decimal("0.001"), client_order_id=cid)
    placement = ex.broker.place_order(sell, market)
    assert (placement.status, placement.filled, placement.average_price) == ("FILLED", Decimal("0.001"), LAST)
    assert ex.requests == ["POST /api/v3/order"]  # what follows is the cache, not a new read
    assert ex.broker.free_balance("BTC") == Decimal(1) - Decimal("0.001")
    assert ex.broker.free_balance("USDT") == Decimal(10000) + Decimal("0.001") * LAST


# -- the live flag: where the orders go ---------------------------------------------------------


@pytest.mark.vcr(match_on=["method", "host", "path", "query", "order_params"])
@pytest.mark.parametrize(
    ("market_type", "options"),
    [
        ("spot", {"testnet": False}),
        ("future", {"testnet": False}),
        ("spot", {"testnet": True, "api_url": "https://api.binance.com"}),
        ("future", {"testnet": True, "api_url": "https://fapi.binance.com"}),
    ],
    ids=["spot-testnet-false", "future-testnet-false", "spot-api-url", "future-api-url"],
)
def test_a_broker_on_production_hosts_is_live(market_type: str, options: dict[str, Any]) -> None:
    """Built from config for Binance's production hosts, a broker trades real money: ``live``.
    The cassette answers only on the production host, so the markets prove where it talks."""
    broker = build_broker(
        "binance",
        {"adapter": "ccxt", "exchange": "binance", "market_type": market_type, **options},
        config_dir=CONFIG_DIR,
        file="test",
    )
    assert isinstance(broker, CcxtBroker)
    broker.close()
    assert broker.market("BTCUSDT") is not None  # its markets came from the production host
    assert broker.live is True


def test_flattrade_is_live_and_paper_is_not() -> None:
    flattrade = build_broker(
        "flattrade", {"adapter": "flattrade", "user_id": "FT012345"}, config_dir=CONFIG_DIR, file="t"
    )
    paper = build_broker(
        "paper", {"adapter": "paper", "markets": "markets/binance-spot.json"}, config_dir=CONFIG_DIR, file="t"
    )
    assert (flattrade.live, paper.live) == (True, False)  # FlatTrade has no sandbox


# -- USD-M futures (demo trading) -------------------------------------------------------------


@pytest.mark.vcr
@pytest.mark.recordable
def test_futures_market_order_sets_leverage_once_then_one_round_trip(binance: Any) -> None:
    ex = binance("future", leverage=5)
    market = ex.broker.market("BTCUSDT")
    assert market is not None
    assert (market.type, market.broker_symbol) == ("future", "BTC/USDT:USDT")

    status, body, cost = ex.send(
        id="fut-1", price="43500", symbol="BTCUSDT", side="buy", quantity="0.003", type="MARKET"
    )
    assert (status, body["status"]) == (200, "FILLED"), body
    assert cost == ["POST /fapi/v1/leverage", "POST /fapi/v1/order"]  # leverage once per symbol

    status, body, cost = ex.send(
        id="fut-2", price="43500", symbol="BTCUSDT", side="sell", quantity="0.003", type="MARKET", reduceOnly=True
    )
    assert (status, body["status"]) == (200, "FILLED"), body
    assert cost == ["POST /fapi/v1/order"]


@pytest.mark.vcr
@pytest.mark.recordable
def test_futures_limit_order(binance: Any) -> None:
    ex = binance("future")
    status, body, cost = ex.send(
        id="fut-limit", symbol="ETHUSDT", side="sell", quantity="0.01", type="LIMIT", price="2600"
    )
    assert (status, body["status"]) == (200, "NEW"), body
    assert cost == ["POST /fapi/v1/leverage", "POST /fapi/v1/order"]  # leverage once per symbol


@pytest.mark.vcr
def test_futures_margin_insufficient_is_the_seed_words(binance: Any) -> None:
    ex = binance("future", pipeline=EXCHANGE_DECIDES)
    status, body, cost = ex.send(
        id="no-margin", price="43500", symbol="BTCUSDT", side="buy", quantity="50", type="MARKET"
    )
    assert (status, body["error"]) == (422, "Insufficient balance")
    assert cost == ["POST /fapi/v1/leverage", "POST /fapi/v1/order"]


@pytest.mark.vcr
@pytest.mark.parametrize(
    ("market_type", "signal", "words"),
    [
        ("spot", {"id": "too-small", "quantity": "0.00001"}, "Order size too small"),
        ("spot", {"id": "lot-size", "quantity": "200"}, "Invalid quantity precision"),
        ("spot", {"id": "no-funds", "quantity": "5"}, "Insufficient balance"),
        ("spot", {"id": "delisted", "quantity": "0.001"}, "Invalid symbol"),
        ("future", {"id": "no-margin", "price": "43500", "quantity": "50"}, "Insufficient balance"),
    ],
    ids=["spot-notional", "spot-lot-size", "spot-insufficient", "spot-invalid-symbol", "future-insufficient"],
)
def test_behind_api_url_the_seed_errors_keep_their_words(
    binance: Any, market_type: str, signal: dict[str, str], words: str
) -> None:
    # A Binance-compatible server (or proxy) at BINANCE_API_URL is not a Binance host, so ccxt
    # leaves Binance's codes untranslated; ordergate reads them itself. An unknown host is real
    # money unless the broker vouches for it with sandbox: true.
    ex = binance(market_type, pipeline=EXCHANGE_DECIDES, api_url="http://binance-compatible.test:8080", sandbox=True)
    status, body, _ = ex.send(**{**BTC, **signal})
    assert (status, body["error"], body["stage"]) == (422, words, "execute")
