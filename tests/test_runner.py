"""The runner with real stages: the trace, where a chain stops, observers, and faults."""

from __future__ import annotations

import dataclasses
import logging
from decimal import Decimal
from typing import Any, ClassVar

import pytest

from ordergate.answers import answer_body, answer_status
from ordergate.brokers.paper import PaperBroker
from ordergate.compose import build_chain
from ordergate.pipeline.errors import BrokerUnavailable, OrderOutcomeUnknown
from ordergate.pipeline.runner import Outcome, Runner
from ordergate.pipeline.signal import Signal
from ordergate.pipeline.stage import Limits, RouteContext, Stage
from tests.conftest import CONFIG_DIR, ROOT

CRYPTO = [
    {"schema": {"file": "signal.schema.json"}},
    {"whitelist": {"quote_assets": ["USDT", "USDC", "BUSD"]}},
    {"precision": {"max_decimals": 8}},
    {"notional": {"min": 10}},
    "limits",
    "balance",
    "execute",
]
NAMES = ["schema", "whitelist", "precision", "notional", "limits", "balance", "execute"]
BTC = {"broker": "BINANCE", "symbol": "BTCUSDT", "side": "buy", "quantity": Decimal("0.001"), "type": "MARKET"}


def paper() -> PaperBroker:
    options = {
        "adapter": "paper",
        "market_type": "future",
        "markets": "markets/binance-spot.json",
        "balances": {"USDT": Decimal(10000)},
        "prices": {"BTCUSDT": Decimal(43500), "ETHUSDT": Decimal(2500)},
    }
    return PaperBroker.from_config("paper_binance", options, config_dir=CONFIG_DIR, file="test.yaml")


@pytest.fixture
def route() -> RouteContext:
    return RouteContext(
        name="BINANCE",
        label="Binance",
        broker=paper(),
        pipeline="crypto",
        environment="test",
        limits=Limits(max_orders_per_minute=100),
        schemas_dir=ROOT / "schemas",
    )


def chain(route: RouteContext, entries: list[Any] = CRYPTO) -> Runner:
    """The route's runner exactly as the registry builds it from YAML."""
    return build_chain("crypto", list(entries), route, {}, file="test.yaml")


def signal(**changes: Any) -> Signal:
    payload = {k: v for k, v in {**BTC, **changes}.items() if v is not None}
    return Signal(id="sig1", route="BINANCE", payload=payload, received_at=0.0)


def stages_of(runner: Runner) -> list[tuple[str, Stage]]:
    return list(runner.stages)


# Test stages and observers: small pieces of test code plugged into the runner's real loop.


class Exploding:
    """A stage (or observer) with a bug in it."""

    options_schema: ClassVar[dict[str, Any]] = {}
    requires: ClassVar[tuple[str, ...]] = ()
    observer: ClassVar[bool] = True

    def __init__(self, exc: BaseException | None = None) -> None:
        self.exc = exc or RuntimeError("KeyError: 'api_secret=abc123' in internal frame")

    def __call__(self, signal: Signal) -> Signal:
        raise self.exc

    def observe(self, outcome: Outcome) -> None:
        raise self.exc


class Recording:
    """An observer that keeps every outcome it is shown."""

    options_schema: ClassVar[dict[str, Any]] = {}
    requires: ClassVar[tuple[str, ...]] = ()
    observer: ClassVar[bool] = True

    def __init__(self) -> None:
        self.seen: list[Outcome] = []

    def observe(self, outcome: Outcome) -> None:
        self.seen.append(outcome)


# -- trace -----------------------------------------------------------------------------------


def test_trace_records_every_stage(route: RouteContext) -> None:
    outcome = chain(route).run(signal())
    assert outcome.status == "filled"
    assert answer_status(outcome) == 200
    assert [s.stage for s in outcome.trace] == NAMES
    assert {s.outcome for s in outcome.trace} == {"ok"}
    assert all(isinstance(s.micros, int) and s.micros >= 0 for s in outcome.trace)
    body = answer_body(outcome)
    assert body["trace"] == [{"stage": s.stage, "outcome": "ok", "us": s.micros} for s in outcome.trace]
    assert (body["success"], body["status"], body["symbol"], body["quantity"]) == (True, "FILLED", "BTCUSDT", "0.001")
    assert (body["clientOrderId"], body["signalId"]) == ("og-sig1", "sig1")
    assert outcome.failed_stage is None


