"""Whose money an endpoint trades: the host an order goes to decides, not a ``testnet`` flag.

``api_url`` rewrites every host of a broker, so a flag like ``testnet: true`` says nothing
about where orders end up. Every adapter asks :func:`money_of` with the URLs it will actually
send orders to, and the answer feeds the live guard (``ORDERGATE_ENV=live`` and
``LIVE_TRADING=yes``) and the startup summary.

The order of the rules matters, and errs towards real money:

1. loopback (``localhost``, 127.0.0.0/8, ``::1``): a test exchange of your own -> test money;
2. a known production host (Binance's, FlatTrade's, or the adapter's own production list) -> real money,
   whatever the broker's flags say;
3. a known test host (Binance's spot testnet, futures testnet and demo trading hosts, or the
   adapter's own test list) -> test money;
4. any other host -> real money, unless the YAML marks the broker ``sandbox: true``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Literal
from urllib.parse import urlsplit

Money = Literal["paper", "test", "live"]
HostKind = Literal["loopback", "production", "test", "unknown"]

# ccxt 4.5.90's binance urls['test'] and urls['demo'], and Binance's documented test servers.
BINANCE_TEST_HOSTS = frozenset(
    {
        "testnet.binance.vision",  # spot testnet
        "testnet.binancefuture.com",  # USD-M / COIN-M futures testnet
        "demo-api.binance.com",  # demo trading: spot
        "demo-fapi.binance.com",  # demo trading: USD-M futures
        "demo-dapi.binance.com",  # demo trading: COIN-M futures
    }
)
# Test domains as a whole: every host under them is a test server (e.g. api1.testnet.binance.vision).
_TEST_DOMAINS = ("testnet.binance.vision", "binancefuture.com")
# Production domains: Binance's (api.binance.com, api1-4, api-gcp, fapi, dapi, eapi, papi,
# binance.us, ...) and FlatTrade's (piconnect.flattrade.in). Anything under them that is not a
# test host trades real money.
_PRODUCTION_DOMAINS = ("binance.com", "binance.us", "binance.vision", "binance.me", "flattrade.in")


def _under(host: str, domain: str) -> bool:
    return host == domain or host.endswith("." + domain)


def normalize_host(host: str) -> str:
    """Lower-case, without the brackets of an IPv6 literal or a trailing dot."""
    return host.strip().lower().strip("[]").rstrip(".")


def is_loopback(host: str) -> bool:
    """``localhost``, 127.0.0.0/8 or ``::1`` (also as an IPv4-mapped address)."""
    host = normalize_host(host)
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def host_kind(host: str, *, production: Iterable[str] = (), test: Iterable[str] = ()) -> HostKind:
    """Classify one host; ``production`` and ``test`` add an adapter's own known hosts."""
    host = normalize_host(host)
    if not host:
        return "unknown"
    if is_loopback(host):
        return "loopback"
    # Binance's demo hosts live under binance.com, so its test hosts are named before its domains.
    if host in BINANCE_TEST_HOSTS or any(_under(host, d) for d in _TEST_DOMAINS):
        return "test"
    if host.startswith("demo-") and _under(host, "binance.com"):
        return "test"
    if any(_under(host, d) for d in _PRODUCTION_DOMAINS):
        return "production"
    if host in {normalize_host(h) for h in production}:
        return "production"
    if host in {normalize_host(h) for h in test}:
        return "test"
    return "unknown"


def url_host(url: str) -> str:
    """The host of ``url``; empty when there is none (``fapi.binance.com`` without a scheme)."""
    try:
        return urlsplit(url.strip()).hostname or ""
    except ValueError:
        return ""


def money_of(
    urls: Iterable[str], *, sandbox: bool = False, production: Iterable[str] = (), test: Iterable[str] = ()
) -> Money:
    """Whose money orders sent to ``urls`` trade: ``live`` if any of them may be real money.

    ``sandbox: true`` vouches only for hosts nobody knows; it never turns a known production
    host into a test one. No URL, or one without a host, is real money too: there is nothing
    to vouch for.
    """
    production, test = tuple(production), tuple(test)
    hosts = [url_host(url) for url in urls]
    if not hosts or not all(hosts):  # a URL without a host cannot be told apart: real money
        return "live"
    kinds = [host_kind(host, production=production, test=test) for host in hosts]
    if "production" in kinds:
        return "live"
    if "unknown" in kinds and not sandbox:
        return "live"
    return "test"


def describe(money: Money) -> str:
    """The words startup prints for a route's money."""
    return {"paper": "paper", "test": "test money", "live": "REAL MONEY"}[money]
