"""The gateway: one signal's life — route, claim, run, finish, observe — in one place, and the
settling of the signals whose outcome came later (:meth:`Gateway.settle`).

The HTTP resource reads and authenticates a body, hands the payload to :meth:`Gateway.handle`
and renders what comes back: :class:`Ran` (this request owned the signal and ran its chain) or
:class:`Repeat` (another request owns the signal's id: its journal row). Refusals before any
route (no broker, an unknown one, a failed authentication) are journaled here and raised as
:class:`~ordergate.pipeline.errors.Rejection`; a journal that cannot be written is raised as
:class:`~ordergate.pipeline.errors.JournalUnavailable` before anything ran.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from ordergate.answers import SETTLED, outcome_answer, status_of
from ordergate.auth import RefusalBudget
from ordergate.compose import Service
from ordergate.metrics import Metrics
from ordergate.pipeline.errors import JournalUnavailable, Rejection
from ordergate.pipeline.journal import Entry, Journal
from ordergate.pipeline.recovery import reconcile
from ordergate.pipeline.runner import Outcome, Runner
from ordergate.pipeline.signal import Signal, given_id

log = logging.getLogger("ordergate")


def new_signal_id() -> str:
    """Time-ordered and unique: 11 hex digits of milliseconds + 10 random hex digits."""
    return f"{int(time.time() * 1000):011x}{secrets.token_hex(5)}"


SECRET_FIELDS = frozenset({"passphrase", "secret", "password", "token", "api_key", "apikey", "api_secret"})


def without_secrets(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload as the journal keeps it: everything but the fields that carry secrets."""
    return {k: v for k, v in payload.items() if k.lower() not in SECRET_FIELDS}


def idempotency_key(route: str, payload: dict[str, Any]) -> str | None:
    """``ROUTE:id`` for a signal that carries an ``id``: at most one execution per key."""
    given = given_id(payload)
    return f"{route}:{given}" if given is not None else None


