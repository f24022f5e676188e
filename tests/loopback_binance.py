"""A Binance spot exchange on loopback, for end-to-end tests of what crosses the wire.

It speaks the parts of Binance's spot REST API that ordergate's ccxt broker uses, in Binance's
own formats (https://developers.binance.com/docs/binance-spot-api-docs/rest-api; bodies from
``tests/brokers/responses/``, which SOURCES.md traces to Binance's docs and ccxt's fixtures):
``exchangeInfo``, ``account``, ``ticker/24hr``, ``ticker/price``, ``POST /order`` and
``GET /order`` by ``origClientOrderId`` (-2013 "Order does not exist." when absent).

It is built from documentation, not recorded. What it adds over a cassette is state and
failure: it keeps an order book by client order id (so a test can count how many orders
really exist), records every request body, and answers the next requests of a kind with a
scripted fault, as the real exchange does under load: ``rate_limit`` (HTTP 429, -1003),
``banned`` (HTTP 418, -1003), ``clock_skew`` (HTTP 400, -1021), ``down`` (HTTP 503 without a
Binance body), ``lost`` (the order executes, the answer is a 504 gateway timeout), ``unknown``
(HTTP 503, -1007 "execution status unknown": executes too), ``late`` (nothing executes now; the
order appears when the test calls :meth:`execute_late`).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

RESPONSES = Path(__file__).resolve().parent / "brokers" / "responses"

FAULTS: dict[str, tuple[int, dict[str, Any] | None]] = {
    "rate_limit": (
        429,
        {"code": -1003, "msg": "Too many requests; current limit is 6000 request weight per 1 MINUTE."},
    ),
    "banned": (418, {"code": -1003, "msg": "Way too much request weight used; IP banned until 1798761600000."}),
    "clock_skew": (400, {"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."}),
    "down": (503, None),
    "lost": (504, None),
    "unknown": (
        503,
        {
            "code": -1007,
            "msg": "Timeout waiting for response from backend server. Send status unknown; execution status unknown.",
        },
    ),
}
EXECUTES_ANYWAY = {"lost", "unknown"}  # the order is in the book although its answer says nothing


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, str]


@dataclass
class LoopbackBinance:
    """The exchange's state; ``url`` is what ``BINANCE_API_URL`` points at."""

    prices: dict[str, Decimal] = field(default_factory=lambda: {"BTCUSDT": Decimal(43500), "ETHUSDT": Decimal(2500)})
    balances: dict[str, Decimal] = field(
        default_factory=lambda: {"USDT": Decimal(10000), "BTC": Decimal("0.1"), "ETH": Decimal(1)}
    )
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)  # client order id -> order
    requests: list[Request] = field(default_factory=list)
    url: str = ""
    liquidity: bool = True  # False: MARKET orders find no counterparty and EXPIRE unfilled
    _faults: dict[str, deque[str]] = field(default_factory=dict)
    _late: dict[str, dict[str, Any]] = field(default_factory=dict)
    _outages: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _next_id: int = 4000000

    def fail_next(self, endpoint: str, *faults: str) -> None:
        """Answer the next requests to ``endpoint`` (``order``, ``lookup``, ``exchangeInfo``,
        ``account``) with these faults, one each, in order."""
        with self._lock:
            self._faults.setdefault(endpoint, deque()).extend(faults)

    def fail_until_healed(self, endpoint: str, fault: str) -> None:
        """Answer every request to ``endpoint`` with ``fault`` until :meth:`heal`."""
        with self._lock:
            self._outages[endpoint] = fault

    def heal(self, endpoint: str) -> None:
        with self._lock:
            self._outages.pop(endpoint, None)

    def orders_placed(self) -> list[dict[str, Any]]:
        """The order requests that reached the matching engine (not those refused before it)."""
        with self._lock:
            return list(self.orders.values())

    def order_requests(self) -> list[dict[str, str]]:
        """Every ``POST /order``'s parameters, signed fields removed, in arrival order."""
        unsigned = ("signature", "timestamp", "recvWindow")
        return [
            {k: v for k, v in r.params.items() if k not in unsigned}
            for r in self.requests
            if r.method == "POST" and r.path.endswith("/order")
        ]

    def execute_late(self) -> None:
        """The orders whose answer was lost as ``late`` execute now."""
        with self._lock:
            self.orders.update(self._late)
            self._late.clear()

    # -- the API -------------------------------------------------------------------------------

    def handle(self, method: str, path: str, params: dict[str, str]) -> tuple[int, Any]:
        with self._lock:
            self.requests.append(Request(method, path, params))
            endpoint = self._endpoint(method, path)
            queue = self._faults.get(endpoint)
            fault = queue.popleft() if queue else self._outages.get(endpoint)
        if fault is not None and fault not in EXECUTES_ANYWAY and fault != "late":
            return FAULTS[fault]
        if endpoint == "exchangeInfo":
            return 200, _body("spot-exchangeInfo")
        if endpoint == "account":
            return 200, self._account()
        if endpoint == "ticker":
            symbol = params.get("symbol", "BTCUSDT")
            return 200, {**_body("spot-ticker-24hr"), "symbol": symbol, "lastPrice": str(self.prices[symbol])}
        if endpoint == "prices":
            return 200, [{"symbol": s, "price": str(p)} for s, p in self.prices.items()]
        if endpoint == "time":
            return 200, {"serverTime": int(time.time() * 1000)}
        if endpoint == "order":
            return self._place(params, fault)
        if endpoint == "lookup":
            with self._lock:
                found = self.orders.get(params.get("origClientOrderId", ""))
            if found is None:
                return 400, {"code": -2013, "msg": "Order does not exist."}
            return 200, found
        return 404, {"code": -1000, "msg": f"loopback Binance has no {method} {path}"}

    @staticmethod
    def _endpoint(method: str, path: str) -> str:
        name = path.rstrip("/").rsplit("/", 1)[-1]
        if path.endswith("/ticker/24hr"):
            return "ticker"
        if path.endswith("/ticker/price"):
            return "prices"
        if name == "order":
            return "order" if method == "POST" else "lookup"
        return name

    def _account(self) -> dict[str, Any]:
        with self._lock:
            balances = [{"asset": a, "free": str(v), "locked": "0"} for a, v in self.balances.items()]
        return {**_body("spot-account"), "balances": balances}

    def _place(self, params: dict[str, str], fault: str | None) -> tuple[int, Any]:
        symbol, side, kind = params["symbol"], params["side"], params["type"]
        cid = params["newClientOrderId"]
        quantity = Decimal(params["quantity"])
        price = self.prices[symbol]
        base, quote = symbol[:-4], symbol[-4:]
        with self._lock:
            if cid in self.orders and self.orders[cid]["status"] == "NEW":
                return 400, {"code": -2010, "msg": "Duplicate order sent."}
            self._next_id += 1
            limit = Decimal(params["price"]) if "price" in params else None
            marketable = limit is None or (limit >= price if side == "BUY" else limit <= price)
            expired = limit is None and not self.liquidity
            marketable = marketable and not expired
            order = {
                "symbol": symbol,
                "orderId": self._next_id,
                "orderListId": -1,
                "clientOrderId": cid,
                "transactTime": int(time.time() * 1000),
                "time": int(time.time() * 1000),
                "updateTime": int(time.time() * 1000),
                "price": params.get("price", "0.00000000"),
                "origQty": params["quantity"],
                "executedQty": params["quantity"] if marketable else "0.00000000",
                "cummulativeQuoteQty": str(quantity * price) if marketable else "0.00000000",
                "status": "EXPIRED" if expired else "FILLED" if marketable else "NEW",
                "timeInForce": params.get("timeInForce", "GTC"),
                "type": kind,
                "side": side,
                "isWorking": True,
                "selfTradePreventionMode": "EXPIRE_MAKER",
            }
            if fault == "late":
                self._late[cid] = order
                return 504, None
            if marketable:
                sign = 1 if side == "BUY" else -1
                self.balances[quote] = self.balances.get(quote, Decimal(0)) - sign * quantity * price
                self.balances[base] = self.balances.get(base, Decimal(0)) + sign * quantity
            self.orders[cid] = order
        if fault is not None:
            return FAULTS[fault]
        return 200, order


def _body(name: str) -> Any:
    return json.loads((RESPONSES / f"{name}.json").read_text())


@contextmanager
def loopback_binance(exchange: LoopbackBinance | None = None) -> Iterator[LoopbackBinance]:
    """Serve a :class:`LoopbackBinance` on a free loopback port until the block ends."""
    exchange = exchange or LoopbackBinance()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            form = self.rfile.read(length).decode() if length else ""
            params = dict(parse_qsl(parts.query)) | dict(parse_qsl(form))
            status, payload = exchange.handle(self.command, parts.path, params)
            data = json.dumps(payload).encode() if payload is not None else b"<html>Gateway</html>"
            self.send_response(status)
            self.send_header("Content-Type", "application/json;charset=UTF-8" if payload is not None else "text/html")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    exchange.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield exchange
    finally:
        server.shutdown()
        server.server_close()
