"""CcxtBroker._after_fill: a fill moves the cached balance by what it spent and brought in, so the
next signal's balance check needs no round trip. A real CcxtBroker over a real ccxt exchange
object, its balance cache filled by hand; no request is made."""

from __future__ import annotations

import time
from decimal import Decimal

import ccxt
import pytest

from ordergate.brokers.ccxt import CcxtBroker, _Cached
from ordergate.pipeline.signal import Market, MarketType, Placement, Side

D = Decimal


def broker(market_type: MarketType, leverage: int | None = None) -> tuple[CcxtBroker, Market]:
    account = CcxtBroker("bn", ccxt.binance(), market_type=market_type, leverage=leverage)
    account._balance = _Cached({"USDT": D(10000), "BTC": D(1)}, time.monotonic())
    return account, Market("BTCUSDT", "BTC", "USDT", type=market_type, broker_symbol="BTC/USDT")


def fill(side: Side, filled: str, average: str | None, price: str | None = None) -> Placement:
    return Placement(
        order_id=1,
        client_order_id="og-1",
        status="FILLED" if D(filled) > 0 else "NEW",
        symbol="BTCUSDT",
        side=side,
        type="MARKET" if price is None else "LIMIT",
        quantity=D("0.002"),
        filled=D(filled),
        average_price=None if average is None else D(average),
        price=None if price is None else D(price),
        base="BTC",
        broker="bn",
    )


@pytest.mark.parametrize(
    ("side", "average", "price", "usdt", "btc"),
    [
        ("buy", "40000", None, "9920", "1.002"),
        ("sell", "40000", None, "10080", "0.998"),
        ("buy", None, "39000", "9922", "1.002"),  # no average: the limit price it filled at
    ],
)
def test_a_spot_fill_moves_both_assets(side: Side, average: str | None, price: str | None, usdt: str, btc: str) -> None:
    account, market = broker("spot")
    account._after_fill(fill(side, "0.002", average, price), market)
    assert (account.free_balance("USDT"), account.free_balance("BTC")) == (D(usdt), D(btc))


@pytest.mark.parametrize("side", ["buy", "sell"])
@pytest.mark.parametrize(("leverage", "usdt"), [(None, "9920"), (4, "9980")])
def test_a_futures_fill_takes_its_margin_either_way(side: Side, leverage: int | None, usdt: str) -> None:
    account, market = broker("future", leverage)
    account._after_fill(fill(side, "0.002", "40000"), market)
    assert (account.free_balance("USDT"), account.free_balance("BTC")) == (D(usdt), D(1))


def test_a_reduce_only_futures_fill_drops_the_cache() -> None:
    account, market = broker("future", 4)
    account._after_fill(fill("sell", "0.002", "40000"), market, reduce_only=True)
    assert account._balance is None  # the margin it released depends on the entry: read afresh


def test_an_order_that_did_not_fill_moves_nothing() -> None:
    account, market = broker("spot")
    account._after_fill(fill("buy", "0", None, "39000"), market)
    assert (account.free_balance("USDT"), account.free_balance("BTC")) == (D(10000), D(1))
