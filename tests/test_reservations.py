"""The reservation ledger's rules, on both ledgers, with an injected clock.

The in-process ledger (a lock and a dict) and the shared one (a table in the journal's
database: SQLite here, PostgreSQL as replicas share it) answer the same questions the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from ordergate.answers import status_of
from ordergate.config import Settings
from ordergate.pipeline.errors import JournalUnavailable
from ordergate.pipeline.journal import database_url
from ordergate.pipeline.reservations import (
    EXPIRE_S,
    FOREIGN_SETTLE_S,
    MemoryReservations,
    Reservations,
    SqlReservations,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["memory", "table"])
def make_ledger(
    request: pytest.FixtureRequest, journal_settings: Settings, clock: Clock
) -> Iterator[Callable[[], Reservations]]:
    """Ledgers of one account: in memory (one process), or replicas' ledgers over one table
    (the journal's database, SQLite or PostgreSQL)."""
    if request.param == "memory":
        if journal_settings.data["journal"]["url"]:
            pytest.skip("the in-memory ledger has no database")
        shared = MemoryReservations(clock)
        yield lambda: shared
        return
    cfg = journal_settings.data["journal"]
    engine = sa.create_engine(database_url({"DATABASE_URL": cfg["url"] or ""}, Path(cfg["path"])))
    yield lambda: SqlReservations(engine, clock)
    engine.dispose()


def reserve(ledger: Reservations, amount: str, signal_id: str, *, free: str = "100", asked: float) -> bool:
    return ledger.reserve("binance", "USDT", Decimal(amount), signal_id, free=Decimal(free), asked=asked)


def test_what_is_held_counts_against_the_free_balance(make_ledger: Callable[[], Reservations], clock: Clock) -> None:
    ledger = make_ledger()
    assert reserve(ledger, "60", "a", asked=clock.now)
    assert not reserve(ledger, "60", "b", asked=clock.now)  # 100 - 60 < 60
    assert reserve(ledger, "40", "c", asked=clock.now)
    assert ledger.reserve("binance", "BTC", Decimal(1), "d", free=Decimal(1), asked=clock.now)  # another asset
    assert ledger.reserve("other", "USDT", Decimal(100), "e", free=Decimal(100), asked=clock.now)  # another account
    assert sorted(h.signal_id for h in ledger.held("binance")) == ["a", "c", "d"]
    assert [h.amount for h in ledger.held("binance") if h.signal_id == "a"] == [Decimal(60)]


def test_a_settled_hold_counts_against_balances_read_before_it_settled(
    make_ledger: Callable[[], Reservations], clock: Clock
) -> None:
    """The window the settlement leaves: a balance read before the order filled (a cache, or an
    answer in flight) does not show it, so the order's funds still count against that read."""
    ledger = make_ledger()
    read_before = clock.now
    assert reserve(ledger, "60", "a", asked=read_before)
    clock.now += 1
    ledger.release("a")
    assert ledger.held() == []
    clock.now += 1
    assert not reserve(ledger, "60", "b", asked=read_before)  # that balance may still hold a's 60
    assert reserve(ledger, "60", "c", asked=clock.now)  # read after: it shows a's order itself


def test_another_replicas_settled_hold_counts_for_a_minute(
    make_ledger: Callable[[], Reservations], clock: Clock
) -> None:
    """Another replica's fill reaches this replica's cached balance only when the cache is read again."""
    mine, theirs = make_ledger(), make_ledger()
    if mine is theirs:
        pytest.skip("one process: no other replica")
    assert reserve(theirs, "60", "a", asked=clock.now)
    theirs.release("a")
    clock.now += 1
    assert not reserve(mine, "60", "b", asked=clock.now)
    clock.now += FOREIGN_SETTLE_S
    assert reserve(mine, "60", "c", asked=clock.now)


def test_a_hold_left_by_a_crash_expires(make_ledger: Callable[[], Reservations], clock: Clock) -> None:
    ledger = make_ledger()
    assert reserve(ledger, "60", "crashed", asked=clock.now)
    clock.now += EXPIRE_S + 1
    assert ledger.held() == []
    assert reserve(ledger, "60", "b", asked=clock.now)


def test_reserving_again_for_one_signal_replaces_its_hold(
    make_ledger: Callable[[], Reservations], clock: Clock
) -> None:
    ledger = make_ledger()
    assert reserve(ledger, "60", "a", asked=clock.now)
    assert reserve(ledger, "70", "a", asked=clock.now)
    assert [h.amount for h in ledger.held()] == [Decimal(70)]
    ledger.release("a")
    ledger.release("a")  # settling twice, or a signal that held nothing, changes nothing
    ledger.release("never-held")
    assert ledger.held() == []


def test_amounts_are_kept_exactly(make_ledger: Callable[[], Reservations], clock: Clock) -> None:
    ledger = make_ledger()
    tiny = "0.000000000000000000001"  # below any fixed-point column's scale
    assert reserve(ledger, "99.999999999999999999999", "a", asked=clock.now)
    assert [h.amount for h in ledger.held()] == [Decimal("99.999999999999999999999")]
    assert reserve(ledger, tiny, "b", asked=clock.now)
    assert not reserve(ledger, tiny, "c", asked=clock.now)


def test_a_ledger_that_cannot_be_written_refuses_before_anything_is_sent(tmp_path: Path, clock: Clock) -> None:
    """A 503 the sender may retry (nothing was placed), not a fault answered 500."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger = SqlReservations(engine, clock)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE reservations"))
    with pytest.raises(JournalUnavailable) as raised:
        reserve(ledger, "1", "a", asked=clock.now)
    assert status_of(raised.value) == 503
    assert "reservation" in raised.value.message
    engine.dispose()


class CountedTime(float):
    """A balance read's time that counts how often a ledger compares a hold's time with it."""

    compared = 0

    def _count(self, other: object) -> None:
        CountedTime.compared += 1

    def __lt__(self, other: object) -> bool:
        self._count(other)
        return float(self) < float(other)  # type: ignore[arg-type]

    def __le__(self, other: object) -> bool:
        self._count(other)
        return float(self) <= float(other)  # type: ignore[arg-type]

    def __gt__(self, other: object) -> bool:
        self._count(other)
        return float(self) > float(other)  # type: ignore[arg-type]

    def __ge__(self, other: object) -> bool:
        self._count(other)
        return float(self) >= float(other)  # type: ignore[arg-type]


def test_a_reserve_reads_only_the_holds_settled_since_the_balance_was_read(clock: Clock) -> None:
    """The in-process ledger's cost does not grow with the last two minutes' traffic: of 1,000
    holds settled before the balance was read, a reserve looks at none (make bench's "chain
    after 10,000 signals" row: 1.6 ms a signal when every reserve scanned every hold)."""
    ledger = MemoryReservations(clock)
    for n in range(1000):
        assert reserve(ledger, "1", f"s{n}", asked=clock.now)
        ledger.release(f"s{n}")
        clock.now += 0.01
    read = clock.now - 0.025  # a balance read before the last two settled: they count against it
    assert not reserve(ledger, "98.5", "late", asked=read)
    assert reserve(ledger, "98", "late", asked=read)
    ledger.release("late")
    CountedTime.compared = 0
    assert reserve(ledger, "99", "next", asked=CountedTime(clock.now))  # read after every settlement
    assert CountedTime.compared <= 2
