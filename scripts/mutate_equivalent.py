"""Mutants reviewed as *equivalent*: changes no input can tell from the original, so no test can kill them.

`make mutate` (scripts/mutate_report.py) lists a survivor matching an entry here apart, with its reason, and
does not count it against the score. An entry names the file, the original line and the mutated line (both
stripped, as the report prints them); when either line changes, the entry stops matching and the mutant is a
survivor again, to be looked at anew. This is finer than mutmut's ``# pragma: no mutate``, which would also
drop every other change on the same line, the ones a test does catch.
"""

from __future__ import annotations

PAPER = "ordergate/brokers/paper.py"
_SUM = "return free - sum((held for a, held in self._reserved.values() if a == asset), ZERO)"
_CLOSING = "closing = min(order.quantity, abs(position.quantity)) if position.quantity * signed < 0 else ZERO"
_DIRECTION = "direction = 1 if position.quantity > 0 else -1"
_CREDIT = "credit = closing * position.entry / self._leverage + closing * (price - position.entry) * direction"
_OPENING = "if position.quantity * signed >= 0:  # opening or extending"
_PNL = "pnl = closing * (price - position.entry) * direction"
_BOOK = "self._balances[market.quote] = self._balances.get(market.quote, ZERO) + pnl"
_FLIPPED = "elif position.quantity * signed > 0:  # flipped: the rest opened a new position at price"
BN = "ordergate/brokers/binance.py"  # Binance's wire fields, read for the ccxt adapter
_FIRST_LINE = 'return None, text.split("\\n", 1)[0][:160]'
_AVG = 'average = wire_decimal(info.get("avgPrice")) if info.get("avgPrice") else ZERO'
_STATUS = 'status = str(info.get("status") or raw.get("status") or "NEW").upper()'
_MAPPED = 'status={"CLOSED": "FILLED", "OPEN": "NEW", "CANCELED": "CANCELED"}.get(status, status),'
_SIDE = 'side="buy" if str(info.get("side") or raw.get("side") or "").lower() == "buy" else "sell",'
_TYPE = 'type="LIMIT" if str(info.get("type") or raw.get("type") or "").upper() == "LIMIT" else "MARKET",'

# (file, original line, mutated line, why no test can tell them apart)
EQUIVALENT: list[tuple[str, str, str, str]] = [
    (
        "ordergate/pipeline/money.py",
        'return format(value.normalize(), "f")',
        'return format(value.normalize(), "F")',
        'for a Decimal, format spec "F" prints exactly what "f" prints (NaN and Infinity too)',
    ),
    (
        "ordergate/pipeline/money.py",
        'return format(value.normalize(), ",f")',
        'return format(value.normalize(), ",F")',
        'as in plain(): ",F" and ",f" print a Decimal alike',
    ),
    (
        "ordergate/pipeline/money.py",
        "return to_step(value, step, up=False)",
        "return to_step(value, step, up=None)",
        "to_step reads up only for its truth (ROUND_CEILING if up else ROUND_FLOOR): None is as false as False",
    ),
    (
        "ordergate/stages/precision.py",
        "if price is not None and order.price is not None:",
        "if price is not None or order.price is not None:",
        "price is order.price at this point; the second test is only there for mypy",
    ),
    (PAPER, _SUM, _SUM.replace(", ZERO)", ", )"), "sum() starts at int 0 instead: Decimal - 0 is the same Decimal"),
    (PAPER, _CLOSING, _CLOSING.replace("* signed < 0", "/ signed < 0"), "signed is never 0: / and * agree in sign"),
    (PAPER, _CLOSING, _CLOSING.replace("< 0", "<= 0"), "at 0 the position is flat: min(quantity, 0) is 0 too"),
    (PAPER, _DIRECTION, _DIRECTION.replace("> 0", ">= 0"), "flat: _requirement closes 0 of it; _fill never closes one"),
    (PAPER, _CREDIT, _CREDIT.replace(") * direction", ") / direction"), "direction is 1 or -1: / and * agree"),
    (PAPER, _OPENING, _OPENING.replace("* signed", "/ signed"), "signed is never 0: / and * agree in sign"),
    (PAPER, _OPENING, _OPENING.replace(">= 0", "> 0"), "from flat, the closing branch opens at price all the same"),
    (PAPER, _PNL, _PNL.replace(") * direction", ") / direction"), "direction is 1 or -1: / and * agree"),
    (PAPER, _BOOK, _BOOK.replace(", ZERO)", ", None)"), "a position exists only after its quote asset paid margin"),
    (PAPER, _BOOK, _BOOK.replace(", ZERO)", ", )"), "a position exists only after its quote asset paid margin"),
    (PAPER, _FLIPPED, _FLIPPED.replace("* signed", "/ signed"), "signed is never 0: / and * agree in sign"),
    (PAPER, _FLIPPED, _FLIPPED.replace("> 0", ">= 0"), "a position of exactly 0 took the branch above"),
    (BN, _FIRST_LINE, _FIRST_LINE.replace(", 1)", ", )"), "the first piece of a split is the same at any maxsplit"),
    (BN, _FIRST_LINE, _FIRST_LINE.replace(", 1)", ", 2)"), "the first piece of a split is the same at any maxsplit"),
    (
        BN,
        _AVG,
        _AVG.replace('if info.get("avgPrice")', 'if (info.get("avgPrice")) or True'),
        "wire_decimal of a falsy is 0",
    ),
    (BN, _STATUS, _STATUS.replace('"NEW"', '"new"'), '.upper() makes "new" "NEW"'),
    (BN, _MAPPED, _MAPPED.replace('"CANCELED": "C', '"XXCANCELEDXX": "C'), "CANCELED maps to itself anyway"),
    (BN, _MAPPED, _MAPPED.replace('"CANCELED": "C', '"canceled": "C'), "CANCELED maps to itself anyway"),
    (BN, _SIDE, _SIDE.replace('or "")', 'or "XXXX")'), 'neither "" nor "xxxx" is "buy": sell either way'),
    (BN, _TYPE, _TYPE.replace('or "")', 'or "XXXX")'), 'neither "" nor "XXXX" is "LIMIT": MARKET either way'),
]
