"""The HTTP shell: parse, run, render. ``create_app`` builds it; ``ordergate serve`` serves it."""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn

import falcon
from sqlalchemy.exc import SQLAlchemyError

from ordergate.admin import AdminToken, MetricsResource, ReadyResource, SignalsResource
from ordergate.auth import Gate, RefusalBudget
from ordergate.brokers.base import Broker
from ordergate.compose import Service, build_service
from ordergate.config import Settings
from ordergate.logs import signal_context
from ordergate.metrics import Metrics
from ordergate.pipeline.errors import BrokerError, JournalUnavailable, Rejection
from ordergate.pipeline.journal import UNKNOWN, Entry, Journal, database_url, describe_failure
from ordergate.pipeline.money import MAX_DIGITS, too_long
from ordergate.pipeline.recovery import reconcile
from ordergate.pipeline.reservations import ledger_for
from ordergate.pipeline.runner import Outcome, Runner
from ordergate.pipeline.signal import Signal, given_id
from ordergate.pipeline.text import json_text, shown_field, unstorable
from ordergate.redact import redacted_dumps

log = logging.getLogger("ordergate")

# Alert bodies are a few hundred bytes; this bounds how deep a hostile body may nest.
MAX_DEPTH = 32


def new_signal_id() -> str:
    """Time-ordered and unique: 11 hex digits of milliseconds + 10 random hex digits."""
    return f"{int(time.time() * 1000):011x}{secrets.token_hex(5)}"


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise Rejection(f"Invalid JSON: duplicate key {key[:40]!r}", status=400, code="duplicate_key")
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise Rejection(f"Invalid JSON: {name} is not a number", status=400, code="invalid_json")


def _number(text: str) -> Decimal:
    """A JSON number, exactly; one with more digits than any price or quantity has is refused,
    so no later step can round it (see money.MAX_DIGITS)."""
    value = Decimal(text)
    if too_long(value):
        shown = text if len(text) <= 24 else f"{text[:20]}..."
        reason = f"Invalid JSON: the number {shown} has more than {MAX_DIGITS} digits"
        raise Rejection(reason, status=400, code="number_too_long")
    return value


def _depth(value: Any, limit: int) -> int:
    stack = [(value, 1)]
    deepest = 0
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > limit:
            break
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
    return deepest


