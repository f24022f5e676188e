"""Load, interpolate, merge and validate the YAML configuration.

``config/ordergate.yaml`` is the base; ``config/environments/<ORDERGATE_ENV>.yaml`` is merged
over it (mappings merge key by key, anything else is replaced). Numbers are read as ``Decimal``
and ``${VAR}`` / ``${VAR:-default}`` are resolved from the environment, in scalar values only,
so a secret can never change the document's structure. Every error names the file and the key
path, and all of it happens at startup.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import cerberus
import yaml

from ordergate.pipeline.errors import ConfigError
from ordergate.redact import register_settings

ENV_VAR = "ORDERGATE_ENV"
DEFAULT_ENV = "development"

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_INT = re.compile(r"[-+]?[0-9]+")
_DEC = re.compile(r"[-+]?([0-9]+\.[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?|[-+]?[0-9]+[eE][-+]?[0-9]+")


class _DecimalLoader(yaml.SafeLoader):
    """YAML loader that reads floats as exact Decimals (``0.1`` stays ``Decimal('0.1')``)."""


class _Quoted(str):
    """A scalar the YAML quoted: after ``${VAR}`` interpolation it stays a string (``"007"``)."""

    __slots__ = ()


def _string(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> str:
    value = str(loader.construct_scalar(node))
    return _Quoted(value) if node.style in ("'", '"') else value


def _decimal(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Decimal:
    text = str(loader.construct_scalar(node)).replace("_", "")
    lowered = text.lower()
    if lowered in (".inf", "+.inf", "-.inf", ".nan"):
        raise yaml.constructor.ConstructorError(None, None, f"{text} is not a usable number", node.start_mark)
    return Decimal(text)


_DecimalLoader.add_constructor("tag:yaml.org,2002:float", _decimal)
_DecimalLoader.add_constructor("tag:yaml.org,2002:str", _string)


_MERGE = "tag:yaml.org,2002:merge"


def _key_names(node: yaml.Node, loader: yaml.SafeLoader) -> list[tuple[str, Any]]:
    """What makes two keys one: the same written text (``1`` and ``"1"`` are one name to a
    person and to a key path), or the same loaded value (``1`` and ``1.0`` are one dict key)."""
    names: list[tuple[str, Any]] = []
    if isinstance(node, yaml.ScalarNode):
        names.append(("text", str(node.value)))
    try:
        loaded = loader.construct_object(node, deep=True)
        hash(loaded)
    except (TypeError, yaml.YAMLError):
        return names
    names.append(("value", loaded))
    return names


def _refuse_duplicate_keys(
    node: yaml.Node | None, loader: yaml.SafeLoader, file: str, path: str = "", seen: set[int] | None = None
) -> None:
    """Refuse a mapping that writes one key twice: PyYAML would keep the last without a word.

    Only keys written in the mapping itself count: a key brought in by a ``<<`` merge may be
    overridden there, which is what merging is for.
    """
    seen = set() if seen is None else seen
    if node is None or id(node) in seen:  # an alias is checked where its anchor is
        return
    seen.add(id(node))
    if isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _refuse_duplicate_keys(item, loader, file, f"{path}[{index}]", seen)
    elif isinstance(node, yaml.MappingNode):
        first: dict[tuple[str, Any], yaml.Node] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                _refuse_duplicate_keys(value_node, loader, file, path, seen)
                continue
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else f"<{key_node.id}>"
            where = _join(path, key)
            names = _key_names(key_node, loader)
            earlier = next((first[name] for name in names if name in first), None)
            if earlier is not None:
                raise ConfigError(
                    f"line {key_node.start_mark.line + 1}: duplicate key {key!r}, already on line "
                    f"{earlier.start_mark.line + 1} (YAML would silently keep only the last)",
                    file=file,
                    path=where,
                )
            for name in names:
                first.setdefault(name, key_node)
            _refuse_duplicate_keys(value_node, loader, file, where, seen)


def read_yaml(path: Path) -> Any:
    """Parse one YAML file; syntax errors and duplicate keys become ConfigError with file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", file=str(path)) from None
    loader = _DecimalLoader(text)
    try:
        node = loader.get_single_node()
        _refuse_duplicate_keys(node, _DecimalLoader(""), str(path))
        return None if node is None else loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(f"{where}{exc.problem}", file=str(path)) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", file=str(path)) from None
    finally:
        loader.dispose()


