"""The live environment, as a user runs it, against a NorenOMS-compatible server behind a proxy.

``python -m ordergate serve`` with ``ORDERGATE_ENV=live LIVE_TRADING=yes``, ``FLATTRADE_API_URL``
and ``FLATTRADE_AUTH_URL`` naming a NorenOMS host and a ``FLATTRADE_TOKEN``: the seed's FLATTRADE
signal must arrive there as a protected LIMIT order. The host is reached only through the
proxy in ``HTTP_PROXY`` (FlatTrade takes orders only from a registered static IP, which on
Railway means an egress proxy); the proxy answers from FlatTrade's documented bodies.
"""

from __future__ import annotations

import http.client
import json
import shutil
import signal
import threading
from collections import defaultdict, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from tests.conftest import ROOT
from tests.test_cli_serve import free_port, start_serve

CASSETTE = (
    Path(__file__).parent / "cassettes" / "test_flattrade" / "test_the_seed_market_order_becomes_a_protected_limit.yaml"
)
TOKEN = "live-test-token-not-a-secret"
SECRET = "live-hook-secret-not-a-secret"


class NorenProxy(ThreadingHTTPServer):
    """An HTTP proxy that answers for ``noren.test`` itself, with documented NorenOMS bodies."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.answers: dict[str, deque[str]] = defaultdict(deque)
        for item in yaml.safe_load(CASSETTE.read_text())["interactions"]:
            route = urlsplit(item["request"]["uri"]).path.rsplit("/", 1)[-1]
            self.answers[route].append(item["response"]["body"]["string"])
        self.seen: list[tuple[str, str]] = []  # (request line target, body)


class _Handler(BaseHTTPRequestHandler):
    server: NorenProxy

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        self.server.seen.append((self.path, body))
        route = urlsplit(self.path).path.rsplit("/", 1)[-1]
        queue = self.server.answers.get(route)
        answer = queue.popleft() if queue else '{"stat":"Not_Ok","emsg":"Error Occurred : 5 \\"no data\\""}'
        data = answer.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_live_places_the_seed_flattrade_order_at_a_norenoms_server_through_the_proxy(tmp_path: Path) -> None:
    proxy = NorenProxy()
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    config = tmp_path / "config"
    shutil.copytree(ROOT / "config", config)
    shutil.copytree(ROOT / "schemas", tmp_path / "schemas")
    with (config / "environments" / "live.yaml").open("a") as live:
        live.write("\n# this test runs at any hour: the session hours are tested on their own\n")
        live.write("stages: {market_hours: {enabled: false}}\n")
    port = free_port()
    process = start_serve(
        port,
        ORDERGATE_ENV="live",
        LIVE_TRADING="yes",
        WEBHOOK_SECRET=SECRET,
        ORDERGATE_CONFIG_DIR=str(config),
        ORDERGATE_DB=str(tmp_path / "journal.db"),
        FLATTRADE_API_URL="http://noren.test/PiConnectAPI",
        FLATTRADE_AUTH_URL="http://noren.test/trade",
        FLATTRADE_USER_ID="FT012345",
        FLATTRADE_TOKEN=TOKEN,
        HTTP_PROXY=f"http://127.0.0.1:{proxy.server_address[1]}",
        NO_PROXY="127.0.0.1,localhost",
    )
    try:
        seed = {"broker": "FLATTRADE", "symbol": "CIPLA", "side": "buy", "quantity": 10, "type": "MARKET"}
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
        conn.request("POST", "/webhook", body=json.dumps({**seed, "id": "ft-seed", "passphrase": SECRET}))
        response = conn.getresponse()
        answer = json.loads(response.read())
        conn.close()
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
        proxy.shutdown()
        proxy.server_close()
    assert response.status == 200, (answer, stderr)
    assert (answer["success"], answer["orderId"]) == (True, "20052000000017")
    assert (answer["type"], answer["price"]) == ("LIMIT", "1507.5")
    targets = [target for target, _ in proxy.seen]
    # every request went through the proxy (an absolute URI on the request line) to the host set
    assert all(t.startswith("http://noren.test/PiConnectAPI/") for t in targets), targets
    placed = [body for target, body in proxy.seen if target.endswith("/PlaceOrder")]
    assert len(placed) == 1
    jdata = json.loads(placed[0][len("jData=") :].rpartition("&jKey=")[0])
    assert (jdata["tsym"], jdata["prctyp"], jdata["prc"], jdata["qty"]) == ("CIPLA-EQ", "LMT", "1507.5", "10")
    assert placed[0].endswith(f"&jKey={TOKEN}")
    assert TOKEN not in stderr  # the token is never logged
