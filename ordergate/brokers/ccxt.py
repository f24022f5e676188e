"""The ccxt adapter: any ccxt exchange by id, Binance (spot and USD-M futures) first.

One round trip per signal in steady state: markets are loaded at startup and refreshed in the
background; every symbol's last price is read in one request at startup and refreshed in the
background (a symbol's ticker only when that is missing or old); balances are cached, updated
from fills and refreshed on a TTL. Placement is exactly-once: every order
carries the signal's client order id, ccxt's own retries are off, and an order whose outcome
is unknown (timeout, 5xx, Binance -1007) is looked up by that id before anything is re-sent.

Every ccxt exception becomes an ordergate error in :func:`translate`, applied by one context
manager (:meth:`CcxtBroker._translated`, as httpx's ``map_httpcore_exceptions``) around every
call. What Binance says on the wire (its fields and error codes) is read in
:mod:`ordergate.brokers.binance`; this module is "any ccxt exchange".
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import ccxt
from ccxt.base import errors as cx

from ordergate.brokers import binance
from ordergate.brokers.base import binance_params
from ordergate.brokers.binance import exchange_reason, market_of
from ordergate.brokers.endpoints import Money, money_of, url_host
from ordergate.brokers.retry import read_retry
from ordergate.config import validate
from ordergate.pipeline.errors import (
    INSUFFICIENT_BALANCE,
    INVALID_PRECISION,
    INVALID_SYMBOL,
    ORDER_TOO_SMALL,
    BrokerAuthError,
    BrokerError,
    BrokerUnavailable,
    ConfigError,
    OrdergateError,
    OrderOutcomeUnknown,
    Rejection,
)
from ordergate.pipeline.funds import required_funds
from ordergate.pipeline.money import ZERO, plain
from ordergate.pipeline.signal import Market, MarketType, Order, Placement

log = logging.getLogger("ordergate")

T = TypeVar("T")

OPTIONS_SCHEMA: dict[str, Any] = {
    "adapter": {"type": "string", "allowed": ["ccxt"]},
    "label": {"type": "string"},
    "exchange": {"type": "string", "required": True, "regex": "[a-z0-9]+"},
    "market_type": {"type": "string", "allowed": ["spot", "future"], "default": "spot"},
    "testnet": {"type": "boolean", "default": True},
    # Vouches that an api_url host nobody knows (neither loopback nor a known test or production
    # host) is a test exchange; without it such a host is real money. Never overrides a known
    # production host: see ordergate.brokers.endpoints.
    "sandbox": {"type": "boolean", "default": False},
    "api_key": {"type": "string", "nullable": True, "default": None},
    "api_secret": {"type": "string", "nullable": True, "default": None},
    "api_url": {"type": "string", "nullable": True, "default": None},
    "leverage": {"type": "integer", "min": 1, "max": 125, "nullable": True, "default": None},
    "margin_mode": {"type": "string", "allowed": ["cross", "isolated"], "nullable": True, "default": None},
    "timeout_ms": {"type": "integer", "min": 500, "max": 60000, "default": 10000},
    "markets_ttl_s": {"type": "integer", "min": 60, "default": 3600},
    # how long an exchange price (all symbols' read, a ticker, a fill) counts as recent; all
    # symbols' prices are re-read every 0.8 x this (under 1: no background read, a ticker each time)
    "ticker_ttl_s": {"type": "decimal", "min": 0, "default": 10},
    "balance_ttl_s": {"type": "decimal", "min": 0, "default": 30},
    "lookup_attempts": {"type": "integer", "min": 1, "max": 10, "default": 3},
    # after a lost answer, wait this long before each look-up: an order still executing may
    # not show yet, and re-sending a filled market order's id would place a second order
    "lookup_delay_s": {"type": "decimal", "min": 0, "max": 10, "default": 1},
    "options": {"type": "dict", "default": {}},  # passed to ccxt as-is, for exchanges beyond Binance
}

# -- error translation: the one place ccxt's exceptions become ordergate's ---------------------


def translate(exc: BaseException, *, exchange: str = "exchange", placing: bool = False) -> OrdergateError:
    """Map a ccxt exception to ordergate's error with the words the trader reads.

    ``placing`` says the request was an order placement: a network failure then means the
    order may exist (OrderOutcomeUnknown, answered 202), while the same failure on a read means
    no order can exist yet (BrokerUnavailable, answered 503 so TradingView retries).
    Requests the exchange refused before executing (rate limits, clock skew) are 503 either way.
    """
    code, message = exchange_reason(exc)
    name = exchange.capitalize()
    if code is not None and not isinstance(exc, cx.OrderNotFound):
        by_code = binance.error_of(code, message, name, exchange, placing)
        if by_code is not None:
            return by_code
    if isinstance(exc, cx.InsufficientFunds):
        return Rejection(INSUFFICIENT_BALANCE, code="insufficient_balance")
    if isinstance(exc, cx.BadSymbol):
        return Rejection(INVALID_SYMBOL, code="symbol_not_listed")
    if isinstance(exc, cx.AuthenticationError):  # includes PermissionDenied, AccountSuspended
        return BrokerAuthError("Unauthorized API key", broker=exchange)
    if isinstance(exc, (cx.DDoSProtection, cx.RateLimitExceeded)):
        return BrokerUnavailable(f"{name} rate limit reached: try again shortly", broker=exchange)
    if isinstance(exc, cx.InvalidNonce):
        return BrokerUnavailable(f"{name} refused the request timestamp (server clock skew)", broker=exchange)
    if isinstance(exc, (cx.OnMaintenance, cx.ExchangeNotAvailable)) and not placing:
        return BrokerUnavailable(f"{name} is unavailable: try again shortly", broker=exchange)
    if isinstance(exc, (cx.NetworkError, cx.BadResponse)):
        if placing:
            return OrderOutcomeUnknown(broker=exchange)
        return BrokerUnavailable(f"{name} did not answer: try again shortly", broker=exchange)
    if isinstance(exc, (cx.InvalidOrder, cx.BadRequest, cx.OperationRejected, cx.ExchangeError)):
        if binance.too_small(code, message):
            return Rejection(ORDER_TOO_SMALL, code="below_min_notional")
        if binance.bad_precision(code, message):
            return Rejection(INVALID_PRECISION, code="precision")
        if isinstance(exc, cx.OrderNotFound):
            return Rejection("Order not found", code="order_not_found")
        reason = f"Rejected by {name}: {message}" + (f" ({code})" if code is not None else "")
        return Rejection(reason, code="exchange_rejected")
    # OperationFailed, and anything ccxt adds later: unknown if an order may exist, else 503.
    if placing:
        return OrderOutcomeUnknown(broker=exchange)
    return BrokerUnavailable(f"{name} failed: try again shortly", broker=exchange)


# Without markets nothing can be checked: while they are missing a signal may load them, this often.
MARKETS_RETRY_S = 2.0


class _Absent(Exception):
    """A look-up's answer was the exchange's own "no such order" (see ``_no_such_order``)."""


_RETRYABLE = (cx.NetworkError,)  # RequestTimeout and DDoSProtection are NetworkErrors


# -- where orders go ----------------------------------------------------------------------


def rewrite_urls(urls: Any, base: str) -> Any:
    """Replace scheme and host of every URL in ccxt's ``urls['api']`` (nested dicts of strings)."""
    base = base.rstrip("/")
    if isinstance(urls, dict):
        return {k: rewrite_urls(v, base) for k, v in urls.items()}
    if isinstance(urls, str):
        return re.sub(r"^[a-z]+://[^/]+", base, urls)
    return urls


