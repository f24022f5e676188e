"""Whose money a host trades: the pure classification behind the live guard."""

from __future__ import annotations

import pytest

from ordergate.brokers.endpoints import host_kind, is_loopback, money_of, url_host


@pytest.mark.parametrize(
    ("host", "kind"),
    [
        # Binance production: spot, its mirrors, futures, options, portfolio margin, binance.us
        ("api.binance.com", "production"),
        ("api1.binance.com", "production"),
        ("api4.binance.com", "production"),
        ("api-gcp.binance.com", "production"),
        ("fapi.binance.com", "production"),
        ("dapi.binance.com", "production"),
        ("eapi.binance.com", "production"),
        ("papi.binance.com", "production"),
        ("binance.com", "production"),
        ("FAPI.Binance.COM.", "production"),  # case and a trailing dot change nothing
        ("api.binance.us", "production"),
        ("data-api.binance.vision", "production"),
        ("piconnect.flattrade.in", "production"),
        # Binance test money: ccxt 4.5.90's urls['test'] and urls['demo'], and the testnet domains
        ("testnet.binance.vision", "test"),
        ("api1.testnet.binance.vision", "test"),
        ("testnet.binancefuture.com", "test"),
        ("demo-api.binance.com", "test"),
        ("demo-fapi.binance.com", "test"),
        ("demo-dapi.binance.com", "test"),
        # loopback: a test exchange of your own
        ("localhost", "loopback"),
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("[::1]", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        # nobody knows these
        ("binance-compatible.test", "unknown"),
        ("binance.com.evil.example", "unknown"),  # a suffix is not a subdomain
        ("notbinance.com", "unknown"),
        ("demo-fapi.binance.com.example", "unknown"),
        ("10.0.0.5", "unknown"),
        ("localhost.example", "unknown"),
        ("", "unknown"),
    ],
)
def test_host_kind(host: str, kind: str) -> None:
    assert host_kind(host) == kind


def test_an_adapters_own_hosts_count_and_production_wins() -> None:
    assert host_kind("api.bybit.com", production=["api.bybit.com"]) == "production"
    assert host_kind("api-testnet.bybit.com", test=["api-testnet.bybit.com"]) == "test"
    assert host_kind("both.example", production=["both.example"], test=["both.example"]) == "production"
    assert host_kind("demo-fapi.binance.com", production=["fapi.binance.com"]) == "test"


@pytest.mark.parametrize(
    ("urls", "sandbox", "money"),
    [
        (["https://api.binance.com/api/v3"], False, "live"),
        (["https://fapi.binance.com/fapi/v1"], True, "live"),  # sandbox never vouches for production
        (["https://testnet.binance.vision/api/v3", "https://testnet.binancefuture.com/fapi/v1"], False, "test"),
        (["https://demo-fapi.binance.com/fapi/v1"], False, "test"),
        (["http://127.0.0.1:8080/api/v3"], False, "test"),
        (["http://localhost:8080/fapi/v1"], False, "test"),
        (["http://[::1]:8080/api/v3"], False, "test"),
        (["https://binance-proxy.example.com/api/v3"], False, "live"),
        (["https://binance-proxy.example.com/api/v3"], True, "test"),
        # one real-money URL among test ones is enough: any of them may carry an order
        (["https://testnet.binance.vision/api/v3", "https://fapi.binance.com/fapi/v1"], False, "live"),
        (["http://127.0.0.1:8080/api/v3", "https://proxy.example/fapi"], False, "live"),
        (["http://127.0.0.1:8080/api/v3", "https://proxy.example/fapi"], True, "test"),
        (["fapi.binance.com/fapi/v1"], True, "live"),  # no scheme, no host: nothing to vouch for
        ([], True, "live"),
    ],
)
def test_money_of(urls: list[str], sandbox: bool, money: str) -> None:
    assert money_of(urls, sandbox=sandbox) == money


def test_url_host_and_loopback() -> None:
    assert url_host("https://fapi.binance.com:443/fapi/v1/order") == "fapi.binance.com"
    assert url_host("http://[::1]:9/x") == "::1"
    assert url_host("http://[::1") == ""  # malformed: unknown, so real money
    assert is_loopback("127.255.255.254")
    assert not is_loopback("128.0.0.1")
