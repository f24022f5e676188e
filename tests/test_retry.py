"""Final or retryable: every outcome of a signal id is one or the other, and a repeat is answered by it.

The app runs in the testnet environment against a Binance spot exchange on loopback
(tests/brokers/fake_binance.py, built from Binance's documented formats, not recorded), which keeps
a real book of every order that reached its matching engine: "placed exactly once" is counted
where the orders are, not in ordergate. Every test runs on SQLite and on a real PostgreSQL.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from falcon import testing

from ordergate.answers import SETTLED, answer_status
from ordergate.app import OrdergateApp, create_app
from ordergate.brokers.ccxt import CcxtBroker
from ordergate.config import Settings
from ordergate.pipeline.recovery import reconcile
from ordergate.pipeline.signal import Order
from tests.brokers.fake_binance import FakeBinance, Serving, loopback_testnet
from tests.conftest import serving

SECRET = "hook-secret-not-a-secret"
WEBHOOK = f"/webhook/{SECRET}"
BUY = {"broker": "BINANCE", "symbol": "BTCUSDT", "side": "buy", "quantity": "0.001", "type": "MARKET"}


@pytest.fixture
def exchange() -> Iterator[FakeBinance]:
    with Serving(FakeBinance()) as exchange:
        yield exchange


def app_on_testnet(exchange: FakeBinance, tmp_path: Path, **journal: Any) -> OrdergateApp:
    """The testnet app on the loopback exchange (a SQLite journal unless ``journal`` says otherwise)."""
    settings = loopback_testnet(exchange, tmp_path / "testnet.db", SECRET)
    settings.data["journal"].update(duplicate_wait_s=5, **journal)
    settings.data["brokers"]["binance"]["lookup_delay_s"] = 0
    return create_app(settings)


@pytest.fixture
def testnet(journal_settings: Settings, exchange: FakeBinance) -> Iterator[Callable[..., OrdergateApp]]:
    """A factory for the testnet app on the loopback exchange, its journal on SQLite or PostgreSQL."""
    built: list[OrdergateApp] = []

    def make(**journal: Any) -> OrdergateApp:
        where = {k: journal_settings.data["journal"][k] for k in ("url", "path")}
        app = app_on_testnet(exchange, Path(where["path"]).parent, **where, **journal)
        built.append(app)
        return app

    yield make
    for app in built:
        for broker in app.service.brokers.values():
            getattr(broker, "close", lambda: None)()
        app.journal.close()


def send(app: OrdergateApp, **changes: Any) -> tuple[int, dict[str, Any]]:
    result = testing.TestClient(app).simulate_post(WEBHOOK, body=json.dumps({**BUY, **changes}))
    return result.status_code, result.json


@pytest.mark.parametrize(
    ("endpoint", "fault"),
    [
        ("order", "rate_limit"),  # HTTP 429, -1003: refused before the matching engine
        ("order", "banned"),  # HTTP 418, -1003
        ("order", "clock_skew"),  # -1021: the timestamp is outside recvWindow
        ("account", "down"),  # the balance cannot be read (reads are tried 3 times): nothing was sent
    ],
)
def test_a_resend_after_a_5xx_is_placed_exactly_once(
    testnet: Callable[..., OrdergateApp], exchange: FakeBinance, endpoint: str, fault: str
) -> None:
    app = testnet()
    app.service.brokers["binance"].forget_balance()  # the next check reads the account
    exchange.fail_next(endpoint, *[fault] * (3 if endpoint == "account" else 1))
    status, first = send(app, id="retry-1")
    assert status == 503, first
    assert exchange.orders_placed() == []

    status, again = send(app, id="retry-1")
    assert status == 200, again
    assert again["success"] is True
    assert "duplicate" not in again
    assert again["clientOrderId"] == first.get("clientOrderId", again["clientOrderId"])
    assert len(exchange.orders_placed()) == 1

    status, third = send(app, id="retry-1")  # now final: answered, never placed again
    assert (status, third["duplicate"], third["orderId"]) == (200, True, again["orderId"])
    assert len(exchange.orders_placed()) == 1


def test_after_a_clock_skew_the_resend_is_signed_by_the_exchanges_clock(
    testnet: Callable[..., OrdergateApp], exchange: FakeBinance
) -> None:
    """-1021 is retryable only if the retry can succeed: the exchange's clock is read again."""
    app = testnet()
    broker = app.service.brokers["binance"]
    assert isinstance(broker, CcxtBroker)
    exchange.clock_ahead_ms = 30_000  # our clock fell 30 s behind the exchange's
    status, first = send(app, id="skewed")
    assert status == 503, first
    assert "clock" in first["error"]
    assert broker.clock_synced.wait(timeout=10)
    status, again = send(app, id="skewed")
    assert (status, again["success"]) == (200, True), again
    assert len(exchange.orders_placed()) == 1