def _urls(tree: Any) -> list[str]:
    """Every URL string in a ccxt ``urls`` entry (nested dicts and lists of strings)."""
    if isinstance(tree, dict):
        return [url for value in tree.values() for url in _urls(value)]
    if isinstance(tree, (list, tuple)):
        return [url for value in tree for url in _urls(value)]
    return [tree] if isinstance(tree, str) else []


def order_money(exchange: Any, *, sandbox: bool = False) -> Money:
    """Whose money ``exchange`` trades, from the URLs it will really use (after sandbox mode,
    demo trading and ``api_url``): every API URL counts, since any of them may carry an order.

    The exchange class's own production URLs are known production hosts, its ccxt ``test`` and
    ``demo`` URLs known test hosts, on top of Binance's (see :mod:`ordergate.brokers.endpoints`).
    ccxt's own sandbox map, applied as ccxt applies it, is test money even on a production host:
    some exchanges (OKX) run their sandbox on the production host behind a header ccxt adds.
    """
    own = type(exchange)().urls  # a fresh instance: the class's URLs before any switching
    current = exchange.urls.get("api")
    if exchange.isSandboxModeEnabled and own.get("test") and current == own["test"]:
        return "test"

    def hosts(tree: Any) -> set[str]:
        return {url_host(exchange.implode_hostname(url)) for url in _urls(tree)}

    production = hosts(own.get("api"))
    test = hosts(own.get("test")) | hosts(own.get("demo"))
    urls = [exchange.implode_hostname(url) for url in _urls(current)]
    return money_of(urls, sandbox=sandbox, production=production, test=test - production)


