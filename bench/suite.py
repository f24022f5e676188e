"""``make bench``: one table, from one run, of what issue 12 asks ordergate to hold.

Rows (each: the value measured, the target, PASS/FAIL):

* throughput: the full pipeline (journal, paper fill) over a bare falcon endpoint, both on the
  server ``ordergate serve`` runs (:class:`ordergate.server.GracefulServer`, same threads and edge
  limits), driven by wrk (or, without it, keep-alive clients in another process: bench/load.py),
  runs alternating, the median of each side;
* the in-process chain (parse + every stage to a paper fill) and each stage, p50/p99, and the
  journal's three writes per signal;
* burst: 50 and 200 signals at once, over HTTP, against a loopback Binance (tests/brokers/
  fake_binance.py) answering every request in 250 ms: median and slowest answer, orders placed;
* round trips to the exchange per signal in steady state (markets, prices and balance warm);
* growth: throughput with 1,000,000 rows in the journal over an empty one;
* footprint: ``python -m ordergate serve`` from start to ``/readyz`` 200, and its resident memory,
  with full-size Binance spot and USD-M markets loaded from the loopback exchange.

BENCH_QUICK=1 runs every row on small sizes (a smoke run: the numbers mean little).
Numbers from one machine on one day: compare the rows of one run with each other.
"""

from __future__ import annotations

import copy
import http.client
import json
import logging
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import falcon

from bench.load import load, tool
from ordergate.app import OrdergateApp, create_app, new_signal_id, parse_body
from ordergate.brokers.ccxt import CcxtBroker
from ordergate.config import Settings, load_settings
from ordergate.logs import configure_logging
from ordergate.pipeline.signal import Signal
from ordergate.server import EdgeLimits, GracefulServer
from tests.brokers.fake_binance import RESPONSES, FakeBinance, Serving, loopback_testnet

ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = ROOT / "config"
SECRET = "bench-secret-not-a-secret"


@dataclass(frozen=True)
class Sizes:
    chain_signals: int = 2000
    # then on, in the same process, to this many within two minutes (how long settled holds are
    # kept): the chain's cost over the last 500 says whether it grows with recent traffic
    recent_signals: int = 10_000
    load_seconds: float = 3.0
    load_runs: int = 3  # per side, alternating; the median of each side
    connections: int = 8
    bursts: tuple[int, ...] = (50, 200)
    exchange_latency_s: float = 0.25
    burst_timeout_s: float = 20.0
    steady_signals: int = 20
    journal_rows: int = 1_000_000
    spot_symbols: int = 3000  # Binance spot lists about 3,000 symbols (TRADING and BREAK)
    futures_symbols: int = 500  # USD-M about 500


FULL = Sizes()
QUICK = Sizes(
    chain_signals=100,
    recent_signals=1000,
    load_seconds=1.0,
    load_runs=1,
    bursts=(10, 20),
    burst_timeout_s=10.0,
    steady_signals=5,
    journal_rows=10_000,
)


@dataclass
class Row:
    name: str
    value: str
    target: str = ""
    ok: bool | None = None  # None: no target (context for the rows around it)
    note: str = ""


@dataclass
class Table:
    rows: list[Row] = field(default_factory=list)

    def add(self, *rows: Row) -> None:
        self.rows.extend(rows)

    def render(self) -> str:
        widths = [max(len(r.name) for r in self.rows), max(len(r.value) for r in self.rows)]
        targets = max(len(r.target) for r in self.rows)
        lines = [f"{'row':<{widths[0]}}  {'value':<{widths[1]}}  {'target':<{targets}}  result  note"]
        lines.append("-" * (len(lines[0]) + 20))
        for r in self.rows:
            verdict = "" if r.ok is None else "PASS" if r.ok else "FAIL"
            line = f"{r.name:<{widths[0]}}  {r.value:<{widths[1]}}  {r.target:<{targets}}  {verdict:<6}  {r.note}"
            lines.append(line.rstrip())
        return "\n".join(lines)


# -- helpers -------------------------------------------------------------------------------------


def quiet_logging() -> None:
    """Log as in production (every line formatted, redacted and written), to /dev/null."""
    configure_logging("INFO")
    for handler in logging.getLogger().handlers:  # the one handler, on the root logger
        if getattr(handler, "_ordergate", False):
            handler.setStream(open(os.devnull, "w"))  # type: ignore[attr-defined]  # noqa: SIM115


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def us(seconds: float) -> str:
    return f"{seconds * 1e6:.0f} us"


