"""Reservations: two signals cannot both spend the same funds, and no lock is held across a round trip.

The ``balance`` stage reads the account's free balance (a network round trip or a cache, outside
any lock), then asks the ledger to *reserve* what the order needs: under a short lock, the
free balance minus what other signals hold must cover it. The runner *settles* the reservation
when the signal's life ends, whatever its outcome, after telling the broker to forget a cached
balance the order may have moved (see :meth:`ordergate.pipeline.runner.Runner.run`).

A settled reservation is not gone at once. A balance read that began before the settlement
may predate the order (a cached balance, or an answer in flight while the order filled), so
the settled amount keeps counting against such reads:

* settled here: against balances read before it settled;
* settled by another replica (PostgreSQL): against balances read up to
  :data:`FOREIGN_SETTLE_S` after it settled, since that replica's fill reaches this replica's
  cached balance only when the cache is read again (the ccxt adapter's ``balance_ttl_s``,
  default 30 s). This errs on the safe side: across replicas, funds just spent count twice
  for a minute rather than not at all.

Reservations of a process that crashed mid-placement expire after :data:`EXPIRE_S`.

Two ledgers, one contract: :class:`MemoryReservations` (one process: a lock and a dict) and
:class:`SqlReservations` (replicas sharing the journal's PostgreSQL: a ``reservations`` table,
decided under ``pg_advisory_xact_lock`` for one short transaction, never during a network call).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ordergate.pipeline.errors import JournalUnavailable
from ordergate.pipeline.journal import describe_failure

# A reservation older than this belongs to a placement that can no longer be running (a ccxt
# placement with its look-ups ends within a few minutes at the longest timeout): its process died.
EXPIRE_S = 600.0
# How long another replica's settled reservation counts against this replica's balance reads.
FOREIGN_SETTLE_S = 60.0
# Settled reservations are kept this long, then deleted (longer than any count above).
KEEP_SETTLED_S = 2 * FOREIGN_SETTLE_S


@dataclass(frozen=True)
class Hold:
    """Funds one signal holds: ``amount`` of ``asset`` on ``account`` (a broker's name)."""

    signal_id: str
    account: str
    asset: str
    amount: Decimal
    at: float  # when it was reserved (seconds since the epoch)
    settled_at: float | None = None  # when the signal's placement ended
    owner: str = ""  # the process that holds it

    def counts(self, asked: float, owner: str, now: float) -> bool:
        """Whether this hold still spends funds for a balance read that began at ``asked``."""
        if self.settled_at is None:
            return now - self.at < EXPIRE_S
        if self.owner == owner:
            return self.settled_at > asked
        return self.settled_at > asked - FOREIGN_SETTLE_S


class Reservations(Protocol):
    """The ledger the ``balance`` stage reserves in and the runner settles."""

    clock: Callable[[], float]

    def reserve(
        self, account: str, asset: str, amount: Decimal, signal_id: str, *, free: Decimal, asked: float
    ) -> bool:
        """Hold ``amount`` of ``asset`` for ``signal_id`` if ``free`` (read at ``asked``) minus what
        other signals hold covers it; False (nothing new held) when it does not. A signal holds
        one reservation: reserving again replaces it."""
        ...

    def release(self, signal_id: str) -> None:
        """Settle ``signal_id``'s hold (if any): its placement ended, whatever the outcome."""
        ...

    def held(self, account: str | None = None) -> list[Hold]:
        """The holds of running placements (not settled, not expired)."""
        ...


def _short(free: Decimal, holds: list[Hold], amount: Decimal, asked: float, owner: str, now: float) -> bool:
    spent = sum((h.amount for h in holds if h.counts(asked, owner, now)), Decimal(0))
    return free - spent < amount


class MemoryReservations:
    """The ledger of one process: a lock held for a few dictionary operations.

    A reserve costs the same however many signals settled in the last two minutes: per account
    and asset, the holds of running placements are a dict (a few), and the settled ones a queue
    in settlement order, read from the newest back only as far as the balance read's time (a
    paper balance is read at once: none; a cached one, the signals since it was read) and
    dropped from the oldest end once :data:`KEEP_SETTLED_S` has passed.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.owner = "local"
        self._open: dict[tuple[str, str], dict[str, Hold]] = {}
        self._settled: dict[tuple[str, str], deque[Hold]] = {}
        self._where: dict[str, tuple[str, str]] = {}  # every hold's account and asset, by signal
        self._lock = threading.Lock()

    def reserve(
        self, account: str, asset: str, amount: Decimal, signal_id: str, *, free: Decimal, asked: float
    ) -> bool:
        key = (account, asset)
        with self._lock:
            now = self.clock()
            self._purge(key, now)
            running = self._open.get(key, {})
            spent = sum(
                (h.amount for h in running.values() if h.signal_id != signal_id and now - h.at < EXPIRE_S),
                Decimal(0),
            )
            for hold in reversed(self._settled.get(key, ())):  # newest first, as far back as the read
                if hold.settled_at is None or hold.settled_at <= asked:
                    break
                if hold.signal_id != signal_id:
                    spent += hold.amount
            if free - spent < amount:
                return False
            self._drop(signal_id)  # a signal holds one reservation: reserving again replaces it
            self._open.setdefault(key, {})[signal_id] = Hold(signal_id, account, asset, amount, now, owner=self.owner)
            self._where[signal_id] = key
            return True

    def release(self, signal_id: str) -> None:
        with self._lock:
            key = self._where.get(signal_id)
            hold = self._open.get(key, {}).pop(signal_id, None) if key is not None else None
            if key is None or hold is None:
                return
            settled = self._settled.setdefault(key, deque())
            # in settlement order even if the clock steps back: a later settlement counts longer (the safe side)
            last = settled[-1].settled_at if settled else None
            now = self.clock()
            settled.append(replace(hold, settled_at=now if last is None else max(now, last)))

    def held(self, account: str | None = None) -> list[Hold]:
        with self._lock:
            now = self.clock()
            return [
                h
                for (owner, _), running in self._open.items()
                if account in (None, owner)
                for h in running.values()
                if now - h.at < EXPIRE_S
            ]

    def _purge(self, key: tuple[str, str], now: float) -> None:
        running = self._open.get(key, {})
        for signal_id in [k for k, h in running.items() if now - h.at > EXPIRE_S]:  # a crash's holds
            del running[signal_id]
            self._where.pop(signal_id, None)
        settled = self._settled.get(key)
        while settled and now - (settled[0].settled_at or now) > KEEP_SETTLED_S:
            gone = settled.popleft()
            if self._where.get(gone.signal_id) == key and gone.signal_id not in running:
                del self._where[gone.signal_id]

    def _drop(self, signal_id: str) -> None:
        """Forget ``signal_id``'s hold, running or settled (before it reserves again)."""
        key = self._where.pop(signal_id, None)
        if key is None:
            return
        if self._open.get(key, {}).pop(signal_id, None) is None:
            settled = self._settled.get(key, deque())
            self._settled[key] = deque(h for h in settled if h.signal_id != signal_id)


metadata = sa.MetaData()

reservations = sa.Table(
    "reservations",
    metadata,
    sa.Column("signal_id", sa.String(40), primary_key=True),
    sa.Column("account", sa.String(80), nullable=False),
    sa.Column("asset", sa.String(40), nullable=False),
    sa.Column("amount", sa.String(80), nullable=False),  # the exact Decimal, as text
    sa.Column("reserved_at", sa.Float, nullable=False),
    sa.Column("settled_at", sa.Float),
    sa.Column("owner", sa.String(40), nullable=False),
    sa.Index("reservations_account_asset", "account", "asset"),
)


def lock_key(account: str, asset: str) -> int:
    """The advisory lock key of one account's asset (a signed 64-bit integer)."""
    digest = hashlib.sha256(f"ordergate-reserve:{account}:{asset}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class SqlReservations:
    """The ledger replicas share, in the journal's PostgreSQL database.

    The decision and the insert run in one transaction under a transaction-scoped advisory lock
    on (account, asset): the lock ends with the transaction, a few milliseconds, and no network
    call to a broker happens inside it. On other databases (tests, a single process on SQLite)
    the table works the same, serialized by a process lock instead.
    """

    def __init__(self, engine: Engine, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.clock = clock
        self.owner = secrets.token_hex(8)  # this process, so its own settlements are told apart
        self._local = threading.Lock()
        self._mine: set[str] = set()  # signals holding here: release costs nothing for the others
        self._postgres = engine.dialect.name == "postgresql"
        metadata.create_all(engine)

    def reserve(
        self, account: str, asset: str, amount: Decimal, signal_id: str, *, free: Decimal, asked: float
    ) -> bool:
        """As :meth:`Reservations.reserve`; a database that cannot be written raises
        :class:`JournalUnavailable` (a 503 before anything is sent: the sender may retry)."""
        try:
            return self._reserve(account, asset, amount, signal_id, free=free, asked=asked)
        except sa.exc.SQLAlchemyError as exc:
            raise JournalUnavailable(f"the reservation could not be written: {describe_failure(exc)}") from exc

    def _reserve(
        self, account: str, asset: str, amount: Decimal, signal_id: str, *, free: Decimal, asked: float
    ) -> bool:
        with self._serialized(), self.engine.begin() as conn:
            if self._postgres:
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(account, asset)})
            now = self.clock()
            rows = conn.execute(
                sa.select(reservations).where(
                    reservations.c.account == account,
                    reservations.c.asset == asset,
                    reservations.c.reserved_at > now - EXPIRE_S,
                    sa.or_(reservations.c.settled_at.is_(None), reservations.c.settled_at > now - KEEP_SETTLED_S),
                )
            ).all()
            holds = [_hold(row) for row in rows if row.signal_id != signal_id]
            if _short(free, holds, amount, asked, self.owner, now):
                return False
            conn.execute(reservations.delete().where(reservations.c.signal_id == signal_id))
            conn.execute(
                reservations.insert().values(
                    signal_id=signal_id,
                    account=account,
                    asset=asset,
                    amount=str(amount),
                    reserved_at=now,
                    owner=self.owner,
                )
            )
        with self._local:
            self._mine.add(signal_id)
        return True

    def release(self, signal_id: str) -> None:
        with self._local:
            if signal_id not in self._mine:
                return
            self._mine.discard(signal_id)
        now = self.clock()
        with self.engine.begin() as conn:
            conn.execute(
                reservations.update()
                .where(reservations.c.signal_id == signal_id, reservations.c.settled_at.is_(None))
                .values(settled_at=now)
            )
            conn.execute(
                reservations.delete().where(
                    sa.or_(
                        reservations.c.settled_at < now - KEEP_SETTLED_S, reservations.c.reserved_at < now - EXPIRE_S
                    )
                )
            )

    def held(self, account: str | None = None) -> list[Hold]:
        now = self.clock()
        query = sa.select(reservations).where(
            reservations.c.settled_at.is_(None), reservations.c.reserved_at > now - EXPIRE_S
        )
        if account is not None:
            query = query.where(reservations.c.account == account)
        with self.engine.connect() as conn:
            return [_hold(row) for row in conn.execute(query).all()]

    def _serialized(self) -> threading.Lock | _NoLock:
        return _NoLock() if self._postgres else self._local


class _NoLock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _hold(row: sa.Row[tuple[object, ...]]) -> Hold:
    return Hold(
        signal_id=str(row.signal_id),
        account=str(row.account),
        asset=str(row.asset),
        amount=Decimal(row.amount),
        at=float(row.reserved_at),
        settled_at=None if row.settled_at is None else float(row.settled_at),
        owner=str(row.owner),
    )


def ledger_for(engine: Engine) -> Reservations:
    """The ledger a journal on ``engine`` needs: shared in PostgreSQL (replicas), else in memory
    (a SQLite journal belongs to one process)."""
    if engine.dialect.name == "postgresql":
        return SqlReservations(engine)
    return MemoryReservations()
