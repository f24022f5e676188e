"""Who may send signals (secret, source address), live money, and stale signals."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from falcon import testing

from ordergate.app import OrdergateApp, create_app
from ordergate.auth import TRADINGVIEW_IPS, RefusalBudget
from ordergate.brokers.paper import PaperBroker
from ordergate.config import Settings, load_settings
from tests.conftest import CONFIG_DIR, SEED_ORDERS, serving

SECRET = "correct-horse-battery-staple-42"


def app_with(tmp_path: Path, environment: str = "development", **environ: str) -> OrdergateApp:
    settings = load_settings(environment, CONFIG_DIR, environ={"ORDERGATE_DB": str(tmp_path / "j.db"), **environ})
    return create_app(settings)


def post(app: OrdergateApp, payload: dict[str, Any], path: str = "/webhook", **headers: str) -> testing.Result:
    return testing.TestClient(app).simulate_post(path, body=json.dumps(payload), headers=headers)


def orders(app: OrdergateApp) -> int:
    broker = app.service.brokers["paper_binance"]
    assert isinstance(broker, PaperBroker)
    return len(broker.placements())


@pytest.mark.parametrize(
    ("payload", "path"),
    [
        (SEED_ORDERS[0], "/webhook"),
        ({**SEED_ORDERS[0], "passphrase": "wrong"}, "/webhook"),
        ({**SEED_ORDERS[0], "passphrase": SECRET.upper()}, "/webhook"),
        ({**SEED_ORDERS[0], "passphrase": 42}, "/webhook"),
        ({**SEED_ORDERS[0], "passphrase": SECRET}, "/webhook/wrong"),  # the path's secret is the one checked
    ],
    ids=["missing", "wrong", "case", "not-a-string", "wrong-path"],
)
def test_without_the_secret_401_and_no_order(tmp_path: Path, payload: dict[str, Any], path: str) -> None:
    app = app_with(tmp_path, WEBHOOK_SECRET=SECRET)
    result = post(app, payload, path)
    assert (result.status_code, result.json["error"]) == (401, "Unauthorized")
    assert orders(app) == 0
    [entry] = list(app.journal.entries())
    assert (entry.status, entry.http_status, entry.payload) == ("unauthorized", 401, None)  # no payload kept


def test_with_the_secret_in_the_payload_or_the_path(tmp_path: Path) -> None:
    app = app_with(tmp_path, WEBHOOK_SECRET=SECRET)
    by_field = post(app, {**SEED_ORDERS[0], "passphrase": SECRET})
    by_path = post(app, SEED_ORDERS[0], f"/webhook/{SECRET}")
    assert (by_field.status_code, by_path.status_code) == (200, 200)
    assert orders(app) == 2
    stored = app.journal.get(by_field.json["signalId"])
    assert stored is not None
    assert stored.payload is not None
    assert "passphrase" not in stored.payload
    assert SECRET not in json.dumps(by_field.json)


def test_without_a_configured_secret_anyone_may_send_and_startup_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = app_with(tmp_path)
    assert "WEBHOOK_SECRET is not set" in caplog.text
    assert post(app, SEED_ORDERS[0]).status_code == 200


@pytest.mark.parametrize(
    ("remote", "forwarded", "allowed"),
    [
        ("127.0.0.1", None, False),  # not TradingView
        ("127.0.0.1", TRADINGVIEW_IPS[0], True),  # via the trusted proxy
        ("127.0.0.1", f"{TRADINGVIEW_IPS[1]}, 10.0.0.7", True),  # 10.0.0.7 is trusted too: skip it
        ("10.9.9.9", TRADINGVIEW_IPS[0], False),  # an untrusted sender cannot claim an address
    ],
    ids=["direct", "proxied", "two-hops", "spoofed"],
)
def test_the_source_address_allowlist(settings: Settings, remote: str, forwarded: str | None, allowed: bool) -> None:
    settings.data["auth"].update(allow_ips=list(TRADINGVIEW_IPS), trusted_proxies=["127.0.0.0/8", "10.0.0.0/24"])
    app = create_app(settings)
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    result = testing.TestClient(app).simulate_post(
        "/webhook", body=json.dumps(SEED_ORDERS[0]), headers=headers, remote_addr=remote
    )
    assert result.status_code == (200 if allowed else 401), result.json


def live_app(settings: Settings, environment: str, live_trading: bool) -> OrdergateApp:
    paper = PaperBroker.from_config(
        "paper_binance",
        dict(settings.data["brokers"]["paper_binance"]),
        config_dir=settings.config_dir,
        file="test",
    )
    paper.live = True  # this account stands in for real money
    live = Settings(environment, settings.config_dir, settings.data, settings.files)
    live.data["live_trading"] = live_trading
    return create_app(live, brokers={"paper_binance": paper})


@pytest.mark.parametrize(
    ("environment", "live_trading", "status"),
    [("development", True, 422), ("testnet", True, 422), ("live", False, 422), ("live", True, 200)],
)
def test_real_money_only_in_live_with_live_trading_yes(
    settings: Settings, environment: str, live_trading: bool, status: int
) -> None:
    app = live_app(settings, environment, live_trading)
    result = post(app, SEED_ORDERS[0])
    assert result.status_code == status, result.json
    if status == 422:
        assert result.json["error"] == (
            "Live trading is disabled in this environment: set ORDERGATE_ENV=live and LIVE_TRADING=yes"
            " to trade real money on BINANCE"
        )
        assert orders(app) == 0


# The "time" field as a function of the clock read when the test runs: a value computed at
# collection time goes stale when collection is slow or the machine is suspended in between.
SentAt = Callable[[float], str | None]


def iso_ago(seconds: float) -> SentAt:
    return lambda now: datetime.fromtimestamp(now - seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch_ms_ago(seconds: float) -> SentAt:
    return lambda now: str(int((now - seconds) * 1000))


def constant(value: str | None) -> SentAt:
    return lambda now: value


@pytest.mark.parametrize(
    ("sent_at", "status", "error"),
    [
        (iso_ago(5), 200, None),
        (epoch_ms_ago(5), 200, None),
        (iso_ago(600), 422, "Signal too old"),
        (constant(None), 400, "Missing required field: time"),
        (constant("yesterday"), 400, "Invalid time"),
    ],
    ids=["fresh", "epoch-ms", "stale", "missing", "unreadable"],
)
def test_max_age_refuses_stale_signals(settings: Settings, sent_at: SentAt, status: int, error: str | None) -> None:
    settings.data["routes"]["BINANCE"]["max_age_s"] = 60
    app = create_app(settings)
    sent = sent_at(time.time())
    payload = {**SEED_ORDERS[0], **({"time": sent} if sent is not None else {})}
    result = post(app, payload)
    assert result.status_code == status, result.json
    if error:
        assert result.json["error"].startswith(error)
        assert orders(app) == 0


def test_the_refusal_budget_is_a_token_bucket_that_reports_what_it_left_out() -> None:
    now = [0.0]
    budget = RefusalBudget(3, clock=lambda: now[0])
    assert [budget.allow() for _ in range(5)] == [True, True, True, False, False]
    assert budget.left_out() is None  # said at most once a minute
    now[0] = 20.0  # a third of a minute: one refusal's worth
    assert [budget.allow() for _ in range(2)] == [True, False]
    now[0] = 60.0
    assert budget.left_out() == (3, 60.0)
    assert budget.left_out() is None
    now[0] = 1000.0  # refilled, never above the minute's worth
    assert [budget.allow() for _ in range(4)] == [True, True, True, False]


def test_a_flood_of_refused_requests_is_counted_but_journals_and_logs_only_the_budget(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Unauthenticated requests cannot fill the disk or push real signals out of the history."""
    environ = {"ORDERGATE_DB": str(tmp_path / "journal.db"), "WEBHOOK_SECRET": "flood-secret-1"}
    settings = load_settings("development", CONFIG_DIR, environ=environ)
    settings.data["journal"]["refusals_per_minute"] = 5
    app = create_app(settings)
    try:
        with serving(app) as server:
            statuses = [server.post(json.dumps({**SEED_ORDERS[0], "passphrase": f"guess-{i}"}))[0] for i in range(40)]
            statuses += [
                server.post(json.dumps({**SEED_ORDERS[0], "broker": "NOPE", "passphrase": "flood-secret-1"}))[0]
                for _ in range(10)
            ]
            good = server.post(json.dumps({**SEED_ORDERS[0], "passphrase": "flood-secret-1"}))
            conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
            conn.request("GET", "/metrics")
            metrics = conn.getresponse().read().decode()
            conn.close()
        rows = list(app.journal.entries(1000))
    finally:
        app.journal.close()
    assert statuses == [401] * 40 + [400] * 10
    assert good[0] == 200
    refused = [r for r in rows if r.status in ("unauthorized", "rejected")]
    assert 5 <= len(refused) <= 6  # the minute's budget (and what refilled while the flood ran)
    assert [r.status for r in rows].count("filled") == 1
    assert 'ordergate_signals_total{outcome="unauthorized",route="?"} 40.0' in metrics
    assert len([r for r in caplog.records if "Unauthorized signal from" in r.getMessage()]) <= 6
