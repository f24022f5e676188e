"""Every ccxt exception has a translation, and the translation keeps the seed's words."""

from __future__ import annotations

import inspect

import pytest
from ccxt.base import errors as cx

from ordergate.answers import status_of
from ordergate.brokers.ccxt import exchange_reason, translate
from ordergate.pipeline.errors import (
    BrokerAuthError,
    BrokerError,
    BrokerUnavailable,
    OrdergateError,
    OrderOutcomeUnknown,
    Rejection,
)

CCXT_ERRORS = sorted(
    (cls for _, cls in inspect.getmembers(cx, inspect.isclass) if issubclass(cls, cx.BaseError)),
    key=lambda cls: cls.__name__,
)


def test_ccxt_still_has_the_classes_we_rely_on() -> None:
    names = {cls.__name__ for cls in CCXT_ERRORS}
    assert len(CCXT_ERRORS) >= 40
    assert {"InsufficientFunds", "BadSymbol", "AuthenticationError", "RequestTimeout", "DDoSProtection"} <= names


@pytest.mark.parametrize("cls", CCXT_ERRORS, ids=lambda cls: cls.__name__)
@pytest.mark.parametrize("placing", [False, True], ids=["read", "placing"])
def test_every_ccxt_error_maps_to_an_ordergate_error(cls: type[Exception], placing: bool) -> None:
    error = translate(cls('binance {"code":-9999,"msg":"Something new."}'), exchange="binance", placing=placing)
    assert isinstance(error, OrdergateError)
    status = status_of(error)
    assert status < 500 or not placing or isinstance(error, BrokerUnavailable)
    if isinstance(error, BrokerUnavailable) and placing:
        # 503 during placement only when the exchange refused before executing
        assert issubclass(cls, (cx.DDoSProtection, cx.RateLimitExceeded, cx.InvalidNonce))


@pytest.mark.parametrize(
    ("exc", "placing", "kind", "words"),
    [
        # the seed's four words, from Binance's real error bodies
        (
            cx.InsufficientFunds(
                'binance {"code":-2010,"msg":"Account has insufficient balance for requested action."}'
            ),
            True,
            Rejection,
            "Insufficient balance",
        ),
        (
            cx.InsufficientFunds('binance {"code":-2019,"msg":"Margin is insufficient."}'),
            True,
            Rejection,
            "Insufficient balance",
        ),
        (cx.BadSymbol('binance {"code":-1121,"msg":"Invalid symbol."}'), True, Rejection, "Invalid symbol"),
        (
            cx.BadRequest('binance {"code":-1013,"msg":"Filter failure: NOTIONAL"}'),
            True,
            Rejection,
            "Order size too small",
        ),
        (
            cx.BadRequest('binance {"code":-1013,"msg":"Filter failure: MIN_NOTIONAL"}'),
            True,
            Rejection,
            "Order size too small",
        ),
        (
            cx.InvalidOrder(
                'binance {"code":-4164,"msg":"Order\'s notional must be no smaller than 5 '
                '(unless you choose reduce only)."}'
            ),
            True,
            Rejection,
            "Order size too small",
        ),
        (
            cx.InvalidOrder('binance {"code":-1013,"msg":"Filter failure: LOT_SIZE"}'),
            True,
            Rejection,
            "Invalid quantity precision",
        ),
        (
            cx.BadRequest('binance {"code":-1111,"msg":"Parameter \'quantity\' has too much precision."}'),
            True,
            Rejection,
            "Invalid quantity precision",
        ),
        # the operator's problems
        (
            cx.AuthenticationError('binance {"code":-2015,"msg":"Invalid API-key, IP, or permissions for action."}'),
            True,
            BrokerAuthError,
            "Unauthorized API key",
        ),
        (cx.PermissionDenied("binance permission"), False, BrokerAuthError, "Unauthorized API key"),
        # refused before execution: safe to retry, 503
        (
            cx.DDoSProtection('binance 429 {"code":-1003,"msg":"Too many requests."}'),
            True,
            BrokerUnavailable,
            "Binance rate limit reached: try again shortly",
        ),
        (
            cx.InvalidNonce('binance {"code":-1021,"msg":"Timestamp for this request is outside of the recvWindow."}'),
            True,
            BrokerUnavailable,
            "Binance refused the request timestamp (server clock skew)",
        ),
        # the order may exist: never 5xx
        (
            cx.RequestTimeout("binance POST https://testnet.binance.vision/api/v3/order timed out"),
            True,
            OrderOutcomeUnknown,
            "Order status unknown: it is being checked with the broker",
        ),
        (
            cx.RequestTimeout(
                'binance {"code":-1007,"msg":"Timeout waiting for response from backend server. '
                'Send status unknown; execution status unknown."}'
            ),
            True,
            OrderOutcomeUnknown,
            "Order status unknown: it is being checked with the broker",
        ),
        (
            cx.ExchangeNotAvailable("binance 502 Bad Gateway"),
            True,
            OrderOutcomeUnknown,
            "Order status unknown: it is being checked with the broker",
        ),
        # the same network failures on a read: no order can exist yet
        (
            cx.RequestTimeout("binance GET /api/v3/ticker/24hr timed out"),
            False,
            BrokerUnavailable,
            "Binance did not answer: try again shortly",
        ),
        (cx.ExchangeNotAvailable("binance 503"), False, BrokerUnavailable, "Binance is unavailable: try again shortly"),
        # anything else the exchange says, in its own words (no library internals)
        (
            cx.InvalidOrder('binance {"code":-2010,"msg":"Duplicate order sent."}'),
            True,
            Rejection,
            "Rejected by Binance: Duplicate order sent. (-2010)",
        ),
        (
            cx.BadRequest('binance {"code":-1013,"msg":"Filter failure: PERCENT_PRICE_BY_SIDE"}'),
            True,
            Rejection,
            "Rejected by Binance: Filter failure: PERCENT_PRICE_BY_SIDE (-1013)",
        ),
    ],
)
def test_translation_words(exc: Exception, placing: bool, kind: type[OrdergateError], words: str) -> None:
    error = translate(exc, exchange="binance", placing=placing)
    assert type(error) is kind
    assert str(error) == words


