"""No secret is ever written: every log line (any logger, tracebacks) and every error body is redacted."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ordergate.config import load_settings
from ordergate.redact import REDACTED, redact, register
from tests.conftest import CONFIG_DIR, ROOT, SEED_ORDERS
from tests.test_cli_serve import free_port, start_serve

SECRETS = {
    "WEBHOOK_SECRET": "whsec-Zr8vN3qLw0TyP5",
    "ADMIN_TOKEN": "admtok-Hx4mB7cK2sQe9R",
    "BINANCE_API_KEY": "binkey-V2hhdEFLZXlUaGlz",
    "BINANCE_API_SECRET": "binsec-U2VjcmV0U2VjcmV0",
}


@pytest.mark.parametrize(
    ("text", "secret", "kept"),
    [
        ("ERROR Unexpected error on POST /webhook/guess-Qm7yT2 x", "guess-Qm7yT2", "POST /webhook/[redacted] x"),
        ('{"passphrase": "pa\\"ss-w0rd", "broker": "BINANCE"}', "w0rd", '"passphrase": "[redacted]", "broker"'),
        ("{'api_secret': 'zq9secret', 'apiKey': 'kk77key'}", "zq9secret", "'api_secret': '[redacted]'"),
        ("{'api_secret': 'zq9secret', 'apiKey': 'kk77key'}", "kk77key", "'apiKey': '[redacted]'"),
        ("GET /api/v3/order?symbol=BTCUSDT&timestamp=1&signature=de4db33f", "de4db33f", "signature=[redacted]"),
        ("GET /api/v3/account?apiKey=k3yk3y&x=1", "k3yk3y", "apiKey=[redacted]&x=1"),
        ("headers {'X-MBX-APIKEY': 'mbxk3y99', 'Accept': 'json'}", "mbxk3y99", "'X-MBX-APIKEY': '[redacted]'"),
        ("X-MBX-APIKEY: mbxk3y99\r\nHost: x", "mbxk3y99", "X-MBX-APIKEY: [redacted]\r\nHost"),
        ("Authorization: Bearer t0k3n-abcdef", "t0k3n-abcdef", "Authorization: [redacted]"),
        ("sent with bearer t0k3n-abcdef now", "t0k3n-abcdef", "bearer [redacted] now"),
        ("jData={}&jKey=ft-t0k3n-123", "ft-t0k3n-123", "jData={}&jKey=[redacted]"),
        ("could not connect to postgresql://og:hunter22@db:5432/og", "hunter22", "postgresql://og:[redacted]@db"),
        ("Missing token: set FLATTRADE_TOKEN", None, "Missing token: set FLATTRADE_TOKEN"),
        ("route BINANCE → paper_binance (paper): paper", None, "route BINANCE → paper_binance (paper): paper"),
        ("Authorization: Basic b2c6aHVudGVyMg==", "b2c6aHVudGVyMg", "Authorization: [redacted]"),
        ("basic checks passed; secrets: none", None, "basic checks passed; secrets: none"),
    ],
)
def test_redact_replaces_each_kind_of_secret_and_nothing_else(text: str, secret: str | None, kept: str) -> None:
    shown = redact(text)
    if secret is not None:
        assert secret not in shown
        assert REDACTED in shown
    assert kept in shown


def test_registered_values_are_replaced_anywhere_even_url_quoted() -> None:
    register("reg-Secret/Value+1")
    shown = redact("a reg-Secret/Value+1 b reg-Secret%2FValue%2B1 c")
    assert shown == f"a {REDACTED} b {REDACTED} c"


def test_loading_settings_registers_every_secret_it_holds(tmp_path: Path) -> None:
    environ = {
        "WEBHOOK_SECRET": "ld-whsec-ab12cd",
        "ADMIN_TOKEN": "ld-admin-ef34gh",
        "BINANCE_API_KEY": "ld-binkey-ij56",
        "BINANCE_LIVE_API_SECRET": "ld-binsec-kl78",
        "FLATTRADE_TOKEN": "ld-fttok-mn90",
        "SOME_OTHER_PASSWORD": "ld-other-op12",  # named as a secret, used by nothing: still hidden
        "ORDERGATE_DB": str(tmp_path / "j.db"),
    }
    load_settings("development", CONFIG_DIR, environ=environ)
    for name, value in environ.items():
        if name != "ORDERGATE_DB":
            assert redact(f"x {value} y") == f"x {REDACTED} y", name
    assert redact(f"x {tmp_path} y") == f"x {tmp_path} y"  # what is not secret stays


def _post(port: int, path: str, body: bytes | str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        conn.close()


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_the_served_process_writes_no_secret_whatever_the_error(tmp_path: Path, log_format: str) -> None:
    """Hostile requests to the real server: its log (stderr) and its answers hold no secret value."""
    secret, token = SECRETS["WEBHOOK_SECRET"], SECRETS["ADMIN_TOKEN"]
    port = free_port()
    process = start_serve(port, LOG_FORMAT=log_format, ORDERGATE_DB=str(tmp_path / "j.db"), **SECRETS)
    answers: dict[str, tuple[int, str]] = {}
    try:
        # A broker name no journal can store: the 500 that logged "POST /webhook/<secret>".
        surrogate = '{"broker": "\\ud800", "symbol": "BTCUSDT", "side": "buy", "quantity": 1}'
        answers["surrogate, path secret"] = _post(port, f"/webhook/{secret}", surrogate)
        answers["surrogate, passphrase"] = _post(port, "/webhook", surrogate[:-1] + f', "passphrase": "{secret}"}}')
        answers["wrong path secret"] = _post(port, "/webhook/guess-Wq7Lk2Pz", json.dumps(SEED_ORDERS[0]))
        # The admin token sent where the broker goes: the 400 quoted the field back.
        mistaken = {**SEED_ORDERS[0], "broker": token, "passphrase": secret}
        answers["token as broker"] = _post(port, "/webhook", json.dumps(mistaken))
        answers["not json"] = _post(port, f"/webhook/{secret}", f"passphrase={secret}&apiKey={token}")
        answers["a good one"] = _post(port, f"/webhook/{secret}", json.dumps(SEED_ORDERS[0]))
    finally:
        process.terminate()
        _, log = process.communicate(timeout=30)

    status, _ = answers["surrogate, path secret"]
    assert status in (400, 500)
    if status == 500:  # until lone surrogates are refused up front: the error line, path redacted
        assert f"Unexpected error on POST /webhook/{REDACTED}" in log
    assert answers["wrong path secret"][0] == 401
    assert answers["token as broker"][0] == 400
    assert REDACTED in answers["token as broker"][1]
    assert answers["a good one"][0] == 200
    written = log + "\n".join(body for _, body in answers.values())
    for name, value in {**SECRETS, "guess": "guess-Wq7Lk2Pz"}.items():
        assert value not in written, f"{name} was written"
    if log_format == "json":
        for line in log.splitlines():
            json.loads(line)  # still one JSON object a line


UNCAUGHT = """
import logging, sys, threading
from ordergate.config import load_settings
from ordergate.logs import configure_logging

