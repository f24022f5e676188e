"""The journal: every authenticated signal, written before any stage runs, and its outcome.

SQLite in WAL mode by default (a file; on Railway, on a volume), PostgreSQL when
``DATABASE_URL`` is set, so several replicas share one journal. SQLAlchemy Core, one table.
Each signal costs short transactions: the claim (before any stage), the mark that its order is
about to be sent (``placing``), and the outcome (before the answer). The claim is also the
idempotency guard: a signal's ``id`` is a unique key, so of many copies exactly one row holds
it and only that copy runs the chain.

An outcome is *final*, *retryable* or *pending* (DESIGN.md, "Final or retryable"):

* retryable: answered 5xx, so no order can exist (a broker down, a rate limit, a crash before
  the order was sent, an unknown order proven absent). A repeat of the id takes the key over
  and runs the chain again, with the same client order id;
* pending: in flight (``received``, ``placing``) or ``unknown`` (sent, result not known yet):
  a repeat waits briefly, then answers 202 and places nothing; the reconciler settles it;
* final: everything else (an order at the broker, a 4xx refusal): a repeat answers it.

A journal that cannot be written refuses the signal before anything is sent
(:class:`~ordergate.pipeline.errors.JournalUnavailable`, a 503): a write that failed (disk
full, read-only, unreachable), or a SQLite file deleted or replaced while serving. SQLite keeps
writing into a deleted file's inode without an error, so each claim first compares the path's
identity (device, inode) with the one opened: one ``os.stat``, a few microseconds.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from ordergate.pipeline.errors import JournalUnavailable
from ordergate.pipeline.money import dumps
from ordergate.redact import redacted_dumps

metadata = sa.MetaData()

signals = sa.Table(
    "signals",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("received_at", sa.Float, nullable=False, index=True),
    sa.Column("route", sa.String(80), nullable=False),
    sa.Column("idempotency_key", sa.String(300), unique=True),
    sa.Column("payload", sa.Text),  # JSON, secrets removed; absent for unauthorized requests
    sa.Column("status", sa.String(16), nullable=False, index=True),  # received, filled, open, ...
    sa.Column("http_status", sa.Integer),
    sa.Column("response", sa.Text),  # the JSON answer
    sa.Column("client_order_id", sa.String(64)),
    sa.Column("broker_order_id", sa.String(64)),
    sa.Column("trace", sa.Text),  # JSON list of {stage, outcome, us}
    sa.Column("completed_at", sa.Float),
)

# One row, rewritten by each /readyz: the probe that the journal can still be written.
health = sa.Table(
    "journal_health",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("checked_at", sa.Float, nullable=False),
)

log = logging.getLogger("ordergate")

IN_FLIGHT = "received"  # claimed; no order sent yet
PLACING = "placing"  # the order is being sent: it may exist from here on
UNKNOWN = "unknown"  # sent, but its outcome is not known yet
RUNNING = (IN_FLIGHT, PLACING)  # a request is working on it right now (or a crash cut it off)
PENDING = (*RUNNING, UNKNOWN)  # not settled: a repeat must not place anything


def database_url(environ: Mapping[str, str], default_path: Path) -> str:
    """``DATABASE_URL`` (Railway's ``postgres://...`` made SQLAlchemy's), else a SQLite file."""
    url = environ.get("DATABASE_URL", "").strip()
    if not url:
        default_path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{default_path}"
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


@dataclass(frozen=True)
class Entry:
    """One journal row, as read back."""

    id: str
    received_at: float
    route: str
    status: str
    http_status: int | None
    response: dict[str, Any] | None
    payload: dict[str, Any] | None
    client_order_id: str | None
    broker_order_id: str | None
    trace: list[dict[str, Any]] | None
    completed_at: float | None = None

    @classmethod
    def of(cls, row: Any) -> Entry:
        return cls(
            id=row.id,
            received_at=row.received_at,
            route=row.route,
            status=row.status,
            http_status=row.http_status,
            response=json.loads(row.response) if row.response else None,
            payload=json.loads(row.payload) if row.payload else None,
            client_order_id=row.client_order_id,
            broker_order_id=row.broker_order_id,
            trace=json.loads(row.trace) if row.trace else None,
            completed_at=row.completed_at,
        )

    @property
    def pending(self) -> bool:
        """Not settled yet: in flight, or sent with an unknown outcome."""
        return self.status in PENDING

    @property
    def retryable(self) -> bool:
        """Settled with a 5xx: no order exists, so a repeat of the id may run the chain again."""
        return not self.pending and self.http_status is not None and self.http_status >= 500


# The hot path's statements, built once and executed with parameters: built per call,
# SQLAlchemy coerces, builds and cache-keys each one anew, half the journal's cost a signal
# (README, Performance).
_CLAIM = signals.insert()
_PLACING = (
    signals.update()
    .where(signals.c.id == sa.bindparam("b_id"), signals.c.status == IN_FLIGHT)
    .values(status=PLACING, client_order_id=sa.bindparam("b_client_order_id"))
)
_FINISHED = ("status", "http_status", "response", "client_order_id", "broker_order_id", "completed_at")


def _finish_statement(trace: bool, expected: bool) -> sa.Update:
    query = signals.update().where(signals.c.id == sa.bindparam("b_id"))
    if expected:
        query = query.where(signals.c.status == sa.bindparam("b_expected"))
    values: dict[str, Any] = {name: sa.bindparam(f"b_{name}") for name in (*_FINISHED, *(("trace",) if trace else ()))}
    return query.values(**values)


_FINISH = {(t, e): _finish_statement(t, e) for t in (True, False) for e in (True, False)}  # (trace, expected status)


class Journal:
    """The durable record of signals; safe to share between threads (and replicas on PostgreSQL)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = sa.create_engine(url, pool_pre_ping=not url.startswith("sqlite"))
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        metadata.create_all(self.engine)
        self._failure: tuple[float, str] | None = None  # the last write's failure, until one succeeds
        self._failure_guard = threading.Lock()
        database = self.engine.url.database if self.engine.dialect.name == "sqlite" else None
        self.file = database if database and database != ":memory:" and not database.startswith("file:") else None
        self._opened = os.path.abspath(self.file) if self.file else ""  # as SQLite opened it, whatever the cwd
        self._identity = _identity(self._opened) if self.file else None

    def close(self) -> None:
        self.engine.dispose()

    def check(self) -> None:
        """Raise :class:`JournalUnavailable` when the SQLite file is not the one opened any more.

        Deleted, its writes would go to an inode no one can read and a restart would forget
        every id; replaced (a restore, another volume), they would go to the wrong file.
        """
        if self.file is None:
            return
        try:
            now = _identity(self._opened)
        except OSError:
            now = None
        if now != self._identity:
            what = "deleted" if now is None else "replaced"
            self._failed(f"its file {self.file} was {what} while serving (restart to open it again)")

    def _failed(self, reason: str, cause: BaseException | None = None) -> NoReturn:
        with self._failure_guard:
            before, self._failure = self._failure, (time.time(), reason)
        if before is None or before[1] != reason:  # one ERROR line per change, not one per signal
            log.error("Journal unavailable: %s; signals answer 503 and place nothing until it is fixed", reason)
        raise JournalUnavailable(reason) from cause

    def _succeeded(self) -> None:
        if self._failure is None:
            return
        with self._failure_guard:
            before, self._failure = self._failure, None
        if before is not None:
            log.warning("Journal writable again (it failed %.0f s ago: %s)", time.time() - before[0], before[1])

    @contextmanager
    def _writing(self, *, claiming: bool = False) -> Iterator[sa.Connection]:
        """A write transaction, after the identity check; a failure is remembered for /readyz and
        raised as :class:`JournalUnavailable`, except a claim's taken key (an IntegrityError)."""
        self.check()
        try:
            with self.engine.begin() as conn:
                yield conn
        except sa.exc.SQLAlchemyError as exc:
            if claiming and isinstance(exc, IntegrityError):
                raise
            self._failed(f"a write failed: {describe_failure(exc)}", exc)
        self._succeeded()

    def probe(self) -> None:
        """Write the health row, as a signal would (for /readyz); raise JournalUnavailable if it fails."""
        with self._writing() as conn:
            now = time.time()
            if conn.execute(health.update().where(health.c.id == 1).values(checked_at=now)).rowcount == 0:
                conn.execute(health.insert().values(id=1, checked_at=now))

    def claim(
        self, signal_id: str, route: str, payload: Mapping[str, Any] | None, key: str | None, received_at: float
    ) -> Entry | None:
        """Write the signal as received. None when this request owns ``key`` now, else the row that does.

        A request owns the key when it is new, or when the row that held it ended retryable (a
        5xx): then the old row gives the key up and the new one takes it in one transaction, so
        of many concurrent repeats exactly one runs the chain again.
        """
        row = {
            "id": signal_id,
            "received_at": received_at,
            "route": route,
            "idempotency_key": key,
            "payload": _stored(payload) if payload is not None else None,
            "status": IN_FLIGHT,
        }
        if key is None:
            with self._writing() as conn:
                conn.execute(_CLAIM, row)
            return None
        holder: Entry | None = None
        for _ in range(5):
            try:
                with self._writing(claiming=True) as conn:
                    conn.execute(_CLAIM, row)
                return None
            except IntegrityError:
                holder = self.find_by_key(key)
            if holder is None:  # the other claim rolled back in between: claim again
                continue
            if not holder.retryable:
                return holder
            if self._take_over(holder, row):
                log.info("Signal %s retries %s (its outcome was %s)", signal_id, holder.id, holder.http_status)
                return None
        return self.find_by_key(key) or holder  # five rounds lost to other copies: one of them holds it

    def _take_over(self, holder: Entry, row: Mapping[str, Any]) -> bool:
        """Move ``holder``'s key to a new row, if ``holder`` still has it and is still retryable."""
        key = row["idempotency_key"]
        released = f"{key[:250]}#retried-by:{row['id']}"  # unique, and the history keeps the link
        with self._writing(claiming=True) as conn:
            moved = conn.execute(
                signals.update()
                .where(
                    signals.c.id == holder.id,
                    signals.c.idempotency_key == key,
                    signals.c.status.not_in(PENDING),
                    signals.c.http_status >= 500,
                )
                .values(idempotency_key=released)
            )
            if moved.rowcount != 1:
                return False  # another copy took it first
            conn.execute(signals.insert().values(**row))
        return True

    def placing(self, signal_id: str, client_order_id: str) -> None:
        """Mark that the signal's order is about to be sent: from now on it may exist at the broker.

        A crash before this mark left no order; after it, recovery must look the order up.
        Raises :class:`JournalUnavailable` when it cannot be written: then nothing is sent.
        """
        with self._writing() as conn:
            conn.execute(_PLACING, {"b_id": signal_id, "b_client_order_id": client_order_id})

    def finish(
        self,
        signal_id: str,
        *,
        status: str,
        http_status: int,
        response: Mapping[str, Any],
        client_order_id: str | None = None,
        broker_order_id: str | int | None = None,
        trace: list[dict[str, Any]] | None = None,
        expected_status: str | None = None,
    ) -> bool:
        """Record how the signal ended; False when ``expected_status`` is given and the row has
        moved on (another replica's reconciler settled it first). A missing trace keeps the row's."""
        values: dict[str, Any] = {
            "status": status,
            "http_status": http_status,
            "response": _stored(response),
            "client_order_id": client_order_id,
            "broker_order_id": str(broker_order_id) if broker_order_id is not None else None,
            "completed_at": time.time(),
        }
        if trace is not None:
            values["trace"] = _stored(trace)
        params = {f"b_{name}": value for name, value in values.items()}
        params["b_id"] = signal_id
        if expected_status is not None:
            params["b_expected"] = expected_status
        query = _FINISH[(trace is not None, expected_status is not None)]
        with self._writing() as conn:
            changed = conn.execute(query, params).rowcount
        return bool(changed)

    def record(self, signal_id: str, route: str, status: str, http_status: int, response: Mapping[str, Any]) -> None:
        """One finished row in one transaction, without a payload (e.g. an unauthorized request)."""
        now = time.time()
        with self._writing() as conn:
            conn.execute(
                signals.insert().values(
                    id=signal_id,
                    received_at=now,
                    route=route,
                    status=status,
                    http_status=http_status,
                    response=_stored(response),
                    completed_at=now,
                )
            )

    def get(self, signal_id: str) -> Entry | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(signals).where(signals.c.id == signal_id)).first()
        return Entry.of(row) if row is not None else None

    def find_by_key(self, key: str) -> Entry | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(signals).where(signals.c.idempotency_key == key)).first()
        return Entry.of(row) if row is not None else None

    def wait_finished(self, signal_id: str, timeout_s: float) -> Entry | None:
        """The row once its request has answered (polling), or as it is when ``timeout_s`` runs out."""
        deadline = time.monotonic() + timeout_s
        delay = 0.005
        while True:
            entry = self.get(signal_id)
            if entry is None or entry.status not in RUNNING or time.monotonic() >= deadline:
                return entry
            time.sleep(delay)
            delay = min(delay * 2, 0.1)

    def in_flight(self) -> list[Entry]:
        """Signals that never got an outcome: running now, or cut off by a crash."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(signals).where(signals.c.status.in_(RUNNING))).all()
        return [Entry.of(row) for row in rows]

    def unsettled(self) -> list[Entry]:
        """Every pending row, oldest first: in flight, or sent with an unknown outcome."""
        query = sa.select(signals).where(signals.c.status.in_(PENDING)).order_by(signals.c.received_at)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [Entry.of(row) for row in rows]

    def entries(
        self,
        limit: int = 100,
        *,
        status: str | None = None,
        route: str | None = None,
        since: float | None = None,
    ) -> Iterator[Entry]:
        """The newest signals first; ``status``/``route`` filter, ``since`` keeps those received after it."""
        query = sa.select(signals)
        if status is not None:
            query = query.where(signals.c.status == status)
        if route is not None:
            query = query.where(signals.c.route == route)
        if since is not None:
            query = query.where(signals.c.received_at > since)
        query = query.order_by(signals.c.received_at.desc(), signals.c.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        for row in rows:
            yield Entry.of(row)


def _stored(value: Any) -> str:
    """JSON as the journal keeps it: with every known secret redacted (ordergate.redact), so a
    secret a sender put in another field, or an answer quoting one, is never stored."""
    return redacted_dumps(value, dumps)


def _identity(path: str) -> tuple[int, int]:
    stat = os.stat(path)
    return stat.st_dev, stat.st_ino


def describe_failure(exc: sa.exc.SQLAlchemyError) -> str:
    """The database's own short words for a failure (no URL, host or credentials in them)."""
    orig = getattr(exc, "orig", None)
    if isinstance(orig, sqlite3.Error):
        return str(orig)  # SQLite's fixed texts: "database or disk is full", "disk I/O error", ...
    diag = getattr(orig, "diag", None)
    primary = getattr(diag, "message_primary", None)  # PostgreSQL: "permission denied for table signals"
    if primary and getattr(orig, "sqlstate", None):
        return str(primary)
    return f"cannot reach the database ({type(orig or exc).__name__})"


def _sqlite_pragmas(dbapi_connection: Any, record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable across a process crash (kill -9) in WAL
    cursor.execute("PRAGMA busy_timeout=10000")  # writers queue instead of failing
    cursor.close()
