"""Reading a signal's body: JSON whatever the Content-Type, numbers as exact Decimals, and a
clear refusal (``Rejection``, code ``invalid_json``, ``too_deep``...) for anything else. The
webhook, ``replay`` and ``send`` all read bodies with :func:`parse_body`."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from ordergate.pipeline.errors import Rejection
from ordergate.pipeline.money import MAX_DIGITS, too_long
from ordergate.pipeline.text import shown_field, unstorable

# Alert bodies are a few hundred bytes; this bounds how deep a hostile body may nest.
MAX_DEPTH = 32


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise Rejection(f"Invalid JSON: duplicate key {key[:40]!r}", kind="invalid", code="duplicate_key")
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise Rejection(f"Invalid JSON: {name} is not a number", kind="invalid", code="invalid_json")


def _number(text: str) -> Decimal:
    """A JSON number, exactly; one with more digits than any price or quantity has is refused,
    so no later step can round it (see money.MAX_DIGITS)."""
    value = Decimal(text)
    if too_long(value):
        shown = text if len(text) <= 24 else f"{text[:20]}..."
        reason = f"Invalid JSON: the number {shown} has more than {MAX_DIGITS} digits"
        raise Rejection(reason, kind="invalid", code="number_too_long")
    return value


def _depth(value: Any, limit: int) -> int:
    stack = [(value, 1)]
    deepest = 0
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > limit:
            break
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
    return deepest


def _field(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _unstorable_text(value: Any, path: str = "") -> tuple[str, str] | None:
    """The first field (its path, e.g. ``legs[0].symbol``) whose name or text cannot be stored,
    and what it holds; None when every string can be. Depth is bounded before this runs."""
    if isinstance(value, str):
        problem = unstorable(value)
        return None if problem is None else (f'field "{shown_field(path)}"', problem)
    items: Any = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        where = _field(path, key)
        problem = unstorable(key) if isinstance(key, str) else None
        if problem is not None:
            return f'the name of field "{shown_field(where)}"', problem
        found = _unstorable_text(item, where)
        if found is not None:
            return found
    return None


def parse_body(raw: bytes) -> dict[str, Any]:
    """JSON whatever the Content-Type, numbers as Decimal; a clear 400 for anything else."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Rejection("Invalid body: not UTF-8 text", kind="invalid", code="invalid_encoding") from None
    if not text.strip():
        raise Rejection("Empty body: send the alert message as JSON", kind="invalid", code="empty_body")
    try:
        payload = json.loads(
            text, parse_float=_number, parse_int=_number, parse_constant=_no_constants, object_pairs_hook=_no_duplicates
        )
    except json.JSONDecodeError as exc:
        raise Rejection(
            f"Invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}", kind="invalid", code="invalid_json"
        ) from None
    except (ValueError, RecursionError):  # e.g. an integer of more than 4300 digits, deep nesting
        reason = "Invalid JSON: a value is too large or too deeply nested"
        raise Rejection(reason, kind="invalid", code="invalid_json") from None
    if not isinstance(payload, dict):
        raise Rejection("Invalid payload: expected a JSON object", kind="invalid", code="not_an_object")
    if _depth(payload, MAX_DEPTH) > MAX_DEPTH:
        raise Rejection("Invalid payload: nested too deeply", kind="invalid", code="too_deep")
    refuse_unstorable_text(payload)
    return payload


def refuse_unstorable_text(payload: dict[str, Any]) -> None:
    """A 400 naming the first field whose name or text holds a lone surrogate or NUL.

    JSON escapes can spell both; no UTF-8 text holds a lone surrogate and PostgreSQL refuses
    NUL, so either is refused before anything is journaled, answered or logged.
    """
    found = _unstorable_text(payload)
    if found is not None:
        where, problem = found
        raise Rejection(f"Invalid text in {where}: {problem}", kind="invalid", code="invalid_text")
