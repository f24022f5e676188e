"""The HTTP shell: read, authenticate, call the gateway, render.

``create_app`` builds it; ``ordergate serve`` serves it."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import falcon
from sqlalchemy.exc import SQLAlchemyError

from ordergate.admin import AdminToken, MetricsResource, ReadyResource, SignalsResource
from ordergate.answers import add_error_handlers, answer, as_json, repeat_answer
from ordergate.auth import Gate, RefusalBudget
from ordergate.brokers.base import Broker
from ordergate.compose import Service, build_service
from ordergate.config import Settings
from ordergate.gateway import Gateway, Ran, new_signal_id
from ordergate.logs import signal_context
from ordergate.metrics import Metrics
from ordergate.parse import parse_body
from ordergate.pipeline.errors import JournalUnavailable
from ordergate.pipeline.journal import Journal, database_url, describe_failure
from ordergate.pipeline.reservations import ledger_for

log = logging.getLogger("ordergate")


class WebhookResource:
    """``POST /webhook``: read and authenticate the body, hand it to the gateway, render its result."""

    def __init__(self, gateway: Gateway, max_body: int, gate: Gate) -> None:
        self.gateway = gateway
        self.max_body = max_body
        self.gate = gate

    def on_post(self, req: falcon.Request, resp: falcon.Response, secret: str | None = None) -> None:
        signal_id = new_signal_id()
        with signal_context(signal_id):  # every log line of this signal carries its id
            self._handle(req, resp, signal_id, secret)

    def _handle(self, req: falcon.Request, resp: falcon.Response, signal_id: str, secret: str | None) -> None:
        received = time.time()
        client = self.gate.client_address(req.remote_addr, req.get_header(self.gate.header))
        if not self.gate.address_ok(client) or (secret is not None and not self.gate.secret_ok({}, secret)):
            self.gateway.unauthorized(signal_id, client, req.remote_addr)
        if req.content_length is not None and req.content_length > self.max_body:
            raise falcon.HTTPContentTooLarge(description=f"Body over {self.max_body} bytes")
        raw = req.bounded_stream.read(self.max_body + 1)
        if len(raw) > self.max_body:
            raise falcon.HTTPContentTooLarge(description=f"Body over {self.max_body} bytes")
        payload = parse_body(raw)
        if secret is None and not self.gate.secret_ok(payload, None):
            self.gateway.unauthorized(signal_id, client)
        result = self.gateway.handle(signal_id, payload, received)  # refusals raise: see answers.py
        if isinstance(result, Ran):
            answer(resp, result.http_status, result.body)
        else:
            answer(resp, *repeat_answer(result.first))


class HealthResource:
    """``GET /healthz``: the process is alive and serving."""

    def __init__(self, service: Service) -> None:
        self.service = service

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_JSON
        resp.text = as_json(
            {"status": "ok", "environment": self.service.settings.environment, "routes": sorted(self.service.runners)}
        )


class OrdergateApp(falcon.App):  # type: ignore[type-arg]
    """The falcon app, carrying the service it was built around (for the CLI and tests)."""

    def __init__(self, service: Service, journal: Journal) -> None:
        super().__init__(cors_enable=False)
        self.service = service
        self.journal = journal
        self.metrics = Metrics()
        cfg = service.settings.data["journal"]
        self.gateway = Gateway(
            service,
            journal,
            self.metrics,
            duplicate_wait_s=float(cfg["duplicate_wait_s"]),
            refusals=RefusalBudget(int(cfg["refusals_per_minute"])),
        )

    def reconcile(self, older_than_s: float) -> int:
        """Settle unknown orders, and signals in flight for over ``older_than_s`` (see recovery)."""
        return self.gateway.settle(older_than_s)

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
    auth = settings.data["auth"]
    gate = Gate(auth["secret"], auth["allow_ips"], auth["trusted_proxies"], auth["client_address_header"])
    if not gate.enabled:
        log.warning("WEBHOOK_SECRET is not set: anyone who finds this URL can send signals")
    metrics = app.metrics
    max_body = settings.data["server"]["max_body_bytes"]
    webhook = WebhookResource(app.gateway, max_body, gate)
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
    add_error_handlers(app)
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
