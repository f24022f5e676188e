"""The server's edge, over real sockets against the server ``ordergate serve`` builds.

Oversized bodies are refused from their headers, slow clients cannot lock real signals out,
and forwarded addresses reach the allowlist from trusted proxies only. Every wait is bounded:
a server that buffers, queues or hangs fails on a socket timeout, not by hanging the run.
"""

from __future__ import annotations

import http.client
import json
import os
import resource
import select
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ordergate.app import create_app
from ordergate.auth import TRADINGVIEW_IPS
from ordergate.config import Settings, load_settings
from ordergate.pipeline.errors import ConfigError
from tests.conftest import CONFIG_DIR, SEED_ORDERS, LiveServer, serving

# The acceptance bound: TradingView gives up after 3 s; a real signal is answered within 1 s.
ANSWER_WITHIN_S = 1.0


@contextmanager
def started(settings: Settings, threads: int = 4) -> Iterator[LiveServer]:
    app = create_app(settings)
    try:
        with serving(app, threads=threads) as server:
            yield server
    finally:
        app.journal.close()


def read_answer(sock: socket.socket, timeout_s: float) -> tuple[int, dict[str, Any]]:
    """The status and JSON body of the one answer on ``sock``, or a timeout after ``timeout_s``."""
    sock.settimeout(timeout_s)
    response = http.client.HTTPResponse(sock)
    response.begin()
    body = response.read()
    return response.status, json.loads(body) if body else {}


def timed_request(
    server: LiveServer, method: str, path: str, body: str | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any], float]:
    """A request with the acceptance bound as its socket timeout, and how long its answer took."""
    started_at = time.monotonic()
    conn = http.client.HTTPConnection(server.host, server.port, timeout=ANSWER_WITHIN_S)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    return response.status, json.loads(data) if data else {}, time.monotonic() - started_at


def signal(signal_id: str) -> str:
    return json.dumps({**SEED_ORDERS[0], "id": signal_id})


def closed_by_server(sock: socket.socket) -> bool:
    """The server closed ``sock`` (an end of file or a reset is waiting), without blocking."""
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return False
    try:
        return sock.recv(65536) == b""
    except OSError:
        return True


def wait_until_closed(socks: list[socket.socket], within_s: float) -> list[socket.socket]:
    """Poll until the server has closed every socket or ``within_s`` passes; the ones still open."""
    open_ = list(socks)
    deadline = time.monotonic() + within_s
    while open_ and time.monotonic() < deadline:
        open_ = [s for s in open_ if not closed_by_server(s)]
        if open_:
            select.select(open_[:500], [], [], 0.1)  # wake on the next close, or in 0.1 s
    return open_