def order_url(api: Any, market_type: MarketType) -> str:
    """The URL orders of ``market_type`` are sent to (Binance's keys), else the first API URL."""
    if isinstance(api, dict):
        wanted = api.get(binance.order_api(market_type))
        if isinstance(wanted, str):
            return wanted
    found = _urls(api)
    return found[0] if found else ""


def configured_exchange(name: str, options: dict[str, Any], *, file: str) -> tuple[dict[str, Any], Any]:
    """The validated options of broker ``name`` and its ccxt exchange, pointed where its orders
    will go (sandbox, demo trading, ``api_url``). No request is made."""
    opts = validate(options, OPTIONS_SCHEMA, file=file, path=f"brokers.{name}")
    exchange_id = opts["exchange"]
    if exchange_id not in ccxt.exchanges:
        raise ConfigError(f"ccxt has no exchange {exchange_id!r}", file=file, path=f"brokers.{name}.exchange")
    market_type: MarketType = opts["market_type"]
    key, secret = opts["api_key"] or "", opts["api_secret"] or ""
    exchange_options: dict[str, Any] = {
        "defaultType": "future" if market_type == "future" else "spot",
        # Test and demo endpoints have no sapi; load only the markets this account trades.
        "fetchCurrencies": False,
        "fetchMargins": False,
        "fetchMarkets": {"types": ["linear"] if market_type == "future" else ["spot"]},
        # ccxt's own retry would re-send an order blind: placement retries go through lookup.
        "maxRetriesOnFailure": 0,
        **opts["options"],
    }
    exchange = getattr(ccxt, exchange_id)(
        {
            "apiKey": key,
            "secret": secret,
            "enableRateLimit": True,
            "timeout": opts["timeout_ms"],
            "options": exchange_options,
        }
    )
    if opts["testnet"]:
        if market_type == "future" and hasattr(exchange, "enable_demo_trading"):
            exchange.enable_demo_trading(True)  # ccxt refuses sandbox for Binance futures now
        else:
            exchange.set_sandbox_mode(True)
    if opts["api_url"]:
        exchange.urls["api"] = rewrite_urls(exchange.urls["api"], opts["api_url"])
    return opts, exchange


def options_money(name: str, options: dict[str, Any], *, file: str) -> Money:
    """Whose money broker ``name`` would trade, from its options alone (no request is made)."""
    opts, exchange = configured_exchange(name, options, file=file)
    return order_money(exchange, sandbox=opts["sandbox"])


