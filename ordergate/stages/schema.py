"""``schema``: validate the payload against a JSON Schema file and type the order.

Before validating, values are read the way alert templates write them: numeric strings
(``"0.001"``, what a quoted TradingView placeholder renders) become Decimals where the schema
wants a number, ``"true"``/``"false"`` become booleans, enum strings match in any case
(``BUY``, ``Market``), and symbols lose TradingView's decorations (``BINANCE:BTCUSDT``,
``BTCUSDT.P``, ``BTC/USDT:USDT``). Extra fields are allowed and kept in the payload.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import jsonschema
from jsonschema.exceptions import ValidationError

from ordergate.config import json_object
from ordergate.pipeline.errors import ConfigError, Rejection
from ordergate.pipeline.money import to_decimal
from ordergate.pipeline.signal import Order, Signal, client_order_id, normalize_symbol
from ordergate.pipeline.signal import given_id as given_id  # the ids live with the signal; read here too
from ordergate.pipeline.stage import RouteContext

log = logging.getLogger("ordergate")

_TRUE = {"true", "yes", "1"}
_FALSE = {"false", "no", "0"}


def coerce(payload: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """Read template-rendered values as the schema's types; leave anything unreadable alone
    so validation reports it against the field."""
    properties = schema.get("properties", {})
    result = dict(payload)
    for key, value in payload.items():
        spec = properties.get(key)
        if not isinstance(spec, Mapping):
            continue
        wanted = spec.get("type")
        if isinstance(value, str) and value != value.strip():
            value = result[key] = value.strip()  # "{{ticker}} " renders with the template's spaces
        if wanted in ("number", "integer") and isinstance(value, str):
            number = to_decimal(value)
            if number is not None:
                result[key] = number
        elif wanted == "boolean" and isinstance(value, str):
            lowered = value.strip().lower()
            if lowered in _TRUE | _FALSE:
                result[key] = lowered in _TRUE
        elif isinstance(value, str) and "enum" in spec:
            match = [e for e in spec["enum"] if isinstance(e, str) and e.lower() == value.strip().lower()]
            if match:
                result[key] = match[0]
    return result


def describe(error: ValidationError) -> str:
    """A one-line reason that names the field, for the trader."""
    field = ".".join(str(p) for p in error.absolute_path)
    expected: Any = error.validator_value
    instance: Any = error.instance
    if error.validator == "required":
        missing = [name for name in expected if name not in instance]
        name = missing[0] if missing else field
        return f"Missing required field: {name}" + (f" ({field})" if field else "")
    value = error.instance
    shown = json.dumps(value, default=str)[:40] if not isinstance(value, Decimal) else format(value, "f")[:40]
    if not field:
        return f"Invalid payload: {error.message[:120]}"
    if error.validator == "enum":
        allowed = " or ".join(str(v) for v in expected)
        return f"Invalid {field}: {shown} (expected {allowed})"
    if error.validator == "type":
        return f"Invalid {field}: {shown} is not a {error.validator_value}"
    if error.validator in ("exclusiveMinimum", "minimum"):
        bound = "greater than" if error.validator == "exclusiveMinimum" else "at least"
        return f"Invalid {field}: {shown} (must be {bound} {error.validator_value})"
    if error.validator in ("maximum", "exclusiveMaximum"):
        return f"Invalid {field}: {shown} (must be at most {error.validator_value})"
    if error.validator in ("pattern", "maxLength", "minLength"):
        return f"Invalid {field}: {shown} is not an accepted value"
    return f"Invalid {field}: {error.message[:120]}"


def _order_of(payload: Mapping[str, Any], signal_id: str, route: str, product: str | None = None) -> Order:
    order_type = payload["type"]
    quantity = to_decimal(payload["quantity"])
    assert quantity is not None  # the schema said it is a number
    return Order(
        symbol=normalize_symbol(payload["symbol"]),
        side=payload["side"],
        type=order_type,
        quantity=quantity,
        price=to_decimal(payload.get("price")) if order_type == "LIMIT" else None,
        price_hint=to_decimal(payload.get("price")) if order_type == "MARKET" else None,
        reduce_only=payload.get("reduceOnly", payload.get("reduce_only")) is True,
        client_order_id=client_order_id(route, payload, signal_id),
        product=payload["product"] if isinstance(payload.get("product"), str) else product,
    )


class SchemaCheck:
    """Validate the payload against a JSON Schema file and build the typed order."""

    options_schema: ClassVar[dict[str, Any]] = {"file": {"type": "string", "default": "signal.schema.json"}}
    requires: ClassVar[tuple[str, ...]] = ()

    def __init__(self, options: dict[str, Any], route: RouteContext) -> None:
        path = Path(route.schemas_dir) / options["file"]
        self.route = route
        self.schema = load_schema(path)
        self.validator = jsonschema.Draft202012Validator(self.schema)

    def __call__(self, signal: Signal) -> Signal:
        payload = coerce(signal.payload, self.schema)
        error = jsonschema.exceptions.best_match(self.validator.iter_errors(payload))
        if error is not None:
            log.info("Processing %s Signal: %s", self.route.label, _summary(signal.payload))
            raise Rejection(describe(error), kind="invalid", code="invalid_payload")
        signal = signal.replace(
            payload=payload, order=_order_of(payload, signal.id, self.route.name, self.route.product)
        )
        log.info("Processing %s Signal: %s", self.route.label, signal.require_order().describe())
        return signal


def _summary(payload: Mapping[str, Any]) -> str:
    return " ".join(str(payload.get(k, "?"))[:24] for k in ("side", "symbol", "quantity", "type"))


_CACHE: dict[Path, dict[str, Any]] = {}


def load_schema(path: Path) -> dict[str, Any]:
    """Read and check a JSON Schema file once; several routes share the same file."""
    path = path.resolve()
    if path not in _CACHE:
        try:
            schema = json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal, object_pairs_hook=json_object)
        except OSError as exc:
            raise ConfigError(f"cannot read JSON Schema: {exc.strerror}", file=str(path)) from None
        except ValueError as exc:
            raise ConfigError(f"invalid JSON: {exc}", file=str(path)) from None
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as exc:
            where = ".".join(str(p) for p in exc.absolute_path)
            raise ConfigError(f"not a valid JSON Schema: {exc.message}", file=str(path), path=where) from None
        _CACHE[path] = schema
    return _CACHE[path]
