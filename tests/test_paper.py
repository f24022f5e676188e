"""The paper broker: futures positions and margin, spot and equity cash, resting limits, threads."""

from __future__ import annotations

import itertools
import re
import sys
import threading
import time
from collections.abc import Iterator
from decimal import Decimal

import pytest

from ordergate.brokers.base import Broker
from ordergate.brokers.paper import PaperBroker
from ordergate.pipeline.errors import ConfigError, Rejection
from ordergate.pipeline.signal import Market, Order, Placement
from tests.conftest import CONFIG_DIR

PRICES = {"BTCUSDT": Decimal(43500), "ETHUSDT": Decimal(2500)}
MARKET_FILES = {"spot": "markets/binance-spot.json", "future": "markets/binance-usdm.json"}
_ids = itertools.count(1)


def crypto(
    market_type: str = "future", *, leverage: int = 1, cls: type[PaperBroker] = PaperBroker, **balances: Decimal
) -> PaperBroker:
    options = {
        "adapter": "paper",
        "market_type": market_type,
        "leverage": leverage,
        # each market type on its own exchange's rules, as config/ordergate.yaml's paper_binance
        "markets": MARKET_FILES,
        "balances": balances or {"USDT": Decimal(10000)},
        "prices": PRICES,
    }
    return cls.from_config("paper_binance", options, config_dir=CONFIG_DIR, file="test.yaml")


def nse(**balances: Decimal) -> PaperBroker:
    options = {
        "adapter": "paper",
        "market_type": "equity",
        "markets": "markets/nse.yaml",
        "balances": balances or {"INR": Decimal(100000)},
        "prices": {"CIPLA": Decimal(1500)},
    }
    return PaperBroker.from_config("paper_nse", options, config_dir=CONFIG_DIR, file="test.yaml")


def place(
    broker: PaperBroker,
    side: str,
    quantity: str,
    symbol: str = "BTCUSDT",
    *,
    price: str | None = None,
    reduce_only: bool = False,
    client_order_id: str | None = None,
) -> Placement:
    market = broker.market(symbol)
    assert market is not None
    order = Order(
        symbol=symbol,
        side=side,  # type: ignore[arg-type]
        type="MARKET" if price is None else "LIMIT",
        quantity=Decimal(quantity),
        price=None if price is None else Decimal(price),
        reduce_only=reduce_only,
        client_order_id=client_order_id or f"og-{next(_ids)}",
    )
    return broker.place_order(order, market)


def test_paper_broker_is_a_broker() -> None:
    assert isinstance(crypto(), Broker)


# -- futures ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("open_side", "close_side", "exit_price", "pnl"),
    [
        ("buy", "sell", "44000", "50"),  # long 0.1 from 43,500: +500 a coin
        ("buy", "sell", "43000", "-50"),
        ("sell", "buy", "43000", "50"),  # short 0.1 from 43,500
        ("sell", "buy", "44000", "-50"),
        ("buy", "sell", "43500", "0"),
    ],
)
def test_futures_close_books_pnl_and_releases_margin(
    open_side: str, close_side: str, exit_price: str, pnl: str
) -> None:
    broker = crypto()
    place(broker, open_side, "0.1")
    assert broker.position("BTCUSDT") == (Decimal("0.1") if open_side == "buy" else Decimal("-0.1"))
    assert broker.free_balance("USDT") == Decimal(10000 - 4350)  # margin at leverage 1
    broker.set_price("BTCUSDT", Decimal(exit_price))
    closed = place(broker, close_side, "0.1")
    assert (closed.status, closed.average_price) == ("FILLED", Decimal(exit_price))
    assert broker.position("BTCUSDT") == 0
    assert broker.free_balance("USDT") == Decimal(10000) + Decimal(pnl)


def test_futures_extending_a_position_averages_the_entry() -> None:
    broker = crypto()
    place(broker, "buy", "0.1")
    broker.set_price("BTCUSDT", Decimal(44500))
    place(broker, "buy", "0.1")  # entry now 44,000
    assert broker.free_balance("USDT") == Decimal(10000 - 8800)
    broker.set_price("BTCUSDT", Decimal(44000))
    place(broker, "sell", "0.2")
    assert broker.free_balance("USDT") == Decimal(10000)  # no PnL at the average entry


