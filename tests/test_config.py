"""Configuration: every startup error names the file and the key path; overlays and interpolation.

Each test edits its own copy of the shipped ``config/`` and ``schemas/``.
"""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from ordergate.cli import main
from ordergate.compose import Service, build_service
from ordergate.config import interpolate, load_settings, read_yaml, shown_variable
from ordergate.pipeline.errors import ConfigError
from ordergate.pipeline.signal import Signal
from tests.conftest import CONFIG_DIR, ROOT

BASE = "ordergate.yaml"
DEV = "environments/development.yaml"

CIPLA = {"broker": "FLATTRADE", "symbol": "CIPLA", "side": "buy", "quantity": Decimal(1), "type": "MARKET"}
BTC = {"broker": "BINANCE", "symbol": "BTCUSDT", "side": "buy", "quantity": Decimal("0.001"), "type": "MARKET"}
TEN_BTC = {**BTC, "quantity": Decimal(10)}  # 435,000 USDT: more than the paper account holds


@pytest.fixture
def config(tmp_path: Path) -> Path:
    shutil.copytree(CONFIG_DIR, tmp_path / "config")
    shutil.copytree(ROOT / "schemas", tmp_path / "schemas")
    return tmp_path / "config"


def edit(config: Path, name: str, old: str, new: str) -> Path:
    """Replace the first ``old`` in one config file (which must contain it)."""
    file = config / name
    text = file.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {file}"
    file.write_text(text.replace(old, new, 1), encoding="utf-8")
    return file


def overlay(config: Path, yaml_text: str, env: str = "development") -> Path:
    """Set top-level keys of an environment file: a block the file already has under one of
    those keys is removed first (a key written twice is refused), the new ones are appended."""
    file = config / "environments" / f"{env}.yaml"
    keys = {f"{key}:" for key in yaml.safe_load(yaml_text)}
    kept: list[str] = []
    dropping = False
    for line in file.read_text(encoding="utf-8").splitlines():
        if line and not line[0].isspace() and not line.startswith("#"):
            dropping = line.split(" ", 1)[0] in keys
        if not dropping:
            kept.append(line)
    file.write_text("\n".join(kept) + "\n\n" + yaml_text + "\n", encoding="utf-8")
    return file


SECRET = {"WEBHOOK_SECRET": "config-test-secret"}  # testnet and live refuse to start without one


def load(config: Path, env: str = "development", environ: dict[str, str] | None = None) -> Service:
    return build_service(load_settings(env, config, environ={**SECRET, **(environ or {})}))


