"""Build the Binance cassettes of tests/brokers from documented and ccxt-recorded bodies.

Usage: python scripts/build_cassettes.py [SPOT_EXCHANGEINFO_SNAPSHOT]

These cassettes are built, not recorded: no request in them was sent to Binance. The response
bodies come from ``tests/brokers/responses/`` (see its SOURCES.md: Binance's documented
examples, ccxt's recorded static fixtures, and the 2023-09 spot exchangeInfo snapshot). A real
answer echoes the request, so the echoed fields of an order response (symbol, clientOrderId,
side, type, quantities, price) are set to what the test sends; every other field is kept as
found. Each request carries the exact body parameters the adapter must send (tests/brokers/
conftest.py matches on them), and no key, signature or timestamp, as vcrpy's filters leave a
real recording.

Cassettes of the ``recordable`` tests can instead be recorded for real: ``make record``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import yaml

ROOT = Path(__file__).resolve().parent.parent
RESPONSES = ROOT / "tests" / "brokers" / "responses"
OUT = ROOT / "tests" / "brokers" / "cassettes" / "test_ccxt_binance"

SPOT = "https://testnet.binance.vision/api/v3"
FAPI = "https://demo-fapi.binance.com/fapi"
SPOT_SYMBOLS = ("BTCUSDT", "ETHUSDT")


def body(name: str) -> Any:
    return json.loads((RESPONSES / f"{name}.json").read_text())


def cid(route: str, signal_id: str) -> str:
    """The client order id ordergate derives from a signal's id (stages/schema.py)."""
    return "og-" + hashlib.sha256(f"{route}\x00{signal_id}".encode()).hexdigest()[:24]


def interaction(method: str, uri: str, status: int, payload: Any, form: dict[str, str] | None = None) -> dict[str, Any]:
    reason = {200: "OK", 400: "Bad Request", 429: "Too Many Requests", 503: "Service Unavailable"}[status]
    return {
        "request": {
            "body": urlencode(form) if form else None,
            "headers": {},
            "method": method,
            "uri": uri,
        },
        "response": {
            "body": {"string": json.dumps(payload, separators=(",", ":"))},
            "headers": {"Content-Type": ["application/json;charset=UTF-8"]},
            "status": {"code": status, "message": reason},
        },
    }


def d8(value: str | Decimal) -> str:
    """Binance spot prints amounts with 8 decimals."""
    return f"{Decimal(value):.8f}"


# -- spot ---------------------------------------------------------------------------------------


def spot_markets() -> dict[str, Any]:
    return interaction("GET", f"{SPOT}/exchangeInfo", 200, body("spot-exchangeInfo"))


def spot_ticker() -> dict[str, Any]:
    return interaction("GET", f"{SPOT}/ticker/24hr?symbol=BTCUSDT", 200, body("spot-ticker-24hr"))


def spot_account() -> dict[str, Any]:
    return interaction("GET", f"{SPOT}/account", 200, body("spot-account"))


def spot_order(
    signal_id: str,
    *,
    side: str = "BUY",
    qty: str = "0.001",
    kind: str = "MARKET",
    price: str | None = None,
    status: int = 200,
    payload: Any = None,
) -> dict[str, Any]:
    form = {
        "symbol": "BTCUSDT",
        "side": side,
        "newClientOrderId": cid("BINANCE", signal_id),
        "newOrderRespType": "FULL",
        "type": kind,
        "quantity": qty,
    }
    if price is not None:
        form.update(price=price, timeInForce="GTC")
    if payload is None:
        payload = spot_fill(signal_id, side=side, qty=qty, kind=kind, price=price)
    return interaction("POST", f"{SPOT}/order", status, payload, form)


def spot_fill(signal_id: str, *, side: str, qty: str, kind: str, price: str | None) -> dict[str, Any]:
    """The recorded FULL response, echoing this order."""
    if kind == "MARKET":
        order = copy.deepcopy(body("spot-order-full"))
        fill_price = Decimal(body("spot-ticker-24hr")["lastPrice"])
        order["fills"] = [
            dict(
                order["fills"][0],
                price=d8(fill_price),
                qty=d8(qty),
                commission=d8(Decimal(qty) * Decimal("0.001")),
                commissionAsset="BTC",
            )
        ]
        order.update(
            executedQty=d8(qty), cummulativeQuoteQty=d8(Decimal(qty) * fill_price), status="FILLED", price=d8(0)
        )
    else:
        order = copy.deepcopy(body("spot-order-new"))
        order.update(executedQty=d8(0), cummulativeQuoteQty=d8(0), status="NEW", price=d8(price or 0), fills=[])
    order.update(symbol="BTCUSDT", clientOrderId=cid("BINANCE", signal_id), side=side, type=kind, origQty=d8(qty))
    return order