def test_status_codes_of_the_translations() -> None:
    assert status_of(translate(cx.InsufficientFunds("x"), placing=True)) == 422
    assert status_of(translate(cx.AuthenticationError("x"))) == 422
    assert status_of(translate(cx.DDoSProtection("x"))) == 503
    assert status_of(translate(cx.RequestTimeout("x"), placing=True)) == 202


def test_exchange_reason_reads_binance_bodies_and_nothing_else() -> None:
    assert exchange_reason(cx.BadRequest('binance {"code":-1013,"msg":"Filter failure: NOTIONAL"}')) == (
        -1013,
        "Filter failure: NOTIONAL",
    )
    code, message = exchange_reason(
        cx.NetworkError("binance GET https://x/api\nTraceback (most recent call last): ...")
    )
    assert code is None
    assert "Traceback" not in message


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ('{"code":-2019,"msg":"Margin is insufficient."}', "Insufficient balance"),
        ('{"code":-2010,"msg":"Account has insufficient balance for requested action."}', "Insufficient balance"),
        (
            '{"code":-4164,"msg":"Order\'s notional must be no smaller than 5.0 (unless you choose reduce only)"}',
            "Order size too small",
        ),
        ('{"code":-1013,"msg":"Filter failure: NOTIONAL"}', "Order size too small"),
        ('{"code":-1013,"msg":"Filter failure: LOT_SIZE"}', "Invalid quantity precision"),
        ('{"code":-1111,"msg":"Precision is over the maximum defined for this asset."}', "Invalid quantity precision"),
        ('{"code":-1121,"msg":"Invalid symbol."}', "Invalid symbol"),
        ('{"code":-2015,"msg":"Invalid API-key, IP, or permissions for action."}', "Unauthorized API key"),
    ],
)
def test_binance_codes_decide_even_as_a_bare_exchange_error(body: str, words: str) -> None:
    # Behind api_url (not a Binance host) ccxt skips its per-market tables: only the code is left.
    assert str(translate(cx.ExchangeError(f"binance {body}"), exchange="binance", placing=True)) == words


# -- exact outcomes: type, words, machine code and broker -----------------------------------

Outcome = tuple[str, str, str | None, str | None, int]


def _outcome(error: OrdergateError) -> tuple[str, str, str | None, str | None, int]:
    """What the answer is made of: class, the trader's words, the stable code, the broker."""
    if isinstance(error, Rejection):
        return type(error).__name__, error.reason, error.code, None, status_of(error)
    assert isinstance(error, BrokerError)
    return type(error).__name__, error.message, None, error.broker, status_of(error)


def _binance(code: int, msg: str) -> str:
    return f'binance {{"code":{code},"msg":"{msg}"}}'


TOO_SMALL = ("Rejection", "Order size too small", "below_min_notional", None, 422)
PRECISION = ("Rejection", "Invalid quantity precision", "precision", None, 422)
BALANCE = ("Rejection", "Insufficient balance", "insufficient_balance", None, 422)
SYMBOL = ("Rejection", "Invalid symbol", "symbol_not_listed", None, 422)
AUTH = ("BrokerAuthError", "Unauthorized API key", None, "bn", 422)
UNKNOWN = ("OrderOutcomeUnknown", "Order status unknown: it is being checked with the broker", None, "bn", 202)


