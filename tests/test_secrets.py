"""Known secret values, a session of signals: none of them in a log line, journal row or answer."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from falcon import testing

from ordergate.app import create_app
from ordergate.cli import main
from ordergate.config import load_settings
from tests.conftest import CONFIG_DIR, SEED_ERRORS, SEED_ORDERS

SECRETS = {
    "WEBHOOK_SECRET": "whsec-7f3a9c1e5b2d4680aa",
    "BINANCE_API_KEY": "binkey-Q29uZmlkZW50aWFsS2V5",
    "BINANCE_API_SECRET": "binsecret-U2VjcmV0U2VjcmV0U2VjcmV0",
    "BINANCE_LIVE_API_KEY": "livekey-TGl2ZUtleUxpdmVLZXk",
    "BINANCE_LIVE_API_SECRET": "livesecret-TGl2ZVNlY3JldA",
}


def test_secrets_never_reach_logs_journal_or_answers(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    db = tmp_path / "journal.db"
    environ = {**SECRETS, "ORDERGATE_DB": str(db)}
    app = create_app(load_settings("development", CONFIG_DIR, environ=environ))
    client = testing.TestClient(app)
    answers = []
    passphrase = SECRETS["WEBHOOK_SECRET"]
    for payload in [*SEED_ORDERS, *(p for p, _ in SEED_ERRORS)]:
        answers.append(client.simulate_post("/webhook", body=json.dumps({**payload, "passphrase": passphrase})).text)
    answers.append(client.simulate_post(f"/webhook/{passphrase}", body=json.dumps(SEED_ORDERS[0])).text)
    answers.append(client.simulate_post("/webhook", body=json.dumps({**SEED_ORDERS[0], "passphrase": "guess"})).text)
    answers.append(client.simulate_post("/webhook", body="not json " + passphrase).text)
    answers.append(client.simulate_get("/healthz").text)
    app.journal.close()

    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert main(["--config-dir", str(CONFIG_DIR), "check"]) == 0
    printed = capsys.readouterr()

    places = {
        "log lines": "\n".join(record.getMessage() for record in caplog.records) + caplog.text,
        "journal": "".join(
            f.read_bytes().decode("utf-8", "replace") for f in tmp_path.iterdir() if f.name.startswith(db.name)
        ),
        "answers": "\n".join(answers),
        "ordergate check": printed.out + printed.err,
    }
    assert len(answers) == 12
    assert "Processing Binance Signal" in places["log lines"]
    for where, text in places.items():
        for name, value in SECRETS.items():
            assert value not in text, f"{name} found in {where}"
