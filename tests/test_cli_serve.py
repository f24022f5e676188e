"""``ordergate serve`` as a real process (what ``make run``, the Procfile and railway.ts start)."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, SEED_ORDERS, raw_json


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_healthy(port: int, process: subprocess.Popen[str], deadline: float = 30.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if process.poll() is not None:
            raise AssertionError(f"server exited early: {process.communicate()}")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        try:
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.1)
        finally:
            conn.close()
    raise AssertionError("server did not become healthy")


# What the developer's shell may set that would change a served process's behaviour.
_OWN_VARIABLES = ("ORDERGATE_", "FLATTRADE_", "BINANCE_", "WEBHOOK_SECRET", "LOG_FORMAT", "LIVE_TRADING")


def start_serve(port: int, *options: str, **environ: str) -> subprocess.Popen[str]:
    """``python -m ordergate [options] serve`` on ``port`` with a clean environment plus ``environ``,
    once it answers /healthz. Its stderr (the log) is piped; the caller stops it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_VARIABLES) and not k.upper().endswith("_PROXY")}
    env.update(environ, PORT=str(port))
    process = subprocess.Popen(
        [sys.executable, "-m", "ordergate", *options, "serve", "--host", "127.0.0.1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_healthy(port, process)
    except BaseException:
        process.kill()
        process.communicate()
        raise
    return process


def test_serve_reads_port_serves_the_seed_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    process = start_serve(port, ORDERGATE_DB=str(tmp_path / "journal.db"))
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("POST", "/webhook", body=raw_json(SEED_ORDERS[0]), headers={"Content-Type": "text/plain"})
        answer = conn.getresponse()
        body = json.loads(answer.read())
        conn.close()
        assert (answer.status, body["success"]) == (200, True)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
    assert "Processing Binance Signal: BUY BTCUSDT 0.001 @ MARKET" in stderr
    assert "✅ Order placed successfully:" in stderr
    assert "route BINANCE → paper_binance (paper): paper" in stderr  # which money, per route
    assert " INFO " not in stderr  # the seed's plain lines; levels only for warnings and errors


def test_serve_refuses_a_broken_config_with_file_and_key(tmp_path: pytest.TempPathFactory) -> None:
    import shutil

    config = tmp_path / "config"  # type: ignore[operator]
    shutil.copytree(ROOT / "config", config)
    shutil.copytree(ROOT / "schemas", tmp_path / "schemas")  # type: ignore[operator]
    text = (config / "ordergate.yaml").read_text().replace("max_decimals: 8", "max_decimals: eight")
    (config / "ordergate.yaml").write_text(text)
    result = subprocess.run(
        [sys.executable, "-m", "ordergate", "--config-dir", str(config), "serve"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert f"{config / 'ordergate.yaml'}:pipelines.crypto[2].precision.max_decimals" in result.stderr


@pytest.mark.parametrize("environment", ["testnet", "live"])
def test_serve_refuses_to_start_without_a_webhook_secret_where_orders_are_real(
    tmp_path: Path, environment: str
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "WEBHOOK_SECRET"}
    env.update(ORDERGATE_ENV=environment, ORDERGATE_DB=str(tmp_path / "j.db"), PORT=str(free_port()))
    result = subprocess.run(
        [sys.executable, "-m", "ordergate", "serve"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    assert f"environments/{environment}.yaml:auth.secret" in result.stderr
    assert "set WEBHOOK_SECRET" in result.stderr
    assert not (tmp_path / "j.db").exists()


def test_sigterm_lets_the_signal_in_flight_finish_then_refuses_new_ones(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(ROOT / "config", config)
    shutil.copytree(ROOT / "schemas", tmp_path / "schemas")
    text = (config / "ordergate.yaml").read_text()
    slow = "    - schema: {file: signal.schema.json}\n    - tests.slow_stage:SlowStage: {seconds: 1.5}\n"
    (config / "ordergate.yaml").write_text(text.replace("    - schema: {file: signal.schema.json}\n", slow, 1))
    port = free_port()
    process = start_serve(
        port,
        "--config-dir",
        str(config),
        RAILWAY_DEPLOYMENT_DRAINING_SECONDS="10",
        PYTHONPATH=str(ROOT),
        ORDERGATE_DB=str(tmp_path / "journal.db"),
    )
    answers: list[tuple[int, dict[str, object]]] = []

    def post() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
        try:
            conn.request("POST", "/webhook", body=raw_json(SEED_ORDERS[0]))
            response = conn.getresponse()
            answers.append((response.status, json.loads(response.read())))
        finally:
            conn.close()

    try:
        in_flight = threading.Thread(target=post)
        in_flight.start()
        time.sleep(0.5)  # the signal is inside the slow stage now
        process.send_signal(signal.SIGTERM)
        in_flight.join(timeout=15)
        _, stderr = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert len(answers) == 1, stderr
    assert answers[0][0] == 200, (answers, stderr)
    assert answers[0][1]["success"] is True
    assert process.returncode == 0
    assert "finishing the requests in flight" in stderr
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_the_procfile_command_honours_waitress_threads_and_drains_on_sigterm(tmp_path: Path) -> None:
    # What Railpack starts when no start command is set: the Procfile's web line, run by a shell.
    (command,) = [line.removeprefix("web: ") for line in (ROOT / "Procfile").read_text().splitlines() if line]
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_VARIABLES)}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",  # `python` is this venv's
        PORT=str(port),
        WAITRESS_THREADS="3",
        ORDERGATE_DB=str(tmp_path / "journal.db"),
    )
    process = subprocess.Popen(
        ["sh", "-c", f"exec {command}"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_healthy(port, process)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert f"ordergate serving on http://0.0.0.0:{port} (environment development; " in stderr
    assert "; 3 threads)" in stderr  # waitress's own setting, from WAITRESS_THREADS
    assert "finishing the requests in flight" in stderr  # the graceful stop, not waitress-serve's
