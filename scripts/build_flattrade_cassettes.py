"""Write the FlatTrade cassettes of tests/brokers from FlatTrade's documented answers.

Usage: python scripts/build_flattrade_cassettes.py

FlatTrade has no sandbox and no public recordings, so the bodies are the documented examples
in ``tests/brokers/responses/flattrade/`` (see its SOURCES.md: FlatTrade's PiConnect docs,
its pythonAPI README, and NorenOMS's Shoonya README for the shapes FlatTrade does not show).
A real answer echoes the request, so echoed fields (symbol, scrip token, quantity, price,
remarks, user id) are set to what each test sends and every other field is kept as documented.
Requests carry no token: ``jKey`` is scrubbed, as tests/brokers/conftest.py scrubs a recording.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
RESPONSES = ROOT / "tests" / "brokers" / "responses" / "flattrade"
OUT = ROOT / "tests" / "brokers" / "cassettes" / "test_flattrade"

API = "https://piconnect.flattrade.in/PiConnectAPI"
AUTH = "https://authapi.flattrade.in/trade"
USER = "FT012345"
SCRIP = {"exch": "NSE", "token": "694", "tsym": "CIPLA-EQ"}  # CIPLA's NSE scrip token
LAST, LOWER, UPPER = "1500.00", "1350.00", "1650.00"
ORDER_NO = "20052000000017"  # FlatTrade's documented PlaceOrder answer


def body(name: str) -> Any:
    return json.loads((RESPONSES / f"{name}.json").read_text())


def cid(signal_id: str) -> str:
    """The client order id ordergate derives from a FLATTRADE signal's id (stages/schema.py)."""
    return "og-" + hashlib.sha256(f"FLATTRADE\x00{signal_id}".encode()).hexdigest()[:24]


def call(route: str, jdata: dict[str, Any], payload: Any, status: int = 200) -> dict[str, Any]:
    reason = {200: "OK", 502: "Bad Gateway"}[status]
    return {
        "request": {
            "body": "jData=" + json.dumps(jdata, separators=(",", ":")) + "&jKey=<scrubbed>",
            "headers": {},
            "method": "POST",
            "uri": f"{API}/{route}",
        },
        "response": {
            "body": {"string": payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))},
            "headers": {"Content-Type": ["application/json"]},
            "status": {"code": status, "message": reason},
        },
    }


def search() -> dict[str, Any]:
    answer = body("searchscrip_ok")
    answer["values"] = [dict(answer["values"][0], **SCRIP)]  # the documented shape, CIPLA's entry
    return call("SearchScrip", {"uid": USER, "exch": "NSE", "stext": "CIPLA"}, answer)


def quote() -> dict[str, Any]:
    answer = body("getquotes_ok")
    answer.update(
        SCRIP,
        cname="CIPLA LTD",
        symname="CIPLA",
        isin="INE059A01026",
        lp=LAST,
        lc=LOWER,
        uc=UPPER,
        h="1512.00",
        l="1488.10",
        v="1254013",
        bp1="1499.95",
        sp1="1500.00",
        bq1="120",
        sq1="85",
    )
    return call("GetQuotes", {"uid": USER, "exch": "NSE", "token": "694"}, answer)


def limits() -> dict[str, Any]:
    return call("Limits", {"uid": USER, "actid": USER}, body("limits_ok"))


def place(
    signal_id: str, *, side: str = "B", prd: str = "C", price: str = "1507.5", answer: Any = None, status: int = 200
) -> dict[str, Any]:
    jdata = {
        "ordersource": "API",
        "uid": USER,
        "actid": USER,
        "trantype": side,
        "prd": prd,
        "exch": "NSE",
        "tsym": "CIPLA-EQ",
        "qty": "10",
        "dscqty": "0",
        "prctyp": "LMT",
        "prc": price,
        "ret": "DAY",
        "remarks": cid(signal_id),
    }
    return call("PlaceOrder", jdata, body("placeorder_ok") if answer is None else answer, status)


