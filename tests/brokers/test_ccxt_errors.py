"""Every ccxt exception has a translation, and the translation keeps the seed's words."""

from __future__ import annotations

import inspect

import pytest
from ccxt.base import errors as cx

from ordergate.brokers.ccxt import exchange_reason, translate
from ordergate.pipeline.errors import (
    BrokerAuthError,
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
    status = error.status
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
    assert translate(cx.InsufficientFunds("x"), placing=True).status == 422
    assert translate(cx.AuthenticationError("x")).status == 422
    assert translate(cx.DDoSProtection("x")).status == 503
    assert translate(cx.RequestTimeout("x"), placing=True).status == 202


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
