"""Benchmark one signal's cost: through the runner alone, and over real HTTP (waitress).

Usage: make bench   (or: python bench/bench_webhook.py [N])

Both are measured in this one run on the same machine, so compare the medians with each
other, not with numbers from another day. Buys and sells alternate so the paper account
never runs out of margin and every signal takes the full chain to a fill.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from ordergate.app import create_app
from ordergate.config import load_settings
from ordergate.gateway import new_signal_id
from ordergate.logs import configure_logging
from ordergate.parse import parse_body
from ordergate.pipeline.signal import Signal
from ordergate.server import GracefulServer

ROOT = Path(__file__).resolve().parent.parent


def payload(i: int) -> dict[str, object]:
    side = "buy" if i % 2 == 0 else "sell"
    return {"broker": "BINANCE", "symbol": "BTCUSDT", "side": side, "quantity": "0.001", "type": "MARKET"}


def report(name: str, samples: list[float]) -> float:
    samples.sort()
    median = statistics.median(samples)
    p95 = samples[int(len(samples) * 0.95) - 1]
    print(f"{name:<30} n={len(samples):>5}  median {median * 1e6:8.1f} us  p95 {p95 * 1e6:8.1f} us")
    return median


def main(n: int = 2000) -> None:
    scratch = tempfile.mkdtemp(prefix="ordergate-bench-")
    settings = load_settings("development", ROOT / "config", environ={"ORDERGATE_DB": f"{scratch}/journal.db"})
    settings.data["limits"]["max_orders_per_minute"] = None  # the bench sends thousands a minute
    # Log as in production (every seed line formatted and written), to /dev/null.
    configure_logging("INFO")
    for handler in logging.getLogger().handlers:  # the one handler, on the root logger
        handler.setStream(open(os.devnull, "w"))  # type: ignore[attr-defined]  # noqa: SIM115
    app = create_app(settings)
    runner = app.service.runners["BINANCE"]

    samples: list[float] = []
    for i in range(n):
        started = time.perf_counter()
        body = parse_body(json.dumps(payload(i)).encode())
        runner.run(Signal(id=new_signal_id(), route="BINANCE", payload=body, received_at=time.time()))
        samples.append(time.perf_counter() - started)
    chain = report("parse + chain (in process)", samples)

    journal = app.journal  # the same SQLite file the server below writes (WAL)
    samples = []
    for i in range(n):
        started = time.perf_counter()
        signal_id = new_signal_id()
        journal.claim(signal_id, "BINANCE", payload(i), None, time.time())
        journal.placing(signal_id, f"og-{signal_id}")
        journal.finish(signal_id, status="filled", http_status=200, response={"success": True}, trace=[])
        samples.append(time.perf_counter() - started)
    report("journal claim+placing+outcome", samples)

    server = GracefulServer(app, "127.0.0.1", 0, threads=4)  # what `ordergate serve` runs
    thread = threading.Thread(target=server.serve, args=(5.0,), daemon=True)
    thread.start()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    samples = []
    try:
        for i in range(n):
            body = json.dumps(payload(i))
            started = time.perf_counter()
            conn.request("POST", "/webhook", body=body, headers={"Content-Type": "text/plain"})
            response = conn.getresponse()
            response.read()
            samples.append(time.perf_counter() - started)
            assert response.status == 200, response.status
    finally:
        conn.close()
        server.stopping.set()
        thread.join(timeout=10)
    http_median = report("POST /webhook (waitress)", samples)
    print(f"HTTP / chain median ratio: {http_median / chain:.1f}x; TradingView's limit is 3 s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
