"""Each stage driven directly, built the way the registry builds it, on a real paper broker."""

from __future__ import annotations

import dataclasses
import logging
import re
from decimal import Decimal
from typing import Any

import pytest

from ordergate.answers import status_of
from ordergate.brokers.base import Broker
from ordergate.brokers.paper import PaperBroker
from ordergate.config import validate
from ordergate.pipeline.errors import ConfigError, Rejection
from ordergate.pipeline.runner import Runner
from ordergate.pipeline.signal import CheckPrices, Order, Signal
from ordergate.pipeline.stage import Limits, RouteContext
from ordergate.stages.balance import BalanceCheck
from ordergate.stages.execute import OrderExecution
from ordergate.stages.limits import EnvironmentLimits
from ordergate.stages.notify import OutcomeNotifier
from ordergate.stages.notional import NotionalCheck
from ordergate.stages.precision import PrecisionRounding
from ordergate.stages.schema import SchemaCheck
from ordergate.stages.whitelist import SymbolWhitelist
from tests.conftest import CONFIG_DIR, ROOT

SCHEMAS_DIR = ROOT / "schemas"
CRYPTO_PRICES = {
    "BTCUSDT": Decimal(43500),
    "ETHUSDT": Decimal(2500),
    "BTCUSDC": Decimal(43500),
    "BTCBUSD": Decimal(43500),
    "XRPUSDT": Decimal("0.6"),
    "ETHBTC": Decimal("0.057"),
}
NSE_PRICES = {"CIPLA": Decimal(1500), "RELIANCE": Decimal(2900), "M&M": Decimal(1900)}


# -- building blocks -------------------------------------------------------------------------


def crypto_broker(
    *,
    market_type: str = "future",
    balances: dict[str, Decimal] | None = None,
    leverage: int = 1,
    prices: dict[str, Decimal] | None = None,
) -> PaperBroker:
    """A paper account on the shipped Binance market snapshot, as the YAML would declare it."""
    options = {
        "adapter": "paper",
        "market_type": market_type,
        "leverage": leverage,
        "markets": "markets/binance-spot.json",
        "balances": {"USDT": Decimal(10000)} if balances is None else balances,
        "prices": CRYPTO_PRICES if prices is None else prices,
    }
    return PaperBroker.from_config("paper_binance", options, config_dir=CONFIG_DIR, file="test.yaml")


def nse_broker(*, balances: dict[str, Decimal] | None = None) -> PaperBroker:
    options = {
        "adapter": "paper",
        "market_type": "equity",
        "markets": "markets/nse.yaml",
        "balances": {"INR": Decimal(1000000)} if balances is None else balances,
        "prices": NSE_PRICES,
    }
    return PaperBroker.from_config("paper_nse", options, config_dir=CONFIG_DIR, file="test.yaml")


def route_for(broker: PaperBroker, *, name: str = "BINANCE", limits: Limits | None = None) -> RouteContext:
    return RouteContext(
        name=name,
        label=name.title(),
        broker=broker,
        pipeline="crypto" if broker.market_type != "equity" else "equities",
        environment="test",
        limits=limits or Limits(),
        schemas_dir=SCHEMAS_DIR,
    )


def build(cls: type[Any], route: RouteContext, **options: Any) -> Any:
    """Validate ``options`` against the stage's own schema (defaults filled in), then build it."""
    return cls(validate(options, cls.options_schema, file="test.yaml", path=cls.__name__), route)


def raw(payload: dict[str, Any], route: str = "BINANCE") -> Signal:
    return Signal(id="sig1", route=route, payload=payload, received_at=0.0)


def ordered(
    broker: Broker,
    symbol: str = "BTCUSDT",
    side: str = "buy",
    quantity: str = "0.001",
    *,
    price: str | None = None,
    hint: str | None = None,
    reduce_only: bool = False,
    checked_at: Decimal | None = None,
) -> Signal:
    """A signal as the schema and whitelist stages leave it: a typed order and its market
    (``checked_at``: as ``notional`` leaves it too, every check at that price)."""
    market = broker.market(symbol)
    assert market is not None, symbol
    order = Order(
        symbol=symbol,
        side=side,  # type: ignore[arg-type]
        type="MARKET" if price is None else "LIMIT",
        quantity=Decimal(quantity),
        price=None if price is None else Decimal(price),
        price_hint=None if hint is None else Decimal(hint),
        reduce_only=reduce_only,
        client_order_id="og-sig1",
    )
    return Signal(
        id="sig1",
        route="BINANCE",
        payload={},
        received_at=0.0,
        order=order,
        market=market,
        prices=None if checked_at is None else CheckPrices.at(checked_at),
    )


def rejected(stage: Any, signal: Signal) -> Rejection:
    with pytest.raises(Rejection) as info:
        stage(signal)
    return info.value


BTC = {"broker": "BINANCE", "symbol": "BTCUSDT", "side": "buy", "quantity": Decimal("0.001"), "type": "MARKET"}


@pytest.fixture
def crypto_route() -> RouteContext:
    return route_for(crypto_broker())


@pytest.fixture
def schema(crypto_route: RouteContext) -> SchemaCheck:
    stage: SchemaCheck = build(SchemaCheck, crypto_route, file="signal.schema.json")
    return stage


# -- schema ----------------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["broker", "symbol", "side", "quantity", "type"])
def test_schema_missing_field_is_named(schema: SchemaCheck, missing: str) -> None:
    payload = {k: v for k, v in BTC.items() if k != missing}
    rejection = rejected(schema, raw(payload))
    assert (status_of(rejection), rejection.reason) == (400, f"Missing required field: {missing}")
    assert rejection.code == "invalid_payload"


