"""Crash recovery: signals left in flight are settled from the broker's records, never re-sent."""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from falcon import testing

from ordergate.answers import SETTLED
from ordergate.app import OrdergateApp, create_app
from ordergate.brokers.ccxt import CcxtBroker
from ordergate.brokers.paper import PaperBroker
from ordergate.config import Settings, load_settings
from ordergate.pipeline.journal import Journal
from ordergate.pipeline.recovery import INTERRUPTED, _settle, reconcile
from ordergate.pipeline.signal import Order
from ordergate.stages.schema import client_order_id
from tests.brokers.fake_binance import FakeBinance, Serving
from tests.conftest import CONFIG_DIR, SEED_ORDERS
from tests.test_cli_serve import free_port, start_serve


@pytest.fixture
def settings(journal_settings: Settings) -> Settings:
    """Every test here runs on SQLite and on a real PostgreSQL."""
    return journal_settings


def crashed_mid_flight(
    journal: Journal, broker: PaperBroker, signal_id: str, payload: dict[str, Any], placed: bool
) -> str:
    """What a crash leaves: the claim written, maybe the order placed, no outcome written."""
    # two minutes ago: replicas sharing PostgreSQL settle only what has been in flight a minute
    journal.claim(signal_id, "BINANCE", payload, f"BINANCE:{payload['id']}", time.time() - 120)
    cid = client_order_id("BINANCE", payload, signal_id)
    if placed:
        market = broker.market("BTCUSDT")
        assert market is not None
        broker.place_order(Order("BTCUSDT", "buy", "MARKET", Decimal("0.001"), client_order_id=cid), market)
    return cid


def test_restart_settles_in_flight_signals_from_the_broker(app: OrdergateApp, settings: Settings) -> None:
    broker = app.service.brokers["paper_binance"]
    assert isinstance(broker, PaperBroker)
    placed_cid = crashed_mid_flight(app.journal, broker, "sig-placed", {**SEED_ORDERS[0], "id": "a"}, placed=True)
    crashed_mid_flight(app.journal, broker, "sig-lost", {**SEED_ORDERS[0], "id": "b"}, placed=False)
    assert len(app.journal.in_flight()) == 2

    restarted = create_app(settings, brokers={"paper_binance": broker}, journal=app.journal)
    assert restarted.journal.in_flight() == []
    placed = restarted.journal.get("sig-placed")
    lost = restarted.journal.get("sig-lost")
    assert placed is not None
    assert lost is not None
    assert (placed.status, placed.client_order_id) == ("filled", placed_cid)
    assert placed.response is not None
    assert placed.response["recovered"] is True
    assert lost.status == "error"
    assert lost.response == {
        "success": False,
        "error": INTERRUPTED,
        "clientOrderId": client_order_id("BINANCE", {"id": "b"}, "sig-lost"),
        "recovered": True,
        "signalId": "sig-lost",
    }
    assert len(broker.placements()) == 1  # nothing was re-sent

    # Sent again: the placed one answers its settled outcome and places nothing; the one cut
    # off before its order was sent is retryable (503), so the re-send places it, once.
    assert lost.http_status == 503
    client = testing.TestClient(restarted)
    again = client.simulate_post("/webhook", body=json.dumps({**SEED_ORDERS[0], "id": "a"})).json
    assert (again["duplicate"], again["clientOrderId"]) == (True, placed_cid)
    lost_again = client.simulate_post("/webhook", body=json.dumps({**SEED_ORDERS[0], "id": "b"})).json
    assert lost_again["success"] is True
    assert "duplicate" not in lost_again
    assert len(broker.placements()) == 2
    once_more = client.simulate_post("/webhook", body=json.dumps({**SEED_ORDERS[0], "id": "b"})).json
    assert (once_more["duplicate"], once_more["orderId"]) == (True, lost_again["orderId"])
    assert len(broker.placements()) == 2


def start(port: int, db: Path) -> subprocess.Popen[str]:
    return start_serve(port, ORDERGATE_DB=str(db))


