"""Cassette settings for the exchange boundary (vcrpy through pytest-recording).

Replays need no network: pytest-recording's record mode defaults to ``none``. Keys and
signatures never reach a cassette, and matching ignores them: vcrpy applies these filters
both when recording and before matching a replayed request.
"""

from __future__ import annotations

from typing import Any

import pytest

SECRET_HEADERS = ["X-MBX-APIKEY", "Authorization"]
SIGNED_PARAMS = ["signature", "timestamp", "recvWindow"]


@pytest.fixture(scope="module")
def vcr_config() -> dict[str, Any]:
    return {
        "filter_headers": SECRET_HEADERS,
        "filter_query_parameters": SIGNED_PARAMS,
        "filter_post_data_parameters": SIGNED_PARAMS,
        "match_on": ["method", "path", "query"],
        "decode_compressed_response": True,
    }
