"""ordergate's own error types, sorted by what the operator must do.

::

    OrdergateError
    ├── Rejection              expected: a stage refused the signal; the trader reads the reason
    │   └── (kind: invalid payload, refused by a trading rule, rate_limited, unauthorized, not_found)
    ├── ConfigError            fix the YAML: raised at startup only, names the file and key path
    └── BrokerError            the broker failed us, not the signal
        ├── BrokerUnavailable  transient; no order can exist yet, so the sender may retry
        │   └── JournalUnavailable  the journal cannot be written (file gone, disk full, read-only)
        ├── BrokerAuthError    fix the keys (never retried)
        └── OrderOutcomeUnknown  an order may exist: look it up by client order id, never re-send

Adapters translate their library's exceptions into these in one place each. They carry what
happened, never an HTTP status: ``ordergate.answers`` holds the one table from meaning to
status, beside the error handlers that render them.
"""

from __future__ import annotations

from typing import Literal

# The seed's words. They are the contract with existing alert setups: never reword them.
ORDER_TOO_SMALL = "Order size too small"
INVALID_PRECISION = "Invalid quantity precision"
INSUFFICIENT_BALANCE = "Insufficient balance"
INVALID_SYMBOL = "Invalid symbol"


class OrdergateError(Exception):
    """Base of every error ordergate raises on purpose."""


# What a refusal is: a payload that cannot be read as a signal, one refused by a trading rule,
# one over a rate limit, a sender that is not allowed, or something that does not exist.
RejectionKind = Literal["invalid", "refused", "rate_limited", "unauthorized", "not_found"]


class Rejection(OrdergateError):
    """The signal was refused: a normal outcome, not a fault (like scrapy's ``DropItem``).

        ``reason`` is shown to the trader verbatim, so it must never carry secrets or library
        internals. ``kind`` says what sort of refusal it is (the HTTP layer answers each with its
    own status); ``stage`` names the stage that
        refused (the runner fills it in); ``code`` is a stable machine-readable tag; ``notes`` reach
        the answer's ``notes`` like a stage's own.
    """

    def __init__(
        self,
        reason: str,
        *,
        kind: RejectionKind = "refused",
        code: str | None = None,
        stage: str | None = None,
        notes: tuple[str, ...] = (),
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind: RejectionKind = kind
        self.code = code
        self.stage = stage
        self.notes = notes  # what the refusing stage noticed on the way (e.g. an ignored price hint)


class ConfigError(OrdergateError):
    """The configuration cannot be used; raised at startup, never per request.

    ``set_by`` names the environment variables that gave the key its value, as the user set
    them (``LIVE_TRADING=perhaps``, or only the name for anything that may be secret); the
    settings fill it in (``Settings.explain``), so a raise names only the file and key path.
    """

    def __init__(self, message: str, *, file: str | None = None, path: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.path = path
        self.set_by: tuple[str, ...] = ()

    def __str__(self) -> str:
        where = ":".join(p for p in (self.file, self.path) if p)
        if where and self.set_by:
            where = f"{where} (set by {', '.join(self.set_by)})"
        return f"{where}: {self.message}" if where else self.message


class BrokerError(OrdergateError):
    """The broker could not do what was asked; ``broker`` names the configured broker."""

    def __init__(self, message: str, *, broker: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.broker = broker


class BrokerUnavailable(BrokerError):
    """Transient failure before any order could exist (network, rate limit, maintenance)."""


class BrokerAuthError(BrokerError):
    """The broker refused our credentials; retrying cannot help."""


class OrderOutcomeUnknown(BrokerError):
    """A placement may have reached the broker but we do not know its result.

    Never answered with a 5xx (that would make TradingView re-send the signal); the order is
    looked up by its client order id, never re-sent blind.
    """

    def __init__(
        self, message: str = "Order status unknown: it is being checked with the broker", *, broker: str | None = None
    ) -> None:
        super().__init__(message, broker=broker)


class JournalUnavailable(BrokerUnavailable):
    """The journal cannot be written: its SQLite file was deleted or replaced while serving, the
    disk is full, the database is read-only or unreachable. Raised before anything is sent, so
    nothing was placed: the sender may retry. ``reason`` says what, for ``/readyz``."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"Journal unavailable: {reason}; nothing was placed, try again shortly")
        self.reason = reason
