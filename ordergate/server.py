"""Serving with waitress, and stopping gracefully on SIGTERM (what Railway sends on redeploy).

On SIGTERM the server stops accepting connections, lets every request already in flight
finish and its answer flush, then exits: a signal that reached ordergate gets its answer.
Railway kills the process ``RAILWAY_DEPLOYMENT_DRAINING_SECONDS`` after SIGTERM (default 0, so
set it); ordergate drains for one second less than that.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from typing import Any

from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import create_server

log = logging.getLogger("ordergate")

DEFAULT_DRAIN_S = 30.0


def drain_seconds(environ: dict[str, str] | None = None) -> float:
    """How long in-flight requests may take after SIGTERM: Railway's window minus a second."""
    environ = dict(os.environ) if environ is None else environ
    raw = environ.get("RAILWAY_DEPLOYMENT_DRAINING_SECONDS", "")
    try:
        window = float(raw) if raw.strip() else DEFAULT_DRAIN_S
    except ValueError:
        window = DEFAULT_DRAIN_S
    return max(1.0, window - 1.0)


class GracefulServer:
    """A waitress server whose loop this class runs, so that stopping can be orderly."""

    def __init__(self, app: Any, host: str, port: int, threads: int) -> None:
        self.server: Any = create_server(app, host=host, port=port, threads=threads, ident="ordergate")
        self.stopping = threading.Event()

    @property
    def port(self) -> int:
        return int(self.server.effective_port)

    def install_signal_handlers(self) -> None:
        def stop(signum: int, frame: object) -> None:
            log.info("Received signal %s: finishing the requests in flight, accepting no more", signum)
            self.stopping.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

    def _busy(self) -> bool:
        return any(
            isinstance(ch, HTTPChannel) and (ch.requests or ch.total_outbufs_len)
            for ch in list(self.server._map.values())
        )

    def serve(self, drain_s: float) -> None:
        """Serve until ``stopping`` is set, then drain for at most ``drain_s`` seconds."""
        channels = self.server._map
        while not self.stopping.is_set():
            wasyncore.loop(timeout=0.5, map=channels, count=1)
        self.server.accepting = False
        self.server.del_channel()  # the listening socket: no new connections from here on
        self.server.socket.close()
        deadline = time.monotonic() + drain_s
        while self._busy() and time.monotonic() < deadline:
            wasyncore.loop(timeout=0.05, map=channels, count=1)
        if self._busy():
            log.warning("Drain time (%.0f s) is over with requests still in flight", drain_s)
        self.server.task_dispatcher.shutdown(timeout=max(0.1, deadline - time.monotonic()))
        wasyncore.close_all(channels)
        log.info("Stopped")
