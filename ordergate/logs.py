"""Logging setup: the seed's plain lines by default, one JSON object a line with LOG_FORMAT=json.

Every line logged while a signal is handled carries its id (``signalId`` in JSON), from a
context variable the webhook sets: the runner, the stages and the brokers need not pass it.

One handler, on the root logger, writes every logger's lines (ordergate's, waitress's, falcon's,
apprise's, urllib3's) and uncaught exceptions, each through :func:`ordergate.redact.redact`
after formatting, traceback included: no secret is written whatever the error.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TextIO

from ordergate.redact import redact

current_signal: ContextVar[str | None] = ContextVar("ordergate_signal", default=None)


@contextmanager
def signal_context(signal_id: str) -> Iterator[None]:
    """Tag every log line in the block with ``signal_id``."""
    token = current_signal.set(signal_id)
    try:
        yield
    finally:
        current_signal.reset(token)


class SignalFilter(logging.Filter):
    """Put the signal being handled (if any) on the record as ``signal_id``."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.signal_id = current_signal.get()
        return True


class SeedFormatter(logging.Formatter):
    """``2026-11-25 01:39:48 Processing Binance Signal: ...``; warnings and errors say so."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        if record.levelno == logging.INFO:
            return line
        stamp = self.formatTime(record, self.datefmt)
        return line.replace(stamp, f"{stamp} {record.levelname}", 1)


# What would let a sender's text forge or break a line: line breaks, other control characters,
# Unicode's line separators, and lone surrogates (which no stream can encode).
_UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")

_SURROGATE = re.compile("[\ud800-\udfff]")


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    return {"\n": "\\n", "\r": "\\r"}.get(char) or f"\\u{ord(char):04x}"


def one_line(text: str) -> str:
    """``text`` on one line: control characters and lone surrogates written as escapes."""
    return _UNSAFE.sub(_escaped, text)


class RedactingSeedFormatter(SeedFormatter):
    """The seed's lines, secrets replaced in the whole line (message and traceback).

    The message is kept on one line (a signal's text cannot start a forged line of its own);
    a traceback stays as Python writes it.
    """

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = one_line(record.message)
        return super().formatMessage(record)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """``{"time": ..., "level": "INFO", "message": ..., "signalId": ...}``, one per line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "message": redact(record.getMessage()),
        }
        signal_id = getattr(record, "signal_id", None)
        if signal_id:
            entry["signalId"] = signal_id
        if record.name != "ordergate":
            entry["logger"] = record.name
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = redact(self.formatStack(record.stack_info))
        # a lone surrogate as its JSON escape: the line stays valid JSON that any stream can encode
        return _SURROGATE.sub(_escaped, json.dumps(entry, ensure_ascii=False, default=str))


class RedactingHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler whose own failures do not print the record's raw message and arguments
    (the standard ``--- Logging error ---`` report does, secrets and all)."""

    def handleError(self, record: logging.LogRecord) -> None:
        try:
            exc = sys.exc_info()[1]
            report = logging.makeLogRecord(
                {
                    "name": record.name,
                    "levelno": logging.ERROR,
                    "levelname": "ERROR",
                    "msg": f"Logging error in a {record.levelname} line of {record.name}: {exc!r}",
                    "signal_id": getattr(record, "signal_id", None),
                }
            )
            self.stream.write(self.format(report) + self.terminator)  # in this handler's format, redacted
            self.flush()
        except Exception:  # noqa: S110 - nowhere left to report it
            pass


def make_handler(fmt: str = "text", stream: TextIO | None = None) -> logging.Handler:
    """The one handler: ``fmt`` text or json, every line redacted, on ``stream`` (stderr)."""
    handler = RedactingHandler(stream if stream is not None else sys.stderr)
    if fmt.strip().lower() == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(RedactingSeedFormatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    handler.addFilter(SignalFilter())
    handler._ordergate = True  # type: ignore[attr-defined]
    return handler


def _log_uncaught(kind: str, exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    logging.getLogger("ordergate").critical("Uncaught exception %s", kind, exc_info=(exc_type, exc, tb))


def _excepthook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc, tb)
        return
    _log_uncaught("in the main thread", exc_type, exc, tb)


def _thread_excepthook(args: Any) -> None:
    if args.exc_type is SystemExit or args.exc_value is None:
        return
    name = args.thread.name if args.thread is not None else "?"
    _log_uncaught(f"in thread {name}", args.exc_type, args.exc_value, args.exc_traceback)


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Send every logger's lines to stderr through one redacting handler on the root logger.

    ``level`` is ordergate's; the libraries' (waitress, falcon, apprise, urllib3) lines show from
    WARNING up, as before, or everything at DEBUG. Repeated calls do not add handlers. Uncaught
    exceptions, in any thread, are logged through the same handler.
    """
    root = logging.getLogger()
    logger = logging.getLogger("ordergate")
    if any(getattr(h, "_ordergate", False) for h in root.handlers):
        return
    root.addHandler(make_handler(fmt))
    name = level.upper()
    name = name if name in logging.getLevelNamesMapping() else "INFO"
    logger.setLevel(name)
    logger.propagate = True  # the root's handler is the only one: every line once, redacted
    root.setLevel(logging.DEBUG if name == "DEBUG" else logging.WARNING)
    sys.excepthook = _excepthook
    threading.excepthook = _thread_excepthook