def paper_settings(scratch: Path, name: str) -> Settings:
    settings = load_settings("development", CONFIG_DIR, environ={"ORDERGATE_DB": str(scratch / f"{name}.db")})
    settings.data["limits"]["max_orders_per_minute"] = None  # the bench sends thousands a minute
    settings.data["brokers"]["paper_binance"]["balances"] = {"USDT": 10_000_000, "BTC": 1000, "ETH": 1000}
    return settings


@contextmanager
def served(app: Any, settings: Settings) -> Iterator[str]:
    """``app`` on the server ``ordergate serve`` builds, on a free loopback port: its webhook URL."""
    cfg = settings.data["server"]
    server = GracefulServer(app, "127.0.0.1", 0, int(cfg["threads"]), EdgeLimits.from_settings(cfg))
    thread = threading.Thread(target=server.serve, args=(1.0,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}/webhook"
    finally:
        server.stopping.set()
        thread.join(timeout=30)


class Bare:
    """The bare endpoint: read the body, answer a small JSON."""

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.bounded_stream.read()
        resp.content_type = falcon.MEDIA_JSON
        resp.text = '{"success": true}'


def bare_app() -> falcon.App:  # type: ignore[type-arg]
    app = falcon.App(cors_enable=False)
    app.add_route("/webhook", Bare())
    return app


def alternating(urls: dict[str, str], sizes: Sizes) -> dict[str, float]:
    """Load each URL in turn, ``load_runs`` rounds: the median requests/second of each."""
    rates: dict[str, list[float]] = {name: [] for name in urls}
    refused: Counter[str] = Counter()
    for _ in range(sizes.load_runs):
        for name, url in urls.items():
            run = load(url, sizes.load_seconds, sizes.connections)
            rates[name].append(run.per_second)
            refused[name] += run.not_ok
    bad = {name: n for name, n in refused.items() if n}
    if bad:
        print(f"warning: answers that were not 2xx: {bad}", file=sys.stderr)
    return {name: statistics.median(values) for name, values in rates.items()}


# -- throughput ----------------------------------------------------------------------------------


def throughput(sizes: Sizes, scratch: Path) -> list[Row]:
    settings = paper_settings(scratch, "throughput")
    full = create_app(settings)
    try:
        with served(bare_app(), settings) as bare_url, served(full, settings) as full_url:
            load(full_url, min(1.0, sizes.load_seconds), sizes.connections)  # warm both up
            load(bare_url, min(1.0, sizes.load_seconds), sizes.connections)
            rates = alternating({"bare": bare_url, "full": full_url}, sizes)
    finally:
        full.journal.close()
    ratio = rates["full"] / rates["bare"]
    how = f"{tool()}, {sizes.connections} connections, {sizes.load_seconds:.0f} s x {sizes.load_runs} alternating"
    return [
        Row("throughput: bare falcon endpoint", f"{rates['bare']:.0f} req/s", note=how),
        Row("throughput: full pipeline (journal, paper)", f"{rates['full']:.0f} req/s"),
        Row("throughput ratio full / bare", f"{ratio:.2f}", ">= 0.67", ratio >= 0.67),
    ]


# -- the chain in process ------------------------------------------------------------------------


def payload(i: int) -> dict[str, object]:
    side = "buy" if i % 2 == 0 else "sell"
    return {"broker": "BINANCE", "symbol": "BTCUSDT", "side": side, "quantity": "0.001", "type": "MARKET"}


def chain(sizes: Sizes, scratch: Path) -> list[Row]:
    app = create_app(paper_settings(scratch, "chain"))
    runner = app.service.runners["BINANCE"]
    totals: list[float] = []
    stages: dict[str, list[float]] = {}
    try:
        for i in range(max(sizes.chain_signals, sizes.recent_signals)):
            started = time.perf_counter()
            body = parse_body(json.dumps(payload(i)).encode())
            outcome = runner.run(Signal(id=new_signal_id(), route="BINANCE", payload=body, received_at=time.time()))
            totals.append(time.perf_counter() - started)
            assert outcome.status == "filled", outcome.reason
            for step in outcome.trace:
                stages.setdefault(step.stage, []).append(step.micros / 1e6)
        writes: list[float] = []
        for i in range(sizes.chain_signals):
            started = time.perf_counter()
            signal_id = new_signal_id()
            app.journal.claim(signal_id, "BINANCE", payload(i), None, time.time())
            app.journal.placing(signal_id, f"og-{signal_id}")
            app.journal.finish(signal_id, status="filled", http_status=200, response={"success": True}, trace=[])
            writes.append(time.perf_counter() - started)
    finally:
        app.journal.close()

    def row(name: str, samples: list[float], target: bool = True) -> Row:
        p50, p99 = percentile(samples, 0.5), percentile(samples, 0.99)
        value = f"p50 {us(p50)}, p99 {us(p99)}"
        return Row(name, value, "p99 < 1 ms" if target else "", p99 < 0.001 if target else None)

    first = sizes.chain_signals
    rows = [row("chain in process (parse + stages)", totals[:first])]
    rows += [row(f"  stage {name}", samples[:first]) for name, samples in stages.items()]
    rows.append(row("journal claim + placing + finish", writes, target=False))
    if sizes.recent_signals > first:
        tail = min(500, sizes.recent_signals - first)
        recent = f"chain after {sizes.recent_signals:,} signals"
        rows.append(row(recent, totals[-tail:]))
        slowest = max(stages, key=lambda name: statistics.median(stages[name][-tail:]))
        rows.append(row(f"  stage {slowest} then", stages[slowest][-tail:]))
    return rows


# -- a slow loopback exchange: burst and round trips ---------------------------------------------


def testnet_app(exchange: FakeBinance, scratch: Path, name: str) -> tuple[OrdergateApp, Settings]:
    settings = loopback_testnet(exchange, scratch / f"{name}.db", SECRET)
    settings.data["limits"]["max_orders_per_minute"] = None
    settings.data["limits"]["max_notional"] = None
    return create_app(settings), settings


def post(url: str, body: dict[str, Any], timeout: float) -> tuple[int, float]:
    """POST one signal on its own connection: the status (0: no answer in time) and seconds taken."""
    split = url.removeprefix("http://")
    host, _, rest = split.partition("/")
    address, _, port = host.partition(":")
    conn = http.client.HTTPConnection(address, int(port), timeout=timeout)
    started = time.monotonic()
    try:
        conn.request("POST", f"/{rest}/{SECRET}", body=json.dumps(body), headers={"Content-Type": "text/plain"})
        response = conn.getresponse()
        response.read()
        return response.status, time.monotonic() - started
    except OSError:
        return 0, time.monotonic() - started
    finally:
        conn.close()


def close_app(app: OrdergateApp) -> None:
    for broker in app.service.brokers.values():
        getattr(broker, "close", lambda: None)()
    app.journal.close()


def burst(sizes: Sizes, scratch: Path) -> list[Row]:
    rows: list[Row] = []
    with Serving(FakeBinance(latency_s=sizes.exchange_latency_s)) as exchange:
        app, settings = testnet_app(exchange, scratch, "burst")
        try:
            with served(app, settings) as url:
                for warm in range(2):  # markets, prices and balance warm: the steady state
                    post(url, {**payload(warm), "id": f"warm-{warm}"}, 30)
                for n in sizes.bursts:
                    rows.append(_one_burst(exchange, url, n, sizes))
        finally:
            close_app(app)
    return rows


def _one_burst(exchange: FakeBinance, url: str, n: int, sizes: Sizes) -> Row:
    before = len(exchange.orders_placed())
    answers: list[tuple[int, float]] = [(0, 0.0)] * n
    ready = threading.Barrier(n)

    def one(i: int) -> None:
        ready.wait()
        answers[i] = post(url, {**payload(i), "id": f"burst{n}-{i}"}, sizes.burst_timeout_s)

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(sizes.burst_timeout_s + 5)
    placed = len(exchange.orders_placed()) - before
    answered = [seconds for status, seconds in answers if status == 200]
    unanswered = n - len(answered)
    slowest = max(answered) if answered else float("nan")
    median = statistics.median(answered) if answered else float("nan")
    value = f"median {median:.2f} s, slowest {slowest:.2f} s, {placed}/{n} orders placed"
    note = f"{sizes.exchange_latency_s * 1000:.0f} ms exchange"
    if unanswered:
        note += f"; {unanswered} not answered 200 within {sizes.burst_timeout_s:.0f} s"
    if n == min(sizes.bursts):
        target = "all < 1 s, none lost"
        return Row(f"burst {n} at once", value, target, not unanswered and slowest < 1.0 and placed == n, note)
    return Row(f"burst {n} at once", value, note=note)


def round_trips(sizes: Sizes, scratch: Path) -> list[Row]:
    with Serving(FakeBinance()) as exchange:
        app, settings = testnet_app(exchange, scratch, "trips")
        try:
            with served(app, settings) as url:
                for warm in range(3):
                    post(url, {**payload(warm), "id": f"warm-{warm}"}, 30)
                seen = len(exchange.requests)
                for i in range(sizes.steady_signals):
                    status, _ = post(url, {**payload(i), "id": f"steady-{i}"}, 30)
                    assert status == 200, status
                steady = exchange.requests[seen:]
        finally:
            close_app(app)
    per_signal = len(steady) / sizes.steady_signals
    kinds = Counter(f"{s.method} {s.path}" for s in steady)
    note = ", ".join(f"{path} x{count / sizes.steady_signals:g}" for path, count in kinds.most_common())
    return [Row("exchange round trips per signal", f"{per_signal:g}", "1", per_signal <= 1.0, note)]


# -- growth: a journal of a million rows ---------------------------------------------------------


def fill_journal(path: Path, rows: int) -> None:
    """``rows`` signals as the webhook leaves them (payload, answer, trace, ids), over 30 days."""
    conn = sqlite3.connect(path)
    now = time.time()
    start_ms = int((now - 30 * 86400) * 1000)
    step_ms = max(1, 30 * 86400 * 1000 // rows)
    payload_json = json.dumps(payload(0))
    response_json = json.dumps(
        {
            "success": True,
            "orderId": "paper-1",
            "clientOrderId": "og-x",
            "status": "FILLED",
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "MARKET",
            "quantity": "0.001",
            "price": None,
            "executedQty": "0.001",
            "avgPrice": "43500",
            "signalId": "x",
        }
    )
    stages = ["schema", "whitelist", "precision", "notional", "limits", "balance", "execute"]
    trace_json = json.dumps([{"stage": s, "outcome": "ok", "us": 20} for s in stages])
    with conn:
        conn.execute(
            """
            WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < :rows)
            INSERT INTO signals (id, received_at, route, idempotency_key, payload, status, http_status,
                                 response, client_order_id, broker_order_id, trace, completed_at)
            SELECT printf('%011x%010x', :start + i * :step, i), (:start + i * :step) / 1000.0, 'BINANCE',
                   'BINANCE:old-' || i, :payload, 'filled', 200, :response, 'og-' || printf('%021x', i),
                   'paper-' || i, :trace, (:start + i * :step) / 1000.0 + 0.001
            FROM n
            """,
            {
                "rows": rows,
                "start": start_ms,
                "step": step_ms,
                "payload": payload_json,
                "response": response_json,
                "trace": trace_json,
            },
        )
    conn.close()


def growth(sizes: Sizes, scratch: Path) -> list[Row]:
    empty_settings = paper_settings(scratch, "empty")
    full_settings = paper_settings(scratch, "million")
    create_app(full_settings).journal.close()  # the schema, then the rows
    started = time.monotonic()
    fill_journal(Path(full_settings.data["journal"]["path"]), sizes.journal_rows)
    filled_s = time.monotonic() - started
    empty, full = create_app(empty_settings), create_app(full_settings)
    try:
        with served(empty, empty_settings) as empty_url, served(full, full_settings) as full_url:
            load(full_url, min(1.0, sizes.load_seconds), sizes.connections)
            load(empty_url, min(1.0, sizes.load_seconds), sizes.connections)
            rates = alternating({"empty": empty_url, "full": full_url}, sizes)
    finally:
        empty.journal.close()
        full.journal.close()
    ratio = rates["full"] / rates["empty"]
    return [
        Row(
            f"growth: {sizes.journal_rows:,} rows / empty journal",
            f"{ratio:.2f} ({rates['full']:.0f} / {rates['empty']:.0f} req/s)",
            ">= 0.9",
            ratio >= 0.9,
            f"rows written in {filled_s:.1f} s",
        )
    ]


# -- footprint: the real process -----------------------------------------------------------------


def full_size_exchange_info(venue: str, symbols: int) -> dict[str, Any]:
    """The loopback exchange's recorded BTCUSDT entry as ``symbols`` distinct symbols, as many
    as Binance lists (its own exchangeInfo holds two: startup would load nothing)."""
    name = "usdm-exchangeInfo" if venue == "future" else "spot-exchangeInfo"
    info: dict[str, Any] = json.loads((RESPONSES / f"{name}.json").read_text())
    template = info["symbols"][0]
    listed = []
    for i in range(symbols):
        base = f"C{i:04d}X"
        entry = copy.deepcopy(template)
        entry.update(symbol=f"{base}USDT", baseAsset=base)
        if "pair" in entry:
            entry["pair"] = entry["symbol"]
        listed.append(entry)
    info["symbols"] = info["symbols"] + listed
    return info


@dataclass
class FullSizeBinance(FakeBinance):
    spot_info: dict[str, Any] = field(default_factory=dict)
    futures_info: dict[str, Any] = field(default_factory=dict)

    def handle(self, method: str, path: str, params: dict[str, str]) -> tuple[int, Any] | None:
        if method == "GET" and path == "/api/v3/exchangeInfo":
            return 200, self.spot_info
        if method == "GET" and path == "/fapi/v1/exchangeInfo":
            return 200, self.futures_info
        return super().handle(method, path, params)


BENCH_ENVIRONMENT = """
auth: {required: true}
paths: {schemas: %s}
brokers:
  binance_futures:
    adapter: ccxt
    exchange: binance
    market_type: future
    testnet: true
    api_key: ${BINANCE_API_KEY:-}
    api_secret: ${BINANCE_API_SECRET:-}
    api_url: ${BINANCE_API_URL:-}
routes:
  BINANCE: {broker: binance_spot}
  BINANCE_REAL: {broker: binance_futures}
"""


def footprint(sizes: Sizes, scratch: Path) -> list[Row]:
    config = scratch / "config"
    shutil.copytree(CONFIG_DIR, config)
    (config / "environments" / "bench.yaml").write_text(BENCH_ENVIRONMENT % json.dumps(str(ROOT / "schemas")))
    exchange = FullSizeBinance(
        spot_info=full_size_exchange_info("spot", sizes.spot_symbols),
        futures_info=full_size_exchange_info("future", sizes.futures_symbols),
    )
    with Serving(exchange):
        port = free_port()
        env = {
            **os.environ,
            "WEBHOOK_SECRET": SECRET,
            "BINANCE_API_KEY": "loopback-key-not-a-secret",
            "BINANCE_API_SECRET": "loopback-secret-not-a-secret",
            "BINANCE_API_URL": exchange.url,
            "ORDERGATE_DB": str(scratch / "footprint.db"),
            "LOG_LEVEL": "WARNING",
        }
        command = [sys.executable, "-m", "ordergate", "--env", "bench", "--config-dir", str(config), "serve"]
        started = time.monotonic()
        process = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            ready_s = wait_ready(port, process, started, deadline_s=60)
            rss_mb = resident_mb(process.pid)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                _, errors = process.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                _, errors = process.communicate()
    if ready_s is None:
        raise RuntimeError(f"ordergate serve never became ready:\n{errors.decode()[-2000:]}")
    markets = f"{sizes.spot_symbols + 2} spot + {sizes.futures_symbols + 2} USD-M markets"
    return [
        Row("footprint: start -> /readyz 200", f"{ready_s:.2f} s", "< 3 s", ready_s < 3.0, markets),
        Row("footprint: resident memory when ready", f"{rss_mb:.0f} MB", "< 150 MB", rss_mb < 150),
    ]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(port: int, process: subprocess.Popen[bytes], started: float, deadline_s: float) -> float | None:
    """Seconds from the process's start to its first /readyz 200 (None: it never answered 200)."""
    while time.monotonic() - started < deadline_s and process.poll() is None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                return time.monotonic() - started
        except OSError:
            pass
        finally:
            conn.close()
        time.sleep(0.02)
    return None


def resident_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


# -- the table -----------------------------------------------------------------------------------

# burst last but one: signals a burst left unanswered still run for a moment after it
ROWS: list[Callable[[Sizes, Path], list[Row]]] = [throughput, chain, growth, round_trips, burst, footprint]


def run(sizes: Sizes, rows: list[Callable[[Sizes, Path], list[Row]]] = ROWS, production_logs: bool = True) -> Table:
    """Measure ``rows``; ``production_logs``: log as ``ordergate serve`` does (to /dev/null)."""
    if production_logs:
        quiet_logging()
    table = Table()
    scratch = Path(tempfile.mkdtemp(prefix="ordergate-bench-"))
    try:
        for measure in rows:
            print(f"... {measure.__name__}", file=sys.stderr, flush=True)
            table.add(*measure(sizes, scratch))
    finally:
        CcxtBroker.close_all()
        shutil.rmtree(scratch, ignore_errors=True)
    return table


def main() -> None:
    quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
    table = run(QUICK if quick else FULL)
    print(table.render())


if __name__ == "__main__":
    main()
