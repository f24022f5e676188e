"""Outcome notifications through apprise, sent off the request path.

The ``notify`` stage turns an outcome into a :class:`Notice` and hands it to the process's one
:class:`NotificationDispatcher`, which only puts it on a bounded queue: a full queue drops the
notice (a warning and a counter), never waits. One daemon thread sends what is queued, each
target retried with tenacity (exponential backoff). Nothing here can delay or change an
order's outcome.

Apprise URLs carry tokens (``tgram://<bot token>/<chat>``): ordergate logs a target only by its
scheme, and :class:`SecretRedactor` blanks the URLs' parts out of what apprise and urllib3 log.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import queue
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote

import apprise
from apprise.utils.parse import parse_urls
from tenacity import (
    Retrying,
    retry_if_exception_type,
    retry_if_result,
    stop_after_attempt,
    stop_when_event_set,
    wait_exponential,
)

from ordergate.redact import register

log = logging.getLogger("ordergate.notify")

Level = Literal["info", "success", "warning", "failure"]
Event = Literal["sent", "failed", "dropped"]

QUEUE_SIZE = 1000
EXIT_FLUSH_S = 3.0  # at interpreter exit, what is still queued gets this long to go out
_ASSET = apprise.AppriseAsset(app_id="ordergate", app_desc="ordergate", secure_logging=True)


@dataclass(frozen=True)
class Notice:
    """One notification: what every target of an outcome receives."""

    title: str
    body: str
    level: Level = "info"  # apprise's notify type: info, success, warning, failure
    signal_id: str = ""  # for ordergate's own log lines about delivery


def scheme(url: str) -> str:
    """``tgram`` for ``tgram://token/chat``: the only part of a URL that may be logged."""
    head, sep, _ = url.partition("://")
    return head.strip().lower() if sep and head.strip().isalnum() else "unknown"


def split_urls(urls: str | Iterable[str] | None) -> list[str]:
    """Apprise URLs from a comma/space separated string or a list; blanks are no target."""
    if urls is None:
        return []
    items = [urls] if isinstance(urls, str) else list(urls)
    found: list[str] = parse_urls(*[u for u in items if u.strip()])  # type: ignore[no-untyped-call]
    return [u.strip() for u in found if u.strip()]


class NotifyTarget:
    """One apprise URL and the outcomes it receives, with its retry policy."""

    def __init__(self, url: str, outcomes: Iterable[str], *, attempts: int = 3, backoff_s: float = 1.0) -> None:
        self.kind = scheme(url)
        service = apprise.Apprise.instantiate(url, asset=_ASSET)
        if service is None:  # options are checked at startup (check_urls); the URL is never quoted
            raise ValueError(f"apprise cannot use this {self.kind}:// URL")
        self.service = service
        self.outcomes = frozenset(outcomes)
        self.attempts = attempts
        self.backoff_s = backoff_s
        redactor.add(url)

    def __repr__(self) -> str:
        return f"NotifyTarget({self.kind}://…, outcomes={sorted(self.outcomes)})"

    def send(self, notice: Notice) -> bool:
        """One attempt; True when apprise says the receiver took it."""
        return bool(
            self.service.notify(body=notice.body, title=notice.title, notify_type=apprise.NotifyType(notice.level))
        )


def unusable(url: str) -> str | None:
    """Why apprise cannot use ``url``, naming only its scheme; None when it can."""
    redactor.add(url)  # first: apprise's own error line quotes the URL it could not parse
    if apprise.Apprise.instantiate(url, asset=_ASSET) is None:
        return f"apprise cannot use this {scheme(url)}:// URL (unknown scheme, or a malformed URL)"
    return None


def check_urls(field: str, value: Any, error: Callable[[str, str], None]) -> None:
    """Cerberus ``check_with`` for a ``urls`` option: every URL must be one apprise can use."""
    if isinstance(value, (str, list)):
        for url in split_urls([v for v in ([value] if isinstance(value, str) else value) if isinstance(v, str)]):
            problem = unusable(url)
            if problem is not None:
                error(field, problem)
                return