def _field(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _unstorable_text(value: Any, path: str = "") -> tuple[str, str] | None:
    """The first field (its path, e.g. ``legs[0].symbol``) whose name or text cannot be stored,
    and what it holds; None when every string can be. Depth is bounded before this runs."""
    if isinstance(value, str):
        problem = unstorable(value)
        return None if problem is None else (f'field "{shown_field(path)}"', problem)
    items: Any = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        where = _field(path, key)
        problem = unstorable(key) if isinstance(key, str) else None
        if problem is not None:
            return f'the name of field "{shown_field(where)}"', problem
        found = _unstorable_text(item, where)
        if found is not None:
            return found
    return None


def parse_body(raw: bytes) -> dict[str, Any]:
    """JSON whatever the Content-Type, numbers as Decimal; a clear 400 for anything else."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Rejection("Invalid body: not UTF-8 text", status=400, code="invalid_encoding") from None
    if not text.strip():
        raise Rejection("Empty body: send the alert message as JSON", status=400, code="empty_body")
    try:
        payload = json.loads(
            text, parse_float=_number, parse_int=_number, parse_constant=_no_constants, object_pairs_hook=_no_duplicates
        )
    except json.JSONDecodeError as exc:
        raise Rejection(
            f"Invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}", status=400, code="invalid_json"
        ) from None
    except (ValueError, RecursionError):  # e.g. an integer of more than 4300 digits, deep nesting
        reason = "Invalid JSON: a value is too large or too deeply nested"
        raise Rejection(reason, status=400, code="invalid_json") from None
    if not isinstance(payload, dict):
        raise Rejection("Invalid payload: expected a JSON object", status=400, code="not_an_object")
    if _depth(payload, MAX_DEPTH) > MAX_DEPTH:
        raise Rejection("Invalid payload: nested too deeply", status=400, code="too_deep")
    refuse_unstorable_text(payload)
    return payload


def refuse_unstorable_text(payload: dict[str, Any]) -> None:
    """A 400 naming the first field whose name or text holds a lone surrogate or NUL.

    JSON escapes can spell both; no UTF-8 text holds a lone surrogate and PostgreSQL refuses
    NUL, so either is refused before anything is journaled, answered or logged.
    """
    found = _unstorable_text(payload)
    if found is not None:
        where, problem = found
        raise Rejection(f"Invalid text in {where}: {problem}", status=400, code="invalid_text")


def _json(value: Any) -> str:
    return json_text(value)  # a row journaled before parse_body refused surrogates may hold one


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


class WebhookResource:
    """``POST /webhook``: one signal in, one outcome out, journaled before any stage runs."""

    def __init__(
        self,
        service: Service,
        max_body: int,
        journal: Journal,
        duplicate_wait_s: float,
        gate: Gate,
        metrics: Metrics,
        refusals: RefusalBudget | None = None,
    ) -> None:
        self.service = service
        self.max_body = max_body
        self.journal = journal
        self.duplicate_wait_s = duplicate_wait_s
        self.gate = gate
        self.metrics = metrics
        self.refusals = refusals or RefusalBudget(60)

    def on_post(self, req: falcon.Request, resp: falcon.Response, secret: str | None = None) -> None:
        signal_id = new_signal_id()
        with signal_context(signal_id):  # every log line of this signal carries its id
            self._handle(req, resp, signal_id, secret)

    def _handle(self, req: falcon.Request, resp: falcon.Response, signal_id: str, secret: str | None) -> None:
        received = time.time()
        client = self.gate.client_address(req.remote_addr, req.get_header(self.gate.header))
        if not self.gate.address_ok(client) or (secret is not None and not self.gate.secret_ok({}, secret)):
            self._unauthorized(signal_id, client, req.remote_addr)
        if req.content_length is not None and req.content_length > self.max_body:
            raise falcon.HTTPContentTooLarge(description=f"Body over {self.max_body} bytes")
        raw = req.bounded_stream.read(self.max_body + 1)
        if len(raw) > self.max_body:
            raise falcon.HTTPContentTooLarge(description=f"Body over {self.max_body} bytes")
        payload = parse_body(raw)
        if secret is None and not self.gate.secret_ok(payload, None):
            self._unauthorized(signal_id, client)
        broker = payload.get("broker")
        if not isinstance(broker, str) or not broker.strip():
            rejection = Rejection("Missing required field: broker", status=400, code="invalid_payload")
            self._refuse(signal_id, "?", rejection)
        runner = self.service.runner_for(broker)
        if runner is None:
            rejection = Rejection(f"Unknown broker: {broker.strip()[:64]}", status=400, code="unknown_broker")
            self._refuse(signal_id, broker.strip()[:64], rejection)
        route = runner.route.name
        key = idempotency_key(route, payload)
        window = runner.route.dedupe_window_s
        if key is None and window:
            key, previous_key = dedupe_keys(route, payload, received, window)
            previous = self.journal.find_by_key(previous_key)
            if previous is not None and received - previous.received_at < window and not previous.retryable:
                self._repeat(resp, previous)
                return
        payload_kept = without_secrets(payload)
        holder: Entry | None = None
        for _ in range(3):  # a copy that waited for a retryable outcome tries to run it again
            try:
                holder = self.journal.claim(signal_id, route, payload_kept, key, received)
            except JournalUnavailable as exc:
                # Nothing was placed and nothing recorded: 503, so TradingView's retry is safe. The
                # journal logged the failure once; each refused signal gets one short line.
                log.warning("Signal %s refused before any stage: journal unavailable (%s)", signal_id, exc.reason)
                raise falcon.HTTPServiceUnavailable(description=exc.message) from None
            if holder is None:
                self._run(resp, runner, Signal(id=signal_id, route=route, payload=payload, received_at=received))
                return
            holder = self.journal.wait_finished(holder.id, self.duplicate_wait_s) or holder
            if not holder.retryable:
                break
        assert holder is not None
        self._repeat(resp, holder)

    def _run(self, resp: falcon.Response, runner: Runner, signal: Signal) -> None:
        """This request owns the signal's id: run the chain, record the outcome, answer it."""
        outcome = runner.run(signal, placing=self._placing)
        body = outcome.body()
        self._finish(outcome, body)
        self.metrics.observe(outcome)
        self._answer(resp, outcome.http_status, body)

    def _placing(self, signal: Signal) -> None:
        self.journal.placing(signal.id, signal.require_order().client_order_id)

    def _unauthorized(self, signal_id: str, client: str | None, peer: str | None = None) -> NoReturn:
        """401, journaled without the payload (it may hold a guessed secret)."""
        # the connection's own address too: behind a proxy, what auth.trusted_proxies must hold
        via = f" (connection from {peer})" if peer and peer != client else ""
        body = {"success": False, "error": "Unauthorized", "signalId": signal_id}
        self.metrics.count("?", "unauthorized")
        if self._noted():
            log.warning("Unauthorized signal from %s%s", client or "unknown address", via)
            self.journal.record(signal_id, "?", "unauthorized", 401, body)
        raise Rejection("Unauthorized", status=401, code="unauthorized")

    def _refuse(self, signal_id: str, route: str, rejection: Rejection) -> NoReturn:
        body = {"success": False, "error": rejection.reason, "code": rejection.code, "signalId": signal_id}
        self.metrics.count("?", "rejected", stage="route", reason=rejection.code or "invalid")
        if self._noted():
            self.journal.record(signal_id, route, "rejected", rejection.status, body)
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

    def _repeat(self, resp: falcon.Response, first: Entry) -> None:
        """A repeat of a signal id that another request owns: its outcome, or 202 while it has none.

        A final outcome is answered 200 with ``"duplicate": true``; a pending one (in flight, or
        unknown until the reconciler settles it) 202, placing nothing. A retryable one reaches
        here only when other copies kept taking the id over: its own 5xx, so the sender retries.
        """
        self.metrics.count(first.route, "duplicate")
        if first.pending or first.response is None:
            body = {
                **(first.response or {}),
                "success": False,
                "duplicate": True,
                "status": "unknown" if first.status == UNKNOWN else "in progress",
                "signalId": first.id,
            }
            if first.client_order_id:
                body["clientOrderId"] = first.client_order_id
            log.info("Repeat of signal %s, still %s: placing nothing", first.id, first.status)
            self._answer(resp, 202, body)
            return
        log.info("Duplicate of signal %s: answering its outcome, placing nothing", first.id)
        status = first.http_status if first.retryable and first.http_status else 200
        self._answer(resp, status, {**first.response, "duplicate": True})

    def _finish(self, outcome: Outcome, body: dict[str, Any]) -> None:
        order = outcome.signal.order
        placement = outcome.placement
        try:
            self.journal.finish(
                outcome.signal.id,
                status=outcome.status,
                http_status=outcome.http_status,
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

    @staticmethod
    def _answer(resp: falcon.Response, status: int, body: dict[str, Any]) -> None:
        resp.status = falcon.code_to_http_status(status)
        resp.content_type = falcon.MEDIA_JSON
        resp.text = redacted_dumps(body, _json)


class HealthResource:
    """``GET /healthz``: the process is alive and serving."""

    def __init__(self, service: Service) -> None:
        self.service = service

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_JSON
        resp.text = _json(
            {"status": "ok", "environment": self.service.settings.environment, "routes": sorted(self.service.runners)}
        )


def _rejection(req: falcon.Request, resp: falcon.Response, exc: Rejection, params: dict[str, Any]) -> None:
    resp.status = falcon.code_to_http_status(exc.status)
    resp.content_type = falcon.MEDIA_JSON
    body: dict[str, Any] = {"success": False, "error": exc.reason}
    if exc.code:
        body["code"] = exc.code
    resp.text = redacted_dumps(body, _json)


def _broker_error(req: falcon.Request, resp: falcon.Response, exc: BrokerError, params: dict[str, Any]) -> None:
    resp.status = falcon.code_to_http_status(exc.status)
    resp.content_type = falcon.MEDIA_JSON
    resp.text = redacted_dumps({"success": False, "error": exc.message}, _json)


def _http_error(req: falcon.Request, resp: falcon.Response, exc: falcon.HTTPError, params: dict[str, Any]) -> None:
    resp.status = exc.status
    resp.content_type = falcon.MEDIA_JSON
    resp.text = redacted_dumps({"success": False, "error": exc.description or exc.title}, _json)
    resp.set_headers(exc.headers or {})


def _journal_down(req: falcon.Request, resp: falcon.Response, exc: SQLAlchemyError, params: dict[str, Any]) -> None:
    # A journal read failed outside any runner (a repeat's look-up, the history): this request
    # placed nothing, so 503 and the sender may retry. One line: the database's own words.
    reason = describe_failure(exc)
    log.error("Journal unavailable on %s %s: %s", req.method, req.uri_template or "(no route)", reason)
    resp.status = falcon.HTTP_503
    resp.content_type = falcon.MEDIA_JSON
    text = f"Journal unavailable: {reason}; nothing was placed, try again shortly"
    resp.text = redacted_dumps({"success": False, "error": text}, _json)


def _unexpected(req: falcon.Request, resp: falcon.Response, exc: Exception, params: dict[str, Any]) -> None:
    # Reached only before a runner exists for the request (the runner turns its own faults
    # into outcomes), so no order can exist yet and a 5xx retry by TradingView is safe.
    # The route's template, not the path: /webhook/<secret> carries the secret (the log
    # handler would redact it too; this never hands it over).
    log.exception("Unexpected error on %s %s", req.method, req.uri_template or "(no route)")
    resp.status = falcon.HTTP_500
    resp.content_type = falcon.MEDIA_JSON
    resp.text = redacted_dumps({"success": False, "error": "Internal error"}, _json)


class OrdergateApp(falcon.App):  # type: ignore[type-arg]
    """The falcon app, carrying the service it was built around (for the CLI and tests)."""

    def __init__(self, service: Service, journal: Journal) -> None:
        super().__init__(cors_enable=False)
        self.service = service
        self.journal = journal
        self.metrics = Metrics()

    def reconcile(self, older_than_s: float) -> int:
        """Settle unknown orders, and signals in flight for over ``older_than_s`` (see recovery)."""
        absent_after_s = float(self.service.settings.data["journal"]["absent_after_s"])
        return reconcile(
            self.journal,
            self.service.runners,
            older_than_s=older_than_s,
            absent_after_s=absent_after_s,
            observe=self.observe_settlement,
        )

    def observe_settlement(self, outcome: Outcome) -> None:
        """An order found at the broker after the answer: notify and count it as any outcome."""
        self.metrics.settled(outcome)
        runner = self.service.runners.get(outcome.route.name)
        if runner is not None:
            runner.observe(outcome)

    def start_reconciler(self, every_s: float | None = None, older_than_s: float = 120) -> Reconciler:
        """Settle, in the background, unknown orders and signals in flight for over ``older_than_s``.

        Startup settles what this process's own crash left; this settles unknown orders as soon
        as the broker can say, and what a replica that died left in a shared PostgreSQL journal,
        without waiting for some replica to restart.
        """
        if every_s is None:
            every_s = float(self.service.settings.data["journal"]["reconcile_every_s"])
        return Reconciler(self, every_s, older_than_s)


class Reconciler:
    """The background settling loop of one app; :meth:`stop` ends it and waits for it, so the
    journal is never closed under a pass in progress."""

    def __init__(self, app: OrdergateApp, every_s: float, older_than_s: float) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, args=(app, every_s, older_than_s), name="reconciler")
        self._thread.daemon = True
        self._thread.start()

    def _loop(self, app: OrdergateApp, every_s: float, older_than_s: float) -> None:
        while not self._stop.wait(every_s):
            try:
                app.reconcile(older_than_s)
            except (JournalUnavailable, SQLAlchemyError) as exc:  # said once by the journal, or here in a line
                reason = exc.reason if isinstance(exc, JournalUnavailable) else describe_failure(exc)
                log.warning(
                    "Reconciling unsettled signals: journal unavailable (%s); trying again in %.0f s", reason, every_s
                )
            except Exception:
                log.exception("Reconciling unsettled signals failed; trying again in %.0f s", every_s)

    def stop(self, timeout_s: float = 30) -> None:
        self._stop.set()
        self._thread.join(timeout_s)


def open_journal(settings: Settings) -> Journal:
    """The journal the settings name: PostgreSQL at ``journal.url``, else the SQLite file."""
    cfg = settings.data["journal"]
    return Journal(database_url({"DATABASE_URL": cfg["url"] or ""}, Path(cfg["path"])))


def create_app(
    settings: Settings, *, brokers: dict[str, Broker] | None = None, journal: Journal | None = None
) -> OrdergateApp:
    """Build the WSGI app from validated settings; ``brokers`` replaces configured ones by name."""
    journal = journal or open_journal(settings)
    service = build_service(settings, brokers, ledger_for(journal.engine))
    app = OrdergateApp(service, journal)
    # A single process owns a SQLite journal: whatever it left in flight was cut off by a crash.
    # Replicas sharing PostgreSQL only settle what has been in flight for a minute.
    app.reconcile(older_than_s=0 if journal.engine.dialect.name == "sqlite" else 60)
    app.req_options.strip_url_path_trailing_slash = True
    wait = float(settings.data["journal"]["duplicate_wait_s"])
    auth = settings.data["auth"]
    gate = Gate(auth["secret"], auth["allow_ips"], auth["trusted_proxies"], auth["client_address_header"])
    if not gate.enabled:
        log.warning("WEBHOOK_SECRET is not set: anyone who finds this URL can send signals")
    metrics = app.metrics
    refusals = RefusalBudget(int(settings.data["journal"]["refusals_per_minute"]))
    max_body = settings.data["server"]["max_body_bytes"]
    webhook = WebhookResource(service, max_body, journal, wait, gate, metrics, refusals)
    app.add_route("/webhook", webhook)
    app.add_route("/webhook/{secret}", webhook)
    app.add_route("/healthz", HealthResource(service))
    admin = AdminToken(auth["admin_token"])
    app.add_route("/readyz", ReadyResource(service, journal))
    app.add_route("/metrics", MetricsResource(metrics, admin))
    history = SignalsResource(journal, admin)
    app.add_route("/signals", history)
    app.add_route("/signals/{signal_id}", history, suffix="one")
    _add_broker_logins(app, service, journal)
    app.add_error_handler(Exception, _unexpected)
    app.add_error_handler(SQLAlchemyError, _journal_down)
    app.add_error_handler(falcon.HTTPError, _http_error)
    app.add_error_handler(Rejection, _rejection)
    app.add_error_handler(BrokerError, _broker_error)
    return app


def _add_broker_logins(app: OrdergateApp, service: Service, journal: Journal) -> None:
    """Brokers with a daily login keep it in the journal database; FlatTrade's is at /auth/flattrade."""
    from ordergate.brokers.flattrade import FlatTradeBroker
    from ordergate.login import FlatTradeLogin

    routed = {runner.route.broker.name for runner in service.runners.values()}
    flattrade = [b for n, b in service.brokers.items() if isinstance(b, FlatTradeBroker) and n in routed]
    for broker in flattrade:
        broker.use_session_store(journal)
    login = FlatTradeLogin(flattrade)
    app.add_route("/auth/flattrade", login)
    app.add_route("/auth/flattrade/callback", login, suffix="callback")
