"""Paper is the exchange's twin: the same market rules, so the same signal gets the same decision.

The paper broker reads ``config/markets/`` (made by ``scripts/extract_markets.py``); the ccxt
broker reads the exchange's ``exchangeInfo`` through ccxt and ``market_of``. Both are built from
the shipped configuration with ``BINANCE_MARKET_TYPE`` as a user sets it, the exchange replayed
from a cassette the test writes (``exchange_cassette.py``) with the bodies of ``responses/``.
"""

from __future__ import annotations

import copy
import importlib.util
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from falcon import testing

from ordergate.app import OrdergateApp, create_app
from ordergate.brokers.base import load_markets
from ordergate.brokers.ccxt import CcxtBroker
from ordergate.brokers.paper import PaperBroker
from ordergate.config import load_settings
from ordergate.pipeline.signal import Market
from tests.brokers.exchange_cassette import Sent, binance_interactions, body, replayed
from tests.conftest import CONFIG_DIR, ROOT

SECRET = "hook-secret-not-a-secret"
KEYS = {"BINANCE_API_KEY": "test-key-not-a-secret", "BINANCE_API_SECRET": "test-secret-not-a-secret"}
HOSTS = {"spot": "https://testnet.binance.vision", "future": "https://demo-fapi.binance.com"}
INFO = {"spot": "spot-exchangeInfo", "future": "usdm-exchangeInfo"}
PRICES = {"BTCUSDT": "43500", "ETHUSDT": "2500"}  # the paper table's
# the paper twin's starting account, as config/ordergate.yaml gives it
BALANCES = {"spot": {"USDT": "10000", "BTC": "0.1", "ETH": "1"}, "future": {"USDT": "10000"}}


def rules(market: Market) -> tuple[Any, ...]:
    """What a check decides by (the exchange's own symbol spelling aside)."""
    return (
        market.symbol,
        market.base,
        market.quote,
        market.type,
        market.tick_size,
        market.step_size,
        market.min_qty,
        market.max_qty,
        market.min_notional,
    )