def config_error(config: Path, env: str = "development", environ: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(config, env, environ)
    return info.value


def run(service: Service, payload: dict[str, Any], signal_id: str = "sig1") -> Any:
    runner = service.runner_for(payload["broker"])
    assert runner is not None
    return runner.run(Signal(id=signal_id, route=runner.route.name, payload=payload, received_at=0.0))


def test_the_shipped_configuration_builds(config: Path) -> None:
    service = load(config)
    assert list(service.runners) == ["BINANCE", "BINANCE_REAL", "FLATTRADE"]
    assert service.runners["BINANCE"].route.broker is service.runners["BINANCE_REAL"].route.broker
    assert run(service, BTC).status == "filled"
    assert run(service, CIPLA).status == "filled"


# -- errors name the file and the key path ---------------------------------------------------

CRYPTO_MIDDLE = (
    "    - whitelist: {quote_assets: [USDT, USDC, BUSD]}\n"
    "    - precision: {max_decimals: 8}\n"
    "    - notional: {min: 10}       "
)


@pytest.mark.parametrize(
    ("name", "old", "new", "where", "message"),
    [
        (
            BASE,
            "    - limits\n",
            "    - limitz\n",
            "pipelines.crypto[4]",
            "unknown stage 'limitz' (known: schema, market_hours, whitelist, precision, notional, limits, balance, "
            "execute, notify, or package.module:Class)",
        ),
        (
            BASE,
            "precision: {max_decimals: 8}",
            "precision: {max_decimals: -1}",
            "pipelines.crypto[2].precision.max_decimals",
            "min value is 0",
        ),
        (
            BASE,
            "precision: {max_decimals: 0}",
            "precision: {max_decimals: many}",
            "pipelines.equities[3].precision.max_decimals",
            "must be a whole number",
        ),
        (
            BASE,
            "precision: {max_decimals: 8}",
            "precision: {max_decimal: 8}",
            "pipelines.crypto[2].precision.max_decimal",
            "unknown field",
        ),
        (
            BASE,
            CRYPTO_MIDDLE,
            "    - notional: {min: 10}\n"
            "    - whitelist: {quote_assets: [USDT, USDC, BUSD]}\n"
            "    - precision: {max_decimals: 8}  ",
            "pipelines.crypto[1].notional",
            "stage 'notional' needs 'whitelist' earlier in the chain",
        ),
        (
            BASE,
            "    - schema: {file: equity-signal.schema.json}\n",
            "",
            "pipelines.equities[0].market_hours",
            "stage 'market_hours' needs 'schema' earlier in the chain",
        ),
        (
            BASE,
            "    - limits\n    - balance\n    - execute\n",
            "    - balance\n    - execute\n    - limits\n",
            "pipelines.crypto[6]",
            "stage 'limits' comes after 'execute'; only observers may",
        ),
        (
            BASE,
            "    - execute\n",
            "    - execute\n    - execute\n",
            "pipelines.crypto[7]",
            "stage 'execute' may appear only once",
        ),
        (
            BASE,
            "    - limits\n",
            "    - limits: [1, 2]\n",
            "pipelines.crypto[4].limits",
            "options of stage 'limits' must be a mapping",
        ),
        (
            BASE,
            "BINANCE:      {broker: paper_binance",
            "BINANCE:      {broker: nowhere",
            "routes.BINANCE.broker",
            "no broker named 'nowhere' under brokers:",
        ),
        (
            BASE,
            "pipeline: equities",
            "pipeline: stocks",
            "routes.FLATTRADE.pipeline",
            "no pipeline named 'stocks' under pipelines:",
        ),
        (
            BASE,
            "    adapter: paper\n    label: paper\n    market_type: equity",
            "    adapter: ccxtt\n    label: paper\n    market_type: equity",
            "brokers.paper_nse.adapter",
            "unknown adapter 'ccxtt' (known: ccxt, flattrade, paper)",
        ),
        (
            BASE,
            "    market_type: ${BINANCE_MARKET_TYPE:-spot}\n    leverage",
            "    market_type: ${BINANCE_MARKET_TYPE:-futures}\n    leverage",
            "brokers.paper_binance.market_type",
            "unallowed value futures",
        ),
        (BASE, "max_body_bytes: 16384", "max_body_bytes: 10", "server.max_body_bytes", "min value is 256"),
        (BASE, "\nlimits:", "\nnotifications: {}\nlimits:", "notifications", "unknown field"),
        (DEV, "\nlimits:", "\nbogus: 1\nlimits:", "bogus", "unknown field"),
        (DEV, "max_orders_per_minute: 600", "max_orders_per_minute: 0", "limits.max_orders_per_minute", "min value"),
        (
            BASE,
            "    label: paper\n",
            "    label: ${PAPER_LABEL}\n",
            "brokers.paper_binance.label",
            "environment variable PAPER_LABEL is not set",
        ),
    ],
)
def test_a_config_error_names_file_and_key_path(
    config: Path, name: str, old: str, new: str, where: str, message: str
) -> None:
    file = edit(config, name, old, new)
    error = config_error(config)
    assert (error.file, error.path) == (str(file), where)
    assert str(error).startswith(f"{file}:{where}: {message}")


def test_yaml_syntax_error_names_file_and_line(config: Path) -> None:
    file = edit(config, BASE, "    leverage: ${BINANCE_LEVERAGE:-1}\n    markets:", "    leverage: 1: 2\n    markets:")
    line = next(i for i, text in enumerate(file.read_text().splitlines(), 1) if "leverage: 1: 2" in text)
    error = config_error(config)
    assert error.file == str(file)
    assert str(error) == f"{file}: line {line}, column 16: mapping values are not allowed here"


def _line_of(file: Path, text: str, nth: int = 1) -> int:
    lines = [i for i, line in enumerate(file.read_text().splitlines(), 1) if text in line]
    return lines[nth - 1]


def test_a_route_written_twice_is_refused_naming_file_line_and_key(config: Path, capsys: Any) -> None:
    # The incident: a second BINANCE under routes: sent BINANCE to the equities broker, and
    # `ordergate check` said "Configuration OK".
    file = edit(
        config,
        BASE,
        "  FLATTRADE:    {broker: paper_nse, pipeline: equities, label: FlatTrade}\n",
        "  FLATTRADE:    {broker: paper_nse, pipeline: equities, label: FlatTrade}\n"
        "  BINANCE:      {broker: paper_nse, pipeline: equities}\n",
    )
    first, second = _line_of(file, "  BINANCE:  "), _line_of(file, "  BINANCE:  ", 2)
    error = config_error(config)
    assert (error.file, error.path) == (str(file), "routes.BINANCE")
    assert str(error) == (
        f"{file}:routes.BINANCE: line {second}: duplicate key 'BINANCE', already on line {first} "
        "(YAML would silently keep only the last)"
    )
    assert main(["--config-dir", str(config), "check"]) == 2
    out, err = capsys.readouterr()
    assert "Configuration OK" not in out
    assert f"routes.BINANCE: line {second}: duplicate key 'BINANCE'" in err


def test_a_second_limits_block_in_an_environment_file_is_refused(config: Path) -> None:
    file = config / "environments" / "live.yaml"
    file.write_text(file.read_text() + "\nlimits:\n  max_notional: 5000\n")  # meant to raise, replaced all
    first, second = _line_of(file, "limits:"), _line_of(file, "limits:", 2)
    error = config_error(config, env="live")
    assert (error.file, error.path) == (str(file), "limits")
    assert f"line {second}: duplicate key 'limits', already on line {first}" in str(error)


@pytest.mark.parametrize(
    ("yaml_text", "where", "key", "line"),
    [
        ("stages:\n  balance:\n    enabled: false\n    enabled: true\n", "stages.balance.enabled", "enabled", 4),
        ("stages:\n  balance: {enabled: false, enabled: true}\n", "stages.balance.enabled", "enabled", 2),
        ("x:\n  - {a: 1}\n  - {a: 1,\n     a: 2}\n", "x[1].a", "a", 4),
        # one name to a person (and in a key path), or one key once loaded: a duplicate all the same
        ("x: {1: a, '1': b}\n", "x.1", "1", 1),
        ("x: {1: a, 1.0: b}\n", "x.1.0", "1.0", 1),
        ("x: &x {a: 1}\ny: [*x, {<<: *x, b: 1, b: 2}]\n", "y[1].b", "b", 2),
    ],
)
def test_a_nested_duplicate_key_is_refused(tmp_path: Path, yaml_text: str, where: str, key: str, line: int) -> None:
    file = tmp_path / "any.yaml"  # every YAML ordergate reads goes through read_yaml
    file.write_text(yaml_text)
    with pytest.raises(ConfigError) as info:
        read_yaml(file)
    assert (info.value.file, info.value.path) == (str(file), where)
    assert f": line {line}: duplicate key {key!r}, already on line" in str(info.value)


def test_a_key_from_a_merge_may_be_overridden(config: Path) -> None:
    # Keys a << merge brings in are defaults the mapping may replace: that is what merging is for.
    edit(config, BASE, "    - notional: {min: 10}", "    - notional: &notional {min: 10}")
    edit(config, BASE, "    - notional: {min: 1}", "    - notional: {<<: *notional, min: 1}")
    assert load(config).settings.data["pipelines"]["equities"][4] == {"notional": {"min": 1}}
    edit(config, BASE, "{<<: *notional, min: 1}", "{<<: *notional, min: 1, min: 2}")
    assert "duplicate key 'min'" in str(config_error(config))


@pytest.mark.parametrize(
    ("name", "old", "new", "key"),
    [
        # the JSON files the configuration names are read the same way: no silent last-one-wins
        ("markets/binance-spot.json", '"markets": {\n', '"markets": {\n  "BTCUSDT": {"quote": "EUR"},\n', "BTCUSDT"),
        ("../schemas/signal.schema.json", '"title": "Crypto order signal",', '"title": "a", "title": "b",', "title"),
    ],
)
def test_a_json_file_with_a_key_written_twice_is_refused(config: Path, name: str, old: str, new: str, key: str) -> None:
    file = edit(config, name, old, new)
    error = config_error(config)
    assert error.file == str(file.resolve())
    assert f"duplicate key {key!r} in one object" in str(error)


def test_a_bad_market_file_names_that_file(config: Path) -> None:
    markets = edit(config, "markets/nse.yaml", 'tick_size: "0.05"', "tick_size: 0.05.1")
    error = config_error(config)
    assert (error.file, error.path) == (str(markets.resolve()), "markets.CIPLA")
    assert "tick_size" in str(error)


@pytest.mark.parametrize("env", ["staging", "../live", "prod uction"])
def test_unknown_environment_names_the_missing_file(config: Path, env: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env, config, environ={})
    error = info.value
    assert error.file is not None
    assert error.file.startswith(str(config / "environments"))
    assert "(known: development, live, testnet)" in str(error)


def test_environment_comes_from_ordergate_env(config: Path) -> None:
    assert load_settings(None, config, environ={"ORDERGATE_ENV": "live", **SECRET}).environment == "live"
    assert load_settings(None, config, environ={}).environment == "development"


@pytest.mark.parametrize("env", ["testnet", "live"])
def test_environments_that_reach_an_exchange_require_a_webhook_secret(config: Path, env: str) -> None:
    for environ in ({}, {"WEBHOOK_SECRET": ""}):
        with pytest.raises(ConfigError) as info:
            load_settings(env, config, environ=environ)
        assert str(info.value) == (
            f"{config.resolve() / 'environments' / env}.yaml:auth.secret: "
            f"a webhook secret is required in the {env} environment: set WEBHOOK_SECRET"
        )
    assert load_settings(env, config, environ=SECRET).data["auth"]["secret"] == "config-test-secret"


def test_development_runs_without_a_secret_and_can_be_made_to_require_one(config: Path) -> None:
    assert load_settings("development", config, environ={}).data["auth"]["secret"] is None
    overlay(config, "auth: {required: true}")
    with pytest.raises(ConfigError, match="required in the development environment"):
        load_settings("development", config, environ={})


# -- interpolation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "port", "threads"),
    [
        ({}, 8080, 64),
        ({"PORT": ""}, 8080, 64),  # empty means unset when there is a default
        ({"PORT": "9090"}, 9090, 64),
        ({"PORT": "9090", "WAITRESS_THREADS": "16"}, 9090, 16),
    ],
)
def test_defaults_apply_and_values_are_typed(config: Path, environ: dict[str, str], port: int, threads: int) -> None:
    server = load_settings("development", config, environ=environ).data["server"]
    assert (server["port"], server["threads"]) == (port, threads)
    assert type(server["port"]) is int