def test_futures_long_then_sell_closes() -> None:
    broker = crypto()
    place(broker, "buy", "0.1")
    assert (broker.position("BTCUSDT"), broker.free_balance("USDT")) == (Decimal("0.1"), Decimal(5650))
    place(broker, "sell", "0.1")
    assert (broker.position("BTCUSDT"), broker.free_balance("USDT")) == (Decimal(0), Decimal(10000))


def test_futures_sell_from_flat_opens_a_short() -> None:
    broker = crypto()
    placement = place(broker, "sell", "0.1")
    assert (placement.status, placement.filled) == ("FILLED", Decimal("0.1"))
    assert broker.position("BTCUSDT") == Decimal("-0.1")
    assert broker.free_balance("USDT") == Decimal(5650)


def test_futures_partial_close_releases_its_share_of_margin() -> None:
    broker = crypto()
    place(broker, "buy", "0.2")
    assert broker.free_balance("USDT") == Decimal(10000 - 8700)
    place(broker, "sell", "0.1")
    assert (broker.position("BTCUSDT"), broker.free_balance("USDT")) == (Decimal("0.1"), Decimal(10000 - 4350))
    place(broker, "sell", "0.1")
    assert (broker.position("BTCUSDT"), broker.free_balance("USDT")) == (Decimal(0), Decimal(10000))


def test_futures_flip_opens_the_rest_the_other_way() -> None:
    broker = crypto()
    place(broker, "buy", "0.1")
    place(broker, "sell", "0.2")
    assert (broker.position("BTCUSDT"), broker.free_balance("USDT")) == (Decimal("-0.1"), Decimal(5650))


@pytest.mark.parametrize(("leverage", "free"), [(1, None), (2, None), (5, "5650"), (10, "7825")])
def test_futures_margin_is_notional_over_leverage(leverage: int, free: str | None) -> None:
    broker = crypto(leverage=leverage)
    assert broker.leverage("BTCUSDT") == Decimal(leverage)
    if free is None:
        with pytest.raises(Rejection, match="Insufficient balance"):
            place(broker, "buy", "0.5")  # 21,750 notional
        assert broker.position("BTCUSDT") == 0
    else:
        place(broker, "buy", "0.5")
        assert broker.free_balance("USDT") == Decimal(free)


def test_futures_reduce_only_never_opens_a_position() -> None:
    broker = crypto()
    with pytest.raises(Rejection):
        place(broker, "buy", "1", reduce_only=True)
    assert broker.position("BTCUSDT") == 0
    assert broker.free_balance("USDT") >= 0


def test_futures_reversal_needs_only_the_margin_of_the_new_position() -> None:
    broker = crypto()
    place(broker, "buy", "0.15")
    assert broker.free_balance("USDT") == Decimal(3475)
    place(broker, "sell", "0.3")
    assert (broker.position("BTCUSDT"), broker.free_balance("USDT")) == (Decimal("-0.15"), Decimal(3475))


# -- spot and equities -----------------------------------------------------------------------


def test_spot_buy_and_sell_move_cash_and_holdings() -> None:
    broker = crypto("spot")
    place(broker, "buy", "0.1")
    assert (broker.free_balance("USDT"), broker.free_balance("BTC")) == (Decimal(5650), Decimal("0.1"))
    place(broker, "sell", "0.05")
    assert (broker.free_balance("USDT"), broker.free_balance("btc")) == (Decimal(7825), Decimal("0.05"))
    assert broker.leverage("BTCUSDT") == 1
    with pytest.raises(Rejection, match="Insufficient balance"):
        place(broker, "sell", "0.06")
    assert broker.free_balance("BTC") == Decimal("0.05")


def test_spot_buy_beyond_cash_is_refused_and_changes_nothing() -> None:
    broker = crypto("spot")
    with pytest.raises(Rejection) as info:
        place(broker, "buy", "0.23", client_order_id="og-x")  # 10,005 USDT
    assert (info.value.reason, info.value.code) == ("Insufficient balance", "insufficient_balance")
    assert (broker.free_balance("USDT"), broker.free_balance("BTC")) == (Decimal(10000), Decimal(0))
    assert broker.find_order("og-x", "BTCUSDT") is None