@pytest.mark.parametrize("order_type", ["LIMIT", "limit", "Limit"])
def test_schema_limit_without_price_names_price(schema: SchemaCheck, order_type: str) -> None:
    rejection = rejected(schema, raw({**BTC, "type": order_type}))
    assert (status_of(rejection), rejection.reason) == (400, "Missing required field: price")


@pytest.mark.parametrize(
    ("side", "order_type", "extra", "want_side", "want_type"),
    [
        ("buy", "MARKET", {}, "buy", "MARKET"),
        ("BUY", "market", {}, "buy", "MARKET"),
        ("Sell", "Market", {}, "sell", "MARKET"),
        (" sell ", " MARKET ", {}, "sell", "MARKET"),
        ("SELL", "limit", {"price": Decimal(2500)}, "sell", "LIMIT"),
    ],
)
def test_schema_side_and_type_in_any_case(
    schema: SchemaCheck, side: str, order_type: str, extra: dict[str, Any], want_side: str, want_type: str
) -> None:
    order = schema(raw({**BTC, "side": side, "type": order_type, **extra})).require_order()
    assert (order.side, order.type) == (want_side, want_type)


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("side", "hold", 'Invalid side: "hold" (expected buy or sell)'),
        ("type", "STOP", 'Invalid type: "STOP" (expected MARKET or LIMIT)'),
        ("quantity", Decimal(0), "Invalid quantity: 0 (must be greater than 0)"),
        ("quantity", "0", "Invalid quantity: 0 (must be greater than 0)"),
        ("quantity", Decimal(-1), "Invalid quantity: -1 (must be greater than 0)"),
        ("quantity", "-0.5", "Invalid quantity: -0.5 (must be greater than 0)"),
        ("quantity", "abc", 'Invalid quantity: "abc" is not a number'),
        ("quantity", "1_000", 'Invalid quantity: "1_000" is not a number'),
        ("quantity", "NaN", 'Invalid quantity: "NaN" is not a number'),
        ("quantity", True, "Invalid quantity: true is not a number"),
        ("reduceOnly", "maybe", 'Invalid reduceOnly: "maybe" is not a boolean'),
        ("symbol", "BTC USDT", 'Invalid symbol: "BTC USDT" is not an accepted value'),
    ],
)
def test_schema_bad_value_is_a_400_naming_the_field(schema: SchemaCheck, field: str, value: Any, error: str) -> None:
    rejection = rejected(schema, raw({**BTC, field: value}))
    assert (status_of(rejection), rejection.reason) == (400, error)


@pytest.mark.parametrize(
    ("field", "value", "attribute", "expected"),
    [
        ("quantity", "0.001", "quantity", Decimal("0.001")),
        ("quantity", " 0.001 ", "quantity", Decimal("0.001")),
        ("quantity", "1e-3", "quantity", Decimal("0.001")),
        ("quantity", 2, "quantity", Decimal(2)),
        ("reduceOnly", "true", "reduce_only", True),
        ("reduceOnly", "TRUE", "reduce_only", True),
        ("reduceOnly", "yes", "reduce_only", True),
        ("reduceOnly", "1", "reduce_only", True),
        ("reduceOnly", True, "reduce_only", True),
        ("reduceOnly", "false", "reduce_only", False),
        ("reduceOnly", "0", "reduce_only", False),
        ("reduceOnly", False, "reduce_only", False),
    ],
)
def test_schema_reads_template_rendered_strings(
    schema: SchemaCheck, field: str, value: Any, attribute: str, expected: object
) -> None:
    order = schema(raw({**BTC, field: value})).require_order()
    assert getattr(order, attribute) == expected
    assert type(getattr(order, attribute)) is type(expected)


def test_schema_limit_price_from_a_string(schema: SchemaCheck) -> None:
    order = schema(raw({**BTC, "type": "limit", "price": "2500.5"})).require_order()
    assert (order.type, order.price) == ("LIMIT", Decimal("2500.5"))


def test_schema_market_order_ignores_a_price(schema: SchemaCheck) -> None:
    order = schema(raw({**BTC, "price": Decimal(40000)})).require_order()
    assert order.price is None


def test_schema_keeps_extra_fields_and_types_the_order(schema: SchemaCheck) -> None:
    signal = raw({**BTC, "quantity": "0.001", "comment": "{{strategy.order.comment}}", "n": Decimal("1.5")})
    checked = schema(signal)
    assert checked.payload["comment"] == "{{strategy.order.comment}}"
    assert checked.payload["n"] == Decimal("1.5")
    assert checked.payload["quantity"] == Decimal("0.001")  # the coerced value replaces the string
    assert checked.require_order() == Order(
        symbol="BTCUSDT", side="buy", type="MARKET", quantity=Decimal("0.001"), client_order_id="og-sig1"
    )
    assert signal.order is None  # the input is never mutated
    assert signal.payload["quantity"] == "0.001"


