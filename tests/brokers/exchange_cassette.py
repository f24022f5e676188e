"""A Binance exchange at any host, replayed by vcrpy from a cassette written by the test itself.

The bodies are those of ``responses/`` (see its SOURCES.md: Binance's recorded or documented
answers), built into a cassette, not recorded from these hosts. Balances and prices are set to
the paper twin's, so the same signal can be compared on paper and on the exchange. Every
request that reaches the transport is logged, including those no interaction answers (with
record mode ``none`` vcrpy refuses them), so a test can prove that nothing else was sent
(vcrpy filters a request several times while matching it, so a request repeated back to back
is logged once).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import vcr
import yaml

from tests.brokers.conftest import SECRET_HEADERS, SIGNED_PARAMS

RESPONSES = Path(__file__).parent / "responses"


def body(name: str) -> Any:
    return json.loads((RESPONSES / f"{name}.json").read_text())


def _interaction(method: str, uri: str, payload: Any) -> dict[str, Any]:
    return {
        "request": {"body": None, "headers": {}, "method": method, "uri": uri},
        "response": {
            "body": {"string": json.dumps(payload, separators=(",", ":"))},
            "headers": {"Content-Type": ["application/json;charset=UTF-8"]},
            "status": {"code": 200, "message": "OK"},
        },
    }


def _ticker(symbol: str, price: str) -> dict[str, Any]:
    return {**body("spot-ticker-24hr"), "symbol": symbol, "lastPrice": price, "bidPrice": price, "askPrice": price}


def binance_interactions(
    base: str,
    market_type: str,
    *,
    balances: Mapping[str, str] | None = None,
    prices: Mapping[str, str] | None = None,
    orders: bool = False,
    resting: bool = False,
    info: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Startup (markets, account), tickers for ``prices`` and, with ``orders``, an order answer:
    a filled one, or with ``resting`` a NEW one that changes no cached balance. ``info`` replaces
    the exchangeInfo body."""
    balances = balances or {"USDT": "10000"}
    prices = prices or {}
    if market_type == "future":
        root, order = f"{base}/fapi/v1", body("usdm-order-new" if resting else "usdm-order-filled")
        info = info or body("usdm-exchangeInfo")
        account = body("usdm-account")
        asset = account["assets"][0]
        account["assets"] = [
            {**asset, "asset": a, "availableBalance": v, "walletBalance": v, "marginBalance": v}
            for a, v in balances.items()
        ]
        startup = [
            _interaction("GET", f"{root}/exchangeInfo", info),
            _interaction("GET", f"{base}/fapi/v3/account", account),
        ]
        extra = [_interaction("POST", f"{root}/leverage", body("usdm-leverage"))]
        tickers = [f"{root}/ticker/24hr", f"{root}/ticker/price", f"{base}/fapi/v2/ticker/price"]
    else:
        root, order = f"{base}/api/v3", body("spot-order-new" if resting else "spot-order-full")
        info = info or body("spot-exchangeInfo")
        account = body("spot-account")
        account["balances"] = [{"asset": a, "free": v, "locked": "0"} for a, v in balances.items()]
        startup = [_interaction("GET", f"{root}/exchangeInfo", info), _interaction("GET", f"{root}/account", account)]
        extra = []
        tickers = [f"{root}/ticker/24hr", f"{root}/ticker/price"]
    every = [_ticker(s, p) for s, p in prices.items()]
    for uri in tickers:  # one symbol, or all of them in one request
        startup += [_interaction("GET", f"{uri}?symbol={t['symbol']}", t) for t in every]
        startup.append(_interaction("GET", uri, every))
    if orders:
        startup += [*extra, _interaction("POST", f"{root}/order", order)]
    return startup


@dataclass
class Sent:
    """Every request that reached the transport: method, URL without query, form or query fields."""

    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    listening: bool = False  # vcrpy filters the cassette's own interactions too, as it loads them

    def log(self, request: Any) -> Any:
        if not self.listening:
            return request
        url = urlsplit(request.uri)
        raw = request.body
        text = raw.decode() if isinstance(raw, bytes) else (raw or "")
        fields = dict(parse_qsl(url.query)) | dict(parse_qsl(text))
        for name in SIGNED_PARAMS:
            fields.pop(name, None)
        entry = (request.method, f"{url.scheme}://{url.netloc}{url.path}", fields)
        # vcrpy filters one request several times while matching it: log it once
        if not self.requests or self.requests[-1] != entry:
            self.requests.append(entry)
        return request

    def paths(self) -> list[str]:
        return [f"{method} {url}" for method, url, _ in self.requests]

    def orders(self) -> list[dict[str, str]]:
        return [fields for method, url, fields in self.requests if method == "POST" and url.endswith("/order")]


@contextmanager
def replayed(directory: Path, interactions: list[dict[str, Any]]) -> Iterator[Sent]:
    """Replay ``interactions`` (any number of times each) and refuse every other request."""
    path = directory / "exchange.yaml"
    path.write_text(yaml.safe_dump({"interactions": interactions, "version": 1}, sort_keys=True))
    sent = Sent()
    recorder = vcr.VCR(
        record_mode="none",
        match_on=["method", "scheme", "host", "port", "path", "query"],
        filter_headers=SECRET_HEADERS,
        filter_query_parameters=SIGNED_PARAMS,
        filter_post_data_parameters=SIGNED_PARAMS,
        before_record_request=sent.log,  # vcrpy runs it on every request before matching
    )
    with recorder.use_cassette(str(path), allow_playback_repeats=True):
        sent.listening = True
        yield sent
