"""Built-in stages, one module each, named as in YAML."""

from __future__ import annotations

from typing import Any

from ordergate.stages.balance import BalanceCheck
from ordergate.stages.execute import OrderExecution
from ordergate.stages.limits import EnvironmentLimits
from ordergate.stages.market_hours import MarketHours
from ordergate.stages.notify import OutcomeNotifier
from ordergate.stages.notional import NotionalCheck
from ordergate.stages.precision import PrecisionRounding
from ordergate.stages.schema import SchemaCheck
from ordergate.stages.whitelist import SymbolWhitelist

BUILTIN: dict[str, type[Any]] = {
    "schema": SchemaCheck,
    "market_hours": MarketHours,
    "whitelist": SymbolWhitelist,
    "precision": PrecisionRounding,
    "notional": NotionalCheck,
    "limits": EnvironmentLimits,
    "balance": BalanceCheck,
    "execute": OrderExecution,
    "notify": OutcomeNotifier,
}