@pytest.mark.parametrize(
    ("symbol", "normalised"),
    [
        ("BTCUSDT", "BTCUSDT"),
        ("btcusdt", "BTCUSDT"),
        ("BINANCE:BTCUSDT", "BTCUSDT"),
        ("binance:btcusdt", "BTCUSDT"),
        ("BTCUSDT.P", "BTCUSDT"),
        ("BINANCE:BTCUSDT.P", "BTCUSDT"),
        ("BTC/USDT", "BTCUSDT"),
        ("BTC/USDT:USDT", "BTCUSDT"),
        ("eth/usdt:usdt", "ETHUSDT"),
    ],
)
def test_schema_normalises_symbols(schema: SchemaCheck, symbol: str, normalised: str) -> None:
    assert schema(raw({**BTC, "symbol": symbol})).require_order().symbol == normalised


@pytest.mark.parametrize(
    ("symbol", "normalised"),
    [("CIPLA", "CIPLA"), ("NSE:CIPLA", "CIPLA"), ("m&m", "M&M"), ("CIPLA-EQ", "CIPLA-EQ")],
)
def test_equity_schema_normalises_nse_symbols(symbol: str, normalised: str) -> None:
    schema = build(SchemaCheck, route_for(nse_broker(), name="FLATTRADE"), file="equity-signal.schema.json")
    payload = {"broker": "FLATTRADE", "symbol": symbol, "side": "buy", "quantity": Decimal(10), "type": "MARKET"}
    assert schema(raw(payload, "FLATTRADE")).require_order().symbol == normalised


def test_schema_reduce_only_snake_case_false_is_false(schema: SchemaCheck) -> None:
    order = schema(raw({**BTC, "reduce_only": "false"})).require_order()
    assert order.reduce_only is False


# -- whitelist -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "symbol", "code"),
    [
        ({}, "BTCUSDT", None),
        ({}, "BTCUSDC", None),
        ({}, "BTCBUSD", None),
        ({}, "ETHBTC", "quote_asset_not_allowed"),
        ({}, "BTCEUR", "quote_asset_not_allowed"),
        ({}, "XYZABC", "quote_asset_not_allowed"),
        ({}, "XYZUSDT", "symbol_not_listed"),
        ({"quote_assets": ["USDT"]}, "BTCUSDT", None),
        ({"quote_assets": ["USDT"]}, "BTCUSDC", "quote_asset_not_allowed"),
        ({"quote_assets": ["btc"]}, "ETHBTC", None),
        ({"allow": ["BTCUSDT"]}, "BTCUSDT", None),
        ({"allow": ["btcusdt"]}, "BTCUSDT", None),
        ({"allow": ["BTCUSDT"]}, "ETHUSDT", "symbol_not_allowed"),
        ({"deny": ["ETHUSDT"]}, "ETHUSDT", "symbol_not_allowed"),
        ({"deny": ["ETHUSDT"]}, "BTCUSDT", None),
        ({"allow": ["ETHUSDT"], "deny": ["ETHUSDT"]}, "ETHUSDT", "symbol_not_allowed"),
        ({"deny": ["ethusdt"]}, "ETHUSDT", "symbol_not_allowed"),  # deny is case-blind like allow
        # the listed market's own quote decides, not the symbol's last letters: BTCUSDT ends in "DT", quotes USDT
        ({"quote_assets": ["DT"]}, "BTCUSDT", "quote_asset_not_allowed"),
    ],
)
def test_whitelist_crypto(crypto_route: RouteContext, options: dict[str, Any], symbol: str, code: str | None) -> None:
    stage = build(SymbolWhitelist, crypto_route, **options)
    signal = ordered(crypto_route.broker, "BTCUSDT").with_order(symbol=symbol).replace(market=None)
    if code is None:
        market = stage(signal).require_market()
        assert market.symbol == symbol
        assert market == crypto_route.broker.market(symbol)
    else:
        rejection = rejected(stage, signal)
        assert (rejection.reason, status_of(rejection), rejection.code) == ("Invalid symbol", 422, code)


def whitelist_equity(options: dict[str, Any], symbol: str) -> tuple[SymbolWhitelist, Signal]:
    route = route_for(nse_broker(), name="FLATTRADE")
    stage = build(SymbolWhitelist, route, **options)
    signal = ordered(route.broker, "CIPLA").with_order(symbol=symbol).replace(market=None)
    return stage, signal


@pytest.mark.parametrize(
    ("options", "symbol", "listed_as"),
    [
        ({"quote_assets": []}, "CIPLA", "CIPLA"),
        ({"quote_assets": []}, "M&M", "M&M"),
        ({"quote_assets": []}, "CIPLA-EQ", "CIPLA"),  # FlatTrade's own name for it
        ({"quote_assets": []}, "AAPL", None),
        ({"quote_assets": [], "allow": ["CIPLA"]}, "RELIANCE", None),
        ({"quote_assets": [], "allow": ["CIPLA"]}, "CIPLA-EQ", "CIPLA"),  # allowed by its listed name
        ({"quote_assets": ["INR"]}, "CIPLA", None),  # the quote rule still reads the symbol's ending
        ({"quote_assets": ["EQ"]}, "CIPLA-EQ", None),  # ... and then the market's quote (INR)
        ({}, "CIPLA", None),  # the crypto default quote list has no INR: equities need []
    ],
)
def test_whitelist_equities(options: dict[str, Any], symbol: str, listed_as: str | None) -> None:
    stage, signal = whitelist_equity(options, symbol)
    if listed_as is None:
        assert rejected(stage, signal).reason == "Invalid symbol"
    else:
        result = stage(signal)
        assert result.require_market().symbol == listed_as
        assert result.require_order().symbol == listed_as  # the order goes on under the listed name
        if symbol == listed_as:
            assert result.order is signal.order  # nothing to rename: the order passes on untouched


