"""``ordergate send``, ``signals`` and ``replay``: the operator's tools, against real servers and journals."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from falcon import testing

from ordergate.app import OrdergateApp, create_app
from ordergate.brokers.paper import PaperBroker
from ordergate.cli import main
from ordergate.config import load_settings
from ordergate.parse import parse_body
from ordergate.pipeline.journal import Journal
from ordergate.replay import Replay, Tally, read_items, without_rate_limits
from ordergate.send import shown_url, with_passphrase
from ordergate.tail import Tail, follow, line
from tests.conftest import CONFIG_DIR, ROOT, SEED_ERRORS, SEED_ORDERS, LiveServer, raw_json, serving

BTC = {"broker": "BINANCE", "symbol": "BTCUSDT", "side": "buy", "quantity": 0.001, "type": "MARKET"}
CIPLA = {"broker": "FLATTRADE", "symbol": "CIPLA", "side": "buy", "quantity": 10, "type": "MARKET"}
SECRET = "s3cret-never-shown"


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """The CLI's environment for the app fixture's journal; returns the global options."""
    monkeypatch.setenv("ORDERGATE_DB", str(tmp_path / "journal.db"))
    for name in ("DATABASE_URL", "ORDERGATE_ENV", "WEBHOOK_SECRET", "PORT"):
        monkeypatch.delenv(name, raising=False)
    return ["--env", "development", "--config-dir", str(CONFIG_DIR)]


def url_of(server: LiveServer, path: str = "/webhook") -> str:
    return f"http://{server.host}:{server.port}{path}"


# -- send ---------------------------------------------------------------------------------------


def test_send_a_fill_prints_the_order_and_the_trace(
    live_server: LiveServer, cli_env: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["send", raw_json(SEED_ORDERS[0]), "--url", url_of(live_server)])
    out = capsys.readouterr().out
    assert code == 0
    assert "HTTP 200 OK" in out
    assert re.search(r"success: order \d+ FILLED — BUY 0.001 BTCUSDT @ 43500, executed 0.001 on BINANCE", out)
    stages = [m.group(1) for m in re.finditer(r"^  (\w+)\s+(ok|rejected|error)\s+\d+$", out, re.M)]
    assert stages == ["schema", "whitelist", "precision", "notional", "limits", "balance", "execute"]
    assert re.search(r"^  total\s+\d+$", out, re.M)
    assert re.search(r"^signal [0-9a-f]{21}$", out, re.M)


@pytest.mark.parametrize(("payload", "words"), SEED_ERRORS)
def test_send_a_rejection_prints_the_error_and_its_stage_and_exits_1(
    live_server: LiveServer,
    cli_env: list[str],
    capsys: pytest.CaptureFixture[str],
    payload: dict[str, object],
    words: str,
) -> None:
    code = main(["send", raw_json(payload), "--url", url_of(live_server)])
    out = capsys.readouterr().out
    assert code == 1
    assert "HTTP 422 Unprocessable" in out
    assert re.search(rf"^error: {re.escape(words)} \(stage \w+\)", out, re.M)
    assert re.search(r"^  \w+\s+rejected\s+\d+$", out, re.M)


def test_send_reads_a_file_or_stdin_and_adds_the_passphrase_without_showing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli_env: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    settings = load_settings(
        "development", CONFIG_DIR, environ={"ORDERGATE_DB": str(tmp_path / "s.db"), "WEBHOOK_SECRET": SECRET}
    )
    app = create_app(settings)
    signal_file = tmp_path / "signal.json"
    signal_file.write_text(raw_json(SEED_ORDERS[3]))
    try:
        with serving(app) as server:
            assert main(["send", str(signal_file), "--url", url_of(server)]) == 1  # no secret: 401
            assert "error: Unauthorized" in capsys.readouterr().out
            assert main(["send", str(signal_file), "--url", url_of(server), "--secret", SECRET]) == 0
            first = capsys.readouterr().out
            monkeypatch.setenv("WEBHOOK_SECRET", SECRET)
            monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw_json(SEED_ORDERS[0]).encode())))
            assert main(["send", "--url", url_of(server)]) == 0
            second = capsys.readouterr().out
            assert main(["send", raw_json(SEED_ORDERS[0]), "--url", url_of(server, f"/webhook/{SECRET}")]) == 0
            third = capsys.readouterr().out
    finally:
        app.journal.close()
    assert "success: order" in first
    assert "CIPLA" in first
    assert "success: order" in second
    assert "BTCUSDT" in second
    assert "/webhook/***" in third
    assert SECRET not in first + second + third


def test_send_exits_2_on_unreadable_input_and_1_when_nobody_answers(
    tmp_path: Path, cli_env: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["send", str(tmp_path / "missing.json")]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["send", "{oops"]) == 2
    assert "Invalid JSON" in capsys.readouterr().err
    assert main(["send", "[1, 2]"]) == 2  # a file named "[1, 2]" does not exist either
    closed = "http://127.0.0.1:9/webhook"  # the discard port: nothing listens on it
    assert main(["send", raw_json(BTC), "--url", closed, "--timeout", "2"]) == 1
    assert "no answer from http://127.0.0.1:9/webhook" in capsys.readouterr().err


def test_the_passphrase_goes_in_front_and_numbers_stay_as_written() -> None:
    added = with_passphrase(b'{"quantity": 0.001, "broker": "BINANCE"}', "pw")
    assert added == b'{"passphrase": "pw", "quantity": 0.001, "broker": "BINANCE"}'
    assert parse_body(added)["quantity"] == Decimal("0.001")
    assert with_passphrase(b" {} ", "pw") == b' {"passphrase": "pw"} '
    assert with_passphrase(b'{"passphrase": "other"}', "pw") == b'{"passphrase": "other"}'
    assert shown_url("http://user:pw@host:8080/webhook/abc") == "http://host:8080/webhook/***"


# -- signals ------------------------------------------------------------------------------------


def signal_lines(out: str) -> list[str]:
    return [row for row in out.splitlines() if re.match(r"\d{4}-\d\d-\d\dT", row)]


def test_signals_shows_the_journal_oldest_first_with_filters(
    client: testing.TestClient, cli_env: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    sent = [SEED_ORDERS[0], SEED_ERRORS[0][0], SEED_ORDERS[3], {"broker": "NOPE"}]
    for payload in sent:
        client.simulate_post("/webhook", body=raw_json(payload))
        time.sleep(0.002)  # distinct received_at, so the order is the sending order
    assert main([*cli_env, "signals"]) == 0
    rows = signal_lines(capsys.readouterr().out)
    assert len(rows) == 4
    assert re.match(r"\S+Z  [0-9a-f]{21}  BINANCE\s+filled\s+200  BUY BTCUSDT 0.001\s+order \d+$", rows[0])
    assert re.search(r"BINANCE\s+rejected\s+422  BUY BTCUSDT 0.0001\s+Order size too small \(notional\)$", rows[1])
    assert re.search(r"FLATTRADE\s+filled\s+200  BUY CIPLA 10\s+order \d+$", rows[2])
    assert re.search(r"NOPE\s+rejected\s+400  -\s+Unknown broker: NOPE$", rows[3])

    assert main([*cli_env, "signals", "--status", "filled", "--route", "binance"]) == 0
    only = signal_lines(capsys.readouterr().out)
    assert len(only) == 1
    assert "BUY BTCUSDT 0.001" in only[0]
    assert main([*cli_env, "signals", "--limit", "2"]) == 0
    assert signal_lines(capsys.readouterr().out) == rows[2:]


def test_following_shows_new_signals_and_in_flight_ones_again_when_they_finish(
    app: OrdergateApp, client: testing.TestClient
) -> None:
    client.simulate_post("/webhook", body=raw_json(SEED_ORDERS[0]))
    tail = Tail(app.journal)
    assert [e.status for e in tail.latest(10)] == ["filled"]
    assert tail.poll() == []

    app.journal.claim("0000000000aaaaaaaaaaa", "BINANCE", BTC, None, time.time())
    in_flight = tail.poll()
    assert [(e.id, e.status) for e in in_flight] == [("0000000000aaaaaaaaaaa", "received")]
    assert "in flight" in line(in_flight[0])
    assert tail.poll() == []
    app.journal.finish("0000000000aaaaaaaaaaa", status="rejected", http_status=422, response={"error": "Nope"})
    client.simulate_post("/webhook", body=raw_json(SEED_ORDERS[3]))
    shown = tail.poll()
    assert [(e.route, e.status) for e in shown] == [("BINANCE", "rejected"), ("FLATTRADE", "filled")]
    assert tail.poll() == []

    only_filled = Tail(app.journal, status="filled")
    only_filled.latest(10)
    app.journal.claim("0000000000bbbbbbbbbbb", "BINANCE", BTC, None, time.time())
    assert only_filled.poll() == []
    app.journal.finish("0000000000bbbbbbbbbbb", status="filled", http_status=200, response={}, broker_order_id=7)
    out = io.StringIO()
    polls = iter([False, False, True])
    follow(only_filled, out, sleep=lambda s: None, until=lambda: next(polls))
    assert out.getvalue().count("\n") == 1
    assert "order 7" in out.getvalue()


def test_signals_follow_runs_until_ctrl_c(tmp_path: Path) -> None:
    journal = Journal(f"sqlite:///{tmp_path / 'journal.db'}")
    journal.claim("0000000000ccccccccccc", "BINANCE", BTC, None, time.time())
    env = {k: v for k, v in os.environ.items() if k not in ("ORDERGATE_ENV", "DATABASE_URL", "WEBHOOK_SECRET")}
    env["ORDERGATE_DB"] = str(tmp_path / "journal.db")
    command = [sys.executable, "-m", "ordergate", "--config-dir", str(CONFIG_DIR), "signals", "--follow"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        journal.finish("0000000000ccccccccccc", status="filled", http_status=200, response={}, broker_order_id=9)
        second = process.stdout.readline()  # the follow loop shows it again, finished
        process.send_signal(signal.SIGINT)
        _rest, stderr = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        journal.close()
    assert "received" in first
    assert "in flight" in first
    assert "filled" in second
    assert "order 9" in second
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr


# -- replay -------------------------------------------------------------------------------------


def table(out: str) -> dict[str, dict[str, int]]:
    """The route x status table of a replay's output, as numbers."""
    rows = out.split("\n\n")[0].splitlines()[1:]
    header = rows[0].split()
    return {
        cells[0]: dict(zip(header[1:], (int(c.replace(",", "")) for c in cells[1:]), strict=True))
        for cells in (row.split() for row in rows[1:])
    }


