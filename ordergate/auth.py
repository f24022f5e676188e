"""Who may send signals: a shared secret, and optionally only TradingView's addresses.

TradingView cannot set headers, so the secret travels in the payload's ``passphrase`` field or
in the URL path (``/webhook/<secret>``); either is compared in constant time. The source
address allowlist honours a forwarding header (``X-Forwarded-For`` by default, or RFC 7239's
``Forwarded``, or ``X-Real-IP``: one, the one the proxy writes) only when the connection comes
from a configured trusted proxy (on Railway, its edge), taking the nearest address not trusted.
Only one header is read: a proxy that maintains one of them passes the others through as the
client sent them, so believing a second one would let the client choose its address.
"""

from __future__ import annotations

import hmac
import ipaddress
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

# TradingView's webhook source addresses (tradingview.com support article 43000529348).
TRADINGVIEW_IPS = ("52.89.214.238", "34.212.75.30", "54.218.53.128", "52.32.178.7")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """Addresses and networks; ``tradingview`` stands for TradingView's webhook addresses."""
    found: list[Network] = []
    for entry in (e.strip() for e in entries):
        names = TRADINGVIEW_IPS if entry.lower() == "tradingview" else (entry,) if entry else ()
        found.extend(ipaddress.ip_network(name, strict=False) for name in names)
    return tuple(found)


class Gate:
    """Decides whether a request may send a signal."""

    def __init__(
        self,
        secret: str | None,
        allow_ips: Iterable[str] = (),
        trusted_proxies: Iterable[str] = (),
        header: str = "x-forwarded-for",
    ) -> None:
        self._secret = (secret or "").encode()
        self.allow = _networks(allow_ips)
        self.proxies = _networks(trusted_proxies)
        self.header = header  # the forwarding header trusted proxies write

    @property
    def enabled(self) -> bool:
        return bool(self._secret)

    def secret_ok(self, payload: dict[str, Any], path_secret: str | None) -> bool:
        if not self._secret:
            return True
        given = path_secret if path_secret is not None else payload.get("passphrase")
        if not isinstance(given, str):
            return False
        return hmac.compare_digest(given.encode(), self._secret)

    def client_address(self, remote: str | None, forwarded: str | None) -> str | None:
        """The sender's address: behind a trusted proxy, the nearest untrusted hop of ``forwarded``
        (the value of :attr:`header`); a hop that is not an address (``unknown``, an obfuscated
        name) is not trusted either, and is refused by :meth:`address_ok`."""
        if remote is None or not forwarded or not self._trusted(remote):
            return remote
        for hop in reversed(hops(self.header, forwarded)):
            if not self._trusted(hop):
                return hop
        return remote

    def address_ok(self, address: str | None) -> bool:
        if not self.allow:
            return True
        try:
            ip = ipaddress.ip_address(address or "")
        except ValueError:
            return False
        return any(ip in net for net in self.allow)

    def _trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.proxies)


def hops(header: str, value: str) -> list[str]:
    """The addresses a forwarding header lists, the client first, the nearest proxy's peer last."""
    if header == "x-real-ip":
        return [_node_address(value.strip())]
    if header != "forwarded":  # some proxies write a port too: 52.89.214.238:51234, [2001:db8::1]:443
        return [_node_address(h.strip()) for h in value.split(",") if h.strip()]
    found = []
    for element in value.split(","):  # RFC 7239: for=192.0.2.60;proto=https, for="[2001:db8::1]:4711"
        node = "unknown"
        for pair in element.split(";"):
            name, _, given = pair.partition("=")
            if name.strip().lower() == "for":
                node = _node_address(given.strip().strip('"'))
        found.append(node)
    return found


def _node_address(node: str) -> str:
    """``192.0.2.43:47011`` -> ``192.0.2.43``; ``[2001:db8::1]:4711`` -> ``2001:db8::1``."""
    if node.startswith("["):
        return node[1:].partition("]")[0]
    if node.count(":") == 1:
        return node.partition(":")[0]
    return node


class RefusalBudget:
    """How many requests refused before any route (401s, unknown brokers) are journaled and
    logged one by one: ``per_minute``, as a token bucket. Beyond it they are only counted (the
    metrics still see each), and one line a minute says how many were left out, so a flood of
    bad requests can neither fill the disk nor push real signals out of the history and the log.
    """

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._tokens = float(per_minute)
        self._last = clock()
        self._left_out = 0
        self._since = self._last
        self._lock = threading.Lock()

    def allow(self) -> bool:
        """True when this refusal may be journaled and logged; False: count it only."""
        with self._lock:
            now = self.clock()
            self._tokens = min(float(self.per_minute), self._tokens + (now - self._last) * self.per_minute / 60)
            self._last = now
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            self._left_out += 1
            return False

    def left_out(self) -> tuple[int, float] | None:
        """Once a minute at most: how many refusals were left out, and over how many seconds."""
        with self._lock:
            now = self.clock()
            if not self._left_out or now - self._since < 60:
                return None
            report = (self._left_out, now - self._since)
            self._left_out, self._since = 0, now
            return report