def test_whitelist_deny_also_covers_the_broker_alias() -> None:
    stage, signal = whitelist_equity({"quote_assets": [], "deny": ["CIPLA"]}, "CIPLA-EQ")
    assert rejected(stage, signal).reason == "Invalid symbol"


# -- precision -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("symbol", "quantity", "max_decimals", "expected", "note"),
    [
        ("BTCUSDT", "0.001", 8, "0.001", None),
        ("BTCUSDT", "0.0010", 8, "0.0010", None),
        ("BTCUSDT", "0.12345678", 8, "0.12345", "quantity 0.12345678 truncated to 0.12345 (step 0.00001)"),
        ("BTCUSDT", "0.0012345", 8, "0.00123", "quantity 0.0012345 truncated to 0.00123 (step 0.00001)"),
        ("XRPUSDT", "15.7", 8, "15", "quantity 15.7 truncated to 15 (step 1)"),
        ("BTCUSDT", "0.00123", 5, "0.00123", None),
    ],
)
def test_precision_truncates_to_the_step(
    crypto_route: RouteContext, symbol: str, quantity: str, max_decimals: int, expected: str, note: str | None
) -> None:
    stage = build(PrecisionRounding, crypto_route, max_decimals=max_decimals)
    signal = ordered(crypto_route.broker, symbol, quantity=quantity)
    result = stage(signal)
    assert result.require_order().quantity == Decimal(expected)
    assert result.notes == ((note,) if note else ())
    if note is None:
        assert result is signal  # unchanged: the same value goes on


@pytest.mark.parametrize(
    ("quantity", "max_decimals", "reason", "code"),
    [
        ("0.123456789", 8, "Invalid quantity precision", "too_many_decimals"),
        ("0.000000001", 8, "Invalid quantity precision", "too_many_decimals"),
        ("0.001234", 5, "Invalid quantity precision", "too_many_decimals"),
        ("0.000001", 8, "Order size too small", "below_min_quantity"),  # truncates to nothing
        ("0.000009", 8, "Order size too small", "below_min_quantity"),
    ],
)
def test_precision_rejects(
    crypto_route: RouteContext, quantity: str, max_decimals: int, reason: str, code: str
) -> None:
    stage = build(PrecisionRounding, crypto_route, max_decimals=max_decimals)
    rejection = rejected(stage, ordered(crypto_route.broker, quantity=quantity))
    assert (rejection.reason, status_of(rejection), rejection.code) == (reason, 422, code)


def test_precision_default_is_eight_decimals(crypto_route: RouteContext) -> None:
    stage = build(PrecisionRounding, crypto_route)
    stage(ordered(crypto_route.broker, quantity="0.12345678"))
    with pytest.raises(Rejection, match="Invalid quantity precision"):
        stage(ordered(crypto_route.broker, quantity="0.123456789"))


@pytest.mark.parametrize(
    ("symbol", "side", "price", "expected", "note"),
    [
        ("BTCUSDT", "buy", "43500.126", "43500.12", "price 43500.126 rounded to 43500.12 (tick 0.01)"),
        ("BTCUSDT", "sell", "43500.126", "43500.13", "price 43500.126 rounded to 43500.13 (tick 0.01)"),
        ("BTCUSDT", "sell", "43500.121", "43500.13", "price 43500.121 rounded to 43500.13 (tick 0.01)"),
        ("BTCUSDT", "buy", "43500.12", "43500.12", None),
        ("BTCUSDT", "sell", "43500.12", "43500.12", None),
        ("CIPLA", "buy", "1500.03", "1500.00", "price 1500.03 rounded to 1500 (tick 0.05)"),
        ("CIPLA", "sell", "1500.03", "1500.05", "price 1500.03 rounded to 1500.05 (tick 0.05)"),
    ],
)
def test_precision_rounds_the_limit_price_towards_the_trader(
    symbol: str, side: str, price: str, expected: str, note: str | None
) -> None:
    broker = nse_broker() if symbol == "CIPLA" else crypto_broker()
    stage = build(PrecisionRounding, route_for(broker), max_decimals=0 if symbol == "CIPLA" else 8)
    quantity = "10" if symbol == "CIPLA" else "0.001"
    result = stage(ordered(broker, symbol, side, quantity, price=price))
    assert result.require_order().price == Decimal(expected)
    assert result.notes == ((note,) if note else ())


def test_precision_price_below_one_tick_is_refused(crypto_route: RouteContext) -> None:
    stage = build(PrecisionRounding, crypto_route)
    rejection = rejected(stage, ordered(crypto_route.broker, "BTCUSDT", "buy", "1", price="0.004"))
    assert (rejection.reason, rejection.code) == ("Invalid price: below the tick size 0.01", "price_below_tick")


@pytest.mark.parametrize(
    ("quantity", "reason"),
    [
        ("10", None),
        ("10.0", None),
        ("1", None),
        ("10.5", "Invalid quantity precision"),
        ("0.5", "Invalid quantity precision"),
    ],
)
def test_precision_whole_shares(quantity: str, reason: str | None) -> None:
    broker = nse_broker()
    stage = build(PrecisionRounding, route_for(broker, name="FLATTRADE"), max_decimals=0)
    signal = ordered(broker, "CIPLA", quantity=quantity)
    if reason is None:
        assert stage(signal).require_order().quantity == Decimal(quantity)
    else:
        assert rejected(stage, signal).reason == reason


