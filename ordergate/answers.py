"""How ordergate answers a signal: every status and body the webhook renders, in one place.

The pipeline says what happened (an :class:`~ordergate.pipeline.runner.Outcome`, a journal
row, an error); this module says how that reads over HTTP. The journal keeps the rendered
answer, so a repeat is answered exactly as the first copy was (DESIGN.md, "answers").
"""

from __future__ import annotations

from typing import Any

from ordergate.pipeline.journal import UNKNOWN, Entry
from ordergate.pipeline.money import plain
from ordergate.pipeline.runner import Outcome
from ordergate.pipeline.signal import Placement


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


def answer_status(outcome: Outcome) -> int:
    """The HTTP status of an outcome."""
    if outcome.rejection is not None:
        return outcome.rejection.status
    if outcome.placement is not None:
        return 200
    if outcome.error is not None:
        return outcome.error.status
    return 500


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
