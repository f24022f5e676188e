"""The one read-retry policy both adapters use (ordergate/brokers/retry.py), its waits recorded, never slept."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ordergate.brokers.retry import read_retry


class Lost(Exception):
    """Stands for an adapter's "failed on the way" (ccxt NetworkError, FlatTrade Unreachable)."""


class Refused(Exception):
    """Any other failure: an answer, not a lost request."""


def failing(times: int, error: type[Exception] = Lost) -> tuple[Callable[[], str], list[int]]:
    calls: list[int] = []

    def call() -> str:
        calls.append(len(calls) + 1)
        if len(calls) <= times:
            raise error(f"attempt {len(calls)}")
        return "answer"

    return call, calls


def test_a_read_lost_twice_is_answered_on_the_third_attempt() -> None:
    call, calls = failing(2)
    waits: list[float] = []
    assert read_retry(call, Lost, sleep=waits.append) == "answer"
    assert calls == [1, 2, 3]
    assert waits == [0.2, 0.4]


def test_three_attempts_then_the_last_failure_itself() -> None:
    call, calls = failing(5)
    waits: list[float] = []
    with pytest.raises(Lost, match=r"^attempt 3$"):
        read_retry(call, (Refused, Lost), sleep=waits.append)
    assert calls == [1, 2, 3]
    assert waits == [0.2, 0.4]


def test_waits_double_up_to_two_seconds() -> None:
    call, calls = failing(10)
    waits: list[float] = []
    with pytest.raises(Lost, match=r"^attempt 7$"):
        read_retry(call, Lost, attempts=7, sleep=waits.append)
    assert len(calls) == 7
    assert waits == pytest.approx([0.2, 0.4, 0.8, 1.6, 2, 2])


def test_a_failure_that_is_not_retryable_is_raised_at_once() -> None:
    call, calls = failing(1, Refused)
    waits: list[float] = []
    with pytest.raises(Refused, match=r"^attempt 1$"):
        read_retry(call, Lost, attempts=5, sleep=waits.append)
    assert (calls, waits) == ([1], [])


def test_one_attempt_is_no_retry() -> None:
    call, calls = failing(1)
    with pytest.raises(Lost):
        read_retry(call, Lost, attempts=1, sleep=pytest.fail)
    assert calls == [1]
