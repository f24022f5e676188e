"""No cassette carries a key, a signature or a signed timestamp."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

CASSETTES = sorted((Path(__file__).parent / "cassettes").rglob("*.yaml"))
SIGNED = re.compile(r"(signature|timestamp|recvWindow)=", re.IGNORECASE)
JKEY = re.compile(r"jKey=([^&]*)")
LOGIN = re.compile(r'"(?:api_key|request_code|api_secret)"\s*:\s*"([^"]*)"')


def test_there_are_cassettes() -> None:
    assert len(CASSETTES) >= 5


@pytest.mark.parametrize("path", CASSETTES, ids=lambda p: str(p.relative_to(p.parents[1])))
def test_cassette_has_no_secrets(path: Path) -> None:
    data = yaml.safe_load(path.read_text())
    for interaction in data["interactions"]:
        request = interaction["request"]
        headers = {k.lower() for k in request.get("headers", {})}
        assert "x-mbx-apikey" not in headers
        assert "authorization" not in headers
        assert not SIGNED.search(request["uri"])
        assert not SIGNED.search(str(request.get("body") or ""))
        body = str(request.get("body") or "")
        # NorenOMS (FlatTrade): the session token rides in the body, the login secrets too
        assert all(key == "<scrubbed>" for key in JKEY.findall(body)), body[:80]
        assert all(value == "<scrubbed>" for value in LOGIN.findall(body)), body[:80]


def test_a_recording_scrubs_flattrade_tokens_and_login_secrets() -> None:
    from vcr.request import Request

    from tests.brokers.conftest import scrub_body

    placed = Request("POST", "https://h/PiConnectAPI/PlaceOrder", 'jData={"uid":"FT1"}&jKey=a1b2c3', {})
    assert scrub_body(placed).body == b'jData={"uid":"FT1"}&jKey=<scrubbed>'
    login = Request("POST", "https://h/trade/apitoken", '{"api_key": "k", "request_code": "c", "api_secret": "s"}', {})
    assert scrub_body(login).body == (
        b'{"api_key": "<scrubbed>", "request_code": "<scrubbed>", "api_secret": "<scrubbed>"}'
    )
