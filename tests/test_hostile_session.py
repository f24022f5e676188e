"""A session of hostile requests against ``ordergate serve`` as a user runs it.

Issue 11's acceptance: what an attacker or an unlucky client sends leaves 0 secrets in the log,
0 answers of 5xx, 0 orders, and a history API that still answers. The server is the real
process (``python -m ordergate serve``), on real sockets, with every secret an operator sets.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import ROOT, own_schema
from tests.test_cli_serve import free_port, start_serve

SECRET = "wh-secret-7Qe2nX4vLp"
ADMIN = "admin-token-Zr81KcuWm3"
API_KEY = "binance-key-Hd72GgqP0sYw"
API_SECRET = "binance-secret-Vb55TnaQ9xUe"
NOTIFY = "json://127.0.0.1:9/notify-token-Pq4LmZ0a"
SECRETS = (SECRET, ADMIN, API_KEY, API_SECRET, "notify-token-Pq4LmZ0a")


@dataclass
class Session:
    port: int
    answers: list[tuple[str, int | None]] = field(default_factory=list)

    def send(self, name: str, method: str, path: str, body: bytes | str | None = None, **headers: str) -> int | None:
        """One request; the status, or None when the server closed without an answer."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request(method, path, body=body, headers={"Content-Type": "text/plain", **headers})
            response = conn.getresponse()
            response.read()
            status: int | None = response.status
        except (ConnectionError, http.client.HTTPException):
            status = None
        finally:
            conn.close()
        self.answers.append((name, status))
        return status

    def raw(self, name: str, data: bytes) -> bytes:
        """Bytes as written, for what http.client refuses to send; what came back."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
            sock.sendall(data)
            chunks = []
            try:
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
            except (TimeoutError, ConnectionError):
                pass
        reply = b"".join(chunks)
        status = int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/1.") else None
        self.answers.append((name, status))
        return reply


def _signal(**fields: str) -> str:
    """A valid BINANCE signal with ``fields`` written in verbatim (raw JSON escapes survive)."""
    base = {
        "broker": '"BINANCE"',
        "symbol": '"BTCUSDT"',
        "side": '"buy"',
        "quantity": "0.001",
        "type": '"MARKET"',
        "passphrase": json.dumps(SECRET),
        "time": '"2099-01-01T00:00:00Z"',
    }
    base.update(fields)
    return "{" + ", ".join(f'"{k}": {v}' for k, v in base.items()) + "}"


HOSTILE_TEXT = ('"\\ud800"', '"\\udfff tail"', '"a\\u0000b"', '"\\ud83d"')


@pytest.fixture(params=["sqlite", "postgresql"])
def journal_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The journal the served process writes: a SQLite file, or a schema of its own on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'journal.db'}"
        return
    with own_schema(request.getfixturevalue("postgres_url")) as url:
        yield url


def _journal_env(url: str) -> dict[str, str]:
    if url.startswith("sqlite:///"):
        return {"ORDERGATE_DB": url.removeprefix("sqlite:///")}
    return {"DATABASE_URL": url}


@pytest.fixture
def served(tmp_path: Path, journal_url: str) -> Iterator[tuple[Session, subprocess.Popen[str], str]]:
    shutil.copytree(ROOT / "config", tmp_path / "config")
    shutil.copytree(ROOT / "schemas", tmp_path / "schemas")
    overlay = tmp_path / "config" / "environments" / "development.yaml"
    overlay.write_text(overlay.read_text() + "\nroutes:\n  BINANCE: {max_age_s: 60}\n")
    port = free_port()
    process = start_serve(
        port,
        "--config-dir",
        str(tmp_path / "config"),
        **_journal_env(journal_url),
        WEBHOOK_SECRET=SECRET,
        ADMIN_TOKEN=ADMIN,
        BINANCE_API_KEY=API_KEY,
        BINANCE_API_SECRET=API_SECRET,
        NOTIFY_URLS=NOTIFY,
    )
    try:
        yield Session(port), process, journal_url
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_a_hostile_session_leaves_no_secret_no_5xx_no_order_and_a_readable_history(
    served: tuple[Session, subprocess.Popen[str], str],
) -> None:
    session, process, journal = served
    auth = {"Authorization": f"Bearer {ADMIN}"}
    for text in HOSTILE_TEXT:
        for name in ("broker", "id", "side", "symbol", "comment", "type"):
            session.send(f"{name}={text}", "POST", f"/webhook/{SECRET}", _signal(**{name: text}))
            session.send(f"{name}={text} (passphrase)", "POST", "/webhook", _signal(**{name: text}))
        session.send(f"key {text}", "POST", "/webhook", _signal(**{text: '"x"'}))
        session.send(f"nested {text}", "POST", "/webhook", _signal(meta=f'{{"note": {text}}}'))
    for when in ('"2999-01-01T00:00:00Z"', "1e999999", "-1e999999", '"0001-01-01T00:00:00Z"', "1" + "0" * 40):
        session.send(f"time {when}", "POST", "/webhook", _signal(time=when))
    session.send("wrong path secret", "POST", f"/webhook/{SECRET}x", _signal())
    session.send("wrong passphrase", "POST", "/webhook", _signal(passphrase='"nope"'))
    session.send("not utf-8", "POST", "/webhook", b'{"broker": "\xff\xfe"}')
    session.send("deep", "POST", "/webhook", "[" * 100_000)
    session.send("big number", "POST", "/webhook", _signal(quantity="1" * 5000))
    session.send("duplicate key", "POST", "/webhook", _signal(side='"buy", "side": "sell"'))
    session.send("spoofed forwarder", "POST", "/webhook", _signal(), **{"X-Forwarded-For": "\u00ff, ::1, garbage"})
    session.raw(
        "declared 500 MB",
        f"POST /webhook/{SECRET} HTTP/1.1\r\nHost: x\r\nContent-Length: 524288000\r\nConnection: close\r\n\r\n".encode()
        + b"{" * 4096,
    )
    session.raw(
        "chunked flood",
        f"POST /webhook/{SECRET} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n".encode()
        + b"Connection: close\r\n\r\n"
        + b"10000\r\n"
        + b"a" * 65536
        + b"\r\n0\r\n\r\n",
    )
    for path in ("/signals?route=%00", "/signals?status=%ED%A0%80", "/signals/%00", "/signals/%ED%A0%80", "/signals/x"):
        session.send(f"GET {path}", "GET", path, **auth)
    session.send("history wrong token", "GET", "/signals", Authorization="Bearer nope")
    session.send("metrics", "GET", "/metrics", **auth)
    session.send("put", "PUT", "/webhook", _signal())
    session.send("long path", "GET", "/" + "a" * 20_000)

    # The history still answers, in full, and so does the CLI.
    conn = http.client.HTTPConnection("127.0.0.1", session.port, timeout=5)
    conn.request("GET", "/signals?limit=1000", headers=auth)
    listing = conn.getresponse()
    data = listing.read()
    conn.close()
    assert listing.status == 200, (listing.status, data[:300], session.answers)
    rows = json.loads(data)["signals"]
    assert len(rows) >= 5  # refused text is not journaled (nothing of it can be stored); the rest is
    for row in rows:
        assert session.send(f"GET /signals/{row['id']}", "GET", f"/signals/{row['id']}", **auth) == 200

    process.send_signal(signal.SIGTERM)
    _, log = process.communicate(timeout=20)
    env = {**os.environ, **_journal_env(journal), "PYTHONIOENCODING": "utf-8"}
    cli = subprocess.run(
        [sys.executable, "-m", "ordergate", "signals", "-n", "1000"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert cli.returncode == 0, cli.stderr

    server_errors = [(name, status) for name, status in session.answers if status is not None and status >= 500]
    assert server_errors == []
    leaked = [s for s in SECRETS if s in log]
    assert leaked == [], f"secrets in the log: {leaked}"
    engine = sa.create_engine(journal)
    with engine.connect() as db:
        orders = db.execute(sa.text("SELECT id, status FROM signals WHERE broker_order_id IS NOT NULL")).all()
        stored = " ".join(str(v) for row in db.execute(sa.text("SELECT * FROM signals")) for v in row)
    engine.dispose()
    assert orders == []
    assert [s for s in SECRETS if s in stored] == []
