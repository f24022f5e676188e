"""Small money edges that once let a wrong order through: digits, ids, unfilled placements."""

from __future__ import annotations

import json
import threading
from decimal import Decimal
from pathlib import Path

import pytest
from falcon import testing

from ordergate.app import OrdergateApp
from ordergate.pipeline.money import MAX_DIGITS, decimals
from ordergate.stages.schema import client_order_id, given_id
from tests.conftest import SEED_ORDERS


@pytest.mark.parametrize(
    "quantity",
    ['"0.00299999999999999999999999999999"', "0.00299999999999999999999999999999"],
    ids=["string", "number"],
)
def test_thirty_two_decimals_are_refused_not_rounded_to_an_order(client: testing.TestClient, quantity: str) -> None:
    body = json.dumps({**SEED_ORDERS[0], "quantity": "Q"}).replace('"Q"', quantity)
    result = client.simulate_post("/webhook", body=body)
    assert (result.status_code, result.json["error"]) == (422, "Invalid quantity precision"), result.json


def test_a_number_longer_than_any_price_is_a_clear_400(client: testing.TestClient) -> None:
    body = json.dumps(SEED_ORDERS[0]).replace('"quantity": 0.001', '"quantity": 0.' + "1" * (MAX_DIGITS + 1))
    result = client.simulate_post("/webhook", body=body)
    assert result.status_code == 400
    assert f"more than {MAX_DIGITS} digits" in result.json["error"]


def test_every_thread_counts_every_decimal() -> None:
    """Waitress serves from worker threads: their context must be as wide as the main one's."""
    quantity = Decimal("0.00299999999999999999999999999999")
    seen: list[int] = []
    worker = threading.Thread(target=lambda: seen.append(decimals(quantity)))
    worker.start()
    worker.join()
    assert seen == [32]
    assert decimals(quantity) == 32


def test_two_long_ids_that_differ_at_the_end_are_two_signals() -> None:
    first, second = "x" * 250 + "1", "x" * 250 + "2"
    assert given_id({"id": first}) != given_id({"id": second})
    assert len(given_id({"id": first}) or "") <= 200


def test_a_numeric_id_keeps_its_client_order_id_through_the_journal(app: OrdergateApp) -> None:
    payload = {**SEED_ORDERS[0], "id": Decimal("1.50")}
    app.journal.claim("sig-1", "BINANCE", payload, "BINANCE:1.5", 1.0)
    entry = app.journal.get("sig-1")
    assert entry is not None
    assert entry.payload is not None
    assert client_order_id("BINANCE", entry.payload, "sig-1") == client_order_id("BINANCE", payload, "sig-1")


def test_an_order_the_exchange_expired_unfilled_is_no_success(tmp_path: Path) -> None:
    """Binance EXPIREs a spot MARKET order that meets no liquidity: the order exists (final), but
    nothing was bought, so the answer says so instead of ``success: true``."""
    from tests.brokers.fake_binance import FakeBinance, Serving
    from tests.test_retry import app_on_testnet

    with Serving(FakeBinance(liquidity=False)) as exchange:
        app = app_on_testnet(exchange, tmp_path)
        try:
            result = testing.TestClient(app).simulate_post(
                "/webhook/hook-secret-not-a-secret", body=json.dumps({**SEED_ORDERS[0], "id": "thin"})
            )
        finally:
            app.journal.close()
    assert result.status_code == 422, result.json
    assert result.json["success"] is False
    assert result.json["status"] == "EXPIRED"
    assert result.json["error"].endswith("as EXPIRED: nothing was filled")
    assert result.json["code"] == "order_expired"


def test_two_numeric_ids_that_differ_after_digit_200_are_not_one_signal(client: testing.TestClient) -> None:
    """They used to share one idempotency key (the id was cut at 200 characters), so the second
    answered the first's outcome. A number that long is no id a template writes: a clear 400."""
    for last in "12":
        body = json.dumps(SEED_ORDERS[0])[:-1] + ', "id": 1' + "0" * 200 + last + "}"
        result = client.simulate_post("/webhook", body=body)
        assert result.status_code == 400, result.json
        assert "duplicate" not in result.json
