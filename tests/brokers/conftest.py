"""Cassette settings for the exchange boundary (vcrpy through pytest-recording).

Replays need no network: pytest-recording's record mode defaults to ``none``. Keys and
signatures never reach a cassette, and matching ignores them: vcrpy applies these filters
both when recording and before matching a replayed request.
"""

from __future__ import annotations

import re
from typing import Any

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


@pytest.fixture(scope="module")
def vcr_config() -> dict[str, Any]:
    return {
        "before_record_request": scrub_body,
        "filter_headers": SECRET_HEADERS,
        "filter_query_parameters": SIGNED_PARAMS,
        "filter_post_data_parameters": SIGNED_PARAMS,
        "match_on": ["method", "path", "query"],
        "decode_compressed_response": True,
    }
