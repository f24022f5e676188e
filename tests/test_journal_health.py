"""A journal that vanishes, fills up or turns read-only while serving is noticed, not written past.

Real waitress on real sockets, real SQLite and PostgreSQL: ``/readyz`` answers 503 naming the
journal's problem, signals answer 503 with nothing placed, the log says so once, and readiness
comes back when the journal can be written again (a deleted file needs a restart).
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import resource
import secrets
import shutil
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from ordergate.app import OrdergateApp, create_app
from ordergate.brokers.paper import PaperBroker
from ordergate.config import Settings
from tests.conftest import SEED_ORDERS, raw_json, serving
from tests.test_cli_serve import free_port, start_serve


def order(signal_id: str) -> str:
    return raw_json({**SEED_ORDERS[0], "id": signal_id})


def paper(app: OrdergateApp) -> PaperBroker:
    broker = app.service.brokers["paper_binance"]
    assert isinstance(broker, PaperBroker)
    return broker


@contextmanager
def own_app(settings: Settings) -> Iterator[OrdergateApp]:
    app = create_app(settings)
    try:
        yield app
    finally:
        app.journal.close()


def journal_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.ERROR and r.getMessage().startswith("Journal unavailable")
    ]


@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_a_sqlite_file_deleted_or_replaced_while_serving_stops_signals_and_readiness(
    settings: Settings, caplog: pytest.LogCaptureFixture, how: str
) -> None:
    """SQLite writes on into a deleted file's inode without an error (and a restart would then
    forget every id, so earlier ids would place again); a replaced file is another journal."""
    caplog.set_level(logging.INFO, logger="ordergate")
    path = Path(settings.data["journal"]["path"])
    with own_app(settings) as app, serving(app) as server:
        assert server.post(order("before"))[0] == 200
        assert server.request("GET", "/readyz")[0] == 200
        if how == "deleted":
            for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                name.unlink(missing_ok=True)
        else:  # e.g. a backup restored over it while serving
            shutil.copy(path, f"{path}.copy")
            os.replace(f"{path}.copy", path)

        status, ready = server.request("GET", "/readyz")
        assert status == 503, ready
        assert ready["ready"] is False
        assert ready["checks"]["journal"] == f"its file {path} was {how} while serving (restart to open it again)"
        assert ready["notReady"] == [f"journal: {ready['checks']['journal']}"]

        for attempt in ("after-1", "after-2"):
            status, body = server.post(order(attempt))
            assert status == 503, body
            assert body["success"] is False
            assert body["error"] == (
                f"Journal unavailable: its file {path} was {how} while serving (restart to open it again);"
                " nothing was placed, try again shortly"
            )
        assert len(paper(app).placements()) == 1  # only the signal before
    # One ERROR line for the change, however many signals it refused; each refusal has a short line.
    assert journal_errors(caplog) == [
        f"Journal unavailable: its file {path} was {how} while serving (restart to open it again);"
        " signals answer 503 and place nothing until it is fixed"
    ]
    assert sum("refused before any stage: journal unavailable" in m for m in caplog.messages) == 2


def test_a_full_disk_stops_signals_and_readiness_until_it_has_room_again(tmp_path: Path) -> None:
    """The disk is full for the server's process alone: its file size limit (RLIMIT_FSIZE) is set
    to 0 while it serves, so every write to a file fails (EFBIG) as on a full disk; raising the
    limit again is the space freed. Needs no root and touches no other process."""
    port = free_port()
    process = start_serve(port, ORDERGATE_DB=str(tmp_path / "journal.db"))

    def call(method: str, path: str, body: str | None = None) -> tuple[int, dict[str, Any]]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.request(method, path, body=body)
            response = conn.getresponse()
            return response.status, json.loads(response.read())
        finally:
            conn.close()

    soft, hard = resource.prlimit(process.pid, resource.RLIMIT_FSIZE)
    try:
        assert call("POST", "/webhook", order("before"))[0] == 200
        resource.prlimit(process.pid, resource.RLIMIT_FSIZE, (0, hard))
        status, ready = call("GET", "/readyz")
        assert status == 503, ready
        reason = ready["checks"]["journal"]
        assert reason.startswith("a write failed: "), reason
        assert reason.removeprefix("a write failed: ") in ("disk I/O error", "database or disk is full")
        status, body = call("POST", "/webhook", order("while-full"))
        assert status == 503, body
        assert body == {
            "success": False,
            "error": f"Journal unavailable: {reason}; nothing was placed, try again shortly",
        }

        resource.prlimit(process.pid, resource.RLIMIT_FSIZE, (soft, hard))  # room again
        status, ready = call("GET", "/readyz")
        assert (status, ready["checks"]["journal"]) == (200, "ok"), ready
        status, body = call("POST", "/webhook", order("while-full"))  # the sender's retry
        assert (status, body["success"]) == (200, True), body
        process.send_signal(signal.SIGTERM)
        _, log = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert log.count("✅ Order placed successfully:") == 2  # before, and the retry: none while full
    assert log.count(f"ERROR Journal unavailable: {reason}; signals answer 503") == 1, log
    assert "Journal writable again" in log


# The placing mark is written just before the order is sent; if it cannot be, nothing is sent.
REFUSE_PLACING = {
    "sqlite": [
        "CREATE TRIGGER refuse_placing BEFORE UPDATE OF status ON signals WHEN NEW.status = 'placing'"
        " BEGIN SELECT RAISE(ABORT, 'could not extend file'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION refuse_placing() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        " IF NEW.status = 'placing' THEN RAISE EXCEPTION 'could not extend file' USING ERRCODE = 'disk_full';"
        " END IF; RETURN NEW; END $$",
        "CREATE TRIGGER refuse_placing BEFORE UPDATE ON signals FOR EACH ROW EXECUTE FUNCTION refuse_placing()",
    ],
}


def test_a_failed_placing_write_answers_503_and_sends_nothing(journal_settings: Settings) -> None:
    with own_app(journal_settings) as app, serving(app) as server:
        engine = app.journal.engine
        with engine.begin() as conn:
            for statement in REFUSE_PLACING[engine.dialect.name]:
                conn.execute(sa.text(statement))
        status, body = server.post(order("refused-at-placing"))
        assert status == 503, body
        assert body["success"] is False
        assert (
            body["error"]
            == "Journal unavailable: a write failed: could not extend file; nothing was placed, try again shortly"
        )
        assert body["stage"] == "execute"
        assert paper(app).placements() == []
        entry = app.journal.get(body["signalId"])
        assert entry is not None
        assert (entry.status, entry.http_status, entry.retryable) == ("error", 503, True)  # a retry may run again


@pytest.mark.parametrize("journal_settings", ["postgresql"], indirect=True)
def test_a_postgresql_journal_that_cannot_be_written_stops_signals_and_readiness(
    journal_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """The journal's role loses its write privileges while serving (as an operator's REVOKE, or a
    database switched to read-only would do): reads still work, so ``SELECT 1`` passed before."""
    caplog.set_level(logging.INFO, logger="ordergate")
    url = sa.make_url(journal_settings.data["journal"]["url"])
    schema = str(url.query["options"]).split("=", 1)[1]
    role = f"og_{secrets.token_hex(4)}"
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE ROLE {role} LOGIN"))
        conn.execute(sa.text(f"GRANT ALL ON SCHEMA {schema} TO {role}"))
    journal_settings.data["journal"]["url"] = url.set(username=role).render_as_string(hide_password=False)
    try:
        with own_app(journal_settings) as app, serving(app) as server:
            assert server.post(order("before"))[0] == 200
            with admin.begin() as conn:
                conn.execute(sa.text(f"REVOKE INSERT, UPDATE ON ALL TABLES IN SCHEMA {schema} FROM {role}"))
            status, ready = server.request("GET", "/readyz")
            assert status == 503, ready
            assert ready["checks"]["journal"] == "a write failed: permission denied for table journal_health"
            status, body = server.post(order("while-read-only"))
            assert status == 503, body
            assert body["error"] == (
                "Journal unavailable: a write failed: permission denied for table signals;"
                " nothing was placed, try again shortly"
            )
            assert len(paper(app).placements()) == 1

            with admin.begin() as conn:
                conn.execute(sa.text(f"GRANT INSERT, UPDATE ON ALL TABLES IN SCHEMA {schema} TO {role}"))
            assert server.request("GET", "/readyz")[0] == 200
            status, body = server.post(order("while-read-only"))  # the sender's retry
            assert (status, body["success"]) == (200, True), body
            assert len(paper(app).placements()) == 2
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP OWNED BY {role}"))
            conn.execute(sa.text(f"DROP ROLE {role}"))
        admin.dispose()
    assert journal_errors(caplog) == [
        "Journal unavailable: a write failed: permission denied for table journal_health;"
        " signals answer 503 and place nothing until it is fixed",
        "Journal unavailable: a write failed: permission denied for table signals;"
        " signals answer 503 and place nothing until it is fixed",
    ]
    assert any(m.startswith("Journal writable again") for m in caplog.messages)


def test_a_journal_that_cannot_be_read_answers_503_never_500(
    journal_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """Reads outside any runner (an id-less signal's duplicate look-up, the history) that fail
    answer 503 with nothing placed and one short ERROR line, not a 500 with a traceback."""
    journal_settings.data["routes"]["BINANCE"]["dedupe_window_s"] = 30  # a look-up before the claim
    journal_settings.data["auth"]["admin_token"] = "history-token-1"
    with own_app(journal_settings) as app, serving(app) as server:
        assert server.post(raw_json(SEED_ORDERS[0]))[0] == 200
        with app.journal.engine.begin() as conn:  # the table is gone: every read of it fails
            conn.execute(sa.text("ALTER TABLE signals RENAME TO signals_moved"))
        caplog.clear()
        status, answer = server.post(raw_json({**SEED_ORDERS[0], "quantity": 0.002}))
        assert status == 503, answer
        assert answer["error"].startswith("Journal unavailable: ")
        assert answer["error"].endswith("; nothing was placed, try again shortly")
        assert server.request("GET", "/signals", headers={"Authorization": "Bearer history-token-1"})[0] == 503
        assert len(paper(app).placements()) == 1
        with app.journal.engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE signals_moved RENAME TO signals"))
        assert server.post(raw_json({**SEED_ORDERS[0], "quantity": 0.002}))[0] == 200
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and r.name == "ordergate"]
    assert errors
    assert all(r.exc_info is None for r in errors)
    assert all("Journal unavailable" in r.getMessage() for r in errors)


def test_a_failed_outcome_write_still_answers_the_placed_order_and_the_reconciler_settles_it(
    journal_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """The order exists once it is placed: an outcome the journal cannot record is still
    answered as it is (one ERROR line, no traceback), and the row, left ``placing``, is settled
    by the reconciler from the broker once the journal can be written again."""
    refuse = {
        name: [s.replace("placing", "filled").replace("refuse_filled", "refuse_finish") for s in statements]
        for name, statements in REFUSE_PLACING.items()
    }
    with own_app(journal_settings) as app, serving(app) as server:
        engine = app.journal.engine
        with engine.begin() as conn:
            for statement in refuse[engine.dialect.name]:
                conn.execute(sa.text(statement))
        caplog.clear()
        status, body = server.post(order("outcome-not-recorded"))
        assert (status, body["success"], body["status"]) == (200, True, "FILLED")
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert [r.getMessage().split(" (")[0] for r in errors if "Journal write failed" in r.getMessage()] == [
            f"Journal write failed for signal {body['signalId']}"
        ]
        assert all(r.exc_info is None for r in errors)
        entry = app.journal.get(body["signalId"])
        assert entry is not None
        assert entry.status == "placing"
        with engine.begin() as conn:
            conn.execute(
                sa.text("DROP TRIGGER refuse_finish" + (" ON signals" if engine.dialect.name == "postgresql" else ""))
            )
        assert app.reconcile(older_than_s=0) == 1
        settled = app.journal.get(body["signalId"])
        assert settled is not None
        assert (settled.status, settled.broker_order_id) == ("filled", str(body["orderId"]))
        assert len(paper(app).placements()) == 1