def with_rules(signal: Signal, **rules: str) -> Signal:
    """``signal`` on a copy of its market with other rules (e.g. ``max_qty="1"``)."""
    market = dataclasses.replace(signal.require_market(), **{k: Decimal(v) for k, v in rules.items()})
    return signal.replace(market=market)


@pytest.mark.parametrize(
    ("rules", "quantity", "expected"),
    [
        ({"max_qty": "9000"}, "9000", "9000"),  # the maximum itself is allowed
        ({"max_qty": "0"}, "123456", "123456"),  # a maximum of 0 means no maximum
        ({"min_qty": "0.001"}, "0.001", "0.001"),  # the minimum itself is allowed
        ({"step_size": "0"}, "0.0012345", "0.0012345"),  # a step of 0 means no step rule
        ({"min_qty": "0", "step_size": "0.001"}, "0.0019", "0.001"),
    ],
)
def test_precision_bounds_are_inclusive(
    crypto_route: RouteContext, rules: dict[str, str], quantity: str, expected: str
) -> None:
    stage = build(PrecisionRounding, crypto_route)
    result = stage(with_rules(ordered(crypto_route.broker, quantity=quantity), **rules))
    assert result.require_order().quantity == Decimal(expected)


@pytest.mark.parametrize(
    ("rules", "quantity", "reason", "code"),
    [
        ({"max_qty": "9000"}, "9000.00001", "Order size too large: at most 9000 BTC per order", "above_max_quantity"),
        ({"max_qty": "0.5"}, "0.50001", "Order size too large: at most 0.5 BTC per order", "above_max_quantity"),
        ({"min_qty": "0.001"}, "0.00099", "Order size too small", "below_min_quantity"),
        # no minimum quantity: a quantity the step truncates to nothing is still too small
        ({"min_qty": "0", "step_size": "0.001"}, "0.0009", "Order size too small", "below_min_quantity"),
    ],
)
def test_precision_refuses_quantities_outside_the_market_bounds(
    crypto_route: RouteContext, rules: dict[str, str], quantity: str, reason: str, code: str
) -> None:
    stage = build(PrecisionRounding, crypto_route)
    rejection = rejected(stage, with_rules(ordered(crypto_route.broker, quantity=quantity), **rules))
    assert (rejection.reason, status_of(rejection), rejection.code) == (reason, 422, code)


# -- notional --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("minimum", "symbol", "quantity", "price", "passes", "reference"),
    [
        (10, "BTCUSDT", "0.0001", None, False, None),  # 4.35 USDT
        (10, "BTCUSDT", "0.001", None, True, "43500"),  # 43.5 USDT
        (10, "ETHUSDT", "0.004", None, True, "2500"),  # exactly 10 is enough
        (10, "ETHUSDT", "0.0039", None, False, None),
        (1, "BTCUSDT", "0.0002", None, True, "43500"),  # 8.7: over BTCUSDT's own minimum of 5
        (1, "BTCBUSD", "0.0002", None, False, None),  # 8.7: under BTCBUSD's own minimum of 10
        (1, "BTCUSDT", "0.0001", None, False, None),  # 4.35: under the market's 5, though over 1
        (10, "BTCUSDT", "0.001", "5000", False, None),  # the limit price counts: 5 USDT
        (10, "BTCUSDT", "0.0002", "60000", True, "60000"),  # 12 at the limit price, 8.7 at market
        (Decimal("0.5"), "XRPUSDT", "10", None, True, "0.6"),  # 6: over 5 and 0.5
    ],
)
def test_notional(
    crypto_route: RouteContext,
    minimum: Decimal,
    symbol: str,
    quantity: str,
    price: str | None,
    passes: bool,
    reference: str | None,
) -> None:
    stage = build(NotionalCheck, crypto_route, min=minimum)
    signal = ordered(crypto_route.broker, symbol, quantity=quantity, price=price)
    if passes:
        assert stage(signal).prices == CheckPrices.at(Decimal(str(reference)))
    else:
        rejection = rejected(stage, signal)
        assert (rejection.reason, status_of(rejection), rejection.code) == (
            "Order size too small",
            422,
            "below_min_notional",
        )


def test_notional_default_minimum_is_ten(crypto_route: RouteContext) -> None:
    stage = build(NotionalCheck, crypto_route)
    with pytest.raises(Rejection, match="Order size too small"):
        stage(ordered(crypto_route.broker, "ETHUSDT", quantity="0.0039"))  # 9.75
    stage(ordered(crypto_route.broker, "ETHUSDT", quantity="0.004"))


def test_notional_without_a_price_for_a_market_order() -> None:
    broker = crypto_broker(prices={"BTCUSDT": Decimal(43500)})
    stage = build(NotionalCheck, route_for(broker))
    rejection = rejected(stage, ordered(broker, "ETHUSDT", quantity="1"))
    assert rejection.reason == "No paper price for ETHUSDT: add it under the broker's prices"
    # a limit order brings its own price
    assert stage(ordered(broker, "ETHUSDT", quantity="1", price="2400")).prices == CheckPrices.at(Decimal(2400))