@dataclass
class _Cached:
    value: Any
    at: float


class CcxtBroker:
    """An account at a ccxt exchange; see the module docstring for the guarantees."""

    _running: ClassVar[weakref.WeakSet[CcxtBroker]] = weakref.WeakSet()  # started and not closed

    def __init__(
        self,
        name: str,
        exchange: Any,
        *,
        market_type: MarketType = "spot",
        label: str | None = None,
        leverage: int | None = None,
        margin_mode: str | None = None,
        markets_ttl_s: float = 3600,
        ticker_ttl_s: float = 10,
        balance_ttl_s: float = 30,
        lookup_attempts: int = 3,
        lookup_delay_s: float = 1.0,
        has_keys: bool = True,
        live: bool = False,
        endpoint: str = "",
    ) -> None:
        self.name = name
        self.exchange = exchange
        self.exchange_id = str(exchange.id)
        self.market_type: MarketType = market_type
        self.label = label or f"{self.exchange_id} {market_type}"
        self.missing_credentials = not has_keys
        self.live = live
        self.money: Money = "live" if live else "test"
        self.endpoint = endpoint  # the host orders go to, for the startup summary
        self._leverage = leverage
        self._margin_mode = margin_mode
        self._markets_ttl = markets_ttl_s
        self._ticker_ttl = ticker_ttl_s
        self._balance_ttl = balance_ttl_s
        self._lookup_attempts = lookup_attempts
        self._lookup_delay = lookup_delay_s
        self._markets: dict[str, Market] = {}
        self._tickers: dict[str, _Cached] = {}
        self._balance: _Cached | None = None
        self._configured: set[str] = set()  # symbols whose leverage / margin mode are set
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._markets_loading = threading.Lock()  # one on-demand load at a time
        self._markets_tried = float("-inf")  # when a signal last tried loading missing markets
        self.clock: Callable[[], float] = time.monotonic
        self._resyncing = threading.Lock()
        self.clock_synced = threading.Event()  # set once a clock resync after a -1021 ended

    @classmethod
    def from_config(cls, name: str, options: dict[str, Any], *, config_dir: Path, file: str) -> CcxtBroker:
        opts, exchange = configured_exchange(name, options, file=file)
        exchange_id, market_type = opts["exchange"], opts["market_type"]
        key, secret = opts["api_key"] or "", opts["api_secret"] or ""
        money = order_money(exchange, sandbox=opts["sandbox"])
        broker = cls(
            name,
            exchange,
            market_type=market_type,
            label=opts.get("label") or f"{exchange_id} {market_type}{' testnet' if money == 'test' else ''}",
            leverage=opts["leverage"],
            margin_mode=opts["margin_mode"],
            markets_ttl_s=float(opts["markets_ttl_s"]),
            ticker_ttl_s=float(opts["ticker_ttl_s"]),
            balance_ttl_s=float(opts["balance_ttl_s"]),
            lookup_attempts=opts["lookup_attempts"],
            lookup_delay_s=float(opts["lookup_delay_s"]),
            has_keys=bool(key and secret),
            live=money == "live",
            endpoint=url_host(order_url(exchange.urls["api"], market_type)),
        )
        broker.start()
        return broker

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Warm markets and balance now, before the first signal; keep them fresh in the background.

        One attempt each: a down exchange must not hold the service's startup.
        """
        CcxtBroker._running.add(self)
        try:
            self.refresh_markets(attempts=1)
        except OrdergateError as exc:
            log.error("Markets for %s not loaded yet (%s); retrying in the background", self.name, exc)
        if self._prices_every is not None and self._markets:
            try:
                self.refresh_prices(attempts=1)
            except OrdergateError as exc:
                log.warning("Prices of %s not read yet (%s); reading them in the background", self.name, exc)
        if not self.missing_credentials:
            try:
                self.refresh_balance(attempts=1)
            except OrdergateError as exc:
                log.warning("Balance of %s not read yet (%s); reading it on the first signal", self.name, exc)
        threading.Thread(target=self._refresh_loop, name=f"refresh-{self.name}", daemon=True).start()

    def close(self) -> None:
        self._stop.set()
        CcxtBroker._running.discard(self)

    @classmethod
    def close_all(cls) -> None:
        """Stop every broker's background refresh (at exit; in tests, after each test, so no
        refresh of one fires into another's recorded exchange)."""
        for broker in list(cls._running):
            broker.close()

    @property
    def _prices_every(self) -> float | None:
        """How often all symbols' prices are read in the background (None: never)."""
        if self._ticker_ttl < 1 or not self.exchange.has.get("fetchLastPrices"):
            return None
        return self._ticker_ttl * 0.8

    def _refresh_loop(self) -> None:
        """Refresh markets on their TTL, and the balance and all prices a little before their
        TTLs run out, so no signal waits for any of them in steady state."""
        balance_every = self._balance_ttl * 0.8 if self._balance_ttl >= 1 and not self.missing_credentials else None
        prices_every = self._prices_every
        now = time.monotonic()
        markets_due = now + (self._markets_ttl if self._markets else 30)
        balance_due = now + balance_every if balance_every else float("inf")
        prices_due = now + prices_every if prices_every else float("inf")
        while not self._stop.wait(max(0.05, min(markets_due, balance_due, prices_due) - time.monotonic())):
            now = time.monotonic()
            if prices_every and now >= prices_due and self._markets:  # no markets: no signal needs a price
                try:
                    self.refresh_prices()
                except OrdergateError as exc:  # a signal reads its symbol's ticker meanwhile
                    log.warning("Price refresh for %s failed (%s)", self.name, exc)
                prices_due = now + prices_every
            if now >= markets_due:
                try:
                    self.refresh_markets()
                except OrdergateError as exc:  # keep the last good markets
                    log.warning("Market refresh for %s failed (%s); keeping the last good markets", self.name, exc)
                markets_due = now + (self._markets_ttl if self._markets else 30)
            if balance_every and now >= balance_due:
                try:
                    self.refresh_balance()
                except OrdergateError as exc:  # the next signal reads it on demand
                    log.warning("Balance refresh for %s failed (%s)", self.name, exc)
                balance_due = now + balance_every

    def refresh_markets(self, attempts: int = 3) -> None:
        """Reload the exchange's markets; on failure the last good ones stay."""
        with self._translated():
            raw = read_retry(lambda: self.exchange.load_markets(reload=True), _RETRYABLE, attempts=attempts)
        markets = {}
        for market in raw.values():
            if market.get("active") is False:
                continue
            if (self.market_type == "future") != bool(market.get("contract")):
                continue
            if self.market_type == "future" and not market.get("linear"):
                continue
            converted = market_of(market, self.market_type)
            markets[converted.symbol] = converted
        self._markets = markets  # one assignment: readers see the old or the new dict, never half
        log.info("Loaded %d %s markets for %s", len(markets), self.market_type, self.name)

    # -- reads --------------------------------------------------------------------------------

    def _read(self, call: Callable[[], T]) -> T:
        with self._translated():
            return read_retry(call, _RETRYABLE)

    def session_error(self) -> BrokerError | None:
        return None  # API keys do not expire by the day

    @contextlib.contextmanager
    def _translated(self, *, placing: bool = False, looking_up: bool = False) -> Iterator[None]:
        """The one place a ccxt exception raised by a call becomes ordergate's error.

        :func:`translate`, and when the exchange refused our timestamp (-1021), measure the clock
        difference again, so the re-send of this signal is signed right. ``placing``: the call
        placed an order (see :func:`translate`). ``looking_up``: the call looked an order up, so
        the exchange's own "no such order" raises :class:`_Absent` and any other OrderNotFound
        is OrderOutcomeUnknown (never proof of absence).
        """
        try:
            yield
        except cx.OrderNotFound as exc:
            if not looking_up:
                raise self._failed(exc, placing=placing) from exc
            if self._no_such_order(exc):
                raise _Absent from exc
            raise OrderOutcomeUnknown(broker=self.name) from exc
        except cx.BaseError as exc:
            raise self._failed(exc, placing=placing) from exc

    def _failed(self, exc: BaseException, *, placing: bool = False) -> OrdergateError:
        if isinstance(exc, cx.InvalidNonce) or exchange_reason(exc)[0] == binance.CLOCK_SKEW:
            self.resync_clock()
        return translate(exc, exchange=self.exchange_id, placing=placing)

    def resync_clock(self) -> None:
        """Ask the exchange for its time and sign every later request by it (ccxt's
        ``timeDifference``). One request, only after a -1021, whose answer is a 503 anyway; done
        in the failing request rather than a thread left running, and one at a time."""
        if not self._resyncing.acquire(blocking=False):
            return
        self.clock_synced.clear()
        try:
            offset = self.exchange.load_time_difference()
            log.warning(
                "%s's clock differs from ours by %s ms: requests are now signed by its clock", self.name, offset
            )
        except Exception as exc:  # the next -1021 tries again
            log.warning("Could not read %s's time (%s); requests keep our clock", self.name, exc)
        finally:
            self._resyncing.release()
            self.clock_synced.set()

    @property
    def markets_ready(self) -> bool:
        """The exchange's markets are loaded (``/readyz``): until then every symbol is unknown."""
        return bool(self._markets)

    def market(self, symbol: str) -> Market | None:
        if not self._markets:
            self._load_missing_markets()
        return self._markets.get(symbol.upper())

    def _load_missing_markets(self) -> None:
        """No markets yet (the exchange was down at startup): a signal tries loading them itself,
        at most every few seconds, so TradingView's re-send after our 503 can be placed."""
        if self._markets_loading.acquire(blocking=False):
            try:
                if self.clock() - self._markets_tried >= MARKETS_RETRY_S:
                    self._markets_tried = self.clock()
                    self.refresh_markets(attempts=1)
            except OrdergateError as exc:
                log.warning("Markets for %s still not loaded: %s", self.name, exc)
            finally:
                self._markets_loading.release()
        if not self._markets:
            raise BrokerUnavailable(f"Markets for {self.name} are not loaded yet", broker=self.name)

    def price(self, symbol: str) -> Decimal:
        """The last price: a recent one from the cache (no round trip), else the symbol's ticker."""
        cached = self._tickers.get(symbol)
        if cached is not None and time.monotonic() - cached.at < self._ticker_ttl:
            return Decimal(cached.value)
        market = self._market_or_reject(symbol)
        asked = time.monotonic()
        ticker = self._read(lambda: self.exchange.fetch_ticker(market.broker_symbol))
        last = binance.ticker_price(ticker)
        if last <= 0:
            raise BrokerUnavailable(f"No price for {symbol} from {self.exchange_id}", broker=self.name)
        self._tickers[symbol] = _Cached(last, asked)
        return last

    def refresh_prices(self, attempts: int = 3) -> None:
        """Read every symbol's last price in one request (ccxt ``fetch_last_prices``: Binance spot
        ``GET /api/v3/ticker/price``, weight 4; USD-M ``GET /fapi/v2/ticker/price``, weight 2)."""
        asked = time.monotonic()  # a price is as old as the request that asked for it
        with self._translated():
            raw = read_retry(lambda: self.exchange.fetch_last_prices(), _RETRYABLE, attempts=attempts)
        self._tickers.update({symbol: _Cached(last, asked) for symbol, last in binance.last_prices(raw).items()})

    def note_price(self, symbol: str, price: Decimal) -> None:
        """Remember a price the exchange just traded at (a fill) so the next signal needs no ticker.

        Only exchange prices belong here: a signal's price hint is what the checks compare
        against these, so it must never become one of them.
        """
        self._tickers[symbol] = _Cached(price, time.monotonic())

    def leverage(self, symbol: str) -> Decimal:
        return Decimal(self._leverage or 1) if self.market_type == "future" else Decimal(1)

    def free_balance(self, asset: str) -> Decimal:
        with self._lock:
            cached = self._balance
            if cached is None or time.monotonic() - cached.at >= self._balance_ttl:
                cached = self._balance = _Cached(self._fetch_free(), time.monotonic())
            free: dict[str, Decimal] = cached.value
            return free.get(asset.upper(), ZERO)

    def market_order_limit(self, symbol: str, side: str) -> Decimal | None:
        return None  # MARKET orders go out as MARKET orders

    def forget_balance(self) -> None:
        """Read the balance afresh on the next check: an order may have moved it unseen."""
        with self._lock:
            self._balance = None

    def refresh_balance(self, attempts: int = 3) -> None:
        """Read the account's free balances now (the background refresh and startup use this)."""
        fresh = _Cached(self._fetch_free(attempts), time.monotonic())
        with self._lock:
            self._balance = fresh

    def _fetch_free(self, attempts: int = 3) -> dict[str, Decimal]:
        with self._translated():
            balance = read_retry(self.exchange.fetch_balance, _RETRYABLE, attempts=attempts)
        return binance.free_balances(balance, self.market_type)

    def order_params(self, order: Order, market: Market) -> dict[str, Any]:
        return binance_params(order, market.symbol)

    def find_order(self, client_order_id: str, symbol: str) -> Placement | None:
        """The order with ``client_order_id``; None only on the exchange's own "no such order".

        Anything else raises: a look-up that failed (network, 5xx, -1021, a rate limit, keys, an
        answer about no order or another order) is never proof of absence, which would re-send.
        """
        market = self._market_or_reject(symbol)
        try:
            with self._translated(looking_up=True):
                raw = read_retry(
                    lambda: self.exchange.fetch_order(None, market.broker_symbol, {"clientOrderId": client_order_id}),
                    _RETRYABLE,
                    attempts=self._lookup_attempts,
                )
        except _Absent:
            return None
        try:
            placement = self._placement(raw, market, client_order_id)
        except Exception as exc:  # an answer we cannot read says nothing about the order
            raise OrderOutcomeUnknown(broker=self.name) from exc
        if not placement.order_id or placement.client_order_id != client_order_id:
            log.warning("Order %s: the look-up answered no order or another one", client_order_id)
            raise OrderOutcomeUnknown(broker=self.name)
        return placement

    def _no_such_order(self, exc: cx.OrderNotFound) -> bool:
        """Binance says an order is absent with -2013 "Order does not exist." (spot and USD-M).
        ccxt maps -2011 (a cancel's "Unknown order sent.") to OrderNotFound too, on every host:
        only -2013 counts. Other exchanges: ccxt's own OrderNotFound mapping."""
        if not self.exchange_id.startswith("binance"):
            return True
        code, _ = exchange_reason(exc)
        return code == binance.ABSENT

    # -- placement ----------------------------------------------------------------------------

    def place_order(self, order: Order, market: Market) -> Placement:
        if self.market_type == "future":
            self._configure(market)
        try:
            placement = self._create(order, market)
        except OrderOutcomeUnknown:
            try:
                placement = self._recover(order, market)
            except OrderOutcomeUnknown:
                self.forget_balance()  # the order may have executed: never check against the old balance
                raise
        self._after_fill(placement, market, reduce_only=order.reduce_only)
        return placement

    def _create(self, order: Order, market: Market) -> Placement:
        params: dict[str, Any] = {"clientOrderId": order.client_order_id}
        if order.reduce_only and self.market_type == "future":
            params["reduceOnly"] = True
        with self._translated(placing=True):
            raw = self.exchange.create_order(
                market.broker_symbol,
                order.type.lower(),
                order.side,
                plain(order.quantity),
                # A spot market order with a price becomes quoteOrderQty in ccxt: never send one.
                plain(order.price) if order.price is not None and order.type == "LIMIT" else None,
                params,
            )
        return self._placement(raw, market, order.client_order_id)

    def _recover(self, order: Order, market: Market) -> Placement:
        """The placement may have reached the exchange: look it up; re-send only if absent.

        Absent means absent twice, a moment apart: an order the exchange is still executing
        may not show at once, and a filled market order's client id is free again on Binance,
        so re-sending too early could place it twice.
        """
        log.warning("Order %s: outcome unknown, looking it up by client order id", order.client_order_id)
        for _ in range(2):
            found = self._look_up(order, market)
            if found is not None:
                log.info("Order %s found at the exchange: %s", order.client_order_id, found.status)
                return found
        log.warning("Order %s is not at the exchange: sending it once more", order.client_order_id)
        try:
            return self._create(order, market)
        except OrderOutcomeUnknown:
            found = self._look_up(order, market)
            if found is not None:
                return found
            raise
        except Rejection as refused:
            cause = refused.__cause__
            if cause is None or not binance.duplicate(*exchange_reason(cause)):
                raise
            # The exchange has an order with this id after all (it showed late): find it; a
            # "duplicate" refusal is never the answer while that order may be live.
            found = self._look_up(order, market)
            if found is None:
                raise OrderOutcomeUnknown(broker=self.name) from refused
            return found

    def _look_up(self, order: Order, market: Market) -> Placement | None:
        """find_order after a lost answer: any failure, ours or the exchange's, is unknown."""
        time.sleep(self._lookup_delay)
        try:
            return self.find_order(order.client_order_id, market.symbol)
        except Exception as exc:
            log.warning("Order %s: look-up failed (%s)", order.client_order_id, type(exc).__name__)
            raise OrderOutcomeUnknown(broker=self.name) from exc

    def _configure(self, market: Market) -> None:
        """Set the route's leverage and margin mode on a futures symbol, once per process."""
        if market.symbol in self._configured or (self._leverage is None and self._margin_mode is None):
            return
        with self._translated():
            if self._margin_mode is not None:
                with contextlib.suppress(cx.MarginModeAlreadySet):
                    self.exchange.set_margin_mode(self._margin_mode, market.broker_symbol)
            if self._leverage is not None:
                self.exchange.set_leverage(self._leverage, market.broker_symbol)
        self._configured.add(market.symbol)

    def _after_fill(self, placement: Placement, market: Market, *, reduce_only: bool = False) -> None:
        """Keep the cached balance and price current from the fill, saving the next round trips."""
        if placement.average_price is not None and placement.average_price > 0:
            self.note_price(market.symbol, placement.average_price)
        with self._lock:
            cached = self._balance
            if cached is None or placement.filled <= 0:
                return
            free: dict[str, Decimal] = dict(cached.value)
            if self.market_type == "future" and reduce_only:
                self._balance = None  # released margin depends on the entry price: read it afresh
                return
            price = placement.average_price or placement.price or ZERO
            leverage = self.leverage(market.symbol)
            spent, amount = required_funds(market, placement.side, placement.filled, price, leverage)
            free[spent] = free.get(spent, ZERO) - amount
            if self.market_type != "future":  # spot: what the fill bought or the sale brought in
                cost = placement.filled * price
                got, received = (market.base, placement.filled) if spent == market.quote else (market.quote, cost)
                free[got] = free.get(got, ZERO) + received
            self._balance = _Cached(free, cached.at)

    def _placement(self, raw: dict[str, Any], market: Market, client_order_id: str) -> Placement:
        return binance.placement_of(raw, market, client_order_id, self.name)

    def _market_or_reject(self, symbol: str) -> Market:
        market = self.market(symbol)
        if market is None:
            raise Rejection(INVALID_SYMBOL, code="symbol_not_listed")
        return market
