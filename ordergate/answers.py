"""How ordergate answers a signal: every status and body the webhook renders, in one place.

The pipeline says what happened (an :class:`~ordergate.pipeline.runner.Outcome`, a journal
row, an error); this module says how that reads over HTTP. The journal keeps the rendered
answer, so a repeat is answered exactly as the first copy was (DESIGN.md, "answers").
"""

from __future__ import annotations

import logging
from typing import Any

import falcon
from sqlalchemy.exc import SQLAlchemyError

from ordergate.pipeline.errors import BrokerAuthError, BrokerError, OrderOutcomeUnknown, Rejection, RejectionKind
from ordergate.pipeline.journal import UNKNOWN, Entry, describe_failure
from ordergate.pipeline.money import plain
from ordergate.pipeline.runner import Outcome
from ordergate.pipeline.signal import Placement
from ordergate.pipeline.text import json_text
from ordergate.redact import redacted_dumps

log = logging.getLogger("ordergate")


def placed(placement: Placement) -> dict[str, Any]:
    """The answer's fields for a placed order, in the seed's shape (amounts as exact strings)."""
    return {
        "success": True,
        "orderId": placement.order_id,
        "clientOrderId": placement.client_order_id,
        "status": placement.status,
        "symbol": placement.symbol,
        "side": placement.side.upper(),
        "type": placement.type,
        "quantity": plain(placement.quantity),
        "price": plain(placement.price) if placement.price is not None else None,
        "executedQty": plain(placement.filled),
        "avgPrice": plain(placement.average_price) if placement.average_price is not None else None,
    }


# The one table from what happened to the HTTP status that says it.
REJECTION_STATUS: dict[RejectionKind, int] = {
    "invalid": 400,  # the payload cannot be read as a signal
    "unauthorized": 401,
    "not_found": 404,
    "refused": 422,  # a trading rule refused it: the trader reads the reason
    "rate_limited": 429,
}
ERROR_STATUS: tuple[tuple[type[BrokerError], int], ...] = (  # the first class that matches
    (OrderOutcomeUnknown, 202),  # an order may exist: never a 5xx, which TradingView re-sends
    (BrokerAuthError, 422),  # fix the keys: retrying cannot help
    (BrokerError, 503),  # nothing was placed: the sender may retry (BrokerUnavailable, JournalUnavailable)
)
PLACED = 200  # the broker has the order
FAULT = 500  # a fault inside ordergate (the runner turned it into an outcome)


def status_of(error: Rejection | BrokerError) -> int:
    """The HTTP status a refusal or a broker error is answered with."""
    if isinstance(error, Rejection):
        return REJECTION_STATUS[error.kind]
    return next(status for cls, status in ERROR_STATUS if isinstance(error, cls))


def answer_status(outcome: Outcome) -> int:
    """The HTTP status of an outcome."""
    if outcome.rejection is not None:
        return status_of(outcome.rejection)
    if outcome.placement is not None:
        return PLACED
    if outcome.error is not None:
        return status_of(outcome.error)
    return FAULT


def answer_body(outcome: Outcome) -> dict[str, Any]:
    """The HTTP answer: the seed's shape plus the signal id, notes and trace."""
    body: dict[str, Any]
    placement = outcome.placement
    if placement is not None and outcome.rejection is None:
        body = {**placed(placement), "route": outcome.route.name, "broker": outcome.route.broker.label}
    else:
        body = {"success": False, "error": outcome.reason}
        if outcome.failed_stage:
            body["stage"] = outcome.failed_stage
        code = outcome.rejection.code if outcome.rejection is not None else None
        if code:
            body["code"] = code
        if placement is not None:  # the broker has the order, ended without a fill
            body.update({k: v for k, v in placed(placement).items() if k != "success"})
        if outcome.status == "unknown":
            body["status"] = "unknown"
            body["clientOrderId"] = outcome.signal.require_order().client_order_id
    body["signalId"] = outcome.signal.id
    notes = [
        *outcome.signal.notes,
        *(outcome.rejection.notes if outcome.rejection is not None else ()),
        *(placement.notes if placement is not None else ()),
    ]
    if notes:
        body["notes"] = notes
    body["trace"] = [s.as_dict() for s in outcome.trace]
    return body


def outcome_answer(outcome: Outcome) -> tuple[int, dict[str, Any]]:
    """An outcome's status and body, as answered and journaled."""
    return answer_status(outcome), answer_body(outcome)