def _unavailable(words: str) -> tuple[str, str, None, str, int]:
    return "BrokerUnavailable", f"Bn {words}", None, "bn", 503


def _rejected(words: str) -> tuple[str, str, str, None, int]:
    return "Rejection", f"Rejected by Bn: {words}", "exchange_rejected", None, 422


# Binance's codes on a bare ExchangeError (ccxt's tables skipped behind api_url): the code and,
# for the shared -2010 / -1013, the message decide. Near misses (a neighbouring code, the other
# message) must fall through to the exchange's own words.
BY_CODE = [
    (-2018, "Balance is insufficient.", True, BALANCE),
    (-2019, "Margin is insufficient.", True, BALANCE),
    (-2010, "Account has INSUFFICIENT balance for requested action.", True, BALANCE),
    (
        -2010,
        "Order would immediately match and take.",
        True,
        _rejected("Order would immediately match and take. (-2010)"),
    ),
    (2018, "Balance is insufficient.", True, _rejected("Balance is insufficient. (2018)")),
    (-2017, "Balance is insufficient.", True, _rejected("Balance is insufficient. (-2017)")),
    (-2020, "Margin is insufficient.", True, _rejected("Margin is insufficient. (-2020)")),
    (-2011, "insufficient", True, _rejected("insufficient (-2011)")),
    (-1121, "Invalid symbol.", True, SYMBOL),
    (-1122, "Invalid symbol status.", True, _rejected("Invalid symbol status. (-1122)")),
    (-4164, "Order's notional must be at least 5.", True, TOO_SMALL),
    (-4164, "x", False, TOO_SMALL),
    (-4165, "x", True, _rejected("x (-4165)")),
    (-1013, "Filter failure: Notional", True, TOO_SMALL),
    (-1014, "notional", True, _rejected("notional (-1014)")),
    (-1111, "Precision is wrong.", True, PRECISION),
    (-1112, "x", True, _rejected("x (-1112)")),
    (-1013, "Filter failure: lot_size", True, PRECISION),
    (-1013, "Filter failure: Lot_Size", True, PRECISION),
    (-1014, "lot_size", True, _rejected("lot_size (-1014)")),
    (-1013, "Filter failure: PRICE_FILTER", True, _rejected("Filter failure: PRICE_FILTER (-1013)")),
    (-1002, "You are not authorized to execute this request.", True, AUTH),
    (-1022, "Signature for this request is not valid.", False, AUTH),
    (-2014, "API-key format invalid.", True, AUTH),
    (-2015, "Invalid API-key, IP, or permissions for action.", False, AUTH),
    (-2016, "x", True, _rejected("x (-2016)")),
    (-1003, "Too many requests.", True, _unavailable("rate limit reached: try again shortly")),
    (-1015, "Too many new orders.", False, _unavailable("rate limit reached: try again shortly")),
    (-1008, "Server is currently overloaded.", True, _unavailable("is overloaded: try again shortly")),
    (-1021, "Timestamp outside recvWindow.", True, _unavailable("refused the request timestamp (server clock skew)")),
    (-1007, "Timeout waiting for response.", True, UNKNOWN),
    (-1007, "Timeout waiting for response.", False, _unavailable("did not answer: try again shortly")),
    (-1006, "Unexpected response.", True, _rejected("Unexpected response. (-1006)")),
    # the sign counts: a positive twin of a known code is an unknown code
    (4164, "x", True, _rejected("x (4164)")),
    (1111, "x", True, _rejected("x (1111)")),
    (1013, "Filter failure: NOTIONAL", True, TOO_SMALL),  # by its words, not its code
]


@pytest.mark.parametrize(
    ("code", "msg", "outcome"),
    [
        (-4164, "Order's notional must be at least 5.", TOO_SMALL),
        (-1111, "Precision is wrong.", PRECISION),
        (-2019, "Margin is insufficient.", BALANCE),
        (-1121, "Invalid symbol.", SYMBOL),
        (-2015, "Invalid API-key.", AUTH),
    ],
)
@pytest.mark.parametrize("cls", [cx.OperationFailed, cx.InsufficientFunds, cx.BadSymbol, cx.NetworkError])
def test_binance_code_decides_over_ccxt_s_class(cls: type[Exception], code: int, msg: str, outcome: Outcome) -> None:
    # ccxt's class for a code can be wrong behind api_url or change between versions: the code wins
    assert _outcome(translate(cls(_binance(code, msg)), exchange="bn", placing=True)) == outcome


@pytest.mark.parametrize(("code", "msg", "placing", "outcome"), BY_CODE)
def test_binance_code_table(code: int, msg: str, placing: bool, outcome: Outcome) -> None:
    assert _outcome(translate(cx.ExchangeError(_binance(code, msg)), exchange="bn", placing=placing)) == outcome


