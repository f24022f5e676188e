"""Logging setup: the seed's plain lines, time-stamped; the level shown only when it matters."""

from __future__ import annotations

import logging
import sys


class SeedFormatter(logging.Formatter):
    """``2026-11-25 01:39:48 Processing Binance Signal: ...``; warnings and errors say so."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        if record.levelno == logging.INFO:
            return line
        stamp = self.formatTime(record, self.datefmt)
        return line.replace(stamp, f"{stamp} {record.levelname}", 1)


def configure_logging(level: str = "INFO") -> None:
    """Send ordergate's lines to stderr once; repeated calls do not add handlers."""
    logger = logging.getLogger("ordergate")
    if any(getattr(h, "_ordergate", False) for h in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(SeedFormatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    handler._ordergate = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    name = level.upper()
    logger.setLevel(name if name in logging.getLevelNamesMapping() else "INFO")
    logger.propagate = False  # waitress configures the root logger; avoid every line twice
