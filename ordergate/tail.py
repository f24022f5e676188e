"""``ordergate signals``: the journal's latest signals, one line each, and ``--follow``.

Following polls the journal for rows received after the newest one seen. It looks a few
seconds further back than that (a row is stamped when its request arrives and inserted a
moment later, and replicas sharing PostgreSQL do not share a clock), and it shows a row that
was in flight again once it has its outcome.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

from ordergate.pipeline.journal import PENDING, RUNNING, Entry, Journal
from ordergate.pipeline.text import printable

LOOKBACK_S = 5.0
POLL_ROWS = 10_000


def when(timestamp: float) -> str:
    """``2026-11-25T01:00:00.123Z``."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def order_of(payload: Mapping[str, Any] | None) -> str:
    """``BUY BTCUSDT 0.001`` from the journaled payload, or ``-`` (e.g. an unauthorized request)."""
    if not payload:
        return "-"
    side = str(payload.get("side") or "?").upper()
    return f"{side} {payload.get('symbol') or '?'} {payload.get('quantity') or '?'}"


def result_of(entry: Entry) -> str:
    if entry.broker_order_id:
        return f"order {entry.broker_order_id}"
    if entry.status in RUNNING:
        return "in flight"
    response = entry.response or {}
    error = response.get("error")
    if not error:
        return ""
    stage = f" ({response['stage']})" if response.get("stage") else ""
    return f"{error}{stage}"


def line(entry: Entry) -> str:
    """One signal: time, id, route, status, HTTP status, order, then the order id or the error.

    Payload text is the sender's: controls (a terminal's escape sequences), lone surrogates
    and bidi marks in it are shown as escapes.
    """
    http = str(entry.http_status) if entry.http_status is not None else "-"
    cells = [when(entry.received_at), entry.id, entry.route.ljust(12), entry.status.ljust(12), http.ljust(3)]
    return printable("  ".join([*cells, order_of(entry.payload).ljust(24), result_of(entry)]).rstrip())


class Tail:
    """The journal seen through filters: ``latest`` once, then ``poll`` for what is new."""

    def __init__(self, journal: Journal, *, status: str | None = None, route: str | None = None) -> None:
        self.journal = journal
        self.status = status
        self.route = route
        self.since: float | None = None  # the newest received_at seen, all statuses
        self.seen: dict[str, float] = {}  # ids within LOOKBACK_S of since -> received_at
        self.pending: dict[str, str] = {}  # ids seen unsettled -> the status last shown

    def wanted(self, entry: Entry) -> bool:
        return self.status is None or entry.status == self.status

    def latest(self, limit: int) -> list[Entry]:
        """The newest ``limit`` matching rows, oldest first; marks everything up to now as seen."""
        shown = list(self.journal.entries(limit, status=self.status, route=self.route))
        shown.reverse()
        newest = next(self.journal.entries(1, route=self.route), None)
        if newest is not None:
            self.since = newest.received_at
            for entry in self.journal.entries(POLL_ROWS, route=self.route, since=self.since - LOOKBACK_S):
                self._see(entry)
        for entry in [*shown, *self.journal.unsettled()]:
            if self.route is None or entry.route == self.route:
                self._see(entry)
        return shown

    def poll(self) -> list[Entry]:
        """Unsettled rows whose status changed since the last poll (an answer, a settlement),
        then rows new since then."""
        found: list[Entry] = []
        for signal_id, shown in sorted(self.pending.items()):
            entry = self.journal.get(signal_id)
            if entry is None or entry.status not in PENDING:
                del self.pending[signal_id]
            elif entry.status != shown:
                self.pending[signal_id] = entry.status
            if entry is not None and entry.status != shown and self.wanted(entry):
                found.append(entry)
        since = None if self.since is None else self.since - LOOKBACK_S
        fresh = list(self.journal.entries(POLL_ROWS, route=self.route, since=since))
        for entry in reversed(fresh):
            if entry.id in self.seen:
                continue
            self._see(entry)
            if self.wanted(entry):
                found.append(entry)
        if self.since is not None:
            horizon = self.since - LOOKBACK_S
            self.seen = {i: t for i, t in self.seen.items() if t >= horizon or i in self.pending}
        return found

    def _see(self, entry: Entry) -> None:
        self.seen[entry.id] = entry.received_at
        if entry.status in PENDING:
            self.pending[entry.id] = entry.status
        if self.since is None or entry.received_at > self.since:
            self.since = entry.received_at


def follow(
    tail: Tail,
    out: TextIO,
    *,
    interval_s: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
    until: Callable[[], bool] = lambda: False,
) -> None:
    """Print what ``tail.poll`` finds every ``interval_s`` until ``until()`` (or Ctrl-C)."""
    while not until():
        sleep(interval_s)
        for entry in tail.poll():
            print(line(entry), file=out, flush=True)