def test_an_unusable_interpolated_value_names_the_key(config: Path) -> None:
    error = config_error(config, environ={"PORT": "eighty"})
    assert (error.file, error.path) == (str(config / BASE), "server.port")


@pytest.mark.parametrize(
    ("text", "environ", "value"),
    [
        ("${A}", {"A": "8080"}, 8080),
        ("${A}", {"A": "true"}, True),
        ("${A}", {"A": "off"}, False),
        ("${A}", {"A": "0.5"}, Decimal("0.5")),
        ("${A}", {"A": "null"}, None),
        ("${A}", {"A": "text"}, "text"),
        ("${A:-true}", {}, True),
        ("${A:-}", {}, None),
        ("${A:-x}", {"A": ""}, "x"),
        ("x${A}", {"A": "8080"}, "x8080"),  # only a whole value is typed
        ("${A}${B}", {"A": "80", "B": "80"}, "8080"),
        ("${A:-a}-${B:-b}", {}, "a-b"),
        ("${A}", {"A": "${B}"}, "${B}"),  # values are not interpolated again
        ("plain", {}, "plain"),
    ],
)
def test_interpolate(text: str, environ: dict[str, str], value: object) -> None:
    result = interpolate({"k": text}, environ, file="f.yaml")["k"]
    assert result == value
    assert type(result) is type(value)


