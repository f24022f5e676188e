"""Text that cannot be stored or shown: refused at the edge, escaped wherever it is read back.

JSON's ``\\uXXXX`` escapes can spell what no UTF-8 text holds. A lone UTF-16 surrogate
(``"\\ud800"``) cannot be encoded at all: not in an answer, a log line, a terminal, nor a
SQLite or PostgreSQL column. A NUL (``"\\u0000"``) is refused by PostgreSQL's text columns.
The webhook refuses both anywhere in a payload (:func:`unstorable`); rows journaled before it
did are read back with them escaped (:func:`json_text` for the history API, :func:`printable`
for a terminal). Everything else (emoji, right-to-left marks, CJK, tabs) is text and passes.
"""

from __future__ import annotations

import re
from typing import Any

from ordergate.pipeline.money import dumps

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
# What would garble or rewrite a terminal line: C0/C1 controls (ESC starts a terminal command),
# lone surrogates, line and paragraph separators, and the bidirectional marks and overrides.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(found: re.Match[str]) -> str:
    code = ord(found.group())
    return f"\\u{code:04x}"


def unstorable(text: str) -> str | None:
    """What in ``text`` cannot be stored or encoded, in words; None when it is all text."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return "a NUL character (\\u0000)"
    return f"a lone UTF-16 surrogate (\\u{ord(found.group()):04x})"


def json_text(value: Any) -> str:
    """JSON as UTF-8 text can carry it: non-ASCII as itself, a lone surrogate as its escape.

    Outside strings JSON is ASCII, so every surrogate ``dumps`` leaves is inside a string, and
    its ``\\uXXXX`` escape reads back as the same string.
    """
    return _SURROGATE.sub(lambda found: f"\\u{ord(found.group()):04x}", dumps(value, ensure_ascii=False))


def printable(text: str) -> str:
    """``text`` safe to print on one terminal line: controls, surrogates and bidi marks escaped."""
    return _UNPRINTABLE.sub(_escape, text)


def shown_field(path: str, limit: int = 80) -> str:
    """A field's path as an answer may quote it: escaped, and cut to ``limit`` characters."""
    path = printable(path).replace('"', '\\"')
    return path if len(path) <= limit else f"{path[: limit - 3]}..."
