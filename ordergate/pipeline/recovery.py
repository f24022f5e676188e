"""Crash recovery: settle signals a crash left mid-flight, from the broker's own records.

A signal is journaled as ``received`` before any stage runs; a crash (``kill -9``, a lost
machine) can leave it there. Its client order id is derived from what the journal holds
(route, payload, signal id), so the order is looked up at the broker: found, the journal
records the broker's truth; absent, it records that no order was placed. Nothing is re-sent.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from ordergate.pipeline.errors import OrdergateError
from ordergate.pipeline.journal import Entry, Journal
from ordergate.pipeline.registry import Service
from ordergate.pipeline.runner import placed
from ordergate.stages.schema import client_order_id, normalize_symbol

log = logging.getLogger("ordergate")

INTERRUPTED = "Interrupted before an order was placed: the broker has no such order"


def reconcile(journal: Journal, service: Service, *, older_than_s: float = 0.0) -> int:
    """Settle every in-flight signal received more than ``older_than_s`` ago; return how many.

    The age guard matters when replicas share PostgreSQL: another replica's signals are in
    flight for a moment, never for a minute. A signal whose broker cannot answer now stays
    in flight for the next pass.
    """
    cutoff = time.time() - older_than_s
    settled = 0
    for entry in journal.in_flight():
        if entry.received_at > cutoff:
            continue
        try:
            if _settle(journal, service, entry):
                settled += 1
        except OrdergateError as exc:
            log.warning("Signal %s still unsettled: %s", entry.id, exc)
    if settled:
        log.info("Recovered %d signal(s) a crash left in flight", settled)
    return settled


def _settle(journal: Journal, service: Service, entry: Entry) -> bool:
    runner = service.runners.get(entry.route)
    payload = entry.payload or {}
    symbol = normalize_symbol(str(payload.get("symbol", "")))
    market = runner.route.broker.market(symbol) if runner is not None and symbol else None
    if runner is None or market is None:
        _finish(journal, entry, "error", 503, {"success": False, "error": INTERRUPTED}, None)
        return True
    cid = client_order_id(entry.route, payload, entry.id)
    placement = runner.route.broker.find_order(cid, market.symbol)
    if placement is None:
        _finish(journal, entry, "error", 503, {"success": False, "error": INTERRUPTED, "clientOrderId": cid}, cid)
        return True
    if placement.status in ("REJECTED", "CANCELED", "EXPIRED"):
        refused = {"success": False, "error": f"The broker has the order as {placement.status}", "clientOrderId": cid}
        _finish(journal, entry, "rejected", 422, refused, cid)
        return True
    filled = placement.status in ("FILLED", "PARTIALLY_FILLED")
    body = {**placed(placement), "route": entry.route}
    journal.finish(
        entry.id,
        status="filled" if filled else "open",
        http_status=200,
        response={**body, "recovered": True, "signalId": entry.id},
        client_order_id=cid,
        broker_order_id=placement.order_id,
    )
    return True


def _finish(journal: Journal, entry: Entry, status: str, http: int, body: dict[str, Any], cid: str | None) -> None:
    journal.finish(
        entry.id,
        status=status,
        http_status=http,
        response={**body, "recovered": True, "signalId": entry.id},
        client_order_id=cid,
    )
