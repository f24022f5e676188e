"""Settling: every signal without a final outcome is looked up at its broker until it has one.

Two kinds of rows are unsettled (DESIGN.md, "Final or retryable"):

* in flight (``received``, ``placing``) for longer than any request runs: a crash (``kill -9``,
  a lost machine, a drain window that ran out) cut its request off;
* ``unknown``: the order was sent and every answer and look-up was lost.

Each is looked up by its client order id. Found, the journal records the broker's truth (a
final outcome), the observers hear of it and the broker's cached balance is dropped. Absent, it
depends on whether the order can still appear: a signal cut off before ``placing`` never sent
one, so it is retryable at once; a sent one is retryable only once it has been absent for
``absent_after_s`` (Binance may execute an order whose answer timed out seconds later), and
stays pending (a repeat answers 202) until then. A look-up that fails decides nothing: the row
stays for the next pass. Nothing is ever re-sent from here: a retryable signal is placed when
TradingView (or the trader) sends it again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from ordergate.pipeline.errors import BrokerError, BrokerUnavailable, OrdergateError, OrderOutcomeUnknown
from ordergate.pipeline.journal import IN_FLIGHT, PLACING, RUNNING, UNKNOWN, Entry, Journal
from ordergate.pipeline.runner import Outcome, Runner
from ordergate.pipeline.signal import Order, Placement, Signal, client_order_id, normalize_symbol

log = logging.getLogger("ordergate")  # its lines are for people: `# pragma: no mutate` on each

INTERRUPTED = "Interrupted before an order was placed: sending the signal again places it"
UNKNOWN_REASON = "Order status unknown: it is being checked with the broker"

Observe = Callable[[Outcome], None]


class Answers(Protocol):
    """How a settled row is answered from now on (``ordergate.answers.SETTLED``): the status and
    body the journal keeps, as the HTTP layer renders them."""

    def outcome(self, outcome: Outcome) -> tuple[int, dict[str, Any]]:
        """A found order's outcome."""
        ...

    def error(self, error: BrokerError, client_order_id: str) -> tuple[int, dict[str, Any]]:
        """No outcome: still unknown (``OrderOutcomeUnknown``) or retryable (``BrokerUnavailable``)."""
        ...


def absent_reason(client_order_id: str, seconds: float) -> str:
    return (
        f"Order not placed: the broker has no order {client_order_id} {seconds:.0f} s after it was sent; "
        "sending the signal again places it"
    )


def reconcile(
    journal: Journal,
    runners: Mapping[str, Runner],
    *,
    answers: Answers,
    older_than_s: float = 0.0,
    absent_after_s: float = 120.0,
    observe: Observe | None = None,
    clock: Callable[[], float] = time.time,
) -> int:
    """Settle what can be settled now; return how many rows got a final or retryable outcome.

    ``runners`` maps each route's name to its runner (``Service.runners``): a row's route is
    looked up there, its broker asked; ``answers`` renders what the journal keeps.

    ``older_than_s`` guards rows in flight: with replicas sharing PostgreSQL another replica's
    signals are in flight for a moment, never for a minute. ``unknown`` rows have answered
    already, so they are looked up at any age.
    """
    now = clock()
    settled = 0
    for entry in journal.unsettled():
        if entry.status in RUNNING and entry.received_at > now - older_than_s:
            continue
        try:
            if _settle(journal, runners, entry, now, absent_after_s, answers, observe):
                settled += 1
        except OrdergateError as exc:
            log.warning("Signal %s still unsettled: %s", entry.id, exc)  # pragma: no mutate
    if settled:
        log.info("Settled %d signal(s) from the brokers' records", settled)  # pragma: no mutate
    return settled


def _settle(
    journal: Journal,
    runners: Mapping[str, Runner],
    entry: Entry,
    now: float,
    absent_after_s: float,
    answers: Answers,
    observe: Observe | None,
) -> bool:
    runner = runners.get(entry.route)
    payload = entry.payload or {}
    symbol = normalize_symbol(str(payload.get("symbol", "")))
    market = runner.route.broker.market(symbol) if runner is not None and symbol else None
    cid = entry.client_order_id or client_order_id(entry.route, payload, entry.id)
    if runner is None or market is None:
        # Nothing to look the order up with (the route or the symbol is gone from the config).
        reason = INTERRUPTED if entry.status == IN_FLIGHT else f"The order {cid} cannot be looked up any more"
        return _retryable(journal, entry, reason, cid, answers)
    broker = runner.route.broker
    try:
        placement = broker.find_order(cid, market.symbol)
    except OrdergateError:
        if entry.status == IN_FLIGHT:  # cut off before placing: no order was ever sent
            return _retryable(journal, entry, INTERRUPTED, cid, answers)
        raise
    if placement is not None:
        _found(journal, entry, runner.route, placement, answers, observe)
        return True
    if entry.status == IN_FLIGHT:
        return _retryable(journal, entry, INTERRUPTED, cid, answers)
    age = now - entry.received_at
    if age >= absent_after_s:
        return _retryable(journal, entry, absent_reason(cid, age), cid, answers)
    if entry.status == PLACING:  # its request died while sending: say so until it is settled
        http, body = answers.error(OrderOutcomeUnknown(UNKNOWN_REASON), cid)
        _record(journal, entry, UNKNOWN, http, body, cid, expected=PLACING)
    return False


def _found(
    journal: Journal, entry: Entry, route: Any, placement: Placement, answers: Answers, observe: Observe | None
) -> None:
    """The broker has the order: record it as the final outcome, drop the stale balance, tell."""
    signal = Signal(
        id=entry.id,
        route=entry.route,
        payload=entry.payload or {},
        received_at=entry.received_at,
        order=Order(
            symbol=placement.symbol,
            side=placement.side,
            type=placement.type,
            quantity=placement.quantity,
            price=placement.price,
            client_order_id=placement.client_order_id,
        ),
        placement=placement,
    )
    outcome = Outcome.of_placement(signal, route, (), placement)
    http, full = answers.outcome(outcome)
    body = {k: v for k, v in full.items() if k != "trace"}
    if not _record(
        journal,
        entry,
        outcome.status,
        http,
        body,
        placement.client_order_id,
        expected=entry.status,
        order_id=placement.order_id,
    ):
        return  # another replica settled it first
    log.info("Signal %s settled: order %s is %s", entry.id, placement.order_id, placement.status)  # pragma: no mutate
    route.broker.forget_balance()
    if observe is not None:
        observe(outcome)


def _retryable(journal: Journal, entry: Entry, reason: str, cid: str, answers: Answers) -> bool:
    http, body = answers.error(BrokerUnavailable(reason), cid)
    if _record(journal, entry, "error", http, body, cid, expected=entry.status):
        log.info("Signal %s: no order at the broker; a repeat places it", entry.id)  # pragma: no mutate
    return True


def _record(
    journal: Journal,
    entry: Entry,
    status: str,
    http: int,
    body: dict[str, Any],
    cid: str,
    *,
    expected: str,
    order_id: str | int | None = None,
) -> bool:
    return journal.finish(
        entry.id,
        status=status,
        http_status=http,
        response={**body, "recovered": True, "signalId": entry.id},
        client_order_id=cid,
        broker_order_id=order_id,
        expected_status=expected,
    )
