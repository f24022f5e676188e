"""Live is where the orders go: the host a broker sends orders to decides real money, not a flag.

Each app is built from the shipped configuration as a user would, with environment variables
only (``ORDERGATE_ENV=testnet``, ``BINANCE_API_URL``, ...). The exchange is a cassette written
by the test (``exchange_cassette.py``): production hosts are never reachable from a test, and
the cassette proves what was sent, because vcrpy refuses any request it has no answer for.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from falcon import testing

from ordergate.app import OrdergateApp, create_app
from ordergate.brokers import broker_money
from ordergate.brokers.ccxt import CcxtBroker
from ordergate.brokers.flattrade import FlatTradeBroker
from ordergate.compose import route_summary
from ordergate.config import load_settings
from ordergate.parse import parse_body
from ordergate.replay import Replay, Tally
from tests.brokers.exchange_cassette import Sent, binance_interactions, replayed
from tests.conftest import CONFIG_DIR

SECRET = "hook-secret-not-a-secret"
KEYS = {"BINANCE_API_KEY": "test-key-not-a-secret", "BINANCE_API_SECRET": "test-secret-not-a-secret"}
BTC = {"broker": "BINANCE", "symbol": "BTCUSDT", "side": "buy", "quantity": "0.001", "type": "MARKET"}
DISABLED = (
    "Live trading is disabled in this environment: set ORDERGATE_ENV=live and LIVE_TRADING=yes"
    " to trade real money on BINANCE"
)
HINT = "set ORDERGATE_ENV=live and LIVE_TRADING=yes"


@pytest.fixture
def testnet(tmp_path: Path) -> Iterator[Any]:
    """A factory: the testnet app built from the shipped config with ``environ`` (and YAML edits)."""
    built: list[OrdergateApp] = []

    def make(broker_options: dict[str, Any] | None = None, **environ: str) -> OrdergateApp:
        env = {**KEYS, "WEBHOOK_SECRET": SECRET, "ORDERGATE_DB": str(tmp_path / f"{len(built)}.db"), **environ}
        settings = load_settings("testnet", CONFIG_DIR, environ=env)
        settings.data["brokers"]["binance"].update({"lookup_delay_s": 0, **(broker_options or {})})
        app = create_app(settings)
        built.append(app)
        return app

    yield make
    for app in built:
        for broker in app.service.brokers.values():
            if isinstance(broker, CcxtBroker):
                broker.close()


def send(app: OrdergateApp, sent: Sent, **signal: Any) -> tuple[int, dict[str, Any], list[str]]:
    """Post one signal; its answer and what it sent to the exchange."""
    before = len(sent.requests)
    result = testing.TestClient(app).simulate_post(f"/webhook/{SECRET}", body=json.dumps({**BTC, **signal}))
    return result.status_code, result.json, sent.paths()[before:]


def summary(app: OrdergateApp, route: str) -> str:
    return next(line for line in route_summary(app.service) if line.startswith(f"route {route} "))


# -- a production host is real money, whatever testnet says ---------------------------------------


@pytest.mark.parametrize(
    ("market_type", "api_url"),
    [
        ("future", "https://fapi.binance.com"),
        ("spot", "https://api.binance.com"),
        ("spot", "https://api-gcp.binance.com"),
    ],
)
def test_testnet_pointed_at_binance_production_is_real_money_and_sends_no_order(
    testnet: Any, tmp_path: Path, market_type: str, api_url: str
) -> None:
    interactions = binance_interactions(api_url, market_type, prices={"BTCUSDT": "43500"}, orders=True)
    with replayed(tmp_path, interactions) as sent:
        app = testnet(BINANCE_MARKET_TYPE=market_type, BINANCE_API_URL=api_url)
        broker = app.service.brokers["binance"]
        assert broker.live
        host = api_url.removeprefix("https://")
        assert summary(app, "BINANCE") == (
            f"route BINANCE → binance (binance {market_type}, {host}): REAL MONEY, live trading disabled ({HINT})"
        )
        status, body, cost = send(app, sent, id="real-1")
        assert (status, body["error"], body["code"]) == (422, DISABLED, "live_trading_disabled")
        assert cost == []  # refused before any request: no ticker, no order
        status, body, cost = send(app, sent, id="real-2", price="43500", quantity="0.01")
        assert (status, body["error"]) == (422, DISABLED)
        assert cost == []
    assert sent.orders() == []
    assert {url.split("/", 3)[2] for _, url, _ in sent.requests} == {host}  # startup reads only


def test_binance_testnet_false_behind_loopback_is_test_money_and_trades(testnet: Any, tmp_path: Path) -> None:
    api_url = "http://127.0.0.1:18443"
    interactions = binance_interactions(api_url, "spot", prices={"BTCUSDT": "43500"}, orders=True)
    with replayed(tmp_path, interactions) as sent:
        app = testnet(BINANCE_MARKET_TYPE="spot", BINANCE_API_URL=api_url, BINANCE_TESTNET="false")
        assert not app.service.brokers["binance"].live
        assert summary(app, "BINANCE") == "route BINANCE → binance (binance spot testnet, 127.0.0.1): test money"
        status, body, cost = send(app, sent, id="loopback-1")
    assert (status, body["success"]) == (200, True), body
    assert cost[-1] == f"POST {api_url}/api/v3/order"
    assert [o["quantity"] for o in sent.orders()] == ["0.001"]


@pytest.mark.parametrize(("sandbox", "live"), [(False, True), (True, False)])
def test_an_unknown_host_is_real_money_unless_the_yaml_says_sandbox(
    testnet: Any, tmp_path: Path, sandbox: bool, live: bool
) -> None:
    api_url = "https://binance-proxy.example.com"
    interactions = binance_interactions(api_url, "spot", prices={"BTCUSDT": "43500"}, orders=True)
    with replayed(tmp_path, interactions) as sent:
        options = {"sandbox": True} if sandbox else {}
        app = testnet(options, BINANCE_MARKET_TYPE="spot", BINANCE_API_URL=api_url)
        assert app.service.brokers["binance"].live is live
        status, body, _ = send(app, sent, id="proxy-1")
    if live:
        assert (status, body["error"]) == (422, DISABLED)
        assert sent.orders() == []
    else:
        assert (status, body["success"]) == (200, True), body
        assert len(sent.orders()) == 1


def test_sandbox_never_vouches_for_a_production_host(testnet: Any, tmp_path: Path) -> None:
    api_url = "https://fapi.binance.com"
    with replayed(tmp_path, binance_interactions(api_url, "future", prices={"BTCUSDT": "43500"})) as sent:
        app = testnet({"sandbox": True}, BINANCE_MARKET_TYPE="future", BINANCE_API_URL=api_url)
        assert app.service.brokers["binance"].live
        status, body, cost = send(app, sent, id="vouched-1", quantity="0.01")
    assert (status, body["error"], cost) == (422, DISABLED, [])


def test_the_shipped_testnet_brokers_are_test_money(testnet: Any, tmp_path: Path) -> None:
    spot = binance_interactions("https://testnet.binance.vision", "spot")
    futures = binance_interactions("https://demo-fapi.binance.com", "future")
    with replayed(tmp_path, spot + futures):
        for market_type, host in [("spot", "testnet.binance.vision"), ("future", "demo-fapi.binance.com")]:
            app = testnet(BINANCE_MARKET_TYPE=market_type)
            assert not app.service.brokers["binance"].live
            assert summary(app, "BINANCE") == (
                f"route BINANCE → binance (binance {market_type} testnet, {host}): test money"
            )
            assert summary(app, "FLATTRADE") == "route FLATTRADE → paper_nse (paper): paper"


# -- FlatTrade: real money unless its orders go to loopback ----------------------------------------


@pytest.mark.parametrize(
    ("options", "money"),
    [
        ({}, "live"),  # the shipped piconnect.flattrade.in
        ({"sandbox": True}, "live"),  # FlatTrade's own host: sandbox cannot vouch for it
        ({"api_url": "http://127.0.0.1:9/PiConnectAPI"}, "test"),
        ({"api_url": "http://localhost:9/PiConnectAPI"}, "test"),
        ({"api_url": "https://noren-uat.example.com/PiConnectAPI"}, "live"),
        ({"api_url": "https://noren-uat.example.com/PiConnectAPI", "sandbox": True}, "test"),
    ],
)
def test_flattrade_is_real_money_unless_its_orders_go_to_loopback(options: dict[str, Any], money: str) -> None:
    broker = FlatTradeBroker.from_config(
        "flattrade", {"adapter": "flattrade", **options}, config_dir=CONFIG_DIR, file="test.yaml"
    )
    assert (broker.money, broker.live) == (money, money == "live")


def test_the_live_environment_says_which_routes_are_real_money_and_whether_they_may_trade(
    testnet: Any, tmp_path: Path
) -> None:
    environ = {
        **KEYS,
        "WEBHOOK_SECRET": SECRET,
        "BINANCE_LIVE_API_KEY": "live-key-not-a-secret",
        "BINANCE_LIVE_API_SECRET": "live-secret-not-a-secret",
        "FLATTRADE_USER_ID": "FT000000",
    }
    interactions = binance_interactions("https://testnet.binance.vision", "spot") + binance_interactions(
        "https://api.binance.com", "spot"
    )
    for live_trading, words in [("no", f"live trading disabled ({HINT})"), ("yes", "live trading enabled")]:
        settings = load_settings(
            "live",
            CONFIG_DIR,
            environ={**environ, "LIVE_TRADING": live_trading, "ORDERGATE_DB": str(tmp_path / f"{live_trading}.db")},
        )
        with replayed(tmp_path, interactions):
            app = create_app(settings)
        try:
            assert route_summary(app.service) == [
                "route BINANCE → binance (binance spot testnet, testnet.binance.vision): test money",
                f"route BINANCE_REAL → binance_live (binance spot, api.binance.com): REAL MONEY, {words}",
                f"route FLATTRADE → flattrade (FlatTrade NSE, piconnect.flattrade.in): REAL MONEY, {words}",
            ]
        finally:
            for broker in app.service.brokers.values():
                if isinstance(broker, CcxtBroker):
                    broker.close()


@pytest.mark.parametrize(("api_url", "rejected"), [("https://fapi.binance.com", 1), ("http://127.0.0.1:18443", 0)])
def test_a_replay_keeps_the_guard_of_where_the_real_orders_would_go(
    tmp_path: Path, api_url: str, rejected: int
) -> None:
    environ = {
        "WEBHOOK_SECRET": SECRET,
        "ORDERGATE_DB": str(tmp_path / "j.db"),
        "BINANCE_MARKET_TYPE": "future",
        "BINANCE_API_URL": api_url,
    }
    replay = Replay(load_settings("testnet", CONFIG_DIR, environ=environ))  # paper stands in: no request
    tally = Tally()
    replay.one(parse_body(json.dumps({**BTC, "quantity": "0.01"}).encode()), tally)
    assert tally.counts[("BINANCE", "rejected")] == rejected
    assert tally.counts[("BINANCE", "filled")] == 1 - rejected
    if rejected:
        assert list(tally.reasons) == [(DISABLED, "-")]


@pytest.mark.parametrize(
    ("exchange", "testnet", "api_url", "money"),
    [
        ("binance", True, None, "test"),
        ("binance", False, None, "live"),
        ("binance", True, "https://fapi.binance.com", "live"),
        ("binance", False, "http://127.0.0.1:18443", "test"),
        ("binanceusdm", True, None, "test"),
        ("binanceus", False, None, "live"),
        ("bybit", True, None, "test"),  # ccxt's urls['test'] for bybit: its own test hosts
        ("bybit", False, None, "live"),
        ("okx", True, None, "test"),  # ccxt's sandbox map: OKX's host with ccxt's simulated-trading header
        ("okx", False, None, "live"),  # the same host without it
        ("okx", True, "https://www.okx.com", "live"),  # rewritten: no longer ccxt's own sandbox map
    ],
)
def test_ccxt_exchanges_are_judged_by_the_urls_ccxt_will_use(
    exchange: str, testnet: bool, api_url: str | None, money: str
) -> None:
    options = {"adapter": "ccxt", "exchange": exchange, "testnet": testnet, "api_url": api_url}
    assert broker_money("broker", options, file="test.yaml") == money
