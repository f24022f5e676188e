"""``make profile``: where a signal's time goes in the served process, by py-spy.

Serves the full pipeline (paper, journal, the production log handler writing to /dev/null) on
the server ``ordergate serve`` builds, in a process of its own; drives it with the bench's load
generator (8 connections); samples it with ``py-spy record --gil`` (only the thread holding the
GIL: what competes for the one interpreter) and prints the functions that hold the most samples,
inclusive and self. py-spy needs to attach to a process (root, or ptrace allowed).

Usage: make profile   (PROFILE_SECONDS=10 by default)
"""

from __future__ import annotations

import collections
import http.client
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.load import load, tool
from bench.suite import free_port

RATE = 200  # samples a second

SERVE = """
import sys
from pathlib import Path
from bench import suite
from ordergate.app import create_app
from ordergate.server import EdgeLimits, GracefulServer

suite.quiet_logging()
settings = suite.paper_settings(Path(sys.argv[2]), "profile")
cfg = settings.data["server"]
app = create_app(settings)
server = GracefulServer(app, "127.0.0.1", int(sys.argv[1]), int(cfg["threads"]), EdgeLimits.from_settings(cfg))
server.install_signal_handlers()
server.serve(1.0)
"""


def wait_serving(port: int, deadline_s: float = 30) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.05)
        finally:
            conn.close()
    raise RuntimeError("the profiled server did not start")


def summarize(raw: Path, possible: int, top: int = 30) -> str:
    """py-spy's raw (collapsed) stacks as the functions with the most samples, inclusive and self."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        samples = int(count)
        total += samples
        frames = [re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")]
        frames = [re.sub(r"\(/.*?/(site-packages|lib/python3\.\d+)/", "(", frame) for frame in frames]
        for frame in set(frames):
            inclusive[frame] += samples
        own[frames[-1]] += samples
    held = f"{total} of {possible} samples found a thread holding the GIL ({100 * total / possible:.0f}% of the time)"
    lines = [held, "", "inclusive (% of the samples holding the GIL):"]
    skip = ("threading.py", "waitress/task.py)", "<module>")
    shown = [(f, n) for f, n in inclusive.most_common() if not any(s in f for s in skip)][:top]
    lines += [f"  {100 * n / total:5.1f}%  {frame}" for frame, n in shown]
    lines += ["", "self:"]
    lines += [f"  {100 * n / total:5.1f}%  {frame}" for frame, n in own.most_common(top // 2)]
    return "\n".join(lines)


def main(seconds: float) -> None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        sys.exit("make profile needs py-spy: pip install py-spy")
    scratch = Path(tempfile.mkdtemp(prefix="ordergate-profile-"))
    port = free_port()
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    server = subprocess.Popen([sys.executable, "-c", SERVE, str(port), str(scratch)], env=env)
    try:
        wait_serving(port)
        url = f"http://127.0.0.1:{port}/webhook"
        load(url, 1.0, 8)  # warm
        rates: list[float] = []
        driver = threading.Thread(target=lambda: rates.append(load(url, seconds + 2, 8).per_second))
        driver.start()
        time.sleep(1)
        raw = scratch / "profile.txt"
        command = [spy, "record", "-p", str(server.pid), "-d", str(int(seconds)), "-r", str(RATE), "--gil"]
        subprocess.run([*command, "-f", "raw", "-o", str(raw), "--nonblocking"], check=True, capture_output=True)
        driver.join()
        print(f"full pipeline under load ({tool()}, 8 connections): {rates[0]:.0f} req/s")
        print(summarize(raw, int(seconds) * RATE))
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main(float(os.environ.get("PROFILE_SECONDS", "10")))
