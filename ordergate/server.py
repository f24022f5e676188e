"""Serving with waitress: the server's edge, and stopping gracefully on SIGTERM.

**The edge.** :func:`build_server` is the one place the server is built (``ordergate serve``
and the tests both use it), from the ``server:`` settings:

* a body over ``max_body_bytes`` is refused 413 as soon as its headers declare it (a chunked
  one as soon as it grows past it), before a byte of it is buffered: waitress's
  ``max_request_body_size``, checked on the declared ``Content-Length``;
* request headers over 16 KB are refused 431 (waitress's default is 256 KB, held in memory);
* a request (headers and body) must arrive whole within ``request_deadline_s`` of its first
  byte (of the connection, for its first request); a connection that drips it is closed.
  waitress's own ``channel_timeout`` counts from the last byte received, so a client that
  sends one header line every few seconds is never idle and would hold its slot forever;
* at ``connection_limit`` open connections the server does not stop accepting (waitress's
  behaviour, which leaves a real signal waiting in the kernel's backlog behind slow clients):
  it closes the connections that have been waiting longest for an unfinished request (then the
  longest idle ones) to make room. A request being served is never closed;
* poll() instead of select(), whose 1024-descriptor ceiling a few hundred connections and the
  process's own files would reach, and the soft open-file limit raised to fit the connections;
* health checks (``GET /healthz``, ``/readyz``) have two threads of their own: waitress has one
  queue of requests for its ``threads``, so with every thread busy on a signal (each waits a
  broker round trip) a probe would wait behind them and the platform would restart a healthy
  service in the middle of a burst;
* forwarding headers (``X-Forwarded-For``, ``Forwarded``, ``X-Real-IP``) reach the app as sent:
  waitress would drop them unless they come from its one ``trusted_proxy`` address, while
  :class:`ordergate.auth.Gate` decides from ``auth.trusted_proxies`` (networks, not one address)
  which connection may speak for its client. Nothing else in the app reads them.

**Stopping.** On SIGTERM the server stops accepting connections, lets every request already in
flight finish and its answer flush, then exits: a signal that reached ordergate gets its answer.
Railway kills the process ``RAILWAY_DEPLOYMENT_DRAINING_SECONDS`` after SIGTERM (default 0, so
set it); ordergate drains for one second less than that.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any

from waitress import wasyncore
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask, ThreadedTaskDispatcher

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


# How often the server looks for requests past their deadline (seconds).
SWEEP_EVERY_S = 0.25
# Request line and headers: over this, 431 (waitress's default, 256 KB, held in memory per
# connection, would let 1000 connections pin 256 MB). Railway's edge forwards at most 16 KB.
MAX_HEADER_BYTES = 16384
# Requests served by their own threads, never queued behind signals (see the module docstring).
HEALTH_PATHS = frozenset({"/healthz", "/readyz"})
HEALTH_THREADS = 2
# Descriptors the process needs besides its connections: journal, logs, broker sessions, threads.
SPARE_FILES = 64


@dataclass(frozen=True)
class EdgeLimits:
    """The ``server:`` settings that bound what a client may hold (see the module docstring)."""

    max_body_bytes: int = 16384
    request_deadline_s: float = 10.0
    connection_limit: int = 1000

    @classmethod
    def from_settings(cls, server: dict[str, Any]) -> EdgeLimits:
        return cls(
            max_body_bytes=int(server["max_body_bytes"]),
            request_deadline_s=float(server["request_deadline_s"]),
            connection_limit=int(server["connection_limit"]),
        )


class JsonErrorTask(ErrorTask):
    """waitress's own refusals (413, 431, 400 on a malformed request) in the app's JSON shape."""

    def execute(self) -> None:
        error: Any = getattr(self.request, "error", None)
        if error.code == 413:
            limit = self.channel.server.adj.max_request_body_size - 1
            text = f"Body over {limit} bytes"
        else:
            text = f"{error.reason}: {error.body}"
        body = json.dumps({"success": False, "error": text}).encode()
        self.status = f"{error.code} {error.reason}"
        self.response_headers = [("Content-Type", "application/json")]
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class EdgeChannel(HTTPChannel):
    """A connection that knows since when it has been waiting for its current request.

    ``request_started`` is the time (monotonic) of the first byte of the request being received,
    or of the connection's opening before its first request; ``None`` while it has no
    unfinished request (being served, or idle between keep-alive requests).
    """

    error_task_class = JsonErrorTask
    request_started: float | None

    def __init__(self, server: Any, sock: Any, addr: Any, adj: Adjustments, map: Any = None) -> None:
        self.request_started = time.monotonic()
        super().__init__(server, sock, addr, adj, map)

    def received(self, data: bytes) -> bool:
        if self.request is None and self.request_started is None and data:
            self.request_started = time.monotonic()
        before = self.request
        accepted = super().received(data)
        if self.request is None:  # every request in ``data`` is complete
            self.request_started = None
        elif before is not None and self.request is not before:  # one done, the next (pipelined) began
            self.request_started = time.monotonic()
        return accepted

    def send_continue(self) -> None:
        """``100 Continue`` only to a request that may go on: one already refused (a declared body
        over the limit) gets its 413 straight away, as RFC 9110 (10.1.1) allows. waitress would
        send ``100 Continue`` first and then, racing its own buffers, never answer at all."""
        if self.request is not None and self.request.error is not None:
            self.request.expect_continue = False
            return
        super().send_continue()

    @property
    def evictable(self) -> bool:
        """Nothing of it is being served or sent, and it is not already closing."""
        return not (self.requests or self.total_outbufs_len or self.will_close or self.close_when_flushed)


class EdgeServer(TcpWSGIServer):
    """waitress's TCP server with a per-request deadline and room made at the connection limit."""

    channel_class = EdgeChannel
    _map: dict[int, Any]  # the loop's sockets (waitress sets them; its stubs leave them out)
    effective_port: int | str

    def __init__(self, app: Any, adj: Adjustments, request_deadline_s: float) -> None:
        self.request_deadline_s = request_deadline_s
        self.next_sweep = 0.0
        self.evicted = 0
        self.timed_out = 0
        super().__init__(app, adj=adj)
        self.health_dispatcher = ThreadedTaskDispatcher()
        self.health_dispatcher.set_thread_count(HEALTH_THREADS)

    def add_task(self, task: Any) -> None:
        """A connection with a request to serve: a health check goes to its own threads."""
        requests = getattr(task, "requests", None)
        request = requests[0] if requests else None
        path = str(getattr(request, "path", "") or "").rstrip("/")
        if request is not None and request.command in ("GET", "HEAD") and path in HEALTH_PATHS:
            self.health_dispatcher.add_task(task)
        else:
            self.task_dispatcher.add_task(task)

    def close(self) -> None:
        super().close()
        self.health_dispatcher.shutdown(timeout=1)

    def channels(self) -> list[EdgeChannel]:
        return [ch for ch in list(self._map.values()) if isinstance(ch, EdgeChannel)]

    def readable(self) -> bool:
        """Called by the loop before every wait: sweep deadlines, make room, then accept."""
        wall = time.time()
        if wall >= self.next_channel_cleanup:  # waitress's idle timeout (channel_timeout)
            self.next_channel_cleanup = int(wall + self.adj.cleanup_interval)
            self.maintenance(int(wall))
        now = time.monotonic()
        if now >= self.next_sweep:
            self.next_sweep = now + SWEEP_EVERY_S
            self.close_late(now)
        if not self.accepting:
            return False
        if self.in_connection_overflow and len(self._map) < 0.9 * self.adj.connection_limit:
            self.in_connection_overflow = False
            log.info("Open connections back under the connection_limit")
        if len(self._map) >= self.adj.connection_limit:
            self.make_room()
            return False  # the chosen ones close on this pass of the loop; accept on the next
        return True

    def close_late(self, now: float) -> None:
        """Close every connection whose request has not arrived whole within the deadline."""
        late = [
            ch
            for ch in self.channels()
            if ch.request_started is not None and ch.evictable and now - ch.request_started > self.request_deadline_s
        ]
        for channel in late:
            channel.will_close = True  # closed by the loop on this pass (writable, then handle_write)
        if late:
            self.timed_out += len(late)
            log.info(
                "Closed %d connection(s) whose request was not complete within %.0f s",
                len(late),
                self.request_deadline_s,
            )

    def make_room(self) -> None:
        """At the limit: close the connections waiting longest for a request, then the longest idle."""
        channels = self.channels()
        closing = sum(1 for ch in channels if ch.will_close or ch.close_when_flushed)
        excess = len(self._map) - self.adj.connection_limit + 1 - closing
        if excess <= 0:
            return
        waiting = sorted((ch for ch in channels if ch.evictable), key=_eviction_order)
        for channel in waiting[:excess]:
            channel.will_close = True
        self.evicted += min(excess, len(waiting))
        if not self.in_connection_overflow:
            self.in_connection_overflow = True
            log.warning(
                "%d connections open (connection_limit): closing the slowest to let new ones in",
                len(self._map),
            )

    def poll(self, timeout: float) -> None:
        """One pass of the loop: wait at most ``timeout`` seconds for the sockets, handle them."""
        wasyncore.loop(timeout=timeout, map=self._map, count=1, use_poll=self.adj.asyncore_use_poll)


