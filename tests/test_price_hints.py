"""A MARKET order's price hint ({{close}}) never lets an order past a check.

Through the real app and waitress: the testnet environment's own limits ($1,000 per order on the
Binance routes, ₹100,000 on FLATTRADE) with the Binance routes on their paper twin (BTCUSDT
43,500, ETHUSDT 2,500, CIPLA 1,500). Then a property: for any hint, the minimum notional, the
limits and the balance check decide no more permissively than without one.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from falcon import testing
from hypothesis import given, settings
from hypothesis import strategies as st

from ordergate.app import create_app
from ordergate.brokers import build_broker
from ordergate.brokers.paper import PaperBroker
from ordergate.config import load_settings
from ordergate.pipeline.errors import Rejection
from ordergate.pipeline.signal import Order, Signal
from ordergate.pipeline.stage import Limits, RouteContext
from ordergate.stages.balance import BalanceCheck
from ordergate.stages.limits import EnvironmentLimits
from ordergate.stages.notional import NotionalCheck, _with_hint, check_prices, percent
from tests.brokers.fake_noren import FakeNoren, ServingNoren
from tests.conftest import CONFIG_DIR, LiveServer, serving
from tests.test_stages import build, crypto_broker, route_for

SECRET = "price-hints-secret-not-a-secret"


@pytest.fixture
def testnet(tmp_path: Path) -> Iterator[LiveServer]:
    """The testnet environment served by waitress, its Binance routes on the paper twin."""
    environ = {"WEBHOOK_SECRET": SECRET, "ORDERGATE_DB": str(tmp_path / "journal.db")}
    config = load_settings("testnet", CONFIG_DIR, environ=environ)
    for route in ("BINANCE", "BINANCE_REAL"):
        config.data["routes"][route]["broker"] = "paper_binance"
    app = create_app(config)
    with serving(app) as server:
        yield server
    app.journal.close()


def send(server: LiveServer, **signal: Any) -> tuple[int, dict[str, Any]]:
    return server.request("POST", f"/webhook/{SECRET}", json.dumps(signal), {"Content-Type": "text/plain"})


def test_eth_half_with_a_hint_of_100_is_refused_by_the_1000_limit(testnet: LiveServer) -> None:
    eth = {"broker": "BINANCE", "symbol": "ETHUSDT", "side": "buy", "quantity": "0.5", "type": "MARKET"}
    status, body = send(testnet, **eth)
    assert (status, body["code"]) == (422, "max_notional"), body
    # Before: placed for $1,250, its hint of 100 taken as the price of every check.
    status, body = send(testnet, **eth, price="100")
    assert (status, body["code"], body["stage"]) == (422, "max_notional", "limits"), body
    assert body["error"] == "Order exceeds the limit of $1,000 per order on BINANCE"
    assert body["notes"] == ["price hint 100 ignored: 96% away from the market price 2500 (tolerance 1%)"]


def test_cipla_500_with_a_hint_of_1_is_refused_by_the_rupee_limit(testnet: LiveServer) -> None:
    cipla = {"broker": "FLATTRADE", "symbol": "CIPLA", "side": "buy", "quantity": 500, "type": "MARKET"}
    # Before: passed the ₹100,000 limit as a ₹500 order; it is a ₹750,000 one.
    status, body = send(testnet, **cipla, price=1)
    assert (status, body["code"]) == (422, "max_notional"), body
    assert body["error"] == "Order exceeds the limit of ₹100,000 per order on FLATTRADE"
    status, body = send(testnet, **{**cipla, "quantity": 60}, price=1)  # ₹90,000 at the market: placed
    assert (status, body["success"]) == (200, True), body
    assert body["notes"] == ["price hint 1 ignored: 100% away from the market price 1500 (tolerance 1%)"]


def test_a_low_hint_does_not_pass_the_balance_check(live_server: LiveServer) -> None:
    # development: no limits, 10,000 USDT; 0.3 BTC is 13,050 at the market, 300 at the hint
    signal = {"broker": "BINANCE", "symbol": "BTCUSDT", "side": "buy", "quantity": "0.3", "type": "MARKET"}
    status, body = live_server.post(json.dumps({**signal, "price": "1000"}))
    # Before: "balance" passed it at 300 and only the paper broker's own fill refused it.
    assert (status, body["error"], body["stage"]) == (422, "Insufficient balance", "balance"), body


def test_a_high_hint_does_not_pass_the_minimum_notional(live_server: LiveServer) -> None:
    # 0.0002 BTC is 8.7 USDT at the market (minimum 10), 12 at a stale {{close}} of 60,000
    signal = {"broker": "BINANCE", "symbol": "BTCUSDT", "side": "buy", "quantity": "0.0002", "type": "MARKET"}
    status, body = live_server.post(json.dumps({**signal, "price": "60000"}))
    assert (status, body["error"], body["stage"]) == (422, "Order size too small", "notional"), body
    assert body["notes"] == ["price hint 60000 ignored: 38% away from the market price 43500 (tolerance 1%)"]


# -- the property ------------------------------------------------------------------------------


@cache
def paper(market_type: str, leverage: int) -> PaperBroker:
    balances = {"USDT": Decimal(10000), "BTC": Decimal("0.1"), "ETH": Decimal(1)}
    return crypto_broker(market_type=market_type, leverage=leverage, balances=balances)


def passes(stage: Any, signal: Signal) -> bool:
    try:
        stage(signal)
    except Rejection:
        return False
    return True


@settings(max_examples=400, deadline=None)
@given(
    hint=st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(10**9), places=4),
    symbol=st.sampled_from([("BTCUSDT", Decimal("0.00001")), ("ETHUSDT", Decimal("0.0001"))]),
    steps=st.integers(min_value=1, max_value=60000),
    side=st.sampled_from(["buy", "sell"]),
    market_type=st.sampled_from(["spot", "future"]),
    leverage=st.sampled_from([1, 3]),
    reduce_only=st.booleans(),
    tolerance=st.sampled_from([Decimal(0), Decimal(1), Decimal(5), Decimal(100)]),
    max_notional=st.sampled_from([None, Decimal(1000), Decimal(25000)]),
    minimum=st.sampled_from([Decimal(0), Decimal(10), Decimal(100)]),
)
def test_no_hint_makes_a_check_more_permissive(
    hint: Decimal,
    symbol: tuple[str, Decimal],
    steps: int,
    side: str,
    market_type: str,
    leverage: int,
    reduce_only: bool,
    tolerance: Decimal,
    max_notional: Decimal | None,
    minimum: Decimal,
) -> None:
    broker = paper(market_type, leverage)
    name, step = symbol
    route: RouteContext = route_for(broker, limits=Limits(max_notional=max_notional))
    market = broker.market(name)
    assert market is not None
    bare = Order(name, side, "MARKET", steps * step, reduce_only=reduce_only and market_type == "future")  # type: ignore[arg-type]
    hinted = dataclasses.replace(bare, price_hint=hint)
    notional = build(NotionalCheck, route, min=minimum, price_tolerance_pct=tolerance)
    limits, balance = build(EnvironmentLimits, route), build(BalanceCheck, route)

    def signal(order: Order, *, priced: bool) -> Signal:
        base = Signal("sig", "BINANCE", {}, 0.0, order=order, market=market)
        if not priced:
            return base
        prices, _ = check_prices(order, name, broker, tolerance)  # what notional hands on
        return base.replace(prices=prices)

    for stage, priced in ((notional, False), (limits, True), (balance, True)):
        if passes(stage, signal(hinted, priced=priced)):
            assert passes(stage, signal(bare, priced=priced)), (stage, hint)


def test_a_flattrade_market_order_is_valued_at_its_protected_limit() -> None:
    """FlatTrade takes only limit orders: a MARKET buy goes out at last + 0.5 % and may fill up
    to there, so the limits and the balance value it there, not at the last price."""
    with ServingNoren(FakeNoren()) as oms:
        options = {"adapter": "flattrade", "api_url": oms.url, "user_id": "FT0001", "token": "tok-not-a-secret"}
        broker = build_broker("flattrade", options, config_dir=CONFIG_DIR, file="test")
        buy = Order("CIPLA", "buy", "MARKET", Decimal(10))
        sell = Order("CIPLA", "sell", "MARKET", Decimal(10))
        last = broker.price("CIPLA")
        bought, _ = check_prices(buy, "CIPLA", broker, Decimal(1))
        sold, _ = check_prices(sell, "CIPLA", broker, Decimal(1))
    assert (bought.low, bought.high) == (last, Decimal("1507.5"))
    assert (sold.low, sold.high) == (Decimal("1492.5"), last)


@pytest.mark.parametrize(
    ("value", "shown"),
    [(Decimal("10.001"), "11"), (Decimal("10"), "10"), (Decimal("9.991"), "10"), (Decimal("1.234"), "1.24")],
)
def test_a_distance_is_shown_rounded_away_from_the_tolerance(value: Decimal, shown: str) -> None:
    assert percent(value) == shown


@pytest.mark.parametrize(
    ("hint", "market", "prices", "note"),
    [
        ("0.5", "0.5", ("0.5", "0.5"), None),  # a price under 1 is a price
        (
            "0.505",
            "0.5",
            ("0.5", "0.5"),
            "price hint 0.505 ignored: 1% away from the market price 0.5 (tolerance 0.9%)",
        ),
        ("0", "100", ("100", "100"), "price hint 0 ignored: not comparable with the market price 100 (tolerance 0.9%)"),
        ("5", "0", ("0", "0"), "price hint 5 ignored: not comparable with the market price 0 (tolerance 0.9%)"),
    ],
)
def test_a_hint_counts_only_against_a_real_market_price(
    hint: str, market: str, prices: tuple[str, str], note: str | None
) -> None:
    checked, said = _with_hint(Decimal(hint), Decimal(market), Decimal("0.9"))
    assert ((checked.low, checked.high), said) == ((Decimal(prices[0]), Decimal(prices[1])), note)


def test_a_reduce_only_futures_order_is_exempt_from_the_markets_minimum(tmp_path: Path) -> None:
    """Binance exempts reduce-only USD-M orders from its minimum notional (a small position can
    always be closed); the route's own minimum (10 USDT) still holds."""
    environ = {"ORDERGATE_DB": str(tmp_path / "j.db"), "BINANCE_MARKET_TYPE": "future"}
    app = create_app(load_settings("development", CONFIG_DIR, environ=environ))
    try:
        client = testing.TestClient(app)
        small = {"broker": "BINANCE", "symbol": "BTCUSDT", "side": "sell", "quantity": "0.001", "type": "MARKET"}
        opening = client.simulate_post("/webhook", body=json.dumps(small)).json
        closing = client.simulate_post("/webhook", body=json.dumps({**small, "reduceOnly": True})).json
    finally:
        app.journal.close()
    assert (opening["error"], opening["stage"]) == ("Order size too small", "notional")
    # past notional: refused only by the paper exchange, as Binance does, for want of a position
    assert (closing["error"], closing["stage"]) == ("ReduceOnly Order is rejected.", "execute"), closing