def test_equity_sell_without_holdings_is_insufficient_balance() -> None:
    broker = nse()
    with pytest.raises(Rejection, match=r"^Insufficient balance$"):
        place(broker, "sell", "10", "CIPLA")
    assert broker.free_balance("INR") == Decimal(100000)
    place(broker, "buy", "10", "CIPLA")
    assert (broker.free_balance("INR"), broker.free_balance("CIPLA")) == (Decimal(85000), Decimal(10))
    place(broker, "sell", "10", "CIPLA")
    assert (broker.free_balance("INR"), broker.free_balance("CIPLA")) == (Decimal(100000), Decimal(0))


# -- limit orders ----------------------------------------------------------------------------


def test_resting_limit_holds_funds_and_returns_new() -> None:
    broker = crypto("spot")
    resting = place(broker, "buy", "0.1", price="40000", client_order_id="og-rest")
    assert (resting.status, resting.filled, resting.average_price, resting.price) == (
        "NEW",
        Decimal(0),
        None,
        Decimal(40000),
    )
    assert broker.free_balance("USDT") == Decimal(6000)  # 4,000 held at the limit price
    assert broker.free_balance("BTC") == 0
    with pytest.raises(Rejection, match="Insufficient balance"):
        place(broker, "buy", "0.2", price="40000")  # another 8,000: only 6,000 free
    with pytest.raises(Rejection) as info:
        place(broker, "buy", "0.01", price="40000", client_order_id="og-rest")
    assert (info.value.reason, info.value.code) == ("Duplicate order sent.", "duplicate_client_order_id")
    assert broker.find_order("og-rest", "BTCUSDT") == resting


def test_futures_resting_limit_holds_margin_without_a_position() -> None:
    broker = crypto()
    resting = place(broker, "sell", "0.1", price="50000")
    assert resting.status == "NEW"
    assert broker.position("BTCUSDT") == 0
    assert broker.free_balance("USDT") == Decimal(5000)


@pytest.mark.parametrize(("side", "price"), [("buy", "45000"), ("buy", "43500"), ("sell", "40000")])
def test_marketable_limit_fills_at_the_market_price(side: str, price: str) -> None:
    broker = crypto("spot", USDT=Decimal(10000), BTC=Decimal(1))
    placement = place(broker, side, "0.1", price=price)
    assert (placement.status, placement.filled, placement.average_price) == ("FILLED", Decimal("0.1"), Decimal(43500))
    assert placement.price == Decimal(price)  # the asked limit is kept for the record
    expected = 10000 - 4350 if side == "buy" else 10000 + 4350
    assert broker.free_balance("USDT") == Decimal(expected)


# -- reads -----------------------------------------------------------------------------------


def test_find_order_by_client_order_id() -> None:
    broker = crypto()
    first = place(broker, "buy", "0.001", client_order_id="og-a")
    second = place(broker, "buy", "0.1", "ETHUSDT", client_order_id="og-b")
    assert broker.find_order("og-a", "BTCUSDT") == first
    assert broker.find_order("og-b", "ETHUSDT") == second
    assert broker.find_order("og-c", "BTCUSDT") is None
    assert first.order_id != second.order_id
    assert (first.client_order_id, first.broker, first.base) == ("og-a", "paper_binance", "BTC")


def test_market_by_broker_alias() -> None:
    broker = nse()
    market = broker.market("CIPLA-EQ")
    assert market is not None
    assert market is broker.market("CIPLA")
    assert (market.symbol, market.quote, market.type, market.tick_size, market.step_size) == (
        "CIPLA",
        "INR",
        "equity",
        Decimal("0.05"),
        Decimal(1),
    )
    assert broker.market("NOPE-EQ") is None
    order = Order(symbol="CIPLA-EQ", side="buy", type="LIMIT", quantity=Decimal(2), price=Decimal("1499.95"))
    assert broker.order_params(order, market) == {
        "symbol": "CIPLA-EQ",
        "side": "BUY",
        "type": "LIMIT",
        "quantity": "2",
        "price": "1499.95",
        "timeInForce": "GTC",
        "newClientOrderId": "",
    }