@pytest.mark.parametrize(
    ("kind", "side", "price", "low", "high", "note"),
    [
        ("MARKET", "buy", None, "43500", "43500", None),  # no hint: the market price
        ("MARKET", "buy", "43900", "43500", "43900", None),  # 0.92 % over: counts, both ways
        ("MARKET", "sell", "43100", "43100", "43500", None),  # 0.92 % under
        ("MARKET", "buy", "43935", "43500", "43935", None),  # exactly 1 %
        (
            "MARKET",
            "buy",
            "43936",
            "43500",
            "43500",
            "price hint 43936 ignored: 1.01% away from the market price 43500 (tolerance 1%)",
        ),
        (
            "MARKET",
            "sell",
            "100",
            "43500",
            "43500",
            "price hint 100 ignored: 100% away from the market price 43500 (tolerance 1%)",
        ),
        (
            "MARKET",
            "buy",
            "1000000000",
            "43500",
            "43500",
            "price hint 1000000000 ignored: 2298751% away from the market price 43500 (tolerance 1%)",
        ),
        ("LIMIT", "buy", "60000", "60000", "60000", None),  # far above the market: it may spend all of it
        ("LIMIT", "buy", "30000", "30000", "30000", None),  # rests: never pays more than its limit
        ("LIMIT", "sell", "50000", "50000", "50000", None),  # rests: sells at its limit
        ("LIMIT", "sell", "1", "1", "43500", None),  # marketable: fills at the market, valued there
    ],
)
def test_notional_prices_for_the_checks(
    crypto_route: RouteContext, kind: str, side: str, price: str | None, low: str, high: str, note: str | None
) -> None:
    stage = build(NotionalCheck, crypto_route, min=0)
    limit, hint = (price, None) if kind == "LIMIT" else (None, price)
    signal = stage(ordered(crypto_route.broker, side=side, quantity="10", price=limit, hint=hint))
    assert signal.prices == CheckPrices(Decimal(low), Decimal(high))
    assert signal.notes == (() if note is None else (note,))


def test_notional_tolerance_is_an_option(crypto_route: RouteContext) -> None:
    signal = ordered(crypto_route.broker, quantity="1", hint="45000")  # 3.45 % over
    assert build(NotionalCheck, crypto_route, price_tolerance_pct=5)(signal).prices == CheckPrices(
        Decimal(43500), Decimal(45000)
    )
    assert build(NotionalCheck, crypto_route)(signal).prices == CheckPrices.at(Decimal(43500))
    with pytest.raises(ConfigError, match="price_tolerance_pct"):
        build(NotionalCheck, crypto_route, price_tolerance_pct=-1)


@pytest.mark.parametrize(
    "hint",
    [
        None,  # 0.00023 x 43000 = 9.89: under the 10 minimum
        "43450",  # 9.99 at a hint 1.05 % over the market
        "43800",  # 10.07 at a hint 1.86 % over: within the 2 % tolerance, and the lower price counts
        "60000",  # 13.8 at a hint 40 % over: ignored
    ],
)
def test_notional_minimum_never_takes_a_higher_hint(hint: str | None) -> None:
    broker = crypto_broker(prices={"BTCUSDT": Decimal(43000)})
    stage = build(NotionalCheck, route_for(broker), price_tolerance_pct=2)
    assert rejected(stage, ordered(broker, quantity="0.00023", hint=hint)).reason == "Order size too small"


def test_a_sell_limit_far_below_the_market_is_valued_at_the_market() -> None:
    # the limit-price twin of a low hint: a sell at 1 fills at the market, $25,000 here
    broker = crypto_broker()
    route = route_for(broker, limits=Limits(max_notional=Decimal(1000)))
    notional, limits = build(NotionalCheck, route), build(EnvironmentLimits, route)
    rejection = rejected(limits, notional(ordered(broker, "ETHUSDT", "sell", "10", price="1")))
    assert rejection.code == "max_notional"
    limits(notional(ordered(broker, "ETHUSDT", "sell", "0.38", price="2600")))  # $988 at its limit: passes
    rejection = rejected(limits, notional(ordered(broker, "ETHUSDT", "sell", "0.38", price="2700")))
    assert rejection.code == "max_notional"  # $1,026 at its limit, above the market


def test_notional_logs_the_seed_line(crypto_route: RouteContext, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ordergate")
    build(NotionalCheck, crypto_route)(ordered(crypto_route.broker, quantity="0.001"))
    assert "Current price: $43,500, Notional: $43.5" in caplog.messages


# -- limits ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("route_name", "max_notional", "symbol", "quantity", "reason"),
    [
        ("BINANCE", Decimal(500), "BTCUSDT", "0.01", None),  # 435
        ("BINANCE", Decimal(500), "ETHUSDT", "0.2", None),  # exactly 500
        ("BINANCE", Decimal(500), "BTCUSDT", "0.02", "Order exceeds the limit of $500 per order on BINANCE"),
        ("BINANCE", None, "BTCUSDT", "100", None),
        ("FLATTRADE", Decimal(50000), "CIPLA", "33", None),  # 49,500 INR
        ("FLATTRADE", Decimal(50000), "CIPLA", "34", "Order exceeds the limit of ₹50,000 per order on FLATTRADE"),
    ],
)
def test_limits_max_notional(
    route_name: str, max_notional: Decimal | None, symbol: str, quantity: str, reason: str | None
) -> None:
    broker = nse_broker() if route_name == "FLATTRADE" else crypto_broker()
    stage = build(EnvironmentLimits, route_for(broker, name=route_name, limits=Limits(max_notional=max_notional)))
    signal = ordered(broker, symbol, quantity=quantity, checked_at=broker.price(symbol))
    if reason is None:
        assert stage(signal) is signal
    else:
        rejection = rejected(stage, signal)
        assert (rejection.reason, status_of(rejection), rejection.code) == (reason, 422, "max_notional")


