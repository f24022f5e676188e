"""The FlatTrade adapter (NSE/BSE equities through NorenOMS PiConnect), in three parts:

* :mod:`.client`: the NorenOMS HTTP client, and the one place its failures become ordergate's errors;
* :mod:`.session`: the daily login's token, kept in the journal's database (``broker_sessions``);
* :mod:`.broker`: the adapter: markets and prices, price protection, placement and recovery.
"""

from __future__ import annotations

from ordergate.brokers.flattrade.broker import OPTIONS_SCHEMA, FlatTradeBroker, protected_price
from ordergate.brokers.flattrade.client import NorenClient
from ordergate.brokers.flattrade.session import (
    IST,
    LOGIN_PATH,
    SESSION_EXPIRED,
    Session,
    SessionExpired,
    SessionStore,
    next_expiry,
)

__all__ = [
    "IST",
    "LOGIN_PATH",
    "OPTIONS_SCHEMA",
    "SESSION_EXPIRED",
    "FlatTradeBroker",
    "NorenClient",
    "Session",
    "SessionExpired",
    "SessionStore",
    "next_expiry",
    "protected_price",
]