def json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads(..., object_pairs_hook=json_object)``: an object that names a key twice is
    refused (``ValueError``), where ``json`` would keep the last, like YAML, without a word."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r} in one object (JSON would silently keep only the last)")
        result[key] = value
    return result


def _scalar(text: str) -> Any:
    """The YAML meaning of an interpolated value that was the whole scalar (``true``, ``8080``)."""
    lowered = text.strip().lower()
    if lowered in ("true", "yes", "on"):
        return True
    if lowered in ("false", "no", "off"):
        return False
    if lowered in ("", "null", "~"):
        return None
    if _INT.fullmatch(text.strip()):
        return int(text)
    if _DEC.fullmatch(text.strip()):
        return Decimal(text.strip())
    return text


# Variables whose values an error message may show: ordergate's own switches, never a secret.
PLAIN_VARIABLES = frozenset(
    {
        "ORDERGATE_ENV",
        "LIVE_TRADING",
        "BINANCE_TESTNET",
        "BINANCE_MARKET_TYPE",
        "BINANCE_LEVERAGE",
        "BINANCE_MARGIN_MODE",
        "PORT",
        "WAITRESS_THREADS",
        "LOG_LEVEL",
        "LOG_FORMAT",
    }
)
_SECRET_NAME = re.compile(r"SECRET|TOKEN|KEY|PASS|PWD|AUTH|CREDENTIAL|PRIVATE|URL|URI|DSN|COOKIE|SESSION|SIGN", re.I)
_PLAIN_VALUE = re.compile(r"[A-Za-z0-9_.+-]{0,40}")
_BOOL_OR_NUMBER = re.compile(r"true|false|yes|no|on|off|null|~|[-+]?[0-9]+(\.[0-9]*)?", re.I)


def shown_variable(name: str, value: str, path: str) -> str:
    """How an error names a variable that set ``path``: ``NAME=value``, or ``NAME`` alone.

    The value is shown only when neither the variable's name nor the key's looks like a secret
    (key, token, password, URL, ...), it is short and plain, and the variable is one of
    ordergate's own switches (``PLAIN_VARIABLES``) or the value is a boolean or number word.
    A URL can carry a token (``tgram://<bot token>/...``), so a URL is never shown.
    """
    key = path.rpartition(".")[2]
    if _SECRET_NAME.search(name) or _SECRET_NAME.search(key) or not _PLAIN_VALUE.fullmatch(value):
        return name
    if name in PLAIN_VARIABLES or _BOOL_OR_NUMBER.fullmatch(value.strip()):
        return f"{name}={value}"
    return name