def _eviction_order(channel: EdgeChannel) -> tuple[int, float]:
    if channel.request_started is not None:
        return (0, channel.request_started)  # an unfinished request: the oldest first
    return (1, channel.last_activity)  # idle between requests: the longest idle first


def open_files_for(connections: int) -> int:
    """Raise the soft open-file limit to fit ``connections`` (up to the hard limit); the limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + SPARE_FILES
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        log.info("Raised the open-file limit from %d to %d for %d connections", soft, new, connections)
        soft = new
    return int(soft)


def build_server(app: Any, host: str, port: int, threads: int, limits: EdgeLimits | None = None) -> EdgeServer:
    """The waitress server ``ordergate serve`` runs, listening (not yet looping) on ``host:port``."""
    limits = limits or EdgeLimits()
    files = open_files_for(limits.connection_limit)
    connection_limit = limits.connection_limit
    if files < connection_limit + SPARE_FILES:
        connection_limit = max(10, files - SPARE_FILES)
        log.warning("Open-file limit %d: connection_limit lowered to %d", files, connection_limit)
    adj = Adjustments(
        host=host,
        port=port,
        threads=threads,
        ident="ordergate",
        # waitress refuses a declared length >= this, before reading the body
        max_request_body_size=limits.max_body_bytes + 1,
        max_request_header_size=MAX_HEADER_BYTES,
        connection_limit=connection_limit,
        asyncore_use_poll=True,
        clear_untrusted_proxy_headers=False,  # auth.Gate judges them against auth.trusted_proxies
    )
    return EdgeServer(app, adj, limits.request_deadline_s)


class GracefulServer:
    """A waitress server whose loop this class runs, so that stopping can be orderly."""

    def __init__(self, app: Any, host: str, port: int, threads: int, limits: EdgeLimits | None = None) -> None:
        self.server = build_server(app, host, port, threads, limits)
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
            self.server.poll(0.5)
        self.server.accepting = False
        self.server.del_channel()  # the listening socket: no new connections from here on
        if self.server.socket is not None:
            self.server.socket.close()
        deadline = time.monotonic() + drain_s
        while self._busy() and time.monotonic() < deadline:
            self.server.poll(0.05)
        if self._busy():
            log.warning("Drain time (%.0f s) is over with requests still in flight", drain_s)
        self.server.task_dispatcher.shutdown(timeout=max(0.1, deadline - time.monotonic()))  # type: ignore[arg-type]
        self.server.health_dispatcher.shutdown(timeout=0.1)  # type: ignore[arg-type]
        wasyncore.close_all(channels)
        log.info("Stopped")
