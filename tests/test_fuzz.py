"""Thousands of generated payloads at the real app: never a 5xx, never an order from bad input."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from falcon import testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ordergate.app import OrdergateApp, create_app
from ordergate.brokers.paper import PaperBroker
from ordergate.config import load_settings
from tests.conftest import CONFIG_DIR

SECRET = "fuzz-secret-value-0123456789"

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(["0", "-1", "1e400", "0.1234567890123", "NaN", "Infinity", "\u0000", "BUY", "market", "LIMIT"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)

# Payloads close to valid ones, so the fuzz reaches every stage, not only the parser.
near_valid = st.fixed_dictionaries(
    {
        "broker": st.sampled_from(["BINANCE", "binance", "BINANCE_REAL", "FLATTRADE", "KRAKEN", "", " "])
        | st.text(max_size=10),
        "symbol": st.sampled_from(["BTCUSDT", "btcusdt", "BINANCE:BTCUSDT", "CIPLA", "XYZ", "", "BTC/USDT:USDT", "💥"])
        | st.text(max_size=12),
        "side": st.sampled_from(["buy", "SELL", "hold", ""]) | json_values,
        "quantity": st.one_of(
            st.decimals(allow_nan=False, allow_infinity=False, places=None).map(str),
            st.sampled_from(["0", "-0.001", "1e-30", "1e30", "0.0010", "10", "0.123456789"]),
            json_values,
        ),
        "type": st.sampled_from(["MARKET", "limit", "STOP", ""]) | json_values,
    },
    optional={
        "price": json_values | st.sampled_from(["2500", "-1", "0"]),
        "passphrase": st.text(max_size=10),
        "id": json_values,
        "time": json_values,
        "reduceOnly": json_values,
    },
)

bodies = st.one_of(
    near_valid.map(lambda d: json.dumps(d, default=str)),
    json_values.map(lambda v: json.dumps(v, default=str)),
    st.binary(max_size=200),
    st.text(max_size=200),
    near_valid.map(lambda d: json.dumps(d, default=str)[:-1]),  # truncated
)


def fuzz_app(tmp_path: Path) -> OrdergateApp:
    environ = {"ORDERGATE_DB": str(tmp_path / "fuzz.db"), "WEBHOOK_SECRET": SECRET}
    return create_app(load_settings("development", CONFIG_DIR, environ=environ))


def test_generated_payloads_never_5xx_and_never_order_without_the_secret(tmp_path: Path) -> None:
    app = fuzz_app(tmp_path)
    client = testing.TestClient(app)
    statuses: list[int] = []

    @settings(max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck))
    @given(body=bodies)
    def check(body: Any) -> None:
        result = client.simulate_post("/webhook", body=body, headers={"Content-Type": "text/plain"})
        statuses.append(result.status_code)
        assert 400 <= result.status_code < 500, (body, result.status_code, result.text)
        assert result.json["success"] is False

    check()
    for name, broker in app.service.brokers.items():
        assert isinstance(broker, PaperBroker)
        assert broker.placements() == [], name
    assert len(statuses) >= 2000


def test_generated_authenticated_payloads_never_5xx(tmp_path: Path) -> None:
    app = fuzz_app(tmp_path)
    client = testing.TestClient(app)
    seen: set[int] = set()

    @settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck))
    @given(payload=near_valid)
    def check(payload: dict[str, Any]) -> None:
        body = json.dumps({**payload, "passphrase": SECRET}, default=lambda v: str(v) if isinstance(v, Decimal) else v)
        result = client.simulate_post("/webhook", body=body)
        seen.add(result.status_code)
        assert result.status_code < 500, (payload, result.text)
        if result.status_code == 200 and not result.json.get("duplicate"):
            assert result.json["success"] is True  # a repeated id answers its first outcome, whatever it was

    check()
    assert any(status >= 400 for status in seen)
