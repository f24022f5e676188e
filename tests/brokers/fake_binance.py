"""A small Binance-compatible exchange on 127.0.0.1, for tests that need the wire itself.

Built from Binance's documentation, not recorded: no answer it gives was ever sent by Binance.
It speaks the REST formats of the docs for what ordergate's ccxt adapter uses:

* spot (binance/binance-spot-api-docs ``rest-api.md``): ``GET /api/v3/exchangeInfo``,
  ``GET /api/v3/account``, ``GET /api/v3/ticker/24hr|price|bookTicker`` (one symbol, or all
  when none is named), ``GET /api/v3/time``, ``POST /api/v3/order`` ("New order
  (TRADE)", parameters form-encoded in the body, FULL/RESULT/ACK answers) and ``GET /api/v3/order``
  ("Query order (USER_DATA)", by ``origClientOrderId``);
* USD-M futures (developers.binance.com, derivatives/usds-margined-futures "New Order (TRADE)",
  "Query Order (USER_DATA)", "Change Initial Leverage (TRADE)", "Account Information V2/V3"):
  ``GET /fapi/v1/exchangeInfo``, ``GET /fapi/v2|v3/account``, ``GET /fapi/v1|v2/ticker/...``,
  ``POST /fapi/v1/order``, ``GET /fapi/v1/order``, ``POST /fapi/v1/leverage``;
* errors as ``{"code": <int>, "msg": <str>}`` with Binance's words (spot ``errors.md`` @ 021246e9,
  futures ``error_codes.md``; ``responses/errors.json``): -2013 "Order does not exist." for an
  unknown client order id, -2010 "Duplicate order sent." (futures -4116) for a client order id in
  use by an open order ("A unique id among open orders", "New order (TRADE)"), -1102 for a
  missing parameter, -1121 for an unknown symbol, -2010 "Account has insufficient balance for
  requested action." for a spot order its free balance cannot pay.

Markets are the same exchangeInfo bodies the cassettes use (``responses/``, see SOURCES.md).
Order statuses are Binance's ``enums.md`` ones: NEW, PARTIALLY_FILLED, FILLED, CANCELED,
EXPIRED. Signatures are not checked: the fake records what arrives, minus signature,
timestamp and recvWindow, so a test can assert every request body an adapter sent.

The book keeps every order that reached the matching engine (:meth:`FakeBinance.orders_placed`,
a second order under a client order id included), so "placed exactly once" is counted where
the orders are. A MARKET order fills at the ticker price, or, with ``liquidity=False``, EXPIREs
unfilled (``enums.md``: "canceled according to the order type's rules ... MARKET orders");
a LIMIT order fills when marketable, else rests. Spot balances move with fills and a resting
order locks what it may spend (``free``/``locked`` of "Account information"); positions are not
tracked: ``reduceOnly`` is recorded, not enforced, and the futures account answers the balance it
was built with.

Two scripts say what goes wrong:

* :meth:`FakeBinance.fail_next` / :meth:`~FakeBinance.fail_until_healed` answer the requests to
  one endpoint with a fault, as the exchange and the proxies in front of it do under load
  (``rest-api.md`` "HTTP Return Codes": 429 rate limit, 418 IP ban, 5XX "the execution status is
  UNKNOWN and could have been a success"). See :data:`FAULTS`.
* :meth:`FakeBinance.plan` says what happens to the next order: execute it or not, answer it or
  lose the answer (the connection is closed without a response, as a dropped proxy or a timeout
  looks to the client), and with which status.

Two knobs say how slow it is: ``latency_s`` delays every answer (a round trip from a cloud
region is about 250 ms), and :meth:`FakeBinance.hang_next_order` holds the next order request
for longer, as a matching engine under load does; the other requests are answered meanwhile.

Use it with the app by pointing ``BINANCE_API_URL`` at :attr:`FakeBinance.url` (see
tests/test_recovery.py, tests/test_retry.py), or with a broker built with ``api_url``
(tests/brokers/test_contract.py).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from decimal import Decimal
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

RESPONSES = Path(__file__).parent / "responses"
UNSIGNED = ("signature", "timestamp", "recvWindow")
_DOCUMENTED: dict[str, str] = json.loads((RESPONSES / "errors.json").read_text())
ERRORS = {
    -1003: _DOCUMENTED["-1003"],
    -1007: _DOCUMENTED["-1007"],
    -1121: _DOCUMENTED["-1121"],
    -2010: _DOCUMENTED["-2010 duplicate"],
    -2013: _DOCUMENTED["-2013"],
    # errors.md's words that the cassettes' errors.json does not carry
    -1021: "Timestamp for this request is outside of the recvWindow.",
    -1102: "Mandatory parameter '%s' was not sent, was empty/null, or malformed.",
    -4116: "ClientOrderId is duplicated.",  # futures error_codes.md
}
INSUFFICIENT = _DOCUMENTED["-2010 insufficient"]
BANNED = (
    "Way too much request weight used; IP banned until %s. Please use WebSocket Streams for live updates to avoid bans."
)
OPEN = ("NEW", "PARTIALLY_FILLED")


@dataclass(frozen=True)
class Fault:
    """A failed answer, and what became of the order it answers.

    ``status``: the HTTP status; None closes the connection with no answer at all.
    ``code``/``msg``: Binance's error body; no code is a proxy's HTML page instead.
    ``executes``: an order so answered was executed anyway (``now``), never, or ``later``
    (when the test calls :meth:`FakeBinance.execute_late`).
    """

    status: int | None
    code: int | None = None
    msg: str = ""
    executes: Literal["never", "now", "later"] = "never"

    def answer(self) -> tuple[int, Any] | None:
        if self.status is None:
            return None
        if self.code is None:
            title = f"{self.status} {HTTPStatus(self.status).phrase}"
            return self.status, f"<html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>"
        return self.status, {"code": self.code, "msg": self.msg}


FAULTS = {
    # refused before the matching engine: nothing executes
    "rate_limit": Fault(429, -1003, ERRORS[-1003]),
    "banned": Fault(418, -1003, BANNED % 1798761600000),
    "clock_skew": Fault(400, -1021, ERRORS[-1021]),
    "down": Fault(503),  # a proxy's page: the exchange behind it is unreachable
    "dropped": Fault(None),  # the connection closes unanswered
    # the answer says nothing, but the order is in the book
    "lost": Fault(504, executes="now"),  # a gateway timeout after the order executed
    "unknown": Fault(503, -1007, ERRORS[-1007], executes="now"),
    # the answer is lost and the order executes later, if the test says so
    "late": Fault(504, executes="later"),
}


@dataclass(frozen=True)
class Seen:
    """One request as the exchange received it: its query and form fields, unsigned."""

    method: str
    path: str
    params: dict[str, str]

    @property
    def is_order(self) -> bool:
        return self.method == "POST" and self.path in ("/api/v3/order", "/fapi/v1/order")

    @property
    def is_lookup(self) -> bool:
        return self.method == "GET" and self.path in ("/api/v3/order", "/fapi/v1/order")


@dataclass(frozen=True)
class Plan:
    """What the exchange does with one order request that reaches the matching engine.

    ``execute``: accept the order (False: it never reached the matching engine; answered, that is
    Binance's 503 -1007 "execution status unknown").
    ``answer``: send the answer (False: close the connection without one, after executing or not).
    ``status``: force the order's status (EXPIRED, CANCELED, PARTIALLY_FILLED, ...); None lets
    the book decide (MARKET fills, LIMIT fills when marketable, else rests).
    ``filled``: the executed quantity for a forced PARTIALLY_FILLED.
    """

    execute: bool = True
    answer: bool = True
    status: str | None = None
    filled: Decimal | None = None

    def fault(self) -> Fault | None:
        """The plan's failed answer, in the words of :data:`FAULTS`."""
        if not self.answer:
            return replace(FAULTS["dropped"], executes="now" if self.execute else "never")
        return None if self.execute else replace(FAULTS["unknown"], executes="never")


@dataclass
class _Order:
    venue: str  # "spot" or "future"
    order_id: int
    client_order_id: str
    symbol: str
    side: str
    type: str
    quantity: Decimal
    price: Decimal
    time_in_force: str
    reduce_only: bool
    status: str
    executed: Decimal
    average: Decimal
    at_ms: int


@dataclass
class FakeBinance:
    """The exchange's state and script; :class:`Serving` runs it on a loopback port."""

    prices: dict[str, Decimal] = field(default_factory=lambda: {"BTCUSDT": Decimal(43500), "ETHUSDT": Decimal(2500)})
    spot_balances: dict[str, Decimal] = field(
        default_factory=lambda: {"BTC": Decimal(1), "ETH": Decimal(2), "USDT": Decimal(10000)}
    )
    futures_available: Decimal = Decimal(10000)
    liquidity: bool = True  # False: MARKET orders find no counterparty and EXPIRE unfilled
    clock_ahead_ms: int = 0  # the exchange's clock is this far ahead of ours: signed requests may fail -1021
    latency_s: float = 0.0  # every answer waits this long (each request on its own thread)
    requests: list[Seen] = field(default_factory=list)
    url: str = ""
    _plans: deque[Plan] = field(default_factory=deque)
    _faults: dict[str, deque[str]] = field(default_factory=dict)
    _outages: dict[str, str] = field(default_factory=dict)
    _orders: dict[tuple[str, str], _Order] = field(default_factory=dict)  # the latest by client order id
    _book: list[_Order] = field(default_factory=list)  # every order that reached the matching engine
    _late: list[_Order] = field(default_factory=list)
    _locked: dict[str, Decimal] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(8_389_765_500))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _hangs: deque[tuple[float, threading.Event]] = field(default_factory=deque)
    _closing: threading.Event = field(default_factory=threading.Event)  # ends every wait when the server stops

    # -- the script ---------------------------------------------------------------------------

    def plan(self, *plans: Plan) -> None:
        """Queue what happens to the next orders, in order; unplanned ones are answered."""
        with self._lock:
            self._plans.extend(plans)

    def fail_next(self, endpoint: str, *faults: str) -> None:
        """Answer the next requests to ``endpoint`` with these :data:`FAULTS`, one each, in order.

        ``endpoint`` is the path after the version, on spot and futures alike (``exchangeInfo``,
        ``account``, ``ticker/price``, ``leverage``, ``order`` for placements), or ``lookup`` for
        ``GET .../order``. A fault on an order decides whether it executes (see :class:`Fault`)."""
        unknown = [f for f in faults if f not in FAULTS]
        assert not unknown, f"no such fault: {unknown}"
        with self._lock:
            self._faults.setdefault(endpoint, deque()).extend(faults)

    def hang_next_order(self, seconds: float) -> threading.Event:
        """Hold the next order request ``seconds`` (besides ``latency_s``) before it reaches the
        matching engine and is answered; setting the event returned ends the hang early."""
        done = threading.Event()
        with self._lock:
            self._hangs.append((seconds, done))
        return done

    def pause(self, method: str, path: str) -> None:
        """Wait as long as this request takes at the exchange (returns at once when it stops)."""
        if self.latency_s > 0:
            self._closing.wait(self.latency_s)
        if not Seen(method, path, {}).is_order:
            return
        with self._lock:
            hang = self._hangs.popleft() if self._hangs else None
        if hang is not None:
            seconds, done = hang
            deadline = time.monotonic() + seconds
            while not (done.is_set() or self._closing.is_set()) and time.monotonic() < deadline:
                done.wait(min(0.05, max(0.0, deadline - time.monotonic())))

    def fail_until_healed(self, endpoint: str, fault: str) -> None:
        """Answer every request to ``endpoint`` with ``fault`` (after those queued) until :meth:`heal`."""
        assert fault in FAULTS, f"no such fault: {fault}"
        with self._lock:
            self._outages[endpoint] = fault

    def heal(self, endpoint: str) -> None:
        with self._lock:
            self._outages.pop(endpoint, None)

    def execute_late(self) -> None:
        """The orders whose answer was lost as ``late`` reach the matching engine now."""
        with self._lock:
            late, self._late = self._late, []
            for order in late:
                self._enter(order)

    def add_order(self, venue: str, client_order_id: str, symbol: str, status: str, **fields: Any) -> None:
        """An order the exchange already has (placed before ordergate restarted, say)."""
        quantity = Decimal(fields.pop("quantity", "0.001"))
        with self._lock:
            order = _Order(
                venue=venue,
                order_id=next(self._ids),
                client_order_id=client_order_id,
                symbol=symbol,
                side=fields.pop("side", "BUY"),
                type=fields.pop("type", "MARKET"),
                quantity=quantity,
                price=Decimal(fields.pop("price", "0")),
                time_in_force=fields.pop("time_in_force", "GTC"),
                reduce_only=False,
                status=status,
                executed=Decimal(fields.pop("executed", "0")),
                average=Decimal(fields.pop("average", "0")),
                at_ms=_now_ms(),
            )
            self._orders[(venue, client_order_id)] = order
            self._book.append(order)  # its fills are already in the balances it was built with

    # -- what arrived -------------------------------------------------------------------------

    def order_requests(self) -> list[dict[str, str]]:
        """The parameters of every order request, in arrival order (refused and lost ones included)."""
        return [seen.params for seen in self.requests if seen.is_order]

    def lookups(self) -> list[dict[str, str]]:
        return [seen.params for seen in self.requests if seen.is_lookup]

    def orders_placed(self) -> list[dict[str, Any]]:
        """Every order in the book, as ``GET .../order`` shows it: those that reached the matching
        engine, whatever their answer said; not those refused before it or yet to execute late."""
        with self._lock:
            return [_render(order, "QUERY") for order in self._book]

    # -- the exchange -------------------------------------------------------------------------

    def outside_recv_window(self, fields: dict[str, str]) -> bool:
        """Binance's timing rule for a signed request (rest-api.md "Timing security"): refused
        with -1021 when its ``timestamp`` is over 1 s ahead of the server's clock or older than
        ``recvWindow`` (default 5000 ms)."""
        if "signature" not in fields or "timestamp" not in fields:
            return False
        server = _now_ms() + self.clock_ahead_ms
        sent = int(fields["timestamp"])
        return sent > server + 1000 or server - sent > int(fields.get("recvWindow") or 5000)

    def handle(self, method: str, path: str, params: dict[str, str]) -> tuple[int, Any] | None:
        """Answer one request: ``(status, body)``, or None to close the connection unanswered.
        A ``str`` body is a proxy's HTML page, not Binance's JSON."""
        venue = "future" if path.startswith("/fapi/") else "spot"
        route = path.split("/", 3)[-1]  # "order", "account", "exchangeInfo", ...
        endpoint = "lookup" if (method, route) == ("GET", "order") else route
        with self._lock:
            queued = self._faults.get(endpoint)
            name = queued.popleft() if queued else self._outages.get(endpoint)
        fault = FAULTS[name] if name else None
        if method == "POST" and route == "order":
            return self._new_order(venue, params, fault)
        if fault is not None:
            return fault.answer()
        if method == "GET" and route == "exchangeInfo":
            name = "usdm-exchangeInfo" if venue == "future" else "spot-exchangeInfo"
            return 200, json.loads((RESPONSES / f"{name}.json").read_text())
        if method == "GET" and route == "account":
            return 200, self._account(venue)
        if method == "GET" and route in ("ticker/24hr", "ticker/price", "ticker/bookTicker"):
            return self._ticker(route, params)
        if method == "GET" and route in ("time", "ping"):
            return 200, {"serverTime": _now_ms() + self.clock_ahead_ms} if route == "time" else {}
        if method == "POST" and route == "leverage":
            return 200, {"leverage": int(params["leverage"]), "maxNotionalValue": "1000000", "symbol": params["symbol"]}
        if method == "GET" and route == "order":
            with self._lock:
                order = self._orders.get((venue, params.get("origClientOrderId", "")))
                found = None if order is None else _render(order, "QUERY")
            return (400, _error(-2013)) if found is None else (200, found)
        return 404, {"code": -1000, "msg": f"fake Binance has no {method} {path}"}

    def _account(self, venue: str) -> dict[str, Any]:
        if venue == "future":
            available = str(self.futures_available)
            return {
                "totalWalletBalance": available,
                "availableBalance": available,
                "maxWithdrawAmount": available,
                "assets": [
                    {
                        "asset": "USDT",
                        "walletBalance": available,
                        "availableBalance": available,
                        "marginBalance": available,
                    }
                ],
                "positions": [],
            }
        with self._lock:
            balances = [
                {"asset": a, "free": f"{v:.8f}", "locked": f"{self._locked.get(a, Decimal(0)):.8f}"}
                for a, v in self.spot_balances.items()
            ]
        return {"makerCommission": 10, "canTrade": True, "accountType": "SPOT", "balances": balances}

    def _ticker(self, route: str, params: dict[str, str]) -> tuple[int, Any]:
        """One symbol's ticker, or every symbol's when none is named (as Binance answers)."""

        def one(symbol: str) -> dict[str, Any]:
            last = f"{self.prices[symbol]:.8f}"
            if route == "ticker/price":
                return {"symbol": symbol, "price": last, "time": _now_ms()}
            if route == "ticker/bookTicker":
                return {"symbol": symbol, "bidPrice": last, "bidQty": "1", "askPrice": last, "askQty": "1"}
            return {"symbol": symbol, "lastPrice": last, "bidPrice": last, "askPrice": last, "closeTime": _now_ms()}

        symbol = params.get("symbol")
        if symbol is None:
            return 200, [one(s) for s in self.prices]
        if symbol not in self.prices:
            return 400, _error(-1121)
        return 200, one(symbol)

    def _new_order(self, venue: str, params: dict[str, str], fault: Fault | None) -> tuple[int, Any] | None:
        if fault is not None and fault.executes == "never":
            return fault.answer()  # refused before the matching engine: the plan waits for the next order
        with self._lock:
            plan = self._plans.popleft() if self._plans else Plan()
        missing = [k for k in ("symbol", "side", "type", "quantity") if not params.get(k)]
        if missing:
            return 400, _error(-1102, missing[0])
        fault = fault or plan.fault()  # a scripted fault overrides the plan's execute/answer
        if fault is not None and fault.executes == "never":
            return fault.answer()
        order = self._order(venue, params, plan)
        with self._lock:
            refused = self._refusal(order)
            if refused is None and fault is not None and fault.executes == "later":
                self._late.append(order)
            elif refused is None:
                self._enter(order)
        if refused is not None:
            return 400, refused
        if fault is not None:
            return fault.answer()
        return 200, _render(order, params.get("newOrderRespType", "ACK" if venue == "spot" else "RESULT"))

    def _order(self, venue: str, params: dict[str, str], plan: Plan) -> _Order:
        symbol, side, kind = params["symbol"], params["side"], params["type"]
        quantity = Decimal(params["quantity"])
        limit = Decimal(params.get("price", "0"))
        last = self.prices[symbol]
        marketable = kind == "MARKET" or (side == "BUY" and limit >= last) or (side == "SELL" and limit <= last)
        dry = kind == "MARKET" and not self.liquidity
        status = plan.status or ("EXPIRED" if dry else "FILLED" if marketable else "NEW")
        executed = {"FILLED": quantity, "PARTIALLY_FILLED": plan.filled or quantity / 2}.get(status, Decimal(0))
        if status == "EXPIRED" and plan.filled is not None:
            executed = plan.filled  # e.g. a MARKET order that ran out of liquidity part-way
        return _Order(
            venue=venue,
            order_id=next(self._ids),
            client_order_id=params.get("newClientOrderId") or f"fake-{next(self._ids)}",
            symbol=symbol,
            side=side,
            type=kind,
            quantity=quantity,
            price=limit,
            time_in_force=params.get("timeInForce", "GTC"),
            reduce_only=params.get("reduceOnly") == "true",
            status=status,
            executed=executed,
            average=last if executed > 0 else Decimal(0),
            at_ms=_now_ms(),
        )

    def _refusal(self, order: _Order) -> dict[str, Any] | None:
        """The matching engine's -2010/-4116 for an order it cannot take (called under the lock)."""
        same = self._orders.get((order.venue, order.client_order_id))
        if same is not None and same.status in OPEN:
            return _error(-4116 if order.venue == "future" else -2010)
        if order.venue == "spot":
            asset, need = self._spends(order, order.quantity)
            if need > self.spot_balances.get(asset, Decimal(0)):
                return {"code": -2010, "msg": INSUFFICIENT}
        return None

    def _enter(self, order: _Order) -> None:
        """Book the order; on spot, its fills move the balances and what rests is locked (under the lock)."""
        self._orders[(order.venue, order.client_order_id)] = order
        self._book.append(order)
        if order.venue != "spot":
            return
        base, quote = _ASSETS[order.symbol]
        sign = 1 if order.side == "BUY" else -1
        self._move(base, sign * order.executed)
        self._move(quote, -sign * order.executed * order.average)
        if order.status in OPEN:
            asset, held = self._spends(order, order.quantity - order.executed)
            self._move(asset, -held)
            self._locked[asset] = self._locked.get(asset, Decimal(0)) + held

    def _spends(self, order: _Order, quantity: Decimal) -> tuple[str, Decimal]:
        """The asset and amount ``quantity`` of a spot order pays with (a BUY at its limit or the last price)."""
        base, quote = _ASSETS[order.symbol]
        if order.side == "SELL":
            return base, quantity
        return quote, quantity * (order.price or self.prices[order.symbol])

    def _move(self, asset: str, amount: Decimal) -> None:
        self.spot_balances[asset] = self.spot_balances.get(asset, Decimal(0)) + amount