def test_interpolate_names_the_key_of_a_missing_variable() -> None:
    with pytest.raises(ConfigError, match=r"^f\.yaml:a\.b\[1\]: environment variable NOPE is not set$"):
        interpolate({"a": {"b": ["x", "${NOPE}"]}}, {}, file="f.yaml")


def test_interpolated_boolean_switches_a_stage(config: Path) -> None:
    overlay(config, "stages:\n  balance:\n    enabled: ${CHECK_BALANCE:-true}")
    assert run(load(config), TEN_BTC).failed_stage == "balance"
    assert run(load(config, environ={"CHECK_BALANCE": "false"}), TEN_BTC).failed_stage == "execute"


def test_interpolation_inside_a_string(config: Path) -> None:
    edit(config, BASE, "    label: paper\n", "    label: paper-${SUFFIX:-x}\n")
    assert load(config, environ={"SUFFIX": "7"}).brokers["paper_binance"].label == "paper-7"
    assert load(config).brokers["paper_binance"].label == "paper-x"


# -- environment overlays --------------------------------------------------------------------


def test_environment_can_switch_balance_off(config: Path) -> None:
    assert run(load(config), TEN_BTC).failed_stage == "balance"
    overlay(config, "stages: {balance: {enabled: false}}")
    outcome = run(load(config), TEN_BTC)
    # the balance stage is dropped when the chain is built (it neither runs nor traces); the
    # broker itself still refuses at execute
    assert [s.stage for s in outcome.trace][-2:] == ["limits", "execute"]
    assert (outcome.failed_stage, outcome.reason) == ("execute", "Insufficient balance")


