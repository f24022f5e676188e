"""Prometheus metrics at ``/metrics``: what came in, how it ended, where the time went.

Each app has its own registry (several apps can live in one process, e.g. in tests); the
counters are fed from every outcome, after the answer's body is built, and never change it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from ordergate.pipeline.runner import Outcome

CONTENT_TYPE = CONTENT_TYPE_LATEST
# microseconds of a check up to seconds of a slow broker: TradingView gives up at 3 s
BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """The counters and histograms of one app."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.signals = Counter(
            "ordergate_signals",
            "Signals received, by route and outcome (filled, open, rejected, error, unknown, duplicate, unauthorized)",
            ["route", "outcome"],
            registry=self.registry,
        )
        self.rejections = Counter(
            "ordergate_rejections",
            "Signals refused, by route, stage and reason code",
            ["route", "stage", "reason"],
            registry=self.registry,
        )
        self.orders = Counter(
            "ordergate_orders_placed", "Orders placed, by route and broker", ["route", "broker"], registry=self.registry
        )
        self.settlements = Counter(
            "ordergate_settlements",
            "Unknown or interrupted signals settled from the broker's records, by route and outcome",
            ["route", "outcome"],
            registry=self.registry,
        )
        self.stage_seconds = Histogram(
            "ordergate_stage_seconds",
            "Time in each stage, by route and stage",
            ["route", "stage"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.broker_seconds = Histogram(
            "ordergate_broker_seconds",
            "Time the broker took to place an order (the execute stage), by broker",
            ["broker"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_NotificationCollector())

    def observe(self, outcome: Outcome) -> None:
        """Count one outcome and its stage timings."""
        route = outcome.route.name
        self.signals.labels(route, outcome.status).inc()
        for step in outcome.trace:
            self.stage_seconds.labels(route, step.stage).observe(step.micros / 1_000_000)
            if step.stage == "execute":
                self.broker_seconds.labels(outcome.route.broker.name).observe(step.micros / 1_000_000)
        if outcome.placement is not None and outcome.status != "rejected":
            self.orders.labels(route, outcome.route.broker.name).inc()
        elif outcome.status in ("rejected", "error"):
            stage = outcome.failed_stage or "before chain"
            reason = (outcome.rejection.code if outcome.rejection is not None else None) or _short(outcome.reason)
            self.rejections.labels(route, stage, reason).inc()

    def settled(self, outcome: Outcome) -> None:
        """Count an order found at the broker after its signal was answered (unknown, or cut off)."""
        self.settlements.labels(outcome.route.name, outcome.status).inc()
        if outcome.placement is not None and outcome.status != "rejected":
            self.orders.labels(outcome.route.name, outcome.route.broker.name).inc()

    def count(self, route: str, outcome: str, *, stage: str | None = None, reason: str | None = None) -> None:
        """Count a signal refused before any chain ran (unauthorized, unknown broker, duplicate)."""
        self.signals.labels(route, outcome).inc()
        if stage is not None and reason is not None:
            self.rejections.labels(route, stage, reason).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _NotificationCollector(Collector):
    """Notifications sent, failed after their retries and dropped (queue full), by target kind:
    read from the process's notification worker at each scrape."""

    def collect(self) -> Iterator[CounterMetricFamily]:
        from ordergate.notifications import dispatcher

        counts = dispatcher().counters.snapshot()
        for key, name, text in (
            ("sent", "ordergate_notifications_sent", "Notifications delivered, by target kind"),
            ("failed", "ordergate_notification_failures", "Notifications that failed after their retries"),
            ("dropped", "ordergate_notifications_dropped", "Notifications dropped: the queue was full"),
        ):
            family = CounterMetricFamily(name, text, labels=["target"])
            for kind, count in sorted(counts[key].items()):
                family.add_metric([kind], count)
            yield family


def _short(reason: str | None) -> str:
    """A reason as a label: the words before any number, so labels stay few."""
    text = (reason or "unknown").split(":", 1)[0]
    return "".join(c for c in text if not c.isdigit()).strip()[:60] or "unknown"
