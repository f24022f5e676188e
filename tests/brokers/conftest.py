"""Cassette settings for the exchange boundary (vcrpy through pytest-recording).

Replays need no network: pytest-recording's record mode defaults to ``none``. Keys and
signatures never reach a cassette, and matching ignores them: vcrpy applies these filters
both when recording and before matching a replayed request.

A request matches a cassette's only when its order parameters match too (``order_params``):
Binance takes an order's symbol, side, quantity, price and client order id in the POST body,
NorenOMS its whole order in ``jData``, so matching on method, path and query alone would let
an adapter send a wrong quantity and still be answered.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

import pytest

SECRET_HEADERS = ["X-MBX-APIKEY", "Authorization"]
SIGNED_PARAMS = ["signature", "timestamp", "recvWindow"]


# NorenOMS (FlatTrade) carries its session token in the body: jData=<json>&jKey=<token>; the
# token exchange carries the API key, the login code and a hash of the secret.
_JKEY = re.compile(r"jKey=[^&]*")
_LOGIN = re.compile(r'"(api_key|request_code|api_secret)"\s*:\s*"[^"]*"')


def scrub_body(request: Any) -> Any:
    """Remove session tokens and login secrets from a request body before it is recorded."""
    body = request.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        body = _JKEY.sub("jKey=<scrubbed>", body)
        request.body = _LOGIN.sub(lambda m: f'"{m.group(1)}": "<scrubbed>"', body).encode()
    return request


def body_params(request: Any) -> dict[str, Any]:
    """The parameters a request carries in its body, without anything that signs or authenticates it.

    Binance: the form fields (``symbol=BTCUSDT&side=BUY&...``) minus signature, timestamp and
    recvWindow. NorenOMS: the ``jData`` JSON (its ``jKey`` is the session token). JSON bodies
    (FlatTrade's token exchange) as parsed. No body: no parameters.
    """
    body = request.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    text = str(body or "")
    if not text:
        return {}
    if text.startswith("jData="):
        data = text[len("jData=") :].rpartition("&jKey=")[0] if "&jKey=" in text else text[len("jData=") :]
        parsed: Any = json.loads(data)
        return parsed if isinstance(parsed, dict) else {"jData": parsed}
    if text.lstrip().startswith("{"):
        loaded: dict[str, Any] = json.loads(text)
        return loaded
    return {k: v for k, v in parse_qsl(text, keep_blank_values=True) if k not in SIGNED_PARAMS}


def order_params(sent: Any, recorded: Any) -> None:
    """vcrpy matcher: the body parameters of the request being made equal the cassette's.

    vcrpy calls matchers with the request being made first and the recorded one second, and
    shows an AssertionError's message when no interaction matches.
    """
    mine, theirs = body_params(sent), body_params(recorded)
    if mine == theirs:
        return
    lines = [f"{sent.method} {sent.path}: order parameters differ from the cassette's"]
    for key in sorted(set(mine) | set(theirs)):
        if mine.get(key, _ABSENT) != theirs.get(key, _ABSENT):
            lines.append(f"  {key}: sent {mine.get(key, _ABSENT)!r}, cassette {theirs.get(key, _ABSENT)!r}")
    raise AssertionError("\n".join(lines))


_ABSENT = "<absent>"


def pytest_recording_configure(config: Any, vcr: Any) -> None:
    """Register the body matcher with every cassette pytest-recording opens."""
    vcr.register_matcher("order_params", order_params)


@pytest.fixture(scope="module")
def vcr_config() -> dict[str, Any]:
    return {
        "before_record_request": scrub_body,
        "filter_headers": SECRET_HEADERS,
        "filter_query_parameters": SIGNED_PARAMS,
        "filter_post_data_parameters": SIGNED_PARAMS,
        "match_on": ["method", "path", "query", "order_params"],
        "decode_compressed_response": True,
    }