def test_environment_stage_override_changes_options(config: Path) -> None:
    assert run(load(config), BTC).status == "filled"  # 43.5 USDT
    overlay(config, "stages: {notional: {min: 100}}")
    service = load(config)
    assert run(service, BTC).reason == "Order size too small"  # 43.5 < 100
    assert run(service, {**BTC, "quantity": Decimal("0.003")}, "sig2").status == "filled"  # 130.5


def test_route_limit_applies_to_that_route_only(config: Path) -> None:
    file = config / DEV
    file.write_text(
        "limits:\n  max_notional: null\n  max_orders_per_minute: 600\n  routes:\n    FLATTRADE: {max_notional: 1000}\n"
        "stages: {market_hours: {enabled: false}}\n",
        encoding="utf-8",
    )
    service = load(config)
    assert service.runners["FLATTRADE"].route.limits.max_notional == Decimal(1000)
    assert service.runners["BINANCE"].route.limits.max_notional is None
    assert service.runners["FLATTRADE"].route.limits.max_orders_per_minute == 600  # not overridden
    outcome = run(service, CIPLA)  # 1,500 INR
    assert (outcome.failed_stage, outcome.reason) == (
        "limits",
        "Order exceeds the limit of ₹1,000 per order on FLATTRADE",
    )
    assert run(service, {**BTC, "quantity": Decimal("0.1")}).status == "filled"  # 4,350 USDT


@pytest.mark.parametrize(
    ("env", "binance", "flattrade", "rate"),
    [("development", None, None, 600), ("testnet", 1000, 100000, 60), ("live", 500, 50000, 10)],
)
def test_shipped_environment_limits(
    config: Path, env: str, binance: int | None, flattrade: int | None, rate: int
) -> None:
    runners = load(config, env).runners
    for name, limit in (("BINANCE", binance), ("BINANCE_REAL", binance), ("FLATTRADE", flattrade)):
        limits = runners[name].route.limits
        assert limits.max_notional == (None if limit is None else Decimal(limit))
        assert limits.max_orders_per_minute == rate
        assert runners[name].route.environment == env


def test_route_alias_is_reachable(config: Path) -> None:
    assert load(config).runner_for("binance_futures") is None
    overlay(config, "routes: {BINANCE: {aliases: [BINANCE_FUTURES]}}")
    service = load(config)
    assert service.runner_for("binance_futures") is service.runners["BINANCE"]
    assert service.runner_for(" Binance_Futures ") is service.runners["BINANCE"]
    assert service.runner_for("binance") is service.runners["BINANCE"]
    assert run(service, {**BTC, "broker": "binance_futures"}).route.name == "BINANCE"


def test_an_alias_used_twice_is_refused(config: Path) -> None:
    overlay(config, "routes: {BINANCE: {aliases: [BINANCE_REAL]}}")
    assert "'BINANCE_REAL' already names route BINANCE_REAL" in str(config_error(config))


# -- known gaps (package bugs) ----------------------------------------------------------------


