"""A small NorenOMS (FlatTrade PiConnect) on 127.0.0.1, for tests that need the wire itself.

Every call is ``POST /<Route>`` with the raw body ``jData=<json>&jKey=<token>``, answered in the
shapes of ``responses/flattrade/`` (FlatTrade's PiConnect docs and NorenOMS's README, see its
SOURCES.md): ``SearchScrip``, ``GetQuotes``, ``Limits``, ``PlaceOrder`` (``{"stat": "Ok",
"norenordno": ...}``), ``OrderBook`` (rows, or ``Not_Ok`` "no data") and ``SingleOrdHist``
(rows, newest first). Statuses are NorenOMS's: OPEN (a partial fill is OPEN with
``fillshares``), COMPLETE, CANCELED, REJECTED. An expired session answers every call with
``Session Expired : Invalid Session Key``.

What happens to the next PlaceOrder is scripted with :class:`NorenPlan`, like the fake Binance:
execute it or not, answer it or answer 502 (the gateway lost it), with which status, and
whether the session expires right after.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

RESPONSES = Path(__file__).parent / "responses" / "flattrade"
NO_DATA = {"stat": "Not_Ok", "emsg": 'Error Occurred : 5 "no data"'}
EXPIRED = {"stat": "Not_Ok", "emsg": "Session Expired : Invalid Session Key"}


@dataclass(frozen=True)
class NorenCall:
    """One call as the OMS received it: its route, its jData, and whether it carried a jKey."""

    route: str
    jdata: dict[str, Any]
    jkey: str


@dataclass(frozen=True)
class NorenPlan:
    """What the OMS does with one PlaceOrder (see :class:`tests.brokers.fake_binance.Plan`).

    ``status``: COMPLETE, OPEN, CANCELED or REJECTED; None lets the book decide (a buy at or
    above the last price fills, else rests). ``filled``: shares filled (a partial fill is OPEN).
    ``expire_session``: the session ends right after this order is accepted.
    """

    execute: bool = True
    answer: bool = True
    status: str | None = None
    filled: int | None = None
    expire_session: bool = False


@dataclass
class FakeNoren:
    """The OMS's state and script; :class:`ServingNoren` runs it on a loopback port."""

    last: Decimal = Decimal("1500.00")
    lower: Decimal = Decimal("1350.00")
    upper: Decimal = Decimal("1650.00")
    calls: list[NorenCall] = field(default_factory=list)
    url: str = ""
    session_expired: bool = False
    failing_lookups: bool = False  # OrderBook answers 502
    _plans: deque[NorenPlan] = field(default_factory=deque)
    _rows: list[dict[str, Any]] = field(default_factory=list)  # the order book, one row per order
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(26_011_500_000_017))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def plan(self, *plans: NorenPlan) -> None:
        self._plans.extend(plans)

    def order_requests(self) -> list[dict[str, Any]]:
        """The jData of every PlaceOrder, in arrival order (lost answers included)."""
        return [c.jdata for c in self.calls if c.route == "PlaceOrder"]

    def handle(self, route: str, jdata: dict[str, Any]) -> tuple[int, Any]:
        if self.session_expired:
            return 200, EXPIRED
        if route == "SearchScrip":
            return 200, {"stat": "Ok", "values": [{"exch": "NSE", "token": "694", "tsym": "CIPLA-EQ"}]}
        if route == "GetQuotes":
            quote = json.loads((RESPONSES / "getquotes_ok.json").read_text())
            quote.update(exch="NSE", tsym="CIPLA-EQ", token="694", lp=f"{self.last}", lc=f"{self.lower}")
            quote["uc"] = f"{self.upper}"
            return 200, quote
        if route == "Limits":
            return 200, json.loads((RESPONSES / "limits_ok.json").read_text())
        if route == "PlaceOrder":
            return self._place(jdata)
        if route == "OrderBook":
            if self.failing_lookups:
                return 502, "<html>502 Bad Gateway</html>"
            with self._lock:
                rows = [dict(r) for r in self._rows]
            return 200, rows or NO_DATA
        if route == "SingleOrdHist":
            with self._lock:
                row = next((dict(r) for r in self._rows if r["norenordno"] == jdata.get("norenordno")), None)
            return 200, [row] if row is not None else NO_DATA
        return 200, {"stat": "Not_Ok", "emsg": f"fake NorenOMS has no route {route}"}

    def _place(self, jdata: dict[str, Any]) -> tuple[int, Any]:
        with self._lock:
            plan = self._plans.popleft() if self._plans else NorenPlan()
        if not plan.execute:
            return 502, "<html>502 Bad Gateway</html>"
        price, qty = Decimal(jdata["prc"]), int(jdata["qty"])
        buy = jdata["trantype"] == "B"
        marketable = (buy and price >= self.last) or (not buy and price <= self.last)
        status = plan.status or ("COMPLETE" if marketable else "OPEN")
        filled = plan.filled if plan.filled is not None else (qty if status == "COMPLETE" else 0)
        order_no = str(next(self._ids))
        row = {
            "stat": "Ok",
            "norenordno": order_no,
            "uid": jdata["uid"],
            "actid": jdata["actid"],
            "exch": jdata["exch"],
            "tsym": jdata["tsym"],
            "token": "694",
            "qty": jdata["qty"],
            "trantype": jdata["trantype"],
            "prctyp": jdata["prctyp"],
            "ret": jdata["ret"],
            "prd": jdata["prd"],
            "prc": jdata["prc"],
            "status": status,
            "fillshares": str(filled),
            "avgprc": f"{self.last}" if filled else "0",
            "remarks": jdata.get("remarks", ""),
            "ls": "1",
            "ti": "0.05",
            "pp": "2",
        }
        if status == "REJECTED":
            row["rejreason"] = "Insufficient funds"
        with self._lock:
            self._rows.append(row)
            if plan.expire_session:
                self.session_expired = True
        if not plan.answer:
            return 502, "<html>502 Bad Gateway</html>"
        return 200, {"request_time": "10:48:03 20-05-2020", "stat": "Ok", "norenordno": order_no}


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode() if length else ""
        route = urlsplit(self.path).path.rsplit("/", 1)[-1]
        jdata: dict[str, Any] = {}
        jkey = ""
        if raw.startswith("jData="):
            data, _, jkey = raw[len("jData=") :].rpartition("&jKey=")
            jdata = json.loads(data)
        oms: FakeNoren = self.server.oms  # type: ignore[attr-defined]
        with oms._lock:
            oms.calls.append(NorenCall(route, jdata, jkey))
        status, payload = oms.handle(route, jdata)
        data_out = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data_out)))
        self.end_headers()
        self.wfile.write(data_out)

    def log_message(self, format: str, *args: Any) -> None:
        return


class ServingNoren:
    """A running fake OMS: ``with ServingNoren(FakeNoren()) as oms: oms.url``."""

    def __init__(self, oms: FakeNoren) -> None:
        self.oms = oms
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.oms = oms  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> FakeNoren:
        self.oms.url = f"http://127.0.0.1:{self._server.server_address[1]}/PiConnectAPI"
        self._thread.start()
        return self.oms

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
