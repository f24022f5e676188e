"""Who may send signals: a shared secret, and optionally only TradingView's addresses.

TradingView cannot set headers, so the secret travels in the payload's ``passphrase`` field or
in the URL path (``/webhook/<secret>``); either is compared in constant time. The source
address allowlist honours ``X-Forwarded-For`` only when the connection comes from a
configured trusted proxy (on Railway, its edge), taking the nearest address not trusted.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable
from typing import Any

# TradingView's webhook source addresses (tradingview.com support article 43000529348).
TRADINGVIEW_IPS = ("52.89.214.238", "34.212.75.30", "54.218.53.128", "52.32.178.7")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _networks(entries: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(e.strip(), strict=False) for e in entries if e.strip())


class Gate:
    """Decides whether a request may send a signal."""

    def __init__(self, secret: str | None, allow_ips: Iterable[str] = (), trusted_proxies: Iterable[str] = ()) -> None:
        self._secret = (secret or "").encode()
        self.allow = _networks(allow_ips)
        self.proxies = _networks(trusted_proxies)

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

    def client_address(self, remote: str | None, forwarded_for: str | None) -> str | None:
        """The sender's address: behind a trusted proxy, the nearest untrusted X-Forwarded-For hop."""
        if remote is None or not forwarded_for or not self._trusted(remote):
            return remote
        for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
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