# Spot: the recorded 2023-09 snapshot. USD-M: synthesized from Binance's published filters.
# max_qty is the stricter of LOT_SIZE and MARKET_LOT_SIZE (spot's market maximum, 168.83 BTC
# that day; futures' 120 BTC), since one Market serves limit and market orders.
@pytest.mark.parametrize(
    ("market_type", "tick", "step", "most", "minimum"),
    [("spot", "0.01", "0.00001", "168.82682004", "5"), ("future", "0.1", "0.001", "120", "100")],
)
def test_market_rules_come_from_the_exchange_of_the_market_type(
    market_type: str, tick: str, step: str, most: str, minimum: str
) -> None:
    market = crypto(market_type).market("BTCUSDT")
    assert market == Market(
        symbol="BTCUSDT",
        base="BTC",
        quote="USDT",
        type=market_type,  # type: ignore[arg-type]
        tick_size=Decimal(tick),
        step_size=Decimal(step),
        min_qty=Decimal(step),
        max_qty=Decimal(most),
        min_notional=Decimal(minimum),
        broker_symbol="BTCUSDT",
    )


def test_a_market_file_per_market_type_needs_one_for_the_chosen_type() -> None:
    options = {"adapter": "paper", "market_type": "future", "markets": {"spot": "markets/binance-spot.json"}}
    with pytest.raises(ConfigError) as info:
        PaperBroker.from_config("paper_binance", options, config_dir=CONFIG_DIR, file="test.yaml")
    assert (
        str(info.value)
        == "test.yaml:brokers.paper_binance.markets: no market file for market_type future (given: spot)"
    )


def test_price_without_a_table_entry_is_a_rejection() -> None:
    broker = crypto()
    with pytest.raises(Rejection) as info:
        place(broker, "buy", "1", "SOLUSDT")
    assert (info.value.code, info.value.reason) == (
        "no_price",
        "No paper price for SOLUSDT: add it under the broker's prices",
    )


# -- concurrency -----------------------------------------------------------------------------