configure_logging("INFO", sys.argv[1])
load_settings("development", sys.argv[2], environ={"WEBHOOK_SECRET": sys.argv[3]})
secret = sys.argv[3]
path = "/webhook/" + secret
logging.getLogger("waitress").warning("Exception while serving %s", path)
try:
    raise ValueError("cannot serve " + path)
except ValueError:
    logging.getLogger("waitress").exception("Exception while serving %s" % path)
logging.getLogger("falcon").error("Unhandled error processing POST %s", path)
logging.getLogger("apprise").warning("Failed to send to json://og:%s@127.0.0.1:1/", secret)
logging.getLogger("urllib3.connectionpool").warning("Retrying after failure: POST %s", path)
logging.getLogger("ordergate").info("passphrase given: %r", {"passphrase": "wrong-but-secret"})
logging.getLogger("ordergate").warning("a line that cannot be formatted: %d", secret)  # logging's own error report


def work():
    raise RuntimeError("in a thread: " + secret)


thread = threading.Thread(target=work, name="worker")
thread.start()
thread.join()
raise RuntimeError("at exit: " + path)
"""


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_every_logger_and_uncaught_exceptions_go_through_redaction(log_format: str) -> None:
    """waitress's, falcon's, apprise's and urllib3's loggers, a thread's and the main thread's
    uncaught exceptions: all reach the one redacting handler configure_logging installs."""
    secret = "whsec-Lb6Nw2Xc9Vq1"
    script = textwrap.dedent(UNCAUGHT)
    done = subprocess.run(
        [sys.executable, "-c", script, log_format, str(CONFIG_DIR), secret],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    log = done.stderr
    assert done.returncode == 1
    assert secret not in log
    assert "wrong-but-secret" not in log
    for expected in (
        f"Exception while serving /webhook/{REDACTED}",
        f"Unhandled error processing POST /webhook/{REDACTED}",
        f"json://og:{REDACTED}@127.0.0.1:1/",
        f"Retrying after failure: POST /webhook/{REDACTED}",
        f"'passphrase': '{REDACTED}'",
        "Logging error in a WARNING line of ordergate: TypeError",
        "Uncaught exception in thread worker",
        "Uncaught exception in the main thread",
        f"RuntimeError: at exit: /webhook/{REDACTED}",
    ):
        assert expected in log, expected
    if log_format == "json":
        lines = [json.loads(line) for line in log.splitlines()]
        assert {line.get("logger") for line in lines} >= {"waitress", "falcon", "apprise", "urllib3.connectionpool"}


def test_the_journal_stores_no_secret_a_sender_put_elsewhere_or_an_answer_quoted(tmp_path: Path) -> None:
    """A secret in a field the journal keeps (a comment), or quoted back by a refusal (an
    unknown broker named like the admin token), is stored redacted, on every write path."""
    from ordergate.app import create_app
    from tests.conftest import serving

    environ = {"ORDERGATE_DB": str(tmp_path / "journal.db"), **SECRETS}
    settings = load_settings("development", CONFIG_DIR, environ=environ)
    app = create_app(settings)
    try:
        with serving(app) as server:
            placed = {**SEED_ORDERS[0], "passphrase": SECRETS["WEBHOOK_SECRET"], "comment": SECRETS["ADMIN_TOKEN"]}
            assert server.post(json.dumps(placed))[0] == 200
            refused = {**placed, "broker": SECRETS["BINANCE_API_KEY"]}
            assert server.post(json.dumps(refused))[0] == 400
        rows = list(app.journal.entries(10))
    finally:
        app.journal.close()
    assert len(rows) == 2
    stored = json.dumps([[r.payload, r.response, r.trace] for r in rows])
    assert [name for name, value in SECRETS.items() if value in stored] == []
    assert stored.count(REDACTED) >= 2


def logged_line(fmt: str, message: str, *args: object) -> str:
    """What the one handler, in ``fmt``, writes for one WARNING record."""
    import io
    import logging

    from ordergate.logs import make_handler

    stream = io.StringIO()
    logger = logging.getLogger(f"ordergate.test.{fmt}")
    handler = make_handler(fmt, stream)
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning(message, *args)
    finally:
        logger.removeHandler(handler)
    written = stream.getvalue()
    written.encode("utf-8")  # no lone surrogate reached the stream
    return written


def test_a_senders_text_cannot_forge_or_break_a_text_log_line() -> None:
    """Line breaks, other control characters and lone surrogates in a logged value are escaped:
    one record is one line, and a line that no stream could encode is still written."""
    forged = "BTC\nUSDT\r\n2026-12-02 00:00:00 ERROR forged\u2028\x1b[31m\ud800"
    written = logged_line("text", "Invalid symbol: %s", forged)
    assert written.count("\n") == 1
    assert "BTC\\nUSDT\\r\\n2026-12-02 00:00:00 ERROR forged\\u2028\\u001b[31m\\ud800" in written


def test_a_json_log_line_with_a_lone_surrogate_is_written_as_valid_json() -> None:
    written = logged_line("json", "Unknown broker: %s", "\ud800x\ny")
    assert json.loads(written)["message"] == "Unknown broker: \ud800x\ny"


def test_a_secret_named_field_of_any_shape_is_stored_redacted_and_the_history_still_reads_it(
    tmp_path: Path,
) -> None:
    """Redacting inside the JSON text would cut ``"token": {"a": 1}`` in half and leave a row
    no one can read: the value is replaced whole, whatever its type."""
    from ordergate.app import create_app
    from tests.conftest import serving

    environ = {"ORDERGATE_DB": str(tmp_path / "journal.db"), **SECRETS}
    settings = load_settings("development", CONFIG_DIR, environ=environ)
    app = create_app(settings)
    extra = {
        "token": {"a": 1},  # a top-level secret field is not kept at all
        "meta": {
            "token": {"a": 1},
            "api_key": [1, "two"],
            "password": 123,
            "note": f'say "{SECRETS["ADMIN_TOKEN"]}"',
        },
        "Authorization": "",
    }
    try:
        with serving(app) as server:
            placed = {**SEED_ORDERS[0], "passphrase": SECRETS["WEBHOOK_SECRET"], **extra}
            status, answer = server.post(json.dumps(placed))
            assert status == 200, answer
            status, entry = server.request(
                "GET", f"/signals/{answer['signalId']}", headers={"Authorization": f"Bearer {SECRETS['ADMIN_TOKEN']}"}
            )
    finally:
        app.journal.close()
    assert status == 200, entry
    payload = entry["payload"]
    assert "token" not in payload
    assert payload["meta"] == {
        "token": REDACTED,
        "api_key": REDACTED,
        "password": REDACTED,
        "note": f'say "{REDACTED}"',
    }
    assert payload["Authorization"] == ""  # nothing there to hide
    assert payload["symbol"] == "BTCUSDT"
