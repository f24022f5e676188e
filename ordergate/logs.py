"""Logging setup: the seed's plain lines, with a time stamp and level."""

from __future__ import annotations

import logging
import sys


def configure_logging(level: str = "INFO") -> None:
    """Send ordergate's lines to stderr once; repeated calls do not duplicate handlers."""
    root = logging.getLogger("ordergate")
    if any(getattr(h, "_ordergate", False) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    handler._ordergate = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper() if level.upper() in logging.getLevelNamesMapping() else "INFO")
    root.propagate = False
