"""The one read-retry policy of the broker adapters.

A read (markets, prices, a balance, an order look-up) that failed on the way is tried again,
``attempts`` calls in all, 0.2 s, 0.4 s, 0.8 s ... apart (never more than 2 s). Which failures
are "on the way" is the adapter's to say: ccxt's NetworkError, FlatTrade's Unreachable. An
order placement is never retried here: a lost placement is looked up, never re-sent blindly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

T = TypeVar("T")

FIRST_WAIT_S = 0.2
LONGEST_WAIT_S = 2


def read_retry(
    call: Callable[[], T],
    retryable: type[BaseException] | tuple[type[BaseException], ...],
    *,
    attempts: int = 3,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``call()``; on a ``retryable`` failure call again, up to ``attempts`` calls, then raise the last failure."""
    retrying = retry(
        retry=retry_if_exception_type(retryable),
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=FIRST_WAIT_S, max=LONGEST_WAIT_S),
        reraise=True,
        sleep=sleep,
    )
    return retrying(call)()