def spot_lookup(signal_id: str, found: bool) -> dict[str, Any]:
    uri = f"{SPOT}/order?symbol=BTCUSDT&origClientOrderId={cid('BINANCE', signal_id)}"
    if not found:
        return interaction("GET", uri, 400, error(-2013))
    order = copy.deepcopy(body("spot-order-query"))
    fill_price = Decimal(body("spot-ticker-24hr")["lastPrice"])
    order.update(
        symbol="BTCUSDT",
        clientOrderId=cid("BINANCE", signal_id),
        side="BUY",
        type="MARKET",
        origQty=d8("0.001"),
        executedQty=d8("0.001"),
        cummulativeQuoteQty=d8(Decimal("0.001") * fill_price),
        status="FILLED",
    )
    return interaction("GET", uri, 200, order)


def error(code: int, variant: str | None = None) -> dict[str, Any]:
    errors = body("errors")
    message = errors[str(code)] if variant is None else errors[f"{code} {variant}"]
    return {"code": code, "msg": message}


# -- USD-M futures (demo trading) --------------------------------------------------------------------


def fapi_markets() -> dict[str, Any]:
    return interaction("GET", f"{FAPI}/v1/exchangeInfo", 200, body("usdm-exchangeInfo"))


def fapi_account() -> dict[str, Any]:
    return interaction("GET", f"{FAPI}/v3/account", 200, body("usdm-account"))


def fapi_order(
    signal_id: str,
    *,
    symbol: str = "BTCUSDT",
    side: str = "BUY",
    qty: str,
    kind: str = "MARKET",
    price: str | None = None,
    status: int = 200,
    payload: Any = None,
    reduce_only: bool = False,
) -> dict[str, Any]:
    form = {
        "symbol": symbol,
        "side": side,
        "newClientOrderId": cid("BINANCE", signal_id),
        "newOrderRespType": "RESULT",
        "type": kind,
        "quantity": qty,
    }
    if reduce_only:
        form["reduceOnly"] = "true"
    if price is not None:
        form.update(price=price, timeInForce="GTC")
    if payload is None:
        payload = copy.deepcopy(body("usdm-order-filled" if kind == "MARKET" else "usdm-order-new"))
        payload.update(
            symbol=symbol,
            clientOrderId=cid("BINANCE", signal_id),
            side=side,
            type=kind,
            origQty=qty,
            reduceOnly=reduce_only,
        )
        if kind == "MARKET":
            average = Decimal("43500.00")
            payload.update(
                executedQty=qty,
                cumQty=qty,
                avgPrice=f"{average:.5f}",
                cumQuote=f"{Decimal(qty) * average:.5f}",
                status="FILLED",
            )
        else:
            payload.update(price=price, executedQty="0", cumQty="0", cumQuote="0.00000", status="NEW", avgPrice="0.00")
    return interaction("POST", f"{FAPI}/v1/order", status, payload, form)


def fapi_leverage(leverage: int, symbol: str = "BTCUSDT") -> dict[str, Any]:
    payload = dict(body("usdm-leverage"), leverage=leverage, symbol=symbol)
    return interaction("POST", f"{FAPI}/v1/leverage", 200, payload, {"symbol": symbol, "leverage": str(leverage)})


# -- the cassettes, one per test --------------------------------------------------------------


