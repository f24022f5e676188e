"""The FlatTrade adapter: NSE/BSE equities through NorenOMS PiConnect (API v2, since January 2026).

Requests go through :mod:`.client` (which alone turns their failures into ordergate's errors),
signed with the daily login's token from :mod:`.session`.

API v2 accepts only LIMIT and SL-LIMIT orders, and only from the account's registered static
IP: a MARKET signal becomes a marketable LIMIT at the last price plus (buys) or minus (sells)
``protection_pct``, rounded to the tick and kept inside the day's circuit limits; requests go
through ``HTTPS_PROXY`` when it is set. NorenOMS has no client order id: the signal's id goes
into ``remarks``, so an order whose answer was lost is found in the order book, not re-sent.
"Ok" from PlaceOrder only means the OMS accepted the order; its status is polled briefly and a
``REJECT`` is answered with FlatTrade's reason.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus, urlencode

from ordergate.brokers.endpoints import Money, money_of, url_host
from ordergate.brokers.flattrade.client import (
    NorenClient,
    Unreachable,
    failure,
    login_token,
    no_data,
    placed,
    rejected,
    session_expired,
    translated,
)
from ordergate.brokers.flattrade.session import LOGIN_PATH, SessionExpired, SessionStore, Tokens, next_expiry
from ordergate.brokers.retry import read_retry
from ordergate.config import validate
from ordergate.pipeline.errors import (
    INVALID_SYMBOL,
    BrokerAuthError,
    BrokerError,
    BrokerUnavailable,
    OrderOutcomeUnknown,
    Rejection,
)
from ordergate.pipeline.journal import Journal
from ordergate.pipeline.money import ZERO, plain, to_step, wire_decimal
from ordergate.pipeline.signal import Market, MarketType, Order, Placement, Side
from ordergate.redact import register

log = logging.getLogger("ordergate")

OPTIONS_SCHEMA: dict[str, Any] = {
    "adapter": {"type": "string", "allowed": ["flattrade"]},
    "label": {"type": "string"},
    "api_url": {"type": "string", "default": "https://piconnect.flattrade.in/PiConnectAPI"},
    # FlatTrade has no sandbox: orders are real money unless api_url is loopback, or a host
    # nobody knows that this flag vouches for (never FlatTrade's own hosts).
    "sandbox": {"type": "boolean", "default": False},
    # the token exchange: POST <auth_url>/apitoken
    "auth_url": {"type": "string", "default": "https://authapi.flattrade.in/trade"},
    # where the user signs in: <login_url>/?app_key=<api_key>
    "login_url": {"type": "string", "default": "https://auth.flattrade.in"},
    "api_key": {"type": "string", "nullable": True, "default": None},
    "api_secret": {"type": "string", "nullable": True, "default": None},
    "user_id": {"type": "string", "nullable": True, "default": None},
    "account_id": {"type": "string", "nullable": True, "default": None},  # defaults to user_id
    "token": {"type": "string", "nullable": True, "default": None},  # FLATTRADE_TOKEN
    "exchange": {"type": "string", "allowed": ["NSE", "BSE"], "default": "NSE"},
    "product": {"type": "string", "allowed": ["CNC", "MIS", "NRML"], "default": "CNC"},
    "protection_pct": {"type": "decimal", "min": 0, "max": 5, "default": Decimal("0.5")},
    "status_wait_s": {"type": "decimal", "min": 0, "max": 2.5, "default": Decimal("1.5")},
    "poll_interval_s": {"type": "decimal", "min": 0, "max": 1, "default": Decimal("0.25")},
    "timeout_s": {"type": "decimal", "min": 0.5, "max": 30, "default": 5},
    "quote_ttl_s": {"type": "decimal", "min": 0, "max": 60, "default": 2},
    "scrip_ttl_s": {"type": "integer", "min": 60, "default": 21600},
    "lookup_delay_s": {"type": "decimal", "min": 0, "max": 10, "default": 1},
}

PRODUCTS = {"CNC": "C", "MIS": "I", "NRML": "M"}
FILLED, PARTIAL, NEW, REJECTED, CANCELED = "FILLED", "PARTIALLY_FILLED", "NEW", "REJECTED", "CANCELED"


def protected_price(last: Decimal, side: str, pct: Decimal, tick: Decimal, low: Decimal, high: Decimal) -> Decimal:
    """A marketable limit: ``last`` ± ``pct`` %, on the tick, inside the circuit limits [low, high]."""
    buy = side == "buy"
    raw = last * (1 + pct / 100) if buy else last * (1 - pct / 100)
    price = to_step(raw, tick, up=buy)
    if high > ZERO and price > high:
        price = to_step(high, tick, up=False)
    if low > ZERO and price < low:
        price = to_step(low, tick, up=True)
    return price


@dataclass(frozen=True)
class _Quote:
    last: Decimal
    low: Decimal  # lower circuit limit
    high: Decimal  # upper circuit limit
    at: float


@dataclass(frozen=True)
class _Scrip:
    market: Market | None
    token: str
    exchange: str
    at: float


class FlatTradeBroker:
    """One FlatTrade account (NSE or BSE cash equities)."""

    market_type: MarketType = "equity"

    def __init__(
        self,
        name: str,
        client: NorenClient,
        *,
        label: str,
        user_id: str,
        account_id: str,
        api_key: str,
        api_secret: str,
        auth_url: str,
        login_url: str,
        token: str,
        exchange: str,
        product: str,
        protection_pct: Decimal,
        status_wait_s: float,
        poll_interval_s: float,
        quote_ttl_s: float,
        scrip_ttl_s: float,
        lookup_delay_s: float,
        sandbox: bool = False,
    ) -> None:
        self.name = name
        self.label = label
        self.client = client
        # FlatTrade has no sandbox: real money unless the orders go to loopback (or a vouched host)
        self.money: Money = money_of([client.api_url], sandbox=sandbox)
        self.live = self.money == "live"
        self.endpoint = url_host(client.api_url)  # the host orders go to, for the startup summary
        self.missing_credentials = not user_id
        self.user_id, self.account_id = user_id, account_id or user_id
        self.api_key, self._api_secret = api_key, api_secret
        self.auth_url, self.login_url = auth_url.rstrip("/"), login_url.rstrip("/")
        self.exchange = exchange
        self.product = product
        self.protection_pct = protection_pct
        self._status_wait, self._poll = status_wait_s, poll_interval_s
        self._quote_ttl, self._scrip_ttl = quote_ttl_s, scrip_ttl_s
        self._lookup_delay = lookup_delay_s
        self._tokens = Tokens(name, token)
        self._scrips: dict[str, _Scrip] = {}
        self._quotes: dict[str, _Quote] = {}

    @classmethod
    def from_config(cls, name: str, options: dict[str, Any], *, config_dir: Path, file: str) -> FlatTradeBroker:
        opts = validate(options, OPTIONS_SCHEMA, file=file, path=f"brokers.{name}")
        return cls(
            name,
            NorenClient(opts["api_url"], float(opts["timeout_s"])),
            label=opts.get("label") or f"FlatTrade {opts['exchange']}",
            user_id=opts["user_id"] or "",
            account_id=opts["account_id"] or "",
            api_key=opts["api_key"] or "",
            api_secret=opts["api_secret"] or "",
            auth_url=opts["auth_url"],
            login_url=opts["login_url"],
            token=opts["token"] or "",
            exchange=opts["exchange"],
            product=opts["product"],
            protection_pct=opts["protection_pct"],
            status_wait_s=float(opts["status_wait_s"]),
            poll_interval_s=float(opts["poll_interval_s"]),
            quote_ttl_s=float(opts["quote_ttl_s"]),
            scrip_ttl_s=float(opts["scrip_ttl_s"]),
            lookup_delay_s=float(opts["lookup_delay_s"]),
            sandbox=opts["sandbox"],
        )

    # -- the daily login ------------------------------------------------------------------------

    def use_session_store(self, journal: Journal) -> None:
        """Keep logins in ``journal``'s database, where every replica finds them."""
        self._tokens.use(SessionStore(journal.engine))

    def login_redirect(self) -> str:
        """Where ``GET /auth/flattrade`` sends the browser: FlatTrade's sign-in for this API key."""
        if not self.api_key:
            raise BrokerAuthError("FLATTRADE_API_KEY is not set", broker=self.name)
        return f"{self.login_url}/?{urlencode({'app_key': self.api_key})}"

    def log_in(self, code: str) -> float:
        """Exchange the sign-in ``code`` for a token, store it, and return when it expires."""
        if not (self.api_key and self._api_secret):
            raise BrokerAuthError("FLATTRADE_API_KEY and FLATTRADE_API_SECRET are not set", broker=self.name)
        digest = hashlib.sha256(f"{self.api_key}{code}{self._api_secret}".encode()).hexdigest()
        payload = {"api_key": self.api_key, "request_code": code, "api_secret": digest}
        with translated(self.name, login=True):
            answer = self.client.api_token(self.auth_url, payload)
        token = login_token(answer, self.name)
        register(token)  # never written from here on, whatever fails next
        now = time.time()
        expires = next_expiry(now)
        self._tokens.stored(token, now, expires)
        log.info("FlatTrade login stored for %s; valid until 05:00 IST", self.name)
        return expires

    def _expired(self, token: str) -> None:
        """FlatTrade said ``token`` no longer works: forget it everywhere."""
        self._tokens.expired(token)
        log.warning("FlatTrade session of %s expired: log in at %s", self.name, LOGIN_PATH)

    def session_error(self) -> BrokerError | None:
        return None if self._tokens.current() else SessionExpired(self.name)

    # -- calls ------------------------------------------------------------------------------------

    def _call(self, route: str, data: dict[str, Any], *, read: bool = True) -> Any:
        """One NorenOMS call with the session token; an expired session raises SessionExpired."""
        token = self._tokens.current()
        if token is None:
            raise SessionExpired(self.name)
        with translated(self.name, placing=not read):
            if read:
                answer = read_retry(lambda: self.client.call(route, data, token), Unreachable)
            else:  # a placement is never repeated blind: a lost answer is looked up
                answer = self.client.call(route, data, token)
        if session_expired(answer):
            self._expired(token)
            raise SessionExpired(self.name)
        return answer

    def _failed(self, route: str, answer: Any) -> BrokerUnavailable:
        return failure(route, answer, self.name)

    # -- markets and prices -------------------------------------------------------------------

    def _scrip(self, symbol: str) -> _Scrip:
        symbol = symbol.upper()
        cached = self._scrips.get(symbol)
        ttl = self._scrip_ttl if cached is not None and cached.market is not None else 60
        if cached is not None and time.monotonic() - cached.at < ttl:
            return cached
        wanted = f"{symbol}-EQ" if self.exchange == "NSE" and "-" not in symbol else symbol
        answer = self._call("SearchScrip", {"uid": self.user_id, "exch": self.exchange, "stext": quote_plus(symbol)})
        values = answer.get("values") if isinstance(answer, dict) and answer.get("stat") == "Ok" else None
        if values is None and not no_data(answer):
            raise self._failed("SearchScrip", answer)
        found = next(
            (v for v in values or [] if isinstance(v, dict) and str(v.get("tsym", "")).upper() == wanted),
            None,
        )
        if found is None:
            scrip = _Scrip(None, "", self.exchange, time.monotonic())
        else:
            name = symbol[:-3] if symbol.endswith("-EQ") else symbol
            token, exchange = str(found.get("token", "")), str(found.get("exch") or self.exchange)
            rules = found
            if not found.get("ti"):  # SearchScrip may list only exch/token/tsym: GetQuotes has the rules
                rules = self._fetch_quote(name, exchange, token)
            lot = wire_decimal(rules.get("ls"), Decimal(1))
            market = Market(
                symbol=name,
                base=name,
                quote="INR",
                type="equity",
                tick_size=wire_decimal(rules.get("ti"), Decimal("0.05")),
                step_size=lot,
                min_qty=lot,
                broker_symbol=str(found["tsym"]),
            )
            scrip = _Scrip(market, token, exchange, time.monotonic())
        self._scrips[symbol] = scrip
        if scrip.market is not None:
            self._scrips[scrip.market.symbol] = scrip
        return scrip

    def market(self, symbol: str) -> Market | None:
        return self._scrip(symbol).market

    def _quote(self, symbol: str) -> _Quote:
        cached = self._quotes.get(symbol)
        if cached is not None and time.monotonic() - cached.at < self._quote_ttl:
            return cached
        scrip = self._scrip(symbol)
        if scrip.market is None:
            raise Rejection(INVALID_SYMBOL, code="symbol_not_listed")
        cached = self._quotes.get(symbol)  # resolving the symbol may have just read it
        if cached is not None and time.monotonic() - cached.at < self._quote_ttl:
            return cached
        self._fetch_quote(scrip.market.symbol, scrip.exchange, scrip.token)
        return self._quotes[scrip.market.symbol]

    def _fetch_quote(self, symbol: str, exchange: str, token: str) -> dict[str, Any]:
        """GetQuotes: the last price and circuit limits (cached briefly), and the scrip's rules."""
        answer = self._call("GetQuotes", {"uid": self.user_id, "exch": exchange, "token": token})
        last = wire_decimal(answer.get("lp")) if isinstance(answer, dict) and answer.get("stat") == "Ok" else ZERO
        if last <= ZERO:  # no trade yet today, or an error: no price to protect an order with
            raise self._failed("GetQuotes", answer)
        self._quotes[symbol] = _Quote(
            last, wire_decimal(answer.get("lc")), wire_decimal(answer.get("uc")), time.monotonic()
        )
        return dict(answer)

    def price(self, symbol: str) -> Decimal:
        """The last traded price (GetQuotes ``lp``, cached ``quote_ttl_s``): the market price the
        checks compare a signal's price hint with; a hint never replaces it."""
        return self._quote(symbol).last

    def leverage(self, symbol: str) -> Decimal:
        return Decimal(1)

    def market_order_limit(self, symbol: str, side: str) -> Decimal | None:
        """The protected LIMIT a MARKET order becomes (see :meth:`_limit`): last ± protection."""
        market = self.market(symbol)
        if market is None:
            return None
        quote = self._quote(market.symbol)
        return protected_price(quote.last, side, self.protection_pct, market.tick_size, quote.low, quote.high)

    def forget_balance(self) -> None:
        """Nothing is cached: every check reads Limits (or Holdings) afresh."""

    def free_balance(self, asset: str) -> Decimal:
        """INR: cash + pay-in − margin used (Limits). A stock: the shares held and not yet sold."""
        if asset == "INR":
            answer = self._call("Limits", {"uid": self.user_id, "actid": self.account_id})
            if not isinstance(answer, dict) or answer.get("stat") != "Ok":
                raise self._failed("Limits", answer)
            return (
                wire_decimal(answer.get("cash"))
                + wire_decimal(answer.get("payin"))
                - wire_decimal(answer.get("marginused"))
            )
        answer = self._call("Holdings", {"uid": self.user_id, "actid": self.account_id, "prd": "C"})
        if no_data(answer):
            return ZERO
        if not isinstance(answer, list):
            raise self._failed("Holdings", answer)
        wanted = {asset.upper(), f"{asset.upper()}-EQ"}
        held = ZERO
        for row in answer:
            symbols = {str(s.get("tsym", "")).upper() for s in row.get("exch_tsym", []) if isinstance(s, dict)}
            if symbols & wanted:
                # demat (dpqty), pledged-free (npoadqty) or plain holding quantity, whichever the
                # account reports; plus shares bought yesterday (btstqty), minus those sold today
                owned = max(wire_decimal(row.get(k)) for k in ("holdqty", "dpqty", "npoadqty"))
                held += owned + wire_decimal(row.get("btstqty")) - wire_decimal(row.get("usedqty"))
        return held

    # -- orders -------------------------------------------------------------------------------------

    def _limit(self, order: Order, market: Market) -> tuple[Decimal, str | None]:
        """The limit price to send, and a note when a MARKET order became a protected LIMIT."""
        if order.type == "LIMIT" and order.price is not None:
            return order.price, None
        quote = self._quote(market.symbol)
        price = protected_price(quote.last, order.side, self.protection_pct, market.tick_size, quote.low, quote.high)
        sign = "+" if order.side == "buy" else "-"
        note = (
            f"MARKET sent as LIMIT at {plain(price)} (last price {plain(quote.last)} {sign} "
            f"{plain(self.protection_pct)}% protection): FlatTrade's API accepts only limit orders"
        )
        return price, note

    def _jdata(self, order: Order, market: Market, price: Decimal) -> dict[str, Any]:
        product = order.product or self.product
        return {
            "ordersource": "API",
            "uid": self.user_id,
            "actid": self.account_id,
            "trantype": "B" if order.side == "buy" else "S",
            "prd": PRODUCTS.get(product, "C"),
            "exch": self.exchange,
            "tsym": quote_plus(market.broker_symbol),
            "qty": plain(order.quantity),
            "dscqty": "0",
            "prctyp": "LMT",
            "prc": plain(price),
            "ret": "DAY",
            "remarks": order.client_order_id,
        }

    def order_params(self, order: Order, market: Market) -> dict[str, Any]:
        price, _ = self._limit(order, market)
        params = self._jdata(order, market, price)
        return {k: v for k, v in params.items() if k not in ("uid", "actid")}

    def place_order(self, order: Order, market: Market) -> Placement:
        price, note = self._limit(order, market)
        data = self._jdata(order, market, price)
        try:
            answer = self._call("PlaceOrder", data, read=False)
        except OrderOutcomeUnknown as exc:
            log.warning("Order %s: answer lost (%s), looking it up by remarks", order.client_order_id, exc.__cause__)
            order_no = self._recover(order, market, data)
        else:
            order_no = placed(answer)
        placement = self._settle(order_no, order, market, price)
        return placement if note is None else _with_note(placement, note)

    def _recover(self, order: Order, market: Market, data: dict[str, Any]) -> str:
        """The PlaceOrder answer was lost: find the order by its remarks; re-send only if it is
        absent twice, a moment apart."""
        for _ in range(2):
            time.sleep(self._lookup_delay)
            row = self._find_row(order.client_order_id)
            if row is not None:
                log.info("Order %s found in FlatTrade's order book", order.client_order_id)
                return str(row["norenordno"])
        log.warning("Order %s is not in FlatTrade's order book: sending it once more", order.client_order_id)
        try:
            answer = self._call("PlaceOrder", data, read=False)
        except OrderOutcomeUnknown:
            time.sleep(self._lookup_delay)
            row = self._find_row(order.client_order_id)
            if row is None:
                raise OrderOutcomeUnknown(broker=self.name) from None
            return str(row["norenordno"])
        return placed(answer)

    def _find_row(self, client_order_id: str) -> dict[str, Any] | None:
        """The order-book row tagged ``client_order_id``; None only when the book says it has none.

        A look-up that fails in any way (session expired, network, 5xx, an answer that is not an
        order book) raises OrderOutcomeUnknown: after a lost PlaceOrder answer the order may
        exist, so a failed look-up must neither end in a definite error nor pass for "absent"
        (which would re-send the order).
        """
        try:
            answer = self._call("OrderBook", {"uid": self.user_id})
        except Exception as exc:  # SessionExpired, BrokerUnavailable, a journal error: all unknown
            log.warning("Order %s: the order-book look-up failed (%s)", client_order_id, type(exc).__name__)
            raise OrderOutcomeUnknown(broker=self.name) from exc
        if isinstance(answer, dict) and answer.get("stat") == "Not_Ok" and no_data(answer):
            return None  # NorenOMS's "no data": no orders today
        if not isinstance(answer, list) or not all(isinstance(row, dict) for row in answer):
            log.warning("Order %s: the order book answered something unreadable", client_order_id)
            raise OrderOutcomeUnknown(broker=self.name)
        row = next((r for r in answer if r.get("remarks") == client_order_id), None)
        if row is not None and not row.get("norenordno"):
            raise OrderOutcomeUnknown(broker=self.name)  # it exists, but we cannot name it
        return row

    def _settle(self, order_no: str, order: Order, market: Market, price: Decimal) -> Placement:
        """Poll the order's history briefly: "Ok" only meant accepted. A rejection raises."""
        deadline = time.monotonic() + self._status_wait
        row: dict[str, Any] | None = None
        while True:
            try:
                answer = self._call("SingleOrdHist", {"uid": self.user_id, "norenordno": order_no})
            except BrokerUnavailable:
                answer = None  # the order exists: "accepted" is all we know for now
            except BrokerAuthError:
                break  # the session ended after placing: the order stands, answered as accepted
            if isinstance(answer, list) and answer and isinstance(answer[0], dict):
                row = answer[0]  # the newest state comes first
                status = _status(row)
                if status in (FILLED, REJECTED, CANCELED):
                    break
            if time.monotonic() + self._poll > deadline:
                break
            time.sleep(self._poll)
        placement = self._placement(row or {}, order_no, order, market, price)
        if placement.status == REJECTED:
            raise rejected(order_no, row or {})
        return placement

    def _placement(self, row: dict[str, Any], order_no: str, order: Order, market: Market, price: Decimal) -> Placement:
        filled = wire_decimal(row.get("fillshares"))
        average = wire_decimal(row.get("avgprc")) if filled > ZERO else None
        return Placement(
            order_id=order_no,
            client_order_id=order.client_order_id,
            status=_status(row) if row else NEW,
            symbol=market.symbol,
            side=order.side,
            type="LIMIT",
            quantity=order.quantity,
            filled=filled,
            average_price=average,
            price=price,
            base=market.base,
            broker=self.name,
        )

    def find_order(self, client_order_id: str, symbol: str) -> Placement | None:
        row = self._find_row(client_order_id)
        if row is None:
            return None
        market = self.market(symbol)
        if market is None:  # the order exists: never report it absent
            raise OrderOutcomeUnknown(broker=self.name)
        side: Side = "buy" if row.get("trantype") == "B" else "sell"
        order = Order(
            symbol=market.symbol,
            side=side,
            type="LIMIT",
            quantity=wire_decimal(row.get("qty")),
            client_order_id=client_order_id,
        )
        return self._placement(row, str(row.get("norenordno", "")), order, market, wire_decimal(row.get("prc")))


def _status(row: dict[str, Any]) -> str:
    """NorenOMS's order status in ordergate's (Binance's) words."""
    status = str(row.get("status", "")).upper()
    if status == "COMPLETE":
        return FILLED
    if status.startswith("REJECT"):
        return REJECTED
    if status.startswith("CANCEL"):
        return CANCELED
    return PARTIAL if wire_decimal(row.get("fillshares")) > ZERO else NEW


def _with_note(placement: Placement, note: str) -> Placement:
    return replace(placement, notes=(*placement.notes, note))