def test_a_resting_limit_order_is_open(route: RouteContext) -> None:
    outcome = chain(route).run(signal(type="LIMIT", price=Decimal(40000)))
    assert (outcome.status, answer_status(outcome)) == ("open", 200)
    assert answer_body(outcome)["status"] == "NEW"


def test_notes_reach_the_body(route: RouteContext) -> None:
    outcome = chain(route).run(signal(quantity="0.0012345"))
    assert outcome.status == "filled"
    assert answer_body(outcome)["notes"] == ["quantity 0.0012345 truncated to 0.00123 (step 0.00001)"]
    assert answer_body(outcome)["quantity"] == "0.00123"


@pytest.mark.parametrize(
    ("changes", "stage", "status", "reason"),
    [
        ({"quantity": None}, "schema", 400, "Missing required field: quantity"),
        ({"symbol": "XYZABC"}, "whitelist", 422, "Invalid symbol"),
        ({"quantity": Decimal("0.123456789")}, "precision", 422, "Invalid quantity precision"),
        ({"quantity": Decimal("0.0001")}, "notional", 422, "Order size too small"),
        ({"quantity": Decimal(10)}, "balance", 422, "Insufficient balance"),
    ],
)
def test_a_rejection_stops_the_chain_and_names_the_stage(
    route: RouteContext, changes: dict[str, Any], stage: str, status: int, reason: str
) -> None:
    outcome = chain(route).run(signal(**changes))
    at = NAMES.index(stage)
    assert outcome.status == "rejected"
    assert [s.stage for s in outcome.trace] == NAMES[: at + 1]
    assert [s.outcome for s in outcome.trace] == ["ok"] * at + ["rejected"]
    assert outcome.failed_stage == stage
    assert outcome.rejection is not None
    assert outcome.rejection.stage == stage
    assert (answer_status(outcome), outcome.reason) == (status, reason)
    body = answer_body(outcome)
    assert (body["success"], body["error"], body["stage"]) == (False, reason, stage)
    assert route.broker.find_order("og-sig1", "BTCUSDT") is None


def test_rate_limit_rejection_is_429_at_limits(route: RouteContext) -> None:
    route = dataclasses.replace(route, limits=Limits(max_orders_per_minute=1))
    runner = chain(route)
    assert runner.run(signal()).status == "filled"
    outcome = runner.run(Signal(id="sig2", route="BINANCE", payload=BTC, received_at=0.0))
    assert (answer_status(outcome), outcome.failed_stage, answer_body(outcome)["code"]) == (
        429,
        "limits",
        "rate_limited",
    )