def cassettes() -> dict[str, list[dict[str, Any]]]:
    seed_errors = {
        "notional": ("too-small", "0.00001", error(-1013, "NOTIONAL")),
        "lot-size": ("lot-size", "200", error(-1013, "MARKET_LOT_SIZE")),
        "insufficient": ("no-funds", "5", error(-2010, "insufficient")),
        "invalid-symbol": ("delisted", "0.001", error(-1121)),
    }
    out: dict[str, list[dict[str, Any]]] = {
        "test_spot_market_orders_cost_one_round_trip_in_steady_state": [
            spot_markets(),
            spot_account(),  # markets and balance are read at startup
            spot_ticker(),
            spot_order("spot-1"),
            spot_order("spot-2"),
            spot_ticker(),
            spot_order("spot-3"),
        ],
        "test_spot_limit_order_rests_on_the_book": [
            spot_markets(),
            spot_account(),
            spot_order("spot-limit-1", kind="LIMIT", price="30000"),
        ],
        "test_spot_rate_limit_before_placement_is_503_and_places_nothing": [
            spot_markets(),
            spot_account(),
            spot_order("rate-limited", status=429, payload=error(-1003)),
        ],
        "test_spot_timeout_then_lookup_finds_the_order_and_sends_nothing_more": [
            spot_markets(),
            spot_account(),
            spot_order("lost-response", status=503, payload=error(-1007)),
            spot_lookup("lost-response", found=True),
        ],
        "test_spot_timeout_then_lookup_not_found_sends_it_once_more": [
            spot_markets(),
            spot_account(),
            spot_order("never-arrived", status=503, payload=error(-1007)),
            spot_lookup("never-arrived", found=False),
            spot_lookup("never-arrived", found=False),
            spot_order("never-arrived"),
        ],
        "test_spot_timeout_twice_answers_unknown_never_5xx": [
            spot_markets(),
            spot_account(),
            spot_order("still-unknown", status=503, payload=error(-1007)),
            spot_lookup("still-unknown", found=False),
            spot_lookup("still-unknown", found=False),
            spot_order("still-unknown", status=503, payload=error(-1007)),
            spot_lookup("still-unknown", found=False),
        ],
        "test_missing_keys_answer_422_and_the_rest_keeps_working": [spot_markets()],
        "test_failed_market_refresh_keeps_the_last_good_markets": [
            spot_markets(),
            spot_account(),
            interaction("GET", f"{SPOT}/exchangeInfo", 503, error(-1007)),
        ],
        "test_a_spot_sell_moves_the_cached_balance_by_exactly_the_fill": [
            spot_markets(),
            spot_account(),
            spot_order("spot-sell", side="SELL"),
        ],
        "test_futures_market_order_sets_leverage_once_then_one_round_trip": [
            fapi_markets(),
            fapi_account(),
            fapi_leverage(5),
            fapi_order("fut-1", qty="0.003"),
            fapi_order("fut-2", side="SELL", qty="0.003", reduce_only=True),
        ],
        "test_futures_limit_order": [
            fapi_markets(),
            fapi_account(),
            fapi_leverage(1, "ETHUSDT"),
            fapi_order("fut-limit", symbol="ETHUSDT", side="SELL", qty="0.01", kind="LIMIT", price="2600"),
        ],
        "test_futures_margin_insufficient_is_the_seed_words": [
            fapi_markets(),
            fapi_account(),
            fapi_leverage(1),
            fapi_order("no-margin", qty="50", status=400, payload=error(-2019)),
        ],
    }
    for test_id, (signal_id, qty, payload) in seed_errors.items():
        out[f"test_spot_exchange_reports_the_seed_errors[{test_id}]"] = [
            spot_markets(),
            spot_account(),
            spot_order(signal_id, qty=qty, status=400, payload=payload),
        ]
        # the same answers from a Binance-compatible server behind api_url (ccxt's per-host
        # error tables do not apply there)
        out[f"test_behind_api_url_the_seed_errors_keep_their_words[spot-{test_id}]"] = behind_api_url(
            out[f"test_spot_exchange_reports_the_seed_errors[{test_id}]"]
        )
    out["test_behind_api_url_the_seed_errors_keep_their_words[future-insufficient]"] = behind_api_url(
        out["test_futures_margin_insufficient_is_the_seed_words"]
    )
    # Production hosts: a broker built for them loads its markets there (no keys: nothing more).
    production = {
        "spot-testnet-false": ("https://api.binance.com/api/v3", "spot-exchangeInfo"),
        "future-testnet-false": ("https://fapi.binance.com/fapi/v1", "usdm-exchangeInfo"),
        "spot-api-url": ("https://api.binance.com/api/v3", "spot-exchangeInfo"),
        "future-api-url": ("https://fapi.binance.com/fapi/v1", "usdm-exchangeInfo"),
    }
    for test_id, (base, markets) in production.items():
        out[f"test_a_broker_on_production_hosts_is_live[{test_id}]"] = [
            interaction("GET", f"{base}/exchangeInfo", 200, body(markets))
        ]
    return out


COMPATIBLE = "http://binance-compatible.test:8080"


def behind_api_url(interactions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    moved = copy.deepcopy(interactions)
    for item in moved:
        uri = item["request"]["uri"]
        item["request"]["uri"] = COMPATIBLE + uri[uri.index("/", len("https://")) :]
    return moved


def main() -> None:
    if len(sys.argv) > 1:  # refresh the spot markets from a full snapshot
        snapshot = json.loads(Path(sys.argv[1]).read_text())
        snapshot["symbols"] = [s for s in snapshot["symbols"] if s["symbol"] in SPOT_SYMBOLS]
        (RESPONSES / "spot-exchangeInfo.json").write_text(json.dumps(snapshot, indent=1) + "\n")
    OUT.mkdir(parents=True, exist_ok=True)
    for name, interactions in cassettes().items():
        text = yaml.safe_dump({"interactions": interactions, "version": 1}, sort_keys=True, width=120)
        (OUT / f"{name}.yaml").write_text(text)
    print(f"wrote {len(cassettes())} cassettes to {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
