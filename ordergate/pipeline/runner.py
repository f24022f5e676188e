"""The runner: a plain loop over a route's stages, with a trace and outcome observers."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, Protocol

from ordergate.pipeline.errors import BrokerAuthError, BrokerError, OrderOutcomeUnknown, Rejection
from ordergate.pipeline.money import to_decimal
from ordergate.pipeline.signal import Placement, Signal
from ordergate.pipeline.stage import RouteContext, Stage

log = logging.getLogger("ordergate")

Status = Literal["filled", "open", "rejected", "error", "unknown"]


@dataclass(frozen=True)
class Step:
    """One line of a trace: which stage, how it ended, how long it took."""

    stage: str
    outcome: Literal["ok", "rejected", "error"]
    micros: int

    def as_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "outcome": self.outcome, "us": self.micros}


# A placement the broker ended without a fill: no position, no spend. The order exists (final),
# but the trader's intent was not carried out, so it is no success (Binance: a spot MARKET order
# meeting no liquidity is EXPIRED; a post-only order that would take is EXPIRED; FlatTrade's RMS
# REJECTS after "Ok"; an order canceled before any fill).
ENDED_UNFILLED = frozenset({"REJECTED", "CANCELED", "EXPIRED", "EXPIRED_IN_MATCH"})


def placement_status(placement: Placement) -> Status:
    """The outcome a placement is: ``filled`` (any fill), ``open`` (resting), or ``rejected``
    (the broker ended it with nothing filled)."""
    if placement.filled > 0 or placement.status in ("FILLED", "PARTIALLY_FILLED"):
        return "filled"
    if placement.status in ENDED_UNFILLED:
        return "rejected"
    return "open"


def unfilled(placement: Placement) -> Rejection:
    """Why a placement that ended without a fill is no success, in the trader's words."""
    return Rejection(
        f"The broker ended order {placement.order_id} as {placement.status}: nothing was filled",
        code=f"order_{placement.status.lower()}",
    )


@dataclass(frozen=True)
class Outcome:
    """How one signal ended; the HTTP layer renders it (``ordergate.answers``), the journal keeps
    that answer, the observers hear of it."""

    signal: Signal
    route: RouteContext
    status: Status
    trace: tuple[Step, ...]
    placement: Placement | None = None
    rejection: Rejection | None = None
    error: BrokerError | None = None
    fault: BaseException | None = field(default=None, repr=False)

    @classmethod
    def of_placement(
        cls, signal: Signal, route: RouteContext, trace: tuple[Step, ...], placement: Placement
    ) -> Outcome:
        """The outcome of a placement the broker answered: filled, open, or ended unfilled."""
        status = placement_status(placement)
        rejection = unfilled(placement) if status == "rejected" else None
        return cls(signal, route, status, trace, placement=placement, rejection=rejection)

    @property
    def reason(self) -> str | None:
        """Why the signal did not become an order, in words safe to show the trader."""
        if self.rejection is not None:
            return self.rejection.reason
        if self.error is not None:
            return self.error.message
        if self.fault is not None:
            return "Internal error"
        return None

    @property
    def failed_stage(self) -> str | None:
        return next((s.stage for s in self.trace if s.outcome != "ok"), None)


# A signal's time outside these years is no clock's reading: a typo, an overflow, a hostile value.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC).timestamp()
LATEST = datetime(2100, 1, 1, tzinfo=UTC).timestamp()
TIME_FORMS = "an ISO 8601 time such as 2026-11-25T01:00:00Z, or epoch seconds or milliseconds, between 2000 and 2100"


