"""Pure functions for money math. Every amount is a ``Decimal``; no float ever enters.

Python's default context keeps 28 significant digits, and ``normalize()``, ``+``, ``*`` round
to it silently: ``0.00299999999999999999999999999999`` (32 decimals) normalizes to ``0.003``,
which would pass an 8-decimal check and become an order. So a number that enters ordergate
has at most :data:`MAX_DIGITS` digits (more is refused with a clear 400), and every thread
computes in a context of :data:`PRECISION` digits, enough for any product or quotient of two
such numbers to be exact: nothing an operator or a trader wrote is ever rounded unseen.
"""

from __future__ import annotations

import decimal
import json
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any

ZERO = Decimal(0)
MAX_DIGITS = 60  # digits of a number in a signal or the config, leading and trailing zeros included
PRECISION = 4 * MAX_DIGITS  # a product of two inputs needs 2 x MAX_DIGITS; room for one more step


def widen_context() -> None:
    """Make :data:`PRECISION` the precision of this thread and of every thread started later."""
    decimal.DefaultContext.prec = PRECISION
    decimal.getcontext().prec = PRECISION


widen_context()


def too_long(value: Decimal) -> bool:
    """More digits than :data:`MAX_DIGITS`, written out in full (``1E+70`` counts its zeros)."""
    if not value.is_finite():
        return False
    _sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    return max(len(digits), len(digits) + exponent, -exponent) > MAX_DIGITS


def to_decimal(value: object, *, floats: bool = False) -> Decimal | None:
    """Parse a JSON number or a numeric string into a finite Decimal; None if it is neither.

    Floats are refused unless ``floats``: by the time a value is a float, precision is already
    lost. A broker library's answer is the exception (ccxt parses an exchange's JSON numbers to
    floats): ``floats`` reads one by its shortest repr, ``0.1`` as ``0.1``, never its binary expansion.
    """
    if isinstance(value, bool) or (isinstance(value, float) and not floats):
        return None
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, (str, float)):
        text = value.strip() if isinstance(value, str) else repr(value)
        if "_" in text:  # Decimal() accepts '1_000'; a quantity in an alert should not
            return None
        try:
            result = Decimal(text)
        except InvalidOperation:
            return None
    else:
        return None
    return result if result.is_finite() and not too_long(result) else None


def wire_decimal(value: object, default: Decimal = ZERO) -> Decimal:
    """A number in a broker's answer (a string on the wire, or ccxt's float) as an exact Decimal,
    ``default`` when it is absent (None, "") or not a finite number: :func:`to_decimal` with floats."""
    result = to_decimal(value, floats=True)
    return default if result is None else result


def decimals(value: Decimal) -> int:
    """Number of significant decimal places: ``0.0010`` has 3, ``10`` and ``1E+1`` have 0."""
    exponent = value.normalize().as_tuple().exponent
    assert isinstance(exponent, int)  # finite values only
    return max(0, -exponent)


def to_step(value: Decimal, step: Decimal, *, up: bool) -> Decimal:
    """``value`` on the grid of ``step`` (a tick size, a lot step), rounded up or down; a step of
    0 means no such rule. Every rounding of a price or a quantity in ordergate is this one."""
    if step <= 0:
        return value
    return (value / step).to_integral_value(rounding=ROUND_CEILING if up else ROUND_FLOOR) * step


def floor_to_step(value: Decimal, step: Decimal) -> Decimal:
    """Truncate a quantity down to a multiple of ``step``, as exchanges apply their lot step
    (Binance LOT_SIZE): never more than the trader asked for."""
    return to_step(value, step, up=False)


def round_price(value: Decimal, tick: Decimal, side: str) -> Decimal:
    """Round a limit price to the tick, never to a worse price for the trader.

    A buy rounds down (never pays more than asked), a sell rounds up (never sells for less).
    """
    return to_step(value, tick, up=side.lower() != "buy")


def dumps(value: object, **options: Any) -> str:
    """JSON with every Decimal as its exact plain string (``"0.001"``), never a float."""
    return json.dumps(value, default=lambda v: plain(v) if isinstance(v, Decimal) else str(v), **options)


def plain(value: Decimal) -> str:
    """Exact, human text for a Decimal: ``43500``, ``0.001``, never ``4.35E+4``."""
    return format(value.normalize(), "f")


def money(value: Decimal) -> str:
    """Like :func:`plain` with thousands separators, as the logs show: ``43,500``, ``43.5``."""
    return format(value.normalize(), ",f")
