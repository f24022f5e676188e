"""Notifications end to end: the real app, apprise, and a real HTTP receiver on loopback."""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from falcon import testing

from ordergate.app import OrdergateApp, create_app
from ordergate.config import Settings, load_settings, read_yaml, validate
from ordergate.notifications import NotificationDispatcher, dispatcher
from ordergate.pipeline.errors import ConfigError, OrderOutcomeUnknown
from ordergate.pipeline.runner import Outcome, Runner
from ordergate.pipeline.signal import Placement
from ordergate.stages.balance import BalanceCheck
from ordergate.stages.execute import OrderExecution
from ordergate.stages.notify import OutcomeNotifier, notice
from ordergate.stages.notional import NotionalCheck
from ordergate.stages.precision import PrecisionRounding
from ordergate.stages.schema import SchemaCheck
from ordergate.stages.whitelist import SymbolWhitelist
from tests.conftest import CONFIG_DIR, SEED_ERRORS, SEED_ORDERS, raw_json
from tests.test_stages import BTC, MALFORMED, RESTING, TOO_SMALL, build, crypto_broker, raw, route_for

FILLED_ORDER = SEED_ORDERS[0]  # BUY 0.001 BTCUSDT MARKET on BINANCE
BROKE_ORDER = SEED_ERRORS[2][0]  # BUY 10 BTCUSDT: Insufficient balance
FILLED_LINE = "BUY 0.001 BTCUSDT filled @ 43,500 — BINANCE development (paper)"
BROKE_LINE = "BUY 10 BTCUSDT rejected: Insufficient balance (balance) — BINANCE development (paper)"
WAIT_S = 10.0  # a bound for waits that end much sooner; never a timing assertion


# -- a real receiver ---------------------------------------------------------------------------


class Receiver:
    """An HTTP server on a free loopback port that records the JSON bodies apprise posts.

    With ``hold`` set, each request waits for :attr:`release` before it is answered: a receiver
    as slow as the test wants.
    """

    def __init__(self, *, hold: bool = False) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.arrived = threading.Event()  # a request reached the handler
        self.release = threading.Event()
        if not hold:
            self.release.set()
        self._got = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.arrived.set()
                receiver.release.wait(WAIT_S)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                with receiver._got:
                    receiver.bodies.append(json.loads(data))
                    receiver._got.notify_all()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def url(self, path: str = "hook", auth: str = "") -> str:
        return f"json://{auth}127.0.0.1:{self.port}/{path}"

    def messages(self) -> list[str]:
        return [b["message"] for b in self.bodies]

    def wait_for(self, count: int) -> list[dict[str, Any]]:
        with self._got:
            self._got.wait_for(lambda: len(self.bodies) >= count, WAIT_S)
            return list(self.bodies)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed): a receiver that is down."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- the app with notify targets ----------------------------------------------------------------


def fresh_settings(tmp_path: Path, name: str) -> Settings:
    """The shipped development settings, each with a journal of its own (no duplicate detection across)."""
    return load_settings("development", CONFIG_DIR, environ={"ORDERGATE_DB": str(tmp_path / f"{name}.db")})


@contextmanager
def app_notifying(settings: Settings, targets: list[dict[str, Any]]) -> Iterator[testing.TestClient]:
    """The real app whose crypto chain's ``notify`` stage has ``targets``."""
    crypto = settings.data["pipelines"]["crypto"]
    settings.data["pipelines"]["crypto"] = [
        {"notify": {"targets": targets, "outcomes": []}} if entry == "notify" or "notify" in entry else entry
        for entry in crypto
    ]
    app: OrdergateApp = create_app(settings)
    try:
        yield testing.TestClient(app)
    finally:
        app.journal.close()


@pytest.fixture(autouse=True)
def _quiet_dispatcher() -> Iterator[None]:
    """Every test starts and ends with nothing queued in the process's dispatcher."""
    dispatcher().close(WAIT_S)
    yield
    assert dispatcher().close(WAIT_S), "notifications still queued at the end of the test"


def post(client: testing.TestClient, payload: dict[str, Any]) -> testing.Result:
    return client.simulate_post("/webhook", body=raw_json(payload), headers={"Content-Type": "text/plain"})


def comparable(body: dict[str, Any]) -> dict[str, Any]:
    """An answer without what differs between two runs of the same signal (ids, microseconds)."""
    volatile = {"signalId", "orderId", "clientOrderId", "trace"}
    kept = {k: v for k, v in body.items() if k not in volatile}
    kept["trace"] = [(s["stage"], s["outcome"]) for s in body["trace"]]
    return kept


