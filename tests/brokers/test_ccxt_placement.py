"""CcxtBroker._placement: how an exchange's answer to an order becomes a Placement.

Binance's documented spot and USD-M order bodies (tests/brokers/responses, built from
documented bodies) as ccxt hands them over (``info`` plus ccxt's unified fields), and
variants of each field. Whole-Placement equality, so every field's source and fallback is
pinned. A real CcxtBroker over a real ccxt exchange object; no request is made.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt
import pytest

from ordergate.brokers.ccxt import CcxtBroker
from ordergate.pipeline.signal import Market, Placement

RESPONSES = Path(__file__).parent / "responses"
D = Decimal
MARKET = Market(symbol="BTCUSDT", base="BTC", quote="USDT", broker_symbol="BTC/USDT")


def _body(file: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((RESPONSES / file).read_text())
    return body


def _placement(raw: dict[str, Any], client_order_id: str = "ours") -> Placement:
    broker = CcxtBroker("bn", ccxt.binance())
    return broker._placement(raw, MARKET, client_order_id)


def _expected(**fields: Any) -> Placement:
    values: dict[str, Any] = {
        "order_id": "",
        "client_order_id": "ours",
        "status": "NEW",
        "symbol": "BTCUSDT",
        "side": "sell",
        "type": "MARKET",
        "quantity": D(0),
        "filled": D(0),
        "average_price": None,
        "price": None,
        "base": "BTC",
        "broker": "bn",
    }
    values.update(fields)
    return Placement(**values)


def test_spot_full_answer() -> None:
    # no avgPrice on spot: the average is cummulativeQuoteQty / executedQty
    raw = {"info": _body("spot-order-full.json"), "id": "28", "filled": 99.0, "average": 7.0, "status": "closed"}
    assert _placement(raw) == _expected(
        order_id=28,
        client_order_id="6gCrw2kRUAF9CvJDGP16IP",
        status="FILLED",
        side="sell",
        type="MARKET",
        quantity=D("10"),
        filled=D("10"),
        average_price=D("1"),
    )


def test_spot_resting_limit() -> None:
    raw = {"info": _body("spot-order-new.json")}
    assert _placement(raw) == _expected(
        order_id=9780331417,
        client_order_id="x-R4BD3S824d31be3228a348eaa0a303",
        status="NEW",
        side="buy",
        type="LIMIT",
        quantity=D("0.05"),
        price=D("241"),
    )


def test_usdm_filled() -> None:
    raw = {"info": _body("usdm-order-filled.json"), "average": 1.0}
    assert _placement(raw) == _expected(
        order_id=262065925771,
        client_order_id="x-xcKtGhcud2deca88ac9f4ccb9485a9",
        status="FILLED",
        side="buy",
        quantity=D("0.010"),
        filled=D("0.010"),
        average_price=D("47279.40000"),
    )


# -- one field at a time ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("info", "unified", "filled", "average"),
    [
        # executedQty decides whenever the exchange sent it, even "0" (never ccxt's filled)
        ({"executedQty": "0", "cummulativeQuoteQty": "10"}, {"filled": 5.0, "average": 2.0}, "0", None),
        ({"executedQty": "2", "cummulativeQuoteQty": "10"}, {"filled": 5.0}, "2", "5"),
        # no executedQty: ccxt's filled
        ({"cummulativeQuoteQty": "10"}, {"filled": 4.0}, "4", "2.5"),
        ({}, {"filled": 4.0, "average": 3.5}, "4", "3.5"),
        # avgPrice decides when above 0 (USD-M)
        ({"executedQty": "2", "avgPrice": "7", "cumQuote": "10"}, {"average": 1.0}, "2", "7"),
        ({"executedQty": "2", "avgPrice": "0.5", "cumQuote": "10"}, {"average": 1.0}, "2", "0.5"),
        # avgPrice "0" (USD-M before a fill shows): the quote / filled fallback
        ({"executedQty": "2", "avgPrice": "0", "cumQuote": "10"}, {"average": 1.0}, "2", "5"),
        ({"executedQty": "2", "avgPrice": "", "cumQuote": "10"}, {}, "2", "5"),
        # a fill under 1 still averages
        ({"executedQty": "0.5", "cumQuote": "10"}, {}, "0.5", "20"),
        # a quote under 1 is still a quote
        ({"executedQty": "2", "cummulativeQuoteQty": "0.5"}, {"average": 9.0}, "2", "0.25"),
        # cummulativeQuoteQty over cumQuote
        ({"executedQty": "2", "cummulativeQuoteQty": "10", "cumQuote": "20"}, {}, "2", "5"),
        # no quote: ccxt's average
        ({"executedQty": "2", "cummulativeQuoteQty": "0"}, {"average": 9.5}, "2", "9.5"),
        ({"executedQty": "2"}, {"average": 9.5}, "2", "9.5"),
        ({"executedQty": "2"}, {}, "2", None),
        # nothing filled: no average at all, whatever the quote or ccxt say
        ({"executedQty": "0", "avgPrice": "0", "cumQuote": "10"}, {"average": 9.5}, "0", None),
        ({}, {}, "0", None),
    ],
)
def test_filled_and_average(info: dict[str, Any], unified: dict[str, Any], filled: str, average: str | None) -> None:
    assert _placement({"info": info, **unified}) == _expected(
        filled=D(filled), average_price=None if average is None else D(average)
    )


@pytest.mark.parametrize(
    ("info_status", "ccxt_status", "status"),
    [
        ("FILLED", "open", "FILLED"),  # the exchange's own word first
        ("PARTIALLY_FILLED", None, "PARTIALLY_FILLED"),
        ("EXPIRED", None, "EXPIRED"),
        ("new", None, "NEW"),
        (None, "closed", "FILLED"),  # ccxt's words mapped to Binance's
        (None, "open", "NEW"),
        (None, "canceled", "CANCELED"),
        (None, "CLOSED", "FILLED"),
        (None, "rejected", "REJECTED"),
        (None, "expired", "EXPIRED"),
        ("", "", "NEW"),
        (None, None, "NEW"),
    ],
)
def test_status(info_status: str | None, ccxt_status: str | None, status: str) -> None:
    assert _placement({"info": {"status": info_status}, "status": ccxt_status}) == _expected(status=status)


@pytest.mark.parametrize(
    ("info", "unified", "fields"),
    [
        ({"orderId": 28}, {"id": "99"}, {"order_id": 28}),
        ({}, {"id": "99"}, {"order_id": "99"}),
        ({"orderId": 0}, {"id": ""}, {"order_id": ""}),
        ({"clientOrderId": "theirs"}, {"clientOrderId": "ccxt"}, {"client_order_id": "theirs"}),
        ({}, {"clientOrderId": "ccxt"}, {"client_order_id": "ccxt"}),
        ({"clientOrderId": ""}, {"clientOrderId": None}, {"client_order_id": "ours"}),
        ({"side": "BUY"}, {"side": "sell"}, {"side": "buy"}),
        ({"side": "SELL"}, {"side": "buy"}, {"side": "sell"}),
        ({}, {"side": "buy"}, {"side": "buy"}),
        ({}, {"side": "BUY"}, {"side": "buy"}),
        ({}, {"side": "sell"}, {"side": "sell"}),
        ({"type": "LIMIT"}, {"type": "market"}, {"type": "LIMIT"}),
        ({"type": "MARKET"}, {"type": "limit"}, {"type": "MARKET"}),
        ({}, {"type": "limit"}, {"type": "LIMIT"}),
        ({}, {"type": "market"}, {"type": "MARKET"}),
        ({"type": "STOP_LOSS_LIMIT"}, {}, {"type": "MARKET"}),
        ({"origQty": "0.05000000"}, {"amount": 9.0}, {"quantity": D("0.05")}),
        ({}, {"amount": 0.5}, {"quantity": D("0.5")}),
        ({"origQty": ""}, {"amount": 0.5}, {"quantity": D("0.5")}),
        ({"price": "241.00000000"}, {"price": 9.0}, {"price": D("241")}),
        ({"price": "0.5"}, {}, {"price": D("0.5")}),
        ({"price": "0"}, {"price": 9.0}, {"price": None}),  # a market order's price "0" is no price
        ({}, {"price": 9.0}, {"price": None}),
    ],
)
def test_fields(info: dict[str, Any], unified: dict[str, Any], fields: dict[str, Any]) -> None:
    assert _placement({"info": info, **unified}) == _expected(**fields)


@pytest.mark.parametrize("info", [None, {}])
def test_no_info_reads_ccxt_s_unified_order(info: dict[str, Any] | None) -> None:
    raw = {
        "info": info,
        "id": "77",
        "clientOrderId": "cid",
        "status": "closed",
        "side": "buy",
        "type": "limit",
        "amount": 2.0,
        "filled": 2.0,
        "average": 101.5,
    }
    assert _placement(raw) == _expected(
        order_id="77",
        client_order_id="cid",
        status="FILLED",
        side="buy",
        type="LIMIT",
        quantity=D(2),
        filled=D(2),
        average_price=D("101.5"),
    )


def test_broker_and_market_name_the_placement() -> None:
    broker = CcxtBroker("other", ccxt.binanceusdm(), market_type="future")
    market = Market(symbol="ETHUSDT", base="ETH", quote="USDT", type="future", broker_symbol="ETH/USDT:USDT")
    assert broker._placement({}, market, "c1") == _expected(
        symbol="ETHUSDT", base="ETH", broker="other", client_order_id="c1"
    )