def affordable(broker: str, asset: str, symbol: str, quantity: str) -> int:
    """How many orders of ``quantity`` the paper account ``broker`` can pay for, from the YAML."""
    options = load_settings("development", CONFIG_DIR, environ={}).data["brokers"][broker]
    cost = Decimal(quantity) * Decimal(str(options["prices"][symbol])) / Decimal(str(options.get("leverage", 1)))
    return int(Decimal(str(options["balances"][asset])) // cost)


def test_replay_of_ten_thousand_signals_counts_every_outcome(
    tmp_path: Path, cli_env: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "signals.jsonl"
    lines = [raw_json(BTC if n % 2 == 0 else CIPLA) for n in range(10_000)]
    lines[10:10] = ["{not json", "[1, 2]", ""]  # lines 11, 12 invalid; 13 blank (skipped)
    lines.append('{"broker": "NOPE", "symbol": "X"}')
    path.write_text("\n".join(lines) + "\n")

    code = main([*cli_env, "replay", str(path), "--dry-run"])
    captured = capsys.readouterr()
    assert code == 0
    counts = table(captured.out)
    btc_fills = affordable("paper_binance", "USDT", "BTCUSDT", "0.001")
    cipla_fills = affordable("paper_nse", "INR", "CIPLA", "10")
    assert counts["BINANCE"] == {"filled": btc_fills, "rejected": 5000 - btc_fills, "invalid": 0, "total": 5000}
    assert counts["FLATTRADE"] == {"filled": cipla_fills, "rejected": 5000 - cipla_fills, "invalid": 0, "total": 5000}
    assert counts["?"] == {"filled": 0, "rejected": 1, "invalid": 2, "total": 3}
    assert counts["total"]["total"] == 10_003
    assert f"{10_000 - btc_fills - cipla_fills:,}  Insufficient balance  [balance]" in captured.out
    assert "1  Unknown broker: NOPE" in captured.out
    assert "Invalid: 2 (line 11: Invalid JSON at line 1 column 2" in captured.out
    assert "line 12: Invalid payload: expected a JSON object)" in captured.out
    assert re.search(r"^10,003 signals in [\d.]+ s \([\d,]+ signals/s\)$", captured.out, re.M)
    assert "replayed 10,000 of 10,003" in captured.err  # progress, plain lines when not a terminal
    assert not (tmp_path / "journal.db").exists()  # a dry run journals nothing


def test_replay_reads_a_json_array_and_runs_a_repeated_id_once(
    tmp_path: Path, cli_env: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "signals.json"
    repeated = {**BTC, "id": "strategy-1"}
    path.write_text(json.dumps([repeated, repeated, 7, {**BTC, "quantity": 0.0001}]))
    assert main([*cli_env, "replay", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert table(out)["BINANCE"] == {"filled": 1, "rejected": 1, "duplicate": 1, "invalid": 0, "total": 3}
    assert "Invalid: 1 (item 3: Invalid payload: expected a JSON object)" in out
    assert "1  Order size too small  [notional]" in out


def test_replay_needs_dry_run_a_readable_file_and_a_valid_configuration(
    tmp_path: Path, cli_env: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "signals.jsonl"
    path.write_text(raw_json(BTC) + "\n")
    assert main([*cli_env, "replay", str(path)]) == 2
    assert "only dry runs are supported" in capsys.readouterr().err
    assert main([*cli_env, "replay", str(tmp_path / "missing.jsonl"), "--dry-run"]) == 2
    assert "cannot read" in capsys.readouterr().err
    (tmp_path / "broken.json").write_text("[{")
    assert main([*cli_env, "replay", str(tmp_path / "broken.json"), "--dry-run"]) == 2
    assert main(["--env", "live", "--config-dir", str(CONFIG_DIR), "replay", str(path), "--dry-run"]) == 2
    assert "WEBHOOK_SECRET" in capsys.readouterr().err


def test_replay_in_live_stands_paper_in_for_every_exchange_and_keeps_the_live_guard(tmp_path: Path) -> None:
    environ = {"ORDERGATE_DB": str(tmp_path / "j.db"), "WEBHOOK_SECRET": SECRET}
    replay = Replay(load_settings("live", CONFIG_DIR, environ=environ))
    assert all(isinstance(b, PaperBroker) for b in replay.service.brokers.values())
    assert {n: r.route.broker.name for n, r in replay.runners.items()} == {
        "BINANCE": "binance",
        "BINANCE_REAL": "binance_live",
        "FLATTRADE": "flattrade",
    }
    assert replay.runners["FLATTRADE"].route.broker.market_type == "equity"
    tally = Tally()
    for payload in (BTC, {**BTC, "broker": "BINANCE_REAL"}):
        replay.one(parse_body(raw_json(payload).encode()), tally)
    assert tally.counts == {("BINANCE", "filled"): 1, ("BINANCE_REAL", "rejected"): 1}
    assert list(tally.reasons) == [
        (
            "Live trading is disabled in this environment: set ORDERGATE_ENV=live and LIVE_TRADING=yes"
            " to trade real money on BINANCE_REAL",
            "-",
        )
    ]
    assert all(not r.observers for r in replay.runners.values())  # nobody is notified of a replay


def test_replay_evaluates_signals_as_of_now_unless_as_sent(tmp_path: Path) -> None:
    settings = load_settings("development", CONFIG_DIR, environ={"ORDERGATE_DB": str(tmp_path / "j.db")})
    settings.data["routes"]["BINANCE"]["max_age_s"] = 60
    path = tmp_path / "old.jsonl"
    path.write_text(raw_json({**BTC, "time": "2026-01-05T10:00:00Z"}) + "\n")
    now = Replay(settings).run(read_items(str(path)))
    assert now.counts == {("BINANCE", "rejected"): 1}
    assert next(iter(now.reasons))[0].startswith("Signal too old")
    as_sent = Replay(settings, as_sent=True).run(read_items(str(path)))
    assert as_sent.counts == {("BINANCE", "filled"): 1}


def test_replay_keeps_the_rate_limit_unless_lifted(tmp_path: Path) -> None:
    settings = load_settings("development", CONFIG_DIR, environ={"ORDERGATE_DB": str(tmp_path / "j.db")})
    settings.data["limits"]["max_orders_per_minute"] = 2
    path = tmp_path / "three.jsonl"
    path.write_text((raw_json(BTC) + "\n") * 3)
    limited = Replay(settings).run(read_items(str(path)))
    assert limited.counts == {("BINANCE", "filled"): 2, ("BINANCE", "rejected"): 1}
    assert list(limited.reasons) == [("Too many orders: the limit is 2 per minute on BINANCE", "limits")]
    without_rate_limits(settings)
    assert Replay(settings).run(read_items(str(path))).counts == {("BINANCE", "filled"): 3}