def order_row(template: dict[str, Any], signal_id: str, *, side: str, price: str, prd: str) -> dict[str, Any]:
    row = copy.deepcopy(template)
    row.update(
        norenordno=ORDER_NO,
        uid=USER,
        actid=USER,
        exch="NSE",
        tsym="CIPLA-EQ",
        token="694",  # noqa: S106 -- the scrip token, not a credential
        qty="10",
        trantype=side,
        prctyp="LMT",
        prc=price,
        prd=prd,
        remarks=cid(signal_id),
        ls="1",
        ti="0.05",
        pp="2",
    )
    return row


def history(signal_id: str, states: str, *, side: str = "B", price: str = "1507.5", prd: str = "C") -> dict[str, Any]:
    """SingleOrdHist, newest first: ``COMPLETE`` (the documented fill), ``OPEN``, or ``REJECT``."""
    documented = body("singleordhist_ok")  # COMPLETE, OPEN, PENDING, PENDING
    rows = []
    if states == "COMPLETE":
        rows = [order_row(r, signal_id, side=side, price=price, prd=prd) for r in documented]
        rows[0].update(fillshares="10", avgprc="1500.50")
    elif states == "OPEN":
        rows = [order_row(r, signal_id, side=side, price=price, prd=prd) for r in documented[1:]]
    elif states == "REJECT":
        rejected = next(r for r in body("orderbook_ok") if r["status"] == "REJECT")  # "Insufficient funds"
        rows = [order_row(rejected, signal_id, side=side, price=price, prd=prd)]
        rows += [order_row(r, signal_id, side=side, price=price, prd=prd) for r in documented[2:]]
    return call("SingleOrdHist", {"uid": USER, "norenordno": ORDER_NO}, rows)


def order_book(signal_id: str | None) -> dict[str, Any]:
    if signal_id is None:
        return call("OrderBook", {"uid": USER}, body("orderbook_no_data"))
    rows = copy.deepcopy(body("orderbook_ok"))
    rows[0] = order_row(rows[0], signal_id, side="B", price="1507.5", prd="C")
    rows[0].update(status="COMPLETE", fillshares="10", avgprc="1500.50")
    return call("OrderBook", {"uid": USER}, rows)


def token_exchange() -> dict[str, Any]:
    answer = dict(body("apitoken_ok"), client=USER)
    return {
        "request": {
            "body": json.dumps({"api_key": "<scrubbed>", "request_code": "<scrubbed>", "api_secret": "<scrubbed>"}),
            "headers": {"Content-Type": ["application/json"]},
            "method": "POST",
            "uri": f"{AUTH}/apitoken",
        },
        "response": {
            "body": {"string": json.dumps(answer, separators=(",", ":"))},
            "headers": {"Content-Type": ["application/json"]},
            "status": {"code": 200, "message": "OK"},
        },
    }


LOST = "<html>502 Bad Gateway</html>"  # a proxy's answer when PlaceOrder's reply is lost


