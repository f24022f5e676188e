"""Pure functions for money math. Every amount is a ``Decimal``; no float ever enters."""

from __future__ import annotations

import json
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any

ZERO = Decimal(0)


def to_decimal(value: object) -> Decimal | None:
    """Parse a JSON number or a numeric string into a finite Decimal; None if it is neither.

    Floats are refused on purpose: by the time a value is a float, precision is already lost.
    """
    if isinstance(value, (bool, float)):
        return None
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        text = value.strip()
        if "_" in text:  # Decimal() accepts '1_000'; a quantity in an alert should not
            return None
        try:
            result = Decimal(text)
        except InvalidOperation:
            return None
    else:
        return None
    return result if result.is_finite() else None


def decimals(value: Decimal) -> int:
    """Number of significant decimal places: ``0.0010`` has 3, ``10`` and ``1E+1`` have 0."""
    exponent = value.normalize().as_tuple().exponent
    assert isinstance(exponent, int)  # finite values only
    return max(0, -exponent)


def floor_to_step(value: Decimal, step: Decimal) -> Decimal:
    """Truncate ``value`` down to a multiple of ``step`` (a step of 0 means no step rule)."""
    if step <= 0:
        return value
    return (value / step).to_integral_value(rounding=ROUND_FLOOR) * step


def round_price(value: Decimal, tick: Decimal, side: str) -> Decimal:
    """Round a limit price to the tick, never to a worse price for the trader.

    A buy rounds down (never pays more than asked), a sell rounds up (never sells for less).
    """
    if tick <= 0:
        return value
    rounding = ROUND_DOWN if side.lower() == "buy" else ROUND_CEILING
    return (value / tick).to_integral_value(rounding=rounding) * tick


def dumps(value: object, **options: Any) -> str:
    """JSON with every Decimal as its exact plain string (``"0.001"``), never a float."""
    return json.dumps(value, default=lambda v: plain(v) if isinstance(v, Decimal) else str(v), **options)


def plain(value: Decimal) -> str:
    """Exact, human text for a Decimal: ``43500``, ``0.001``, never ``4.35E+4``."""
    return format(value.normalize(), "f")


def money(value: Decimal) -> str:
    """Like :func:`plain` with thousands separators, as the logs show: ``43,500``, ``43.5``."""
    return format(value.normalize(), ",f")