def build_targets(entries: Iterable[dict[str, Any]]) -> list[NotifyTarget]:
    """The validated ``targets`` option -> one target per URL."""
    return [
        NotifyTarget(url, entry["on"], attempts=entry["attempts"], backoff_s=float(entry["backoff_s"]))
        for entry in entries
        for url in split_urls(entry.get("urls"))
    ]


class NotificationCounters:
    """Thread-safe tallies for a metrics module: sent and failed per target kind, dropped."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sent: Counter[str] = Counter()
        self._failed: Counter[str] = Counter()
        self._dropped: Counter[str] = Counter()

    def add(self, event: Event, kind: str) -> None:
        with self._lock:
            {"sent": self._sent, "failed": self._failed, "dropped": self._dropped}[event][kind] += 1

    def snapshot(self) -> dict[str, dict[str, int]]:
        """``{"sent": {"tgram": 3}, "failed": {"json": 1}, "dropped": {"tgram": 0}}``, a copy."""
        with self._lock:
            return {"sent": dict(self._sent), "failed": dict(self._failed), "dropped": dict(self._dropped)}


_Job = tuple[NotifyTarget, Notice]


class NotificationDispatcher:
    """A bounded queue and one daemon worker thread that sends what is queued.

    :meth:`submit` never blocks. The worker starts on the first submit and again after
    :meth:`close`. ``listeners`` are called from the worker (or the submitting thread, for a
    drop) with ``(event, kind)``; one that raises is logged and ignored.
    """

    def __init__(self, maxsize: int = QUEUE_SIZE) -> None:
        self.maxsize = maxsize
        self.counters = NotificationCounters()
        self.listeners: list[Callable[[Event, str], None]] = []
        self._queue: queue.Queue[_Job | None] = queue.Queue(maxsize)  # None wakes the worker to stop
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._exit_hook = False

    def submit(self, targets: Iterable[NotifyTarget], notice: Notice) -> int:
        """Queue ``notice`` for each of ``targets``; returns how many were queued (the rest dropped)."""
        queued = 0
        for target in targets:
            try:
                self._queue.put_nowait((target, notice))
            except queue.Full:
                log.warning(
                    "Notification queue full (%d): dropped the %s notification for signal %s",
                    self.maxsize,
                    target.kind,
                    notice.signal_id,
                )
                self._record("dropped", target.kind)
            else:
                queued += 1
        if queued:
            self._ensure_worker()
        return queued

    @property
    def pending(self) -> int:
        """Notifications queued or being sent."""
        return self._queue.unfinished_tasks

    def flush(self, timeout: float) -> bool:
        """Wait until everything queued has been sent or given up on; False if ``timeout`` ran out."""
        deadline = time.monotonic() + timeout
        done = self._queue.all_tasks_done
        with done:
            while self._queue.unfinished_tasks:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                done.wait(remaining)
        return True

    def close(self, timeout: float = 5.0) -> bool:
        """Drain within ``timeout``, then stop the worker; what is left is dropped. True if all went out.

        A later :meth:`submit` starts a new worker: closing is for shutdown and for tests.
        """
        deadline = time.monotonic() + timeout
        drained = self.flush(timeout)
        with self._lock:
            thread, self._thread = self._thread, None
            self._stop.set()  # this worker's event: it stops retrying and exits after its current send
            self._stop = threading.Event()
        left = 0
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                left += 1
                self._record("dropped", job[0].kind)
            self._queue.task_done()
        if thread is not None:
            with contextlib.suppress(queue.Full):  # a racing submit filled it: the worker polls anyway
                self._queue.put_nowait(None)
        if left:
            log.warning("Notifications: %d not sent before shutdown", left)
        if thread is not None:
            thread.join(max(0.0, deadline - time.monotonic()))
        return drained

    def _ensure_worker(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._work, args=(self._stop,), name="ordergate-notify", daemon=True
                )
                self._thread.start()
                if not self._exit_hook:
                    # A daemon thread dies with the interpreter: give the last notices a moment.
                    atexit.register(self.close, EXIT_FLUSH_S)
                    self._exit_hook = True

    def _work(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                job = self._queue.get(timeout=1.0)
            except queue.Empty:
                continue
            if job is None:
                self._queue.task_done()
                continue
            target, notice = job
            try:
                if stop.is_set():
                    self._record("dropped", target.kind)
                else:
                    self._deliver(target, notice, stop)
            except Exception:  # the worker must outlive any one notification
                log.exception("Notification to %s for signal %s failed", target.kind, notice.signal_id)
            finally:
                self._queue.task_done()

    def _deliver(self, target: NotifyTarget, notice: Notice, stop: threading.Event) -> None:
        errors: list[str] = []

        def attempt() -> bool:
            try:
                return target.send(notice)
            except Exception as exc:
                errors.append(type(exc).__name__)  # the type only: a message may quote the URL
                raise

        def pause(seconds: float) -> None:
            stop.wait(seconds)  # a shutdown cuts the backoff short

        retrying = Retrying(
            stop=stop_after_attempt(target.attempts) | stop_when_event_set(stop),
            wait=wait_exponential(multiplier=target.backoff_s, max=max(target.backoff_s * 8, 0.01)),
            sleep=pause,
            retry=retry_if_result(lambda ok: ok is not True) | retry_if_exception_type(Exception),
            retry_error_callback=lambda state: False,
        )
        if retrying(attempt):
            self._record("sent", target.kind)
            return
        why = f" ({errors[-1]})" if errors else ""
        log.warning(
            "Notification to %s for signal %s failed after %d attempt(s)%s",
            target.kind,
            notice.signal_id,
            retrying.statistics.get("attempt_number", target.attempts),
            why,
        )
        self._record("failed", target.kind)

    def _record(self, event: Event, kind: str) -> None:
        self.counters.add(event, kind)
        for listener in list(self.listeners):
            try:
                listener(event, kind)
            except Exception:
                log.exception("Notification listener failed")


class SecretRedactor(logging.Filter):
    """Blanks the parts of configured apprise URLs out of the libraries' log records.

    apprise logs with its own care (secure logging), but at DEBUG it and urllib3 write request
    URLs, and a Telegram bot token is part of its URL's path.
    """

    LOGGERS = ("apprise", "urllib3.connectionpool")
    MIN_PIECE = 6  # shorter pieces (ports, "json", short chat ids) are not worth blanking everywhere

    def __init__(self) -> None:
        super().__init__()
        self._secrets: tuple[str, ...] = ()
        self._lock = threading.Lock()
        self._installed = False

    def add(self, url: str) -> None:
        """Remember ``url``'s pieces and make sure the filter is on the libraries' loggers."""
        rest = url.partition("://")[2]
        pieces = {url, rest}
        for piece in re.split(r"[/:@?&=,;#\s]+", rest):
            pieces.update({piece, unquote(piece)})
        wanted = {p for p in pieces if len(p) >= self.MIN_PIECE}
        register(*wanted)  # and out of every other line and answer
        with self._lock:
            self._secrets = tuple(sorted(set(self._secrets) | wanted, key=len, reverse=True))
            if not self._installed:
                for name in self.LOGGERS:
                    logging.getLogger(name).addFilter(self)
                self._installed = True

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        try:
            text = record.getMessage()
        except Exception:
            return True
        redacted = self.redact(text)
        if redacted != text:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
        return True


redactor = SecretRedactor()
_dispatcher = NotificationDispatcher()


def dispatcher() -> NotificationDispatcher:
    """The process's dispatcher: its counters are what a metrics module reads."""
    return _dispatcher


def shutdown(timeout: float = 5.0) -> bool:
    """Send what is still queued (at most ``timeout`` seconds), then stop the worker."""
    return _dispatcher.close(timeout)