def signal_time(value: object) -> float | None:
    """Seconds since the epoch from ``{{timenow}}`` (``2026-11-25T01:00:00Z``) or epoch s / ms.

    None when unreadable, or not a time between 2000 and 2100 (``1e999999``, ``-1e999999``,
    the year 2999): such a time is never compared with the clock, nor used as one.
    """
    number = to_decimal(value)
    if number is not None:
        seconds = number / 1000 if number > 10**11 else number
        return float(seconds) if EARLIEST <= seconds < LATEST else None
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        stamp = (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
    except (ValueError, OverflowError, OSError):
        return None
    return stamp if EARLIEST <= stamp < LATEST else None


def stale(signal: Signal, max_age_s: int | None, max_future_s: int = 5) -> Rejection | None:
    """A rejection when the signal's ``time`` is unreadable or absurd (400), more than
    ``max_future_s`` ahead of this server's clock (422), or older than ``max_age_s`` (422).

    A route without ``max_age_s`` needs no ``time`` and does not judge its age, but a ``time``
    that is given must still be one, and not from the future: it is journaled and shown as when
    the signal was sent.
    """
    raw = signal.payload.get("time")
    if raw is None:
        if max_age_s is None:
            return None
        return Rejection(
            f"Missing required field: time (this route refuses signals over {max_age_s} s old)",
            kind="invalid",
            code="invalid_payload",
        )
    sent = signal_time(raw)
    if sent is None:
        shown = str(raw) if len(str(raw)) <= 40 else f"{str(raw)[:37]}..."
        return Rejection(f"Invalid time: {shown!r} is not {TIME_FORMS}", kind="invalid", code="invalid_payload")
    age = signal.received_at - sent
    if -age > max_future_s:
        return Rejection(
            f"Signal from the future: its time is {-age:.0f} s ahead of this server's clock"
            f" (allowed skew {max_future_s} s)",
            code="future_signal",
        )
    if max_age_s is not None and age > max_age_s:
        return Rejection(f"Signal too old: sent {age:.0f} s ago, the limit is {max_age_s} s", code="stale_signal")
    return None


class Observer(Protocol):
    """A chain entry that watches outcomes instead of checking signals (e.g. ``notify``).

    It sees every outcome, fills, rejections and faults alike, after the chain has run; an
    observer that raises is logged and cannot change the outcome.
    """

    options_schema: ClassVar[dict[str, Any]]
    requires: ClassVar[tuple[str, ...]]
    observer: ClassVar[bool]

    def observe(self, outcome: Outcome) -> None: ...


class Runner:
    """Runs one route's chain: ``stages`` in order, then every observer on the outcome."""

    def __init__(
        self,
        route: RouteContext,
        stages: Sequence[tuple[str, Stage]],
        observers: Sequence[tuple[str, Observer]] = (),
        declared: Sequence[str] | None = None,
    ) -> None:
        self.route = route
        self.declared = tuple(declared) if declared is not None else None
        self.stages = tuple(stages)
        self.observers = tuple(observers)
        self.execute_at = next((i for i, (n, _) in enumerate(self.stages) if n == "execute"), None)

    @property
    def names(self) -> list[str]:
        """Every entry of the chain, as the YAML declares it (for ``ordergate check``); a stage
        switched off with ``enabled: false`` (dropped when the chain was built) is marked ``(off)``."""
        if self.declared is not None:
            return list(self.declared)
        staged = [n if getattr(s, "enabled", True) else f"{n} (off)" for n, s in self.stages]
        return staged + [n for n, _ in self.observers]

    def run(self, signal: Signal, placing: Callable[[Signal], None] | None = None) -> Outcome:
        """Run the chain on ``signal``; every outcome, faults included, reaches the observers.

        ``placing`` is called just before ``execute`` (the journal marks that the order may exist
        from then on); if it fails, nothing is sent and the outcome is a retryable error: its
        own 503 when it raises a BrokerError (the journal's JournalUnavailable), else a 500.

        No lock is held while the stages run. Funds the ``balance`` stage reserved are settled
        here, the one place every outcome passes (faults and interruptions included), once the
        placement has ended, and before the observers (a slow notification holds no funds).
        """
        refusal = self._refusal(signal)
        if isinstance(refusal, Rejection):
            return self.observe(Outcome(signal, self.route, "rejected", (), rejection=refusal))
        if refusal is not None:
            return self.observe(Outcome(signal, self.route, "error", (), error=refusal))
        try:
            outcome = self._run_stages(signal, placing)
        except BaseException:  # the stages catch every Exception: this is an interruption
            self._settle(signal.id, None)
            raise
        self._settle(signal.id, outcome)
        return self.observe(outcome)

    def _settle(self, signal_id: str, outcome: Outcome | None) -> None:
        """End ``signal_id``'s reservation: first the broker forgets a cached balance the order may
        have moved (unless it filled whole: adapters count a full fill into their cache), so that
        a balance read after the reservation is gone includes the order."""
        reached = outcome is None or any(step.stage == "execute" for step in outcome.trace)
        whole = outcome is not None and outcome.placement is not None and outcome.placement.status == "FILLED"
        try:
            if reached and not whole:
                self.route.broker.forget_balance()
        finally:
            try:
                self.route.reservations.release(signal_id)
            except Exception:  # the hold expires on its own; the outcome stands
                log.exception("Could not settle the reservation of signal %s", signal_id)

    def _run_stages(self, signal: Signal, placing: Callable[[Signal], None] | None) -> Outcome:
        trace: list[Step] = []
        outcome: Outcome | None = None
        clock = time.perf_counter_ns
        for index, (name, stage) in enumerate(self.stages):
            started = clock()
            if index == self.execute_at and placing is not None:
                try:
                    placing(signal)
                except BrokerError as error:  # the journal cannot be written (503): nothing was sent
                    trace.append(Step(name, "error", (clock() - started) // 1000))
                    log.error("Signal %s not placed: %s", signal.id, error.message)
                    outcome = Outcome(signal, self.route, "error", tuple(trace), error=error)
                    break
                except Exception as exc:  # nothing was sent: a 5xx, so a repeat may run again
                    trace.append(Step(name, "error", (clock() - started) // 1000))
                    log.exception("Could not record that signal %s is being placed; nothing was sent", signal.id)
                    outcome = Outcome(signal, self.route, "error", tuple(trace), fault=exc)
                    break
            try:
                result = stage(signal)
            except Rejection as rejection:
                trace.append(Step(name, "rejected", (clock() - started) // 1000))
                rejection.stage = rejection.stage or name
                outcome = Outcome(signal, self.route, "rejected", tuple(trace), rejection=rejection)
                break
            except OrderOutcomeUnknown as unknown:
                trace.append(Step(name, "error", (clock() - started) // 1000))
                outcome = Outcome(signal, self.route, "unknown", tuple(trace), error=unknown)
                break
            except BrokerError as error:
                trace.append(Step(name, "error", (clock() - started) // 1000))
                outcome = Outcome(signal, self.route, "error", tuple(trace), error=error)
                break
            except Exception as exc:  # a fault in our own code: never let it pass silently
                trace.append(Step(name, "error", (clock() - started) // 1000))
                log.exception("Stage %s failed on signal %s", name, signal.id)
                if self.execute_at is not None and index >= self.execute_at:
                    # The order may exist: answer "unknown" (never 5xx) so it is looked up, not re-sent.
                    outcome = Outcome(
                        signal, self.route, "unknown", tuple(trace), error=OrderOutcomeUnknown(), fault=exc
                    )
                else:
                    outcome = Outcome(signal, self.route, "error", tuple(trace), fault=exc)
                break
            trace.append(Step(name, "ok", (clock() - started) // 1000))
            signal = result
            if signal.placement is not None:
                outcome = Outcome.of_placement(signal, self.route, tuple(trace), signal.placement)
        if outcome is None:  # a chain without execute: every check passed, nothing was placed
            outcome = Outcome(
                signal,
                self.route,
                "rejected",
                tuple(trace),
                rejection=Rejection("No execute stage: the signal passed every check", code="dry_run"),
            )
        return outcome

    def _refusal(self, signal: Signal) -> Rejection | BrokerError | None:
        """What refuses a signal before any stage: the live guard, missing keys, its age."""
        if self.route.live_blocked:
            return Rejection(
                "Live trading is disabled in this environment: set ORDERGATE_ENV=live and LIVE_TRADING=yes"
                f" to trade real money on {self.route.name}",
                code="live_trading_disabled",
            )
        if self.route.broker.missing_credentials:
            return BrokerAuthError(f"API keys not configured for {self.route.name}", broker=self.route.broker.name)
        session = self.route.broker.session_error()
        if session is not None:
            return session
        return stale(signal, self.route.max_age_s, self.route.max_future_s)

    def observe(self, outcome: Outcome) -> Outcome:
        """Log the seed's ERROR line and let every observer see the outcome; none can change it."""
        if outcome.placement is None or outcome.rejection is not None:
            log.info("ERROR: %s", outcome.reason)
        for name, observer in self.observers:
            try:
                observer.observe(outcome)
            except Exception:
                log.exception("Observer %s failed on signal %s; the outcome stands", name, outcome.signal.id)
        return outcome