CLASS_TABLE = [
    # ccxt's class decides when no Binance code came with it
    (cx.InsufficientFunds("bn no money"), True, BALANCE),
    (cx.BadSymbol("bn no such market"), True, SYMBOL),
    (cx.AuthenticationError("bn bad key"), True, AUTH),
    (cx.PermissionDenied("bn"), False, AUTH),
    (cx.AccountSuspended("bn"), True, AUTH),
    (cx.DDoSProtection("bn 429"), True, _unavailable("rate limit reached: try again shortly")),
    (cx.RateLimitExceeded("bn 429"), False, _unavailable("rate limit reached: try again shortly")),
    (cx.InvalidNonce("bn nonce"), True, _unavailable("refused the request timestamp (server clock skew)")),
    (cx.OnMaintenance("bn"), False, _unavailable("is unavailable: try again shortly")),
    (cx.OnMaintenance("bn"), True, UNKNOWN),
    (cx.ExchangeNotAvailable("bn 503"), False, _unavailable("is unavailable: try again shortly")),
    (cx.RequestTimeout("bn"), True, UNKNOWN),
    (cx.RequestTimeout("bn"), False, _unavailable("did not answer: try again shortly")),
    (cx.NetworkError("bn"), False, _unavailable("did not answer: try again shortly")),
    (cx.BadResponse("bn garbled"), True, UNKNOWN),
    (cx.BadResponse("bn garbled"), False, _unavailable("did not answer: try again shortly")),
    (cx.OperationFailed("bn"), True, UNKNOWN),
    (cx.OperationFailed("bn"), False, _unavailable("failed: try again shortly")),
    # the exchange's words, with and without a code
    (cx.InvalidOrder("bn Filter failure: MIN_NOTIONAL"), True, TOO_SMALL),
    (cx.InvalidOrder("bn Order's notional must be no smaller than 5"), True, TOO_SMALL),
    (cx.InvalidOrder("bn rejected -4164"), True, TOO_SMALL),
    (cx.InvalidOrder("bn Filter failure: MARKET_LOT_SIZE"), True, PRECISION),
    (cx.InvalidOrder("bn quantity has too much precision"), True, PRECISION),
    (cx.InvalidOrder("bn quantity precision is over the maximum defined"), True, PRECISION),
    (cx.BadRequest("bn something else"), True, _rejected("bn something else")),
    (cx.OperationRejected("bn refused"), False, _rejected("bn refused")),
    (cx.OrderNotFound("bn gone"), False, ("Rejection", "Order not found", "order_not_found", None, 422)),
    # OrderNotFound is never read by Binance's code table, whatever code it carries
    (
        cx.OrderNotFound(_binance(-1121, "Invalid symbol.")),
        True,
        ("Rejection", "Order not found", "order_not_found", None, 422),
    ),
    (
        cx.OrderNotFound(_binance(-2015, "Invalid API-key.")),
        True,
        ("Rejection", "Order not found", "order_not_found", None, 422),
    ),
    (cx.InsufficientFunds(_binance(-9999, "New words.")), True, BALANCE),
    (cx.InvalidOrder(_binance(-9999, "New words.")), True, _rejected("New words. (-9999)")),
]


@pytest.mark.parametrize(("exc", "placing", "outcome"), CLASS_TABLE, ids=lambda v: repr(v)[:60])
def test_ccxt_class_table(exc: Exception, placing: bool, outcome: Outcome) -> None:
    assert _outcome(translate(exc, exchange="bn", placing=placing)) == outcome


def test_default_exchange_name() -> None:
    error = translate(cx.RequestTimeout("x"))
    assert (type(error), str(error), getattr(error, "broker", None)) == (
        BrokerUnavailable,
        "Exchange did not answer: try again shortly",
        "exchange",
    )


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (_binance(-1013, "Filter failure: NOTIONAL"), (-1013, "Filter failure: NOTIONAL")),
        ('binance 400 { "code" : 42 , "msg" : "spaced" }', (42, "spaced")),
        ('binance {"code":-2010,"msg":"Order\\u0027s \\"quoted\\" words."}', (-2010, 'Order\'s "quoted" words.')),
        ('binance {"code":-1,"msg":"bad escape \\q kept"}', (-1, "bad escape \\q kept")),
        ('binance {"msg":"no code","code":-1}', (None, 'binance {"msg":"no code","code":-1}')),
        ("binance GET https://x/api\nTraceback (most recent call last): ...", (None, "binance GET https://x/api")),
        ("binance GET https://x/api\nTraceback\n  File ...", (None, "binance GET https://x/api")),
        ("x" * 200, (None, "x" * 160)),
        ("", (None, "")),
    ],
)
def test_exchange_reason(text: str, reason: tuple[int | None, str]) -> None:
    assert exchange_reason(cx.ExchangeError(text)) == reason
