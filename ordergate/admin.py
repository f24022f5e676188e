"""What operators read: ``/readyz``, ``/metrics`` and the signal history (``/signals``).

The history holds payloads and order ids, so it needs ``Authorization: Bearer <ADMIN_TOKEN>``
and is off (404) while ``ADMIN_TOKEN`` is unset. ``/metrics`` asks for the same token when one
is set (Prometheus sends it with ``authorization: {credentials: ...}``) and is open otherwise:
it holds counts, never payloads.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from typing import Any

import falcon

from ordergate.compose import Service
from ordergate.metrics import CONTENT_TYPE, Metrics
from ordergate.pipeline.errors import JournalUnavailable, Rejection
from ordergate.pipeline.journal import Entry, Journal
from ordergate.pipeline.money import dumps
from ordergate.pipeline.text import json_text, unstorable

STATUSES = ("received", "filled", "open", "rejected", "error", "unknown", "unauthorized")


def _iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AdminToken:
    """``Authorization: Bearer <token>``, compared in constant time."""

    def __init__(self, token: str | None) -> None:
        self._token = (token or "").encode()

    @property
    def enabled(self) -> bool:
        return bool(self._token)

    def check(self, req: falcon.Request) -> None:
        given = req.get_header("Authorization") or ""
        scheme, _, credentials = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(credentials.strip().encode(), self._token):
            raise Rejection("Unauthorized", kind="unauthorized", code="unauthorized")


def entry_view(entry: Entry, *, full: bool) -> dict[str, Any]:
    """A journal row as the history API shows it; ``full`` adds payload, answer and trace."""
    response = entry.response or {}
    view: dict[str, Any] = {
        "id": entry.id,
        "receivedAt": _iso(entry.received_at),
        "completedAt": _iso(entry.completed_at),
        "route": entry.route,
        "status": entry.status,
        "httpStatus": entry.http_status,
        "clientOrderId": entry.client_order_id,
        "orderId": entry.broker_order_id,
        "error": response.get("error"),
        "stage": response.get("stage"),
    }
    payload = entry.payload or {}
    for key in ("symbol", "side", "quantity", "type"):
        if key in payload:
            view[key] = payload[key]
    if entry.completed_at is not None:
        view["ms"] = round((entry.completed_at - entry.received_at) * 1000, 3)
    if full:
        view["payload"] = entry.payload
        view["response"] = entry.response
        view["trace"] = entry.trace
    return view


class SignalsResource:
    """``GET /signals?status=&route=&limit=`` and ``GET /signals/{id}``."""

    def __init__(self, journal: Journal, token: AdminToken) -> None:
        self.journal = journal
        self.token = token

    def _allowed(self, req: falcon.Request) -> None:
        if not self.token.enabled:
            raise Rejection(
                "The signal history is off: set ADMIN_TOKEN to turn it on", kind="not_found", code="history_off"
            )
        self.token.check(req)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._allowed(req)
        status = req.get_param("status") or None
        if status is not None and status not in STATUSES:
            raise Rejection(f"Invalid status: {status[:32]} (expected {', '.join(STATUSES)})", kind="invalid")
        limit_text = req.get_param("limit") or "50"
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= 1000:
            raise Rejection("Invalid limit: a whole number from 1 to 1000", kind="invalid")
        route = (req.get_param("route") or "").strip() or None
        problem = unstorable(route) if route is not None else None
        if problem is not None:  # PostgreSQL would refuse the query itself; no route has such a name
            raise Rejection(f"Invalid route: it holds {problem}", kind="invalid", code="invalid_text")
        entries = self.journal.entries(int(limit_text), status=status, route=route)
        resp.content_type = falcon.MEDIA_JSON
        resp.text = json_text({"signals": [entry_view(e, full=False) for e in entries]})

    def on_get_one(self, req: falcon.Request, resp: falcon.Response, signal_id: str) -> None:
        self._allowed(req)
        # Ids are generated hex: one holding what PostgreSQL refuses (NUL) names no signal.
        entry = self.journal.get(signal_id[:64]) if unstorable(signal_id) is None else None
        if entry is None:
            raise Rejection("No signal with this id", kind="not_found", code="not_found")
        resp.content_type = falcon.MEDIA_JSON
        resp.text = json_text(entry_view(entry, full=True))  # rows from before surrogates were refused


class MetricsResource:
    """``GET /metrics`` in Prometheus's text format."""

    def __init__(self, metrics: Metrics, token: AdminToken) -> None:
        self.metrics = metrics
        self.token = token

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        if self.token.enabled:
            self.token.check(req)
        resp.content_type = CONTENT_TYPE
        resp.data = self.metrics.render()


class ReadyResource:
    """``GET /readyz``: 200 when signals can be served, else 503 naming what is not ready.

    Required: the configuration (loaded, or this app would not exist), the journal (its SQLite
    file is still the one opened, and a one-row write commits: a deleted file, a full disk or a
    read-only database make it 503, naming why) and every routed broker's markets. Broker
    logins and keys are reported but do not fail readiness: FlatTrade's daily login expires at
    05:00 IST and must not make a redeploy fail its healthcheck before the morning's login
    (which needs the service up).
    """

    def __init__(self, service: Service, journal: Journal) -> None:
        self.service = service
        self.journal = journal

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        checks: dict[str, str] = {"config": "ok"}
        problems: list[str] = []
        warnings: list[str] = []
        try:
            self.journal.probe()  # the file is the one opened, and a write commits
            checks["journal"] = "ok"
        except JournalUnavailable as exc:
            checks["journal"] = exc.reason
            problems.append(f"journal: {exc.reason}")
        routed = {runner.route.broker.name: runner.route.name for runner in self.service.runners.values()}
        for name, route in routed.items():
            broker = self.service.brokers[name]
            if not getattr(broker, "markets_ready", True):
                checks[f"markets {name}"] = "not loaded yet"
                problems.append(f"markets {name}: not loaded yet")
            else:
                checks[f"markets {name}"] = "ok"
            if broker.missing_credentials:
                checks[f"session {name}"] = f"API keys not configured for {route}"
            else:
                session = broker.session_error()
                checks[f"session {name}"] = "ok" if session is None else session.message
            if checks[f"session {name}"] != "ok":
                warnings.append(f"session {name}: {checks[f'session {name}']}")
        body: dict[str, Any] = {"ready": not problems, "checks": checks}
        if problems:
            body["notReady"] = problems
        if warnings:
            body["warnings"] = warnings
        resp.status = falcon.HTTP_200 if not problems else falcon.HTTP_503
        resp.content_type = falcon.MEDIA_JSON
        resp.text = dumps(body, ensure_ascii=False)