def test_a_bad_stage_override_names_the_environment_file(config: Path) -> None:
    env_file = overlay(config, "stages: {balance: {enabled: maybe}}")
    error = config_error(config)
    assert (error.file, error.path) == (str(env_file), "stages.balance.enabled")


def test_an_override_for_an_unknown_stage_fails_at_startup(config: Path) -> None:
    overlay(config, "stages: {balanse: {enabled: false}}")
    assert "balanse" in str(config_error(config))


def test_limits_for_an_unknown_route_fail_at_startup(config: Path) -> None:
    overlay(config, "limits: {routes: {FLATRADE: {max_notional: 1000}}}")
    error = config_error(config)
    assert error.path == "limits.routes.FLATRADE"


def test_a_quoted_interpolation_stays_a_string(config: Path) -> None:
    edit(config, BASE, "    label: paper\n", '    label: "${PAPER_LABEL}"\n')
    assert load(config, environ={"PAPER_LABEL": "007"}).brokers["paper_binance"].label == "007"


def test_an_alias_clash_names_where_the_alias_is(config: Path) -> None:
    env_file = overlay(config, "routes: {BINANCE: {aliases: [BINANCE_REAL]}}")
    error = config_error(config)
    assert (error.file, error.path) == (str(env_file), "routes.BINANCE.aliases")


# -- ordergate check ---------------------------------------------------------------------------