def extract_script() -> Any:
    spec = importlib.util.spec_from_file_location("extract_markets", ROOT / "scripts" / "extract_markets.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def paper_twin(market_type: str, tmp_path: Path) -> PaperBroker:
    """The development environment's BINANCE broker, as BINANCE_MARKET_TYPE makes it."""
    environ = {"BINANCE_MARKET_TYPE": market_type, "ORDERGATE_DB": str(tmp_path / "paper.db")}
    settings = load_settings("development", CONFIG_DIR, environ=environ)
    options = dict(settings.data["brokers"][settings.data["routes"]["BINANCE"]["broker"]])
    return PaperBroker.from_config("paper_binance", options, config_dir=CONFIG_DIR, file="ordergate.yaml")


@pytest.fixture
def exchange(tmp_path: Path) -> Iterator[Any]:
    """A factory: the testnet app's BINANCE broker for a market type; closed at the end."""
    built: list[CcxtBroker] = []

    def make(market_type: str, *, environment: str = "testnet") -> OrdergateApp:
        environ = {
            **KEYS,
            "WEBHOOK_SECRET": SECRET,
            "BINANCE_MARKET_TYPE": market_type,
            "ORDERGATE_DB": str(tmp_path / f"{environment}-{len(built)}.db"),
        }
        settings = load_settings(environment, CONFIG_DIR, environ=environ)
        settings.data["limits"]["max_notional"] = None  # the environment's policy is not the twin's
        app = create_app(settings)
        for broker in app.service.brokers.values():
            if isinstance(broker, CcxtBroker):
                built.append(broker)
        return app

    yield make
    for broker in built:
        broker.close()


# -- the same rules --------------------------------------------------------------------------------


def _stricter_market_lot(info: dict[str, Any]) -> dict[str, Any]:
    """The same exchangeInfo, its MARKET_LOT_SIZE coarser and tighter than LOT_SIZE."""
    info = copy.deepcopy(info)
    for symbol in info["symbols"]:
        for rule in symbol["filters"]:
            if rule["filterType"] == "MARKET_LOT_SIZE":
                rule.update(stepSize="0.01", minQty="0.02", maxQty="50")
    return info


@pytest.mark.parametrize("market_type", ["spot", "future"])
def test_paper_markets_are_the_exchanges_for_every_symbol_both_know(
    exchange: Any, tmp_path: Path, market_type: str
) -> None:
    with replayed(tmp_path, binance_interactions(HOSTS[market_type], market_type)):
        broker = exchange(market_type).service.brokers["binance"]
    paper = paper_twin(market_type, tmp_path)
    assert isinstance(broker, CcxtBroker)
    shared = {s for s in ("BTCUSDT", "ETHUSDT", "SOLUSDT") if broker.market(s) and paper.market(s)}
    assert shared == {"BTCUSDT", "ETHUSDT"}  # all the cassette's
    for symbol in sorted(shared):
        ours, theirs = paper.market(symbol), broker.market(symbol)
        assert ours is not None
        assert theirs is not None
        assert rules(ours) == rules(theirs), symbol
    btc = paper.market("BTCUSDT")
    assert btc is not None
    expected = {"spot": ("0.00001", "5"), "future": ("0.001", "100")}[market_type]
    assert (btc.step_size, btc.min_notional) == tuple(map(type(btc.step_size), expected))


@pytest.mark.parametrize("market_type", ["spot", "future"])
@pytest.mark.parametrize("variant", ["as sent", "market lot stricter"])
def test_the_market_file_script_reads_exchange_info_as_the_ccxt_adapter_does(
    exchange: Any, tmp_path: Path, market_type: str, variant: str
) -> None:
    info = body(INFO[market_type])
    if variant == "market lot stricter":
        info = _stricter_market_lot(info)
    with replayed(tmp_path, binance_interactions(HOSTS[market_type], market_type, info=info)):
        broker = exchange(market_type).service.brokers["binance"]
    assert isinstance(broker, CcxtBroker)
    script = extract_script()
    market_file = tmp_path / "markets.json"
    with market_file.open("w", encoding="utf-8") as out:
        script.write(script.extract([info], "test"), out)
    paper = load_markets(market_file, market_type)  # type: ignore[arg-type]
    assert set(paper) == {"BTCUSDT", "ETHUSDT"}
    for symbol, ours in paper.items():
        theirs = broker.market(symbol)
        assert theirs is not None
        assert rules(ours) == rules(theirs), symbol
    if variant == "market lot stricter":  # market orders obey MARKET_LOT_SIZE on Binance
        btc = paper["BTCUSDT"]
        assert (str(btc.step_size), str(btc.min_qty), str(btc.max_qty)) == ("0.01", "0.02", "50")


def test_the_futures_market_file_says_it_is_synthesized() -> None:
    data = json.loads((CONFIG_DIR / "markets" / "binance-usdm.json").read_text())
    assert data["source"].startswith("SYNTHESIZED, not recorded")
    assert set(data["markets"]) >= {"BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT", "DOGEUSDT"}
    paper = paper_twin("future", Path("/nonexistent"))
    for symbol in data["markets"]:  # futures paper can price every market it lists
        assert paper.price(symbol) > 0


# -- the same decisions ----------------------------------------------------------------------------

# (signal, spot decision, futures decision): a decision is the status and the words, or for an
# order placed, the quantity sent. The seed's checks hold on spot and fail on USD-M futures.
TOO_SMALL = (422, "Order size too small")
BTC = {"symbol": "BTCUSDT", "type": "MARKET"}
CASES: list[tuple[dict[str, Any], Any, Any]] = [
    ({**BTC, "side": "buy", "quantity": "0.001"}, (200, "0.001"), TOO_SMALL),  # 43.5 USDT: min 10 / 100
    ({**BTC, "side": "buy", "quantity": "0.0001"}, TOO_SMALL, TOO_SMALL),  # 4.35 / step 0.001 leaves 0
    ({**BTC, "side": "buy", "quantity": "0.0012345"}, (200, "0.00123"), TOO_SMALL),  # futures: 0.001 = 43.5
    ({**BTC, "side": "buy", "quantity": "0.0032345"}, (200, "0.00323"), (200, "0.003")),
    ({**BTC, "side": "buy", "quantity": "0.123456789"}, (422, "Invalid quantity precision"), None),
    ({**BTC, "side": "sell", "quantity": "0.001"}, (200, "0.001"), TOO_SMALL),  # spot: sells the coin
    ({**BTC, "side": "sell", "quantity": "1"}, (422, "Insufficient balance"), (422, "Insufficient balance")),
    (
        {"symbol": "ETHUSDT", "side": "sell", "quantity": "0.1", "type": "LIMIT", "price": "2500"},
        (200, "0.1"),
        (200, "0.1"),
    ),
    ({"symbol": "ETHUSDT", "side": "buy", "quantity": "0.003", "type": "MARKET"}, TOO_SMALL, TOO_SMALL),  # 7.5 USDT
]


def decide(client: testing.TestClient, sent: Sent | None, number: int, signal: dict[str, Any]) -> Any:
    payload = {"broker": "BINANCE", "id": f"twin-{number}", **signal}
    before = len(sent.orders()) if sent is not None else 0
    result = client.simulate_post(f"/webhook/{SECRET}", body=json.dumps(payload))
    answer = result.json
    notes = tuple(answer.get("notes") or ())
    placed = sent.orders()[before:] if sent is not None else []
    if result.status_code != 200:
        assert placed == [], answer
        return (result.status_code, answer["error"]), notes
    if sent is None:  # paper: what it filled
        return (200, answer["quantity"]), notes
    assert len(placed) == 1, answer
    return (200, placed[0]["quantity"]), notes  # the exchange: what was sent


@pytest.mark.parametrize("market_type", ["spot", "future"])
def test_the_same_signals_get_the_same_decisions_on_paper_and_on_testnet(
    exchange: Any, tmp_path: Path, market_type: str
) -> None:
    paper = testing.TestClient(exchange(market_type, environment="development"))
    interactions = binance_interactions(
        HOSTS[market_type], market_type, balances=BALANCES[market_type], prices=PRICES, orders=True, resting=True
    )
    with replayed(tmp_path, interactions) as sent:
        testnet = testing.TestClient(exchange(market_type))
        for number, (signal, on_spot, on_futures) in enumerate(CASES):
            expected = on_spot if market_type == "spot" else on_futures
            on_paper = decide(paper, None, number, signal)
            on_testnet = decide(testnet, sent, number, signal)
            assert on_paper == on_testnet, signal
            if expected is not None:
                assert on_paper[0] == expected, signal
    if market_type == "future":  # 0.0012345 -> 0.001 on both, then too small for the 100 minimum
        assert "quantity 0.0012345 truncated to 0.001 (step 0.001)" in decide(paper, None, 99, CASES[2][0])[1]


def test_the_default_market_is_spot_on_paper_and_on_the_exchange(exchange: Any, tmp_path: Path) -> None:
    for environment in ("development", "testnet", "live"):
        environ = {"WEBHOOK_SECRET": SECRET, "ORDERGATE_DB": str(tmp_path / "j.db")}
        brokers = load_settings(environment, CONFIG_DIR, environ=environ).data["brokers"]
        assert [brokers[b]["market_type"] for b in ("paper_binance", "binance", "binance_live")] == ["spot"] * 3
    app = create_app(load_settings("development", CONFIG_DIR, environ={"ORDERGATE_DB": str(tmp_path / "d.db")}))
    paper = app.service.brokers["paper_binance"]
    assert isinstance(paper, PaperBroker)
    signal = {"broker": "BINANCE", "symbol": "BTCUSDT", "side": "sell", "quantity": "0.001", "type": "MARKET"}
    result = testing.TestClient(app).simulate_post("/webhook", body=json.dumps(signal))
    assert (result.status_code, result.json["status"]) == (200, "FILLED"), result.json
    # a plain sell sells the coin (no futures short opened)
    assert (paper.free_balance("BTC"), paper.position("BTCUSDT")) == (Decimal("0.099"), Decimal(0))