def spool_files(directory: Path) -> list[str]:
    """This process's open files in ``directory``: where waitress spools a body over 512 KB."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(directory)):
            found.append(target)
    return found


def rss_kb() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


# ---------------------------------------------------------------------------------------------
# 3. Bodies are refused before they are stored


@pytest.mark.parametrize(
    ("declared", "sent"),
    [(500_000_000, 4096), (64 * 1024 * 1024, 64 * 1024)],
    ids=["500MB-declared-4KB-sent", "64MiB-declared-64KiB-sent"],
)
def test_a_body_declared_too_large_is_refused_from_its_headers(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, declared: int, sent: int
) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))  # waitress's TemporaryFile spools land here
    limit = settings.data["server"]["max_body_bytes"]
    with started(settings) as server, socket.create_connection((server.host, server.port), timeout=5) as sock:
        rss_before = rss_kb()
        began = time.monotonic()
        sock.sendall(f"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: {declared}\r\n\r\n".encode())
        with suppress(OSError):  # the server may already have answered and closed
            sock.sendall(b"x" * sent)
        status, body = read_answer(sock, ANSWER_WITHIN_S)
        took = time.monotonic() - began
        print(
            f"\n{declared:,} bytes declared, {sent:,} sent: {status} after {took * 1000:.0f} ms;"
            f" spooled files {spool_files(spool)}, max RSS +{rss_kb() - rss_before} KB"
        )
        assert (status, body) == (413, {"success": False, "error": f"Body over {limit} bytes"})
        assert took < ANSWER_WITHIN_S
        assert spool_files(spool) == []
        assert list(spool.iterdir()) == []
        # and closed: no more of the body can arrive, so no more than ``sent`` was ever stored
        assert wait_until_closed([sock], 1.0) == []


def test_a_body_declared_too_large_with_expect_continue_gets_its_413_not_a_continue(settings: Settings) -> None:
    """curl and many HTTP libraries send ``Expect: 100-continue`` before a large body. waitress
    answered ``100 Continue`` and then, racing its own buffers, nothing at all."""
    limit = settings.data["server"]["max_body_bytes"]
    with started(settings) as server, socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(b"POST /webhook HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 99999999\r\n\r\n")
        status, body = read_answer(sock, ANSWER_WITHIN_S)
        assert (status, body["error"]) == (413, f"Body over {limit} bytes")
        assert wait_until_closed([sock], 1.0) == []
    with started(settings) as server, socket.create_connection((server.host, server.port), timeout=5) as sock:
        payload = signal("expect-continue-1").encode()
        head = f"POST /webhook HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: {len(payload)}\r\n\r\n"
        sock.sendall(head.encode())
        sock.settimeout(ANSWER_WITHIN_S)
        assert sock.recv(25) == b"HTTP/1.1 100 Continue\r\n\r\n"  # a body within the limit may come
        sock.sendall(payload)
        status, body = read_answer(sock, ANSWER_WITHIN_S)
        assert (status, body["success"]) == (200, True)


def test_a_chunked_body_is_refused_once_it_grows_past_the_limit(settings: Settings) -> None:
    limit = settings.data["server"]["max_body_bytes"]
    with started(settings) as server, socket.create_connection((server.host, server.port), timeout=5) as sock:
        began = time.monotonic()
        sock.sendall(b"POST /webhook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"x" * 8192
        with suppress(OSError):  # the server may already have answered and closed
            for _ in range(8):  # 64 KB in chunks, never the last chunk
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        status, body = read_answer(sock, ANSWER_WITHIN_S)
        assert (status, body["error"]) == (413, f"Body over {limit} bytes")
        assert time.monotonic() - began < ANSWER_WITHIN_S


def test_headers_over_16_kb_are_refused(settings: Settings) -> None:
    with started(settings) as server, socket.create_connection((server.host, server.port), timeout=5) as sock:
        with suppress(OSError):  # the server may already have answered and closed
            sock.sendall(b"POST /webhook HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: " + b"x" * 20_000 + b"\r\n")
        status, body = read_answer(sock, ANSWER_WITHIN_S)
    assert (status, body["success"]) == (431, False)
    assert body["error"].startswith("Request Header Fields Too Large")


def test_a_body_of_exactly_the_limit_still_passes(settings: Settings) -> None:
    limit = settings.data["server"]["max_body_bytes"]
    payload = signal("exact-limit")
    body = payload[:-1] + " " * (limit - len(payload)) + "}"
    assert len(body) == limit
    with started(settings) as server:
        status, answer = server.post(body)
    assert status == 200, answer


# ---------------------------------------------------------------------------------------------
# 4. Slow clients cannot lock real signals out


class Drippers:
    """``count`` connections that each send a request line, then a header line every ``every_s``."""

    def __init__(self, server: LiveServer, count: int, every_s: float = 0.5) -> None:
        self.socks = []
        for _ in range(count):
            sock = socket.create_connection((server.host, server.port), timeout=5)
            sock.sendall(b"POST /webhook HTTP/1.1\r\nHost: x\r\n")
            self.socks.append(sock)
        self.every_s = every_s
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._drip, daemon=True)
        self.thread.start()

    def _drip(self) -> None:
        line = 0
        while not self.stop.wait(self.every_s):
            line += 1
            for sock in self.socks:
                with suppress(OSError):
                    sock.send(f"X-Drip-{line}: x\r\n".encode())

    def open(self) -> list[socket.socket]:
        return [s for s in self.socks if not closed_by_server(s)]

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=2)
        for sock in self.socks:
            sock.close()


def test_real_signals_are_answered_while_400_slow_clients_drip_headers(settings: Settings) -> None:
    deadline_s = 2
    settings.data["server"]["request_deadline_s"] = Decimal(deadline_s)  # 10 s as shipped
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert soft >= 1000, f"open-file limit {soft}: 400 client and 400 server sockets need more"
    with started(settings) as server:
        drippers = Drippers(server, 400)
        try:
            status, body, signal_s = timed_request(server, "POST", "/webhook", signal("under-load"))
            assert (status, body["success"]) == (200, True), body
            status, _, health_s = timed_request(server, "GET", "/healthz")
            assert status == 200
            still_open = len(drippers.open())
            print(
                f"\nwith {still_open} slow connections open: signal {signal_s * 1000:.0f} ms, "
                f"/healthz {health_s * 1000:.0f} ms"
            )
            assert still_open == 400  # they were all there while the signal was answered
            assert signal_s < ANSWER_WITHIN_S
            assert health_s < ANSWER_WITHIN_S
            # and the deadline closes every one of them, though they never stop sending
            assert wait_until_closed(drippers.socks, deadline_s + 3) == []
        finally:
            drippers.close()


def test_at_the_connection_limit_the_slowest_make_room(settings: Settings) -> None:
    settings.data["server"]["connection_limit"] = 20
    settings.data["server"]["request_deadline_s"] = Decimal(60)  # not the deadline: the limit
    with started(settings) as server:
        drippers = Drippers(server, 150)
        try:
            status, body, took = timed_request(server, "POST", "/webhook", signal("at-the-limit"))
            print(f"\nconnection_limit 20, 150 slow clients: signal answered in {took * 1000:.0f} ms")
            assert (status, body["success"]) == (200, True), body
            assert took < ANSWER_WITHIN_S
        finally:
            drippers.close()


def test_a_body_that_trickles_is_closed_at_the_deadline_and_never_reaches_the_app(settings: Settings) -> None:
    settings.data["server"]["request_deadline_s"] = Decimal(1)
    body = signal("trickled").encode()
    with started(settings) as server, socket.create_connection((server.host, server.port), timeout=5) as sock:
        began = time.monotonic()
        head = f"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n"
        sock.sendall(head.encode())
        closed = False
        for byte in range(len(body) - 1):  # all but the last byte, one every 0.2 s (never idle)
            try:
                sock.sendall(body[byte : byte + 1])
            except OSError:
                closed = True
                break
            if closed_by_server(sock) or wait_until_closed([sock], 0.2) == []:
                closed = True
                break
            if time.monotonic() - began > 4:
                break
        took = time.monotonic() - began
        print(f"\ntrickled body closed after {took * 1000:.0f} ms")
        assert closed, "the connection was still open 4 s after a 1 s deadline"
        assert 1 <= took < 2.5
        assert list(server.app.journal.entries()) == []


# ---------------------------------------------------------------------------------------------
# 5. The allowlist behind a proxy


def allowlisted(settings: Settings, trusted: list[str], header: str = "x-forwarded-for") -> Settings:
    settings.data["auth"].update(allow_ips=[TRADINGVIEW_IPS[0]], trusted_proxies=trusted, client_address_header=header)
    return settings


@pytest.mark.parametrize(
    ("trusted", "header", "value", "status"),
    [
        (["127.0.0.1"], "X-Forwarded-For", TRADINGVIEW_IPS[0], 200),
        (["127.0.0.1"], "X-Forwarded-For", "1.2.3.4", 401),
        ([], "X-Forwarded-For", TRADINGVIEW_IPS[0], 401),  # an untrusted sender names itself
        (["127.0.0.1"], "X-Forwarded-For", f"1.2.3.4, {TRADINGVIEW_IPS[0]}", 200),  # nearest hop decides
        (["127.0.0.1"], "X-Forwarded-For", f"{TRADINGVIEW_IPS[0]}, 1.2.3.4", 401),  # a forged first hop
        (["127.0.0.0/8", "10.0.0.0/8"], "X-Forwarded-For", f"{TRADINGVIEW_IPS[0]}, 10.1.2.3", 200),
        (["127.0.0.1"], "X-Forwarded-For", f"{TRADINGVIEW_IPS[0]}:51234", 200),  # a proxy that adds the port
        (["127.0.0.1"], "X-Forwarded-For", "1.2.3.4:51234", 401),
    ],
    ids=[
        "via-proxy",
        "not-tradingview",
        "untrusted-proxy",
        "two-hops",
        "forged-hop",
        "proxy-networks",
        "with-port",
        "not-tradingview-with-port",
    ],
)
def test_forwarded_addresses_reach_the_allowlist_from_trusted_proxies_only(
    settings: Settings, trusted: list[str], header: str, value: str, status: int
) -> None:
    with started(allowlisted(settings, trusted)) as server:
        got, body = server.request("POST", "/webhook", signal(f"fwd-{value}"), {header: value})
    assert got == status, body


@pytest.mark.parametrize(
    ("header", "value", "status"),
    [
        ("forwarded", f'for="{TRADINGVIEW_IPS[0]}:4711";proto=https', 200),
        ("forwarded", f"for=1.2.3.4, for={TRADINGVIEW_IPS[0]}", 200),
        ("forwarded", f"for={TRADINGVIEW_IPS[0]}, for=1.2.3.4", 401),
        ("forwarded", "for=unknown", 401),
        ("x-real-ip", TRADINGVIEW_IPS[0], 200),
        ("x-real-ip", f" {TRADINGVIEW_IPS[0]}:443 ", 200),
        ("x-real-ip", "1.2.3.4", 401),
    ],
)
def test_the_other_forwarding_headers(settings: Settings, header: str, value: str, status: int) -> None:
    with started(allowlisted(settings, ["127.0.0.1"], header)) as server:
        got, body = server.request("POST", "/webhook", signal(f"{header}-{value}"), {header: value})
    assert got == status, body


def test_only_the_configured_header_is_believed(settings: Settings) -> None:
    """A proxy that writes X-Forwarded-For passes a client's own Forwarded header through."""
    with started(allowlisted(settings, ["127.0.0.1"])) as server:
        got, _ = server.request("POST", "/webhook", signal("wrong-header"), {"Forwarded": f"for={TRADINGVIEW_IPS[0]}"})
    assert got == 401


