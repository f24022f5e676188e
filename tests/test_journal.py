"""The journal: every signal written before its stages run, with its outcome; idempotency."""

from __future__ import annotations

import json
import threading
from contextlib import closing
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from falcon import testing

from ordergate.app import OrdergateApp, create_app
from ordergate.brokers.paper import PaperBroker
from ordergate.config import Settings
from ordergate.gateway import dedupe_keys
from ordergate.pipeline.journal import Journal, database_url
from tests.conftest import SEED_ERRORS, SEED_ORDERS, serving


@pytest.fixture
def settings(journal_settings: Settings) -> Settings:
    """Every test here runs on SQLite and on a real PostgreSQL."""
    return journal_settings


def post(client: testing.TestClient, payload: dict[str, Any]) -> testing.Result:
    return client.simulate_post("/webhook", body=json.dumps(payload))


def paper(app: OrdergateApp, name: str = "paper_binance") -> PaperBroker:
    broker = app.service.brokers[name]
    assert isinstance(broker, PaperBroker)
    return broker


def test_every_signal_is_journaled_with_its_outcome_and_trace(app: OrdergateApp, client: testing.TestClient) -> None:
    filled = post(client, {**SEED_ORDERS[0], "passphrase": "hunter2", "comment": "kept"}).json
    rejected = post(client, SEED_ERRORS[0][0]).json
    entry = app.journal.get(filled["signalId"])
    assert entry is not None
    assert (entry.status, entry.http_status, entry.route) == ("filled", 200, "BINANCE")
    assert entry.client_order_id == filled["clientOrderId"]
    assert entry.broker_order_id == str(filled["orderId"])
    assert entry.payload is not None
    assert "passphrase" not in entry.payload
    assert entry.payload["comment"] == "kept"  # extra fields are kept
    assert [step["stage"] for step in entry.trace or []][-1] == "execute"
    assert entry.response == filled
    refused = app.journal.get(rejected["signalId"])
    assert refused is not None
    assert (refused.status, refused.http_status) == ("rejected", 422)
    assert refused.response is not None
    assert refused.response["error"] == "Order size too small"


def test_an_unknown_broker_is_journaled_too(app: OrdergateApp, client: testing.TestClient) -> None:
    result = post(client, {**SEED_ORDERS[0], "broker": "KRAKEN"})
    assert result.status_code == 400
    entries = list(app.journal.entries())
    assert [(e.route, e.status, e.http_status) for e in entries] == [("KRAKEN", "rejected", 400)]


def test_a_repeated_signal_id_answers_the_first_outcome_and_places_nothing(
    app: OrdergateApp, client: testing.TestClient
) -> None:
    signal = {**SEED_ORDERS[0], "id": "entry-1-2026-11-25T01:00:00Z"}
    first = post(client, signal)
    again = post(client, signal)
    assert first.status_code == again.status_code == 200
    assert "duplicate" not in first.json
    assert again.json["duplicate"] is True
    assert again.json["orderId"] == first.json["orderId"]
    assert again.json["signalId"] == first.json["signalId"]
    assert len(paper(app).placements()) == 1
    other_route = post(client, {**signal, "broker": "BINANCE_REAL"})  # the id is per route
    assert "duplicate" not in other_route.json
    assert len(paper(app).placements()) == 2


def test_a_repeat_of_a_rejected_signal_answers_200_with_the_first_words(client: testing.TestClient) -> None:
    signal = {**SEED_ERRORS[0][0], "id": "too-small-1"}
    first = post(client, signal)
    again = post(client, signal)
    assert first.status_code == 422
    assert (again.status_code, again.json["error"], again.json["duplicate"]) == (200, "Order size too small", True)


def test_fifty_concurrent_copies_of_one_signal_place_exactly_one_order(app: OrdergateApp) -> None:
    signal = json.dumps({**SEED_ORDERS[0], "id": "burst-1"})
    answers: list[tuple[int, dict[str, Any]]] = []
    lock = threading.Lock()
    with serving(app, threads=8) as server:
        start = threading.Barrier(50)

        def send() -> None:
            start.wait()
            status, body = server.post(signal)
            with lock:
                answers.append((status, body))

        senders = [threading.Thread(target=send) for _ in range(50)]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join(timeout=30)
    assert len(answers) == 50
    assert {status for status, _ in answers} == {200}
    assert sum(1 for _, body in answers if body.get("duplicate")) == 49
    assert len({body["orderId"] for _, body in answers}) == 1
    assert len(paper(app).placements()) == 1