def counts(event: str, kind: str = "json") -> int:
    return dispatcher().counters.snapshot()[event].get(kind, 0)


# -- (a) what reaches the receiver ------------------------------------------------------------


def test_a_fill_and_a_rejection_reach_the_receiver(tmp_path: Path) -> None:
    with Receiver() as receiver, app_notifying(fresh_settings(tmp_path, "a"), [{"urls": receiver.url()}]) as client:
        sent = counts("sent")
        assert post(client, FILLED_ORDER).status_code == 200
        assert post(client, BROKE_ORDER).status_code == 422
        assert dispatcher().flush(WAIT_S)
        bodies = receiver.wait_for(2)
    # sent by a pool of workers: they may arrive in either order
    assert sorted((b["title"], b["message"], b["type"]) for b in bodies) == [
        ("ordergate: BINANCE filled", FILLED_LINE, "success"),
        ("ordergate: BINANCE rejected", BROKE_LINE, "warning"),
    ]
    # The counter is the process's: a request of an earlier test still finishing under load may
    # add its own delivery. What reached this receiver is asserted exactly above.
    assert counts("sent") >= sent + 2


def test_urls_may_be_a_comma_separated_string_or_a_list(tmp_path: Path) -> None:
    with Receiver() as one, Receiver() as two:
        targets: list[dict[str, Any]] = [{"urls": f"{one.url()}, {two.url()}"}, {"urls": [two.url("second")]}]
        with app_notifying(fresh_settings(tmp_path, "urls"), targets) as client:
            post(client, FILLED_ORDER)
            assert dispatcher().flush(WAIT_S)
        assert one.messages() == [FILLED_LINE]
        assert len(two.wait_for(2)) == 2
        assert two.messages() == [FILLED_LINE, FILLED_LINE]


@pytest.mark.parametrize("urls", ["", None, [], "  "])
def test_an_empty_urls_is_no_target(tmp_path: Path, urls: Any) -> None:
    with app_notifying(fresh_settings(tmp_path, "empty"), [{"urls": urls}]) as client:
        assert post(client, FILLED_ORDER).status_code == 200
        assert dispatcher().pending == 0


# -- (b) a slow or down receiver changes nothing ----------------------------------------------