def test_markets_that_failed_to_load_at_startup_load_on_a_resend(
    testnet: Callable[..., OrdergateApp], exchange: FakeBinance
) -> None:
    exchange.fail_until_healed("exchangeInfo", "down")
    app = testnet()
    status, first = send(app, id="cold-start")
    assert status == 503, first
    assert "not loaded" in first["error"]
    exchange.heal("exchangeInfo")
    broker = app.service.brokers["binance"]
    assert isinstance(broker, CcxtBroker)
    broker.clock = lambda: time.monotonic() + 5  # TradingView re-sends 5 s later

    status, again = send(app, id="cold-start")
    assert status == 200, again
    assert len(exchange.orders_placed()) == 1


def test_fifty_concurrent_resends_of_a_retryable_signal_make_one_order(
    testnet: Callable[..., OrdergateApp], exchange: FakeBinance
) -> None:
    app = testnet()
    exchange.fail_next("order", "rate_limit")
    assert send(app, id="storm")[0] == 503
    answers: list[tuple[int, dict[str, Any]]] = []
    lock = threading.Lock()
    body = json.dumps({**BUY, "id": "storm"})
    with serving(app, threads=8) as server:

        def post() -> None:
            answer = server.request("POST", WEBHOOK, body)
            with lock:
                answers.append(answer)

        threads = [threading.Thread(target=post) for _ in range(50)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    assert len(answers) == 50
    assert len(exchange.orders_placed()) == 1
    placed = [a for s, a in answers if s == 200 and a.get("success") and not a.get("duplicate")]
    assert len(placed) == 1
    order_id = placed[0]["orderId"]
    # every other copy answered the same order, or 202 while it was being placed: none a new one
    for status, answer in answers:
        assert status in (200, 202), answer
        assert answer.get("orderId", order_id) == order_id


def test_an_unknown_order_that_executed_settles_as_filled(
    testnet: Callable[..., OrdergateApp], exchange: FakeBinance
) -> None:
    app = testnet()
    exchange.fail_next("order", "lost")  # executed, the answer lost
    exchange.fail_until_healed("lookup", "down")  # and every look-up
    status, first = send(app, id="lost-answer")
    assert (status, first["status"]) == (202, "unknown"), first
    assert len(exchange.orders_placed()) == 1

    status, again = send(app, id="lost-answer")  # unsettled: 202 again, nothing placed
    assert (status, again["status"], again["duplicate"]) == (202, "unknown", True)
    assert len(exchange.order_requests()) == 1

    assert app.reconcile(older_than_s=60) == 0  # the exchange still cannot say: nothing decided
    exchange.heal("lookup")
    assert app.reconcile(older_than_s=60) == 1
    entry = app.journal.find_by_key("BINANCE:lost-answer")
    assert entry is not None
    assert (entry.status, entry.http_status) == ("filled", 200)
    assert entry.broker_order_id == str(exchange.orders_placed()[0]["orderId"])

    status, settled = send(app, id="lost-answer")
    assert (status, settled["duplicate"], settled["status"]) == (200, True, "FILLED")
    assert settled["orderId"] == exchange.orders_placed()[0]["orderId"]
    assert len(exchange.order_requests()) == 1
    metrics = app.metrics.render().decode()
    assert 'ordergate_settlements_total{outcome="filled",route="BINANCE"} 1.0' in metrics


def test_the_background_reconciler_settles_an_unknown_order(
    testnet: Callable[..., OrdergateApp], exchange: FakeBinance
) -> None:
    app = testnet()
    exchange.fail_next("order", "unknown")  # -1007: executed, status unknown
    exchange.fail_until_healed("lookup", "down")
    assert send(app, id="bg")[0] == 202
    exchange.heal("lookup")
    settled = threading.Event()
    app.service.runners["BINANCE"].observers = (
        *app.service.runners["BINANCE"].observers,
        ("test", _Signal(settled)),
    )
    reconciler = app.start_reconciler(every_s=0.02)
    try:
        assert settled.wait(timeout=20)
    finally:
        reconciler.stop()
    entry = app.journal.find_by_key("BINANCE:bg")
    assert entry is not None
    assert entry.status == "filled"


class _Signal:
    """An observer that sets an event when it sees a fill: lets a test wait instead of sleeping."""

    observer = True

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def observe(self, outcome: Any) -> None:
        if outcome.status == "filled":
            self.event.set()


def test_an_unknown_order_proven_absent_is_placed_once_on_a_resend(
    testnet: Callable[..., OrdergateApp], exchange: FakeBinance
) -> None:
    app = testnet()
    exchange.fail_next("order", "late")  # nothing executes, the answer is lost
    exchange.fail_until_healed("lookup", "down")
    status, first = send(app, id="never-there")
    assert status == 202, first
    exchange.heal("lookup")
    entry = app.journal.find_by_key("BINANCE:never-there")
    assert entry is not None

    # Absent, but within the window in which Binance may still execute it: still pending.
    window = 120.0
    kwargs: dict[str, Any] = {"absent_after_s": window, "older_than_s": 60}
    assert (
        reconcile(app.journal, app.service.runners, answers=SETTLED, clock=lambda: entry.received_at + 30, **kwargs)
        == 0
    )
    status, early = send(app, id="never-there")
    assert (status, early["status"]) == (202, "unknown")
    assert len(exchange.order_requests()) == 1

    # Absent for the whole window: retryable. The next re-send places it, once.
    assert (
        reconcile(
            app.journal,
            app.service.runners,
            answers=SETTLED,
            clock=lambda: entry.received_at + window + 1,
            **kwargs,
        )
        == 1
    )
    settled = app.journal.get(entry.id)
    assert settled is not None
    assert (settled.status, settled.http_status) == ("error", 503)
    cid = exchange.order_requests()[0]["newClientOrderId"]
    assert settled.response == {
        "success": False,
        "error": f"Order not placed: the broker has no order {cid} 121 s after it was sent; "
        "sending the signal again places it",
        "clientOrderId": cid,
        "recovered": True,
        "signalId": entry.id,
    }
    assert settled.client_order_id == cid
    status, placed = send(app, id="never-there")
    assert (status, placed["success"]) == (200, True), placed
    assert len(exchange.orders_placed()) == 1
    requests = exchange.order_requests()
    assert len(requests) == 2
    assert requests[0] == requests[1]  # the same order, the same client order id


def test_a_settled_order_reaches_the_observers_as_the_signal_it_was(
    testnet: Callable[..., OrdergateApp], exchange: FakeBinance
) -> None:
    """Notifications and metrics of a settlement see the signal's own id, route, payload and order."""
    app = testnet()
    exchange.fail_next("order", "lost")
    exchange.fail_until_healed("lookup", "down")
    assert send(app, id="observed")[0] == 202
    exchange.heal("lookup")
    entry = app.journal.find_by_key("BINANCE:observed")
    assert entry is not None
    seen: list[Any] = []
    assert reconcile(app.journal, app.service.runners, answers=SETTLED, older_than_s=60, observe=seen.append) == 1
    [outcome] = seen
    order = exchange.orders_placed()[0]
    cid = order["clientOrderId"]
    assert (outcome.status, answer_status(outcome), outcome.route.name) == ("filled", 200, "BINANCE")
    signal = outcome.signal
    assert (signal.id, signal.route, signal.received_at) == (entry.id, "BINANCE", entry.received_at)
    assert signal.payload["id"] == "observed"
    assert signal.order == Order("BTCUSDT", "buy", "MARKET", Decimal("0.001"), client_order_id=cid)
    assert signal.placement == outcome.placement
    assert outcome.placement.order_id == order["orderId"]
    settled = app.journal.get(entry.id)
    assert settled is not None
    assert settled.response is not None
    assert (settled.response["orderId"], settled.response["clientOrderId"]) == (order["orderId"], cid)
    assert (settled.response["recovered"], settled.response["signalId"]) == (True, entry.id)
    assert "trace" not in settled.response
    assert settled.broker_order_id == str(order["orderId"])


def test_a_settled_limit_order_keeps_its_limit_price(
    testnet: Callable[..., OrdergateApp], exchange: FakeBinance
) -> None:
    app = testnet()
    exchange.fail_next("order", "lost")
    exchange.fail_until_healed("lookup", "down")
    assert send(app, id="limit", type="LIMIT", price="40000")[0] == 202
    exchange.heal("lookup")
    seen: list[Any] = []
    assert reconcile(app.journal, app.service.runners, answers=SETTLED, older_than_s=60, observe=seen.append) == 1
    [outcome] = seen
    assert (outcome.status, outcome.placement.status) == ("open", "NEW")
    assert (outcome.signal.order.type, outcome.signal.order.price) == ("LIMIT", Decimal(40000))


def test_an_order_that_executes_late_is_found_not_placed_again(
    testnet: Callable[..., OrdergateApp], exchange: FakeBinance
) -> None:
    app = testnet()
    exchange.fail_next("order", "late")
    exchange.fail_until_healed("lookup", "down")
    assert send(app, id="late")[0] == 202
    exchange.execute_late()  # Binance executed it after all
    assert app.reconcile(older_than_s=60) == 0  # the exchange still cannot say: nothing decided
    exchange.heal("lookup")
    assert app.reconcile(older_than_s=60) == 1
    status, answer = send(app, id="late")
    assert (status, answer["duplicate"], answer["status"]) == (200, True, "FILLED")
    assert len(exchange.order_requests()) == 1


def test_a_crash_before_placing_is_retryable_even_while_the_exchange_cannot_answer(
    testnet: Callable[..., OrdergateApp], exchange: FakeBinance
) -> None:
    """Cut off before 'placing', the signal never sent an order: no look-up is needed to say so."""
    app = testnet()
    exchange.fail_until_healed("lookup", "down")
    app.journal.claim("cut-off", "BINANCE", {**BUY, "id": "c0"}, "BINANCE:c0", 1_000.0)
    assert reconcile(app.journal, app.service.runners, answers=SETTLED, clock=lambda: 1_010.0) == 1
    entry = app.journal.get("cut-off")
    assert entry is not None
    assert (entry.status, entry.http_status) == ("error", 503)
    assert entry.response is not None
    assert entry.response["error"].startswith("Interrupted before an order was placed")
    exchange.heal("lookup")
    status, placed = send(app, id="c0")
    assert (status, placed["success"]) == (200, True), placed
    assert len(exchange.orders_placed()) == 1


def test_a_crash_while_placing_is_looked_up_not_taken_as_never_sent(
    testnet: Callable[..., OrdergateApp], exchange: FakeBinance, tmp_path: Path
) -> None:
    app = testnet()
    journal = app.journal
    journal.claim("crashed-1", "BINANCE", {**BUY, "id": "c1"}, "BINANCE:c1", 1_000.0)
    journal.placing("crashed-1", "og-not-at-the-exchange")
    assert reconcile(journal, app.service.runners, answers=SETTLED, clock=lambda: 1_010.0, absent_after_s=120) == 0
    entry = journal.get("crashed-1")
    assert entry is not None
    assert (entry.status, entry.http_status) == ("unknown", 202)  # may still execute: pending
    status, answer = send(app, id="c1")
    assert (status, answer["status"]) == (202, "unknown")
    assert exchange.order_requests() == []
