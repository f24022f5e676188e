"""Broker adapters, by the ``adapter:`` name the YAML uses (imported only when used)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from ordergate.brokers.base import Broker
from ordergate.brokers.endpoints import Money, money_of
from ordergate.pipeline.errors import ConfigError

ADAPTERS: dict[str, str] = {
    "paper": "ordergate.brokers.paper:PaperBroker",
    "ccxt": "ordergate.brokers.ccxt:CcxtBroker",
    "flattrade": "ordergate.brokers.flattrade:FlatTradeBroker",
}


def build_broker(name: str, options: dict[str, Any], *, config_dir: Path, file: str) -> Broker:
    """Build the broker ``name`` from its YAML options with the adapter they name."""
    target = ADAPTERS.get(options["adapter"])
    if target is None:
        known = ", ".join(sorted(ADAPTERS))
        raise ConfigError(
            f"unknown adapter {options['adapter']!r} (known: {known})", file=file, path=f"brokers.{name}.adapter"
        )
    module, _, cls = target.partition(":")
    adapter: Any = getattr(importlib.import_module(module), cls)
    broker: Broker = adapter.from_config(name, options, config_dir=config_dir, file=file)
    return broker


def broker_money(name: str, options: dict[str, Any], *, file: str) -> Money:
    """Whose money the broker ``name`` would trade, from its YAML options alone: no request is
    made and nothing is started (``replay`` keeps the live guard of brokers it never builds)."""
    adapter = options.get("adapter")
    if adapter == "paper":
        return "paper"
    if adapter == "ccxt":
        from ordergate.brokers.ccxt import options_money

        return options_money(name, options, file=file)
    if adapter == "flattrade":
        from ordergate.brokers.flattrade import OPTIONS_SCHEMA
        from ordergate.config import validate

        opts = validate(options, OPTIONS_SCHEMA, file=file, path=f"brokers.{name}")
        return money_of([opts["api_url"]], sandbox=opts["sandbox"])
    return "live"  # an adapter nobody knows: assume real money