def test_the_journal_survives_a_new_process(tmp_path: Path, app: OrdergateApp, client: testing.TestClient) -> None:
    answer = post(client, SEED_ORDERS[0]).json
    reopened = Journal(app.journal.url)
    try:
        entry = reopened.get(answer["signalId"])
        assert entry is not None
        assert entry.status == "filled"
    finally:
        reopened.close()


def test_database_url_reads_railway_postgres_urls(tmp_path: Path) -> None:
    assert database_url({}, tmp_path / "j.db") == f"sqlite:///{tmp_path / 'j.db'}"
    railway = {"DATABASE_URL": "postgres://u:p@host:5432/railway"}
    assert database_url(railway, tmp_path / "j.db") == "postgresql+psycopg://u:p@host:5432/railway"
    assert database_url({"DATABASE_URL": "postgresql://h/db"}, tmp_path / "j.db") == "postgresql+psycopg://h/db"


def test_two_signals_on_one_account_never_both_pass_the_balance_check(settings: Settings) -> None:
    crypto = settings.data["pipelines"]["crypto"]
    at = next(i for i, stage in enumerate(crypto) if stage == "execute")
    crypto.insert(at, {"tests.slow_stage:SlowStage": {"seconds": Decimal("0.3")}})  # between balance and execute
    app = create_app(settings)
    big = json.dumps({**SEED_ORDERS[0], "quantity": "0.15"})  # 6,525 USDT of margin, of 10,000
    answers: list[dict[str, Any]] = []
    with closing(app.journal), serving(app, threads=4) as server:
        senders = [threading.Thread(target=lambda: answers.append(server.post(big)[1])) for _ in range(2)]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join(timeout=10)
    assert sorted(a.get("error", "filled") for a in answers) == ["Insufficient balance", "filled"]
    refused = next(a for a in answers if "error" in a)
    assert refused["stage"] == "balance"  # the check saw the first order's margin already taken
    assert len(paper(app).placements()) == 1


def test_a_dedupe_window_catches_identical_signals_without_an_id(settings: Settings) -> None:
    settings.data["routes"]["BINANCE"]["dedupe_window_s"] = 30
    app = create_app(settings)
    with closing(app.journal):
        client = testing.TestClient(app)
        first = post(client, SEED_ORDERS[0])
        again = post(client, {**SEED_ORDERS[0], "passphrase": "not part of the signal"})
        other = post(client, {**SEED_ORDERS[0], "quantity": 0.002})
        real = post(client, {**SEED_ORDERS[0], "broker": "BINANCE_REAL"})  # no window on this route
        real_again = post(client, {**SEED_ORDERS[0], "broker": "BINANCE_REAL"})
        assert "duplicate" not in first.json
        assert (again.json["duplicate"], again.json["orderId"]) == (True, first.json["orderId"])
        assert "duplicate" not in other.json
        assert "duplicate" not in real.json
        assert "duplicate" not in real_again.json
        assert len(paper(app).placements()) == 4


def test_the_dedupe_window_reaches_across_a_bucket_boundary() -> None:
    # A repeat two seconds later but in the next 30 s bucket looks up the first one's key.
    before_the_edge = 1_800_000_000 - 1
    first_key, _ = dedupe_keys("BINANCE", SEED_ORDERS[0], before_the_edge, 30)
    later_key, previous_key = dedupe_keys("BINANCE", SEED_ORDERS[0], before_the_edge + 2, 30)
    assert later_key != first_key
    assert previous_key == first_key
    assert dedupe_keys("BINANCE", {**SEED_ORDERS[0], "passphrase": "x"}, before_the_edge, 30)[0] == first_key


def test_an_unreachable_journal_answers_503_and_places_nothing(tmp_path: Path) -> None:
    from ordergate.config import load_settings
    from tests.conftest import CONFIG_DIR

    settings = load_settings("development", CONFIG_DIR, environ={"ORDERGATE_DB": str(tmp_path / "j.db")})
    app = create_app(settings)
    app.journal.engine.dispose()
    (tmp_path / "j.db").unlink()
    (tmp_path / "j.db").mkdir()  # the file is gone and cannot come back: every write fails
    result = testing.TestClient(app).simulate_post("/webhook", body=json.dumps(SEED_ORDERS[0]))
    assert result.status_code == 503
    # "a write failed: unable to open database file", or "its file ... was replaced" when the
    # directory did not get the freed inode's number
    assert result.json["error"].startswith("Journal unavailable: ")
    assert result.json["error"].endswith("; nothing was placed, try again shortly")
    assert paper(app).placements() == []
