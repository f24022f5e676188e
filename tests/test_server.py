"""End to end through a real waitress server: the seed's payloads and error words."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.conftest import SEED_ERRORS, SEED_ORDERS, LiveServer, raw_json


def test_seed_orders_and_errors_over_real_http(live_server: LiveServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ordergate")
    for payload in SEED_ORDERS:
        status, body = live_server.post(raw_json(payload))
        assert status == 200, body
        assert body["success"] is True
        assert body["orderId"]
        assert body["status"] == "FILLED"
        assert body["executedQty"] == str(payload["quantity"])
    for payload, words in SEED_ERRORS:
        status, body = live_server.post(raw_json(payload))
        assert (status, body["error"]) == (422, words)

    lines = caplog.messages
    assert "Processing Binance Signal: BUY BTCUSDT 0.001 @ MARKET" in lines
    assert "Current price: $43,500, Notional: $43.5" in lines
    assert any(line.startswith("Order params: {") and "'quantity': '0.001'" in line for line in lines)
    assert any(line.startswith("✅ Order placed successfully: ") for line in lines)
    assert "Status: FILLED, Executed: 0.001 BTC" in lines
    assert "Processing FlatTrade Signal: BUY CIPLA 10 @ MARKET" in lines
    for _, words in SEED_ERRORS:
        assert f"ERROR: {words}" in lines


@pytest.mark.parametrize("content_type", ["text/plain", "application/json", "application/x-www-form-urlencoded", ""])
def test_json_body_whatever_the_content_type(live_server: LiveServer, content_type: str) -> None:
    status, body = live_server.post(raw_json(SEED_ORDERS[0]), content_type)
    assert status == 200, body


def test_unknown_broker_and_health(live_server: LiveServer) -> None:
    status, body = live_server.post(
        '{"broker": "KRAKEN", "symbol": "BTCUSDT", "side": "buy", "quantity": 1, "type": "MARKET"}'
    )
    assert (status, body["error"]) == (400, "Unknown broker: KRAKEN")
    status, health = live_server.request("GET", "/healthz")
    assert status == 200
    assert health["status"] == "ok"


def test_oversized_body_is_413(live_server: LiveServer) -> None:
    limit = live_server.app.service.settings.data["server"]["max_body_bytes"]
    padding: dict[str, Any] = {**SEED_ORDERS[0], "comment": "x" * limit}
    status, body = live_server.post(raw_json(padding))
    assert status == 413
    assert "error" in body