def interpolate(
    node: Any,
    environ: Mapping[str, str],
    *,
    file: str,
    path: str = "",
    set_by: dict[str, tuple[str, ...]] | None = None,
) -> Any:
    """Resolve ``${VAR}`` and ``${VAR:-default}`` in every string scalar of ``node``.

    ``set_by`` (when given) records, per key path, the variables whose values were used there,
    as ``shown_variable`` names them; a default written in the file is not recorded.
    """
    if isinstance(node, dict):
        return {k: interpolate(v, environ, file=file, path=_join(path, k), set_by=set_by) for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate(v, environ, file=file, path=f"{path}[{i}]", set_by=set_by) for i, v in enumerate(node)]
    if not isinstance(node, str):
        return node
    if "${" not in node:
        return str(node)

    def value(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        found = environ.get(name)
        if found is None or (found == "" and default is not None):
            if default is None:
                raise ConfigError(f"environment variable {name} is not set", file=file, path=path)
            return default
        if set_by is not None:
            shown = shown_variable(name, found, path)
            if shown not in set_by.get(path, ()):
                set_by[path] = (*set_by.get(path, ()), shown)
        return found

    whole = _VAR.fullmatch(node) and not isinstance(node, _Quoted)
    result = _VAR.sub(value, node)
    return _scalar(result) if whole else result


def merge(base: Any, overlay: Any) -> Any:
    """Deep-merge ``overlay`` over ``base``: mappings merge, everything else is replaced."""
    if isinstance(base, dict) and isinstance(overlay, dict):
        merged = dict(base)
        for key, value in overlay.items():
            merged[key] = merge(base[key], value) if key in base else value
        return merged
    return overlay


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def _within(path: str, prefix: str) -> bool:
    """``path`` is ``prefix`` or lies under it (``a.b`` and ``a.b[0].c`` are within ``a.b``)."""
    return path == prefix or path.startswith((f"{prefix}.", f"{prefix}["))


def _forget_replaced(base: Any, overlay: Any, set_by: dict[str, tuple[str, ...]], path: str = "") -> None:
    """Drop what ``set_by`` knows of values that merging ``overlay`` over ``base`` replaces."""
    if not isinstance(overlay, dict):
        return
    for key, value in overlay.items():
        sub = _join(path, key)
        if isinstance(value, dict) and isinstance(base, dict) and isinstance(base.get(key), dict):
            _forget_replaced(base[key], value, set_by, sub)
        else:
            for known in [p for p in set_by if _within(p, sub)]:
                del set_by[known]


# -- validation -------------------------------------------------------------------------------


class Validator(cerberus.Validator):  # type: ignore[misc]
    """Cerberus with a ``decimal`` type: config numbers are Decimal (or int), never float.

    Also ``coerce: address_list`` (a YAML list, or one string of addresses separated by commas
    or spaces, as an environment variable carries it) and ``check_with: network`` (an IP
    address, a network such as ``100.64.0.0/10``, or ``tradingview`` for TradingView's four).
    """

    types_mapping: ClassVar[dict[str, Any]] = dict(cerberus.Validator.types_mapping)
    types_mapping["decimal"] = cerberus.TypeDefinition("decimal", (int, Decimal), (bool,))

    def _normalize_coerce_address_list(self, value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, str):
            return [part for part in re.split(r"[\s,]+", value) if part]
        return value

    def _normalize_coerce_lower(self, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    def _check_with_network(self, field: str, value: Any) -> None:
        if not isinstance(value, str) or value.strip().lower() == "tradingview":
            return
        try:
            ipaddress.ip_network(value.strip(), strict=False)
        except ValueError:
            self._error(field, f"{value!r} is not an IP address or network (e.g. 52.89.214.238, 100.64.0.0/10)")


def validate(
    document: Any, schema: Mapping[str, Any], *, file: str, path: str = "", partial: bool = False
) -> dict[str, Any]:
    """Validate ``document`` against a Cerberus ``schema``; return it with defaults filled in.

    The first error is raised as ConfigError naming ``file`` and the full key path.
    ``partial`` checks a fragment (an override): required keys may be missing.
    """
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise ConfigError("must be a mapping", file=file, path=path or None)
    validator = Validator(dict(schema))
    if not validator.validate(document, update=partial):
        key, message = next(flatten_errors(validator.errors))
        raise ConfigError(message, file=file, path=_join(path, key) if key else path)
    normalized: dict[str, Any] = validator.document
    return normalized


# Cerberus' words for a wrong type, as a user who typed the value reads them.
_PLAIN_WORDS = {
    "must be of boolean type": "must be true or false (also yes/no, on/off)",
    "must be of integer type": "must be a whole number",
    "must be of decimal type": "must be a number",
}


def flatten_errors(errors: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """Turn Cerberus' nested error dict into ``("a.b[0].c", "message")`` pairs."""
    if isinstance(errors, dict):
        for key, value in errors.items():
            sub = f"{prefix}[{key}]" if isinstance(key, int) else _join(prefix, key)
            yield from flatten_errors(value, sub)
    elif isinstance(errors, list):
        for item in errors:
            if isinstance(item, str):
                yield prefix, _PLAIN_WORDS.get(item, item)
            else:
                yield from flatten_errors(item, prefix)


_STAGE_ITEM = {"type": ["string", "dict"]}
_ADDRESSES = {
    "type": "list",
    "coerce": "address_list",
    "schema": {"type": "string", "check_with": "network"},
    "default": [],
}

SCHEMA: dict[str, Any] = {
    "server": {
        "type": "dict",
        "default": {},
        "schema": {
            "host": {"type": "string", "default": "0.0.0.0"},  # noqa: S104 - a server listens
            "port": {"type": "integer", "min": 1, "max": 65535, "default": 8080},
            "threads": {"type": "integer", "min": 1, "max": 256, "default": 64},
            "max_body_bytes": {"type": "integer", "min": 256, "max": 10_485_760, "default": 16384},
            # a request must arrive whole (headers and body) this long after its first byte
            "request_deadline_s": {"type": "decimal", "min": 0.5, "max": 300, "default": 10},
            # open connections; at the limit the slowest unfinished ones are closed for new ones
            "connection_limit": {"type": "integer", "min": 10, "max": 100_000, "default": 1000},
        },
    },
    "auth": {
        "type": "dict",
        "default": {},
        "schema": {
            "secret": {"type": "string", "nullable": True, "default": None},
            "required": {"type": "boolean", "default": False},
            # Bearer token of the signal history API (off without it) and of /metrics
            "admin_token": {"type": "string", "nullable": True, "default": None},
            # a list, or one string "52.89.214.238, 100.64.0.0/10" (ALLOW_IPS, TRUSTED_PROXIES)
            "allow_ips": _ADDRESSES,
            "trusted_proxies": _ADDRESSES,
            # the header in which trusted_proxies name the client (only theirs is believed)
            "client_address_header": {
                "type": "string",
                "coerce": "lower",
                "allowed": ["x-forwarded-for", "forwarded", "x-real-ip"],
                "default": "x-forwarded-for",
            },
        },
    },
    "live_trading": {"type": "boolean", "default": False},
    "journal": {
        "type": "dict",
        "default": {},
        "schema": {
            "path": {"type": "string", "default": "data/ordergate.db"},  # SQLite, unless url is set
            "url": {"type": "string", "nullable": True, "default": None},  # DATABASE_URL: PostgreSQL
            # a repeat of a signal still in flight waits this long for its outcome, then answers 202
            "duplicate_wait_s": {"type": "decimal", "min": 0, "max": 30, "default": 2},
            # unknown orders and crashed signals are looked up at their broker this often
            "reconcile_every_s": {"type": "decimal", "min": 1, "max": 3600, "default": 15},
            # a sent order absent this long is taken as never placed (retryable): Binance may
            # still execute an order seconds after its answer timed out
            "absent_after_s": {"type": "decimal", "min": 10, "max": 86400, "default": 120},
            # requests refused before any route (401, unknown broker) journaled and logged a
            # minute; beyond it only counted, so a flood cannot fill the disk or the history
            "refusals_per_minute": {"type": "integer", "min": 1, "max": 1_000_000, "default": 60},
        },
    },
    "paths": {
        "type": "dict",
        "default": {},
        "schema": {"schemas": {"type": "string", "default": "../schemas"}},
    },
    "brokers": {
        "type": "dict",
        "required": True,
        "empty": False,
        "keysrules": {"type": "string", "regex": "[A-Za-z0-9_-]+"},
        "valuesrules": {
            "type": "dict",
            "allow_unknown": True,  # each adapter validates its own options
            "schema": {"adapter": {"type": "string", "required": True}, "label": {"type": "string"}},
        },
    },
    "pipelines": {
        "type": "dict",
        "required": True,
        "empty": False,
        "keysrules": {"type": "string", "regex": "[A-Za-z0-9_-]+"},
        "valuesrules": {"type": "list", "empty": False, "schema": _STAGE_ITEM},
    },
    "routes": {
        "type": "dict",
        "required": True,
        "empty": False,
        "keysrules": {"type": "string", "regex": "[A-Za-z0-9_-]+"},
        "valuesrules": {
            "type": "dict",
            "schema": {
                "broker": {"type": "string", "required": True},
                "pipeline": {"type": "string", "required": True},
                "label": {"type": "string"},
                "aliases": {"type": "list", "schema": {"type": "string"}, "default": []},
                "max_age_s": {"type": "integer", "min": 1, "nullable": True, "default": None},
                # with max_age_s: a "time" more than this ahead of the server's clock is refused
                "max_future_s": {"type": "integer", "min": 0, "max": 3600, "default": 5},
                "dedupe_window_s": {"type": "integer", "min": 1, "max": 86400, "nullable": True, "default": None},
                # equities: CNC (delivery), MIS (intraday) or NRML; a signal's "product" wins
                "product": {"type": "string", "allowed": ["CNC", "MIS", "NRML"], "nullable": True, "default": None},
            },
        },
    },
    "limits": {
        "type": "dict",
        "default": {},
        "schema": {
            "max_notional": {"type": "decimal", "nullable": True, "min": 0, "default": None},
            "max_orders_per_minute": {"type": "integer", "nullable": True, "min": 1, "default": None},
            "routes": {
                "type": "dict",
                "default": {},
                "valuesrules": {
                    "type": "dict",
                    "schema": {
                        "max_notional": {"type": "decimal", "nullable": True, "min": 0},
                        "max_orders_per_minute": {"type": "integer", "nullable": True, "min": 1},
                    },
                },
            },
        },
    },
    "stages": {
        # per-environment option overrides, applied to every use of a stage: {balance: {enabled: false}}
        "type": "dict",
        "default": {},
        "valuesrules": {"type": "dict"},
    },
}


@dataclass(frozen=True)
class Settings:
    """The validated, merged configuration and where it came from."""

    environment: str
    config_dir: Path
    data: dict[str, Any]
    files: tuple[Path, ...]
    _origins: dict[str, Path] = field(default_factory=dict, repr=False, compare=False)
    # key path -> the environment variables that set it, as errors may name them
    _set_by: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False, compare=False)

    def origin(self, path: str) -> str:
        """The file that last set ``path`` (or its nearest parent): for error messages."""
        probe = path
        while probe:
            if probe in self._origins:
                return str(self._origins[probe])
            probe = probe.rpartition(".")[0]
        return str(self.files[-1])

    def set_by(self, path: str) -> tuple[str, ...]:
        """The variables (``NAME=value`` or ``NAME``) that set ``path``, a key under it, or the
        scalar it lies in."""
        names: list[str] = []
        for known, shown in self._set_by.items():
            if _within(known, path) or _within(path, known):
                names.extend(name for name in shown if name not in names)
        return tuple(names)

    def explain(self, error: ConfigError) -> ConfigError:
        """Add to ``error`` the environment variables that set the key it names, if any: the
        user set ``LIVE_TRADING``, not ``live_trading``. Errors about other files are left alone."""
        if error.path and not error.set_by and error.file in {str(f) for f in self.files}:
            error.set_by = self.set_by(error.path)
        return error

    @property
    def schemas_dir(self) -> Path:
        return (self.config_dir / str(self.data["paths"]["schemas"])).resolve()


def default_config_dir() -> Path:
    """``$ORDERGATE_CONFIG_DIR``, else ``./config``, else the ``config/`` beside the package."""
    explicit = os.environ.get("ORDERGATE_CONFIG_DIR")
    if explicit:
        return Path(explicit)
    local = Path("config")  # relative, so messages read "config/ordergate.yaml:..."
    if (local / "ordergate.yaml").is_file():
        return local
    return Path(__file__).resolve().parent.parent / "config"


def _record_origins(node: Any, file: Path, origins: dict[str, Path], path: str = "") -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            sub = _join(path, key)
            origins[sub] = file
            _record_origins(value, file, origins, sub)


def load_settings(
    environment: str | None = None,
    config_dir: Path | str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Read, interpolate, merge and validate the configuration for one environment."""
    environ = os.environ if environ is None else environ
    environment = environment or environ.get(ENV_VAR) or DEFAULT_ENV
    base_dir = Path(config_dir) if config_dir is not None else default_config_dir()
    base_file = base_dir / "ordergate.yaml"
    env_file = base_dir / "environments" / f"{environment}.yaml"
    if not re.fullmatch(r"[A-Za-z0-9_-]+", environment) or not env_file.is_file():
        known = sorted(p.stem for p in (base_dir / "environments").glob("*.yaml"))
        raise ConfigError(
            f"unknown environment {environment!r} (known: {', '.join(known) or 'none'})",
            file=str(env_file),
        )

    origins: dict[str, Path] = {}
    set_by: dict[str, tuple[str, ...]] = {}
    merged: Any = {}
    for file in (base_file, env_file):
        raw = read_yaml(file)
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ConfigError("the top level must be a mapping", file=str(file))
        found: dict[str, tuple[str, ...]] = {}
        resolved = interpolate(raw, environ, file=str(file), set_by=found)
        _record_origins(resolved, file, origins)
        _forget_replaced(merged, resolved, set_by)
        set_by.update(found)
        merged = merge(merged, resolved)
    # first: from here on no log line or error body can show them, validation's own included
    register_settings(merged if isinstance(merged, dict) else {}, environ)

    settings = Settings(environment, base_dir.resolve(), {}, (base_file, env_file), origins, set_by)
    validator = Validator(SCHEMA)
    if not validator.validate(merged):
        key, message = next(flatten_errors(validator.errors))
        raise settings.explain(ConfigError(message, file=settings.origin(key), path=key))
    document = validator.document
    if document["auth"]["required"] and not document["auth"]["secret"]:
        raise ConfigError(
            f"a webhook secret is required in the {environment} environment: set WEBHOOK_SECRET",
            file=settings.origin("auth.required"),
            path="auth.secret",
        )
    return Settings(environment, base_dir.resolve(), document, (base_file, env_file), origins, set_by)
