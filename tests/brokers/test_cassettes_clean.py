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


def test_the_body_matcher_ignores_signing_and_tokens_and_names_what_differs() -> None:
    from vcr.request import Request

    from tests.brokers.conftest import order_params

    url = "https://testnet.binance.vision/api/v3/order"
    sent = Request("POST", url, "symbol=BTCUSDT&side=BUY&quantity=0.002&timestamp=1&signature=ab", {})
    same = Request("POST", url, "side=BUY&symbol=BTCUSDT&quantity=0.002&recvWindow=5000", {})
    order_params(sent, same)  # field order, signature, timestamp and recvWindow do not matter
    cassette = Request("POST", url, "symbol=BTCUSDT&side=BUY&quantity=0.001&newClientOrderId=og-1", {})
    with pytest.raises(AssertionError) as failed:
        order_params(sent, cassette)
    assert "quantity: sent '0.002', cassette '0.001'" in str(failed.value)
    assert "newClientOrderId: sent '<absent>', cassette 'og-1'" in str(failed.value)

    noren = "https://h/PiConnectAPI/PlaceOrder"
    placed = Request("POST", noren, 'jData={"qty":"10","prc":"1507.5"}&jKey=token-a', {})
    order_params(placed, Request("POST", noren, 'jData={"prc":"1507.5","qty":"10"}&jKey=<scrubbed>', {}))
    with pytest.raises(AssertionError, match=re.escape("prc: sent '1507.5', cassette '1508.5'")):
        order_params(placed, Request("POST", noren, 'jData={"qty":"10","prc":"1508.5"}&jKey=<scrubbed>', {}))
