"""Binance through ccxt: the look-up after a lost placement answer decides, and only a real answer does.

A placement whose answer is lost (-1007, a timeout, a 5xx) is looked up by client order id.
Only Binance's own "no such order" (-2013) lets the order be sent once more; any look-up that
fails (a 5xx, -1021, a rate limit, a refused key, an answer about no order or another order)
ends in "unknown" (202) with exactly one order request. The cassettes are built from
documented bodies by ``scripts/build_cassettes.py``; each failing look-up is followed by what
a blind re-send would meet, so a regression that re-sends shows up as a second POST.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.brokers.test_ccxt_binance import BTC, binance  # noqa: F401 -- `binance` is the fixture

FUT = {"symbol": "BTCUSDT", "side": "buy", "quantity": "0.003", "type": "MARKET"}
COMPATIBLE = "http://binance-compatible.test:8080"
LEVERAGE: dict[str, dict[str, Any]] = {"spot": {}, "future": {"leverage": 5}}  # 0.003 BTC fits the demo margin


@pytest.fixture(scope="module")
def vcr_cassette_dir() -> str:
    """These cassettes live with the other Binance ones; one script writes them all."""
    return str(Path(__file__).parent / "cassettes" / "test_ccxt_binance")


@pytest.mark.vcr
@pytest.mark.parametrize(
    ("market_type", "signal_id", "lookups"),
    [
        ("spot", "lu-500", 3),  # a proxy's 500 page: a network-class error, read three times
        ("spot", "lu-1021", 3),  # clock skew: refused before reading anything
        ("spot", "lu-429", 3),
        ("spot", "lu-2015", 3),  # after a successful start, ccxt reads -2015 as a temporary ban
        ("spot", "lu-2011", 1),  # ccxt's OrderNotFound, but not Binance's "Order does not exist."
        ("spot", "lu-empty", 1),  # 200 with no order in it
        ("spot", "lu-another", 1),  # 200 with someone else's order
        ("future", "lu-fut", 3),
    ],
    ids=[
        "http-500",
        "clock-skew",
        "rate-limit",
        "bad-key",
        "unknown-order-2011",
        "empty-answer",
        "another-order",
        "future-clock-skew",
    ],
)
def test_a_failed_lookup_after_a_lost_answer_is_unknown(
    binance: Any,  # noqa: F811 -- the fixture imported above
    market_type: str,
    signal_id: str,
    lookups: int,
) -> None:
    ex = binance(market_type, **LEVERAGE[market_type])
    order = BTC if market_type == "spot" else FUT
    status, body, cost = ex.send(id=signal_id, price="43500", **order)
    assert (status, body.get("status")) == (202, "unknown"), (body, cost)
    api = "/api/v3" if market_type == "spot" else "/fapi/v1"
    placements = [c for c in cost if c == f"POST {api}/order"]
    assert placements == [f"POST {api}/order"]  # exactly one create-order request
    assert cost.count(f"GET {api}/order") == lookups
    entry = ex.app.journal.get(body["signalId"])
    assert entry is not None
    assert entry.status == "unknown"


@pytest.mark.vcr
@pytest.mark.parametrize("market_type", ["spot", "future"])
def test_behind_api_url_a_genuine_2013_is_absent(
    binance: Any,  # noqa: F811 -- the fixture imported above
    market_type: str,
) -> None:
    # Not a Binance host, so ccxt's per-host tables do not apply; its common table still maps
    # -2013 to OrderNotFound for spot and USD-M alike, and only that lets the order go again.
    ex = binance(market_type, api_url=COMPATIBLE, sandbox=True, **LEVERAGE[market_type])
    order = BTC if market_type == "spot" else FUT
    status, body, cost = ex.send(id="lu-absent", price="43500", **order)
    assert (status, body.get("status")) == (200, "FILLED"), (body, cost)
    api = "/api/v3" if market_type == "spot" else "/fapi/v1"
    tail = cost[-4:]
    assert [c.replace(COMPATIBLE, "") for c in tail] == [
        f"POST {api}/order",
        f"GET {api}/order",
        f"GET {api}/order",
        f"POST {api}/order",
    ]


@pytest.mark.vcr
@pytest.mark.parametrize("market_type", ["spot", "future"])
def test_a_resend_refused_as_duplicate_finds_the_order(
    binance: Any,  # noqa: F811 -- the fixture imported above
    market_type: str,
) -> None:
    """Absent twice, then the re-send is refused as a duplicate: the first order showed late.
    That refusal is not the answer (422 while an order is live): the order is."""
    ex = binance(market_type, **LEVERAGE[market_type])
    order = BTC if market_type == "spot" else FUT
    status, body, cost = ex.send(id="lu-dup", price="43500", **order)
    assert (status, body.get("status")) == (200, "FILLED"), (body, cost)
    api = "/api/v3" if market_type == "spot" else "/fapi/v1"
    assert cost[-5:] == [
        f"POST {api}/order",
        f"GET {api}/order",
        f"GET {api}/order",
        f"POST {api}/order",
        f"GET {api}/order",
    ]
