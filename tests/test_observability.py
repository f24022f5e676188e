"""What operators see: the history API, /metrics, /readyz and JSON logs, through the real app."""

from __future__ import annotations

import http.client
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from falcon import testing

from ordergate.app import OrdergateApp, create_app
from ordergate.config import Settings, load_settings
from tests.conftest import CONFIG_DIR, SEED_ERRORS, SEED_ORDERS
from tests.test_cli_serve import free_port, start_serve

TOKEN = "admin-token-not-a-secret"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def admin_app(tmp_path: Path) -> Iterator[OrdergateApp]:
    settings = load_settings(
        "development", CONFIG_DIR, environ={"ORDERGATE_DB": str(tmp_path / "j.db"), "ADMIN_TOKEN": TOKEN}
    )
    app = create_app(settings)
    yield app
    app.journal.close()


def metric(text: str, name: str, **labels: str) -> float:
    """One sample's value from Prometheus's text format (0 when absent)."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_the_history_shows_which_stage_rejected_a_signal_and_why(admin_app: OrdergateApp) -> None:
    client = testing.TestClient(admin_app)
    payload, words = SEED_ERRORS[0]
    rejected = client.simulate_post("/webhook", json=payload).json
    filled = client.simulate_post("/webhook", json=SEED_ORDERS[0]).json

    one = client.simulate_get(f"/signals/{rejected['signalId']}", headers=BEARER)
    assert one.status_code == 200
    view = one.json
    assert (view["status"], view["stage"], view["error"]) == ("rejected", rejected["stage"], words)
    assert view["trace"][-1]["stage"] == rejected["stage"]
    assert view["trace"][-1]["outcome"] == "rejected"
    assert all(isinstance(step["us"], int) for step in view["trace"])
    assert view["payload"]["symbol"] == payload["symbol"]
    assert view["ms"] >= 0

    placed = client.simulate_get(f"/signals/{filled['signalId']}", headers=BEARER).json
    assert (placed["status"], placed["orderId"]) == ("filled", str(filled["orderId"]))
    assert placed["clientOrderId"] == filled["clientOrderId"]

    listed = client.simulate_get("/signals", headers=BEARER, params={"status": "rejected"}).json["signals"]
    assert [s["id"] for s in listed] == [rejected["signalId"]]
    newest_first = client.simulate_get("/signals", headers=BEARER, params={"limit": "2"}).json["signals"]
    assert [s["id"] for s in newest_first] == [filled["signalId"], rejected["signalId"]]
    assert client.simulate_get("/signals", headers=BEARER, params={"route": "FLATTRADE"}).json["signals"] == []

    text = client.simulate_get("/metrics", headers=BEARER).text
    stage = rejected["stage"]
    assert metric(text, "ordergate_rejections_total", route="BINANCE", stage=stage, reason=rejected["code"]) == 1
    assert metric(text, "ordergate_signals_total", route="BINANCE", outcome="rejected") == 1
    assert metric(text, "ordergate_signals_total", route="BINANCE", outcome="filled") == 1
    assert metric(text, "ordergate_orders_placed_total", route="BINANCE", broker="paper_binance") == 1
    assert metric(text, "ordergate_stage_seconds_count", route="BINANCE", stage="schema") == 2
    assert metric(text, "ordergate_broker_seconds_count", broker="paper_binance") == 1


def test_the_history_needs_the_admin_token_and_is_off_without_one(
    admin_app: OrdergateApp, client: testing.TestClient
) -> None:
    admin = testing.TestClient(admin_app)
    assert admin.simulate_get("/signals").status_code == 401
    assert admin.simulate_get("/signals", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert admin.simulate_get("/signals/x", headers={"Authorization": TOKEN}).status_code == 401
    assert admin.simulate_get("/metrics").status_code == 401
    assert admin.simulate_get("/signals/nope", headers=BEARER).status_code == 404
    bad = admin.simulate_get("/signals", headers=BEARER, params={"status": "lost"})
    assert bad.status_code == 400
    assert bad.json["error"].startswith("Invalid status: lost (expected received, filled")
    assert admin.simulate_get("/signals", headers=BEARER, params={"limit": "0"}).status_code == 400

    off = client.simulate_get("/signals", headers=BEARER)  # the default app: no ADMIN_TOKEN
    assert (off.status_code, off.json["error"]) == (404, "The signal history is off: set ADMIN_TOKEN to turn it on")
    assert client.simulate_get("/metrics").status_code == 200  # counts only: open without a token


def test_metrics_count_refusals_before_any_chain(client: testing.TestClient) -> None:
    client.simulate_post("/webhook", json={**SEED_ORDERS[0], "broker": "KRAKEN"})
    client.simulate_post("/webhook", json={**SEED_ORDERS[0], "id": "dup"})
    client.simulate_post("/webhook", json={**SEED_ORDERS[0], "id": "dup"})
    text = client.simulate_get("/metrics").text
    assert metric(text, "ordergate_signals_total", route="?", outcome="rejected") == 1
    assert metric(text, "ordergate_rejections_total", stage="route", reason="unknown_broker") == 1
    assert metric(text, "ordergate_signals_total", route="BINANCE", outcome="duplicate") == 1
    assert metric(text, "ordergate_orders_placed_total", route="BINANCE") == 1


def test_readyz_names_what_is_not_ready(settings: Settings) -> None:
    app = create_app(settings)
    client = testing.TestClient(app)
    ready = client.simulate_get("/readyz")
    assert ready.status_code == 200
    assert ready.json["ready"] is True
    assert ready.json["checks"]["journal"] == "ok"
    assert ready.json["checks"]["markets paper_binance"] == "ok"
    app.journal.engine.dispose()
    Path(str(app.journal.engine.url.database)).unlink()
    Path(str(app.journal.engine.url.database)).mkdir()  # a directory where the database was
    down = client.simulate_get("/readyz")
    assert down.status_code == 503
    assert down.json["ready"] is False
    database = app.journal.engine.url.database
    assert down.json["notReady"][0] in (
        "journal: a write failed: unable to open database file",
        f"journal: its file {database} was replaced while serving (restart to open it again)",  # a new inode number
    )
    assert client.simulate_get("/healthz").status_code == 200  # alive all the same


def test_readyz_reports_an_expired_broker_login_without_failing(tmp_path: Path) -> None:
    environ = {"ORDERGATE_DB": str(tmp_path / "j.db"), "WEBHOOK_SECRET": "s", "FLATTRADE_USER_ID": "FT1"}
    settings = load_settings("live", CONFIG_DIR, environ=environ)
    settings.data["routes"] = {"FLATTRADE": settings.data["routes"]["FLATTRADE"]}
    app = create_app(settings)
    try:
        ready = testing.TestClient(app).simulate_get("/readyz").json
        assert ready["ready"] is True  # a redeploy before the morning login must not fail
        assert ready["warnings"] == ["session flattrade: FlatTrade session expired: log in at /auth/flattrade"]
    finally:
        app.journal.close()


def test_json_logs_carry_the_signal_id_on_every_line(tmp_path: Path) -> None:
    port = free_port()
    process = start_serve(port, LOG_FORMAT="json", ORDERGATE_DB=str(tmp_path / "j.db"))
    try:
        answers: list[dict[str, Any]] = []
        for payload in (SEED_ORDERS[0], SEED_ERRORS[0][0]):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("POST", "/webhook", body=json.dumps(payload))
            answers.append(json.loads(conn.getresponse().read()))
            conn.close()
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    lines = [json.loads(line) for line in stderr.splitlines() if line.strip()]
    assert all({"time", "level", "message"} <= set(line) for line in lines)
    for answer in answers:
        mine = [line["message"] for line in lines if line.get("signalId") == answer["signalId"]]
        assert mine
        assert mine[0].startswith("Processing Binance Signal: ")
    tagged = [line for line in lines if line["message"].startswith(("Processing", "Order params", "ERROR: "))]
    assert tagged
    assert all("signalId" in line for line in tagged)