def failed_look_ups() -> dict[str, list[dict[str, Any]]]:
    """PlaceOrder's answer is lost and the order-book look-up then fails: each must end unknown."""
    first = [search(), quote(), limits()]
    book = {"uid": USER}
    nameless = order_book("ft-nameless")
    rows = json.loads(nameless["response"]["body"]["string"])
    del rows[0]["norenordno"]  # our row, without the order number
    nameless["response"]["body"]["string"] = json.dumps(rows, separators=(",", ":"))
    name = "test_a_failed_look_up_after_a_lost_answer_is_unknown"

    def resend_trap(signal_id: str) -> list[dict[str, Any]]:
        """What a blind re-send would meet (an empty book, then a placed order): never played
        when the failed look-up ends unknown, and the test sees it if it is."""
        return [order_book(None), place(signal_id), history(signal_id, "COMPLETE")]

    return {
        f"{name}[session-expired]": [
            *first,
            place("ft-expired-look-up", answer=LOST, status=502),
            call("OrderBook", book, body("session_expired")),
            *resend_trap("ft-expired-look-up"),
        ],
        f"{name}[session-expired-second-look]": [
            *first,
            place("ft-expired-second", answer=LOST, status=502),
            order_book(None),
            call("OrderBook", book, body("session_expired_double_space")),
            *resend_trap("ft-expired-second"),
        ],
        f"{name}[unreachable]": [
            *first,
            place("ft-unreachable", answer=LOST, status=502),
            *[call("OrderBook", book, LOST, 502) for _ in range(3)],  # three read attempts
            *resend_trap("ft-unreachable"),
        ],
        f"{name}[server-timeout]": [
            *first,
            place("ft-server-timeout", answer=LOST, status=502),
            call("OrderBook", book, body("limits_not_ok")),  # the documented "Server Timeout" failure
            *resend_trap("ft-server-timeout"),
        ],
        f"{name}[not-an-order-book]": [
            *first,
            place("ft-garbage", answer=LOST, status=502),
            call("OrderBook", book, ["Server busy"]),
            *resend_trap("ft-garbage"),
        ],
        f"{name}[row-without-number]": [
            *first,
            place("ft-nameless", answer=LOST, status=502),
            nameless,
            *resend_trap("ft-nameless"),
        ],
        f"{name}[resent-and-lost-again]": [
            *first,
            place("ft-resent", answer=LOST, status=502),
            order_book(None),
            order_book(None),
            place("ft-resent", answer=LOST, status=502),
            call("OrderBook", book, body("session_expired")),
        ],
    }


def cassettes() -> dict[str, list[dict[str, Any]]]:
    first = [search(), quote(), limits()]
    return {
        "test_the_seed_market_order_becomes_a_protected_limit": [
            *first,
            place("ft-seed"),
            history("ft-seed", "OPEN"),
            history("ft-seed", "COMPLETE"),
        ],
        "test_a_limit_signal_keeps_its_price": [
            *first,
            place("ft-limit", price="1490"),
            history("ft-limit", "OPEN", price="1490"),
        ],
        "test_an_intraday_sell_is_protected_downwards": [
            *first,
            place("ft-mis", side="S", prd="I", price="1492.5"),
            history("ft-mis", "COMPLETE", side="S", price="1492.5", prd="I"),
        ],
        "test_a_rejected_order_answers_the_brokers_reason": [
            *first,
            place("ft-reject"),
            history("ft-reject", "REJECT"),
        ],
        "test_place_order_not_ok_answers_flattrades_words": [
            *first,
            place("ft-notok", answer=body("placeorder_not_ok")),
        ],
        "test_an_expired_session_answers_422_and_places_nothing": [
            call("SearchScrip", {"uid": USER, "exch": "NSE", "stext": "CIPLA"}, body("session_expired")),
        ],
        "test_a_lost_answer_is_found_in_the_order_book": [
            *first,
            place("ft-lost", answer="<html>502 Bad Gateway</html>", status=502),
            order_book("ft-lost"),
            history("ft-lost", "COMPLETE"),
        ],
        "test_a_lost_answer_absent_twice_is_sent_once_more": [
            *first,
            place("ft-absent", answer="<html>502 Bad Gateway</html>", status=502),
            order_book(None),
            order_book(None),
            place("ft-absent"),
            history("ft-absent", "COMPLETE"),
        ],
        "test_a_session_that_expires_after_placing_still_answers_the_order": [
            *first,
            place("ft-late-expiry"),
            call("SingleOrdHist", {"uid": USER, "norenordno": ORDER_NO}, body("session_expired")),
        ],
        "test_the_login_callback_stores_a_token_that_signals_use": [
            token_exchange(),
            *first,
            place("ft-login"),
            history("ft-login", "COMPLETE"),
        ],
        **failed_look_ups(),
        "test_find_order_never_reports_a_booked_order_absent": [
            order_book("ft-unlisted"),
            call("SearchScrip", {"uid": USER, "exch": "NSE", "stext": "CIPLA"}, body("searchscrip_no_data")),
        ],
    }


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    built = cassettes()
    for name, interactions in built.items():
        text = yaml.safe_dump({"interactions": interactions, "version": 1}, sort_keys=True, width=120)
        (OUT / f"{name}.yaml").write_text(text)
    print(f"wrote {len(built)} cassettes to {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
