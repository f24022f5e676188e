"""The load generator: wrk when installed, else N keep-alive clients in a separate Python process.

Both send the same requests: ``POST <url>`` with a signal whose ``id`` is new each time and whose
side alternates (buy, sell), so every request takes the whole chain to a paper fill and the paper
account never runs dry. The bare endpoint gets the same bodies. One run answers requests/second
and how many answers were not 2xx (a measurement with refusals in it measures something else).

Usage as a script (the fallback): python bench/load.py URL SECONDS CONNECTIONS
"""

from __future__ import annotations

import http.client
import itertools
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

WRK_SCRIPT = """
local counter = 0
local prefix = "run"
function init(args)
  prefix = args[1]
end
request = function()
  counter = counter + 1
  local side = "sell"
  if counter % 2 == 0 then side = "buy" end
  local body = '{"broker": "BINANCE", "symbol": "BTCUSDT", "side": "' .. side ..
    '", "quantity": "0.001", "type": "MARKET", "id": "' .. prefix .. '-' .. counter .. '"}'
  return wrk.format("POST", nil, {["Content-Type"] = "text/plain"}, body)
end
"""


def body(prefix: str, n: int) -> bytes:
    side = "buy" if n % 2 == 0 else "sell"
    signal = {"broker": "BINANCE", "symbol": "BTCUSDT", "side": side, "quantity": "0.001", "type": "MARKET"}
    return json.dumps({**signal, "id": f"{prefix}-{n}"}).encode()


@dataclass(frozen=True)
class Run:
    per_second: float
    not_ok: int  # answers that were not 2xx, plus socket errors


def tool() -> str:
    """Which load generator :func:`load` uses: ``wrk`` or ``python``."""
    return "wrk" if shutil.which("wrk") else "python"


def load(url: str, seconds: float, connections: int) -> Run:
    """One run against ``url``: wrk with one thread and ``connections`` connections, or the fallback."""
    prefix = uuid.uuid4().hex[:12]
    if tool() == "wrk":
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
            script.write(WRK_SCRIPT)
        try:
            command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "-s", script.name]
            done = subprocess.run([*command, url, "--", prefix], capture_output=True, text=True, check=True)
        finally:
            Path(script.name).unlink()
        rate = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
        bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", done.stdout)
        errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", done.stdout)
        not_ok = int(bad.group(1)) if bad else 0
        not_ok += sum(int(g) for g in errors.groups()) if errors else 0
        assert rate is not None, done.stdout
        return Run(float(rate.group(1)), not_ok)
    done = subprocess.run(
        [sys.executable, __file__, url, str(seconds), str(connections)], capture_output=True, text=True, check=True
    )
    rate_text, not_ok_text = done.stdout.split()
    return Run(float(rate_text), int(not_ok_text))


def _client(url: str, deadline: float, numbers: itertools.count[int], prefix: str, tally: list[int]) -> None:
    split = urlsplit(url)
    conn = http.client.HTTPConnection(split.hostname or "127.0.0.1", split.port, timeout=30)
    ok = bad = 0
    while time.monotonic() < deadline:
        try:
            conn.request("POST", split.path, body=body(prefix, next(numbers)), headers={"Content-Type": "text/plain"})
            response = conn.getresponse()
            response.read()
        except OSError:
            bad += 1
            conn.close()
            continue
        if 200 <= response.status < 300:
            ok += 1
        else:
            bad += 1
    conn.close()
    tally.extend((ok, bad))


def _main(url: str, seconds: float, connections: int) -> None:
    prefix = uuid.uuid4().hex[:12]
    numbers = itertools.count()
    tallies: list[list[int]] = [[] for _ in range(connections)]
    started = time.monotonic()
    deadline = started + seconds
    threads = [
        threading.Thread(target=_client, args=(url, deadline, numbers, prefix, tallies[i])) for i in range(connections)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    ok = sum(t[0] for t in tallies)
    bad = sum(t[1] for t in tallies)
    print(f"{(ok + bad) / elapsed:.1f} {bad}")


if __name__ == "__main__":
    _main(sys.argv[1], float(sys.argv[2]), int(sys.argv[3]))
