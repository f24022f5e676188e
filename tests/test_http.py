"""The HTTP shell through falcon.testing: parsing, statuses and words for bad input."""

from __future__ import annotations

import json

import pytest
from falcon import testing

from tests.conftest import SEED_ORDERS, raw_json

BTC = '"broker": "BINANCE", "symbol": "BTCUSDT", "side": "buy", "type": "MARKET"'


def post(client: testing.TestClient, body: str | bytes, content_type: str = "text/plain") -> testing.Result:
    return client.simulate_post("/webhook", body=body, headers={"Content-Type": content_type})


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ("", 400, "Empty body: send the alert message as JSON"),
        ("BUY BTCUSDT 0.001", 400, "Invalid JSON at line 1 column 1: Expecting value"),
        ("[1, 2]", 400, "Invalid payload: expected a JSON object"),
        ('"text"', 400, "Invalid payload: expected a JSON object"),
        ("{" + BTC + ', "quantity": NaN}', 400, "Invalid JSON: NaN is not a number"),
        ("{" + BTC + ', "quantity": Infinity}', 400, "Invalid JSON: Infinity is not a number"),
        ("{" + BTC + ', "quantity": 1, "quantity": 2}', 400, "Invalid JSON: duplicate key 'quantity'"),
        ("{" + BTC + ', "quantity": 0}', 400, "Invalid quantity: 0 (must be greater than 0)"),
        ("{" + BTC + ', "quantity": -1}', 400, "Invalid quantity: -1 (must be greater than 0)"),
        ("{" + BTC + ', "quantity": "abc"}', 400, 'Invalid quantity: "abc" is not a number'),
        ("{" + BTC + "}", 400, "Missing required field: quantity"),
        (
            '{"symbol": "BTCUSDT", "side": "buy", "quantity": 1, "type": "MARKET"}',
            400,
            "Missing required field: broker",
        ),
        ('{"broker": 7, "symbol": "BTCUSDT"}', 400, "Missing required field: broker"),
        (
            '{"broker": "BINANCE", "symbol": "BTCUSDT", "side": "hold", "quantity": 1, "type": "MARKET"}',
            400,
            'Invalid side: "hold" (expected buy or sell)',
        ),
        (
            '{"broker": "BINANCE", "symbol": "ETHUSDT", "side": "sell", "quantity": 1, "type": "LIMIT"}',
            400,
            "Missing required field: price",
        ),
        ('{"broker": "binance_futures", "symbol": "BTCUSDT"}', 400, "Unknown broker: binance_futures"),
        (
            "{" + BTC + ', "quantity": 1' + "0" * 5000 + "}",
            400,
            "Invalid JSON: the number 10000000000000000000... has more than 60 digits",
        ),
        (b"\xff\xfe{}", 400, "Invalid body: not UTF-8 text"),
        ("[" * 5000 + "]" * 5000, 400, "Invalid JSON: a value is too large or too deeply nested"),
        ('{"a": ' * 40 + "1" + "}" * 40, 400, "Invalid payload: nested too deeply"),
    ],
)
def test_bad_input_answers_a_clear_4xx(client: testing.TestClient, body: str | bytes, status: int, error: str) -> None:
    result = post(client, body)
    assert (result.status_code, result.json["error"]) == (status, error)
    assert result.json["success"] is False


def test_numbers_as_strings_and_any_case(client: testing.TestClient) -> None:
    body = '{"broker": "binance", "symbol": "binance:btcusdt", "side": "BUY", "quantity": "0.001", "type": "market"}'
    result = post(client, body, "application/json")
    assert result.status_code == 200, result.json
    assert (result.json["symbol"], result.json["quantity"], result.json["side"]) == ("BTCUSDT", "0.001", "BUY")


def test_extra_fields_are_ignored(client: testing.TestClient) -> None:
    payload = {**SEED_ORDERS[0], "comment": "{{strategy.order.comment}}", "time": "2026-11-25T01:00:00Z", "n": 1.5}
    result = post(client, raw_json(payload))
    assert result.status_code == 200, result.json


def test_success_body_carries_order_fields(client: testing.TestClient) -> None:
    result = post(client, raw_json(SEED_ORDERS[1]))
    body = result.json
    assert result.status_code == 200
    assert body["success"] is True
    assert isinstance(body["orderId"], int)
    assert body["clientOrderId"] == f"og-{body['signalId']}"
    assert (body["status"], body["executedQty"], body["avgPrice"], body["price"]) == ("FILLED", "0.1", "2500", "2500")
    assert [step["stage"] for step in body["trace"]] == [
        "schema",
        "whitelist",
        "precision",
        "notional",
        "limits",
        "balance",
        "execute",
    ]


def test_quantity_is_truncated_to_the_step_with_a_note(client: testing.TestClient) -> None:
    result = post(client, "{" + BTC + ', "quantity": 0.0012345}')
    assert result.status_code == 200, result.json
    assert result.json["quantity"] == "0.00123"
    assert result.json["notes"] == ["quantity 0.0012345 truncated to 0.00123 (step 0.00001)"]


def test_rejection_names_its_stage(client: testing.TestClient) -> None:
    result = post(client, "{" + BTC + ', "quantity": 0.0001}')
    assert result.status_code == 422
    assert (result.json["error"], result.json["stage"], result.json["code"]) == (
        "Order size too small",
        "notional",
        "below_min_notional",
    )


def test_body_over_the_limit_is_413_without_reading_it_all(client: testing.TestClient) -> None:
    result = client.simulate_post("/webhook", body="{" + " " * 20000 + "}")
    assert result.status_code == 413
    assert result.json["error"].startswith("Body over")


def test_unknown_path_and_method(client: testing.TestClient) -> None:
    assert client.simulate_get("/nope").status_code == 404
    assert client.simulate_get("/webhook").status_code == 405


def test_responses_are_json(client: testing.TestClient) -> None:
    result = post(client, raw_json(SEED_ORDERS[0]))
    assert result.headers["content-type"].startswith("application/json")
    assert json.loads(result.text)["success"] is True


def test_quantity_above_the_market_maximum_is_refused(client: testing.TestClient) -> None:
    # the stricter of LOT_SIZE (9000) and MARKET_LOT_SIZE (168.82682004 in the spot snapshot)
    result = post(client, "{" + BTC + ', "quantity": 168.82683}')
    assert (result.status_code, result.json["error"]) == (
        422,
        "Order size too large: at most 168.82682004 BTC per order",
    )


def test_symbol_with_template_spaces_and_exchange_prefix(client: testing.TestClient) -> None:
    body = '{"broker": "FLATTRADE", "symbol": " NSE:CIPLA-EQ ", "side": "buy", "quantity": "10 ", "type": "MARKET"}'
    result = post(client, body)
    assert result.status_code == 200, result.json
    assert result.json["symbol"] == "CIPLA"


def test_client_order_id_is_stable_for_a_signal_id(client: testing.TestClient) -> None:
    first = post(client, raw_json({**SEED_ORDERS[0], "id": "long-entry-2026-11-25T01:00:00Z"})).json
    again = post(client, raw_json({**SEED_ORDERS[0], "id": "long-entry-2026-11-25T01:00:00Z"})).json
    other = post(client, raw_json({**SEED_ORDERS[0], "id": "long-entry-2026-11-25T01:01:00Z"})).json
    assert first["clientOrderId"] == again["clientOrderId"] != other["clientOrderId"]
    assert first["clientOrderId"].startswith("og-")
    assert len(first["clientOrderId"]) <= 36