def test_kill_9_during_a_burst_of_100_loses_no_answered_signal(tmp_path: Path) -> None:
    port, db = free_port(), tmp_path / "journal.db"
    process = start(port, db)
    answers: dict[str, dict[str, Any]] = {}
    lock = threading.Lock()

    def send(n: int) -> None:
        side = "buy" if n % 2 == 0 else "sell"
        body = json.dumps({**SEED_ORDERS[0], "side": side, "id": f"burst-{n}"})
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request("POST", "/webhook", body=body)
            answer = json.loads(conn.getresponse().read())
        except (OSError, http.client.HTTPException, ValueError):
            return  # cut off by the kill: no answer, so no promise
        finally:
            conn.close()
        with lock:
            answers[f"burst-{n}"] = answer

    senders = [threading.Thread(target=send, args=(n,)) for n in range(100)]
    try:
        for n, sender in enumerate(senders):
            sender.start()
            if n == 49:  # half the burst is out: kill once some of it has been answered
                deadline = time.monotonic() + 10
                while len(answers) < 5 and time.monotonic() < deadline:
                    time.sleep(0.001)
                process.send_signal(signal.SIGKILL)
        for sender in senders:
            sender.join(timeout=15)
    finally:
        process.kill()
        process.communicate()
    assert 0 < len(answers) < 100, len(answers)  # the kill landed mid-burst

    restarted = start(port, db)  # recovery runs at startup
    try:
        journal = Journal(f"sqlite:///{db}")
        try:
            assert journal.in_flight() == []
            for signal_id, answer in answers.items():
                entry = journal.find_by_key(f"BINANCE:{signal_id}")
                assert entry is not None, signal_id
                assert entry.response is not None
                assert entry.response["signalId"] == answer["signalId"]
                assert entry.response.get("orderId") == answer.get("orderId")  # its true outcome
            rows = list(journal.entries(limit=1000))
            assert len({e.client_order_id for e in rows if e.broker_order_id}) == sum(
                1 for e in rows if e.broker_order_id
            )
        finally:
            journal.close()

        def resend(n: int) -> tuple[int, dict[str, Any]]:
            body = json.dumps({**SEED_ORDERS[0], "side": "buy" if n % 2 == 0 else "sell", "id": f"burst-{n}"})
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                conn.request("POST", "/webhook", body=body)
                response = conn.getresponse()
                return response.status, json.loads(response.read())
            finally:
                conn.close()

        # every signal sent again: an answered one is a duplicate of its outcome, never a second order
        for signal_id, answer in answers.items():
            status, again = resend(int(signal_id.split("-")[1]))
            assert again["duplicate"] is True
            assert again.get("orderId") == answer.get("orderId")
        # one the kill cut off is not lost: before its order was sent it is placed now, once;
        # while sending, it is looked up (the paper book died with the process: pending, 202)
        placed_now = 0
        for n in range(100):
            if f"burst-{n}" in answers:
                continue
            status, again = resend(n)
            assert status in (200, 202), again
            if status == 200 and "duplicate" not in again:
                placed_now += 1
                assert again["success"] is True
                status, third = resend(n)
                assert (status, third["duplicate"], third["orderId"]) == (200, True, again["orderId"])
        assert placed_now > 0
    finally:
        restarted.send_signal(signal.SIGTERM)
        restarted.communicate(timeout=15)


def test_the_background_reconciler_settles_what_a_dead_replica_left(app: OrdergateApp) -> None:
    broker = app.service.brokers["paper_binance"]
    assert isinstance(broker, PaperBroker)
    crashed_mid_flight(app.journal, broker, "sig-orphan", {**SEED_ORDERS[0], "id": "orphan"}, placed=True)
    reconciler = app.start_reconciler(every_s=0.05, older_than_s=60)
    deadline = time.monotonic() + 10
    while app.journal.in_flight() and time.monotonic() < deadline:
        time.sleep(0.05)
    reconciler.stop()
    entry = app.journal.get("sig-orphan")
    assert entry is not None
    assert entry.status == "filled"


@pytest.mark.parametrize(
    ("exchange_status", "settled", "http_status"),
    [
        ("CANCELED", "rejected", 422),
        ("EXPIRED", "rejected", 422),
        ("NEW", "open", 200),
        ("FILLED", "filled", 200),
    ],
)
def test_restart_settles_an_in_flight_row_as_the_exchange_has_its_order(
    tmp_path: Path, exchange_status: str, settled: str, http_status: int
) -> None:
    """The real app on the testnet environment, its ccxt broker on a loopback Binance: a row a
    crash left in flight is settled from the exchange's answer to ``GET /api/v3/order``. An
    order the exchange canceled or expired is no open order: the row says rejected."""
    db = tmp_path / "journal.db"
    payload = {"broker": "BINANCE", "symbol": "BTCUSDT", "side": "buy", "quantity": "0.001", "type": "LIMIT"}
    payload.update(price="30000", id=f"left-{exchange_status}")
    journal = Journal(f"sqlite:///{db}")
    journal.claim("sig-left", "BINANCE", payload, f"BINANCE:{payload['id']}", time.time() - 120)
    journal.close()
    cid = client_order_id("BINANCE", payload, "sig-left")
    with Serving(FakeBinance()) as exchange:
        exchange.add_order("spot", cid, "BTCUSDT", exchange_status, type="LIMIT", price="30000")
        environ = {
            "BINANCE_API_URL": exchange.url,
            "BINANCE_MARKET_TYPE": "spot",
            "BINANCE_API_KEY": "test-key-not-a-secret",
            "BINANCE_API_SECRET": "test-secret-not-a-secret",
            "WEBHOOK_SECRET": "hook-secret-not-a-secret",
            "ORDERGATE_DB": str(db),
        }
        app = create_app(load_settings("testnet", CONFIG_DIR, environ=environ))  # recovery runs here
        try:
            broker = app.service.brokers["binance"]
            assert isinstance(broker, CcxtBroker)
            broker.close()
            entry = app.journal.get("sig-left")
            assert entry is not None
            assert (entry.status, entry.http_status, entry.client_order_id) == (settled, http_status, cid)
            assert entry.response is not None
            assert entry.response["recovered"] is True
            assert exchange.lookups() == [{"symbol": "BTCUSDT", "origClientOrderId": cid}]
            assert exchange.order_requests() == []  # settled from the exchange's records, nothing re-sent
        finally:
            app.journal.close()