@pytest.fixture
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ORDERGATE_ENV", "ORDERGATE_CONFIG_DIR", "PORT", "WAITRESS_THREADS", "BINANCE_MARKET_TYPE"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("clean_environ")
def test_check_prints_every_route_and_chain(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config-dir", str(config), "check"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].startswith("Configuration OK: environment development (")
    chain = "schema → whitelist → precision → notional → limits → balance → execute → notify"
    assert lines[1:] == [
        "  BINANCE       broker paper_binance [paper, spot]",
        f"                crypto: {chain}",
        "  BINANCE_REAL  broker paper_binance [paper, spot]",
        f"                crypto: {chain}",
        "  FLATTRADE     broker paper_nse [paper, equity]",
        f"                equities: {chain.replace('schema', 'schema → market_hours (off)')}",
        "route BINANCE → paper_binance (paper): paper",
        "route BINANCE_REAL → paper_binance (paper): paper",
        "route FLATTRADE → paper_nse (paper): paper",
    ]
    assert err == ""


@pytest.mark.usefixtures("clean_environ")
def test_check_shows_aliases_and_the_chosen_environment(
    config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEBHOOK_SECRET", "config-test-secret")
    overlay(config, "routes: {BINANCE: {aliases: [BINANCE_FUTURES]}}", env="live")
    assert main(["--env", "live", "--config-dir", str(config), "check"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Configuration OK: environment live (")
    assert "  BINANCE       broker paper_binance [paper, spot] (also BINANCE_FUTURES)\n" in out


@pytest.mark.usefixtures("clean_environ")
def test_check_reports_a_broken_file(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = edit(config, BASE, "precision: {max_decimals: 8}", "precision: {max_decimals: -1}")
    assert main(["--config-dir", str(config), "check"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"ordergate: configuration error: {file}:pipelines.crypto[2].precision.max_decimals: min value is 0\n"


# -- errors name the environment variable the user set ----------------------------------------

PAPER_ROUTES = "routes: {BINANCE: {broker: paper_binance}, BINANCE_REAL: {broker: paper_binance}}"


@pytest.mark.usefixtures("clean_environ")
@pytest.mark.parametrize(
    ("env", "variable", "value", "where", "shown"),
    [
        *(
            (env, "LIVE_TRADING", "perhaps", "live_trading", "LIVE_TRADING=perhaps")
            for env in ("development", "testnet", "live")
        ),
        *(
            (env, "BINANCE_TESTNET", "maybe", "brokers.binance.testnet", "BINANCE_TESTNET=maybe")
            for env in ("testnet", "live")  # development routes nothing to binance: its options are unused
        ),
        *(
            # a URL may carry a token: the variable is named, its value never shown
            (env, "NOTIFY_URLS", "notaurl://s3cr3t", "pipelines.crypto[7].notify.targets[0].urls", "NOTIFY_URLS")
            for env in ("development", "testnet", "live")
        ),
    ],
)
def test_check_names_the_environment_variable_that_set_a_bad_value(
    config: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    env: str,
    variable: str,
    value: str,
    where: str,
    shown: str,
) -> None:
    monkeypatch.setenv("WEBHOOK_SECRET", "config-test-secret")
    monkeypatch.setenv(variable, value)
    if variable == "NOTIFY_URLS" and env != "development":
        overlay(config, PAPER_ROUTES, env=env)  # check builds every routed broker: no exchange here
    assert main(["--env", env, "--config-dir", str(config), "check"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"ordergate: configuration error: {config / BASE}:{where} (set by {shown}): ")
    assert "s3cr3t" not in err


def test_a_secret_variable_is_named_without_its_value(config: Path) -> None:
    edit(config, BASE, "max_body_bytes: 16384", "max_body_bytes: ${BODY_TOKEN}")
    error = config_error(config, environ={"BODY_TOKEN": "12"})  # a number, but the name says secret
    assert str(error) == f"{config / BASE}:server.max_body_bytes (set by BODY_TOKEN): min value is 256"
    error = config_error(config, environ={"BODY_TOKEN": "zz-top-secret"})
    assert "(set by BODY_TOKEN)" in str(error)
    assert "zz-top" not in str(error)


def test_a_value_the_environment_file_replaces_is_not_blamed_on_the_variable(config: Path) -> None:
    assert "(set by LIVE_TRADING=maybe)" in str(config_error(config, environ={"LIVE_TRADING": "maybe"}))
    file = overlay(config, "live_trading: maybe")
    error = config_error(config, environ={"LIVE_TRADING": "yes"})
    assert str(error) == f"{file}:live_trading: must be true or false (also yes/no, on/off)"


def test_an_error_about_a_key_names_every_variable_under_it(config: Path) -> None:
    edit(config, BASE, "    label: paper\n    market_type: $", '    label: ["${A}", "${B}"]\n    market_type: $')
    error = config_error(config, environ={"A": "1", "B": "x"})
    assert error.path == "brokers.paper_binance.label"
    assert "(set by A=1, B): " in str(error)


@pytest.mark.parametrize(
    ("name", "value", "path", "shown"),
    [
        ("LIVE_TRADING", "perhaps", "live_trading", "LIVE_TRADING=perhaps"),  # ordergate's own switch
        ("CHECK_BALANCE", "off", "stages.balance.enabled", "CHECK_BALANCE=off"),  # a boolean word
        ("MY_LIMIT", "12.5", "limits.max_notional", "MY_LIMIT=12.5"),  # a number
        ("MY_LABEL", "hello", "brokers.x.label", "MY_LABEL"),  # any other word may be anything
        ("ADMIN_TOKEN", "123", "auth.admin_token", "ADMIN_TOKEN"),
        ("WEBHOOK_SECRET", "true", "auth.secret", "WEBHOOK_SECRET"),
        ("DATABASE_URL", "1", "journal.url", "DATABASE_URL"),
        ("NUMBER", "1", "brokers.x.api_key", "NUMBER"),  # the key says secret
        ("LIVE_TRADING", "yes please", "live_trading", "LIVE_TRADING"),  # not a plain word
        ("BINANCE_TESTNET", "x" * 41, "brokers.binance.testnet", "BINANCE_TESTNET"),  # too long to be a switch
    ],
)
def test_which_variable_values_an_error_may_show(name: str, value: str, path: str, shown: str) -> None:
    assert shown_variable(name, value, path) == shown


@pytest.mark.usefixtures("clean_environ")
def test_replay_names_the_variable_too(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # replay judges each real broker's money from its options before building anything
    monkeypatch.setenv("WEBHOOK_SECRET", "config-test-secret")
    monkeypatch.setenv("BINANCE_TESTNET", "maybe")
    signals = tmp_path / "signals.jsonl"
    signals.write_text('{"broker": "BINANCE", "symbol": "BTCUSDT", "side": "buy", "quantity": "0.001"}\n')
    assert main(["--env", "testnet", "--config-dir", str(config), "replay", "--dry-run", str(signals)]) == 2
    err = capsys.readouterr().err
    expected = "brokers.binance.testnet (set by BINANCE_TESTNET=maybe): must be true or false (also yes/no, on/off)"
    assert f"{config / BASE}:{expected}" in err
