"""A small Binance-compatible exchange on 127.0.0.1, for tests that need the wire itself.

It speaks the REST formats of Binance's documentation, for what ordergate's ccxt adapter uses:

* spot (binance/binance-spot-api-docs ``rest-api.md``): ``GET /api/v3/exchangeInfo``,
  ``GET /api/v3/account``, ``GET /api/v3/ticker/24hr|price|bookTicker`` (one symbol, or all
  when none is named), ``GET /api/v3/time``, ``POST /api/v3/order`` ("New order
  (TRADE)", parameters form-encoded in the body, FULL/RESULT/ACK answers) and ``GET /api/v3/order``
  ("Query order (USER_DATA)", by ``origClientOrderId``);
* USD-M futures (developers.binance.com, derivatives/usds-margined-futures "New Order (TRADE)",
  "Query Order (USER_DATA)", "Change Initial Leverage (TRADE)", "Account Information V2/V3"):
  ``GET /fapi/v1/exchangeInfo``, ``GET /fapi/v2|v3/account``, ``GET /fapi/v1|v2/ticker/...``,
  ``POST /fapi/v1/order``, ``GET /fapi/v1/order``, ``POST /fapi/v1/leverage``;
* errors as ``{"code": <int>, "msg": <str>}`` with Binance's words (``errors.md``): -2013
  "Order does not exist." for an unknown client order id, -1007 for a backend timeout.

Markets are the same exchangeInfo bodies the cassettes use (``responses/``, see SOURCES.md).
Order statuses are Binance's ``enums.md`` ones: NEW, PARTIALLY_FILLED, FILLED, CANCELED,
EXPIRED. Signatures are not checked: the fake records what arrives, minus signature,
timestamp and recvWindow, so a test can assert every request body an adapter sent.

What happens to the next order is scripted with :meth:`FakeBinance.plan`: execute it or not,
answer it or lose the answer (the connection is closed without a response, as a dropped proxy
or a timeout looks to the client), and with which status. Look-ups can be made to fail.
A MARKET order fills at the ticker price; a LIMIT order fills when marketable, else rests.
Positions and balances are not tracked: ``reduceOnly`` is recorded, not enforced, and the
account answers the balances it was built with.

Use it with the app by pointing ``BINANCE_API_URL`` at :attr:`FakeBinance.url` (see
tests/test_recovery.py), or with a broker built with ``api_url`` (tests/brokers/test_contract.py).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

RESPONSES = Path(__file__).parent / "responses"
UNSIGNED = ("signature", "timestamp", "recvWindow")
ERRORS = {
    -2013: "Order does not exist.",
    -1007: "Timeout waiting for response from backend server. Send status unknown; execution status unknown.",
    -1102: "Mandatory parameter was not sent, was empty/null, or malformed.",
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
    """What the exchange does with one order request.

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
    """The exchange's state and script; :func:`serve` runs it on a loopback port."""

    prices: dict[str, Decimal] = field(default_factory=lambda: {"BTCUSDT": Decimal(43500), "ETHUSDT": Decimal(2500)})
    spot_balances: dict[str, Decimal] = field(
        default_factory=lambda: {"BTC": Decimal(1), "ETH": Decimal(2), "USDT": Decimal(10000)}
    )
    futures_available: Decimal = Decimal(10000)
    requests: list[Seen] = field(default_factory=list)
    url: str = ""
    failing_lookups: bool = False  # look-ups lose their answer (the exchange is unreachable)
    _plans: deque[Plan] = field(default_factory=deque)
    _orders: dict[tuple[str, str], _Order] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(8_389_765_500))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- the script ---------------------------------------------------------------------------

    def plan(self, *plans: Plan) -> None:
        """Queue what happens to the next order requests, in order; unplanned ones are answered."""
        self._plans.extend(plans)

    def add_order(self, venue: str, client_order_id: str, symbol: str, status: str, **fields: Any) -> None:
        """An order the exchange already has (placed before ordergate restarted, say)."""
        quantity = Decimal(fields.pop("quantity", "0.001"))
        with self._lock:
            self._orders[(venue, client_order_id)] = _Order(
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
                at_ms=int(time.time() * 1000),
            )

    # -- what arrived -------------------------------------------------------------------------

    def order_requests(self) -> list[dict[str, str]]:
        """The parameters of every order request, in arrival order (lost answers included)."""
        return [seen.params for seen in self.requests if seen.is_order]

    def lookups(self) -> list[dict[str, str]]:
        return [seen.params for seen in self.requests if seen.is_lookup]

    # -- the exchange -------------------------------------------------------------------------

    def handle(self, method: str, path: str, params: dict[str, str]) -> tuple[int, Any] | None:
        """Answer one request: ``(status, body)``, or None to close the connection unanswered."""
        venue = "future" if path.startswith("/fapi/") else "spot"
        route = path.split("/", 3)[-1]  # "order", "account", "exchangeInfo", ...
        if method == "GET" and route == "exchangeInfo":
            name = "usdm-exchangeInfo" if venue == "future" else "spot-exchangeInfo"
            return 200, json.loads((RESPONSES / f"{name}.json").read_text())
        if method == "GET" and route == "account":
            return 200, self._account(venue)
        if method == "GET" and route in ("ticker/24hr", "ticker/price", "ticker/bookTicker"):
            return self._ticker(route, params)
        if method == "GET" and route in ("time", "ping"):
            return 200, {"serverTime": _now_ms()} if route == "time" else {}
        if method == "POST" and route == "leverage":
            return 200, {"leverage": int(params["leverage"]), "maxNotionalValue": "1000000", "symbol": params["symbol"]}
        if method == "POST" and route == "order":
            return self._new_order(venue, params)
        if method == "GET" and route == "order":
            if self.failing_lookups:
                return None
            with self._lock:
                order = self._orders.get((venue, params.get("origClientOrderId", "")))
            if order is None:
                return 400, _error(-2013)
            return 200, _render(order, "QUERY")
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
        balances = [{"asset": a, "free": f"{v:.8f}", "locked": "0.00000000"} for a, v in self.spot_balances.items()]
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
            return 400, {"code": -1121, "msg": "Invalid symbol."}
        return 200, one(symbol)

    def _new_order(self, venue: str, params: dict[str, str]) -> tuple[int, Any] | None:
        with self._lock:
            plan = self._plans.popleft() if self._plans else Plan()
        missing = [k for k in ("symbol", "side", "type", "quantity") if not params.get(k)]
        if missing:
            return 400, _error(-1102)
        if not plan.execute:
            return None if not plan.answer else (503, _error(-1007))
        order = self._execute(venue, params, plan)
        if not plan.answer:
            return None
        return 200, _render(order, params.get("newOrderRespType", "ACK" if venue == "spot" else "RESULT"))

    def _execute(self, venue: str, params: dict[str, str], plan: Plan) -> _Order:
        symbol, side, kind = params["symbol"], params["side"], params["type"]
        quantity = Decimal(params["quantity"])
        limit = Decimal(params.get("price", "0"))
        last = self.prices[symbol]
        marketable = kind == "MARKET" or (side == "BUY" and limit >= last) or (side == "SELL" and limit <= last)
        status = plan.status or ("FILLED" if marketable else "NEW")
        executed = {"FILLED": quantity, "PARTIALLY_FILLED": plan.filled or quantity / 2}.get(status, Decimal(0))
        if status == "EXPIRED" and plan.filled is not None:
            executed = plan.filled  # e.g. a MARKET order that ran out of liquidity part-way
        order = _Order(
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
        with self._lock:
            self._orders[(venue, order.client_order_id)] = order
        return order


def _now_ms() -> int:
    return int(time.time() * 1000)


def _error(code: int) -> dict[str, Any]:
    return {"code": code, "msg": ERRORS[code]}


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
        answer = exchange.handle(self.command, split.path, params)
        if answer is None:  # the answer is lost: close without a response
            self.close_connection = True
            return
        status, payload = answer
        data = json.dumps(payload, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        return  # the test's own assertions say what matters


class Serving:
    """A running fake exchange: ``with Serving(FakeBinance()) as exchange: exchange.url``."""

    def __init__(self, exchange: FakeBinance) -> None:
        self.exchange = exchange
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.exchange = exchange  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> FakeBinance:
        self.exchange.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread.start()
        return self.exchange

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
