"""The fake exchange itself, over HTTP: what tests/test_retry.py and the contract suite rely on it for.

Its answers are Binance's documented ones (see fake_binance.py); these tests pin the parts a
wrong fake would turn into a passing test: a fault's status and body, whether a faulted order is
in the book, and a book that counts every order, not one per client order id.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest

from tests.brokers.fake_binance import FakeBinance, Plan, Serving


@pytest.fixture
def exchange() -> Iterator[FakeBinance]:
    with Serving(FakeBinance()) as exchange:
        yield exchange


def call(exchange: FakeBinance, method: str, path: str, **params: str) -> tuple[int, Any]:
    """One request as ccxt sends it: a GET's parameters in the query, a POST's in the body."""
    where = urlsplit(exchange.url)
    conn = http.client.HTTPConnection(where.hostname or "127.0.0.1", where.port, timeout=5)
    form = urlencode({**params, "timestamp": str(int(time.time() * 1000)), "signature": "not-checked"})
    try:
        if method == "GET":
            conn.request(method, f"{path}?{form}")
        else:
            conn.request(method, path, form, {"Content-Type": "application/x-www-form-urlencoded"})
        answer = conn.getresponse()
        body = answer.read().decode()
    finally:
        conn.close()
    return answer.status, json.loads(body) if body.startswith(("{", "[")) else body


def buy(exchange: FakeBinance, cid: str, **params: str) -> tuple[int, Any]:
    order = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.01", "newClientOrderId": cid}
    return call(exchange, "POST", "/api/v3/order", **{**order, **params})


@pytest.mark.parametrize(
    ("fault", "status", "code", "in_book"),
    [
        ("rate_limit", 429, -1003, False),
        ("banned", 418, -1003, False),
        ("clock_skew", 400, -1021, False),
        ("down", 503, None, False),
        ("lost", 504, None, True),
        ("unknown", 503, -1007, True),
        ("late", 504, None, False),
    ],
)
def test_a_fault_answers_as_binance_and_says_whether_the_order_exists(
    exchange: FakeBinance, fault: str, status: int, code: int | None, in_book: bool
) -> None:
    exchange.fail_next("order", fault)
    answer, body = buy(exchange, "og-1")
    assert answer == status
    if code is None:
        assert body.startswith("<html>")  # a proxy's page, not Binance's JSON
    else:
        assert body["code"] == code
    assert len(exchange.orders_placed()) == int(in_book)
    assert buy(exchange, "og-2")[0] == 200  # one fault each: the next order is answered


def test_a_late_order_executes_when_told_and_is_then_found(exchange: FakeBinance) -> None:
    exchange.fail_next("order", "late")
    assert buy(exchange, "og-late")[0] == 504
    assert call(exchange, "GET", "/api/v3/order", symbol="BTCUSDT", origClientOrderId="og-late")[1]["code"] == -2013
    exchange.execute_late()
    status, found = call(exchange, "GET", "/api/v3/order", symbol="BTCUSDT", origClientOrderId="og-late")
    assert (status, found["status"]) == (200, "FILLED")


def test_an_outage_lasts_until_healed_on_any_endpoint(exchange: FakeBinance) -> None:
    exchange.fail_until_healed("exchangeInfo", "down")
    assert call(exchange, "GET", "/api/v3/exchangeInfo")[0] == 503
    assert call(exchange, "GET", "/api/v3/exchangeInfo")[0] == 503
    assert call(exchange, "GET", "/api/v3/account")[0] == 200  # only that endpoint
    exchange.heal("exchangeInfo")
    assert call(exchange, "GET", "/api/v3/exchangeInfo")[0] == 200


def test_the_book_counts_every_order_and_refuses_an_open_client_order_id(exchange: FakeBinance) -> None:
    assert buy(exchange, "og-same")[0] == 200
    assert buy(exchange, "og-same")[0] == 200  # a filled order's client id is free again on Binance
    assert len(exchange.orders_placed()) == 2
    assert buy(exchange, "og-rest", type="LIMIT", price="40000", timeInForce="GTC")[0] == 200
    status, refused = buy(exchange, "og-rest", type="LIMIT", price="40000", timeInForce="GTC")
    assert (status, refused) == (400, {"code": -2010, "msg": "Duplicate order sent."})
    assert len(exchange.orders_placed()) == 3


def test_spot_balances_move_with_fills_and_lock_what_rests(exchange: FakeBinance) -> None:
    assert buy(exchange, "og-fill")[0] == 200  # 0.01 BTC at 43,500
    assert buy(exchange, "og-rest", type="LIMIT", price="40000", timeInForce="GTC")[0] == 200
    balances = {b["asset"]: b for b in call(exchange, "GET", "/api/v3/account")[1]["balances"]}
    assert Decimal(balances["BTC"]["free"]) == Decimal("1.01")
    assert Decimal(balances["USDT"]["free"]) == Decimal(10000) - 435 - 400
    assert Decimal(balances["USDT"]["locked"]) == 400
    status, refused = buy(exchange, "og-big", quantity="1")  # 43,500 USDT: more than is free
    assert (status, refused["code"]) == (400, -2010)
    assert "insufficient balance" in refused["msg"]


def test_without_liquidity_a_market_order_expires_unfilled(exchange: FakeBinance) -> None:
    exchange.liquidity = False
    status, placed = buy(exchange, "og-dry", newOrderRespType="RESULT")
    assert (status, placed["status"], placed["executedQty"]) == (200, "EXPIRED", "0.00000000")


def test_a_plan_that_loses_the_answer_closes_the_connection(exchange: FakeBinance) -> None:
    exchange.plan(Plan(answer=False))
    with pytest.raises(http.client.RemoteDisconnected):
        buy(exchange, "og-dropped")
    assert len(exchange.orders_placed()) == 1  # executed: only the answer was lost


def test_a_signed_request_outside_the_recv_window_is_refused_with_1021(exchange: FakeBinance) -> None:
    exchange.clock_ahead_ms = 30_000
    status, body = call(exchange, "GET", "/api/v3/account")
    assert (status, body["code"]) == (400, -1021)
    conn = http.client.HTTPConnection(urlsplit(exchange.url).hostname or "", urlsplit(exchange.url).port, timeout=5)
    try:
        conn.request("GET", "/api/v3/time")  # unsigned, as Binance's /time is
        answer = conn.getresponse()
        status, body = answer.status, json.loads(answer.read())
    finally:
        conn.close()
    assert status == 200
    assert abs(body["serverTime"] - 30_000 - int(time.time() * 1000)) < 5_000