_ASSETS = {
    s["symbol"]: (s["baseAsset"], s["quoteAsset"])
    for s in json.loads((RESPONSES / "spot-exchangeInfo.json").read_text())["symbols"]
}


def _now_ms() -> int:
    return int(time.time() * 1000)


def _error(code: int, *fill: str) -> dict[str, Any]:
    return {"code": code, "msg": ERRORS[code] % fill if fill else ERRORS[code]}


def _render(order: _Order, kind: str) -> dict[str, Any]:
    """An order as Binance answers it: spot prints amounts with 8 decimals, futures plainly."""
    if order.venue == "future":
        body: dict[str, Any] = {
            "orderId": order.order_id,
            "symbol": order.symbol,
            "status": order.status,
            "clientOrderId": order.client_order_id,
            "price": format(order.price, "f"),
            "avgPrice": format(order.average, "f"),
            "origQty": format(order.quantity, "f"),
            "executedQty": format(order.executed, "f"),
            "cumQty": format(order.executed, "f"),
            "cumQuote": format(order.executed * order.average, "f"),
            "timeInForce": order.time_in_force,
            "type": order.type,
            "reduceOnly": order.reduce_only,
            "closePosition": False,
            "side": order.side,
            "positionSide": "BOTH",
            "stopPrice": "0",
            "workingType": "CONTRACT_PRICE",
            "priceProtect": False,
            "origType": order.type,
            "priceMatch": "NONE",
            "selfTradePreventionMode": "EXPIRE_TAKER",
            "goodTillDate": 0,
            "updateTime": order.at_ms,
        }
        if kind == "QUERY":
            body["time"] = order.at_ms
        return body
    body = {
        "symbol": order.symbol,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": order.client_order_id,
    }
    if kind == "ACK":
        return {**body, "transactTime": order.at_ms}
    body.update(
        price=f"{order.price:.8f}",
        origQty=f"{order.quantity:.8f}",
        executedQty=f"{order.executed:.8f}",
        cummulativeQuoteQty=f"{order.executed * order.average:.8f}",
        status=order.status,
        timeInForce=order.time_in_force,
        type=order.type,
        side=order.side,
        workingTime=order.at_ms,
        selfTradePreventionMode="EXPIRE_MAKER",
    )
    if kind == "QUERY":
        return {
            **body,
            "stopPrice": "0.00000000",
            "icebergQty": "0.00000000",
            "time": order.at_ms,
            "updateTime": order.at_ms,
            "isWorking": True,
            "origQuoteOrderQty": "0.00000000",
        }
    body["transactTime"] = order.at_ms
    if kind == "FULL":
        body["fills"] = (
            [
                {
                    "price": f"{order.average:.8f}",
                    "qty": f"{order.executed:.8f}",
                    "commission": "0.00000000",
                    "commissionAsset": "BNB",
                    "tradeId": order.order_id,
                }
            ]
            if order.executed > 0
            else []
        )
    return body


