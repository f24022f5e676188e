"""What an order spends (ordergate/pipeline/funds.py): the balance stage, the paper account and the
ccxt adapter's cached balance all count by this one rule."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ordergate.pipeline.funds import required_funds
from ordergate.pipeline.signal import Market, MarketType, Side

BTC = {"symbol": "BTCUSDT", "base": "BTC", "quote": "USDT"}
PRICE = Decimal(40000)


def market(market_type: MarketType) -> Market:
    if market_type == "equity":
        return Market("CIPLA", "CIPLA", "INR", type="equity")
    return Market(**BTC, type=market_type)


@pytest.mark.parametrize("side", ["buy", "sell"])
@pytest.mark.parametrize(
    ("leverage", "quantity", "margin"),
    [(1, "0.025", "1000"), (4, "0.025", "250"), (3, "0.075", "1000")],  # notional / leverage
)
def test_futures_spend_margin_in_the_quote_asset_either_way(
    side: Side, leverage: int, quantity: str, margin: str
) -> None:
    asset, needed = required_funds(market("future"), side, Decimal(quantity), PRICE, Decimal(leverage))
    assert (asset, needed) == ("USDT", Decimal(margin))


def test_reduce_only_futures_spend_nothing() -> None:
    spent = required_funds(market("future"), "sell", Decimal(1), PRICE, Decimal(1), reduce_only=True)
    assert spent == ("USDT", Decimal(0))


@pytest.mark.parametrize("market_type", ["spot", "equity"])
def test_a_buy_spends_its_value_in_the_quote_asset(market_type: MarketType) -> None:
    target = market(market_type)
    assert required_funds(target, "buy", Decimal("0.5"), PRICE, Decimal(10)) == (target.quote, Decimal(20000))


@pytest.mark.parametrize(
    ("market_type", "product"), [("spot", None), ("spot", "MIS"), ("equity", None), ("equity", "CNC")]
)
def test_a_sell_spends_what_it_sells(market_type: MarketType, product: str | None) -> None:
    target = market(market_type)
    assert required_funds(target, "sell", Decimal(3), PRICE, Decimal(1), product=product) == (target.base, Decimal(3))


@pytest.mark.parametrize("product", ["MIS", "NRML"])
def test_an_intraday_equity_sell_may_open_a_short_and_spends_funds(product: str) -> None:
    spent = required_funds(market("equity"), "sell", Decimal(10), Decimal(1500), Decimal(1), product=product)
    assert spent == ("INR", Decimal(15000))