@pytest.mark.parametrize("at_broker", [True, False], ids=["found", "absent"])
def test_a_row_another_replica_settled_first_is_never_overwritten(app: OrdergateApp, at_broker: bool) -> None:
    """Two replicas' reconcilers may look the same row up at once: the second write must not
    replace the first's outcome (a found order must never become 'absent', or the reverse)."""
    broker = app.service.brokers["paper_binance"]
    assert isinstance(broker, PaperBroker)
    cid = crashed_mid_flight(app.journal, broker, "sig-race", {**SEED_ORDERS[0], "id": "race"}, placed=at_broker)
    app.journal.placing("sig-race", cid)
    stale = app.journal.get("sig-race")
    assert stale is not None
    settled_first = {"success": True, "orderId": 1, "settledBy": "the other replica"}
    assert app.journal.finish(
        "sig-race", status="filled", http_status=200, response=settled_first, expected_status="placing"
    )
    seen: list[Any] = []
    _settle(app.journal, app.service.runners, stale, stale.received_at + 600, 120.0, SETTLED, seen.append)
    entry = app.journal.get("sig-race")
    assert entry is not None
    assert (entry.status, entry.response) == ("filled", settled_first)
    assert seen == []  # nothing notified twice


@pytest.mark.parametrize(
    ("status", "error"),
    [("received", INTERRUPTED), ("placing", "The order {cid} cannot be looked up any more")],
)
@pytest.mark.parametrize("gone", ["route", "symbol", "no-symbol"])
def test_a_row_whose_route_or_symbol_is_gone_is_retryable(
    app: OrdergateApp, settings: Settings, status: str, error: str, gone: str
) -> None:
    """The config changed between the crash and the restart: nothing to look the order up with."""
    payload: dict[str, Any] = {**SEED_ORDERS[0], "id": f"gone-{gone}"}
    route = "GONE" if gone == "route" else "BINANCE"
    if gone == "symbol":
        payload["symbol"] = "DELISTEDUSDT"
    if gone == "no-symbol":
        del payload["symbol"]
    app.journal.claim("sig-gone", route, payload, None, time.time() - 120)
    cid = client_order_id(route, payload, "sig-gone")
    if status == "placing":
        app.journal.placing("sig-gone", cid)
    assert reconcile(app.journal, app.service.runners, answers=SETTLED) == 1
    entry = app.journal.get("sig-gone")
    assert entry is not None
    assert (entry.status, entry.http_status, entry.client_order_id) == ("error", 503, cid)
    assert entry.response == {
        "success": False,
        "error": error.format(cid=cid),
        "clientOrderId": cid,
        "recovered": True,
        "signalId": "sig-gone",
    }


def test_a_row_without_an_id_is_looked_up_by_the_client_order_id_of_its_signal(app: OrdergateApp) -> None:
    """An id-less signal's client order id is ``og-<signal id>``: recovery derives the same one."""
    broker = app.service.brokers["paper_binance"]
    assert isinstance(broker, PaperBroker)
    app.journal.claim("sig-no-id", "BINANCE", SEED_ORDERS[0], None, time.time() - 120)
    market = broker.market("BTCUSDT")
    assert market is not None
    broker.place_order(Order("BTCUSDT", "buy", "MARKET", Decimal("0.001"), client_order_id="og-sig-no-id"), market)
    assert reconcile(app.journal, app.service.runners, answers=SETTLED) == 1
    entry = app.journal.get("sig-no-id")
    assert entry is not None
    assert (entry.status, entry.client_order_id) == ("filled", "og-sig-no-id")