class _Handler(BaseHTTPRequestHandler):
    exchange: FakeBinance  # set per server

    def _serve(self) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        fields = dict(parse_qsl(split.query, keep_blank_values=True))
        fields.update(parse_qsl(body, keep_blank_values=True))
        params = {k: v for k, v in fields.items() if k not in UNSIGNED}
        exchange = self.server.exchange  # type: ignore[attr-defined]
        with exchange._lock:
            exchange.requests.append(Seen(self.command, split.path, params))
        exchange.pause(self.command, split.path)
        skewed = exchange.outside_recv_window(fields)
        answer = (400, _error(-1021)) if skewed else exchange.handle(self.command, split.path, params)
        if answer is None:  # the answer is lost: close without a response
            self.close_connection = True
            return
        status, payload = answer
        html = isinstance(payload, str)  # a proxy's page, not Binance's JSON
        data = payload.encode() if html else json.dumps(payload, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html" if html else "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        return  # the test's own assertions say what matters


class _Server(ThreadingHTTPServer):
    # a burst of connections at once: the default backlog (5) drops the rest's SYNs, which the
    # client re-sends a second later; a real exchange's edge accepts them
    request_queue_size = 256


class Serving:
    """A running fake exchange: ``with Serving(FakeBinance()) as exchange: exchange.url``."""

    def __init__(self, exchange: FakeBinance) -> None:
        self.exchange = exchange
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.exchange = exchange  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> FakeBinance:
        self.exchange.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread.start()
        return self.exchange

    def __exit__(self, *exc: object) -> None:
        self.exchange._closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def loopback_testnet(exchange: FakeBinance, journal_file: Path, secret: str) -> Any:
    """The shipped testnet settings with every Binance broker pointed at ``exchange`` and a
    SQLite journal at ``journal_file``: what a user with testnet keys runs, on loopback."""
    from ordergate.config import load_settings

    environ = {
        "WEBHOOK_SECRET": secret,
        "BINANCE_API_KEY": "loopback-key-not-a-secret",
        "BINANCE_API_SECRET": "loopback-secret-not-a-secret",
        "BINANCE_API_URL": exchange.url,
        "BINANCE_MARKET_TYPE": "spot",
        "ORDERGATE_DB": str(journal_file),
    }
    return load_settings("testnet", Path(__file__).resolve().parents[2] / "config", environ=environ)