@pytest.mark.parametrize("per_minute", [1, 3, 10])
def test_limits_rate_refuses_the_next_order_with_429(per_minute: int) -> None:
    broker = crypto_broker()
    stage = build(EnvironmentLimits, route_for(broker, limits=Limits(max_orders_per_minute=per_minute)))
    signal = ordered(broker, checked_at=Decimal(43500))
    for _ in range(per_minute):
        stage(signal)
    rejection = rejected(stage, signal)
    assert (status_of(rejection), rejection.code) == (429, "rate_limited")
    assert rejection.reason == f"Too many orders: the limit is {per_minute} per minute on BINANCE"
    assert status_of(rejected(stage, signal)) == 429  # a refused signal does not reset anything


def test_limits_rate_counts_per_stage_instance_and_skips_refused_orders() -> None:
    broker = crypto_broker()
    limits = Limits(max_notional=Decimal(500), max_orders_per_minute=1)
    stage = build(EnvironmentLimits, route_for(broker, limits=limits))
    other_route = build(EnvironmentLimits, route_for(broker, name="BINANCE_REAL", limits=limits))
    too_big = ordered(broker, quantity="1", checked_at=Decimal(43500))
    fine = ordered(broker, quantity="0.001", checked_at=Decimal(43500))
    assert rejected(stage, too_big).code == "max_notional"  # not counted towards the rate
    stage(fine)
    other_route(fine)  # its own count
    assert rejected(stage, fine).code == "rate_limited"


# -- balance ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("leverage", "quantity", "reduce_only", "passes"),
    [
        (1, "0.2", False, True),  # 8,700 margin of 10,000
        (1, "0.3", False, False),  # 13,050
        (2, "0.3", False, True),  # 6,525
        (2, "0.5", False, False),  # 10,875
        (10, "2", False, True),  # 8,700
        (1, "1", True, True),  # reduce-only spends no margin
    ],
)
def test_balance_futures_margin(leverage: int, quantity: str, reduce_only: bool, passes: bool) -> None:
    broker = crypto_broker(leverage=leverage)
    stage = build(BalanceCheck, route_for(broker))
    for side in ("buy", "sell"):
        signal = ordered(broker, side=side, quantity=quantity, reduce_only=reduce_only, checked_at=Decimal(43500))
        if passes:
            assert stage(signal) is signal
        else:
            rejection = rejected(stage, signal)
            assert (rejection.reason, status_of(rejection), rejection.code) == (
                "Insufficient balance",
                422,
                "insufficient_balance",
            )


@pytest.mark.parametrize(
    ("balances", "side", "quantity", "passes"),
    [
        ({"USDT": Decimal(10000)}, "buy", "0.2", True),
        ({"USDT": Decimal(10000)}, "buy", "0.3", False),
        ({"USDT": Decimal(10000)}, "sell", "0.1", False),  # a spot sell spends BTC, and there is none
        ({"USDT": Decimal(0), "BTC": Decimal("0.1")}, "sell", "0.1", True),
        ({"USDT": Decimal(0), "BTC": Decimal("0.1")}, "sell", "0.10001", False),
    ],
)
def test_balance_spot(balances: dict[str, Decimal], side: str, quantity: str, passes: bool) -> None:
    broker = crypto_broker(market_type="spot", balances=balances)
    stage = build(BalanceCheck, route_for(broker))
    signal = ordered(broker, side=side, quantity=quantity, checked_at=Decimal(43500))
    if passes:
        assert stage(signal) is signal
    else:
        assert rejected(stage, signal).reason == "Insufficient balance"


@pytest.mark.parametrize(
    ("balances", "side", "quantity", "passes"),
    [
        ({"INR": Decimal(1000000)}, "buy", "10", True),
        ({"INR": Decimal(14999)}, "buy", "10", False),
        ({"INR": Decimal(1000000)}, "sell", "10", False),  # no CIPLA shares held
        ({"INR": Decimal(0), "CIPLA": Decimal(10)}, "sell", "10", True),
    ],
)
def test_balance_equities(balances: dict[str, Decimal], side: str, quantity: str, passes: bool) -> None:
    broker = nse_broker(balances=balances)
    stage = build(BalanceCheck, route_for(broker, name="FLATTRADE"))
    signal = ordered(broker, "CIPLA", side, quantity, checked_at=Decimal(1500))
    if passes:
        assert stage(signal) is signal
    else:
        assert rejected(stage, signal).reason == "Insufficient balance"


def test_balance_uses_the_price_notional_checked_at() -> None:
    broker = crypto_broker(market_type="spot")
    stage = build(BalanceCheck, route_for(broker))
    stage(ordered(broker, quantity="5", price="1000", checked_at=Decimal(1000)))  # 5,000 at the limit price
    with pytest.raises(Rejection, match="Insufficient balance"):
        stage(ordered(broker, quantity="5", checked_at=Decimal(43500)))


def test_balance_can_be_switched_off() -> None:
    broker = crypto_broker(balances={})
    signal = ordered(broker, quantity="100", checked_at=Decimal(43500))
    assert build(BalanceCheck, route_for(broker), enabled=False)(signal) is signal
    with pytest.raises(Rejection, match="Insufficient balance"):
        build(BalanceCheck, route_for(broker))(signal)


