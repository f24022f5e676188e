"""Logging setup: the seed's plain lines by default, one JSON object a line with LOG_FORMAT=json.

Every line logged while a signal is handled carries its id (``signalId`` in JSON), from a
context variable the webhook sets: the runner, the stages and the brokers need not pass it.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

current_signal: ContextVar[str | None] = ContextVar("ordergate_signal", default=None)


@contextmanager
def signal_context(signal_id: str) -> Iterator[None]:
    """Tag every log line in the block with ``signal_id``."""
    token = current_signal.set(signal_id)
    try:
        yield
    finally:
        current_signal.reset(token)


class SignalFilter(logging.Filter):
    """Put the signal being handled (if any) on the record as ``signal_id``."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.signal_id = current_signal.get()
        return True


class SeedFormatter(logging.Formatter):
    """``2026-11-25 01:39:48 Processing Binance Signal: ...``; warnings and errors say so."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        if record.levelno == logging.INFO:
            return line
        stamp = self.formatTime(record, self.datefmt)
        return line.replace(stamp, f"{stamp} {record.levelname}", 1)


class JsonFormatter(logging.Formatter):
    """``{"time": ..., "level": "INFO", "message": ..., "signalId": ...}``, one per line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "message": record.getMessage(),
        }
        signal_id = getattr(record, "signal_id", None)
        if signal_id:
            entry["signalId"] = signal_id
        if record.name != "ordergate":
            entry["logger"] = record.name
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Send ordergate's lines to stderr once (``fmt``: text or json); repeated calls do not add handlers."""
    logger = logging.getLogger("ordergate")
    if any(getattr(h, "_ordergate", False) for h in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    if fmt.strip().lower() == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(SeedFormatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    handler.addFilter(SignalFilter())
    handler._ordergate = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    name = level.upper()
    logger.setLevel(name if name in logging.getLevelNamesMapping() else "INFO")
    logger.propagate = False  # waitress configures the root logger; avoid every line twice
