"""Text that cannot be stored or encoded is refused at the edge; the history reads back whatever it holds.

JSON's ``\\uXXXX`` escapes spell lone UTF-16 surrogates (no UTF-8 text holds one) and NUL
(PostgreSQL's text columns refuse it). Bodies are written by hand so those escapes reach the
real server as sent; every test runs over HTTP against real waitress, on SQLite and PostgreSQL,
and reads the journal back through the history API and ``ordergate signals``.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ordergate.app import OrdergateApp, create_app
from ordergate.brokers.paper import PaperBroker
from ordergate.cli import main
from ordergate.config import Settings
from ordergate.pipeline.journal import signals
from ordergate.redact import redact_value
from tests.conftest import CONFIG_DIR, ROOT, LiveServer, serving

SECRET = "hostile-text-secret-not-a-secret"
TOKEN = "hostile-text-admin-token"
WEBHOOK = f"/webhook/{SECRET}"
ORDER = '"symbol": "BTCUSDT", "side": "buy", "quantity": "0.001", "type": "MARKET"'

# As they appear in a JSON body: each decodes to text no column or answer can carry.
HOSTILE = {
    "\\ud800": "a lone UTF-16 surrogate (\\ud800)",
    "ok\\udfffok": "a lone UTF-16 surrogate (\\udfff)",
    "\\ude00\\ud83d": "a lone UTF-16 surrogate (\\ude00)",  # a pair the wrong way round
    "\\u0000": "a NUL character (\\u0000)",
    "BTC\\u0000USDT": "a NUL character (\\u0000)",
}


def bodies(value: str) -> list[tuple[str, str]]:
    """``value`` (a JSON string's inside) in every interesting place: (body, the field the answer names)."""
    text = f'"{value}"'
    order = {"broker": '"BINANCE"', "symbol": '"BTCUSDT"', "side": '"buy"', "quantity": '"0.001"', "type": '"MARKET"'}

    def body(**fields: str) -> str:
        return "{" + ", ".join(f'"{k}": {v}' for k, v in {**order, **fields}.items()) + "}"

    return [
        (body(broker=text), 'field "broker"'),
        (body(id=text), 'field "id"'),
        (body(side=text), 'field "side"'),
        (body(symbol=text), 'field "symbol"'),
        (body(quantity=text), 'field "quantity"'),
        (body(comment=text), 'field "comment"'),
        (body(passphrase=text), 'field "passphrase"'),
        (body(meta=f'{{"note": {text}}}'), 'field "meta.note"'),
        (body(legs=f'[{{"symbol": "ETHUSDT"}}, {{"symbol": {text}}}]'), 'field "legs[1].symbol"'),
        (body(meta=f'{{"{value}": 1}}'), 'the name of field "meta.'),
        ("{" + f"{text}: 1, " + body()[1:], "the name of field "),
    ]


@pytest.fixture
def app(journal_settings: Settings) -> Iterator[OrdergateApp]:
    journal_settings.data["auth"].update(secret=SECRET, admin_token=TOKEN)
    app = create_app(journal_settings)
    yield app
    app.journal.close()


@pytest.fixture
def server(app: OrdergateApp) -> Iterator[LiveServer]:
    with serving(app) as server:
        yield server


def call(server: LiveServer, method: str, path: str, body: bytes | None = None) -> tuple[int, Any]:
    """One real request; the answer must be UTF-8 JSON (strictly: no surrogates smuggled through)."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers={"Authorization": f"Bearer {TOKEN}"})
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    return response.status, json.loads(data.decode("utf-8")) if data else None


def post(server: LiveServer, body: str) -> tuple[int, Any]:
    return call(server, "POST", WEBHOOK, body.encode("utf-8"))


def run_cli(journal_settings: Settings, monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str]:
    """``ordergate signals`` in this process, on the test's journal; its exit code and what it printed."""
    journal_env(journal_settings, monkeypatch)
    out = Path(journal_settings.data["journal"]["path"]).parent / "cli-out.txt"
    with out.open("w", encoding="utf-8") as stream:
        monkeypatch.setattr(sys, "stdout", stream)
        code = main(["--env", "development", "--config-dir", str(CONFIG_DIR), "signals", *args])
    monkeypatch.undo()
    return code, out.read_text(encoding="utf-8")


def journal_env(journal_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    journal = journal_settings.data["journal"]
    for name in ("ORDERGATE_ENV", "WEBHOOK_SECRET", "ADMIN_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ORDERGATE_DB", journal["path"])
    monkeypatch.setenv("DATABASE_URL", journal["url"] or "")
    return {"ORDERGATE_DB": journal["path"], "DATABASE_URL": journal["url"] or ""}


def placed(app: OrdergateApp) -> int:
    brokers = [b for b in app.service.brokers.values() if isinstance(b, PaperBroker)]
    assert brokers
    return sum(len(b.placements()) for b in brokers)


def test_unstorable_text_anywhere_in_a_payload_is_a_400_naming_the_field(
    app: OrdergateApp, server: LiveServer, journal_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong: list[str] = []
    for value, problem in HOSTILE.items():
        for body, field in bodies(value):
            status, answer = post(server, body)
            expected = f"Invalid text in {field}"
            if status != 400 or answer.get("code") != "invalid_text" or not answer["error"].startswith(expected):
                wrong.append(f"{body[:90]!r}: {status} {answer}")
            elif not answer["error"].endswith(f": {problem}"):
                wrong.append(f"{body[:90]!r}: {answer['error']!r} does not say {problem!r}")
    assert wrong == []
    assert placed(app) == 0
    with app.journal.engine.connect() as conn:  # refused before the journal: nothing to read back wrong
        assert conn.execute(sa.select(sa.func.count()).select_from(signals)).scalar() == 0
    status, history = call(server, "GET", "/signals?limit=1000")
    assert (status, history) == (200, {"signals": []})
    assert run_cli(journal_settings, monkeypatch) == (0, "")


def test_a_field_name_is_quoted_escaped_and_cut_short(server: LiveServer) -> None:
    name = "\\u202eevil\\u001b[2J" + "k" * 200 + "\\u0000"  # shown escaped, cut to 80 characters
    status, answer = post(server, f'{{"broker": "BINANCE", "meta": {{"{name}": 1}}, {ORDER}}}')
    assert status == 400
    assert answer["error"] == (
        'Invalid text in the name of field "meta.\\u202eevil\\u001b[2J' + "k" * 53 + '...": a NUL character (\\u0000)'
    )


# Paths and query strings holding NUL (PostgreSQL refuses it in a query), the UTF-8 bytes of a
# surrogate (no decoder accepts them) and 10 KB (over every VARCHAR), with what each must answer.
URLS = [
    ("GET", "/signals?route=%00", 400),
    ("GET", "/signals?route=BINANCE%00", 400),
    ("GET", "/signals?status=%00", 400),
    ("GET", "/signals?route=%ED%A0%80", 200),
    ("GET", "/signals?route=" + "R" * 10_000, 200),
    ("GET", "/signals/%00", 404),
    ("GET", "/signals/abc%00def", 404),
    ("GET", "/signals/%ED%A0%80", 404),
    ("GET", "/signals/" + "1" * 10_000, 404),
    ("POST", "/webhook/%00", 401),
    ("POST", "/webhook/hostile%00", 401),
    ("POST", "/webhook/%ED%A0%80", 401),
    ("POST", "/webhook/" + "x" * 10_000, 401),
]


def test_paths_and_queries_holding_unstorable_text_are_4xx(app: OrdergateApp, server: LiveServer) -> None:
    body = f'{{"broker": "BINANCE", {ORDER}}}'.encode()
    answered = [
        (method, path[:40], call(server, method, path, body if method == "POST" else None)[0])
        for method, path, _ in URLS
    ]
    assert answered == [(method, path[:40], status) for method, path, status in URLS]
    assert placed(app) == 0
    status, history = call(server, "GET", "/signals")
    assert status == 200
    assert [(s["status"], s["route"]) for s in history["signals"]] == [("unauthorized", "?")] * 4


# Exotic but text: each must be accepted where it is valid and read back exactly as sent.
EXOTIC = {
    "emoji": "🚀💥 👨‍👩‍👧 𝄞",  # 4-byte UTF-8, a ZWJ sequence, a symbol beyond the BMP
    "rtl": "\u200fשלום\u200f عربي \u202eevil\u202c",  # RTL marks and an override
    "cjk": "注文 テスト 주문",
    "controls": "tab\there\nnew line\r\x1b[31mred\x1b[0m\x7f\u2028",
    "long": "x" * 10_240,  # 10 KB in one string
}


def newest_id(server: LiveServer) -> str:
    """The id of the last journaled signal (a refusal before a route answers without one)."""
    status, history = call(server, "GET", "/signals?limit=1")
    assert status == 200
    return str(history["signals"][0]["id"])


def test_exotic_text_is_accepted_and_read_back_as_sent(
    app: OrdergateApp, server: LiveServer, journal_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    long = "é" + "Z" * 10_239  # 10 KB: over every VARCHAR of the journal, which PostgreSQL enforces
    accepted = [
        {"id": f"{name}-{text[:100]}", "comment": text, "meta": {text[:64]: [text[:100]]}}
        for name, text in EXOTIC.items()
    ]
    accepted += [{"meta": {long: "v"}}]
    placed_ids: list[str] = []
    for extra in accepted:
        payload = {"broker": "BINANCE", "symbol": "BTCUSDT", "side": "buy", "quantity": "0.001", "type": "MARKET"}
        payload |= extra
        body = json.dumps(payload, ensure_ascii=False)  # as TradingView sends it: UTF-8, not escapes
        status, answer = post(server, body)
        assert (status, answer["success"]) == (200, True), (extra.get("id"), answer)
        placed_ids.append(answer["signalId"])
        status, entry = call(server, "GET", f"/signals/{answer['signalId']}")
        assert status == 200
        assert entry["payload"] == payload
        assert json.dumps(entry["payload"], ensure_ascii=False).encode() == body.encode()
        if "id" in extra:  # the same id again: its outcome, read back from the journal
            repeat_status, repeat = post(server, body)
            assert (repeat_status, repeat["duplicate"], repeat["orderId"]) == (200, True, answer["orderId"])
    assert placed(app) == len(accepted)
    # Where a value is checked, it is refused for what it is, and journaled as sent.
    rejected: dict[str, str] = {}
    checked = [
        (field, name, text) for name, text in {**EXOTIC, "long": long}.items() for field in ("symbol", "side", "broker")
    ]
    for field, name, text in [*checked, ("id", "long", long)]:  # an id is at most 128 characters
        payload = {"broker": "BINANCE", "symbol": "BTCUSDT", "side": "buy", "quantity": "0.001", "type": "MARKET"}
        payload[field] = text
        status, answer = post(server, json.dumps(payload, ensure_ascii=False))
        assert 400 <= status < 500, (name, field, answer)
        assert answer["success"] is False
        signal_id = answer.get("signalId") or newest_id(server)
        status, entry = call(server, "GET", f"/signals/{signal_id}")
        assert status == 200
        if field == "broker":  # refused before a route: journaled without the payload
            assert (entry["route"], entry["payload"]) == (text.strip()[:64], None)
        else:
            assert entry["payload"] == payload
            rejected[f"{field} {name}"] = signal_id
    assert placed(app) == len(accepted)
    rows = len(accepted) + len(checked) + 1
    status, history = call(server, "GET", "/signals?limit=1000")
    assert status == 200
    assert len(history["signals"]) == rows
    shown = {s["id"]: s for s in history["signals"]}
    assert shown[rejected["symbol rtl"]]["symbol"] == EXOTIC["rtl"]
    assert shown[rejected["side long"]]["side"] == long
    # The terminal gets one line per signal, whatever the sender wrote: no raw ESC, newline or override.
    code, out = run_cli(journal_settings, monkeypatch, "-n", "1000")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == rows
    line_of = {i: next(x for x in lines if i in x) for i in [*placed_ids, *rejected.values()]}
    assert "\\u001b[31mred\\u001b[0m" in line_of[rejected["symbol controls"]]
    assert "tab\\u0009here\\u000anew line\\u000d" in line_of[rejected["symbol controls"]]
    assert "\\u202eevil\\u202c" in line_of[rejected["symbol rtl"]]
    assert "🚀💥" in line_of[rejected["symbol emoji"]]
    assert "注文" in line_of[rejected["symbol cjk"]]
    assert all(ch not in out for ch in "\x1b\r\x7f\u2028\u202e\u200f")


def insert_row(app: OrdergateApp, signal_id: str, payload_json: str, status: str, **more: Any) -> None:
    """A row as a release before this fix journaled it: payload text written by hand, escapes and all."""
    now = time.time()
    row = {"id": signal_id, "received_at": now, "route": "BINANCE", "payload": payload_json, "status": status}
    with app.journal.engine.begin() as conn:
        conn.execute(signals.insert().values(**row, completed_at=now, **more))


OLD_ROWS = {
    # "side": "\ud800" answered 400 by the schema stage, journaled with its payload
    "0000000000a0000000001": (
        '{"broker": "BINANCE", "symbol": "BTCUSDT", "side": "\\ud800", "quantity": "0.001", "type": "MARKET"}',
        "rejected",
        {
            "http_status": 400,
            "response": '{"success": false, "error": "Invalid side: \\"\\\\ud800\\" (expected buy or sell)"}',
        },
    ),
    # a placed order whose extra fields held a lone surrogate, a NUL and a terminal escape
    "0000000000a0000000002": (
        '{"broker": "BINANCE", "symbol": "BTC\\u001b[2JUSDT", "side": "buy", "quantity": "0.001", '
        '"type": "MARKET", "note": "\\udfff\\u0000", "\\ud83d": {"k\\u0000": ["\\ude00"]}}',
        "filled",
        {
            "http_status": 200,
            "response": '{"success": true, "orderId": 7, "echo": "\\ud800"}',
            "broker_order_id": "7",
            "idempotency_key": "BINANCE:old-2",
        },
    ),
}


def test_rows_journaled_before_the_fix_are_read_back_as_stored(
    app: OrdergateApp, server: LiveServer, journal_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    for signal_id, (payload_json, status, more) in OLD_ROWS.items():
        insert_row(app, signal_id, payload_json, status, **more)
    for signal_id, (payload_json, _, more) in OLD_ROWS.items():
        status, entry = call(server, "GET", f"/signals/{signal_id}")
        assert status == 200
        assert entry["payload"] == json.loads(payload_json)
        assert entry["response"] == json.loads(more["response"])
    status, history = call(server, "GET", "/signals")
    assert status == 200
    assert [s["side"] for s in history["signals"]] == ["buy", "\ud800"]
    status, history = call(server, "GET", "/signals?status=rejected&route=BINANCE")
    assert (status, len(history["signals"])) == (200, 1)
    code, out = run_cli(journal_settings, monkeypatch)
    assert code == 0
    first, second = out.splitlines()
    assert first.split()[1:4] == ["0000000000a0000000001", "BINANCE", "rejected"]
    assert re.search(r'  \\ud800 BTCUSDT 0\.001 +Invalid side: "\\ud800" \(expected buy or sell\)$', first)
    assert second.split()[1:4] == ["0000000000a0000000002", "BINANCE", "filled"]
    assert re.search(r"  BUY BTC\\u001b\[2JUSDT 0\.001 +order 7$", second)
    # A repeat of the placed order's id is answered with its outcome, surrogate and all, placing nothing.
    status, answer = post(server, f'{{"broker": "BINANCE", "id": "old-2", {ORDER}}}')
    assert (status, answer) == (200, {"success": True, "orderId": 7, "echo": "\ud800", "duplicate": True})
    assert placed(app) == 0


def test_ordergate_signals_prints_on_a_terminal_that_cannot_show_the_text(
    app: OrdergateApp, journal_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    insert_row(app, "0000000000a0000000003", '{"symbol": "\\ud83d\\ude80BTC\\u200f", "side": "sell"}', "rejected")
    env = {**os.environ, **journal_env(journal_settings, monkeypatch), "PYTHONIOENCODING": "ascii"}
    command = [sys.executable, "-m", "ordergate", "--config-dir", str(CONFIG_DIR), "signals"]
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert (done.returncode, done.stderr) == (0, "")
    assert "SELL \\U0001f680BTC\\u200f" in done.stdout


def test_ordergate_signals_refuses_a_filter_that_is_not_text(
    journal_settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    journal_env(journal_settings, monkeypatch)
    # A non-UTF-8 command-line argument reaches Python as surrogates (PEP 383).
    code = main(["--env", "development", "--config-dir", str(CONFIG_DIR), "signals", "--route", "BIN\udcffANCE"])
    assert code == 2
    assert capsys.readouterr().err == "ordergate signals: --route holds a lone UTF-16 surrogate (\\udcff)\n"


ANY_TEXT = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=30)


def test_any_string_in_an_extra_field_is_stored_and_read_back_or_refused_never_a_5xx(
    app: OrdergateApp, server: LiveServer
) -> None:
    sent = 0

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(value=ANY_TEXT, key=ANY_TEXT)
    def check(value: str, key: str) -> None:
        nonlocal sent
        sent += 1
        side = ("buy", "sell")[sent % 2]  # the paper account's balances stay where they were, however many run
        payload = {"broker": "BINANCE", "id": f"prop-{sent}", "symbol": "BTCUSDT", "side": side}
        payload |= {"quantity": "0.001", "type": "MARKET", "x": {key or "k": value}}
        status, answer = post(server, json.dumps(payload))  # lone surrogates go as \\udXXX escapes
        storable = not any(ch == "\x00" or 0xD800 <= ord(ch) <= 0xDFFF for ch in key + value)
        if not storable:
            assert (status, answer["code"]) == (400, "invalid_text"), answer
            return
        assert (status, answer["success"]) == (200, True), answer
        status, entry = call(server, "GET", f"/signals/{answer['signalId']}")
        # stored as sent, but for a secret-named field's value or a secret's text (test_redaction)
        assert (status, entry["payload"]["x"]) == (200, redact_value({key or "k": value}))

    check()
    status, history = call(server, "GET", "/signals?limit=1000")
    assert status == 200
    assert placed(app) == len(history["signals"]) > 0


def test_replay_of_a_json_array_refuses_unstorable_text_as_the_webhook_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ORDERGATE_DB", str(tmp_path / "journal.db"))
    for name in ("DATABASE_URL", "ORDERGATE_ENV", "WEBHOOK_SECRET"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "signals.json"
    path.write_text(
        f'[{{"broker": "\\ud800", {ORDER}}}, {{"broker": "BINANCE", "note": "\\u0000", {ORDER}}},'
        f' {{"broker": "BINANCE", "note": "🚀\\u200f", {ORDER}}}]'
    )
    assert main(["--env", "development", "--config-dir", str(CONFIG_DIR), "replay", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert (
        'Invalid: 2 (item 1: Invalid text in field "broker": a lone UTF-16 surrogate (\\ud800);'
        ' item 2: Invalid text in field "note": a NUL character (\\u0000))'
    ) in out
    assert re.search(r"^BINANCE +1 +0 +1$", out, re.M), out
