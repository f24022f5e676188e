"""Broker adapters, by the ``adapter:`` name the YAML uses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ordergate.brokers.base import Broker
from ordergate.brokers.paper import PaperBroker
from ordergate.pipeline.errors import ConfigError

ADAPTERS: dict[str, Any] = {"paper": PaperBroker}


def build_broker(name: str, options: dict[str, Any], *, config_dir: Path, file: str) -> Broker:
    """Build the broker ``name`` from its YAML options with the adapter they name."""
    adapter = ADAPTERS.get(options["adapter"])
    if adapter is None:
        known = ", ".join(sorted(ADAPTERS))
        raise ConfigError(
            f"unknown adapter {options['adapter']!r} (known: {known})", file=file, path=f"brokers.{name}.adapter"
        )
    broker: Broker = adapter.from_config(name, options, config_dir=config_dir, file=file)
    return broker