def reference_answer(tmp_path: Path, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """The answer of the shipped app, which has no notify target."""
    with app_notifying(fresh_settings(tmp_path, "reference"), []) as client:
        result = post(client, payload)
    return result.status_code, comparable(result.json)


@pytest.mark.parametrize("payload", [FILLED_ORDER, BROKE_ORDER], ids=["filled", "rejected"])
def test_a_slow_receiver_neither_delays_nor_changes_the_answer(tmp_path: Path, payload: dict[str, Any]) -> None:
    expected = reference_answer(tmp_path, payload)
    with Receiver(hold=True) as receiver:
        with app_notifying(fresh_settings(tmp_path, "slow"), [{"urls": receiver.url()}]) as client:
            result = post(client, payload)
            # The answer is here while the receiver has not answered anything: observe() did not wait.
            assert receiver.bodies == []
            assert (result.status_code, comparable(result.json)) == expected
            receiver.release.set()
            assert dispatcher().flush(WAIT_S)
        assert len(receiver.messages()) == 1


def test_a_down_receiver_changes_nothing_and_is_counted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    expected = reference_answer(tmp_path, FILLED_ORDER)
    down = {"urls": f"json://127.0.0.1:{closed_port()}/hook", "attempts": 3, "backoff_s": Decimal("0.01")}
    caplog.set_level(logging.WARNING, logger="ordergate.notify")
    with app_notifying(fresh_settings(tmp_path, "down"), [down]) as client:
        failed, sent = counts("failed"), counts("sent")
        result = post(client, FILLED_ORDER)
        assert (result.status_code, comparable(result.json)) == expected
        assert dispatcher().flush(WAIT_S)
    assert (counts("failed"), counts("sent")) == (failed + 1, sent)
    assert any("Notification to json for signal" in m and "after 3 attempt(s)" in m for m in caplog.messages)


def test_a_full_queue_drops_with_a_warning_and_a_count(caplog: pytest.LogCaptureFixture) -> None:
    small = NotificationDispatcher(maxsize=1)
    with Receiver(hold=True) as receiver:
        notifier = notified_by(receiver.url())
        notifier.dispatcher = small
        broker = crypto_broker()
        outcome = chain(broker, notifier=None).run(raw(BTC))
        caplog.set_level(logging.WARNING, logger="ordergate.notify")
        notifier.observe(outcome)  # the worker takes it and waits on the receiver
        assert receiver.arrived.wait(WAIT_S)
        notifier.observe(outcome)  # queued: the queue is now full
        notifier.observe(outcome)  # dropped
        assert small.counters.snapshot()["dropped"] == {"json": 1}
        assert any("Notification queue full (1)" in m for m in caplog.messages)
        receiver.release.set()
        assert small.close(WAIT_S)
        assert len(receiver.wait_for(2)) == 2
    assert small.counters.snapshot()["sent"] == {"json": 2}


def test_close_drops_what_it_could_not_send_and_a_later_submit_starts_again() -> None:
    small = NotificationDispatcher()
    events: list[tuple[str, str]] = []
    small.listeners.append(lambda event, kind: events.append((event, kind)))
    with Receiver(hold=True) as receiver:
        notifier = notified_by(receiver.url())
        notifier.dispatcher = small
        outcome = chain(crypto_broker(), notifier=None).run(raw(BTC))
        notifier.observe(outcome)
        assert receiver.arrived.wait(WAIT_S)
        notifier.observe(outcome)
        assert not small.close(0.2)  # one is stuck at the receiver, one still queued
        assert ("dropped", "json") in events
        receiver.release.set()
        notifier.observe(outcome)
        assert small.close(WAIT_S)
        assert len(receiver.wait_for(2)) == 2


# -- (c) on: which outcomes each target receives ----------------------------------------------


def test_each_target_receives_only_its_outcomes(tmp_path: Path) -> None:
    with Receiver() as fills, Receiver() as refusals, Receiver() as everything:
        targets: list[dict[str, Any]] = [
            {"urls": fills.url(), "on": ["filled"]},
            {"urls": refusals.url(), "on": ["rejected", "error", "unknown"]},
            {"urls": everything.url()},
        ]
        with app_notifying(fresh_settings(tmp_path, "on"), targets) as client:
            post(client, FILLED_ORDER)
            post(client, BROKE_ORDER)
            post(client, {**SEED_ORDERS[1], "side": "buy", "price": 2000})  # a LIMIT under the market rests: open
            assert dispatcher().flush(WAIT_S)
        assert fills.messages() == [FILLED_LINE]
        assert refusals.messages() == [BROKE_LINE]
        assert [b["title"] for b in everything.wait_for(3)] == [
            "ordergate: BINANCE filled",
            "ordergate: BINANCE rejected",
            "ordergate: BINANCE open",
        ]


def test_a_bare_yaml_on_key_is_read_as_on(tmp_path: Path) -> None:
    # YAML 1.1 reads `on:` as the boolean true; the option still means what it says.
    path = tmp_path / "notify.yaml"
    path.write_text('targets: [{urls: "json://127.0.0.1:9/x", on: [filled, error]}]\n')
    options = read_yaml(path)
    assert True in options["targets"][0]
    notifier = OutcomeNotifier(validate(options, OutcomeNotifier.options_schema, file="notify.yaml"), route())
    assert [sorted(t.outcomes) for t in notifier.targets] == [["error", "filled"]]


@pytest.mark.parametrize(
    ("target", "path", "words"),
    [
        ({"urls": "json://x/y", "on": ["exploded"]}, "targets[0].on", "unallowed value"),
        ({"urls": "nope://S3cretT0ken/chat"}, "targets[0].urls", "apprise cannot use this nope:// URL"),
        ({"urls": ["json://x/y", "tgram://S3cretT0ken/"]}, "targets[0].urls", "this tgram:// URL"),
        ({"urls": "json://x/y", "attempts": 0}, "targets[0].attempts", "min value is 1"),
        ({"on": ["filled"]}, "targets[0].urls", "required field"),
    ],
)
def test_targets_are_checked_at_startup(
    target: dict[str, Any], path: str, words: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ConfigError, match=re.escape(f"test.yaml:OutcomeNotifier.{path}")) as raised:
        build(OutcomeNotifier, route(), targets=[target])
    assert words in str(raised.value)
    assert "S3cret" not in str(raised.value)
    assert "S3cret" not in caplog.text  # apprise's own "Unparseable URL" line is redacted


# -- (d) URL secrets never reach the logs -------------------------------------------------------


def test_url_secrets_never_reach_the_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, apprise's and urllib3's included, at their most talkative
    with Receiver() as receiver:
        targets: list[dict[str, Any]] = [
            {"urls": receiver.url("hook-S3cretPath", auth="user:S3cretPassw0rd@")},
            {
                "urls": f"json://user:S3cretDown@127.0.0.1:{closed_port()}/S3cretDownPath",
                "attempts": 2,
                "backoff_s": Decimal("0.01"),
            },
        ]
        with app_notifying(fresh_settings(tmp_path, "secrets"), targets) as client:
            post(client, FILLED_ORDER)
            post(client, SEED_ERRORS[0][0])
            assert dispatcher().flush(WAIT_S)
        assert len(receiver.wait_for(2)) == 2
    logged = caplog.text + "".join(r.exc_text or "" for r in caplog.records)
    assert "S3cret" not in logged
    assert "Notification to json for signal" in logged  # the failure is told, by scheme only
    assert counts("failed") >= 2


# -- the message ----------------------------------------------------------------------------


def route() -> Any:
    return route_for(crypto_broker())


def notified_by(url: str) -> OutcomeNotifier:
    notifier: OutcomeNotifier = build(OutcomeNotifier, route(), targets=[{"urls": url}])
    return notifier


def chain(broker: Any, notifier: OutcomeNotifier | None) -> Runner:
    context = route_for(broker)
    stages = [
        ("schema", build(SchemaCheck, context)),
        ("whitelist", build(SymbolWhitelist, context)),
        ("precision", build(PrecisionRounding, context)),
        ("notional", build(NotionalCheck, context)),
        ("balance", build(BalanceCheck, context)),
        ("execute", build(OrderExecution, context)),
    ]
    return Runner(context, stages, [("notify", notifier)] if notifier else [])


@pytest.mark.parametrize(
    ("payload", "title", "line", "level"),
    [
        (BTC, "BINANCE filled", r"BUY 0\.001 BTCUSDT filled @ 43,500 — BINANCE test \(paper\)", "success"),
        (RESTING, "BINANCE open", r"BUY 0\.001 BTCUSDT open @ 40,000 \(order \d+\) — BINANCE test \(paper\)", "info"),
        (
            TOO_SMALL,
            "BINANCE rejected",
            r"BUY 0\.0001 BTCUSDT rejected: Order size too small \(notional\) — BINANCE test \(paper\)",
            "warning",
        ),
        (
            MALFORMED,
            "BINANCE rejected",
            r"signal rejected: Missing required field: quantity \(schema\) — BINANCE test \(paper\)",
            "warning",
        ),
    ],
)
def test_notice_reads_as_one_line(payload: dict[str, Any], title: str, line: str, level: str) -> None:
    told = notice(chain(crypto_broker(), notifier=None).run(raw(payload)))
    assert (told.title, told.level, told.signal_id) == (f"ordergate: {title}", level, "sig1")
    assert re.fullmatch(line, told.body), told.body


def test_notice_of_a_partial_fill_and_of_an_unknown_outcome() -> None:
    filled = chain(crypto_broker(), notifier=None).run(raw(BTC))
    assert filled.placement is not None
    partial = Placement(
        **{
            **filled.placement.__dict__,
            "status": "PARTIALLY_FILLED",
            "filled": Decimal("0.0004"),
            "average_price": Decimal("43512.5"),
        }
    )
    outcome = Outcome(filled.signal, filled.route, "filled", filled.trace, placement=partial)
    assert notice(outcome).body == "BUY 0.0004 of 0.001 BTCUSDT partially filled @ 43,512.5 — BINANCE test (paper)"
    unknown = Outcome(filled.signal, filled.route, "unknown", filled.trace, error=OrderOutcomeUnknown())
    told = notice(unknown)
    assert told.level == "failure"
    assert told.body == (
        "BUY 0.001 BTCUSDT unknown: Order status unknown: it is being checked with the broker; "
        f"client order id {filled.signal.require_order().client_order_id} — BINANCE test (paper)"
    )


def test_notify_urls_is_all_a_user_sets(tmp_path: Path) -> None:
    """The shipped configuration reads NOTIFY_URLS, for both pipelines, and /metrics counts deliveries."""
    with Receiver() as receiver:
        environ = {"ORDERGATE_DB": str(tmp_path / "env.db"), "NOTIFY_URLS": f"{receiver.url('env')}"}
        app = create_app(load_settings("development", CONFIG_DIR, environ=environ))
        try:
            client = testing.TestClient(app)
            post(client, SEED_ORDERS[0])
            post(client, SEED_ORDERS[3])
            bodies = receiver.wait_for(2)
            assert sorted(b["title"] for b in bodies) == ["ordergate: BINANCE filled", "ordergate: FLATTRADE filled"]
            assert dispatcher().flush(WAIT_S)
            text = client.simulate_get("/metrics").text
            assert 'ordergate_notifications_sent_total{target="json"}' in text
        finally:
            app.journal.close()