def test_the_allowlist_from_the_environment_as_railway_sets_it(tmp_path: Path) -> None:
    """On Railway the configuration is variables: one string each, ``tradingview`` for its four."""
    environ = {
        "ORDERGATE_DB": str(tmp_path / "journal.db"),
        "ALLOW_IPS": "tradingview",
        "TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1",
        "CLIENT_ADDRESS_HEADER": "X-Real-IP",
    }
    settings = load_settings("development", CONFIG_DIR, environ=environ)
    assert settings.data["auth"]["allow_ips"] == ["tradingview"]
    assert settings.data["auth"]["trusted_proxies"] == ["10.0.0.0/8", "127.0.0.1"]
    with started(settings) as server:
        for address, status in [(TRADINGVIEW_IPS[3], 200), ("1.2.3.4", 401)]:
            got, body = server.request("POST", "/webhook", signal(f"env-{address}"), {"X-Real-IP": address})
            assert got == status, body
        got, body = server.request("POST", "/webhook", signal("env-xff"), {"X-Forwarded-For": TRADINGVIEW_IPS[0]})
        assert got == 401, body  # only the configured header is believed


@pytest.mark.parametrize(
    ("variable", "value"),
    [("ALLOW_IPS", "52.89.214"), ("TRUSTED_PROXIES", "10.0.0.0/8 edge"), ("CLIENT_ADDRESS_HEADER", "x-client")],
)
def test_an_address_setting_that_is_no_address_is_a_config_error_naming_the_variable(
    tmp_path: Path, variable: str, value: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings("development", CONFIG_DIR, environ={"ORDERGATE_DB": str(tmp_path / "j.db"), variable: value})
    assert f"(set by {variable}" in str(caught.value)
