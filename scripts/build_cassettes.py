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
CASSETTES = ROOT / "tests" / "brokers" / "cassettes"
OUT = CASSETTES / "test_ccxt_binance"

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


def spot_prices() -> dict[str, Any]:
    """Every symbol's last price in one request: what the broker reads at startup and in the background."""
    return interaction("GET", f"{SPOT}/ticker/price", 200, body("spot-ticker-price"))


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


def fapi_prices() -> dict[str, Any]:
    return interaction("GET", f"{FAPI}/v2/ticker/price", 200, body("usdm-ticker-price"))


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
            spot_account(),  # markets, all prices and the balance are read at startup
            spot_order("spot-1"),
            spot_order("spot-2"),
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
    out.update(lookup_cassettes())
    return {name: with_startup_prices(interactions) for name, interactions in out.items()}


def with_startup_prices(interactions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add, after the markets, the all-symbols price read a broker makes at startup.

    Every broker that loads markets reads all prices next (unless its ``ticker_ttl_s`` is
    under 1); a test that does not reach it leaves it unplayed. Same host as the markets, so
    a cassette behind ``api_url`` gets it there too.
    """
    for index, item in enumerate(interactions):
        uri = item["request"]["uri"]
        if item["request"]["method"] == "GET" and uri.endswith("/exchangeInfo"):
            if "/fapi/" in uri:  # USD-M lists its prices under /fapi/v2
                prices = fapi_prices()
                prices["request"]["uri"] = uri.replace("/v1/exchangeInfo", "/v2/ticker/price")
            else:
                prices = spot_prices()
                prices["request"]["uri"] = uri.replace("/exchangeInfo", "/ticker/price")
            return [*interactions[: index + 1], prices, *interactions[index + 1 :]]
    return interactions


def price_cassettes() -> dict[str, list[dict[str, Any]]]:
    """The cassettes of tests/brokers/test_ccxt_prices.py (price hints against exchange prices)."""
    out: dict[str, list[dict[str, Any]]] = {
        # startup only: each of these signals is refused before any request
        "test_testnet_a_low_hint_does_not_pass_the_max_notional": [spot_markets(), spot_account()],
        "test_testnet_flattrade_a_low_hint_does_not_pass_the_rupee_limit": [spot_markets(), spot_account()],
        "test_all_prices_are_read_in_the_background": [spot_markets(), spot_account()],
        "test_without_a_recent_price_a_signal_reads_its_ticker": [
            spot_markets(),
            spot_account(),
            spot_ticker(),
            spot_order("fresh-1"),
            spot_ticker(),
            spot_order("fresh-2"),
        ],
        "test_futures_good_hint_one_round_trip": [
            fapi_markets(),
            fapi_account(),
            fapi_leverage(5),
            fapi_order("fut-hint", qty="0.003"),
        ],
    }
    return {name: with_startup_prices(interactions) for name, interactions in out.items()}


COMPATIBLE = "http://binance-compatible.test:8080"


def behind_api_url(interactions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    moved = copy.deepcopy(interactions)
    for item in moved:
        uri = item["request"]["uri"]
        item["request"]["uri"] = COMPATIBLE + uri[uri.index("/", len("https://")) :]
    return moved


# -- look-ups after a lost answer (tests/brokers/test_ccxt_lookup.py) ------------------------------

# Binance's documented texts (errors.md) for codes errors.json does not hold
CLOCK_SKEW = {"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."}
BAD_KEY = {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}
UNKNOWN_ORDER = {"code": -2011, "msg": "Unknown order sent."}  # a cancel's "no such order"
DUPLICATE_FUTURES = {"code": -4116, "msg": "ClientOrderId is duplicated."}
BAD_GATEWAY = "<html><head><title>500 Internal Server Error</title></head></html>"  # a proxy's page


def raw_interaction(method: str, uri: str, status: int, text: str) -> dict[str, Any]:
    """An answer that is not Binance JSON (a proxy's error page, an empty object)."""
    reason = {200: "OK", 500: "Internal Server Error"}[status]
    item = interaction(method, uri, 200, {})
    item["response"]["body"]["string"] = text
    item["response"]["headers"] = {"Content-Type": ["text/html" if text.startswith("<") else "application/json"]}
    item["response"]["status"] = {"code": status, "message": reason}
    return item


def spot_lookup_answer(signal_id: str, status: int, payload: Any) -> dict[str, Any]:
    uri = f"{SPOT}/order?symbol=BTCUSDT&origClientOrderId={cid('BINANCE', signal_id)}"
    if isinstance(payload, str):
        return raw_interaction("GET", uri, status, payload)
    return interaction("GET", uri, status, payload)


def fapi_lookup(signal_id: str, status: int = 400, payload: Any = None) -> dict[str, Any]:
    """GET /fapi/v1/order by client order id; by default Binance's -2013 "Order does not exist."."""
    uri = f"{FAPI}/v1/order?symbol=BTCUSDT&origClientOrderId={cid('BINANCE', signal_id)}"
    if isinstance(payload, str):
        return raw_interaction("GET", uri, status, payload)
    return interaction("GET", uri, status, error(-2013) if payload is None else payload)


def lookup_cassettes() -> dict[str, list[dict[str, Any]]]:
    """A lost placement answer (-1007), then a look-up that fails: every one must end unknown.

    Each failing look-up is followed by a trap: what a blind re-send would meet (an order not
    found, then a placement that succeeds). Unknown never reaches it; a regression plays it and
    the test sees the second POST.
    """
    name = "test_a_failed_lookup_after_a_lost_answer_is_unknown"

    def spot(signal_id: str, *answers: dict[str, Any]) -> list[dict[str, Any]]:
        trap = [spot_lookup(signal_id, found=False), spot_lookup(signal_id, found=False), spot_order(signal_id)]
        lost = spot_order(signal_id, status=503, payload=error(-1007))
        return [spot_markets(), spot_account(), lost, *answers, *trap]

    def lookup(signal_id: str, status: int, payload: Any, times: int = 1) -> list[dict[str, Any]]:
        return [spot_lookup_answer(signal_id, status, payload) for _ in range(times)]

    another = copy.deepcopy(spot_lookup("lu-another", found=True))
    answer = json.loads(another["response"]["body"]["string"])
    answer["clientOrderId"] = "web_5e8a1c2d9b0f4e7a"  # a compatible server ignoring origClientOrderId
    another["response"]["body"]["string"] = json.dumps(answer, separators=(",", ":"))

    out = {
        f"{name}[http-500]": spot("lu-500", *lookup("lu-500", 500, BAD_GATEWAY, times=3)),
        f"{name}[clock-skew]": spot("lu-1021", *lookup("lu-1021", 400, CLOCK_SKEW, times=3)),
        f"{name}[rate-limit]": spot("lu-429", *lookup("lu-429", 429, error(-1003), times=3)),
        f"{name}[bad-key]": spot("lu-2015", *lookup("lu-2015", 400, BAD_KEY, times=3)),
        f"{name}[unknown-order-2011]": spot("lu-2011", *lookup("lu-2011", 400, UNKNOWN_ORDER)),
        f"{name}[empty-answer]": spot("lu-empty", *lookup("lu-empty", 200, "{}")),
        f"{name}[another-order]": spot("lu-another", another),
        f"{name}[future-clock-skew]": [
            fapi_markets(),
            fapi_account(),
            fapi_leverage(5),
            fapi_order("lu-fut", qty="0.003", status=503, payload=error(-1007)),
            *[fapi_lookup("lu-fut", 400, CLOCK_SKEW) for _ in range(3)],
            fapi_lookup("lu-fut"),
            fapi_lookup("lu-fut"),
            fapi_order("lu-fut", qty="0.003"),
        ],
        "test_a_resend_refused_as_duplicate_finds_the_order[spot]": [
            spot_markets(),
            spot_account(),
            spot_order("lu-dup", status=503, payload=error(-1007)),
            spot_lookup("lu-dup", found=False),
            spot_lookup("lu-dup", found=False),
            spot_order("lu-dup", status=400, payload=error(-2010, "duplicate")),
            spot_lookup("lu-dup", found=True),
        ],
    }
    # a genuine -2013 is "absent" behind api_url too, spot and USD-M: the order is sent once more
    absent = "test_behind_api_url_a_genuine_2013_is_absent"
    out[f"{absent}[spot]"] = behind_api_url(
        [
            spot_markets(),
            spot_account(),
            spot_order("lu-absent", status=503, payload=error(-1007)),
            spot_lookup("lu-absent", found=False),
            spot_lookup("lu-absent", found=False),
            spot_order("lu-absent"),
        ]
    )
    out[f"{absent}[future]"] = behind_api_url(
        [
            fapi_markets(),
            fapi_account(),
            fapi_leverage(5),
            fapi_order("lu-absent", qty="0.003", status=503, payload=error(-1007)),
            fapi_lookup("lu-absent"),
            fapi_lookup("lu-absent"),
            fapi_order("lu-absent", qty="0.003"),
        ]
    )
    out["test_a_resend_refused_as_duplicate_finds_the_order[future]"] = [
        fapi_markets(),
        fapi_account(),
        fapi_leverage(5),
        fapi_order("lu-dup", qty="0.003", status=503, payload=error(-1007)),
        fapi_lookup("lu-dup"),
        fapi_lookup("lu-dup"),
        fapi_order("lu-dup", qty="0.003", status=400, payload=DUPLICATE_FUTURES),
        fapi_lookup("lu-dup", 200, fapi_found("lu-dup")),
    ]
    return out


def fapi_found(signal_id: str) -> dict[str, Any]:
    """GET /fapi/v1/order for a filled order: the documented order body, echoing this one."""
    found = copy.deepcopy(body("usdm-order-filled"))
    average = Decimal("43500.00")
    found.update(
        symbol="BTCUSDT",
        clientOrderId=cid("BINANCE", signal_id),
        side="BUY",
        type="MARKET",
        origQty="0.003",
        executedQty="0.003",
        cumQuote=f"{Decimal('0.003') * average:.5f}",
        avgPrice=f"{average:.5f}",
        status="FILLED",
    )
    return found


def main() -> None:
    if len(sys.argv) > 1:  # refresh the spot markets from a full snapshot
        snapshot = json.loads(Path(sys.argv[1]).read_text())
        snapshot["symbols"] = [s for s in snapshot["symbols"] if s["symbol"] in SPOT_SYMBOLS]
        (RESPONSES / "spot-exchangeInfo.json").write_text(json.dumps(snapshot, indent=1) + "\n")
    for out, built in ((OUT, cassettes()), (CASSETTES / "test_ccxt_prices", price_cassettes())):
        out.mkdir(parents=True, exist_ok=True)
        for name, interactions in built.items():
            text = yaml.safe_dump({"interactions": interactions, "version": 1}, sort_keys=True, width=120)
            (out / f"{name}.yaml").write_text(text)
        print(f"wrote {len(built)} cassettes to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