# -- execute ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("symbol", "side", "quantity", "price", "status", "filled", "average"),
    [
        ("BTCUSDT", "buy", "0.001", None, "FILLED", "0.001", "43500"),
        ("BTCUSDT", "sell", "0.001", None, "FILLED", "0.001", "43500"),
        ("BTCUSDT", "buy", "0.001", "45000", "FILLED", "0.001", "43500"),  # marketable: the market price
        ("BTCUSDT", "buy", "0.001", "40000", "NEW", "0", None),  # rests below the market
        ("ETHUSDT", "sell", "0.1", "2600", "NEW", "0", None),  # rests above the market
        ("ETHUSDT", "sell", "0.1", "2500", "FILLED", "0.1", "2500"),
    ],
)
def test_execute_places_the_order(
    symbol: str, side: str, quantity: str, price: str | None, status: str, filled: str, average: str | None
) -> None:
    broker = crypto_broker()
    stage = build(OrderExecution, route_for(broker))
    signal = ordered(broker, symbol, side, quantity, price=price)
    placement = stage(signal).placement
    assert placement is not None
    assert (placement.status, placement.filled) == (status, Decimal(filled))
    assert placement.average_price == (None if average is None else Decimal(average))
    assert (placement.symbol, placement.side, placement.quantity) == (symbol, side, Decimal(quantity))
    assert placement.client_order_id == "og-sig1"
    assert placement.broker == "paper_binance"
    assert broker.find_order("og-sig1", symbol) == placement
    assert signal.placement is None


def test_execute_uses_the_market_behind_a_broker_alias(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ordergate")
    broker = nse_broker()
    stage = build(OrderExecution, route_for(broker, name="FLATTRADE"))
    placement = stage(ordered(broker, "CIPLA-EQ", quantity="10")).placement
    assert placement is not None
    assert (placement.symbol, placement.status, placement.base) == ("CIPLA", "FILLED", "CIPLA")
    assert broker.free_balance("INR") == Decimal(1000000 - 15000)
    assert (
        "Order params: {'symbol': 'CIPLA-EQ', 'side': 'BUY', 'type': 'MARKET', 'quantity': '10', "
        "'newClientOrderId': 'og-sig1'}" in caplog.messages
    )
    assert f"✅ Order placed successfully: {placement.order_id}" in caplog.messages
    assert "Status: FILLED, Executed: 10 CIPLA" in caplog.messages


def test_execute_lets_the_broker_refuse() -> None:
    broker = crypto_broker(balances={"USDT": Decimal(1)})
    stage = build(OrderExecution, route_for(broker))
    assert rejected(stage, ordered(broker)).reason == "Insufficient balance"
    assert broker.find_order("og-sig1", "BTCUSDT") is None


# -- notify ----------------------------------------------------------------------------------

FILLED = {**BTC}
RESTING = {**BTC, "type": "LIMIT", "price": Decimal(40000)}
TOO_SMALL = {**BTC, "quantity": Decimal("0.0001")}
MALFORMED = {k: v for k, v in BTC.items() if k != "quantity"}


def notified(payload: dict[str, Any], caplog: pytest.LogCaptureFixture, **options: Any) -> list[str]:
    """Run the crypto chain with a ``notify`` observer; return what it logged."""
    broker = crypto_broker()
    route = route_for(broker)
    stages = [
        ("schema", build(SchemaCheck, route)),
        ("whitelist", build(SymbolWhitelist, route)),
        ("precision", build(PrecisionRounding, route)),
        ("notional", build(NotionalCheck, route)),
        ("balance", build(BalanceCheck, route)),
        ("execute", build(OrderExecution, route)),
    ]
    runner = Runner(route, stages, [("notify", build(OutcomeNotifier, route, **options))])
    caplog.clear()
    caplog.set_level(logging.INFO, logger="ordergate.notify")
    runner.run(raw(payload))
    return [r.getMessage() for r in caplog.records if r.name == "ordergate.notify"]


@pytest.mark.parametrize(
    ("payload", "line"),
    [
        (FILLED, r"BUY 0\.001 BTCUSDT filled @ 43,500 — BINANCE \(paper\)"),
        (RESTING, r"BUY 0\.001 BTCUSDT open @ 40,000 \(order \d+\) — BINANCE \(paper\)"),
        (TOO_SMALL, r"BUY 0\.0001 BTCUSDT rejected at notional: Order size too small — BINANCE \(paper\)"),
        (MALFORMED, r"signal rejected at schema: Missing required field: quantity — BINANCE \(paper\)"),
    ],
)
def test_notify_logs_one_line_per_outcome(payload: dict[str, Any], line: str, caplog: pytest.LogCaptureFixture) -> None:
    lines = notified(payload, caplog)
    assert len(lines) == 1, lines
    assert re.fullmatch(line, lines[0]), lines[0]


@pytest.mark.parametrize(
    ("outcomes", "payload", "logged"),
    [
        (["rejected"], TOO_SMALL, True),
        (["rejected"], FILLED, False),
        (["rejected"], RESTING, False),
        (["filled"], FILLED, True),
        (["filled"], TOO_SMALL, False),
        (["open", "filled"], RESTING, True),
        ([], FILLED, False),
    ],
)
def test_notify_honours_outcomes(
    outcomes: list[str], payload: dict[str, Any], logged: bool, caplog: pytest.LogCaptureFixture
) -> None:
    assert len(notified(payload, caplog, outcomes=outcomes)) == (1 if logged else 0)


def test_notify_options_are_validated(crypto_route: RouteContext) -> None:
    with pytest.raises(ConfigError, match=r"test\.yaml:OutcomeNotifier\.outcomes"):
        build(OutcomeNotifier, crypto_route, outcomes=["filled", "exploded"])