def error_answer(error: BrokerError, client_order_id: str) -> tuple[int, dict[str, Any]]:
    """A signal the reconciler settled without an order: still unknown, or retryable."""
    body: dict[str, Any] = {"success": False, "error": error.message}
    if isinstance(error, OrderOutcomeUnknown):
        body["status"] = "unknown"
    body["clientOrderId"] = client_order_id
    return status_of(error), body


class _Settled:
    """The answers the reconciler journals (``ordergate.pipeline.recovery.Answers``)."""

    outcome = staticmethod(outcome_answer)
    error = staticmethod(error_answer)


SETTLED = _Settled()


def repeat_answer(first: Entry) -> tuple[int, dict[str, Any]]:
    """A repeat of a signal id that another request owns: its outcome, or 202 while it has none.

    A final outcome is answered 200 with ``"duplicate": true``; a pending one (in flight, or
    unknown until the reconciler settles it) 202, placing nothing. A retryable one reaches
    here only when other copies kept taking the id over: its own 5xx, so the sender retries.
    """
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
        return 202, body
    status = first.http_status if first.retryable and first.http_status else 200
    return status, {**first.response, "duplicate": True}


def as_json(value: Any) -> str:
    return json_text(value)  # a row journaled before parse_body refused surrogates may hold one


def answer(resp: falcon.Response, status: int, body: dict[str, Any]) -> None:
    resp.status = falcon.code_to_http_status(status)
    resp.content_type = falcon.MEDIA_JSON
    resp.text = redacted_dumps(body, as_json)


def _rejection(req: falcon.Request, resp: falcon.Response, exc: Rejection, params: dict[str, Any]) -> None:
    resp.status = falcon.code_to_http_status(status_of(exc))
    resp.content_type = falcon.MEDIA_JSON
    body: dict[str, Any] = {"success": False, "error": exc.reason}
    if exc.code:
        body["code"] = exc.code
    resp.text = redacted_dumps(body, as_json)


def _broker_error(req: falcon.Request, resp: falcon.Response, exc: BrokerError, params: dict[str, Any]) -> None:
    resp.status = falcon.code_to_http_status(status_of(exc))
    resp.content_type = falcon.MEDIA_JSON
    resp.text = redacted_dumps({"success": False, "error": exc.message}, as_json)


def _http_error(req: falcon.Request, resp: falcon.Response, exc: falcon.HTTPError, params: dict[str, Any]) -> None:
    resp.status = exc.status
    resp.content_type = falcon.MEDIA_JSON
    resp.text = redacted_dumps({"success": False, "error": exc.description or exc.title}, as_json)
    resp.set_headers(exc.headers or {})


def _journal_down(req: falcon.Request, resp: falcon.Response, exc: SQLAlchemyError, params: dict[str, Any]) -> None:
    # A journal read failed outside any runner (a repeat's look-up, the history): this request
    # placed nothing, so 503 and the sender may retry. One line: the database's own words.
    reason = describe_failure(exc)
    log.error("Journal unavailable on %s %s: %s", req.method, req.uri_template or "(no route)", reason)
    resp.status = falcon.HTTP_503
    resp.content_type = falcon.MEDIA_JSON
    text = f"Journal unavailable: {reason}; nothing was placed, try again shortly"
    resp.text = redacted_dumps({"success": False, "error": text}, as_json)


def _unexpected(req: falcon.Request, resp: falcon.Response, exc: Exception, params: dict[str, Any]) -> None:
    # Reached only before a runner exists for the request (the runner turns its own faults
    # into outcomes), so no order can exist yet and a 5xx retry by TradingView is safe.
    # The route's template, not the path: /webhook/<secret> carries the secret (the log
    # handler would redact it too; this never hands it over).
    log.exception("Unexpected error on %s %s", req.method, req.uri_template or "(no route)")
    resp.status = falcon.HTTP_500
    resp.content_type = falcon.MEDIA_JSON
    resp.text = redacted_dumps({"success": False, "error": "Internal error"}, as_json)


def add_error_handlers(app: falcon.App) -> None:  # type: ignore[type-arg]
    """Every refusal and fault an app's resources raise, rendered by the handlers above."""
    app.add_error_handler(Exception, _unexpected)
    app.add_error_handler(SQLAlchemyError, _journal_down)
    app.add_error_handler(falcon.HTTPError, _http_error)
    app.add_error_handler(Rejection, _rejection)
    app.add_error_handler(BrokerError, _broker_error)
