"""FlatTrade (NorenOMS PiConnect, API v2) through the real app, on FlatTrade's documented answers.

The cassettes are written by scripts/build_flattrade_cassettes.py from the examples in
tests/brokers/responses/flattrade/ (sources in its SOURCES.md). Every test runs the live
environment's FLATTRADE route: FlatTrade has no sandbox.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from falcon import testing

from ordergate.app import OrdergateApp, create_app
from ordergate.brokers.flattrade import (
    IST,
    SESSION_EXPIRED,
    FlatTradeBroker,
    SessionStore,
    next_expiry,
    protected_price,
)
from ordergate.config import load_settings
from ordergate.pipeline.errors import OrderOutcomeUnknown
from tests.conftest import CONFIG_DIR

USER = "FT012345"
TOKEN = "test-session-token-not-a-secret"
API_KEY, API_SECRET = "test-api-key-not-a-secret", "test-api-secret-not-a-secret"
SECRET = "hook-secret-not-a-secret"
SEED = {"broker": "FLATTRADE", "symbol": "CIPLA", "side": "buy", "quantity": 10, "type": "MARKET"}
ORDER_NO = "20052000000017"
DOCUMENTED_TOKEN = "dsfdsf84okkdlfelfdfdfd3454545454ssdfsf"  # apitoken_ok.json


def cid(signal_id: str) -> str:
    return "og-" + hashlib.sha256(f"FLATTRADE\x00{signal_id}".encode()).hexdigest()[:24]


@dataclass
class Call:
    route: str
    jdata: dict[str, Any] | None
    jkey: str | None
    raw: str


@dataclass
class FlatTrade:
    """The live app with only its FLATTRADE route, and every request it sent to FlatTrade."""

    app: OrdergateApp
    broker: FlatTradeBroker
    client: testing.TestClient
    calls: list[Call] = field(default_factory=list)

    def send(self, **payload: Any) -> tuple[int, dict[str, Any], list[Call]]:
        before = len(self.calls)
        result = self.client.simulate_post(f"/webhook/{SECRET}", body=json.dumps({**SEED, **payload}))
        return result.status_code, result.json, self.calls[before:]

    def routes(self, calls: list[Call] | None = None) -> list[str]:
        return [c.route for c in (self.calls if calls is None else calls)]


def _recorder(calls: list[Call]) -> Any:
    def hook(response: Any, *args: Any, **kwargs: Any) -> Any:
        request = response.request
        raw = request.body.decode() if isinstance(request.body, bytes) else str(request.body or "")
        route = urlsplit(request.url).path.rsplit("/", 1)[-1]
        jdata, jkey = None, None
        if raw.startswith("jData="):
            data, _, key = raw[len("jData=") :].rpartition("&jKey=")
            jdata, jkey = json.loads(data), key
        calls.append(Call(route, jdata, jkey, raw))
        return response

    return hook


@pytest.fixture
def flattrade(tmp_path: Path) -> Iterator[Any]:
    """A factory: ``flattrade(token=TOKEN, **broker_options)``."""
    built: list[OrdergateApp] = []

    def make(token: str | None = TOKEN, **options: Any) -> FlatTrade:
        environ = {
            "WEBHOOK_SECRET": SECRET,
            "LIVE_TRADING": "yes",
            "FLATTRADE_USER_ID": USER,
            "FLATTRADE_API_KEY": API_KEY,
            "FLATTRADE_API_SECRET": API_SECRET,
            "ORDERGATE_DB": str(tmp_path / f"{len(built)}.db"),
        }
        if token is not None:
            environ["FLATTRADE_TOKEN"] = token
        settings = load_settings("live", CONFIG_DIR, environ=environ)
        settings.data["routes"] = {"FLATTRADE": settings.data["routes"]["FLATTRADE"]}
        settings.data["brokers"]["flattrade"].update({"lookup_delay_s": 0, "poll_interval_s": 0, **options})
        settings.data["stages"]["market_hours"] = {"enabled": False}  # tested on its own below
        app = create_app(settings)
        built.append(app)
        broker = app.service.brokers["flattrade"]
        assert isinstance(broker, FlatTradeBroker)
        ft = FlatTrade(app, broker, testing.TestClient(app))
        broker.client.http.hooks["response"].append(_recorder(ft.calls))
        return ft

    yield make
    for app in built:
        app.journal.close()


FIRST = ["SearchScrip", "GetQuotes", "Limits"]  # resolve CIPLA (rules from GetQuotes), funds


@pytest.mark.vcr
def test_the_seed_market_order_becomes_a_protected_limit(flattrade: Any) -> None:
    ft = flattrade()
    status, body, calls = ft.send(id="ft-seed")
    assert status == 200, body
    assert body["success"] is True
    assert body["orderId"] == ORDER_NO
    assert (body["status"], body["type"], body["price"]) == ("FILLED", "LIMIT", "1507.5")
    assert (body["executedQty"], body["avgPrice"]) == ("10", "1500.5")
    assert body["notes"] == [
        "MARKET sent as LIMIT at 1507.5 (last price 1500 + 0.5% protection): FlatTrade's API accepts only limit orders"
    ]
    assert ft.routes(calls) == [*FIRST, "PlaceOrder", "SingleOrdHist", "SingleOrdHist"]
    placed = calls[3]
    assert placed.jdata == {
        "ordersource": "API",
        "uid": USER,
        "actid": USER,
        "trantype": "B",
        "prd": "C",
        "exch": "NSE",
        "tsym": "CIPLA-EQ",
        "qty": "10",
        "dscqty": "0",
        "prctyp": "LMT",
        "prc": "1507.5",
        "ret": "DAY",
        "remarks": cid("ft-seed"),
    }
    assert all(c.jkey == TOKEN for c in calls)
    # the journal keeps the outcome and the broker's order number
    entry = ft.app.journal.get(body["signalId"])
    assert entry is not None
    assert (entry.status, entry.broker_order_id, entry.client_order_id) == ("filled", ORDER_NO, cid("ft-seed"))


@pytest.mark.vcr
def test_a_limit_signal_keeps_its_price(flattrade: Any) -> None:
    ft = flattrade(status_wait_s=0)
    status, body, calls = ft.send(id="ft-limit", type="LIMIT", price="1490")
    assert status == 200, body
    assert (body["status"], body["price"], body["executedQty"]) == ("NEW", "1490", "0")
    assert "notes" not in body
    assert calls[3].jdata is not None
    assert (calls[3].jdata["prctyp"], calls[3].jdata["prc"]) == ("LMT", "1490")


@pytest.mark.vcr
def test_an_intraday_sell_is_protected_downwards(flattrade: Any) -> None:
    ft = flattrade()
    status, body, calls = ft.send(id="ft-mis", side="sell", product="MIS")
    assert status == 200, body
    assert (body["side"], body["price"], body["status"]) == ("SELL", "1492.5", "FILLED")
    assert calls[3].jdata is not None
    assert (calls[3].jdata["trantype"], calls[3].jdata["prd"], calls[3].jdata["prc"]) == ("S", "I", "1492.5")
    assert "1500 - 0.5% protection" in body["notes"][0]


@pytest.mark.vcr
def test_a_rejected_order_answers_the_brokers_reason(flattrade: Any) -> None:
    ft = flattrade()
    status, body, calls = ft.send(id="ft-reject")
    assert (status, body["error"]) == (422, f"FlatTrade rejected order {ORDER_NO}: Insufficient funds")
    assert (body["stage"], body["code"]) == ("execute", "broker_rejected")
    assert ft.routes(calls) == [*FIRST, "PlaceOrder", "SingleOrdHist"]


@pytest.mark.vcr
def test_place_order_not_ok_answers_flattrades_words(flattrade: Any) -> None:
    ft = flattrade()
    status, body, _ = ft.send(id="ft-notok")
    assert (status, body["error"]) == (422, 'FlatTrade refused the order: Error Occurred : 2 "invalid input"')


@pytest.mark.vcr
def test_an_expired_session_answers_422_and_places_nothing(flattrade: Any) -> None:
    ft = flattrade()
    status, body, calls = ft.send(id="ft-expired-1")
    assert (status, body["error"]) == (422, SESSION_EXPIRED)
    assert ft.routes(calls) == ["SearchScrip"]
    # FlatTrade said the token is dead: the next signal is refused before any request
    status, body, calls = ft.send(id="ft-expired-2")
    assert (status, body["error"]) == (422, "FlatTrade session expired: log in at /auth/flattrade")
    assert calls == []


def test_without_a_token_nothing_is_sent(flattrade: Any) -> None:
    ft = flattrade(token=None)
    status, body, calls = ft.send(id="ft-no-token")
    assert (status, body["error"]) == (422, SESSION_EXPIRED)
    assert calls == []
    assert ft.broker.session_error() is not None


@pytest.mark.vcr
def test_a_lost_answer_is_found_in_the_order_book(flattrade: Any) -> None:
    ft = flattrade()
    status, body, calls = ft.send(id="ft-lost")
    assert status == 200, body
    assert (body["orderId"], body["status"]) == (ORDER_NO, "FILLED")
    assert ft.routes(calls) == [*FIRST, "PlaceOrder", "OrderBook", "SingleOrdHist"]


@pytest.mark.vcr
def test_a_lost_answer_absent_twice_is_sent_once_more(flattrade: Any) -> None:
    ft = flattrade()
    status, body, calls = ft.send(id="ft-absent")
    assert status == 200, body
    assert ft.routes(calls) == [*FIRST, "PlaceOrder", "OrderBook", "OrderBook", "PlaceOrder", "SingleOrdHist"]
    first, second = (c for c in calls if c.route == "PlaceOrder")
    assert first.jdata == second.jdata  # the same order, the same remarks: one order at most


LOOK_UP = ["OrderBook"]


@pytest.mark.vcr
@pytest.mark.parametrize(
    ("signal_id", "after_the_lost_answer"),
    [
        ("ft-expired-look-up", LOOK_UP),
        ("ft-expired-second", LOOK_UP * 2),  # "no data", then the session ends
        ("ft-unreachable", LOOK_UP * 3),  # 502 on every read attempt
        ("ft-server-timeout", LOOK_UP),
        ("ft-garbage", LOOK_UP),  # a list, but not of orders: not proof of absence
        ("ft-nameless", LOOK_UP),  # our row without an order number
        ("ft-resent", [*LOOK_UP * 2, "PlaceOrder", "OrderBook"]),  # absent twice, re-sent, lost again
    ],
    ids=[
        "session-expired",
        "session-expired-second-look",
        "unreachable",
        "server-timeout",
        "not-an-order-book",
        "row-without-number",
        "resent-and-lost-again",
    ],
)
def test_a_failed_look_up_after_a_lost_answer_is_unknown(
    flattrade: Any, signal_id: str, after_the_lost_answer: list[str]
) -> None:
    """The order may exist: 202 unknown, never a definite error, never a blind re-send."""
    ft = flattrade()
    status, body, calls = ft.send(id=signal_id)
    assert (status, body["status"]) == (202, "unknown"), body
    assert body["clientOrderId"] == cid(signal_id)
    assert ft.routes(calls) == [*FIRST, "PlaceOrder", *after_the_lost_answer]
    entry = ft.app.journal.get(body["signalId"])
    assert entry is not None
    assert entry.status == "unknown"


@pytest.mark.vcr
def test_find_order_never_reports_a_booked_order_absent(flattrade: Any) -> None:
    """The order is in the book but its symbol no longer resolves: unknown, not "no such order"
    (recovery would record it as never placed)."""
    ft = flattrade()
    with pytest.raises(OrderOutcomeUnknown):
        ft.broker.find_order(cid("ft-unlisted"), "CIPLA")
    assert ft.routes() == ["OrderBook", "SearchScrip"]


@pytest.mark.vcr
def test_a_session_that_expires_after_placing_still_answers_the_order(flattrade: Any) -> None:
    ft = flattrade()
    status, body, calls = ft.send(id="ft-late-expiry")
    assert status == 200, body  # the order exists: never answered as a failure
    assert (body["orderId"], body["status"]) == (ORDER_NO, "NEW")
    assert ft.routes(calls) == [*FIRST, "PlaceOrder", "SingleOrdHist"]
    assert ft.send(id="ft-after")[1]["error"] == SESSION_EXPIRED  # and the next signal asks for a login


@pytest.mark.vcr
def test_the_login_callback_stores_a_token_that_signals_use(flattrade: Any) -> None:
    ft = flattrade(token=None)
    assert ft.send(id="ft-before")[1]["error"] == SESSION_EXPIRED

    start = ft.client.simulate_get("/auth/flattrade")
    assert start.status_code == 302
    assert start.headers["location"] == f"https://auth.flattrade.in/?app_key={API_KEY}"

    back = ft.client.simulate_get("/auth/flattrade/callback", params={"code": "code-123", "client": USER})
    assert back.status_code == 200, back.json
    assert back.json["success"] is True
    assert back.json["message"].startswith("FlatTrade session stored; valid until ")
    assert DOCUMENTED_TOKEN not in back.text
    exchange = ft.calls[0]
    assert exchange.route == "apitoken"
    sent = json.loads(exchange.raw)
    assert sent == {
        "api_key": API_KEY,
        "request_code": "code-123",
        "api_secret": hashlib.sha256(f"{API_KEY}code-123{API_SECRET}".encode()).hexdigest(),
    }
    stored = SessionStore(ft.app.journal.engine).load("flattrade")
    assert stored is not None
    assert stored.token == DOCUMENTED_TOKEN
    assert stored.expires_at == next_expiry(stored.obtained_at)

    status, body, calls = ft.send(id="ft-login")
    assert status == 200, body
    assert {c.jkey for c in calls} == {DOCUMENTED_TOKEN}


def test_the_callback_refuses_another_account_and_a_missing_code(flattrade: Any) -> None:
    ft = flattrade(token=None)
    other = ft.client.simulate_get("/auth/flattrade/callback", params={"code": "c", "client": "FT999999"})
    assert other.status_code == 422
    assert "FLATTRADE_USER_ID is FT012345" in other.json["error"]
    missing = ft.client.simulate_get("/auth/flattrade/callback")
    assert (missing.status_code, missing.json["error"]) == (
        400,
        "Missing login code: start the login at /auth/flattrade",
    )
    assert ft.calls == []
    assert SessionStore(ft.app.journal.engine).load("flattrade") is None


def test_without_a_flattrade_route_the_login_is_404(client: testing.TestClient) -> None:
    result = client.simulate_get("/auth/flattrade")
    assert result.status_code == 404
    assert result.json["error"] == "No route trades through FlatTrade in this environment"


# -- the arithmetic, without the exchange ------------------------------------------------------


@pytest.mark.parametrize(
    ("last", "side", "low", "high", "expected"),
    [
        ("1500", "buy", "0", "0", "1507.5"),
        ("1500", "sell", "0", "0", "1492.5"),
        ("101.23", "buy", "0", "0", "101.75"),  # 101.736 up to the tick: still marketable
        ("101.23", "sell", "0", "0", "100.7"),  # 100.724 down to the tick
        ("1645", "buy", "1350", "1650", "1650"),  # never above the upper circuit
        ("1355", "sell", "1350", "1650", "1350"),  # never below the lower circuit
    ],
)
def test_protected_price(last: str, side: str, low: str, high: str, expected: str) -> None:
    price = protected_price(Decimal(last), side, Decimal("0.5"), Decimal("0.05"), Decimal(low), Decimal(high))
    assert price == Decimal(expected)


@pytest.mark.parametrize(
    ("now", "expires"),
    [
        ("2026-11-25T10:00:00", "2026-11-26T05:00:00"),
        ("2026-11-25T04:59:00", "2026-11-25T05:00:00"),
        ("2026-11-25T05:00:00", "2026-11-26T05:00:00"),
    ],
)
def test_tokens_expire_at_the_next_five_oclock_ist(now: str, expires: str) -> None:
    moment = datetime.fromisoformat(now).replace(tzinfo=IST).timestamp()
    assert next_expiry(moment) == datetime.fromisoformat(expires).replace(tzinfo=IST).timestamp()
