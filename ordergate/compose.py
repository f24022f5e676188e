"""The composition root: brokers and every route's chain, built from the settings.

YAML stage names -> stage classes, options validated, chains checked, brokers built; it lives
outside ``pipeline/``, which it assembles from ``stages/`` and ``brokers/``.

Everything that can be checked without a signal is checked here, at startup: unknown stage
names, bad options (Cerberus), impossible chains (a stage before what it requires, two
``execute`` stages, a check after ``execute``), routes naming missing brokers or pipelines.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ordergate.brokers import build_broker
from ordergate.config import Settings, validate
from ordergate.pipeline.broker import Broker
from ordergate.pipeline.errors import ConfigError
from ordergate.pipeline.reservations import MemoryReservations, Reservations
from ordergate.pipeline.runner import Observer, Runner
from ordergate.pipeline.stage import Limits, RouteContext, Stage
from ordergate.stages import BUILTIN


def stage_class(name: str, *, file: str, path: str) -> type[Any]:
    """A built-in stage by name, or a custom one by ``package.module:ClassName``."""
    if name in BUILTIN:
        return BUILTIN[name]
    if ":" in name:
        module_name, _, attr = name.partition(":")
        try:
            found = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"cannot import stage {name!r}: {exc}", file=file, path=path) from None
        if not isinstance(found, type):
            raise ConfigError(f"stage {name!r} is not a class", file=file, path=path)
        return found
    known = ", ".join(BUILTIN)
    raise ConfigError(f"unknown stage {name!r} (known: {known}, or package.module:Class)", file=file, path=path)


def _decimal_or_none(value: Any) -> Decimal | None:
    return None if value is None else Decimal(value)


def _entries(chain: list[Any], *, file: str, path: str) -> list[tuple[str, dict[str, Any], str]]:
    """``- notional: {min: 10}`` / ``- limits`` -> ``(name, options, key path)``."""
    entries: list[tuple[str, dict[str, Any], str]] = []
    for index, item in enumerate(chain):
        where = f"{path}[{index}]"
        if isinstance(item, str):
            entries.append((item, {}, where))
        elif isinstance(item, dict) and len(item) == 1:
            name, options = next(iter(item.items()))
            if options is None:
                options = {}
            if not isinstance(options, dict):
                raise ConfigError(f"options of stage {name!r} must be a mapping", file=file, path=f"{where}.{name}")
            entries.append((str(name), options, f"{where}.{name}"))
        else:
            raise ConfigError("a stage is a name, or a mapping of one name to its options", file=file, path=where)
    return entries


@dataclass(frozen=True)
class Service:
    """Everything built from the configuration: brokers, and a runner per route and alias."""

    settings: Settings
    brokers: Mapping[str, Broker]
    runners: Mapping[str, Runner]  # route name -> runner
    aliases: Mapping[str, str]  # upper-cased route name or alias -> route name

    def runner_for(self, broker_field: str) -> Runner | None:
        route = self.aliases.get(broker_field.strip().upper())
        return self.runners[route] if route is not None else None


def build_chain(
    pipeline: str, chain: list[Any], route: RouteContext, overrides: Mapping[str, Any], *, file: str
) -> Runner:
    """Build one route's runner from its pipeline's stage list; a stage switched off
    (``enabled: false``) is checked as any other and then dropped: it never runs nor traces."""
    stages: list[tuple[str, Stage]] = []
    observers: list[tuple[str, Observer]] = []
    seen: list[str] = []
    declared: list[str] = []
    for name, options, where in _entries(chain, file=file, path=f"pipelines.{pipeline}"):
        cls = stage_class(name, file=file, path=where)
        merged = {**options, **overrides.get(name, {})}
        opts = validate(merged, getattr(cls, "options_schema", {}), file=file, path=where)
        for needed in getattr(cls, "requires", ()):
            if needed not in seen:
                raise ConfigError(f"stage {name!r} needs {needed!r} earlier in the chain", file=file, path=where)
        if getattr(cls, "unique", False) and name in seen:
            raise ConfigError(f"stage {name!r} may appear only once", file=file, path=where)
        is_observer = getattr(cls, "observer", False)
        if "execute" in seen and not is_observer:
            raise ConfigError(f"stage {name!r} comes after 'execute'; only observers may", file=file, path=where)
        instance = cls(opts, route)
        seen.append(name)
        if not getattr(instance, "enabled", True):
            if not is_observer:
                declared.append(f"{name} (off)")
            continue
        if is_observer:
            observers.append((name, instance))
        else:
            stages.append((name, instance))
            declared.append(name)
    return Runner(route, stages, observers, declared=[*declared, *(n for n, _ in observers)])


def build_service(
    settings: Settings,
    brokers: Mapping[str, Broker] | None = None,
    reservations: Reservations | None = None,
) -> Service:
    """Build brokers (unless injected) and every route's chain; raises ConfigError, which
    names the environment variables that set the key it is about (``Settings.explain``).

    Every route shares ``reservations`` (the ledger of funds held by signals in flight; by
    default one in this process), so two routes on one account never spend the same funds."""
    try:
        return _build_service(settings, brokers, reservations or MemoryReservations())
    except ConfigError as error:
        settings.explain(error)
        raise


def _build_service(
    settings: Settings,
    brokers: Mapping[str, Broker] | None,
    reservations: Reservations,
) -> Service:
    data = settings.data
    if brokers is None:
        brokers = {}
    built = dict(brokers)
    routes = data["routes"]
    used = {r["broker"] for r in routes.values()}
    for name in sorted(used):
        if name in built:
            continue
        if name not in data["brokers"]:
            continue  # reported below, against the route that names it
        file = settings.origin(f"brokers.{name}")
        built[name] = build_broker(name, data["brokers"][name], config_dir=settings.config_dir, file=file)

    for name, options in data["stages"].items():
        where = f"stages.{name}"
        cls = stage_class(name, file=settings.origin(where), path=where)
        validate(options, getattr(cls, "options_schema", {}), file=settings.origin(where), path=where, partial=True)
    limits = data["limits"]
    for name in limits["routes"]:
        if name not in routes:
            where = f"limits.routes.{name}"
            known = ", ".join(routes)
            raise ConfigError(f"no route named {name!r} (routes: {known})", file=settings.origin(where), path=where)
    runners: dict[str, Runner] = {}
    for route_name, route in routes.items():
        where = f"routes.{route_name}"
        file = settings.origin(where)
        if route["broker"] not in built:
            raise ConfigError(f"no broker named {route['broker']!r} under brokers:", file=file, path=f"{where}.broker")
        if route["pipeline"] not in data["pipelines"]:
            raise ConfigError(
                f"no pipeline named {route['pipeline']!r} under pipelines:", file=file, path=f"{where}.pipeline"
            )
        own = limits["routes"].get(route_name, {})
        context = RouteContext(
            name=route_name,
            label=route.get("label") or route_name.title(),
            broker=built[route["broker"]],
            pipeline=route["pipeline"],
            environment=settings.environment,
            limits=Limits(
                max_notional=_decimal_or_none(own.get("max_notional", limits["max_notional"])),
                max_orders_per_minute=own.get("max_orders_per_minute", limits["max_orders_per_minute"]),
            ),
            schemas_dir=settings.schemas_dir,
            live_blocked=built[route["broker"]].live and not (settings.environment == "live" and data["live_trading"]),
            max_age_s=route["max_age_s"],
            max_future_s=route["max_future_s"],
            dedupe_window_s=route["dedupe_window_s"],
            product=route["product"],
            config_dir=settings.config_dir,
            reservations=reservations,
        )
        pipeline_file = settings.origin(f"pipelines.{route['pipeline']}")
        runners[route_name] = build_chain(
            route["pipeline"], data["pipelines"][route["pipeline"]], context, data["stages"], file=pipeline_file
        )
    return Service(settings, built, runners, _aliases(settings))


LIVE_HINT = "set ORDERGATE_ENV=live and LIVE_TRADING=yes"


def route_summary(service: Service) -> list[str]:
    """One line per route: whose money it trades and whether that is allowed here, e.g.
    ``route BINANCE → binance (binance spot testnet, testnet.binance.vision): test money``."""
    lines = []
    for name, runner in service.runners.items():
        route, broker = runner.route, runner.route.broker
        # ``live`` is what the guard obeys: it wins over a broker's own idea of its money
        money = "live" if broker.live else getattr(broker, "money", "test")
        host = getattr(broker, "endpoint", "")
        where = f"{broker.label}, {host}" if host else broker.label
        if money == "paper":
            what = "paper"
        elif money == "test":
            what = "test money"
        elif route.live_blocked:
            what = f"REAL MONEY, live trading disabled ({LIVE_HINT})"
        else:
            what = "REAL MONEY, live trading enabled"
        lines.append(f"route {name} → {broker.name} ({where}): {what}")
    return lines


def _aliases(settings: Settings) -> dict[str, str]:
    """Upper-cased route names and aliases -> route; route names first, so a clash is an alias's."""
    routes = settings.data["routes"]
    names: dict[str, str] = {}
    for route_name in routes:
        if route_name.upper() in names:
            where = f"routes.{route_name}"
            other = names[route_name.upper()]
            raise ConfigError(f"differs from route {other} only in case", file=settings.origin(where), path=where)
        names[route_name.upper()] = route_name
    for route_name, route in routes.items():
        where = f"routes.{route_name}.aliases"
        for alias in route["aliases"]:
            other = names.setdefault(alias.upper(), route_name)
            if other != route_name:
                raise ConfigError(f"{alias!r} already names route {other}", file=settings.origin(where), path=where)
    return names