def dedupe_keys(route: str, payload: dict[str, Any], received: float, window_s: int) -> tuple[str, str]:
    """For an id-less signal: its key in this window-long time bucket, and in the one before.

    Identical payloads (secrets aside) in one bucket share a key, so the journal's unique key
    lets one through; a repeat just past a bucket boundary finds the previous bucket's key.
    """
    canonical = json.dumps(without_secrets(payload), sort_keys=True, default=str)
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:32]
    bucket = int(received // window_s)
    return f"{route}:same:{digest}:{bucket}", f"{route}:same:{digest}:{bucket - 1}"


def route_of(service: Service, payload: Mapping[str, Any]) -> Runner:
    """The runner of the route the payload's ``broker`` names (a route name or alias, any case);
    a 400 ``Rejection`` when it names none."""
    broker = payload.get("broker")
    if not isinstance(broker, str) or not broker.strip():
        raise Rejection("Missing required field: broker", kind="invalid", code="invalid_payload")
    runner = service.runner_for(broker)
    if runner is None:
        raise Rejection(f"Unknown broker: {broker.strip()[:64]}", kind="invalid", code="unknown_broker")
    return runner


@dataclass(frozen=True)
class Ran:
    """This request owned the signal: the chain's outcome, and the answer the journal keeps."""

    outcome: Outcome
    http_status: int
    body: dict[str, Any]


@dataclass(frozen=True)
class Repeat:
    """Another request owns the signal's id: its journal row, final, pending or retryable."""

    first: Entry


Result = Ran | Repeat


class Gateway:
    """Owns a signal from its payload to its outcome: the journal is written before any stage
    runs and after the last; metrics hear of every outcome."""

    def __init__(
        self,
        service: Service,
        journal: Journal,
        metrics: Metrics,
        *,
        duplicate_wait_s: float,
        refusals: RefusalBudget | None = None,
    ) -> None:
        self.service = service
        self.journal = journal
        self.metrics = metrics
        self.duplicate_wait_s = duplicate_wait_s
        self.refusals = refusals or RefusalBudget(60)

    def handle(self, signal_id: str, payload: dict[str, Any], received: float) -> Result:
        """Route, dedupe, claim, run and finish one authenticated signal."""
        try:
            runner = route_of(self.service, payload)
        except Rejection as rejection:
            broker = payload.get("broker")
            named = broker.strip()[:64] if isinstance(broker, str) and broker.strip() else "?"
            self.refuse(signal_id, named, rejection)
        route_name = runner.route.name
        key = idempotency_key(route_name, payload)
        window = runner.route.dedupe_window_s
        if key is None and window:
            key, previous_key = dedupe_keys(route_name, payload, received, window)
            previous = self.journal.find_by_key(previous_key)
            if previous is not None and received - previous.received_at < window and not previous.retryable:
                return self._repeat(previous)
        payload_kept = without_secrets(payload)
        holder: Entry | None = None
        for _ in range(3):  # a copy that waited for a retryable outcome tries to run it again
            try:
                holder = self.journal.claim(signal_id, route_name, payload_kept, key, received)
            except JournalUnavailable as exc:
                # Nothing was placed and nothing recorded: 503, so TradingView's retry is safe. The
                # journal logged the failure once; each refused signal gets one short line.
                log.warning("Signal %s refused before any stage: journal unavailable (%s)", signal_id, exc.reason)
                raise
            if holder is None:
                signal = Signal(id=signal_id, route=route_name, payload=payload, received_at=received)
                return self._run(runner, signal)
            holder = self.journal.wait_finished(holder.id, self.duplicate_wait_s) or holder
            if not holder.retryable:
                break
        assert holder is not None
        return self._repeat(holder)

    def _run(self, runner: Runner, signal: Signal) -> Ran:
        """This request owns the signal's id: run the chain, record the outcome."""
        outcome = runner.run(signal, placing=self._placing)
        status, body = outcome_answer(outcome)
        self._finish(outcome, status, body)
        self.metrics.observe(outcome)
        return Ran(outcome, status, body)

    def _placing(self, signal: Signal) -> None:
        self.journal.placing(signal.id, signal.require_order().client_order_id)

    def _repeat(self, first: Entry) -> Repeat:
        self.metrics.count(first.route, "duplicate")
        if first.pending or first.response is None:
            log.info("Repeat of signal %s, still %s: placing nothing", first.id, first.status)
        else:
            log.info("Duplicate of signal %s: answering its outcome, placing nothing", first.id)
        return Repeat(first)

    def unauthorized(self, signal_id: str, client: str | None, peer: str | None = None) -> NoReturn:
        """401, journaled without the payload (it may hold a guessed secret)."""
        # the connection's own address too: behind a proxy, what auth.trusted_proxies must hold
        via = f" (connection from {peer})" if peer and peer != client else ""
        body = {"success": False, "error": "Unauthorized", "signalId": signal_id}
        self.metrics.count("?", "unauthorized")
        if self._noted():
            log.warning("Unauthorized signal from %s%s", client or "unknown address", via)
            self.journal.record(signal_id, "?", "unauthorized", 401, body)
        raise Rejection("Unauthorized", kind="unauthorized", code="unauthorized")

    def refuse(self, signal_id: str, route_name: str, rejection: Rejection) -> NoReturn:
        """A refusal before any route: counted, journaled (within the budget), raised."""
        body = {"success": False, "error": rejection.reason, "code": rejection.code, "signalId": signal_id}
        self.metrics.count("?", "rejected", stage="route", reason=rejection.code or "invalid")
        if self._noted():
            self.journal.record(signal_id, route_name, "rejected", status_of(rejection), body)
        raise rejection

    def _noted(self) -> bool:
        """Whether this refusal before any route is journaled and logged (see RefusalBudget)."""
        noted = self.refusals.allow()
        report = self.refusals.left_out()
        if report is not None:
            log.warning(
                "%d requests refused before any route in the last %.0f s were counted in /metrics but not"
                " journaled or logged one by one (journal.refusals_per_minute)",
                *report,
            )
        return noted

    def settle(self, older_than_s: float) -> int:
        """Settle unknown orders, and signals in flight for over ``older_than_s``, from the
        brokers' records (see ordergate.pipeline.recovery); each found order is observed."""
        absent_after_s = float(self.service.settings.data["journal"]["absent_after_s"])
        return reconcile(
            self.journal,
            self.service.runners,
            older_than_s=older_than_s,
            absent_after_s=absent_after_s,
            answers=SETTLED,
            observe=self.observe_settlement,
        )

    def observe_settlement(self, outcome: Outcome) -> None:
        """An order found at the broker after the answer: notify and count it as any outcome."""
        self.metrics.settled(outcome)
        runner = self.service.runners.get(outcome.route.name)
        if runner is not None:
            runner.observe(outcome)

    def _finish(self, outcome: Outcome, http_status: int, body: dict[str, Any]) -> None:
        order = outcome.signal.order
        placement = outcome.placement
        try:
            self.journal.finish(
                outcome.signal.id,
                status=outcome.status,
                http_status=http_status,
                response=body,
                client_order_id=order.client_order_id if order else None,
                broker_order_id=placement.order_id if placement else None,
                trace=[s.as_dict() for s in outcome.trace],
            )
        except JournalUnavailable as exc:  # the order stands; answer it truthfully, the reconciler settles the row
            log.error(
                "Journal write failed for signal %s (%s); its outcome is %s",
                outcome.signal.id,
                exc.reason,
                outcome.status,
            )
        except Exception:
            log.exception("Journal write failed for signal %s; its outcome is %s", outcome.signal.id, outcome.status)
