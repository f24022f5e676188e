"""Broker adapters, by the ``adapter:`` name the YAML uses (imported only when used)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from ordergate.brokers.base import Broker
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
