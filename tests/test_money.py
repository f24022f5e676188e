"""The pure money functions: parsing, decimal places, step truncation, tick rounding, display."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from ordergate.pipeline.money import (
    decimals,
    dumps,
    floor_to_step,
    money,
    plain,
    round_price,
    to_decimal,
    to_step,
    wire_decimal,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, Decimal(0)),
        (1, Decimal(1)),
        (-5, Decimal(-5)),
        (10**20, Decimal("100000000000000000000")),
        ("0.001", Decimal("0.001")),
        (" 0.001 ", Decimal("0.001")),
        ("\t43500\n", Decimal(43500)),
        ("1e-3", Decimal("0.001")),
        ("1E+2", Decimal(100)),
        ("+2.5", Decimal("2.5")),
        ("-0.1", Decimal("-0.1")),
        ("0.10000000000000000001", Decimal("0.10000000000000000001")),
        (Decimal("0.1"), Decimal("0.1")),
    ],
)
def test_to_decimal_reads_ints_numeric_strings_and_decimals(value: object, expected: Decimal) -> None:
    result = to_decimal(value)
    assert type(result) is Decimal
    assert result == expected


def test_to_decimal_keeps_every_digit_of_a_string() -> None:
    # The reason strings are welcome and floats are not: the text is read exactly.
    assert str(to_decimal("0.1")) == "0.1"
    assert to_decimal("0.1") != Decimal(0.1)  # noqa: RUF032 - the float this function refuses to see


@pytest.mark.parametrize(
    "value",
    [
        0.001,  # a float: precision is already lost
        1.0,
        True,
        False,
        "NaN",
        "nan",
        "sNaN",
        "Infinity",
        "-Infinity",
        "inf",
        Decimal("NaN"),
        Decimal("Infinity"),
        "1_000",
        "abc",
        "0x10",
        "1,000",
        "",
        "   ",
        None,
        [1],
        {"quantity": 1},
        b"1",
    ],
)
def test_to_decimal_refuses_anything_else(value: object) -> None:
    assert to_decimal(value) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "0"),
        ("", "0"),
        ("0.00001000", "0.00001000"),  # every digit as the exchange wrote it
        ("5", "5"),
        (" 5 ", "5"),
        (0.1, "0.1"),  # a ccxt float by its shortest repr, never its binary expansion
        (0.5, "0.5"),
        (1e-05, "0.00001"),
        (3, "3"),
        (Decimal("1.50"), "1.50"),
        ("abc", "0"),
        ("NaN", "0"),
        ("Infinity", "0"),
        (float("inf"), "0"),
        (float("nan"), "0"),
        (True, "0"),
        ("1_000", "0"),
        ("1" * 61, "0"),  # longer than any number ordergate lets in
        ([], "0"),
        (b"1", "0"),
    ],
)
def test_wire_decimal_reads_a_broker_number_exactly_or_zero(value: Any, expected: str) -> None:
    result = wire_decimal(value)
    assert type(result) is Decimal
    assert str(result) == expected


@pytest.mark.parametrize("value", [None, "", "abc", "NaN", 0.1])
def test_wire_decimal_default_stands_for_what_is_absent(value: Any) -> None:
    expected = Decimal("0.1") if value == 0.1 else Decimal("0.05")
    assert wire_decimal(value, Decimal("0.05")) == expected


def test_to_decimal_reads_floats_only_when_asked() -> None:
    assert to_decimal(0.1) is None
    assert str(to_decimal(0.1, floats=True)) == "0.1"
    assert to_decimal(True, floats=True) is None


@pytest.mark.parametrize(
    ("value", "places"),
    [
        (Decimal(10), 0),
        (Decimal("1E+1"), 0),
        (Decimal("43500.00"), 0),
        (Decimal(0), 0),
        (Decimal("0.000"), 0),
        (Decimal("0.1"), 1),
        (Decimal("0.0010"), 3),
        (Decimal("1e-3"), 3),
        (Decimal("10.5"), 1),
        (Decimal("0.12345678"), 8),
        (Decimal("0.123456789"), 9),
        (Decimal("-0.25"), 2),
    ],
)
def test_decimals_counts_significant_places(value: Decimal, places: int) -> None:
    assert decimals(value) == places


@pytest.mark.parametrize(
    ("value", "step", "expected"),
    [
        (Decimal("0.0012345"), Decimal("0.00001"), "0.00123"),
        (Decimal("0.001"), Decimal("0.00001"), "0.001"),
        (Decimal("0.000009"), Decimal("0.00001"), "0"),
        (Decimal("10.5"), Decimal(1), "10"),
        (Decimal(10), Decimal(1), "10"),
        (Decimal("0.35"), Decimal("0.1"), "0.3"),
        (Decimal("123.456"), Decimal("0.05"), "123.45"),
        (Decimal(1), Decimal("0.3"), "0.9"),
        (Decimal("15.7"), Decimal(1), "15"),
        (Decimal("0.0012345"), Decimal(0), "0.0012345"),  # step 0: no step rule
    ],
)
def test_floor_to_step_truncates_never_rounds_up(value: Decimal, step: Decimal, expected: str) -> None:
    result = floor_to_step(value, step)
    assert result == Decimal(expected)
    assert result <= value
    assert plain(result) == expected


@pytest.mark.parametrize(
    ("value", "step", "down", "up"),
    [
        (Decimal("101.736"), Decimal("0.05"), "101.7", "101.75"),  # FlatTrade's 0.05 tick
        (Decimal("100.724"), Decimal("0.05"), "100.7", "100.75"),
        (Decimal("1507.5"), Decimal("0.05"), "1507.5", "1507.5"),  # on the grid: unchanged
        (Decimal("0.0012345"), Decimal("0.00001"), "0.00123", "0.00124"),
        (Decimal(1), Decimal("0.3"), "0.9", "1.2"),
        (Decimal("0.000009"), Decimal("0.00001"), "0", "0.00001"),
        (Decimal("2500.123"), Decimal(0), "2500.123", "2500.123"),  # step 0: no rule
        (Decimal("2500.123"), Decimal(-1), "2500.123", "2500.123"),
    ],
)
def test_to_step_rounds_onto_the_grid_up_or_down(value: Decimal, step: Decimal, down: str, up: str) -> None:
    assert to_step(value, step, up=False) == Decimal(down)
    assert to_step(value, step, up=True) == Decimal(up)


@pytest.mark.parametrize(
    ("price", "tick", "side", "expected"),
    [
        (Decimal("43500.126"), Decimal("0.01"), "buy", Decimal("43500.12")),
        (Decimal("43500.126"), Decimal("0.01"), "sell", Decimal("43500.13")),
        (Decimal("43500.121"), Decimal("0.01"), "sell", Decimal("43500.13")),
        (Decimal("43500.129"), Decimal("0.01"), "buy", Decimal("43500.12")),
        (Decimal("43500.12"), Decimal("0.01"), "buy", Decimal("43500.12")),
        (Decimal("43500.12"), Decimal("0.01"), "sell", Decimal("43500.12")),
        (Decimal("1500.03"), Decimal("0.05"), "buy", Decimal("1500.00")),
        (Decimal("1500.03"), Decimal("0.05"), "sell", Decimal("1500.05")),
        (Decimal("300.06"), Decimal("0.1"), "buy", Decimal("300.0")),
        (Decimal("300.06"), Decimal("0.1"), "sell", Decimal("300.1")),
        (Decimal("0.004"), Decimal("0.01"), "buy", Decimal(0)),
        (Decimal("2500.123"), Decimal(0), "buy", Decimal("2500.123")),  # tick 0: no tick rule
    ],
)
def test_round_price_never_worse_for_the_trader(price: Decimal, tick: Decimal, side: str, expected: Decimal) -> None:
    result = round_price(price, tick, side)
    assert result == expected
    if side == "buy":
        assert result <= price
    else:
        assert result >= price


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal(43500), "43500"),
        (Decimal("4.35E+4"), "43500"),
        (Decimal("43500.00"), "43500"),
        (Decimal("0.0010"), "0.001"),
        (Decimal("1E-8"), "0.00000001"),
        (Decimal("10.50"), "10.5"),
        (Decimal(0), "0"),
        (Decimal("-2.50"), "-2.5"),
        (Decimal("1234567.891"), "1234567.891"),
    ],
)
def test_plain_is_exact_and_never_scientific(value: Decimal, text: str) -> None:
    assert plain(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal(43500), "43,500"),
        (Decimal("4.35E+4"), "43,500"),
        (Decimal("1E+6"), "1,000,000"),
        (Decimal("1234567.891"), "1,234,567.891"),
        (Decimal("43.50"), "43.5"),
        (Decimal("0.001"), "0.001"),
        (Decimal(999), "999"),
        (Decimal(1000), "1,000"),
    ],
)
def test_money_groups_thousands(value: Decimal, text: str) -> None:
    assert money(value) == text


@pytest.mark.parametrize(
    ("value", "options", "text"),
    [
        ({"quantity": Decimal("0.0010"), "price": Decimal("4.35E+4")}, {}, '{"quantity": "0.001", "price": "43500"}'),
        ([Decimal(0), 1, "x", None], {}, '["0", 1, "x", null]'),
        ({"at": datetime(2026, 1, 2, tzinfo=UTC)}, {}, '{"at": "2026-01-02 00:00:00+00:00"}'),  # str() of the rest
        ({"b": Decimal(1), "a": Decimal("2.50")}, {"sort_keys": True}, '{"a": "2.5", "b": "1"}'),
    ],
)
def test_dumps_writes_decimals_as_exact_strings(value: object, options: dict[str, Any], text: str) -> None:
    assert dumps(value, **options) == text


def test_widen_context_sets_this_threads_precision_and_every_later_threads() -> None:
    """Called once at import; called again here so a change to it cannot hide behind that."""
    import decimal
    import threading

    from ordergate.pipeline.money import PRECISION, widen_context

    decimal.getcontext().prec = 28
    decimal.DefaultContext.prec = 28
    try:
        widen_context()
        assert decimal.getcontext().prec == PRECISION
        assert decimal.DefaultContext.prec == PRECISION
        seen: list[int] = []
        thread = threading.Thread(target=lambda: seen.append(decimal.getcontext().prec))
        thread.start()
        thread.join()
        assert seen == [PRECISION]
    finally:
        decimal.DefaultContext.prec = PRECISION
        decimal.getcontext().prec = PRECISION


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("NaN", False),  # not a number at all: refused elsewhere, never "too long"
        ("Infinity", False),
        ("1" * 60, False),
        ("1" * 61, True),
        ("1" * 31 + "." + "1" * 30, True),  # 61 digits, half of them decimals
        ("1" * 30 + "." + "1" * 30, False),
        ("1E+70", True),  # written out in full: a 1 and 70 zeros
        ("1E+59", False),
        ("1E-70", True),  # 0.000...1: 70 decimals
        ("1E-60", False),
    ],
)
def test_too_long_counts_every_digit_written_out_in_full(text: str, expected: bool) -> None:
    from ordergate.pipeline.money import too_long

    assert too_long(Decimal(text)) is expected