# -- observers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "status", "http"),
    [({}, "filled", 200), ({"quantity": Decimal("0.0001")}, "rejected", 422), ({"symbol": "XYZABC"}, "rejected", 422)],
)
def test_a_failing_observer_does_not_change_the_outcome(
    route: RouteContext, changes: dict[str, Any], status: str, http: int, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recording()
    runner = Runner(route, stages_of(chain(route)), [("boom", Exploding()), ("record", recorder)])
    outcome = runner.run(signal(**changes))
    assert (outcome.status, answer_status(outcome), outcome.fault) == (status, http, None)
    assert recorder.seen == [outcome]  # the next observer still ran, on the same outcome
    assert any("Observer boom failed on signal sig1; the outcome stands" in m for m in caplog.messages)


def test_observers_see_faults_too(route: RouteContext) -> None:
    recorder = Recording()
    stages = stages_of(chain(route))
    stages.insert(2, ("bug", Exploding()))
    Runner(route, stages, [("record", recorder)]).run(signal())
    assert [o.status for o in recorder.seen] == ["error"]


# -- faults ----------------------------------------------------------------------------------


@pytest.mark.parametrize("position", [0, 1, 2, 5, 6])
def test_a_fault_before_execute_is_an_error_500(route: RouteContext, position: int) -> None:
    stages = stages_of(chain(route))
    stages.insert(position, ("bug", Exploding()))
    outcome = Runner(route, stages).run(signal())
    assert (outcome.status, answer_status(outcome)) == ("error", 500)
    assert isinstance(outcome.fault, RuntimeError)
    assert [s.outcome for s in outcome.trace] == ["ok"] * position + ["error"]
    assert outcome.failed_stage == "bug"
    body = answer_body(outcome)
    assert (body["success"], body["error"], body["stage"]) == (False, "Internal error", "bug")
    assert "abc123" not in repr(body)  # no internals reach the sender
    assert route.broker.find_order("og-sig1", "BTCUSDT") is None


def test_a_fault_after_execute_is_unknown_202_never_5xx(route: RouteContext) -> None:
    outcome = Runner(route, [*stages_of(chain(route)), ("bug", Exploding())]).run(signal())
    assert (outcome.status, answer_status(outcome)) == ("unknown", 202)
    assert route.broker.find_order("og-sig1", "BTCUSDT") is not None  # right not to invite a re-send
    body = answer_body(outcome)
    assert (body["status"], body["clientOrderId"], body["stage"]) == ("unknown", "og-sig1", "bug")
    assert "abc123" not in repr(body)


def test_a_fault_inside_execute_is_unknown_202(route: RouteContext) -> None:
    # Built by hand without whitelist, so the real execute stage fails on a missing market.
    by_name = dict(stages_of(chain(route)))
    outcome = Runner(route, [("schema", by_name["schema"]), ("execute", by_name["execute"])]).run(signal())
    assert (outcome.status, answer_status(outcome), outcome.failed_stage) == ("unknown", 202, "execute")
    assert isinstance(outcome.fault, RuntimeError)
    assert isinstance(outcome.error, OrderOutcomeUnknown)
    assert outcome.reason == "Order status unknown: it is being checked with the broker"


@pytest.mark.parametrize(
    ("exc", "status", "http"),
    [
        (BrokerUnavailable("Binance is unreachable", broker="paper_binance"), "error", 503),
        (OrderOutcomeUnknown("Timed out placing the order", broker="paper_binance"), "unknown", 202),
    ],
)
def test_broker_errors_keep_their_status(
    route: RouteContext, exc: Exception, status: str, http: int, caplog: pytest.LogCaptureFixture
) -> None:
    stages = stages_of(chain(route))
    stages.insert(NAMES.index("execute"), ("broker", Exploding(exc)))
    outcome = Runner(route, stages).run(signal())
    assert (outcome.status, answer_status(outcome), outcome.reason) == (status, http, str(exc))
    assert outcome.fault is None
    assert not any(r.levelno >= logging.ERROR for r in caplog.records)  # expected, not a crash


def test_a_chain_without_execute_is_a_dry_run(route: RouteContext) -> None:
    outcome = chain(route, CRYPTO[:-1]).run(signal())
    assert outcome.status == "rejected"
    assert [s.stage for s in outcome.trace] == NAMES[:-1]
    assert {s.outcome for s in outcome.trace} == {"ok"}
    assert outcome.rejection is not None
    assert (outcome.rejection.code, outcome.reason) == ("dry_run", "No execute stage: the signal passed every check")
    assert answer_status(outcome) == 422
    assert outcome.failed_stage is None
    assert route.broker.find_order("og-sig1", "BTCUSDT") is None
    assert route.broker.free_balance("USDT") == Decimal(10000)


def test_runner_names_list_stages_then_observers(route: RouteContext) -> None:
    runner = chain(route, [*CRYPTO, "notify"])
    assert runner.names == [*NAMES, "notify"]
    assert [n for n, _ in runner.observers] == ["notify"]
