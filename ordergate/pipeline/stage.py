"""The stage contract and what a stage knows about the route it serves."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from ordergate.pipeline.reservations import MemoryReservations, Reservations
from ordergate.pipeline.signal import Signal

if TYPE_CHECKING:
    from ordergate.pipeline.broker import Broker


@dataclass(frozen=True)
class Limits:
    """One route's limits in this environment (None = no limit)."""

    max_notional: Decimal | None = None
    max_orders_per_minute: int | None = None


@dataclass(frozen=True)
class RouteContext:
    """What a stage is built with besides its own options: the route it serves."""

    name: str  # the route key, e.g. BINANCE
    label: str  # for people and the seed's log lines, e.g. "Binance"
    broker: Broker
    pipeline: str
    environment: str
    limits: Limits
    schemas_dir: Path
    # where the balance stage holds the funds an order needs until its placement ends (shared
    # by every route of the service, and by replicas on PostgreSQL; see pipeline/reservations.py)
    reservations: Reservations = field(default_factory=MemoryReservations)
    live_blocked: bool = False  # a real-money broker outside ORDERGATE_ENV=live + LIVE_TRADING=yes
    max_age_s: int | None = None  # refuse signals whose "time" is older than this
    max_future_s: int = 5  # with max_age_s: refuse a "time" further ahead of the clock than this
    dedupe_window_s: int | None = None  # an identical id-less payload within this is a repeat
    product: str | None = None  # equities: the route's product type (CNC, MIS, NRML)
    config_dir: Path = Path("config")  # files a stage's options name are relative to it


class Stage(Protocol):
    """One check or action in a chain, built once at startup from its YAML options.

    A stage is called with the signal in flight and returns it (a changed copy when it changes
    something, e.g. a rounded quantity) or raises :class:`Rejection`. It never touches HTTP.

    Class attributes tell the registry how to build and place it:

    * ``options_schema``: Cerberus schema of its YAML options (validated at startup).
    * ``requires``: stages that must come earlier in the same chain.

    No stage holds a lock across a broker call: ``balance`` reserves the funds it checked in
    the route's ledger, and the runner settles the reservation when the signal's life ends.
    """

    options_schema: ClassVar[dict[str, Any]]
    requires: ClassVar[tuple[str, ...]]

    def __call__(self, signal: Signal) -> Signal: ...