@pytest.fixture
def busy_switching() -> Iterator[None]:
    """Switch threads as often as the interpreter allows, so a missing lock shows up as a race."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


@pytest.mark.usefixtures("busy_switching")
@pytest.mark.parametrize("market_type", ["spot", "future"])
@pytest.mark.parametrize("round_", range(10))
def test_concurrent_orders_never_overspend(market_type: str, round_: int) -> None:
    broker = crypto(market_type)
    start = threading.Barrier(20)
    lock = threading.Lock()
    filled: list[Placement] = []
    refused: list[str] = []
    seen_free: list[Decimal] = []

    def trader(n: int) -> None:
        start.wait()
        try:
            placement = place(broker, "buy", "0.05", client_order_id=f"og-t{n}")  # 2,175 USDT each
        except Rejection as rejection:
            with lock:
                refused.append(rejection.reason)
        else:
            with lock:
                filled.append(placement)
        free = broker.free_balance("USDT")
        with lock:
            seen_free.append(free)

    threads = [threading.Thread(target=trader, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)

    assert (len(filled), len(refused)) == (4, 16)  # 4 x 2,175 = 8,700 of 10,000
    assert set(refused) == {"Insufficient balance"}
    assert min(seen_free) >= 0
    assert broker.free_balance("USDT") == Decimal(10000 - 4 * 2175)
    assert len({p.order_id for p in filled}) == 4
    if market_type == "future":
        assert broker.position("BTCUSDT") == Decimal("0.2")
    else:
        assert broker.free_balance("BTC") == Decimal("0.2")


# -- edges the mutation run found untested (make mutate) -------------------------------------


@pytest.mark.parametrize("price", ["0.5", "0.00000001", "1", "43500.12"])
def test_set_price_takes_any_positive_price(price: str) -> None:
    broker = crypto("spot")
    broker.set_price("btcusdt", Decimal(price))  # symbols are case-blind, as in the YAML table
    assert broker.price("BTCUSDT") == Decimal(price)


@pytest.mark.parametrize("price", ["0", "-1", "-0.5", "NaN", "Infinity", "-Infinity"])
def test_set_price_refuses_what_no_market_quotes(price: str) -> None:
    broker = crypto("spot")
    with pytest.raises(ValueError, match=rf"^price must be a positive number, not {re.escape(price)}$"):
        broker.set_price("BTCUSDT", Decimal(price))
    assert broker.price("BTCUSDT") == Decimal(43500)


@pytest.mark.parametrize(("side", "price"), [("buy", "43499.99"), ("sell", "43500.01")])
def test_limit_one_tick_away_from_the_market_rests(side: str, price: str) -> None:
    broker = crypto("spot", USDT=Decimal(10000), BTC=Decimal(1))
    placement = place(broker, side, "0.1", price=price)
    assert (placement.status, placement.filled, placement.average_price) == ("NEW", Decimal(0), None)


def test_sell_limit_at_the_market_price_fills() -> None:
    broker = crypto("spot", USDT=Decimal(0), BTC=Decimal(1))
    placement = place(broker, "sell", "0.1", price="43500")
    assert (placement.status, placement.average_price) == ("FILLED", Decimal(43500))
    assert (broker.free_balance("USDT"), broker.free_balance("BTC")) == (Decimal(4350), Decimal("0.9"))


def test_a_filled_client_order_id_may_be_used_again() -> None:
    # Binance refuses a duplicate client order id only among open orders (-2010); a filled one is history.
    broker = crypto("spot")
    first = place(broker, "buy", "0.01", client_order_id="og-again")
    second = place(broker, "buy", "0.01", client_order_id="og-again")
    assert (first.status, second.status) == ("FILLED", "FILLED")
    assert first.order_id != second.order_id
    assert broker.find_order("og-again", "BTCUSDT") == second
    assert broker.free_balance("BTC") == Decimal("0.02")


@pytest.mark.parametrize(("position", "close"), [("0.1", "0.1"), ("0.2", "0.1")])
def test_futures_reduce_only_may_close_all_or_part(position: str, close: str) -> None:
    broker = crypto()
    place(broker, "buy", position)
    closed = place(broker, "sell", close, reduce_only=True)
    assert closed.status == "FILLED"
    assert broker.position("BTCUSDT") == Decimal(position) - Decimal(close)


def test_futures_reduce_only_beyond_the_position_is_refused() -> None:
    broker = crypto()
    place(broker, "buy", "0.1")
    with pytest.raises(Rejection) as info:
        place(broker, "sell", "0.2", reduce_only=True)  # would also open a 0.1 short
    assert (info.value.reason, info.value.code) == ("ReduceOnly Order is rejected.", "reduce_only_rejected")
    assert broker.position("BTCUSDT") == Decimal("0.1")


def test_futures_margin_is_held_only_in_the_quote_asset() -> None:
    broker = crypto(USDT=Decimal(10000), BTC=Decimal(1))
    place(broker, "buy", "0.1")
    assert (broker.free_balance("USDT"), broker.free_balance("BTC")) == (Decimal(5650), Decimal(1))


def test_spot_ignores_the_leverage_option() -> None:
    broker = crypto("spot", leverage=5)
    assert broker.leverage("BTCUSDT") == 1
    place(broker, "buy", "0.1")
    assert broker.free_balance("USDT") == Decimal(5650)  # the full price, no margin


def test_spot_sell_credits_a_quote_asset_the_account_never_held() -> None:
    broker = crypto("spot", BTC=Decimal(1))
    place(broker, "sell", "0.1")
    assert (broker.free_balance("USDT"), broker.free_balance("BTC")) == (Decimal(4350), Decimal("0.9"))


def test_futures_extending_at_leverage_averages_the_entry_not_books_pnl() -> None:
    broker = crypto(leverage=10)
    place(broker, "buy", "0.1")
    broker.set_price("BTCUSDT", Decimal(44500))
    place(broker, "buy", "0.1")  # entry 44,000; margin (4,350 + 4,450) / 10
    assert broker.free_balance("USDT") == Decimal(10000 - 880)


def test_futures_partial_close_leaving_one_coin_keeps_its_entry() -> None:
    broker = crypto()
    place(broker, "buy", "2", "ETHUSDT")
    place(broker, "sell", "1", "ETHUSDT")
    assert (broker.position("ETHUSDT"), broker.free_balance("USDT")) == (Decimal(1), Decimal(7500))


def test_futures_flip_opens_the_rest_at_the_new_price() -> None:
    broker = crypto()
    place(broker, "buy", "0.1")
    broker.set_price("BTCUSDT", Decimal(44000))
    place(broker, "sell", "0.2")  # +50 on the long; a 0.1 short from 44,000
    assert (broker.position("BTCUSDT"), broker.free_balance("USDT")) == (Decimal("-0.1"), Decimal(10050 - 4400))


@pytest.mark.parametrize(
    ("opened", "balance", "price", "fills", "leverage"),
    [
        # long 0.2 from 43,500, now 44,500; selling 0.45 needs 0.25 x 44,500 = 11,125 of margin, paid by
        # what is free (balance - 8,700) plus what closing the long frees: its 8,700 margin and 200 profit
        ("buy", "10925", "44500", True, 1),
        ("buy", "10924.99", "44500", False, 1),
        # short 0.2 from 43,500, now 42,500: buying 0.45 needs 10,625; closing frees 8,700 and 200 profit
        ("sell", "10425", "42500", True, 1),
        ("sell", "10424.99", "42500", False, 1),
        # at leverage 2 the long's margin was 4,350 and the short needs 0.25 x 44,500 / 2 = 5,562.5
        ("buy", "5362.5", "44500", True, 2),
        ("buy", "5362.49", "44500", False, 2),
    ],
)
def test_futures_reversal_counts_the_closed_positions_margin_and_pnl(
    opened: str, balance: str, price: str, fills: bool, leverage: int
) -> None:
    broker = crypto(leverage=leverage, USDT=Decimal(balance))
    place(broker, opened, "0.2")
    broker.set_price("BTCUSDT", Decimal(price))
    reverse = "sell" if opened == "buy" else "buy"
    if fills:
        place(broker, reverse, "0.45")
        assert broker.position("BTCUSDT") == (Decimal("-0.25") if opened == "buy" else Decimal("0.25"))
        assert broker.free_balance("USDT") == 0
    else:
        with pytest.raises(Rejection, match=r"^Insufficient balance$"):
            place(broker, reverse, "0.45")
        assert broker.position("BTCUSDT") == (Decimal("0.2") if opened == "buy" else Decimal("-0.2"))


def test_defaults_are_a_spot_paper_account_of_simulated_money() -> None:
    broker = PaperBroker("p", markets={}, prices={}, balances={})
    assert (broker.market_type, broker.label, broker.name) == ("spot", "paper", "p")
    assert (broker.live, broker.missing_credentials, broker.session_error()) == (False, False, None)
    assert broker.leverage("BTCUSDT") == 1


def test_placements_keep_the_order_type_and_come_oldest_first() -> None:
    broker = crypto("spot")
    market = place(broker, "buy", "0.01")
    limit = place(broker, "buy", "0.01", price="40000")
    assert (market.type, limit.type) == ("MARKET", "LIMIT")
    assert broker.placements() == [market, limit]


def test_order_ids_start_at_the_accounts_creation_in_milliseconds() -> None:
    # so a paper account started again does not hand out the ids of the previous run
    before = int(time.time() * 1000)
    broker = crypto("spot")
    after = int(time.time() * 1000)
    first = place(broker, "buy", "0.01")
    assert before <= first.order_id <= after
    assert place(broker, "buy", "0.01").order_id == first.order_id + 1


def test_from_config_takes_the_label_and_names_a_bad_option() -> None:
    options = {"adapter": "paper", "markets": "markets/nse.yaml", "label": "practice"}
    broker = PaperBroker.from_config("paper_nse", options, config_dir=CONFIG_DIR, file="ordergate.yaml")
    assert (broker.label, broker.market_type) == ("practice", "spot")
    with pytest.raises(ConfigError) as info:
        PaperBroker.from_config("paper_nse", {**options, "leverage": 0}, config_dir=CONFIG_DIR, file="ordergate.yaml")
    assert (info.value.file, info.value.path) == ("ordergate.yaml", "brokers.paper_nse.leverage")
